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

use crate::cache::{CacheKey, CacheStatus};
use crate::extract::read_image_input;
use crate::extract::{ImageInput, ImagePart};
use crate::jobs::JobBackend;
use crate::pool::PoolError;
use crate::pool::Ran;
use crate::state::AppState;
use crate::task::{Executed, PreparedJob, Render, Stages, Task};
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
        .route("/v1/admin/reload", post(admin_reload))
        .route("/v1/{*task}", post(task_route))
        .route("/v1/batch/{*task}", post(batch_route))
        .route("/v1/jobs/{*path}", post(submit_job_route).get(job_route))
        .route("/upload", post(crate::upload::upload))
        .route("/process", post(process))
        .route("/api/parse", post(crate::compat::api_parse))
        .route("/predict", post(crate::compat::predict))
        .route("/api/results/{name}", get(crate::compat::result_image))
        .route("/batch/parse", post(batch_parse))
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

#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive.", body = crate::openapi::schemas::Health)))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    summary = "Readiness: models loaded and warmed, not draining",
    responses(
        (status = 200, description = "Ready.", body = crate::openapi::schemas::Readiness),
        (status = 503, description = "Loading or shutting down.", body = crate::openapi::schemas::Readiness),
    ))]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.is_ready();
    let body = json!({
        "status": if ready { "ok" } else if state.is_shutting_down() { "shutting_down" } else { "loading" },
        "model_loaded": ready,
        "engine": state.engine,
        "models": state.models().len(),
        "reloads": state.reloads(),
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

/// The format follows `Accept`: OpenMetrics for Prometheus (which asks for it), the classic
/// text format otherwise; each with its own content type.
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "metrics",
    summary = "Prometheus metrics: percept_* and the standard process_* ones",
    responses((status = 200, description = "Text exposition (OpenMetrics when asked for).",
        content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let rendered = state
        .metrics
        .render(&state.pool, state.cache.weighted_bytes());
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let (content_type, body) = crate::metrics::exposition(accept, rendered);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[utoipa::path(get, path = "/v1/models", tag = "service", operation_id = "models",
    summary = "Models loaded, with sha256 and input shape",
    responses((status = 200, description = "Engine and models.", body = crate::openapi::schemas::ModelsResponse)))]
pub(crate) async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"engine": state.engine, "models": *state.models()}))
}

#[utoipa::path(get, path = "/v1/tasks", tag = "service", operation_id = "tasks",
    summary = "Tasks offered, with their options, and the upload limits",
    responses((status = 200, description = "Tasks, common options, limits.", body = crate::openapi::schemas::TasksResponse)))]
pub(crate) async fn tasks(State(state): State<Arc<AppState>>) -> Json<Value> {
    let tasks: Vec<Value> = state
        .tasks()
        .iter()
        .map(|t| json!({"name": t.name(), "summary": t.summary(), "options": t.options()}))
        .collect();
    // The upload limits, so clients (the page) can tell a user before sending a photo that
    // the server would refuse.
    let config = &state.config;
    let limits = json!({
        "max_body_bytes": config.max_body_bytes,
        "max_pixels": config.max_pixels,
        "max_side": config.max_side,
    });
    Json(json!({"tasks": tasks, "common_options": crate::task::COMMON_OPTIONS, "limits": limits}))
}

async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    match crate::openapi::document(&state.tasks()).to_json() {
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

/// `POST /v1/admin/reload`: re-reads the manifest and swaps the models in (behind the API key
/// when one is set, like every route but health). In-flight requests finish on the old models.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "service", operation_id = "admin_reload",
    summary = "Re-read the manifest, load, verify and warm the models and swap them in atomically",
    description = "SIGHUP does the same; running requests finish on the old models.",
    responses(
        (status = 200, description = "Reloaded.", body = crate::openapi::schemas::ReloadResponse),
        (status = 500, description = "`reload_failed`: refused, the old models keep serving; the message says why.",
            body = crate::error::ErrorBody),
    ))]
pub(crate) async fn admin_reload(State(state): State<Arc<AppState>>) -> Response {
    match state.clone().reload().await {
        Ok(report) => Json(json!({"status": "reloaded", "engine": state.engine, "models": report.models, "tasks": report.tasks, "ms": report.ms})).into_response(),
        Err(why) => ApiError::new(
            ErrorCode::ReloadFailed,
            format!("reload refused, the old models keep serving: {why}"),
        )
        .into_response(),
    }
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

/// `POST /batch/parse`: the parsing service percept replaces took its batches here; same
/// request and answer as `/v1/batch/parse`.
async fn batch_parse(State(state): State<Arc<AppState>>, request: Request) -> Response {
    dispatch(state, Kind::Batch, "parse".to_string(), request).await
}

async fn dispatch(state: Arc<AppState>, kind: Kind, name: String, request: Request) -> Response {
    let arrived = Instant::now();
    let Some(task) = state.tasks().get(&name) else {
        let error = ApiError::not_found(format!(
            "no task `{name}`; tasks: {}",
            state.tasks().names().join(", ")
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
                    | ErrorCode::Unavailable
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

/// A request read and validated: images, their prepared jobs, their cache keys, and how to
/// render results.
struct Accepted {
    images: Vec<ImagePart>,
    jobs: Vec<PreparedJob>,
    keys: Vec<Option<CacheKey>>,
    render: Render,
    /// The task's options once `format` and `quality` went into `render`.
    options: crate::Options,
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
    let keys = input
        .images
        .iter()
        .map(|image| {
            state
                .cache
                .key(task.name(), &options, render.format, &image.bytes)
        })
        .collect();
    Ok(Accepted {
        images: input.images,
        jobs,
        keys,
        render,
        options,
    })
}

type Single = (ImagePart, PreparedJob, Option<CacheKey>, Render);

impl Accepted {
    /// The one image, job and cache key of a single-image route; `several` says where to
    /// send more.
    fn single(self, several: &str) -> Result<Single, ApiError> {
        let count = self.images.len();
        match (
            <[_; 1]>::try_from(self.images),
            <[_; 1]>::try_from(self.jobs),
            <[_; 1]>::try_from(self.keys),
        ) {
            (Ok([image]), Ok([job]), Ok([key])) => Ok((image, job, key, self.render)),
            _ => Err(ApiError::bad_option(format!(
                "this route takes one image, got {count}; {several}"
            ))),
        }
    }
}

pub(crate) fn observe_stages(state: &AppState, task: &str, ran: Ran, executed: &Executed) {
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
    let (image, job, key, render) = accept(state, task.as_ref(), request, deadline)
        .await?
        .single(&format!("send several to /v1/batch/{}", task.name()))?;
    let (executed, ran, cache) =
        execute_one(state, task.as_ref(), image, job, key, render, deadline).await?;
    let mut response = respond(executed, render, ran.queued, ran.compute, arrived.elapsed());
    cache_header(response.headers_mut(), cache);
    Ok(response)
}

fn cache_header(headers: &mut HeaderMap, cache: CacheStatus) {
    if let Some(value) = cache.header() {
        headers.insert("x-cache", HeaderValue::from_static(value));
    }
}

/// The cached result for `key`, counting the lookup; `None` when the cache is off or misses.
pub(crate) fn cached(state: &AppState, key: Option<&CacheKey>) -> Option<Executed> {
    let key = key?;
    let found = state.cache.get(key);
    state.metrics.cache_lookup(found.is_some());
    // Nothing ran for this request: its timing headers show no stages.
    found.map(|executed| Executed {
        stages: Stages::default(),
        ..(*executed).clone()
    })
}

fn cache_status(state: &AppState, key: Option<&CacheKey>) -> CacheStatus {
    match key {
        Some(_) if state.cache.enabled() => CacheStatus::Miss,
        _ => CacheStatus::Off,
    }
}

/// Answers one prepared job from the result cache, or runs it on the pool within `deadline`
/// and caches its result under `key`.
pub(crate) async fn execute_one(
    state: &AppState,
    task: &dyn Task,
    image: ImagePart,
    job: PreparedJob,
    key: Option<CacheKey>,
    render: Render,
    deadline: Instant,
) -> Result<(Executed, Ran, CacheStatus), ApiError> {
    if let Some(executed) = cached(state, key.as_ref()) {
        let ran = Ran {
            queued: Duration::ZERO,
            compute: Duration::ZERO,
        };
        return Ok((executed, ran, CacheStatus::Hit));
    }
    let status = cache_status(state, key.as_ref());
    let limits = state.config.decode_limits();
    let cache = state.cache.clone();
    let pending = state
        .pool
        .submit(deadline, move || {
            cache.execute(key, job, &image.bytes, &limits, render)
        })
        .map_err(|e| pool_error(e, state))?;
    let (outcome, ran) = tokio::time::timeout_at(deadline.into(), pending)
        .await
        .map_err(|_| timeout_error(state))?
        .map_err(|e| pool_error(e, state))?;
    let executed = outcome?;
    observe_stages(state, task.name(), ran, &executed);
    Ok((executed, ran, status))
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
        keys,
        mut render,
        ..
    } = accept(state, task.as_ref(), request, deadline).await?;
    render.raw_image = false;
    let limits = state.config.decode_limits();
    let filenames: Vec<Option<String>> = images.iter().map(|i| i.filename.clone()).collect();
    // Every image is looked up first; only the misses take the queue slot.
    let mut outcomes: Vec<Option<Result<Executed, ApiError>>> = keys
        .iter()
        .map(|key| cached(state, key.as_ref()).map(Ok))
        .collect();
    let from_cache: Vec<bool> = outcomes.iter().map(Option::is_some).collect();
    let cache_status = match keys.first() {
        Some(key) if from_cache.iter().all(|&hit| hit) && key.is_some() => CacheStatus::Hit,
        key => cache_status(state, key.and_then(Option::as_ref)),
    };
    let work: Vec<_> = images
        .into_iter()
        .zip(jobs)
        .zip(keys)
        .enumerate()
        .filter(|(index, _)| !from_cache[*index])
        .collect();
    let mut ran = Ran {
        queued: Duration::ZERO,
        compute: Duration::ZERO,
    };
    if !work.is_empty() {
        let cache = state.cache.clone();
        let pending = state
            .pool
            .submit(deadline, move || {
                work.into_iter()
                    .map(|(index, ((image, job), key))| {
                        let outcome =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                cache.execute(key, job, &image.bytes, &limits, render)
                            }))
                            .unwrap_or_else(|_| Err(ApiError::internal("a batch item panicked")));
                        (index, outcome)
                    })
                    .collect::<Vec<_>>()
            })
            .map_err(|e| pool_error(e, state))?;
        let (computed, pool_ran) = tokio::time::timeout_at(deadline.into(), pending)
            .await
            .map_err(|_| timeout_error(state))?
            .map_err(|e| pool_error(e, state))?;
        ran = pool_ran;
        for (index, outcome) in computed {
            if let Some(slot) = outcomes.get_mut(index) {
                *slot = Some(outcome);
            }
        }
    }
    let mut succeeded = 0usize;
    let results: Vec<Value> = outcomes
        .into_iter()
        .zip(filenames)
        .enumerate()
        .map(|(index, (outcome, filename))| {
            match outcome.unwrap_or_else(|| Err(ApiError::internal("a batch item was never run"))) {
                Ok(executed) => {
                    succeeded += 1;
                    if !from_cache[index] {
                        observe_stages(state, task.name(), ran, &executed);
                    }
                    json!({"index": index, "filename": filename, "status": 200,
                       "result": executed.into_json()})
                }
                Err(error) => json!({"index": index, "filename": filename,
                                 "status": error.status().as_u16(), "error": error.body()}),
            }
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
    cache_header(response.headers_mut(), cache_status);
    Ok(response)
}

async fn submit_job(
    state: &Arc<AppState>,
    task: &Arc<dyn Task>,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let accepted = accept(state, task.as_ref(), request, deadline).await?;
    let jobs = match &state.jobs {
        JobBackend::Memory(jobs) => Arc::clone(jobs),
        JobBackend::Redis(redis) => {
            let options = accepted.options.clone();
            let (image, _, _, render) = accepted.single("submit one job per image")?;
            let id = redis
                .submit(task.name(), &options, render.format, &image.bytes)
                .await?;
            let body = json!({"id": id, "status": "queued",
                              "status_url": format!("/v1/jobs/{id}"),
                              "result_url": format!("/v1/jobs/{id}/result")});
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
    };
    let (image, job, key, mut render) = accepted.single("submit one job per image")?;
    render.raw_image = false;
    let id = jobs.create(task.name());
    let accepted = |cache: CacheStatus| {
        let body = json!({"id": id, "status": "queued",
                          "status_url": format!("/v1/jobs/{id}"),
                          "result_url": format!("/v1/jobs/{id}/result")});
        let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
        cache_header(response.headers_mut(), cache);
        response
    };
    if let Some(executed) = cached(state, key.as_ref()) {
        jobs.mark_running(&id);
        jobs.finish(&id, Ok(executed.into_json()));
        return Ok(accepted(CacheStatus::Hit));
    }
    let cache_status = cache_status(state, key.as_ref());
    let limits = state.config.decode_limits();
    let store = Arc::clone(&jobs);
    let job_id = id.clone();
    let cache = state.cache.clone();
    // The job's deadline runs from submission; a client does not hold a connection open.
    let job_deadline = Instant::now() + state.config.deadline();
    let pending = state
        .pool
        .submit(job_deadline, move || {
            store.mark_running(&job_id);
            cache.execute(key, job, &image.bytes, &limits, render)
        })
        .map_err(|e| {
            jobs.remove(&id);
            pool_error(e, state)
        })?;
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
    Ok(accepted(cache_status))
}

async fn job_route(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
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

pub(crate) fn pool_error(error: PoolError, state: &AppState) -> ApiError {
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
