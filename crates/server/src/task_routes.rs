//! The task routes: `POST /v1/{task}` (one image), `/v1/batch/{task}` (several in one queue
//! slot), `/v1/jobs/{task}` (handed to `job_routes`), and the aliases the services percept
//! replaces used (`/process`, `/predict`, `/batch/parse`).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ApiError;
use crate::reply::{cache_header, observed, respond, timing_headers};
use crate::request::{Accepted, accept};
use crate::state::AppState;
use percept_tasks::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Single,
    Batch,
    Job,
}

pub(crate) async fn task_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    dispatch(state, Kind::Single, &name, request).await
}

pub(crate) async fn batch_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    dispatch(state, Kind::Batch, &name, request).await
}

pub(crate) async fn submit_job_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    dispatch(state, Kind::Job, &name, request).await
}

/// `POST /process`: the anonymiser service percept replaces took a multipart `image` and
/// answered with the anonymised JPEG itself.
pub(crate) async fn process(State(state): State<Arc<AppState>>, mut request: Request) -> Response {
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("image/jpeg"));
    dispatch(state, Kind::Single, "anonymize", request).await
}

/// `POST /predict`: the parse task under the parsing service's old name.
pub(crate) async fn predict(State(state): State<Arc<AppState>>, request: Request) -> Response {
    dispatch(state, Kind::Single, "parse", request).await
}

/// `POST /batch/parse`: the parsing service percept replaces took its batches here; same
/// request and answer as `/v1/batch/parse`.
pub(crate) async fn batch_parse(State(state): State<Arc<AppState>>, request: Request) -> Response {
    dispatch(state, Kind::Batch, "parse", request).await
}

async fn dispatch(state: Arc<AppState>, kind: Kind, name: &str, request: Request) -> Response {
    let arrived = Instant::now();
    let task = match state.runner.task(name) {
        Ok(task) => task,
        Err(error) => return observed(&state, "unknown", Err(error), arrived),
    };
    let (label, outcome) = match kind {
        Kind::Single => (
            task.name().to_string(),
            run_single(&state, task.as_ref(), request, arrived).await,
        ),
        Kind::Batch => (
            format!("batch/{}", task.name()),
            run_batch(&state, task.as_ref(), request, arrived).await,
        ),
        Kind::Job => (
            format!("jobs/{}", task.name()),
            crate::job_routes::submit_job(&state, Arc::clone(&task), request, arrived).await,
        ),
    };
    observed(&state, &label, outcome, arrived)
}

async fn run_single(
    state: &AppState,
    task: &dyn Task,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let (work, render) = accept(state, task, request, deadline)
        .await?
        .single(&format!("send several to /v1/batch/{}", task.name()))?;
    if percept_video::looks_like_video(&work.bytes) {
        // The code photos have always had here, with the way to the route that takes videos.
        return Err(ApiError::invalid_image(format!(
            "this is a video; this route takes photos: send it to POST /v1/jobs/{} (an async \
             job that returns the processed video)",
            task.name()
        )));
    }
    let (executed, ran, cache) = state
        .runner
        .run_one(task.name(), work, render, deadline)
        .await?;
    let mut response = respond(executed, render, ran.queued, ran.compute, arrived.elapsed());
    cache_header(response.headers_mut(), cache);
    Ok(response)
}

/// Runs every image of a batch in one queue slot, one after the other, each under its own
/// panic guard, so one bad image gives an error in its slot and does not fail the rest.
async fn run_batch(
    state: &AppState,
    task: &dyn Task,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let Accepted {
        work,
        filenames,
        mut render,
        ..
    } = accept(state, task, request, deadline).await?;
    render.raw_image = false;
    let runner = &state.runner;
    let started = runner
        .start(task.name(), work, render, deadline, || {})
        .map_err(|e| runner.pool_error(e))?;
    let cache = started.cache;
    let (outcomes, ran) = runner.finish(started, Some(deadline)).await?;
    let mut succeeded = 0usize;
    let results: Vec<Value> = outcomes
        .into_iter()
        .zip(filenames)
        .enumerate()
        .map(|(index, (outcome, filename))| match outcome {
            Ok(executed) => {
                succeeded += 1;
                json!({"index": index, "filename": filename, "status": 200,
                       "result": executed.into_json()})
            }
            Err(error) => json!({"index": index, "filename": filename,
                                 "status": error.status().as_u16(), "error": error.body()}),
        })
        .collect();
    let failed = results.len() - succeeded;
    let body = json!({"task": task.name(), "count": results.len(), "succeeded": succeeded,
                      "failed": failed, "results": results});
    let mut response = Json(body).into_response();
    timing_headers(
        response.headers_mut(),
        ran.queued,
        ran.compute,
        arrived.elapsed(),
        None,
    );
    cache_header(response.headers_mut(), cache);
    Ok(response)
}
