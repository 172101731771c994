//! Async jobs through a real `redis-server` shared by real `percept serve` processes: a job
//! submitted to one replica is read from another; a replica killed mid-queue loses nothing
//! (its queued and running jobs are finished by the other); results expire after the TTL.
//!
//! Needs `redis-server` (Debian package `redis-server`; `scripts/test` installs it). Without
//! it the test is skipped with a message, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use percept_core::testkit::services::{
    Killed, free_port, redis_or_skip, start_redis, start_redis_on,
};
use serde_json::Value;

fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Replica {
    // Held so the process is killed when the replica is dropped.
    _process: Killed,
    url: String,
}

async fn start_percept(redis_port: u16, replica: &str, port: u16, extra: &[&str]) -> Replica {
    let child = Command::new(env!("CARGO_BIN_EXE_percept"))
        .env_remove("PERCEPT_CONFIG")
        .env_remove("PERCEPT_QUEUE")
        .env("PERCEPT_LOG", "warn")
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "1",
            "--queue",
            "4",
            "--cache-bytes",
            "0",
            "--redis-url",
            &format!("redis://127.0.0.1:{redis_port}"),
            "--replica-id",
            replica,
        ])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let replica = Replica {
        _process: Killed(child),
        url: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    loop {
        if let Ok(response) = client().get(format!("{}/readyz", replica.url)).send().await
            && response.status() == 200
        {
            return replica;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "percept did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, Value) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:.200}")),
    )
}

async fn submit(replica: &Replica, route: &str, image: Vec<u8>) -> String {
    let response = client()
        .post(format!("{}/v1/jobs/{route}", replica.url))
        .header("content-type", "image/jpeg")
        .body(image)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

async fn wait_done(replica: &Replica, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = get(&format!("{}/v1/jobs/{id}", replica.url)).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == "done" || body["status"] == "failed" {
            return body;
        }
        assert!(started.elapsed() < limit, "job never finished: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_shared_between_replicas_and_survive_a_killed_replica() {
    let Some(binary) = redis_or_skip() else {
        return;
    };
    let (_redis, redis_port) = start_redis(&binary);
    let (port_a, port_b) = (free_port(), free_port());

    // Several slow-ish jobs queued on A alone, one worker: most of them wait in Redis.
    let a = start_percept(redis_port, "a", port_a, &[]).await;
    let photo = data("group3_costumes.jpg");
    let mut ids = Vec::new();
    // The first is the slowest (the filter's cost grows with the square of `size`), so A is
    // still on it when it is killed.
    for size in [12, 6, 5, 4, 3, 2] {
        ids.push(submit(&a, &format!("art/oil?size={size}"), photo.clone()).await);
    }
    // Kill A (no drain, no goodbye) while it runs the first job.
    let started = Instant::now();
    let running = loop {
        let (_, body) = get(&format!("{}/v1/jobs/{}", a.url, ids[0])).await;
        if body["status"] == "running" {
            break body;
        }
        assert_eq!(body["status"], "queued", "{body}");
        assert!(started.elapsed() < Duration::from_secs(30), "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(running["replica"], "a");
    drop(a);

    // B never saw these submissions, yet reads them, and finishes every one — the queued
    // ones from the shared queue, the one A was running once A's heartbeat lapses.
    let b = start_percept(redis_port, "b", port_b, &[]).await;
    let (_, first) = get(&format!("{}/v1/jobs/{}", b.url, ids[0])).await;
    let a_died_running_it = first["status"] == "running" && first["replica"] == "a";
    let mut by_b = 0;
    for (i, id) in ids.iter().enumerate() {
        let status = wait_done(&b, id, Duration::from_secs(180)).await;
        assert_eq!(status["status"], "done", "{status}");
        assert_eq!(status["task"], "art/oil");
        if status["replica"] == "b" {
            by_b += 1;
        }
        let (code, result) = get(&format!("{}/v1/jobs/{id}/result", b.url)).await;
        assert_eq!(code, 200, "{result}");
        assert_eq!(result["width"], 1024, "job {i}");
        assert!(result["image"].as_str().unwrap().len() > 1000);
    }
    assert!(by_b >= ids.len() - 1, "B ran {by_b} of {} jobs", ids.len());
    if a_died_running_it {
        let (_, first) = get(&format!("{}/v1/jobs/{}", b.url, ids[0])).await;
        assert_eq!(
            first["replica"], "b",
            "the job A was running was redone by B"
        );
    } else {
        eprintln!("note: A finished its first job before it was killed");
    }

    // A restarted under the same name comes back and reads B's results; a job submitted to
    // B is readable from A, and its failure carries its stable code.
    let a = start_percept(redis_port, "a", port_a, &[]).await;
    let (code, result) = get(&format!("{}/v1/jobs/{}/result", a.url, ids[2])).await;
    assert_eq!((code, &result["width"]), (200, &Value::from(1024)));
    let inspect = submit(&b, "inspect", data("person_astronaut.jpg")).await;
    assert_eq!(
        wait_done(&a, &inspect, Duration::from_secs(30)).await["status"],
        "done"
    );
    let (code, result) = get(&format!("{}/v1/jobs/{inspect}/result", a.url)).await;
    assert_eq!((code, &result["width"]), (200, &Value::from(512)));
    let broken = submit(&a, "inspect", b"\xff\xd8 not a jpeg".to_vec()).await;
    let status = wait_done(&b, &broken, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"]["error"]["code"], "invalid_image");
    let (code, body) = get(&format!("{}/v1/jobs/{broken}/result", b.url)).await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (400, &Value::from("invalid_image"))
    );
    let (code, body) = get(&format!("{}/v1/jobs/0123456789abcdef", a.url)).await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (404, &Value::from("not_found"))
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_expire_after_the_ttl_and_a_lost_redis_is_a_503_until_it_returns() {
    let Some(binary) = redis_or_skip() else {
        return;
    };
    let (redis, redis_port) = start_redis(&binary);
    let replica = start_percept(redis_port, "ttl", free_port(), &["--result-ttl-secs", "1"]).await;
    let id = submit(&replica, "inspect", data("person_astronaut.jpg")).await;
    assert_eq!(
        wait_done(&replica, &id, Duration::from_secs(30)).await["status"],
        "done"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, body) = get(&format!("{}/v1/jobs/{id}", replica.url)).await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (404, &Value::from("not_found"))
    );

    // Redis gone: job routes answer 503 `unavailable`; sync routes keep working.
    drop(redis);
    let response = client()
        .post(format!("{}/v1/jobs/inspect", replica.url))
        .header("content-type", "image/jpeg")
        .body(data("person_astronaut.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    let (code, body) = get(&format!("{}/v1/jobs/{id}", replica.url)).await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (503, &Value::from("unavailable"))
    );
    let response = client()
        .post(format!("{}/v1/inspect", replica.url))
        .header("content-type", "image/jpeg")
        .body(data("person_astronaut.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Redis back (a restart, empty: no persistence here): the same percept process recovers
    // without a restart of its own; the connection is re-made on the next request.
    let (_redis, _) = start_redis_on(&binary, redis_port);
    let started = Instant::now();
    let id = loop {
        let response = client()
            .post(format!("{}/v1/jobs/inspect", replica.url))
            .header("content-type", "image/jpeg")
            .body(data("person_astronaut.jpg"))
            .send()
            .await
            .unwrap();
        if response.status() == 202 {
            let body: Value = response.json().await.unwrap();
            break body["id"].as_str().unwrap().to_string();
        }
        assert_eq!(
            response.status(),
            503,
            "only `unavailable` while it reconnects"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        wait_done(&replica, &id, Duration::from_secs(30)).await["status"],
        "done",
        "the dispatcher takes jobs again after Redis came back"
    );
    drop(replica);
}

/// The compatibility route's result URL, as the Python clients of the services percept
/// replaces use it: absolute, fetched as it is, from whichever replica answers; made on A,
/// fetched on B, and still on B once A is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_urls_are_absolute_and_any_replica_serves_them() {
    use base64::Engine as _;
    let Some(binary) = redis_or_skip() else {
        return;
    };
    let (_redis, redis_port) = start_redis(&binary);
    let (port_a, port_b) = (free_port(), free_port());
    let a = start_percept(redis_port, "a", port_a, &[]).await;
    let b = start_percept(redis_port, "b", port_b, &[]).await;
    let image = base64::engine::general_purpose::STANDARD.encode(data("person_hopper.jpg"));
    let response = client()
        .post(format!("{}/api/parse", a.url))
        .json(&serde_json::json!({ "image": image }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let url = body["data"]["colored_mask_url"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = format!("http://127.0.0.1:{port_a}/api/results/");
    assert!(
        url.starts_with(&prefix),
        "absolute, from the request's Host: {url}"
    );
    let on_b = url.replace(&format!(":{port_a}/"), &format!(":{port_b}/"));
    let fetch = |url: String| async move {
        let response = client().get(&url).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    };
    let (status, from_a) = fetch(url.clone()).await;
    assert_eq!(status, 200);
    let (status, from_b) = fetch(on_b.clone()).await;
    assert_eq!(status, 200, "replica B serves A's result");
    assert_eq!(from_a, from_b);
    let mask = image::load_from_memory(&from_b).unwrap();
    assert_eq!(
        (mask.width(), mask.height()),
        image::image_dimensions(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/person_hopper.jpg"),
        )
        .unwrap()
    );
    drop(a); // SIGKILL
    let (status, after) = fetch(on_b).await;
    assert_eq!(status, 200, "A is gone; B still serves the result");
    assert_eq!(after, from_a);
    let (status, body) = get(&format!("{}/api/results/unknown.png", b.url)).await;
    assert_eq!(status, 404, "{body}");

    // Behind a proxy, the forwarded scheme and host make the URL.
    let response = client()
        .post(format!("{}/api/parse", b.url))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "parse.example.com")
        .json(&serde_json::json!({ "image": image }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let url = body["data"]["colored_mask_url"].as_str().unwrap();
    assert!(
        url.starts_with("https://parse.example.com/api/results/"),
        "{url}"
    );
}
