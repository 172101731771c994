//! From a result to an HTTP response: the image or JSON body, the timing and cache headers,
//! and the request metrics every task route records.

use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::cache::CacheStatus;
use crate::state::AppState;
use crate::{ApiError, ErrorCode};
use percept_tasks::{Executed, Render, Stages};

/// The response for `outcome`, counted under `label` (rejections also by their reason).
pub(crate) fn observed(
    state: &AppState,
    label: &str,
    outcome: Result<Response, ApiError>,
    arrived: Instant,
) -> Response {
    let metrics = &state.runner.metrics;
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
                metrics.reject(error.code.as_str());
            }
            error.into_response()
        }
    };
    metrics.observe_request(label, response.status().as_u16(), arrived.elapsed());
    response
}

/// `x-cache: hit|miss` when the cache is on.
pub(crate) fn cache_header(headers: &mut HeaderMap, cache: CacheStatus) {
    if let Some(value) = cache.header() {
        headers.insert("x-cache", HeaderValue::from_static(value));
    }
}

fn millis(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// `x-queue-time`, `x-compute-time`, `x-total-time` and `server-timing` (with the stages).
pub(crate) fn timing_headers(
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

/// The image itself when the client asked for it, else the JSON body; with timing headers.
pub(crate) fn respond(
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
