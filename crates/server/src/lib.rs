//! percept-server: the HTTP service.
//!
//! [`app`] builds the axum router over an [`AppState`]; [`serve`] runs it on a listener with
//! graceful shutdown. Requests are read by one extractor (multipart, raw image, JSON/base64),
//! validated, and run as [`Task`]s on a bounded [`WorkPool`] of blocking threads, so overload
//! answers `429 queue_full` at once instead of queueing without bound.

// Each module imports only from those it needs, never back: the route modules build on
// `request`, `reply` and `runner`; `runner` (the one run path) knows nothing of HTTP or job
// storage, so `redis_jobs` can use it without importing a route (ARCHITECTURE.md has the map).
mod cache;
mod compat;
mod config;
mod error;
mod extract;
mod image_store;
mod job_routes;
mod jobs;
mod metrics;
mod openapi;
mod pool;
mod redis_jobs;
mod reply;
mod request;
mod routes;
mod runner;
mod schemas;
mod service_routes;
mod state;
mod stream_routes;
mod task_routes;
mod upload;
mod video_jobs;
mod video_upload;

use std::future::Future;
use std::sync::Arc;

pub use config::{Config, ConfigError, Secret};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use extract::{BodyLimits, ImageInput, ImagePart, read_image_input};
pub use metrics::resident_memory_bytes;
pub use openapi::document as openapi_document;
pub use pool::{PoolError, Ran, WorkPool};
pub use routes::app;
pub use state::{AppState, ModelInfo};
// The task layer is its own crate (percept-tasks); these are the names the server's own API
// uses from it.
pub use percept_tasks::{Options, Task, TaskRegistry};

/// Serves `routes::metrics_app` on `listener` (the `metrics_addr` listener) until the process ends;
/// it holds no work, so shutdown needs no draining.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
) -> std::io::Result<()> {
    axum::serve(listener, routes::metrics_app(state)).await
}

/// Serves [`app`] on `listener` until `shutdown` resolves, then stops accepting, lets every
/// in-flight request finish, drains the work queue and joins the workers.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.start_background();
    let draining = Arc::clone(&state);
    // No Nagle delay: a stream's answer is a text message then a binary one, and the second
    // waited for the first one's ACK (~40 ms of delayed ACK on loopback, measured).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app(Arc::clone(&state)))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutdown requested: refusing new work, draining in-flight requests");
            draining.begin_shutdown();
        })
        .await?;
    let redis = state.redis_jobs();
    tokio::task::spawn_blocking(move || state.drain())
        .await
        .map_err(std::io::Error::other)?;
    if let Some(redis) = redis {
        // The pool has run every job; let their results reach Redis before exiting.
        redis.drain(std::time::Duration::from_secs(10)).await;
    }
    tracing::info!("drained; bye");
    Ok(())
}
