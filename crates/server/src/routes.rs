use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::extract::read_image_input;
use crate::extract::{ImageInput, ImagePart};
use crate::pool::PoolError;
use crate::pool::Ran;
use crate::state::AppState;
use crate::task::{Executed, PreparedJob, Render, Stages, Task, execute};
use crate::{ApiError, ErrorCode};

/// The whole HTTP surface over `state`, without a socket, so tests can drive it directly.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    let open = Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/style.css", get(style_css))
        .route("/healthz", get(healthz))
        .route("/health", get(healthz))
        .route("/readyz", get(readyz));
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/v1/tasks", get(tasks))
        .route("/openapi.json", get(openapi))
        .route("/v1/{*task}", post(task_route))
        .route("/v1/batch/{*task}", post(batch_route))
        .route("/v1/jobs/{*path}", post(submit_job_route).get(job_route))
        .route("/upload", post(crate::upload::upload))
        .route("/process", post(process))
        .route("/api/parse", post(crate::compat::api_parse))
        .route("/predict", post(crate::compat::predict))
        .route("/api/results/{name}", get(crate::compat::result_image))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            require_api_key,
        ));
    open.merge(guarded)
        .fallback(|| async { ApiError::not_found("no such route; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            )
        })
        // The extractor enforces the configured limit itself (so it can answer in JSON);
        // disable axum's fixed 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a request handler panicked").into_response()
            },
        ))
        .with_state(state)
}

/// With `api_key` configured, lets a request through only with `Authorization: Bearer <key>`
/// or `x-api-key: <key>`.
async fn require_api_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(key) = &state.config.api_key else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    if offered.is_some_and(|candidate| key.matches(candidate.trim())) {
        return next.run(request).await;
    }
    let mut response = ApiError::new(
        ErrorCode::Unauthorized,
        "this server needs an API key: send `Authorization: Bearer <key>`",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"percept\""),
    );
    response
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../../../web/index.html"))
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../../web/app.js"),
    )
        .into_response()
}

async fn style_css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../web/style.css"),
    )
        .into_response()
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.is_ready();
    let body = json!({
        "status": if ready { "ok" } else if state.is_shutting_down() { "shutting_down" } else { "loading" },
        "model_loaded": ready,
        "engine": state.engine,
        "models": state.models.len(),
        "workers": state.pool.workers(),
        "queue_capacity": state.pool.capacity(),
        "queued": state.pool.queued(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&state.pool),
    )
        .into_response()
}

async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"engine": state.engine, "models": state.models}))
}

async fn tasks(State(state): State<Arc<AppState>>) -> Json<Value> {
    let tasks: Vec<Value> = state
        .tasks
        .iter()
        .map(|t| json!({"name": t.name(), "summary": t.summary(), "options": t.options()}))
        .collect();
    Json(json!({"tasks": tasks, "common_options": crate::task::COMMON_OPTIONS}))
}

async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    match crate::openapi::document(&state.tasks).to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Single,
    Batch,
    Job,
}

async fn task_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    dispatch(state, Kind::Single, name, request).await
}

async fn batch_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    dispatch(state, Kind::Batch, name, request).await
}

async fn submit_job_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    dispatch(state, Kind::Job, name, request).await
}

/// `POST /process`: the anonymiser service percept replaces took a multipart `image` and
/// answered with the anonymised JPEG itself.
async fn process(State(state): State<Arc<AppState>>, mut request: Request) -> Response {
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("image/jpeg"));
    dispatch(state, Kind::Single, "anonymize".to_string(), request).await
}

/// One image through the task called `name`, as `POST /v1/{name}` would (compatibility routes).
pub(crate) async fn dispatch_single(
    state: Arc<AppState>,
    name: &str,
    request: Request,
) -> Response {
    dispatch(state, Kind::Single, name.to_string(), request).await
}

async fn dispatch(state: Arc<AppState>, kind: Kind, name: String, request: Request) -> Response {
    let arrived = Instant::now();
    let Some(task) = state.tasks.get(&name) else {
        let error = ApiError::not_found(format!(
            "no task `{name}`; tasks: {}",
            state.tasks.names().join(", ")
        ));
        state
            .metrics
            .observe_request("unknown", error.status().as_u16(), arrived.elapsed());
        return error.into_response();
    };
    let outcome = match kind {
        Kind::Single => run_single(&state, &task, request, arrived).await,
        Kind::Batch => run_batch(&state, &task, request, arrived).await,
        Kind::Job => submit_job(&state, &task, request, arrived).await,
    };
    let response = match outcome {
        Ok(response) => response,
        Err(error) => {
            if matches!(
                error.code,
                ErrorCode::QueueFull
                    | ErrorCode::Timeout
                    | ErrorCode::ShuttingDown
                    | ErrorCode::PayloadTooLarge
            ) {
                state.metrics.reject(error.code.as_str());
            }
            error.into_response()
        }
    };
    let label = match kind {
        Kind::Single => task.name().to_string(),
        Kind::Batch => format!("batch/{}", task.name()),
        Kind::Job => format!("jobs/{}", task.name()),
    };
    state
        .metrics
        .observe_request(&label, response.status().as_u16(), arrived.elapsed());
    response
}

pub(crate) fn timeout_error(state: &AppState) -> ApiError {
    ApiError::new(
        ErrorCode::Timeout,
        format!(
            "the request did not finish within {} ms",
            state.config.deadline_ms
        ),
    )
}

/// Reads a task request's images and options within `deadline`, unless the server is
/// draining.
pub(crate) async fn read_request(
    state: &AppState,
    request: Request,
    deadline: Instant,
) -> Result<(axum::http::request::Parts, ImageInput), ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    let (parts, body) = request.into_parts();
    let input = tokio::time::timeout_at(
        deadline.into(),
        read_image_input(&parts.headers, parts.uri.query(), body, state.body_limits()),
    )
    .await
    .map_err(|_| timeout_error(state))??;
    Ok((parts, input))
}

/// A request read and validated: images, their prepared jobs, and how to render results.
struct Accepted {
    images: Vec<ImagePart>,
    jobs: Vec<PreparedJob>,
    render: Render,
}

async fn accept(
    state: &AppState,
    task: &dyn Task,
    request: Request,
    deadline: Instant,
) -> Result<Accepted, ApiError> {
    let (parts, input) = read_request(state, request, deadline).await?;
    let mut options = input.options;
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let render = Render::from_request(accept, &mut options)?;
    // Each image needs its own job; options are validated by the first `prepare`.
    let jobs = input
        .images
        .iter()
        .map(|_| task.prepare(options.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Accepted {
        images: input.images,
        jobs,
        render,
    })
}

impl Accepted {
    /// The one image and job of a single-image route; `several` says where to send more.
    fn single(self, several: &str) -> Result<(ImagePart, PreparedJob, Render), ApiError> {
        let count = self.images.len();
        match (
            <[_; 1]>::try_from(self.images),
            <[_; 1]>::try_from(self.jobs),
        ) {
            (Ok([image]), Ok([job])) => Ok((image, job, self.render)),
            _ => Err(ApiError::bad_option(format!(
                "this route takes one image, got {count}; {several}"
            ))),
        }
    }
}

fn observe_stages(state: &AppState, task: &str, ran: Ran, executed: &Executed) {
    state.metrics.observe_stage(task, "queue", ran.queued);
    for (stage, duration) in executed.stages.iter() {
        state.metrics.observe_stage(task, stage, duration);
    }
}

async fn run_single(
    state: &Arc<AppState>,
    task: &Arc<dyn Task>,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let (image, job, render) = accept(state, task.as_ref(), request, deadline)
        .await?
        .single(&format!("send several to /v1/batch/{}", task.name()))?;
    let (executed, ran) = execute_one(state, task.as_ref(), image, job, render, deadline).await?;
    Ok(respond(
        executed,
        render,
        ran.queued,
        ran.compute,
        arrived.elapsed(),
    ))
}

/// Runs one prepared job on the pool within `deadline`.
pub(crate) async fn execute_one(
    state: &AppState,
    task: &dyn Task,
    image: ImagePart,
    job: PreparedJob,
    render: Render,
    deadline: Instant,
) -> Result<(Executed, Ran), ApiError> {
    let limits = state.config.decode_limits();
    let pending = state
        .pool
        .submit(deadline, move || {
            execute(job, &image.bytes, &limits, render)
        })
        .map_err(|e| pool_error(e, state))?;
    let (outcome, ran) = tokio::time::timeout_at(deadline.into(), pending)
        .await
        .map_err(|_| timeout_error(state))?
        .map_err(|e| pool_error(e, state))?;
    let executed = outcome?;
    observe_stages(state, task.name(), ran, &executed);
    Ok((executed, ran))
}

/// Runs every image of a batch in one queue slot, one after the other, each under its own
/// panic guard, so one bad image gives an error in its slot and does not fail the rest.
async fn run_batch(
    state: &Arc<AppState>,
    task: &Arc<dyn Task>,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let Accepted {
        images,
        jobs,
        mut render,
    } = accept(state, task.as_ref(), request, deadline).await?;
    render.raw_image = false;
    let limits = state.config.decode_limits();
    let filenames: Vec<Option<String>> = images.iter().map(|i| i.filename.clone()).collect();
    let pending = state
        .pool
        .submit(deadline, move || {
            images
                .into_iter()
                .zip(jobs)
                .map(|(image, job)| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        execute(job, &image.bytes, &limits, render)
                    }))
                    .unwrap_or_else(|_| Err(ApiError::internal("a batch item panicked")))
                })
                .collect::<Vec<_>>()
        })
        .map_err(|e| pool_error(e, state))?;
    let (outcomes, ran) = tokio::time::timeout_at(deadline.into(), pending)
        .await
        .map_err(|_| timeout_error(state))?
        .map_err(|e| pool_error(e, state))?;
    let mut succeeded = 0usize;
    let results: Vec<Value> = outcomes
        .into_iter()
        .zip(filenames)
        .enumerate()
        .map(|(index, (outcome, filename))| match outcome {
            Ok(executed) => {
                succeeded += 1;
                observe_stages(state, task.name(), ran, &executed);
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
    Ok(response)
}

async fn submit_job(
    state: &Arc<AppState>,
    task: &Arc<dyn Task>,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let (image, job, mut render) = accept(state, task.as_ref(), request, deadline)
        .await?
        .single("submit one job per image")?;
    render.raw_image = false;
    let id = state.jobs.create(task.name());
    let limits = state.config.decode_limits();
    let jobs = Arc::clone(&state.jobs);
    let job_id = id.clone();
    // The job's deadline runs from submission; a client does not hold a connection open.
    let job_deadline = Instant::now() + state.config.deadline();
    let pending = state
        .pool
        .submit(job_deadline, move || {
            jobs.mark_running(&job_id);
            execute(job, &image.bytes, &limits, render)
        })
        .map_err(|e| {
            state.jobs.remove(&id);
            pool_error(e, state)
        })?;
    let jobs = Arc::clone(&state.jobs);
    let job_id = id.clone();
    let background = Arc::clone(state);
    let task_name = task.name().to_string();
    tokio::spawn(async move {
        let outcome = match pending.await {
            Ok((Ok(executed), ran)) => {
                observe_stages(&background, &task_name, ran, &executed);
                Ok(executed.into_json())
            }
            Ok((Err(error), _)) => Err(error),
            Err(error) => Err(pool_error(error, &background)),
        };
        jobs.finish(&job_id, outcome);
    });
    let body = json!({"id": id, "status": "queued",
                      "status_url": format!("/v1/jobs/{id}"),
                      "result_url": format!("/v1/jobs/{id}/result")});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn job_route(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    let (id, want_result) = match path.split_once('/') {
        Some((id, "result")) => (id, true),
        None => (path.as_str(), false),
        Some(_) => return ApiError::not_found("no such job route").into_response(),
    };
    let Some(view) = state.jobs.get(id) else {
        return ApiError::not_found(format!(
            "no job `{id}` (unknown, or its result expired after {} s)",
            state.config.result_ttl_secs
        ))
        .into_response();
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

fn pool_error(error: PoolError, state: &AppState) -> ApiError {
    match error {
        PoolError::QueueFull { capacity } => ApiError {
            code: ErrorCode::QueueFull,
            message: format!(
                "all {} workers are busy and {capacity} requests are waiting; retry shortly",
                state.pool.workers()
            ),
            retry_after: Some(1),
        },
        PoolError::Expired => ApiError::new(
            ErrorCode::Timeout,
            "the deadline passed while the request waited in the queue",
        ),
        PoolError::ShuttingDown => {
            ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down")
        }
        PoolError::Panicked(message) => ApiError::internal(format!("a job panicked: {message}")),
    }
}

fn millis(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn timing_headers(
    headers: &mut HeaderMap,
    queued: Duration,
    compute: Duration,
    total: Duration,
    stages: Option<&Stages>,
) {
    let mut server_timing = vec![format!("queue;dur={}", millis(queued))];
    if let Some(stages) = stages {
        server_timing.extend(stages.iter().map(|(s, d)| format!("{s};dur={}", millis(d))));
    }
    for (name, value) in [
        ("x-queue-time", millis(queued)),
        ("x-compute-time", millis(compute)),
        ("x-total-time", millis(total)),
        ("server-timing", server_timing.join(", ")),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

fn respond(
    executed: Executed,
    render: Render,
    queued: Duration,
    compute: Duration,
    total: Duration,
) -> Response {
    let stages = executed.stages.clone();
    let mut response = match (&executed.image, render.raw_image) {
        (Some(_), true) => {
            let mime = executed.format.mime();
            let image = executed.image.unwrap_or_default();
            ([(header::CONTENT_TYPE, mime)], image).into_response()
        }
        _ => Json(executed.into_json()).into_response(),
    };
    timing_headers(
        response.headers_mut(),
        queued,
        compute,
        total,
        Some(&stages),
    );
    response
}
