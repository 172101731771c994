//! Compatibility routes for clients of the parsing service percept replaces:
//! `POST /api/parse` (JSON base64 in, `{code, message, data}` out, the coloured mask served by
//! URL from memory for the result TTL), `POST /predict` (= `/v1/parse`), and
//! `GET /api/results/{id}.png`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Stored images by id, with the time they were stored.
type Entries = HashMap<String, (Instant, Arc<Vec<u8>>)>;

/// Result images held in memory for the result TTL, oldest dropped past a byte budget.
#[derive(Debug)]
pub(crate) struct ImageStore {
    ttl: Duration,
    max_bytes: usize,
    entries: Mutex<Entries>,
}

impl ImageStore {
    pub(crate) fn new(ttl: Duration, max_bytes: usize) -> Self {
        Self {
            ttl,
            max_bytes,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the map half-updated (every update is
        // one insert or remove), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn put(&self, bytes: Vec<u8>) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        let mut total: usize = entries.values().map(|(_, b)| b.len()).sum::<usize>() + bytes.len();
        while total > self.max_bytes {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((_, b)) = entries.remove(&oldest) {
                total -= b.len();
            }
        }
        entries.insert(id.clone(), (now, Arc::new(bytes)));
        id
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Vec<u8>>> {
        let entries = self.lock();
        let (at, bytes) = entries.get(id)?;
        (at.elapsed() < self.ttl).then(|| bytes.clone())
    }
}

/// `POST /api/parse`: `{"image": "<base64>"}` → `{"code": 0, "message": "success", "data":
/// {"colored_mask_url", "segments": [{label, confidence, pixel_count}], "person_count"}}`.
/// Errors keep percept's JSON error body and status (the old service's clients check `code`,
/// which is then absent, and the HTTP status).
pub(crate) async fn api_parse(
    State(state): State<Arc<AppState>>,
    mut request: Request,
) -> Response {
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    let response = crate::routes::dispatch_single(state.clone(), "parse", request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let bytes = match to_bytes(response.into_body(), usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let body: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let mask = body["mask"].as_str().unwrap_or_default().to_string();
    let coloured = match tokio::task::spawn_blocking(move || colour_png(&mask)).await {
        Ok(Ok(png)) => png,
        Ok(Err(e)) => return e.into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let id = state.images.put(coloured);
    let segments: Vec<Value> = body["segments"]
        .as_array()
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
    axum::Json(json!({
        "code": 0,
        "message": "success",
        "data": {
            "colored_mask_url": format!("/api/results/{id}.png"),
            "segments": segments,
            "person_count": body["person_count"],
        }
    }))
    .into_response()
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

/// `POST /predict`: the parse task under the old service's name.
pub(crate) async fn predict(State(state): State<Arc<AppState>>, request: Request) -> Response {
    crate::routes::dispatch_single(state, "parse", request).await
}

/// `GET /api/results/{id}.png`.
pub(crate) async fn result_image(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Response {
    let id = name.strip_suffix(".png").unwrap_or(&name);
    match state.images.get(id) {
        Some(bytes) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
            Body::from(bytes.as_ref().clone()),
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
    fn images_expire_and_the_budget_drops_the_oldest() {
        let store = ImageStore::new(Duration::from_millis(200), 10);
        let a = store.put(vec![1; 6]);
        let b = store.put(vec![2; 6]);
        assert!(store.get(&a).is_none(), "over budget: the oldest goes");
        assert_eq!(store.get(&b).unwrap().as_slice(), &[2; 6]);
        std::thread::sleep(Duration::from_millis(250));
        assert!(store.get(&b).is_none(), "expired");
        assert!(store.get("nope").is_none());
    }
}
