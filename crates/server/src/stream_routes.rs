//! `GET /v1/stream/{task}`: a WebSocket for live video (a webcam). The client sends frames as
//! binary messages (JPEG or PNG); the server answers each frame it processes with a text
//! message, the task's JSON plus `frame` (the frame's number in the order received),
//! `dropped` (frames skipped so far) and `compute_ms`, and, for tasks that draw, a binary
//! message right after it with the processed frame as JPEG. Frames go through the task's video
//! job, so holistic follows people from frame to frame and smooths their points; anonymize
//! tracks faces without looking ahead (`track_frames` 0) unless asked, so no answer waits for
//! later frames.
//!
//! A client sending faster than the server runs is never queued behind: the newest frame
//! waiting replaces the one before it (counted in `dropped`), so the answer is always about
//! the latest picture. A bad frame is answered with an error message and the stream goes on.
//! Streams at once are bounded by `workers`; beyond that the upgrade is refused with
//! `429 queue_full`; a stream idle for a minute is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use percept_core::{OutputFormat, decode, encode};
use percept_tasks::{Options, TaskError, TaskOutput, VideoJob, video_job};
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::ApiError;
use crate::state::AppState;

/// The frame rate assumed for smoothing: webcams deliver about this many frames a second.
const STREAM_FRAME_RATE: f64 = 30.0;
/// A stream that sends no frame for this long is closed.
const IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// The subprotocol the stream answers with when the client offers it (the page does, beside
/// its key: routes.rs, `KEY_PROTOCOL_PREFIX`).
pub(crate) const STREAM_PROTOCOL: &str = "percept";
/// JPEG quality of the processed frames sent back.
const FRAME_QUALITY: u8 = 80;

/// Upgrades to a WebSocket running `task` with the query's options (checked first: a bad
/// option is a 422 before any frame).
pub(crate) async fn stream_route(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let task = match state.runner.task(&name) {
        Ok(task) => task,
        Err(error) => return error.into_response(),
    };
    let mut options = Options::new();
    for (key, value) in &query {
        options.insert_text(key, value);
    }
    // Live, an answer is due for every frame: no look-ahead unless the client asks for it.
    options.default_unless_given(task.options(), "track_frames", json!(0));
    let job = match video_job(task, options, STREAM_FRAME_RATE) {
        Ok(job) => job,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let Ok(permit) = Arc::clone(&state.streams).try_acquire_owned() else {
        return ApiError::queue_full(
            format!(
                "{} live streams are running, the most at once; retry later",
                state.config.workers
            ),
            5,
        )
        .into_response();
    };
    let max_frame = state.config.max_body_bytes;
    // A browser that offered its key as a subprotocol is answered with `percept`, which it
    // offers beside it: the key is never echoed, and a browser that offered subprotocols
    // refuses an answer without one.
    upgrade
        .protocols([STREAM_PROTOCOL])
        .max_message_size(max_frame)
        .on_upgrade(move |socket| serve(socket, job, state, permit))
}

/// The newest frame not yet taken, and how many were replaced before being run.
#[derive(Default)]
struct Latest {
    frame: Option<(u64, bytes::Bytes)>,
    dropped: u64,
    closed: bool,
}

async fn serve(
    socket: WebSocket,
    mut job: Box<dyn VideoJob>,
    state: Arc<AppState>,
    _permit: OwnedSemaphorePermit,
) {
    let (mut sender, mut receiver) = socket.split();
    let latest = Arc::new(std::sync::Mutex::new(Latest::default()));
    let arrived = Arc::new(Notify::new());
    // Reads as fast as the client sends, keeping only the newest frame.
    let reader = {
        let (latest, arrived) = (Arc::clone(&latest), Arc::clone(&arrived));
        tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(Ok(message)) = receiver.next().await {
                let bytes = match message {
                    Message::Binary(bytes) => bytes,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let mut slot = latest.lock().unwrap_or_else(|e| e.into_inner());
                if slot.frame.replace((count, bytes)).is_some() {
                    slot.dropped += 1;
                }
                count += 1;
                drop(slot);
                arrived.notify_one();
            }
            latest.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
            arrived.notify_one();
        })
    };
    let limits = state.config.decode_limits();
    loop {
        let (frame, dropped) = loop {
            let taken = {
                let mut slot = latest.lock().unwrap_or_else(|e| e.into_inner());
                (slot.frame.take(), slot.dropped, slot.closed)
            };
            match taken {
                (Some((index, bytes)), dropped, _) => break (Some((index, bytes)), dropped),
                (None, _, true) => break (None, 0),
                // A stream holds one of the few stream places: an idle one gives it back.
                (None, _, false) => {
                    if tokio::time::timeout(IDLE, arrived.notified())
                        .await
                        .is_err()
                    {
                        break (None, 0);
                    }
                }
            }
        };
        let Some((index, bytes)) = frame else {
            break;
        };
        let started = Instant::now();
        // The job moves to a blocking thread for the frame and comes back with its results.
        let ran = tokio::task::spawn_blocking(move || {
            let outcome: Result<Vec<Encoded>, TaskError> = decode(&bytes, &limits)
                .map_err(TaskError::from)
                .and_then(|decoded| {
                    // Live: nothing waits for a next frame that may never come.
                    let mut outputs = job.push(decoded.image)?;
                    outputs.extend(job.flush()?);
                    Ok(outputs)
                })
                .and_then(|outputs| outputs.into_iter().map(encoded).collect());
            (job, outcome)
        })
        .await;
        let Ok((returned, outcome)) = ran else {
            tracing::error!("a stream's frame panicked; closing the stream");
            break;
        };
        job = returned;
        let compute_ms = started.elapsed().as_secs_f64() * 1e3;
        let messages = match outcome {
            Ok(results) => results
                .into_iter()
                .flat_map(|(mut fields, image)| {
                    fields.insert("frame".into(), json!(index));
                    fields.insert("dropped".into(), json!(dropped));
                    fields.insert(
                        "compute_ms".into(),
                        json!((compute_ms * 10.0).round() / 10.0),
                    );
                    fields.insert("image".into(), json!(image.is_some()));
                    let text = Message::Text(Value::Object(fields).to_string().into());
                    std::iter::once(text).chain(image.map(|jpeg| Message::Binary(jpeg.into())))
                })
                .collect::<Vec<_>>(),
            Err(error) => {
                let api = ApiError::from(error);
                let mut body = serde_json::to_value(api.body()).unwrap_or_default();
                body["frame"] = json!(index);
                vec![Message::Text(body.to_string().into())]
            }
        };
        for message in messages {
            if sender.send(message).await.is_err() {
                reader.abort();
                return;
            }
        }
    }
    reader.abort();
    let _ = sender.close().await;
}

/// A frame's JSON and its image as JPEG.
type Encoded = (serde_json::Map<String, Value>, Option<Vec<u8>>);

/// `output` with its image encoded as JPEG.
fn encoded(output: TaskOutput) -> Result<Encoded, TaskError> {
    let image = output
        .image
        .as_ref()
        .map(|image| {
            encode(
                image,
                OutputFormat::Jpeg {
                    quality: FRAME_QUALITY,
                },
            )
        })
        .transpose()?;
    Ok((output.json, image))
}
