//! From an HTTP request to work the runner can take: the images and options read within the
//! deadline, the rendering chosen from `Accept` and the options, one prepared job and cache
//! key per image.

use std::time::Instant;

use axum::extract::Request;
use axum::http::header;

use crate::extract::{ImageInput, read_image_input};
use crate::runner::Work;
use crate::state::AppState;
use crate::{ApiError, ErrorCode, Options};
use percept_tasks::{Render, Task};

/// `shutting_down` while the server drains: no new request is read.
pub(crate) fn refuse_while_draining(state: &AppState) -> Result<(), ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    Ok(())
}

/// Reads a task request's images and options within `deadline`, unless the server is
/// draining.
pub(crate) async fn read_request(
    state: &AppState,
    request: Request,
    deadline: Instant,
) -> Result<(axum::http::request::Parts, ImageInput), ApiError> {
    refuse_while_draining(state)?;
    let (parts, body) = request.into_parts();
    let input = tokio::time::timeout_at(
        deadline.into(),
        read_image_input(&parts.headers, parts.uri.query(), body, state.body_limits()),
    )
    .await
    .map_err(|_| state.runner.timeout_error())??;
    Ok((parts, input))
}

/// A request read and validated: one piece of work per image, how to render results, and
/// the client's file names.
pub(crate) struct Accepted {
    pub(crate) work: Vec<Work>,
    pub(crate) filenames: Vec<Option<String>>,
    pub(crate) render: Render,
    /// The task's options once `format` and `quality` went into `render`.
    pub(crate) options: Options,
}

/// Reads and validates a request for `task` within `deadline`.
pub(crate) async fn accept(
    state: &AppState,
    task: &dyn Task,
    request: Request,
    deadline: Instant,
) -> Result<Accepted, ApiError> {
    let (parts, input) = read_request(state, request, deadline).await?;
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    prepare(state, task, input, accept)
}

/// The work for `input`'s images under `task`, its options validated by the first
/// `prepare` (each image needs its own job).
pub(crate) fn prepare(
    state: &AppState,
    task: &dyn Task,
    input: ImageInput,
    accept: Option<&str>,
) -> Result<Accepted, ApiError> {
    let mut options = input.options;
    let render = Render::from_request(accept, &mut options)?;
    let mut work = Vec::with_capacity(input.images.len());
    let mut filenames = Vec::with_capacity(input.images.len());
    for image in input.images {
        let job = task.prepare(options.clone())?;
        let key = state
            .runner
            .cache
            .key(task.name(), &options, render.format, &image.bytes);
        filenames.push(image.filename);
        work.push(Work {
            bytes: image.bytes,
            job,
            key,
        });
    }
    Ok(Accepted {
        work,
        filenames,
        render,
        options,
    })
}

impl Accepted {
    /// The one image of a single-image route; `several` says where to send more.
    pub(crate) fn single(self, several: &str) -> Result<(Work, Render), ApiError> {
        let count = self.work.len();
        match <[_; 1]>::try_from(self.work) {
            Ok([work]) => Ok((work, self.render)),
            Err(_) => Err(ApiError::bad_option(format!(
                "this route takes one image, got {count}; {several}"
            ))),
        }
    }
}
