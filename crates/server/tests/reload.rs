//! Model hot swap over HTTP: a reload swaps the tasks atomically, a refused reload keeps the
//! old ones and says why, and a request already running finishes on the models it started with.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use percept_server::TaskRegistry;

fn inspect_only() -> TaskRegistry {
    let mut registry = TaskRegistry::default();
    registry.register(Arc::new(percept_tasks::Inspect));
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_refuses_and_lets_running_requests_finish() {
    let server = TestServer::start(config()).await;
    let client = client();
    // No reloader (a server without models): refused, with the stable code.
    let (status, body) = send(client.post(server.url("/v1/admin/reload"))).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(error_code(&body), "reload_failed");

    // First reload: a registry with inspect only; second: refused (as a bad hash would be).
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    server.state.set_reloader(Arc::new(move || {
        match seen.fetch_add(1, Ordering::SeqCst) {
            0 => Ok((inspect_only(), Vec::new())),
            _ => Err("models/pose_detection.onnx: sha256 mismatch".to_string()),
        }
    }));

    // A slow request is running while the reload swaps the registry under it.
    let big = percept_core::testkit::gradient(4000, 3000);
    let bytes = percept_core::testkit::encode_as(&big, image::ImageFormat::Png);
    let slow = tokio::spawn({
        let client = client.clone();
        let url = server.url("/v1/art/oil");
        async move { send(client.post(url).multipart(multipart(bytes, "image"))).await }
    });
    // Wait until it is on a worker, then reload under it.
    let started = std::time::Instant::now();
    loop {
        let metrics = metrics_text(&server).await;
        if metrics
            .lines()
            .any(|l| l.starts_with("percept_in_flight ") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "the slow request never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (status, body) = send(client.post(server.url("/v1/admin/reload"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !slow.is_finished(),
        "the slow request ended before the reload; make it slower"
    );
    assert_eq!(body["status"], "reloaded");
    assert_eq!(body["tasks"], serde_json::json!(["inspect"]));
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "the running request was dropped: {body}");

    // The new registry serves; the old tasks are gone.
    let (status, _) = post_photo(&client, &server, "/v1/inspect", "person_astronaut.jpg").await;
    assert_eq!(status, 200);
    let (status, body) =
        post_photo(&client, &server, "/v1/art/pencil", "person_astronaut.jpg").await;
    assert_eq!(status, 404, "{body}");

    // A refused reload keeps the current models and says why.
    let (status, body) = send(client.post(server.url("/v1/admin/reload"))).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(error_code(&body), "reload_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sha256 mismatch"),
        "{body}"
    );
    let (status, _) = post_photo(&client, &server, "/v1/inspect", "person_astronaut.jpg").await;
    assert_eq!(status, 200);
    let (status, body) = send(client.get(server.url("/v1/tasks"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["tasks"].as_array().unwrap().len(), 1, "{body}");
    let (_, ready) = send(client.get(server.url("/readyz"))).await;
    assert_eq!(ready["reloads"], 1, "{ready}");
    let (_, api) = send(client.get(server.url("/openapi.json"))).await;
    for path in ["/v1/admin/reload", "/api/parse", "/predict", "/batch/parse"] {
        assert!(
            api["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_needs_the_api_key_when_one_is_set() {
    let mut cfg = config();
    cfg.api_key = Some(percept_server::Secret::new("s3cret"));
    let server = TestServer::start(cfg).await;
    let (status, body) = send(client().post(server.url("/v1/admin/reload"))).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send(
        client()
            .post(server.url("/v1/admin/reload"))
            .bearer_auth("s3cret"),
    )
    .await;
    assert_eq!(status, 500, "no reloader, but past the key: {body}");
    assert_eq!(error_code(&body), "reload_failed");
}
