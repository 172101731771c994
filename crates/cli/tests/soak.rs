//! A short soak at saturation: a real `percept serve` driven by `percept load` with more
//! requests in flight than workers + queue. Only 2xx and 429 may come back, the server must
//! stay alive, and its memory must plateau after warm-up.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use percept_core::testkit::services::free_port;

/// `percept serve` on a free loopback port with `args`, once it accepts connections.
fn start_server(args: &[&str]) -> (std::process::Child, String) {
    let port = free_port();
    let server = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(args)
        .env("PERCEPT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, format!("http://127.0.0.1:{port}"))
}

#[test]
fn saturated_soak_gives_only_2xx_and_429_and_flat_memory() {
    let seconds: u64 = std::env::var("PERCEPT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // The soak repeats a few photos: with the result cache they would all be hits.
    let (mut server, url) = start_server(&["--workers", "2", "--queue", "4", "--cache-bytes", "0"]);
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
        "tasks.svg",
        "resources.svg",
    ] {
        let len = std::fs::metadata(out.path().join(file)).unwrap().len();
        assert!(len > 100, "{file} is {len} bytes");
    }
    // One series per task, named in the legend, in each of the two panels.
    let tasks = std::fs::read_to_string(out.path().join("tasks.svg")).unwrap();
    for task in ["inspect", "art/pencil", "art/oil", "art/cartoon"] {
        assert_eq!(
            tasks.matches(&format!("\n{task}\n</text>")).count(),
            2,
            "{task} in tasks.svg's legends"
        );
    }
    let requests = std::fs::read_to_string(out.path().join("requests.csv")).unwrap();
    assert!(requests.lines().count() > 20);
}

/// `percept load` as a polite client: after a 429 each user waits what `Retry-After` says
/// (so a full queue gets a handful of 429s, not thousands), stages ramp the users and never
/// exceed them in flight, and a weighted task mix is reported per task.
#[test]
fn load_honours_retry_after_ramps_stages_and_reports_per_task() {
    let (mut server, url) = start_server(&["--workers", "1", "--queue", "1", "--cache-bytes", "0"]);
    let out = tempfile::tempdir().unwrap();
    let images = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let status = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args([
            "load",
            "--url",
            &url,
            "--task",
            "art/oil=3,inspect=1",
            "--images",
        ])
        .arg(&images)
        .args(["--stages", "1:2s,6:4s", "--out"])
        .arg(out.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(status.success(), "percept load failed: {status:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0);

    // The mix: three oil paintings per inspect, each task with its own figures.
    let oil = &summary["per_task"]["art/oil"];
    let inspect = &summary["per_task"]["inspect"];
    let (n_oil, n_inspect) = (count(&oil["requests"]), count(&inspect["requests"]));
    assert!(
        n_inspect > 0 && n_oil >= 2 * n_inspect && n_oil <= 4 * n_inspect,
        "{summary:#}"
    );
    assert!(oil["latency_ms"]["p50"].as_f64().is_some(), "{summary:#}");
    assert_eq!(n_oil + n_inspect, count(&summary["requests"]));

    // The ramp: one user, then six; never more in flight than the stage's users.
    let stages = summary["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    assert_eq!(
        (count(&stages[0]["users"]), count(&stages[1]["users"])),
        (1, 6)
    );
    assert_eq!(count(&stages[0]["max_in_flight"]), 1, "{summary:#}");
    let peak = count(&stages[1]["max_in_flight"]);
    assert!((2..=6).contains(&peak), "{summary:#}");
    // One user never overflows one worker and a queue of one.
    assert_eq!(count(&stages[0]["status_counts"]["429"]), 0, "{summary:#}");

    // Six users against room for two: 429s, each followed by the second the server asks for,
    // so at most one per user per second (an impolite client sent thousands).
    let refused = count(&summary["status_counts"]["429"]);
    assert!(refused > 0, "not saturated: {summary:#}");
    assert!(
        refused <= 6 * 5,
        "{refused} 429s in 4 s from 6 users: {summary:#}"
    );
    assert!(
        summary["retry_after_wait_s"].as_f64().unwrap() >= 1.0,
        "{summary:#}"
    );
}
