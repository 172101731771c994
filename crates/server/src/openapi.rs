use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::PathItem;

use crate::TaskRegistry;
use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::state::ModelInfo;
use crate::task::COMMON_OPTIONS;
use crate::tasks::InspectResult;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "percept",
        description = "Offline, CPU-first computer vision on photos of people: human parsing, face \
                       privacy, art filters, holistic landmarks."
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode, ModelInfo, InspectResult))
)]
struct Base;

fn fixed_paths() -> Value {
    let json_ok = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"type": "object"}}}});
    json!({
        "/healthz": {"get": {"summary": "Liveness: the process answers", "responses": {"200": json_ok("alive")}}},
        "/readyz": {"get": {"summary": "Readiness: models loaded and warmed, not draining",
            "responses": {"200": json_ok("ready"), "503": json_ok("loading or shutting down")}}},
        "/metrics": {"get": {"summary": "Prometheus metrics, every name prefixed percept_",
            "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}}}},
        "/v1/models": {"get": {"summary": "Models loaded, with sha256 and input shape",
            "responses": {"200": json_ok("engine and models")}}},
        "/v1/tasks": {"get": {"summary": "Tasks offered, with their options (name, type, default, description), and the upload limits",
            "responses": {"200": json_ok("tasks and common options")}}},
        "/v1/batch/{task}": {"post": {"summary": "Several images (repeated `image` parts, or JSON `images`) through one task; per-image results in order, a failing image reports its error in its slot",
            "parameters": [{"name": "task", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": json_ok("{task, count, succeeded, failed, results[{index, filename, status, result | error}]}")}}},
        "/v1/jobs/{task}": {"post": {"summary": "Submit one image as an async job; returns 202 {id, status_url, result_url}",
            "parameters": [{"name": "task", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"202": json_ok("accepted"), "429": json_ok("queue_full"), "503": json_ok("unavailable: the Redis job store cannot be reached")}}},
        "/batch/parse": {"post": {"summary": "Compatibility: the same as POST /v1/batch/parse",
            "responses": {"200": json_ok("as /v1/batch/parse")}}},
        "/api/parse": {"post": {"summary": "Compatibility: JSON {image: base64} through parse; answers {code: 0, message: \"success\", data: {colored_mask_url, segments[{label, confidence, pixel_count}], person_count}}",
            "responses": {"200": json_ok("code, message, data")}}},
        "/api/results/{name}": {"get": {"summary": "A coloured mask from /api/parse, held in memory for the result TTL",
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, "404": json_ok("unknown or expired")}}},
        "/predict": {"post": {"summary": "Compatibility: the same as POST /v1/parse",
            "responses": {"200": json_ok("as /v1/parse")}}},
        "/v1/admin/reload": {"post": {"summary": "Re-read the manifest, load, verify and warm the models and swap them in atomically (SIGHUP does the same); running requests finish on the old models",
            "responses": {"200": json_ok("{status, engine, models, tasks, ms}"), "500": json_ok("reload_failed: refused, the old models keep serving; the message says why")}}},
        "/v1/jobs/{id}/result": {"get": {"summary": "The job's result once done (202 with its status before; the job's error if it failed; 404 after the TTL)",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": json_ok("the task's result"), "202": json_ok("not finished"), "404": json_ok("unknown or expired")}}},
    })
}

fn error_responses() -> Value {
    let error = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    let with = |description: &str| {
        let mut e = error.clone();
        e["description"] = json!(description);
        e
    };
    json!({
        "400": with("invalid_image: empty, truncated, corrupt or unknown image, no image field, bad base64"),
        "413": with("payload_too_large (bytes) or image_too_large (pixels)"),
        "415": with("unsupported_media_type"),
        "422": with("bad_option: unknown option or value out of range"),
        "429": with("queue_full; see Retry-After"),
        "500": with("internal"),
        "503": with("timeout, shutting_down, or unavailable (the Redis job store is down)"),
    })
}

fn task_path(name: &str, summary: &str, parameters: Vec<Value>, result_schema: Value) -> Value {
    json!({"post": {
        "summary": summary,
        "operationId": name.replace('/', "_"),
        "parameters": parameters,
        "requestBody": {"required": true, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                "properties": {"image": {"type": "string", "format": "binary"}}}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object", "required": ["image"],
                "properties": {"image": {"type": "string", "description": "base64, data-URL prefix allowed"}}}},
        }},
        "responses": {
            "200": {"description": "the result; with Accept: image/png or image/jpeg, the rendered image itself",
                "headers": {
                    "x-queue-time": {"description": "ms waiting for a worker", "schema": {"type": "string"}},
                    "x-compute-time": {"description": "ms of work", "schema": {"type": "string"}},
                },
                "content": {"application/json": {"schema": result_schema},
                            "image/png": {}, "image/jpeg": {}}},
        },
    }})
}

/// The OpenAPI 3.1 description of the API, including every registered task and its options.
pub fn document(tasks: &TaskRegistry) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    let mut paths = fixed_paths();
    for task in tasks.iter() {
        let parameters = task
            .options()
            .iter()
            .chain(COMMON_OPTIONS)
            .map(|o| {
                let mut schema = json!({"type": o.kind});
                if !o.choices.is_empty() {
                    schema["enum"] = json!(o.choices);
                }
                json!({"name": o.name, "in": "query", "required": false,
                       "description": format!("{} (default {})", o.description, o.default),
                       "schema": schema})
            })
            .collect();
        let schema = if task.name() == "inspect" {
            json!({"$ref": "#/components/schemas/InspectResult"})
        } else {
            json!({"type": "object"})
        };
        let mut item = task_path(task.name(), task.summary(), parameters, schema);
        if let Some(responses) = item["post"]["responses"].as_object_mut()
            && let Value::Object(errors) = error_responses()
        {
            responses.extend(errors);
        }
        paths[format!("/v1/{}", task.name())] = item;
    }
    if let Value::Object(paths) = paths {
        for (path, item) in paths {
            match serde_json::from_value::<PathItem>(item) {
                Ok(item) => {
                    doc.paths.paths.insert(path, item);
                }
                Err(e) => tracing::error!(%path, error = %e, "invalid OpenAPI path item"),
            }
        }
    }
    doc
}
