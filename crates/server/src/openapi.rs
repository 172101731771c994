//! `GET /openapi.json`: the service routes from their handlers' `#[utoipa::path]`, the
//! results, request bodies and errors from `ToSchema` types ([`crate::schemas`]), and one path per
//! registered task (`/v1/{task}`, `/v1/batch/{task}`, `/v1/jobs/{task}`) with its options as
//! query parameters, from the same `OptionSpec` tables `/v1/tasks` and the CLI show
//! (type, bounds, default and choices in each parameter's schema).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::ApiError;
use crate::TaskRegistry;
use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::schemas::*;
use crate::state::{AppState, ModelInfo};
use percept_tasks::InspectResult;
use percept_tasks::{COMMON_OPTIONS, OptionKind, Task};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "percept",
        description = "Offline, CPU-first computer vision on photos of people: human parsing, face \
                       privacy, art filters, holistic landmarks.\n\nWhen the server has an API key \
                       (`api_key` / `PERCEPT_API_KEY`), every route but the page, its assets and \
                       the health probes needs `Authorization: Bearer <key>` (or `x-api-key`; \
                       opening `/v1/stream/{task}`, a browser offers it as the WebSocket \
                       subprotocol `percept.bearer.<the key's UTF-8 as hex>` beside `percept`)."
    ),
    paths(
        crate::service_routes::healthz,
        crate::service_routes::readyz,
        crate::service_routes::metrics,
        crate::service_routes::models,
        crate::service_routes::tasks,
        crate::service_routes::admin_reload,
        crate::compat::result_image,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        ErrorCode,
        ModelInfo,
        InspectResult,
        ParseResult,
        ParsedPerson,
        Segment,
        PaletteEntry,
        PixelBox,
        PersonSeed,
        ImageFormat,
        AnonymizeResult,
        Face,
        BBox,
        Point,
        Detector,
        HolisticResult,
        HolisticPerson,
        Landmark,
        Parts,
        PartInfo,
        Roi,
        PersonBox,
        ArtResult,
        TaskResult,
        BatchResponse,
        BatchItem,
        JobAccepted,
        JobStatus,
        JobState,
        JobKind,
        JobProgress,
        FrameCount,
        FrameCounts,
        VideoJobResult,
        ApiParseRequest,
        ApiParseResponse,
        ApiParseData,
        ApiParseSegment,
        ImageUpload,
        ImageJson,
        ImagesUpload,
        ImagesJson,
        Health,
        Readiness,
        ModelsResponse,
        TasksResponse,
        TaskInfo,
        OptionInfo,
        Limits,
        ReloadResponse,
    ))
)]
struct Base;

/// The routes open without the API key (everything else takes the bearer scheme).
const OPEN_PATHS: &[&str] = &["/healthz", "/health", "/readyz"];

/// The response headers every task answer carries.
fn timing_headers() -> Value {
    let ms = |description: &str| json!({"description": description, "schema": {"type": "string", "example": "12.345"}});
    json!({
        "x-queue-time": ms("Milliseconds waiting for a worker."),
        "x-compute-time": ms("Milliseconds of work on the worker."),
        "x-total-time": ms("Milliseconds from arrival to answer."),
        "server-timing": {"description": "The same as `queue;dur=…` plus one entry per stage (decode, detect, encode…), for browser dev tools.",
                          "schema": {"type": "string"}},
        "x-cache": {"description": "`hit` (answered from the result cache) or `miss`; absent when the cache is off.",
                    "schema": {"type": "string", "enum": ["hit", "miss"]}},
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn response_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// The shared error answers, each `ErrorBody` with the codes it can carry.
fn error_responses() -> Value {
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": schema_ref("ErrorBody")}}})
    };
    let mut queue_full = error("`queue_full`: every worker is busy and the queue is full.");
    queue_full["headers"] = json!({"retry-after": {"description": "Seconds to wait before retrying.",
                                                    "schema": {"type": "integer"}}});
    let mut unauthorized =
        error("`unauthorized`: the server has an API key and the request did not carry it.");
    unauthorized["headers"] = json!({"www-authenticate": {"description": "`Bearer realm=\"percept\"`",
                                                          "schema": {"type": "string"}}});
    json!({
        "InvalidImage": error("`invalid_image`: empty, truncated, corrupt or unknown image, no image field, bad base64; `invalid_video`: a video FFmpeg cannot read (jobs)."),
        "Unauthorized": unauthorized,
        "NotFound": error("`not_found`: no such route, task, job or result."),
        "MethodNotAllowed": error("`method_not_allowed`: the route does not take that method."),
        "PayloadTooLarge": error("`payload_too_large` (bytes over `max_body_bytes`, a video job's over `max_video_bytes`), `image_too_large` (pixels over `max_pixels` or a side over `max_side`, a video's frames included) or `video_too_large` (a video longer than `max_video_seconds`, or its output larger than the job store keeps)."),
        "VideoUnsupported": error("`video_unsupported`: video needs FFmpeg (Debian's `ffmpeg` package), which the server lacks; photos work without it."),
        "UnsupportedMediaType": error("`unsupported_media_type`: send multipart/form-data, a raw image/* body, or JSON."),
        "BadOption": error("`bad_option`: unknown option, wrong type or value out of range."),
        "QueueFull": queue_full,
        "Unavailable": error("`timeout`, `shutting_down`, or `unavailable` (the Redis job store cannot be reached)."),
        "Internal": error("`internal`: a bug or an internal failure (details in the server log)."),
    })
}

/// The error responses of a route that reads an image.
fn image_errors() -> Value {
    json!({
        "400": response_ref("InvalidImage"),
        "413": response_ref("PayloadTooLarge"),
        "415": response_ref("UnsupportedMediaType"),
        "422": response_ref("BadOption"),
        "429": response_ref("QueueFull"),
        "500": response_ref("Internal"),
        "503": response_ref("Unavailable"),
    })
}

/// A request body with one image (`single`) or several.
fn image_body(single: bool) -> Value {
    let binary = json!({"schema": {"type": "string", "format": "binary"}});
    let (multipart, json_body) = if single {
        ("ImageUpload", "ImageJson")
    } else {
        ("ImagesUpload", "ImagesJson")
    };
    let mut content = json!({
        "multipart/form-data": {"schema": schema_ref(multipart)},
        "application/json": {"schema": schema_ref(json_body)},
    });
    if single {
        for mime in [
            "image/jpeg",
            "image/png",
            "image/webp",
            "application/octet-stream",
        ] {
            content[mime] = binary.clone();
        }
    }
    let description = if single {
        "One photo: a multipart `image` file part, the raw bytes (`image/*`), or JSON with base64 \
         `image`. Options may also be sent as form fields or JSON members (they win over the query)."
    } else {
        "Several photos: repeated multipart `image` parts or JSON `images` (base64). Options may \
         also be sent as form fields or JSON members."
    };
    json!({"required": true, "description": description, "content": content})
}

/// Each option as a query parameter, its schema (type, bounds, default, choices) from the
/// option's table entry.
fn option_parameters(task: &dyn Task) -> Vec<Value> {
    task.options()
        .iter()
        .chain(COMMON_OPTIONS)
        .map(|o| {
            let mut schema = json!({"type": o.type_name(), "default": o.default_value()});
            match o.kind {
                OptionKind::Number {
                    min,
                    max,
                    min_exclusive,
                    ..
                } => {
                    let lower = if min_exclusive {
                        "exclusiveMinimum"
                    } else {
                        "minimum"
                    };
                    schema[lower] = json!(min);
                    schema["maximum"] = json!(max);
                }
                // Integer bounds stay integers in the schema.
                OptionKind::Integer { min, max, .. } => {
                    schema["minimum"] = json!(min);
                    schema["maximum"] = json!(max);
                }
                OptionKind::Choice { choices } => schema["enum"] = json!(choices),
                OptionKind::Boolean { .. } => {}
            }
            json!({"name": o.name, "in": "query", "required": false,
                   "description": o.full_description(), "schema": schema})
        })
        .collect()
}

/// The result schema of a task, by its name.
fn result_schema(task: &str) -> &'static str {
    match task {
        "inspect" => "InspectResult",
        "parse" => "ParseResult",
        "anonymize" => "AnonymizeResult",
        "holistic" => "HolisticResult",
        art if art.starts_with("art/") => "ArtResult",
        _ => "TaskResult",
    }
}

fn operation_id(prefix: &str, task: &str) -> String {
    format!("{prefix}{}", task.replace(['/', '-'], "_"))
}

/// `POST /v1/{task}`.
fn task_path(task: &dyn Task) -> Value {
    let mut responses = image_errors();
    responses["200"] = json!({
        "description": "The result as JSON; with `Accept: image/png` or `image/jpeg`, the rendered image itself.",
        "headers": timing_headers(),
        "content": {
            "application/json": {"schema": schema_ref(result_schema(task.name()))},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    });
    json!({"post": {
        "tags": ["tasks"],
        "summary": task.summary(),
        "operationId": operation_id("", task.name()),
        "parameters": option_parameters(task),
        "requestBody": image_body(true),
        "responses": responses,
    }})
}

/// `POST /v1/batch/{task}`.
fn batch_path(task: &dyn Task) -> Value {
    let mut responses = image_errors();
    responses["200"] = json!({
        "description": "Per-image results in request order; a failing image reports its error in its slot.",
        "headers": timing_headers(),
        "content": {"application/json": {"schema": schema_ref("BatchResponse")}},
    });
    json!({"post": {
        "tags": ["batch"],
        "summary": format!("Several images through {}", task.name()),
        "operationId": operation_id("batch_", task.name()),
        "parameters": option_parameters(task),
        "requestBody": image_body(false),
        "responses": responses,
    }})
}

/// `POST /v1/jobs/{task}`.
fn job_path(task: &dyn Task) -> Value {
    let mut responses = image_errors();
    responses["202"] = json!({
        "description": "Accepted: poll `status_url`, fetch `result_url` (and a video job's `video_url`).",
        "headers": {"x-cache": timing_headers()["x-cache"]},
        "content": {"application/json": {"schema": schema_ref("JobAccepted")}},
    });
    responses["501"] = response_ref("VideoUnsupported");
    let mut body = image_body(true);
    body["description"] = json!(
        "One photo, or one video file (MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV, Ogg; told \
         by its first bytes): a multipart `image` file part, the raw bytes (`image/*`, \
         `application/octet-stream`; a video may also say `video/*`), or JSON with base64 `image` (a video in JSON \
         is bounded by `max_body_bytes`). A video is bounded by `max_video_bytes` and \
         `max_video_seconds`, its frames by the pixel limits; it runs frame by frame through \
         the task's video job (anonymize tracks faces, holistic follows people) into an MP4 \
         with the input's size, rate, frame count and sound. Options may also be sent as form \
         fields or JSON members (they win over the query)."
    );
    json!({"post": {
        "tags": ["jobs"],
        "summary": format!("Submit one image or video to {} as an async job", task.name()),
        "operationId": operation_id("submit_job_", task.name()),
        "parameters": option_parameters(task),
        "requestBody": body,
        "responses": responses,
    }})
}

/// The routes that are not per task and whose handlers are generic (`/v1/jobs/{*path}`) or
/// rewrite another route's request (the compatibility routes).
fn fixed_paths() -> Value {
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let json_of = |name: &str| json!({"application/json": {"schema": schema_ref(name)}});
    let mut parse_result = json!({"description": "As `POST /v1/parse`.", "headers": timing_headers(),
                                  "content": json_of("ParseResult")});
    parse_result["content"]["image/png"] =
        json!({"schema": {"type": "string", "format": "binary"}});
    let with = |mut responses: Value, code: &str, response: Value| {
        responses[code] = response;
        responses
    };
    let mut job_result = image_errors();
    job_result["200"] = json!({
        "description": "The task's result; for a video job, its summary (the video is at `video_url`).",
        "content": {"application/json": {"schema": {"anyOf": [schema_ref("TaskResult"), schema_ref("VideoJobResult")]}}},
    });
    job_result["202"] =
        json!({"description": "Not finished yet: the status.", "content": json_of("JobStatus")});
    job_result["404"] = response_ref("NotFound");
    let mut job_video = job_result.clone();
    job_video["200"] = json!({
        "description": "The output video (MP4), streamed.",
        "content": {"video/mp4": {"schema": {"type": "string", "format": "binary"}}},
    });
    job_video["404"] = response_ref("NotFound");
    json!({
        "/v1/jobs/{id}": {"get": {
            "tags": ["jobs"], "summary": "A job's status (a video job's with its `progress` in frames)", "operationId": "job_status",
            "parameters": [id],
            "responses": {"200": {"description": "The status.", "content": json_of("JobStatus")},
                          "404": response_ref("NotFound"), "503": response_ref("Unavailable")}},
            "delete": {
            "tags": ["jobs"], "summary": "Cancel a job and forget it: a running video job stops within a moment and its files are removed (a photo job already running finishes, and its result is dropped)", "operationId": "cancel_job",
            "parameters": [id],
            "responses": {"204": {"description": "Cancelled."},
                          "404": response_ref("NotFound"), "503": response_ref("Unavailable")}}},
        "/v1/jobs/{id}/result": {"get": {
            "tags": ["jobs"],
            "summary": "The job's result once done (202 with its status before; the job's error if it failed; 404 after the TTL)",
            "operationId": "job_result",
            "parameters": [id],
            "responses": job_result}},
        "/v1/jobs/{id}/video": {"get": {
            "tags": ["jobs"],
            "summary": "A video job's output video once done (202 with its status before; the job's error if it failed; 404 for a photo job and after the TTL)",
            "operationId": "job_video",
            "parameters": [id],
            "responses": job_video}},
        "/v1/stream/{task}": {"get": {
            "tags": ["stream"],
            "summary": "Live video over a WebSocket: send frames (JPEG or PNG) as binary messages; each frame run is answered by a text message, the task's JSON plus `frame` (its number in the order sent), `dropped` (frames skipped so far: a newer frame replaces one waiting, so a fast sender is never queued behind), `compute_ms` and `image` (true when a binary message with the processed frame as JPEG follows). Video jobs: holistic follows people from frame to frame with smoothing, anonymize tracks faces (its `track_frames` look-ahead delays answers by that many frames; 0 for live). A bad frame is answered with an error body carrying `frame`; the stream goes on. Options as query parameters, checked before the upgrade.",
            "operationId": "stream",
            "parameters": [{"name": "task", "in": "path", "required": true,
                            "schema": {"type": "string"}, "description": "holistic, anonymize, parse, art/<style>, inspect"}],
            "responses": {
                "101": {"description": "Switched to the WebSocket protocol."},
                "404": response_ref("NotFound"),
                "422": response_ref("BadOption"),
                "429": response_ref("QueueFull")}}},
        "/batch/parse": {"post": {
            "tags": ["compatibility"], "summary": "Compatibility: the same as POST /v1/batch/parse",
            "operationId": "compat_batch_parse",
            "requestBody": image_body(false),
            "responses": with(image_errors(), "200", json!({"description": "As `POST /v1/batch/parse`.",
                "headers": timing_headers(), "content": json_of("BatchResponse")}))}},
        "/api/parse": {"post": {
            "tags": ["compatibility"],
            "summary": "Compatibility: JSON {image: base64} through parse; answers {code: 0, message: \"success\", data: {colored_mask_url, segments, person_count}}",
            "operationId": "compat_api_parse",
            "requestBody": {"required": true, "content": json_of("ApiParseRequest")},
            "responses": with(image_errors(), "200", json!({"description": "The parse, in the old service's shape.",
                "content": json_of("ApiParseResponse")}))}},
        "/predict": {"post": {
            "tags": ["compatibility"], "summary": "Compatibility: the same as POST /v1/parse",
            "operationId": "compat_predict",
            "requestBody": image_body(true),
            "responses": with(image_errors(), "200", parse_result)}},
    })
}

/// Puts the bearer scheme on every route but the health probes, and the answers any guarded
/// route can give (401 without the key, 405 for a method it does not take).
fn guard(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut() {
            if OPEN_PATHS.contains(&path.as_str()) {
                operation["security"] = json!([]);
                continue;
            }
            operation["security"] = json!([{"bearer": []}, {"api_key": []}]);
            let responses = &mut operation["responses"];
            responses["401"] = response_ref("Unauthorized");
            responses["405"] = response_ref("MethodNotAllowed");
        }
    }
}

/// The OpenAPI 3.1 description of the API, including every registered task and its options.
pub fn document(tasks: &TaskRegistry) -> utoipa::openapi::OpenApi {
    let base = Base::openapi();
    let mut doc = serde_json::to_value(&base).unwrap_or_default();
    let mut paths = fixed_paths();
    for task in tasks.iter() {
        let task = task.as_ref();
        paths[format!("/v1/{}", task.name())] = task_path(task);
        paths[format!("/v1/batch/{}", task.name())] = batch_path(task);
        paths[format!("/v1/jobs/{}", task.name())] = job_path(task);
    }
    // `/health` is `/healthz` under the name other services use.
    paths["/health"] = doc["paths"]["/healthz"].clone();
    if let Some(get) = paths["/health"].get_mut("get") {
        get["operationId"] = json!("health");
    }
    if let (Some(all), Value::Object(more)) = (doc["paths"].as_object_mut(), paths) {
        all.extend(more);
    }
    doc["components"]["responses"] = error_responses();
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "`Authorization: Bearer <key>`, when the server has an API key."},
        "api_key": {"type": "apiKey", "in": "header", "name": "x-api-key",
                    "description": "The same key in `x-api-key`."},
    });
    guard(&mut doc);
    match serde_json::from_value(doc) {
        Ok(doc) => doc,
        Err(e) => {
            tracing::error!(error = %e, "invalid OpenAPI document");
            base
        }
    }
}

/// `GET /openapi.json`: the document for the tasks served now.
pub(crate) async fn serve(State(state): State<Arc<AppState>>) -> Response {
    match document(&state.tasks()).to_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_round_trips_through_utoipa() {
        // `document` falls back to the bare base document if its JSON does not fit utoipa's
        // model; the per-task paths must survive.
        let doc =
            serde_json::to_value(document(&percept_tasks::default_registry())).unwrap_or_default();
        assert!(doc["paths"]["/v1/inspect"]["post"].is_object(), "{doc}");
        assert!(doc["paths"]["/v1/jobs/{id}/result"]["get"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
