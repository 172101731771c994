//! Async jobs: `POST /v1/jobs/{task}` queues one image or one video and answers 202 with the
//! job's URLs; `GET /v1/jobs/{id}` and `/v1/jobs/{id}/result` report it, and a video job's
//! output video is at `/v1/jobs/{id}/video`; `DELETE /v1/jobs/{id}` cancels it. Jobs live in
//! this process's memory or, with `redis_url`, in Redis where any replica runs and reports
//! them.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::cache::CacheStatus;
use crate::jobs::JobBackend;
use crate::redis_jobs::RedisJobs;
use crate::reply::cache_header;
use crate::request::{prepare, refuse_while_draining};
use crate::runner::{Runner, Started};
use crate::state::AppState;
use crate::video_jobs::{self, StoredVideo, video_url};
use crate::video_upload::{JobInput, VideoUpload, read_job_input};
use crate::{ApiError, Options};
use percept_tasks::{Render, Task, video_job};

/// The 202 answer to a submitted job.
fn queued(id: &str, cache: CacheStatus) -> Response {
    let body = json!({"id": id, "status": "queued",
                      "status_url": format!("/v1/jobs/{id}"),
                      "result_url": format!("/v1/jobs/{id}/result")});
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    cache_header(response.headers_mut(), cache);
    response
}

/// The 202 answer to a submitted video job.
fn queued_video(id: &str) -> Response {
    let body = json!({"id": id, "status": "queued", "kind": "video",
                      "status_url": format!("/v1/jobs/{id}"),
                      "result_url": format!("/v1/jobs/{id}/result"),
                      "video_url": video_url(id)});
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// Queues one photo or video as a job (the request's own deadline only covers reading it).
pub(crate) async fn submit_job(
    state: &Arc<AppState>,
    task: Arc<dyn Task>,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    refuse_while_draining(state)?;
    let (parts, body) = request.into_parts();
    let input = tokio::time::timeout_at(
        deadline.into(),
        read_job_input(
            &parts.headers,
            parts.uri.query(),
            body,
            state.body_limits(),
            state.config.max_video_bytes,
        ),
    )
    .await
    .map_err(|_| state.runner.timeout_error())??;
    let input = match input {
        JobInput::Photos(input) => input,
        JobInput::Video(upload, options) => {
            return submit_video(state, task, upload, options).await;
        }
    };
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let accepted = prepare(state, task.as_ref(), input, accept)?;
    let jobs = match &state.jobs {
        JobBackend::Memory(jobs) => Arc::clone(jobs),
        JobBackend::Redis(redis) => {
            let options = accepted.options.clone();
            let (work, render) = accepted.single("submit one job per image")?;
            let id = redis
                .submit(task.name(), &options, render.format, &work.bytes)
                .await?;
            return Ok(queued(&id, CacheStatus::Off));
        }
    };
    let (work, mut render) = accepted.single("submit one job per image")?;
    render.raw_image = false;
    let id = jobs.create(task.name());
    let runner = Arc::clone(&state.runner);
    let store = Arc::clone(&jobs);
    let job_id = id.clone();
    // The job's deadline runs from submission; a client does not hold a connection open.
    let job_deadline = Instant::now() + state.config.deadline();
    let started = runner
        .start(task.name(), vec![work], render, job_deadline, move || {
            store.mark_running(&job_id)
        })
        .map_err(|e| {
            jobs.remove(&id);
            runner.pool_error(e)
        })?;
    let cache = started.cache;
    if started.is_pending() {
        let job_id = id.clone();
        tokio::spawn(async move { jobs.finish(&job_id, outcome(&runner, started).await) });
    } else {
        // Answered from the cache: done before the 202 goes out.
        jobs.mark_running(&id);
        jobs.finish(&id, outcome(&runner, started).await);
    }
    Ok(queued(&id, cache))
}

/// Checks an uploaded video (FFmpeg, readable, limits, options) and queues it as a job.
async fn submit_video(
    state: &Arc<AppState>,
    task: Arc<dyn Task>,
    upload: VideoUpload,
    mut options: Options,
) -> Result<Response, ApiError> {
    // `format` and `quality` are the photo result's; accepted (and checked) but unused.
    Render::from_request(None, &mut options)?;
    let info = video_jobs::check(&state.config, &upload.path).await?;
    // A bad option is a 422 now, never a failed job; so is a task that would draw no frame.
    drop(video_job(
        Arc::clone(&task),
        options.clone(),
        info.frame_rate.fps(),
    )?);
    if !task.draws(&options) {
        return Err(video_jobs::draws_nothing(task.name()));
    }
    let jobs = match &state.jobs {
        JobBackend::Memory(jobs) => Arc::clone(jobs),
        JobBackend::Redis(redis) => {
            let id = redis
                .submit_video(task.name(), &options, &upload, &info)
                .await?;
            return Ok(queued_video(&id));
        }
    };
    // One video job per worker at most, queued or running: each holds its upload on disk
    // and keeps a worker busy for a long time.
    let limit = state.config.workers;
    let (id, progress) = jobs
        .create_video(task.name(), info.frames, limit)
        .ok_or_else(|| {
            ApiError::queue_full(
                format!("{limit} video jobs are already queued or running; retry later"),
                5,
            )
        })?;
    let runner = Arc::clone(&state.runner);
    let job_id = id.clone();
    let store = Arc::clone(&jobs);
    let running = tokio::spawn(async move {
        jobs.mark_running(&job_id);
        let outcome = video_jobs::run(&runner, task, options, &upload.path, &info, &progress)
            .await
            .map(|(video, mut summary)| {
                summary["video_url"] = json!(video_url(&job_id));
                (video, summary)
            });
        if let Err(error) = &outcome {
            tracing::info!(id = %job_id, code = error.code.as_str(), "video job failed");
        }
        jobs.finish_video(&job_id, outcome);
        // The upload's file goes with `upload`, here (or when the task is aborted).
        drop(upload);
    });
    store.set_abort(&id, running.abort_handle());
    Ok(queued_video(&id))
}

/// The job's one result as its stored JSON.
async fn outcome(runner: &Runner, started: Started) -> Result<Value, ApiError> {
    let (executed, _) = runner.finish_one(started, None).await?;
    Ok(executed.into_json())
}

pub(crate) async fn job_route(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Response {
    let (id, want) = match path.split_once('/') {
        Some((id, "result")) => (id, Want::Result),
        Some((id, "video")) => (id, Want::Video),
        None => (path.as_str(), Want::Status),
        Some(_) => return ApiError::not_found("no such job route").into_response(),
    };
    let jobs = match &state.jobs {
        JobBackend::Memory(jobs) => jobs,
        JobBackend::Redis(redis) => return redis_job(&state, redis, id, want).await,
    };
    let Some(view) = jobs.get(id) else {
        return missing_job(&state, id);
    };
    if want == Want::Status {
        return Json(view.status_json()).into_response();
    }
    if want == Want::Video && !view.is_video() {
        return not_a_video(id);
    }
    match (&view.outcome, want) {
        (None, _) => (StatusCode::ACCEPTED, Json(view.status_json())).into_response(),
        (Some(Err(error)), _) => error.clone().into_response(),
        (Some(Ok(_)), Want::Video) => match view.video() {
            Some(video) => video_file(video).await,
            None => missing_job(&state, id),
        },
        (Some(Ok(result)), _) => Json(result.clone()).into_response(),
    }
}

/// `DELETE /v1/jobs/{id}`: cancels a job and forgets it (204); a running video stops within
/// a step and its files are removed. 404 if unknown or expired.
pub(crate) async fn cancel_job(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Response {
    if path.contains('/') {
        return ApiError::not_found("no such job route").into_response();
    }
    let found = match &state.jobs {
        JobBackend::Memory(jobs) => Ok(jobs.cancel(&path)),
        JobBackend::Redis(redis) => redis.cancel(&path).await,
    };
    match found {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => missing_job(&state, &path),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Status,
    Result,
    Video,
}

async fn redis_job(state: &AppState, redis: &RedisJobs, id: &str, want: Want) -> Response {
    let (status, outcome) = match redis.get(id, want == Want::Result).await {
        Err(error) => return error.into_response(),
        Ok(None) => return missing_job(state, id),
        Ok(Some(found)) => found,
    };
    if want == Want::Status {
        return Json(status).into_response();
    }
    if want == Want::Video && status.get("kind").is_none() {
        return not_a_video(id);
    }
    match (outcome, want) {
        (Some(Err(error)), _) => error.into_response(),
        (Some(Ok(result)), _) => {
            ([(header::CONTENT_TYPE, "application/json")], result).into_response()
        }
        (None, Want::Video) if status["status"] == "done" => match redis.video(id).await {
            Ok(Some((length, body))) => video_response(length, body),
            Ok(None) => missing_job(state, id),
            Err(error) => error.into_response(),
        },
        (None, _) => (StatusCode::ACCEPTED, Json(status)).into_response(),
    }
}

fn video_response(length: u64, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, video_jobs::VIDEO_TYPE.to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response()
}

fn not_a_video(id: &str) -> Response {
    ApiError::not_found(format!(
        "job `{id}` ran a photo: its result is at /v1/jobs/{id}/result"
    ))
    .into_response()
}

/// The video file as the response body, streamed from disk; the file stays while the
/// download holds it even if the job expires meanwhile.
async fn video_file(video: Arc<StoredVideo>) -> Response {
    let file = match tokio::fs::File::open(&video.path).await {
        Ok(file) => file,
        Err(error) => return ApiError::internal(error).into_response(),
    };
    let length = video.bytes;
    let chunks = futures::stream::unfold((file, video), |(mut file, video)| async move {
        let mut buffer = vec![0u8; 256 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(bytes::Bytes::from(buffer)), (file, video)))
            }
            Err(error) => Some((Err(error), (file, video))),
        }
    });
    video_response(length, Body::from_stream(chunks))
}

fn missing_job(state: &AppState, id: &str) -> Response {
    ApiError::not_found(format!(
        "no job `{id}` (unknown, or its result expired after {} s)",
        state.config.result_ttl_secs
    ))
    .into_response()
}
