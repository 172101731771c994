//! Behaviour under load and at the edges of a request's life: a full queue answers 429 with
//! Retry-After and never 5xx, deadlines give 503 timeout, a panicking task gives 500 and the
//! server lives on, shutdown drains in-flight work.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use percept_core::testkit;
use percept_tasks::{OptionSpec, Options, PreparedJob, Task, TaskError, TaskOutput, TaskRegistry};

/// A large noisy PNG: slow enough to decode (tens of ms) that 64 requests pile up.
fn slow_png() -> Vec<u8> {
    let mut state = 0x1234_5678u32;
    let img = image::RgbImage::from_fn(2400, 1600, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [a, b, c, _] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    testkit::encode_as(&img, image::ImageFormat::Png)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_never_5xx() {
    let server = TestServer::start(Config {
        workers: 1,
        queue: 4,
        // Identical requests would be cache hits that never queue.
        cache_bytes: 0,
        ..config()
    })
    .await;
    let client = client();
    let body = slow_png();
    let mut handles = Vec::new();
    for _ in 0..64 {
        let request = client
            .post(server.url("/v1/inspect"))
            .header("content-type", "image/png")
            .body(body.clone());
        handles.push(tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let json: serde_json::Value = response.json().await.unwrap();
            (status, retry_after, json)
        }));
    }
    let (mut ok, mut rejected) = (0, 0);
    for handle in handles {
        let (status, retry_after, json) = handle.await.unwrap();
        match status {
            200 => ok += 1,
            429 => {
                rejected += 1;
                assert_eq!(error_code(&json), "queue_full");
                let seconds: u64 = retry_after.expect("Retry-After on 429").parse().unwrap();
                assert!(seconds >= 1);
            }
            other => panic!("unexpected status {other}: {json}"),
        }
    }
    assert_eq!(ok + rejected, 64);
    assert!(
        ok >= 5,
        "the queue (4) and the worker (1) should have served some: {ok}"
    );
    assert!(
        rejected > 0,
        "64 concurrent requests against a queue of 4 must see 429s"
    );
    let (status, _) = send(client.get(server.url("/healthz"))).await;
    assert_eq!(status, 200);
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains(&format!(
            "percept_rejections_total{{reason=\"queue_full\"}} {rejected}"
        )),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_passed_deadline_is_503_timeout() {
    let server = TestServer::start(Config {
        workers: 1,
        deadline_ms: 1,
        ..config()
    })
    .await;
    let (status, body) = send(
        client()
            .post(server.url("/v1/inspect"))
            .header("content-type", "image/png")
            .body(slow_png()),
    )
    .await;
    assert_eq!((status, error_code(&body)), (503, "timeout"), "{body}");
    server.shutdown().await;
}

struct Panics;

impl Task for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    fn summary(&self) -> &str {
        "panics on purpose"
    }
    fn options(&self) -> &[OptionSpec] {
        &[]
    }
    fn prepare(&self, options: Options) -> Result<PreparedJob, TaskError> {
        options.finish(&[])?;
        Ok(Box::new(|decoded, _| -> Result<TaskOutput, TaskError> {
            let pixels = decoded.image.as_raw();
            // An out-of-bounds index: the kind of bug a worker must survive.
            let _ = pixels[pixels.len() + 1];
            Ok(TaskOutput::default())
        }))
    }
}

#[tokio::test]
async fn a_panicking_task_is_500_and_the_worker_lives_on() {
    let mut tasks = percept_tasks::default_registry();
    tasks.register(Arc::new(Panics));
    let server = TestServer::with_tasks(
        Config {
            workers: 1,
            ..config()
        },
        tasks,
    )
    .await;
    let client = client();
    let photo = data("person_astronaut.jpg");
    for _ in 0..3 {
        let (status, body) = send(
            client
                .post(server.url("/v1/panics"))
                .header("content-type", "image/jpeg")
                .body(photo.clone()),
        )
        .await;
        assert_eq!((status, error_code(&body)), (500, "internal"));
        assert!(
            !body.to_string().contains("index out of bounds"),
            "no internals leak: {body}"
        );
        // The single worker survived and serves the next request.
        let (status, _) = send(
            client
                .post(server.url("/v1/inspect"))
                .header("content-type", "image/jpeg")
                .body(photo.clone()),
        )
        .await;
        assert_eq!(status, 200);
    }
    let metrics = metrics_text(&server).await;
    assert!(metrics.contains("percept_panics_total 3"), "{metrics}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_work_and_refuses_new() {
    let mut server = TestServer::start(Config {
        workers: 1,
        ..config()
    })
    .await;
    let client = client();
    let body = slow_png();
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let request = client
                .post(server.url("/v1/inspect"))
                .header("content-type", "image/png")
                .body(body.clone());
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // Let the requests reach the server before asking it to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = server.url("/healthz");
    let state = Arc::clone(&server.state);
    let done = server.trigger_shutdown();
    for request in in_flight {
        assert_eq!(
            request.await.unwrap().unwrap(),
            200,
            "in-flight work completes during drain"
        );
    }
    done.await.unwrap().unwrap();
    assert!(state.is_shutting_down());
    assert!(
        client.get(url).send().await.is_err(),
        "no new connections after shutdown"
    );
}

#[test]
fn registry_replaces_tasks_by_name() {
    let mut tasks = TaskRegistry::default();
    tasks.register(Arc::new(Panics));
    tasks.register(Arc::new(Panics));
    assert_eq!(tasks.names(), vec!["panics".to_string()]);
}
