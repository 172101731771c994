//! `/openapi.json`: typed schemas, the bearer scheme and the error answers are there; real
//! answers of a live server fit the schemas (so the hand-kept mirrors in
//! `src/openapi/schemas.rs` cannot drift from the code); and the Python tools users reach for
//! (openapi-spec-validator, openapi-python-client) accept it, with the generated client
//! driving a live server.
#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use percept_server::Secret;
use serde_json::{Value, json};

const KEY: &str = "openapi-test-key-0123456789";

/// The schema `schema` points at (following `$ref`s into `doc`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `schema`: its type, every object key declared, every required key
/// present, arrays item by item; `where_` names the place in messages.
fn conforms(doc: &Value, schema: &Value, value: &Value, where_: &str) {
    let schema = resolve(doc, schema);
    for key in ["anyOf", "oneOf"] {
        if let Some(choices) = schema[key].as_array() {
            let fits = choices.iter().any(|choice| {
                let (doc, choice, value) = (doc.clone(), choice.clone(), value.clone());
                std::panic::catch_unwind(move || conforms(&doc, &choice, &value, "")).is_ok()
            });
            assert!(fits, "{where_}: {value:.300} fits none of {schema}");
            return;
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => panic!("{where_}: schema without a type: {schema}"),
    };
    let actual = json_type(value);
    assert!(
        types.contains(&actual) || (actual == "integer" && types.contains(&"number")),
        "{where_}: a JSON {actual} where the schema says {types:?}"
    );
    if let Some(choices) = schema["enum"].as_array() {
        assert!(
            choices.contains(value),
            "{where_}: {value} not in {choices:?}"
        );
    }
    match value {
        Value::Object(object) => {
            let properties = &schema["properties"];
            for (key, item) in object {
                let declared = &properties[key];
                assert!(
                    declared.is_object(),
                    "{where_}: key `{key}` is not declared in the schema {schema:.400}"
                );
                conforms(doc, declared, item, &format!("{where_}.{key}"));
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let key = required.as_str().unwrap();
                assert!(
                    object.contains_key(key),
                    "{where_}: required `{key}` missing"
                );
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate().take(50) {
                conforms(doc, &schema["items"], item, &format!("{where_}[{i}]"));
            }
        }
        _ => {}
    }
}

/// The `application/json` schema of `code` in `path`'s `method` operation.
fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, code: &str) -> &'a Value {
    let response = &doc["paths"][path][method]["responses"][code];
    assert!(response.is_object(), "{method} {path}: no {code} response");
    &response["content"]["application/json"]["schema"]
}

fn keyed(config: Config) -> Config {
    Config {
        api_key: Some(Secret::new(KEY)),
        ..config
    }
}

async fn get_doc(client: &reqwest::Client, server: &TestServer) -> Value {
    let (status, doc) = send(client.get(server.url("/openapi.json")).bearer_auth(KEY)).await;
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_types_every_result_and_error_and_names_the_bearer_scheme() {
    let server = TestServer::with_tasks(keyed(config()), model_registry()).await;
    let client = client();
    let doc = get_doc(&client, &server).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    // Every task route answers a named, typed schema, never a bare object.
    let (_, tasks) = send(client.get(server.url("/v1/tasks")).bearer_auth(KEY)).await;
    for task in tasks["tasks"].as_array().unwrap() {
        let name = task["name"].as_str().unwrap();
        let path = format!("/v1/{name}");
        let schema = response_schema(&doc, &path, "post", "200");
        let target = resolve(&doc, schema);
        assert!(
            schema["$ref"].is_string() && target["properties"].is_object(),
            "{path}: {schema}"
        );
        // Options are query parameters, from the same tables as /v1/tasks.
        let parameters = doc["paths"][&path]["post"]["parameters"]
            .as_array()
            .unwrap();
        for option in task["options"].as_array().unwrap() {
            assert!(
                parameters.iter().any(|p| p["name"] == option["name"]),
                "{path}: option {} missing",
                option["name"]
            );
        }
        for route in [format!("/v1/batch/{name}"), format!("/v1/jobs/{name}")] {
            let body = &doc["paths"][&route]["post"]["requestBody"]["content"];
            assert!(body["multipart/form-data"].is_object(), "{route}");
            assert!(body["application/json"].is_object(), "{route}");
        }
        let responses = &doc["paths"][&path]["post"]["responses"];
        for code in ["401", "405", "413", "415", "422", "429", "503"] {
            let response = resolve_response(&doc, &responses[code]);
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{path} {code}"
            );
        }
        let headers = &responses["200"]["headers"];
        for header in [
            "x-queue-time",
            "x-compute-time",
            "x-total-time",
            "server-timing",
            "x-cache",
        ] {
            assert!(headers[header].is_object(), "{path}: header {header}");
        }
        assert!(resolve_response(&doc, &responses["429"])["headers"]["retry-after"].is_object());
        let body = &doc["paths"][&path]["post"]["requestBody"]["content"];
        for mime in ["multipart/form-data", "application/json", "image/jpeg"] {
            assert!(body[mime].is_object(), "{path}: {mime}");
        }
    }
    for (schema, keys) in [
        (
            "ParseResult",
            &["persons", "segments", "person_count", "palette"][..],
        ),
        ("AnonymizeResult", &["faces", "count", "image"]),
        (
            "HolisticResult",
            &[
                "pose",
                "left_hand",
                "face",
                "landmark_count",
                "parts",
                "person_count",
                "people",
            ][..],
        ),
        ("Face", &["bbox", "score", "landmarks"]),
        (
            "BatchResponse",
            &["task", "count", "succeeded", "failed", "results"],
        ),
        ("JobAccepted", &["id", "status_url", "result_url"]),
        ("ApiParseResponse", &["code", "message", "data"]),
    ] {
        for key in keys {
            assert!(
                doc["components"]["schemas"][schema]["properties"][key].is_object(),
                "{schema}.{key}"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer",
               "description": "`Authorization: Bearer <key>`, when the server has an API key."})
    );
    // The key guards everything but the health probes.
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
    for (path, method) in [
        ("/v1/parse", "post"),
        ("/api/parse", "post"),
        ("/v1/jobs/{id}", "get"),
        ("/v1/models", "get"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"][0],
            json!({"bearer": []}),
            "{path}"
        );
    }
    server.shutdown().await;
}

fn resolve_response<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(r) => &doc["components"]["responses"][r.trim_start_matches("#/components/responses/")],
        None => response,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_fit_their_schemas() {
    let server = TestServer::with_tasks(keyed(config()), model_registry()).await;
    let client = client();
    let doc = get_doc(&client, &server).await;
    let photo = data("group3_costumes.jpg");
    let post = |route: &str| {
        client
            .post(server.url(route))
            .bearer_auth(KEY)
            .multipart(multipart(photo.clone(), "image"))
    };
    for route in [
        "/v1/inspect",
        "/v1/parse",
        "/v1/parse?mask=false&parser=pose-guided",
        "/v1/anonymize",
        "/v1/anonymize?detector=fast",
        "/v1/holistic",
        "/v1/holistic?draw=false&hands=false",
        "/v1/art/oil",
        "/predict",
    ] {
        let (status, body) = send(post(route)).await;
        assert_eq!(status, 200, "{route}: {body:.300}");
        let path = route.split('?').next().unwrap();
        conforms(
            &doc,
            response_schema(&doc, path, "post", "200"),
            &body,
            route,
        );
    }
    let batch = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(photo.clone()).file_name("a.jpg"),
        )
        .part(
            "image",
            reqwest::multipart::Part::bytes(b"not an image".to_vec()).file_name("b.jpg"),
        );
    let (status, body) = send(
        client
            .post(server.url("/v1/batch/anonymize"))
            .bearer_auth(KEY)
            .multipart(batch),
    )
    .await;
    assert_eq!(
        (status, body["failed"].as_u64()),
        (200, Some(1)),
        "{body:.300}"
    );
    conforms(
        &doc,
        response_schema(&doc, "/v1/batch/anonymize", "post", "200"),
        &body,
        "batch",
    );

    let (status, accepted) = send(post("/v1/jobs/holistic")).await;
    assert_eq!(status, 202, "{accepted}");
    conforms(
        &doc,
        response_schema(&doc, "/v1/jobs/holistic", "post", "202"),
        &accepted,
        "job",
    );
    let result_url = server.url(accepted["result_url"].as_str().unwrap());
    let result = loop {
        let (status, body) = send(client.get(&result_url).bearer_auth(KEY)).await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 202, "{body}");
        conforms(
            &doc,
            response_schema(&doc, "/v1/jobs/{id}/result", "get", "202"),
            &body,
            "pending",
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    conforms(
        &doc,
        response_schema(&doc, "/v1/jobs/{id}/result", "get", "200"),
        &result,
        "job result",
    );
    let status_url = server.url(accepted["status_url"].as_str().unwrap());
    let (_, status) = send(client.get(&status_url).bearer_auth(KEY)).await;
    conforms(
        &doc,
        response_schema(&doc, "/v1/jobs/{id}", "get", "200"),
        &status,
        "job status",
    );

    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&photo);
    let (status, body) = send(
        client
            .post(server.url("/api/parse"))
            .bearer_auth(KEY)
            .json(&json!({"image": encoded})),
    )
    .await;
    assert_eq!(status, 200, "{body:.300}");
    conforms(
        &doc,
        response_schema(&doc, "/api/parse", "post", "200"),
        &body,
        "/api/parse",
    );

    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/v1/models", "get"),
        ("/v1/tasks", "get"),
    ] {
        let (_, body) = send(client.get(server.url(path)).bearer_auth(KEY)).await;
        conforms(
            &doc,
            response_schema(&doc, path, method, "200"),
            &body,
            path,
        );
    }
    // Errors: 401 without the key, 422 for a bad option, 415.
    let (status, body) = send(client.post(server.url("/v1/inspect"))).await;
    assert_eq!(status, 401);
    conforms(
        &doc,
        &json!({"$ref": "#/components/schemas/ErrorBody"}),
        &body,
        "401",
    );
    let (status, body) = send(post("/v1/anonymize?mode=mosaic")).await;
    assert_eq!(status, 422);
    conforms(
        &doc,
        &json!({"$ref": "#/components/schemas/ErrorBody"}),
        &body,
        "422",
    );
    video_job_answers_fit_their_schemas(&client, &server, &doc).await;
    server.shutdown().await;
}

/// A video job's 202, its status while running and done, and its result summary.
async fn video_job_answers_fit_their_schemas(
    client: &reqwest::Client,
    server: &TestServer,
    doc: &Value,
) {
    if !percept_video::installed() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true needs ffmpeg"
        );
        eprintln!("skipped the video job: ffmpeg is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=25:duration=1",
        ])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    let (status, accepted) = send(
        client
            .post(server.url("/v1/jobs/holistic"))
            .bearer_auth(KEY)
            .header("content-type", "video/mp4")
            .body(std::fs::read(&clip).unwrap()),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    conforms(
        doc,
        response_schema(doc, "/v1/jobs/holistic", "post", "202"),
        &accepted,
        "video job",
    );
    let status_url = server.url(accepted["status_url"].as_str().unwrap());
    loop {
        let (_, status) = send(client.get(&status_url).bearer_auth(KEY)).await;
        conforms(
            doc,
            response_schema(doc, "/v1/jobs/{id}", "get", "200"),
            &status,
            "video job status",
        );
        if status["status"] == "done" {
            break;
        }
        assert_ne!(status["status"], "failed", "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let result_url = server.url(accepted["result_url"].as_str().unwrap());
    let (status, summary) = send(client.get(&result_url).bearer_auth(KEY)).await;
    assert_eq!(status, 200, "{summary}");
    conforms(
        doc,
        response_schema(doc, "/v1/jobs/{id}/result", "get", "200"),
        &summary,
        "video job result",
    );
    let video = &doc["paths"]["/v1/jobs/{id}/video"]["get"]["responses"]["200"]["content"];
    assert!(video["video/mp4"].is_object(), "{video}");
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// A venv under target/ with the pinned tools, or `None` (with a loud message) when this
/// machine cannot make one; under CI=true it must.
fn python_tools_or_skip() -> Option<PathBuf> {
    let dir = root().join("target/openapi-client");
    let requirements = root().join("scripts/openapi-client/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Some(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .is_ok_and(|o| o.status.success());
    if !made {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 -m venv failed and CI=true: the OpenAPI client test must run in CI \
             (apt-get install python3-venv)"
        );
        eprintln!(
            "\n!!! SKIPPING the generated Python client test: python3 -m venv failed \
             (apt-get install python3-venv, or run scripts/test) !!!\n"
        );
        return None;
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements));
    std::fs::write(&stamp, wanted).unwrap();
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_validates_and_drives_the_server() {
    let Some(python) = python_tools_or_skip() else {
        return;
    };
    let server = TestServer::with_tasks(keyed(config()), model_registry()).await;
    let client = client();
    let text = client
        .get(server.url("/openapi.json"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let work = root().join("target/openapi-client/run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let spec = work.join("openapi.json");
    std::fs::write(&spec, text).unwrap();
    let bin = python.parent().unwrap().to_path_buf();

    let validated = run(Command::new(bin.join("openapi-spec-validator")).arg(&spec));
    assert!(validated.contains("OK"), "{validated}");

    let generated = work.join("percept-client");
    // The generator formats its output with ruff (a dependency, in the venv's bin).
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = run(Command::new(bin.join("openapi-python-client"))
        .env("PATH", path)
        .args(["generate", "--meta", "setup", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(&generated)
        .arg("--config")
        .arg(root().join("scripts/openapi-client/config.yaml")));
    // Every operation made it into the client: a skipped one, or a schema the generator could
    // not read, is reported as a warning.
    assert!(!output.contains("Warning"), "{output}");
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
        ])
        .arg(&generated));

    let server_url = server.url.clone();
    let driver = root().join("scripts/openapi-client/drive.py");
    let photo = root().join("tests/data/group3_costumes.jpg");
    let python_run = tokio::task::spawn_blocking(move || {
        run(Command::new(&python)
            .arg(driver)
            .arg(server_url)
            .arg(KEY)
            .arg(photo))
    });
    let report = python_run.await.unwrap();
    eprintln!("{report}");
    assert!(report.contains("persons="), "{report}");
    server.shutdown().await;
}

#[test]
fn the_schema_check_refuses_undeclared_keys_and_wrong_types() {
    let doc = serde_json::to_value(percept_server::openapi_document(
        &percept_tasks::default_registry(),
    ))
    .unwrap();
    let schema = json!({"$ref": "#/components/schemas/InspectResult"});
    let good = json!({"width": 4, "height": 3, "format": "png", "orientation": 1,
                      "exif": false, "megapixels": 0.0, "mean_rgb": [1.0, 2.0, 3.0]});
    conforms(&doc, &schema, &good, "good");
    let mut extra = good.clone();
    extra["colour"] = json!("red");
    let mut wrong = good.clone();
    wrong["width"] = json!("4");
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("format");
    for bad in [extra, wrong, missing] {
        let (doc, schema) = (doc.clone(), schema.clone());
        let refused = std::panic::catch_unwind(move || conforms(&doc, &schema, &bad, "bad"));
        assert!(refused.is_err());
    }
}
