//! Compatibility routes for clients of the parsing service percept replaces:
//! `POST /api/parse` (JSON base64 in, `{code, message, data}` out, the coloured mask served by
//! URL from memory for the result TTL), `POST /predict` (= `/v1/parse`), and
//! `GET /api/results/{id}.png`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::jobs::JobBackend;
use crate::reply::observed;
use crate::request::accept;
use crate::{ApiError, AppState};

/// `POST /api/parse`: `{"image": "<base64>"}` → `{"code": 0, "message": "success", "data":
/// {"colored_mask_url", "segments": [{label, confidence, pixel_count}], "person_count"}}`.
/// Errors keep percept's JSON error body and status (the old service's clients check `code`,
/// which is then absent, and the HTTP status).
pub(crate) async fn api_parse(
    State(state): State<Arc<AppState>>,
    mut request: Request,
) -> Response {
    let arrived = Instant::now();
    let base = public_base(&state.config, request.headers(), request.uri());
    // The JSON result (with the mask), whatever the client's `Accept` said.
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let outcome = parse_and_store(&state, request, arrived, &base).await;
    observed(&state, "parse", outcome, arrived)
}

async fn parse_and_store(
    state: &AppState,
    request: Request,
    arrived: Instant,
    base: &str,
) -> Result<Response, ApiError> {
    let deadline = arrived + state.config.deadline();
    let runner = &state.runner;
    let task = runner.task("parse")?;
    let (work, render) = accept(state, task.as_ref(), request, deadline)
        .await?
        .single("send several to /v1/batch/parse")?;
    let (executed, _, _) = runner.run_one(task.name(), work, render, deadline).await?;
    let body = executed.json;
    let mask = body
        .get("mask")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let coloured = tokio::task::spawn_blocking(move || colour_png(&mask))
        .await
        .map_err(ApiError::internal)??;
    let id = uuid::Uuid::new_v4().simple().to_string();
    // With Redis, any replica serves the image (behind a Service without session affinity the
    // fetch mostly reaches another pod); without, this process's memory.
    match &state.jobs {
        JobBackend::Redis(redis) => redis.put_result_image(&id, &coloured).await?,
        JobBackend::Memory(_) => state.images.put(id.clone(), coloured),
    }
    let segments: Vec<Value> = body
        .get("segments")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .map(|s| {
                    json!({
                        "label": s["label"],
                        "confidence": s["confidence"],
                        "pixel_count": s["pixel_count"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(axum::Json(json!({
        "code": 0,
        "message": "success",
        "data": {
            "colored_mask_url": format!("{base}/api/results/{id}.png"),
            "segments": segments,
            "person_count": body.get("person_count"),
        }
    }))
    .into_response())
}

/// The absolute base URL clients reach this service at, for the result URLs the services
/// percept replaces returned (their clients fetch them as they are): `public_url` when
/// configured, else the scheme and host the request came with (`X-Forwarded-Proto` and
/// `X-Forwarded-Host` behind a proxy or ingress, else `Host` or the URI's authority), else
/// the listen address.
pub(crate) fn public_base(
    config: &crate::Config,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
) -> String {
    if let Some(url) = &config.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let proto = match first("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    // Only host characters: the value goes into a URL the client will request.
    let valid = |host: &&str| {
        host.len() <= 255
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
            })
    };
    let host = first("x-forwarded-host")
        .filter(valid)
        .or_else(|| first("host").filter(valid))
        .or_else(|| uri.authority().map(|a| a.as_str()).filter(valid))
        .map_or_else(|| config.addr.to_string(), str::to_string);
    format!("{proto}://{host}")
}

/// The label-index PNG (base64) as a PNG in the palette's colours.
fn colour_png(mask_b64: &str) -> Result<Vec<u8>, ApiError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(mask_b64)
        .map_err(ApiError::internal)?;
    let labels = image::load_from_memory(&raw)
        .map_err(ApiError::internal)?
        .to_luma8();
    let coloured = percept_vision::parse::colour_mask(&labels);
    percept_core::encode(&coloured, percept_core::OutputFormat::Png).map_err(ApiError::internal)
}

/// `GET /api/results/{id}.png`.
#[utoipa::path(get, path = "/api/results/{name}", tag = "compatibility", operation_id = "compat_result_image",
    summary = "A coloured mask from /api/parse, held for the result TTL",
    params(("name" = String, Path, description = "`<id>.png`, as in `colored_mask_url`")),
    responses(
        (status = 200, description = "The PNG.", content_type = "image/png", body = Vec<u8>),
        (status = 404, description = "`not_found`: unknown or expired.", body = crate::error::ErrorBody),
    ))]
pub(crate) async fn result_image(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let id = name.strip_suffix(".png").unwrap_or(&name);
    let found = match &state.jobs {
        JobBackend::Redis(redis) => match redis.result_image(id).await {
            Ok(found) => found.map(bytes::Bytes::from),
            Err(error) => return error.into_response(),
        },
        JobBackend::Memory(_) => state.images.get(id),
    };
    match found {
        Some(bytes) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
            Body::from(bytes),
        )
            .into_response(),
        None => ApiError::not_found(format!(
            "no result `{id}` (unknown, or expired after {} s)",
            state.config.result_ttl_secs
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_urls_are_absolute_from_the_request_a_proxy_or_the_config() {
        let config = crate::Config::default();
        let uri: axum::http::Uri = "/api/parse".parse().unwrap();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                map.insert(*k, HeaderValue::from_static(v));
            }
            map
        };
        let base = |pairs, config: &crate::Config| public_base(config, &headers(pairs), &uri);
        assert_eq!(
            base(&[("host", "10.0.0.5:8080")], &config),
            "http://10.0.0.5:8080"
        );
        assert_eq!(
            base(
                &[
                    ("host", "10.0.0.5:8080"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "parse.example.com, proxy.internal"),
                ],
                &config
            ),
            "https://parse.example.com"
        );
        // A host that is not a host name falls back to the next source.
        assert_eq!(
            base(
                &[
                    ("host", "evil.com/\"><script>"),
                    ("x-forwarded-host", "a b")
                ],
                &config
            ),
            "http://127.0.0.1:8080"
        );
        let configured = crate::Config {
            public_url: Some("https://cv.example.org/percept/".into()),
            ..crate::Config::default()
        };
        assert_eq!(
            base(&[("host", "10.0.0.5")], &configured),
            "https://cv.example.org/percept"
        );
    }
}
