//! The `percept` binary as users run it: serve (start-up time, config precedence, SIGTERM),
//! run and batch on real photos, exit codes.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn percept() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_percept"));
    command
        .env_remove("PERCEPT_QUEUE")
        .env_remove("PERCEPT_CONFIG")
        .env("PERCEPT_LOG", "warn");
    command
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(configure: impl FnOnce(&mut Command)) -> (Self, Duration) {
        let port = free_port();
        let mut command = percept();
        command.args(["serve", "--addr", &format!("127.0.0.1:{port}")]);
        configure(&mut command);
        let started = Instant::now();
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        loop {
            if let Ok(response) = blocking_get(&format!("{}/healthz", server.url))
                && response.0 == 200
            {
                return (server, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A minimal HTTP/1.1 GET over a plain socket, so this test needs no async runtime.
fn blocking_get(url: &str) -> std::io::Result<(u16, String)> {
    blocking_request("GET", url)
}

/// A POST with an empty body, likewise.
fn blocking_post(url: &str) -> std::io::Result<(u16, String)> {
    blocking_request("POST", url)
}

fn blocking_request(method: &str, url: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host)?;
    // A reload loads and warms every model: allow it a minute.
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn serve_is_healthy_fast_and_stops_cleanly_on_sigterm() {
    let (server, startup) = Server::start(|_| {});
    assert!(startup < Duration::from_secs(2), "healthz took {startup:?}");
    let (status, body) = blocking_get(&format!("{}/readyz", server.url)).unwrap();
    assert_eq!(status, 200, "{body}");
    let status = server.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

#[test]
fn config_precedence_flag_over_env_over_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("percept.toml");
    std::fs::write(&file, "queue = 3\nworkers = 1\n").unwrap();
    let queue_of = |server: &Server| {
        let (_, body) = blocking_get(&format!("{}/readyz", server.url)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        (
            json["queue_capacity"].as_u64().unwrap(),
            json["workers"].as_u64().unwrap(),
        )
    };
    let (server, _) = Server::start(|c| {
        c.arg("--config").arg(&file);
    });
    assert_eq!(queue_of(&server), (3, 1));
    drop(server);
    let (server, _) = Server::start(|c| {
        c.arg("--config").arg(&file).env("PERCEPT_QUEUE", "5");
    });
    assert_eq!(queue_of(&server), (5, 1));
    drop(server);
    let (server, _) = Server::start(|c| {
        c.arg("--config")
            .arg(&file)
            .env("PERCEPT_QUEUE", "5")
            .args(["--queue", "7"]);
    });
    assert_eq!(queue_of(&server), (7, 1));
    drop(server);

    std::fs::write(&file, "queu = 3\n").unwrap();
    let output = percept()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("queu"),
        "the typo is named"
    );
}

#[test]
fn run_inspect_json_and_exit_codes() {
    let output = percept()
        .args(["run", "inspect"])
        .arg(data("group5_stairs.jpg"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (json["width"].as_u64(), json["height"].as_u64()),
        (Some(1024), Some(746))
    );

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jpg");
    let bytes = std::fs::read(data("group5_stairs.jpg")).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let output = percept()
        .args(["run", "inspect"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "bad input exits 2");
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid_image"));

    let output = percept()
        .args(["run", "inspect"])
        .arg(dir.path().join("missing.jpg"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "a missing file is not bad input but an I/O failure"
    );

    let output = percept()
        .args(["run", "nosuchtask"])
        .arg(data("group5_stairs.jpg"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn run_art_writes_a_changed_image_of_the_same_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sketch.png");
    let input = data("person_hopper.jpg");
    let output = percept()
        .args(["run", "art"])
        .arg(&input)
        .args(["--style", "pencil-color", "-o"])
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["output"].as_str(), Some(out.to_str().unwrap()));
    assert!(
        json.get("image").is_none(),
        "with -o the image is written, not embedded"
    );
    let original = image::open(&input).unwrap().to_rgb8();
    let sketch = image::open(&out).unwrap().to_rgb8();
    assert_eq!(sketch.dimensions(), original.dimensions());
    let changed = original
        .pixels()
        .zip(sketch.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0).any(|(x, y)| x.abs_diff(y) > 16))
        .count();
    assert!(
        changed > original.len() / 3 / 4,
        "only {changed} pixels changed"
    );

    let output = percept()
        .args(["run", "art"])
        .arg(&input)
        .args(["--style", "oil", "-O", "size=0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad_option"));
}

#[test]
fn batch_processes_a_folder_and_reports_failures() {
    let input = tempfile::tempdir().unwrap();
    let output_dir = tempfile::tempdir().unwrap();
    for name in [
        "person_astronaut.jpg",
        "group3_costumes.jpg",
        "none_chelsea.png",
    ] {
        std::fs::copy(data(name), input.path().join(name)).unwrap();
    }
    std::fs::write(input.path().join("broken.jpg"), b"not a jpeg at all").unwrap();
    std::fs::write(
        input.path().join("notes.txt"),
        b"ignored: not an image extension",
    )
    .unwrap();
    let output = percept()
        .args(["batch", "inspect"])
        .arg(input.path())
        .arg("-o")
        .arg(output_dir.path())
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "one failure → exit 1");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output_dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["images"], 4);
    assert_eq!(summary["succeeded"], 3);
    assert_eq!(summary["failed"], 1);
    assert!(
        summary["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid_image")
    );
    let chelsea: serde_json::Value = serde_json::from_slice(
        &std::fs::read(output_dir.path().join("none_chelsea.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (chelsea["width"].as_u64(), chelsea["format"].as_str()),
        (Some(451), Some("png"))
    );
}

#[test]
fn run_anonymize_hides_every_face_and_writes_a_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("private.jpg");
    let output = percept()
        .args(["run", "anonymize"])
        .arg(data("group5_stairs.jpg"))
        .args(["--mode", "box", "-o"])
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["count"], 5, "{json}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "a JPEG");

    let output = percept().args(["models", "--verify"]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        listing.contains("centerface") && listing.contains("sha256 ok"),
        "{listing}"
    );
}

#[test]
fn engine_flag_picks_tract_or_ort_and_fails_clearly_without_the_library() {
    let missing = "/nonexistent/libonnxruntime.so";
    let output = percept()
        .args(["serve", "--addr", "127.0.0.1:0", "--engine", "ort"])
        .env("PERCEPT_ORT_DYLIB", missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("engine `ort` is not available") && stderr.contains(missing),
        "{stderr}"
    );

    let output = percept()
        .args(["serve", "--engine", "gpu"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap rejects unknown engines"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected auto, tract or ort"));

    // auto without the library falls back to tract, and says so where operators look.
    let (server, _) = Server::start(|c| {
        c.env("PERCEPT_ORT_DYLIB", missing)
            .env("PERCEPT_ENGINE", "auto");
    });
    let (status, body) = blocking_get(&format!("{}/v1/models", server.url)).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains(r#""engine":"tract""#), "{body}");
    let (_, metrics) = blocking_get(&format!("{}/metrics", server.url)).unwrap();
    assert!(
        metrics.contains(r#"percept_engine_info{engine="tract"} 1"#),
        "{metrics}"
    );
    server.terminate();
}

#[test]
fn models_reload_by_http_and_sighup_and_a_bad_model_keeps_the_old_ones() {
    // A models folder of our own: the shipped files linked, the manifest copied so it can be
    // broken and mended.
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let dir = std::env::temp_dir().join(format!("percept-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&models).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            std::os::unix::fs::symlink(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let good = std::fs::read_to_string(models.join("manifest.toml")).unwrap();
    std::fs::write(dir.join("manifest.toml"), &good).unwrap();
    let (server, _) = Server::start(|c| {
        c.args(["--models-dir", dir.to_str().unwrap(), "--engine", "tract"]);
    });
    let ready = |server: &Server| -> serde_json::Value {
        let (status, body) = blocking_get(&format!("{}/readyz", server.url)).unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    // Wait for readiness (models warmed), then reload over HTTP.
    let deadline = Instant::now() + Duration::from_secs(60);
    while blocking_get(&format!("{}/readyz", server.url)).unwrap().0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = blocking_post(&format!("{}/v1/admin/reload", server.url)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(ready(&server)["reloads"], 1);

    // A manifest whose hash does not match a file: refused, the old models keep serving.
    let pose = "3602a85f32f7f2bf93aaf5bd2d196f73b0657b0d9eff4d7de62bc8089c0dff6d";
    assert!(
        good.contains(pose),
        "test expects face_detection_full_range's hash"
    );
    std::fs::write(
        dir.join("manifest.toml"),
        good.replace(pose, &"0".repeat(64)),
    )
    .unwrap();
    let (status, body) = blocking_post(&format!("{}/v1/admin/reload", server.url)).unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("reload_failed") && body.contains("sha256"),
        "{body}"
    );
    let state = ready(&server);
    assert_eq!(state["reloads"], 1);
    // Ten: nine files (the trained parser among them) plus the mask-free pose landmark
    // variant.
    assert_eq!(state["models"], 10, "{state}");

    // SIGHUP with the bad manifest: refused too, still serving; mended: reloaded.
    let hup = |server: &Server| {
        let pid = server.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    hup(&server);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ready(&server)["reloads"], 1);
    std::fs::write(dir.join("manifest.toml"), &good).unwrap();
    hup(&server);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready(&server)["reloads"] != 2 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.terminate().success());
    let _ = std::fs::remove_dir_all(&dir);
}
