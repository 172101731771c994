//! Async jobs: `POST /v1/jobs/{task}` queues one image and answers 202 with the job's URLs;
//! `GET /v1/jobs/{id}` and `/v1/jobs/{id}/result` report it. Jobs live in this process's
//! memory or, with `redis_url`, in Redis where any replica runs and reports them.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ApiError;
use crate::cache::CacheStatus;
use crate::jobs::JobBackend;
use crate::reply::cache_header;
use crate::request::accept;
use crate::runner::{Runner, Started};
use crate::state::AppState;
use percept_tasks::Task;

/// The 202 answer to a submitted job.
fn queued(id: &str, cache: CacheStatus) -> Response {
    let body = json!({"id": id, "status": "queued",
                      "status_url": format!("/v1/jobs/{id}"),
                      "result_url": format!("/v1/jobs/{id}/result")});
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    cache_header(response.headers_mut(), cache);
    response
}

/// Queues one image as a job (the request's own deadline only covers reading it).
pub(crate) async fn submit_job(
    state: &Arc<AppState>,
    task: &dyn Task,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let accepted = accept(state, task, request, deadline).await?;
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

/// The job's one result as its stored JSON.
async fn outcome(runner: &Runner, started: Started) -> Result<Value, ApiError> {
    let (executed, _) = runner.finish_one(started, None).await?;
    Ok(executed.into_json())
}

pub(crate) async fn job_route(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Response {
    let (id, want_result) = match path.split_once('/') {
        Some((id, "result")) => (id, true),
        None => (path.as_str(), false),
        Some(_) => return ApiError::not_found("no such job route").into_response(),
    };
    let jobs = match &state.jobs {
        JobBackend::Memory(jobs) => jobs,
        JobBackend::Redis(redis) => {
            return match redis.get(id, want_result).await {
                Err(error) => error.into_response(),
                Ok(None) => missing_job(&state, id),
                Ok(Some((status, None))) if want_result => {
                    (StatusCode::ACCEPTED, Json(status)).into_response()
                }
                Ok(Some((status, None))) => Json(status).into_response(),
                Ok(Some((status, Some(outcome)))) => match (want_result, outcome) {
                    (false, _) => Json(status).into_response(),
                    (true, Err(error)) => error.into_response(),
                    (true, Ok(result)) => {
                        ([(header::CONTENT_TYPE, "application/json")], result).into_response()
                    }
                },
            };
        }
    };
    let Some(view) = jobs.get(id) else {
        return missing_job(&state, id);
    };
    if !want_result {
        return Json(view.status_json()).into_response();
    }
    match view.outcome {
        None => (StatusCode::ACCEPTED, Json(view.status_json())).into_response(),
        Some(Ok(result)) => Json(result).into_response(),
        Some(Err(error)) => error.into_response(),
    }
}

fn missing_job(state: &AppState, id: &str) -> Response {
    ApiError::not_found(format!(
        "no job `{id}` (unknown, or its result expired after {} s)",
        state.config.result_ttl_secs
    ))
    .into_response()
}
