use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::extract::read_image_input;
use crate::pool::PoolError;
use crate::state::AppState;
use crate::task::{Executed, Render, Task, execute};
use crate::{ApiError, ErrorCode};

/// The whole HTTP surface over `state`, without a socket, so tests can drive it directly.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/health", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models))
        .route("/openapi.json", get(openapi))
        .route("/v1/{*task}", post(task_route))
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

async fn index() -> Html<&'static str> {
    Html(include_str!("../../../web/index.html"))
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

async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    match crate::openapi::document(&state.tasks).to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn task_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
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
    let response = match run_task(&state, task.as_ref(), request, arrived).await {
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
    state
        .metrics
        .observe_request(task.name(), response.status().as_u16(), arrived.elapsed());
    response
}

async fn run_task(
    state: &Arc<AppState>,
    task: &dyn Task,
    request: Request,
    arrived: Instant,
) -> Result<Response, ApiError> {
    if state.is_shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    let deadline = arrived + state.config.deadline();
    let timeout = || {
        ApiError::new(
            ErrorCode::Timeout,
            format!(
                "the request did not finish within {} ms",
                state.config.deadline_ms
            ),
        )
    };
    let (parts, body) = request.into_parts();
    let input = tokio::time::timeout_at(
        deadline.into(),
        read_image_input(&parts.headers, parts.uri.query(), body, state.body_limits()),
    )
    .await
    .map_err(|_| timeout())??;
    let mut options = input.options;
    let [image] = <[_; 1]>::try_from(input.images).map_err(|images: Vec<_>| {
        ApiError::bad_option(format!(
            "this route takes one image, got {}; send several to /v1/batch/{}",
            images.len(),
            task.name()
        ))
    })?;
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let render = Render::from_request(accept, &mut options)?;
    let job = task.prepare(options)?;
    let limits = state.config.decode_limits();
    let pending = state
        .pool
        .submit(deadline, move || {
            execute(job, &image.bytes, &limits, render)
        })
        .map_err(|e| pool_error(e, state))?;
    let (outcome, ran) = tokio::time::timeout_at(deadline.into(), pending)
        .await
        .map_err(|_| timeout())?
        .map_err(|e| pool_error(e, state))?;
    let executed = outcome?;
    state
        .metrics
        .observe_stage(task.name(), "queue", ran.queued);
    for (stage, duration) in executed.stages.iter() {
        state.metrics.observe_stage(task.name(), stage, duration);
    }
    Ok(respond(
        executed,
        render,
        ran.queued,
        ran.compute,
        arrived.elapsed(),
    ))
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

fn respond(
    executed: Executed,
    render: Render,
    queued: Duration,
    compute: Duration,
    total: Duration,
) -> Response {
    let mut server_timing = vec![format!("queue;dur={}", millis(queued))];
    server_timing.extend(
        executed
            .stages
            .iter()
            .map(|(s, d)| format!("{s};dur={}", millis(d))),
    );
    let mut response = match (executed.image, render.raw_image) {
        (Some(image), true) => {
            ([(header::CONTENT_TYPE, executed.format.mime())], image).into_response()
        }
        (image, _) => {
            let mut json = executed.json;
            if let Some(image) = image {
                json.insert(
                    "image".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(image)),
                );
                json.insert(
                    "image_format".into(),
                    Value::String(executed.format.extension().into()),
                );
            }
            Json(Value::Object(json)).into_response()
        }
    };
    let headers: &mut HeaderMap = response.headers_mut();
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
    response
}
