//! Batches (several images, per-image results in order, one failure does not fail the rest)
//! and async jobs (202, status, result, expiry) over real HTTP.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use reqwest::multipart::{Form, Part};
use serde_json::json;

#[tokio::test]
async fn a_batch_reports_each_image_in_order() {
    let server = TestServer::start(config()).await;
    let form = Form::new()
        .part(
            "image",
            Part::bytes(data("person_astronaut.jpg")).file_name("astronaut.jpg"),
        )
        .part(
            "image",
            Part::bytes(b"not an image".to_vec()).file_name("notes.jpg"),
        )
        .part(
            "image",
            Part::bytes(data("none_chelsea.png")).file_name("chelsea.png"),
        );
    let (status, body) = send(
        client()
            .post(server.url("/v1/batch/inspect"))
            .multipart(form),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["count"].as_u64(),
            body["succeeded"].as_u64(),
            body["failed"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["filename"], "astronaut.jpg");
    assert_eq!(results[0]["result"]["width"], 512);
    assert_eq!(results[1]["status"], 400);
    assert_eq!(results[1]["error"]["error"]["code"], "invalid_image");
    assert_eq!(results[2]["result"]["width"], 451);
    server.shutdown().await;
}

#[tokio::test]
async fn a_json_batch_of_art_returns_an_image_per_item() {
    let server = TestServer::start(config()).await;
    let b64 = |name: &str| base64::engine::general_purpose::STANDARD.encode(data(name));
    let (status, body) = send(
        client()
            .post(server.url("/v1/batch/art/pencil"))
            .json(&json!({
                "images": [b64("person_hopper.jpg"), b64("group4_small_faces.jpg")],
                "shade_factor": 0.05,
            })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (i, (w, h)) in [(512, 600), (256, 205)].into_iter().enumerate() {
        let result = &body["results"][i]["result"];
        let png = base64::engine::general_purpose::STANDARD
            .decode(result["image"].as_str().unwrap())
            .unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (w, h));
    }
    // Options are validated once for the whole batch.
    let (status, body) = send(
        client()
            .post(server.url("/v1/batch/art/pencil"))
            .json(&json!({
                "images": [b64("person_hopper.jpg")], "shade_factor": 9,
            })),
    )
    .await;
    assert_eq!((status, error_code(&body)), (422, "bad_option"));
    server.shutdown().await;
}

async fn wait_for(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (status, body) = send(client.get(url)).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == "done" || body["status"] == "failed" {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "job never finished: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn async_jobs_go_from_queued_to_done() {
    let server = TestServer::start(config()).await;
    let client = client();
    let response = client
        .post(server.url("/v1/jobs/art/stylize"))
        .multipart(multipart(data("group3_costumes.jpg"), "image"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(accepted["status_url"], format!("/v1/jobs/{id}"));
    let status = wait_for(&client, &server.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(status["status"], "done", "{status}");
    assert_eq!(status["task"], "art/stylize");
    assert!(status["compute_ms"].as_f64().unwrap() > 0.0);
    let (code, result) = send(client.get(server.url(&format!("/v1/jobs/{id}/result")))).await;
    assert_eq!(code, 200);
    assert_eq!(
        (result["width"].as_u64(), result["style"].as_str()),
        (Some(1024), Some("stylize"))
    );
    assert!(result["image"].as_str().unwrap().len() > 1000);

    // A job on a broken image fails with the image's error.
    let (code, accepted) = send(
        client
            .post(server.url("/v1/jobs/inspect"))
            .header("content-type", "image/png")
            .body(b"\x89PNG broken".to_vec()),
    )
    .await;
    assert_eq!(code, 202);
    let id = accepted["id"].as_str().unwrap();
    let status = wait_for(&client, &server.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"]["error"]["code"], "invalid_image");
    let (code, body) = send(client.get(server.url(&format!("/v1/jobs/{id}/result")))).await;
    assert_eq!((code, error_code(&body)), (400, "invalid_image"));

    let (code, body) = send(client.get(server.url("/v1/jobs/0123456789abcdef/result"))).await;
    assert_eq!((code, error_code(&body)), (404, "not_found"));
    let (code, body) = send(client.post(server.url("/v1/jobs/nope")).body("x")).await;
    assert_eq!((code, error_code(&body)), (404, "not_found"));
    server.shutdown().await;
}

#[tokio::test]
async fn job_results_expire_after_the_ttl() {
    let server = TestServer::start(Config {
        result_ttl_secs: 1,
        ..config()
    })
    .await;
    let client = client();
    let (_, accepted) = send(
        client
            .post(server.url("/v1/jobs/inspect"))
            .header("content-type", "image/jpeg")
            .body(data("person_astronaut.jpg")),
    )
    .await;
    let url = server.url(&format!("/v1/jobs/{}", accepted["id"].as_str().unwrap()));
    assert_eq!(wait_for(&client, &url).await["status"], "done");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, body) = send(client.get(&url)).await;
    assert_eq!((code, error_code(&body)), (404, "not_found"));
    server.shutdown().await;
}

/// `parse` under another implementation, so the compatibility route can be exercised before
/// the parsing model lands: same name, the `inspect` work.
struct FakeParse;

impl percept_server::Task for FakeParse {
    fn name(&self) -> &str {
        "parse"
    }
    fn summary(&self) -> &str {
        "inspect, named parse"
    }
    fn options(&self) -> &[percept_tasks::OptionSpec] {
        &[]
    }
    fn prepare(
        &self,
        options: percept_server::Options,
    ) -> Result<percept_tasks::PreparedJob, percept_tasks::TaskError> {
        percept_tasks::Inspect.prepare(options)
    }
}

#[tokio::test]
async fn the_compat_batch_parse_route_maps_onto_v1_batch_parse() {
    // Without a parse task it answers exactly like /v1/batch/<unknown>.
    let server = TestServer::start(config()).await;
    let form = || {
        Form::new()
            .part("image", Part::bytes(data("person_astronaut.jpg")))
            .part("image", Part::bytes(data("none_chelsea.png")))
    };
    let (status, compat) = send(client().post(server.url("/batch/parse")).multipart(form())).await;
    let (_, v1) = send(
        client()
            .post(server.url("/v1/batch/parse"))
            .multipart(form()),
    )
    .await;
    assert_eq!((status, error_code(&compat)), (404, "not_found"));
    assert!(
        compat["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no task `parse`"),
        "{compat}"
    );
    assert_eq!(compat, v1);
    server.shutdown().await;

    // With one, it runs it as a batch.
    let mut tasks = percept_tasks::default_registry();
    tasks.register(std::sync::Arc::new(FakeParse));
    let server = TestServer::with_tasks(config(), tasks).await;
    let (status, body) = send(client().post(server.url("/batch/parse")).multipart(form())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["task"].as_str(), body["count"].as_u64()),
        (Some("parse"), Some(2))
    );
    assert_eq!(body["results"][1]["result"]["width"], 451);
    let (_, v1) = send(
        client()
            .post(server.url("/v1/batch/parse"))
            .multipart(form()),
    )
    .await;
    assert_eq!(body, v1);
    server.shutdown().await;
}
