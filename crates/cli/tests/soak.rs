//! A short soak at saturation: a real `percept serve` driven by `percept load` with more
//! requests in flight than workers + queue. Only 2xx and 429 may come back, the server must
//! stay alive, and its memory must plateau after warm-up.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn saturated_soak_gives_only_2xx_and_429_and_flat_memory() {
    let seconds: u64 = std::env::var("PERCEPT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--workers",
            "2",
            "--queue",
            "4",
            // The soak repeats a few photos: with the result cache they would all be hits.
            "--cache-bytes",
            "0",
        ])
        .env("PERCEPT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = tempfile::tempdir().unwrap();
    let images = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let status = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args([
            "load",
            "--url",
            &url,
            "--task",
            "inspect,art/pencil,art/oil,art/cartoon",
            "--images",
        ])
        .arg(&images)
        .args([
            "--concurrency",
            "12",
            "--duration",
            &format!("{seconds}s"),
            "--warmup",
            "0.3",
            "--pid",
        ])
        .arg(server.id().to_string())
        .arg("--out")
        .arg(out.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "percept load failed: {status:?}");
    let alive = server.try_wait().unwrap().is_none();
    let _ = server.kill();
    assert!(alive, "the server died during the soak");

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    let counts = summary["status_counts"].as_object().unwrap();
    for (status, count) in counts {
        assert!(
            status == "200" || status == "429",
            "unexpected {count} × {status}: {summary:#}"
        );
    }
    assert!(
        counts.get("200").and_then(|v| v.as_u64()).unwrap_or(0) > 20,
        "{summary:#}"
    );
    assert!(
        counts.get("429").and_then(|v| v.as_u64()).unwrap_or(0) > 0,
        "not saturated: {summary:#}"
    );
    let drift = summary["rss_mib"]["drift_after_warmup_percent"]
        .as_f64()
        .unwrap();
    assert!(
        drift.abs() < 5.0,
        "RSS drifted {drift:.1}% after warm-up: {summary:#}"
    );
    for file in [
        "requests.csv",
        "resources.csv",
        "latency.svg",
        "throughput.svg",
        "resources.svg",
    ] {
        let len = std::fs::metadata(out.path().join(file)).unwrap().len();
        assert!(len > 100, "{file} is {len} bytes");
    }
    let requests = std::fs::read_to_string(out.path().join("requests.csv")).unwrap();
    assert!(requests.lines().count() > 20);
}
