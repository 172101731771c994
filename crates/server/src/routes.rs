//! The router: which handler serves which path, the API key guard, the page and its assets,
//! and the layers every request passes (body limit, tracing, panic guard).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::job_routes::{cancel_job, job_route};
use crate::service_routes::{admin_reload, healthz, metrics, models, readyz, tasks};
use crate::state::AppState;
use crate::task_routes::{
    batch_parse, batch_route, predict, process, submit_job_route, task_route,
};
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
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/v1/admin/reload", post(admin_reload))
        .route("/v1/{*task}", post(task_route))
        .route("/v1/batch/{*task}", post(batch_route))
        .route(
            "/v1/jobs/{*path}",
            post(submit_job_route).get(job_route).delete(cancel_job),
        )
        .route(
            "/v1/stream/{*task}",
            get(crate::stream_routes::stream_route),
        )
        .route("/upload", post(crate::upload::upload))
        .route("/process", post(process))
        .route("/api/parse", post(crate::compat::api_parse))
        .route("/predict", post(predict))
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
        // The extractors enforce the configured limits themselves (so they can answer in
        // JSON): `max_body_bytes`, and `max_video_bytes` for a video sent to the job route,
        // which reads the body as a stream this layer does not limit. Disable axum's fixed
        // 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::internal("a request handler panicked").into_response()
            },
        ))
        .with_state(state)
}

/// The metrics listener's surface (`metrics_addr`): `GET /metrics` and nothing else, with no
/// API key, for a Prometheus that scrapes pods directly. Everything else answers 404, so the
/// port exposes no task even when it is reachable by mistake.
pub fn metrics_app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("this listener serves only GET /metrics") })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The WebSocket subprotocol a browser offers its key in: `percept.bearer.` and the key's UTF-8
/// bytes as hex. A browser cannot set headers on a WebSocket's opening request, only offer
/// subprotocols, so the key rides in `Sec-WebSocket-Protocol`, as Kubernetes' API server takes
/// a bearer token (`base64url.bearer.authorization.k8s.io.<token>`); hex because a subprotocol
/// must be an HTTP token and a key may hold any character.
pub(crate) const KEY_PROTOCOL_PREFIX: &str = "percept.bearer.";

/// The key a WebSocket request offers as a `percept.bearer.<hex>` subprotocol.
fn key_in_protocols(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(KEY_PROTOCOL_PREFIX))
        .and_then(|hex| hex::decode(hex).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// With `api_key` configured, lets a request through only with `Authorization: Bearer <key>`
/// or `x-api-key: <key>` (or, opening a WebSocket, the `percept.bearer.<hex>` subprotocol).
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
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::to_owned)
        .or_else(|| key_in_protocols(headers));
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
