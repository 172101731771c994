//! The `percept` binary as users run it: serve (start-up time, config precedence, SIGTERM),
//! run and batch on real photos, exit codes.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;
use common::{data, percept, succeeded};
use percept_core::testkit::services::free_port;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    /// `percept serve --addr 127.0.0.1:<free port>`, then `configure`'s flags.
    fn start(configure: impl FnOnce(&mut Command)) -> Self {
        let port = free_port();
        let mut command = percept();
        command.args(["serve", "--addr", &format!("127.0.0.1:{port}")]);
        configure(&mut command);
        Self::spawn(command, port)
    }

    /// Spawns `command`, which must listen on `port`, and waits for `/healthz`. How long
    /// start-up takes is a benchmark's business (BENCHMARKS.md), not a test's: the deadline
    /// here only catches a server that never comes up.
    fn spawn(mut command: Command, port: u16) -> Self {
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
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
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
fn serve_is_healthy_and_stops_cleanly_on_sigterm() {
    let server = Server::start(|_| {});
    let (status, body) = blocking_get(&format!("{}/readyz", server.url)).unwrap();
    assert_eq!(status, 200, "{body}");
    let status = server.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// (queue capacity, workers) as `/readyz` reports them.
fn queue_of(server: &Server) -> (u64, u64) {
    let (_, body) = blocking_get(&format!("{}/readyz", server.url)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    (
        json["queue_capacity"].as_u64().unwrap(),
        json["workers"].as_u64().unwrap(),
    )
}

#[test]
fn bare_percept_serves_with_the_environment_the_config_file_and_flags() {
    // The README's first command is `cargo run --release`: `percept` with no subcommand.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("percept.toml");
    std::fs::write(&file, "queue = 3\nworkers = 1\n").unwrap();
    let port = free_port();
    let mut command = percept();
    command
        .env("PERCEPT_ADDR", format!("127.0.0.1:{port}"))
        .env("PERCEPT_CONFIG", &file)
        // Empty is no key (compose passes `${PERCEPT_API_KEY:-}`), not a start-up error.
        .env("PERCEPT_API_KEY", "");
    let server = Server::spawn(command, port);
    assert_eq!(queue_of(&server), (3, 1));
    let (status, _) = blocking_get(&format!("{}/v1/tasks", server.url)).unwrap();
    assert_eq!(status, 200, "no key required");
    drop(server);

    let port = free_port();
    let mut command = percept();
    command
        .args(["--addr", &format!("127.0.0.1:{port}"), "--queue", "6"])
        .env("PERCEPT_WORKERS", "1");
    let server = Server::spawn(command, port);
    assert_eq!(queue_of(&server), (6, 1));
    drop(server);

    // Serve flags belong to `percept` or `percept serve`, not in front of another subcommand.
    let output = percept().args(["--queue", "6", "models"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
}

#[test]
fn the_metrics_listener_serves_metrics_without_the_key_and_nothing_else() {
    let metrics_port = free_port();
    let key = "a-key-of-at-least-16-chars";
    let server = Server::start(|c| {
        c.env("PERCEPT_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .args(["--api-key", key]);
    });
    let metrics_url = format!("http://127.0.0.1:{metrics_port}");
    let (status, _) = blocking_get(&format!("{}/metrics", server.url)).unwrap();
    assert_eq!(
        status, 401,
        "the main listener keeps /metrics behind the key"
    );
    let (status, body) = blocking_get(&format!("{metrics_url}/metrics")).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("percept_queue_depth"), "{body}");
    for path in ["/v1/tasks", "/v1/inspect", "/", "/openapi.json"] {
        let (status, _) = blocking_get(&format!("{metrics_url}{path}")).unwrap();
        assert_eq!(status, 404, "{path} is not on the metrics listener");
    }
    let (status, _) = blocking_post(&format!("{metrics_url}/v1/inspect")).unwrap();
    assert_eq!(status, 404);
    drop(server);

    // The same address twice is refused at start, naming the setting.
    let port = free_port();
    let output = percept()
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("metrics_addr"));
}

#[test]
fn config_precedence_flag_over_env_over_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("percept.toml");
    std::fs::write(&file, "queue = 3\nworkers = 1\n").unwrap();
    let server = Server::start(|c| {
        c.arg("--config").arg(&file);
    });
    assert_eq!(queue_of(&server), (3, 1));
    drop(server);
    let server = Server::start(|c| {
        c.arg("--config").arg(&file).env("PERCEPT_QUEUE", "5");
    });
    assert_eq!(queue_of(&server), (5, 1));
    drop(server);
    let server = Server::start(|c| {
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

/// `percept` with `stdin` on its standard input.
fn run_with_stdin(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = percept()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn run_summarises_writes_the_named_format_and_reads_stdin_and_several_files() {
    let dir = tempfile::tempdir().unwrap();
    let hopper = data("person_hopper.jpg");
    let (width, height) = image::image_dimensions(&hopper).unwrap();

    // -o without --json: one summary line on stdout, not the JSON result.
    let out = dir.path().join("sketch.jpg");
    let output = percept()
        .args(["run", "art", "--style", "pencil"])
        .arg(&hopper)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("art/pencil") && stdout.contains("sketch.jpg"),
        "{stdout}"
    );
    assert!(!stdout.contains('{'), "no JSON without --json: {stdout}");
    // The extension names the format: .jpg is a JPEG.
    assert_eq!(&std::fs::read(&out).unwrap()[..2], &[0xFF, 0xD8]);

    // An extension percept does not write is refused, and nothing is written.
    let webp = dir.path().join("sketch.webp");
    let output = percept()
        .args(["run", "art", "--style", "pencil"])
        .arg(&hopper)
        .arg("-o")
        .arg(&webp)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains(".webp"));
    assert!(!webp.exists());

    // `-` reads the photo from standard input.
    let jpeg = std::fs::read(&hopper).unwrap();
    let output = run_with_stdin(&["run", "inspect", "-", "--json"], &jpeg);
    succeeded(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (json["width"].as_u64(), json["height"].as_u64()),
        (Some(width.into()), Some(height.into())),
        "{json}"
    );

    // `-o -` writes the image to standard output; the summary goes to standard error.
    let output = run_with_stdin(&["run", "art", "--style", "pencil", "-", "-o", "-"], &jpeg);
    succeeded(&output);
    assert_eq!(&output.stdout[..4], b"\x89PNG");
    let decoded = image::load_from_memory(&output.stdout).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (width, height));
    assert!(String::from_utf8_lossy(&output.stderr).contains("art/pencil"));

    // Several files: one JSON line each with its file; with -o a folder, one image each.
    let astronaut = data("person_astronaut.jpg");
    let output = percept()
        .args(["run", "inspect", "--json"])
        .arg(&hopper)
        .arg(&astronaut)
        .output()
        .unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[1]["file"]
            .as_str()
            .unwrap()
            .ends_with("person_astronaut.jpg")
    );
    let folder = dir.path().join("sketches");
    std::fs::create_dir(&folder).unwrap();
    let output = percept()
        .args(["run", "art", "--style", "pencil"])
        .arg(&hopper)
        .arg(&astronaut)
        .arg("-o")
        .arg(&folder)
        .output()
        .unwrap();
    succeeded(&output);
    for name in ["person_hopper.jpg", "person_astronaut.jpg"] {
        assert_eq!(
            &std::fs::read(folder.join(name)).unwrap()[..2],
            &[0xFF, 0xD8],
            "{name}"
        );
    }
    // A failing file fails only itself; the exit code says something failed.
    let output = percept()
        .args(["run", "inspect"])
        .arg(dir.path().join("missing.jpg"))
        .arg(&hopper)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("person_hopper.jpg"));
}

#[test]
fn help_lists_tasks_log_level_flags_completions_and_man_pages() {
    let text = |args: &[&str]| {
        let output = percept().args(args).output().unwrap();
        succeeded(&output);
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // `run --help` lists every task with its options, and only the settings `run` uses.
    let (help, _) = text(&["run", "--help"]);
    for needle in [
        "parser=learned|pose-guided",
        "detector=accurate|fast",
        "hands=true|false [default: true]",
        "max_persons=integer 1..=20 [default: 10]",
        "strength=number [0.1, 10] [default: 1]",
        "art --style oil",
        "inspect",
        "--max-pixels",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}:\n{help}");
    }
    for serve_only in ["--redis-url", "--api-key", "--queue", "--addr"] {
        assert!(!help.contains(serve_only), "run --help shows {serve_only}");
    }
    let (help, _) = text(&["serve", "--help"]);
    assert!(help.contains("--redis-url") && help.contains("--max-pixels"));

    // -q silences the info log, -v brings it back over PERCEPT_LOG=warn; -v and -q are global.
    let photo = data("person_astronaut.jpg");
    let photo = photo.to_str().unwrap();
    let output = percept()
        .args(["-q", "run", "anonymize", photo])
        .env("PERCEPT_LOG", "info")
        .output()
        .unwrap();
    succeeded(&output);
    let quiet = String::from_utf8_lossy(&output.stderr);
    assert!(
        !quiet.contains("models loaded"),
        "-q beats PERCEPT_LOG: {quiet}"
    );
    let (_, verbose) = text(&["run", "anonymize", photo, "-v"]);
    assert!(verbose.contains("models loaded"), "{verbose}");
    let output = percept().args(["-v", "-q", "models"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "-v and -q conflict");
    // A serve flag in front of another subcommand would be ignored: it is refused.
    let output = percept().args(["--queue", "5", "models"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--queue"));

    let (bash, _) = text(&["completions", "bash"]);
    assert!(bash.contains("_percept()") && bash.contains("completions"));
    let (zsh, _) = text(&["completions", "zsh"]);
    assert!(
        zsh.starts_with("#compdef percept"),
        "{}",
        &zsh[..zsh.len().min(80)]
    );
    let (man, _) = text(&["man"]);
    assert!(
        man.contains(".TH percept 1"),
        "{}",
        &man[..man.len().min(200)]
    );
    let (man_run, _) = text(&["man", "run"]);
    assert!(man_run.contains(".TH run 1") && man_run.contains("output"));
    let output = percept().args(["man", "nosuch"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn batch_streams_jsonl_walks_subfolders_and_never_overwrites_unasked() {
    let input = tempfile::tempdir().unwrap();
    let nested = input.path().join("street").join("day");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(data("person_hopper.jpg"), input.path().join("hopper.jpg")).unwrap();
    std::fs::copy(data("none_chelsea.png"), nested.join("chelsea.png")).unwrap();
    std::fs::write(nested.join("broken.jpg"), b"not a jpeg").unwrap();
    let batch = |extra: &[&str], output: Option<&Path>| {
        let mut command = percept();
        command.args(["batch", "inspect"]).arg(input.path());
        if let Some(output) = output {
            command.arg("-o").arg(output);
        }
        command.args(extra).output().unwrap()
    };
    let lines = |output: &std::process::Output| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    // --jsonl without -o: one line per photo on stdout, failures included; top folder only.
    let output = batch(&["--jsonl"], None);
    assert_eq!(output.status.code(), Some(0));
    let flat = lines(&output);
    assert_eq!(flat.len(), 1, "{flat:?}");
    assert!(flat[0]["file"].as_str().unwrap().ends_with("hopper.jpg"));
    assert!(flat[0]["width"].as_u64().unwrap() > 0);

    // --recursive: the subfolders too, results in the same relative folders.
    let out = tempfile::tempdir().unwrap();
    let output = batch(&["--recursive", "--jsonl"], Some(out.path()));
    assert_eq!(output.status.code(), Some(1), "the broken photo fails");
    let all = lines(&output);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all.iter().filter(|l| l.get("error").is_some()).count(), 1);
    let chelsea = out.path().join("street/day/chelsea.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&chelsea).unwrap()).unwrap();
    assert_eq!(json["width"], 451);

    // Again into the same folder: refused before any work, nothing touched.
    std::fs::write(&chelsea, b"{\"mine\": true}").unwrap();
    let output = batch(&["--recursive"], Some(out.path()));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(std::fs::read(&chelsea).unwrap(), b"{\"mine\": true}");
    // --skip-existing leaves existing results and does the rest (the broken one, again).
    let output = batch(
        &["--recursive", "--skip-existing", "--jsonl"],
        Some(out.path()),
    );
    let redone = lines(&output);
    assert_eq!(
        redone.len(),
        1,
        "only the photo without a result: {redone:?}"
    );
    assert!(redone[0]["file"].as_str().unwrap().ends_with("broken.jpg"));
    assert_eq!(std::fs::read(&chelsea).unwrap(), b"{\"mine\": true}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["skipped_existing"], 2);
    // --force overwrites.
    let output = batch(&["--recursive", "--force"], Some(out.path()));
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&chelsea).unwrap()).unwrap();
    assert_eq!(json["width"], 451);
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
        .env("PERCEPT_LOG", "info")
        .env("PERCEPT_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["count"], 5, "{json}");
    // `run` loads the task's own models only: the two face detectors, not holistic's or the
    // parser's.
    let loaded: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "models loaded, verified and warmed")
        .unwrap_or_else(|| panic!("no load line in {log}"));
    assert_eq!(
        loaded["fields"]["models"], r#"["centerface", "face_detection_full_range"]"#,
        "{loaded}"
    );
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
    let server = Server::start(|c| {
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
    let server = Server::start(|c| {
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
    // Thirteen: eleven files (the trained parser and holistic's iris model among them)
    // plus the mask-free variants of the full and lite pose landmark models.
    assert_eq!(state["models"], 13, "{state}");

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
