//! The service routes: health and readiness probes, metrics, the model and task lists, and
//! the model reload.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::{ApiError, ErrorCode};

#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive.", body = crate::schemas::Health)))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    summary = "Readiness: models loaded and warmed, not draining",
    responses(
        (status = 200, description = "Ready.", body = crate::schemas::Readiness),
        (status = 503, description = "Loading or shutting down.", body = crate::schemas::Readiness),
    ))]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.is_ready();
    let body = json!({
        "status": if ready { "ok" } else if state.is_shutting_down() { "shutting_down" } else { "loading" },
        "model_loaded": ready,
        "engine": state.engine,
        "models": state.models().len(),
        "reloads": state.reloads(),
        "workers": state.runner.pool.workers(),
        "queue_capacity": state.runner.pool.capacity(),
        "queued": state.runner.pool.queued(),
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
    let runner = &state.runner;
    let rendered = runner
        .metrics
        .render(&runner.pool, runner.cache.weighted_bytes());
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let (content_type, body) = crate::metrics::exposition(accept, rendered);
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[utoipa::path(get, path = "/v1/models", tag = "service", operation_id = "models",
    summary = "Models loaded, with sha256 and input shape",
    responses((status = 200, description = "Engine and models.", body = crate::schemas::ModelsResponse)))]
pub(crate) async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"engine": state.engine, "models": *state.models()}))
}

#[utoipa::path(get, path = "/v1/tasks", tag = "service", operation_id = "tasks",
    summary = "Tasks offered, with their options, and the upload limits",
    responses((status = 200, description = "Tasks, common options, limits.", body = crate::schemas::TasksResponse)))]
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
        "max_video_bytes": config.max_video_bytes,
        "max_video_seconds": config.max_video_seconds,
    });
    Json(json!({"tasks": tasks, "common_options": percept_tasks::COMMON_OPTIONS, "limits": limits}))
}

/// `POST /v1/admin/reload`: re-reads the manifest and swaps the models in (behind the API key
/// when one is set, like every route but health). In-flight requests finish on the old models.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "service", operation_id = "admin_reload",
    summary = "Re-read the manifest, load, verify and warm the models and swap them in atomically",
    description = "SIGHUP does the same; running requests finish on the old models.",
    responses(
        (status = 200, description = "Reloaded.", body = crate::schemas::ReloadResponse),
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
