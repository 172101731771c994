//! Video files through the async jobs, over real HTTP, with clips made here by the real
//! `ffmpeg` from the project's photos (a camera panning over a group photo, with a tone), and
//! both job stores (memory, and a real `redis-server`). Checks what a person would: 202,
//! progress that reaches the frame count, a result video ffprobe reads with the input's frames,
//! size and sound, every labelled face hidden in every frame; bad and oversized videos get
//! their codes; no temporary file outlives its job.
//!
//! Needs Debian's `ffmpeg` and `redis-server` (scripts/test installs them); skips, saying so,
//! where one is missing, except under `CI=true`.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use percept_core::testkit::services::{find_program, redis_or_skip, start_redis};
use percept_video::probe;
use percept_video::testkit::{
    FaceBox, assert_anonymized, ffmpeg_or_skip, labelled_faces, pan_clip,
};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

/// One test at a time: each keeps both cores busy, and the temporary-file checks look at the
/// whole of TMPDIR.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `pan_clip` over a test photo and the faces labelled on it (none where it has no labels).
fn make_clip(photo: &str, out: &Path, size: (u32, u32), frames: u32) -> Vec<Vec<FaceBox>> {
    let image = image::load_from_memory(&data(photo)).unwrap().to_rgb8();
    let faces = labelled_faces(&data("faces.json"), photo).unwrap_or_default();
    pan_clip(&image, &faces, out, size, frames)
}

/// A test pattern of `seconds` at 25 fps.
fn make_pattern(out: &Path, size: &str, seconds: u32) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size={size}:rate=25:duration={seconds}"))
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The `percept-*` entries of TMPDIR: uploads, jobs' inputs and outputs.
fn temporary_files() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("percept-"))
        })
        .collect();
    found.sort();
    found
}

fn video_part(bytes: Vec<u8>, name: &str) -> Form {
    Form::new().part("image", Part::bytes(bytes).file_name(name.to_string()))
}

/// Posts `clip` to `url` as a raw `video/mp4` body, asserts it is accepted (202) and returns
/// the job's id.
async fn accepted_video(client: &reqwest::Client, url: String, clip: &Path) -> String {
    let body = std::fs::read(clip).unwrap();
    let (status, accepted) = send(
        client
            .post(url)
            .header("content-type", "video/mp4")
            .body(body),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    accepted["id"].as_str().unwrap().to_string()
}

/// Downloads a job's video from `url` into `out`, asserting it is served (200) as MP4;
/// returns its length in bytes.
async fn download_video(client: &reqwest::Client, url: String, out: &Path) -> usize {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    let video = response.bytes().await.unwrap();
    std::fs::write(out, &video).unwrap();
    video.len()
}

/// Polls the job until it is done or failed; returns its last status and every progress seen.
async fn wait_for(client: &reqwest::Client, url: &str) -> (Value, Vec<Value>) {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let (status, body) = send(client.get(url)).await;
        assert_eq!(status, 200, "{body}");
        seen.push(body["progress"].clone());
        if body["status"] == "done" || body["status"] == "failed" {
            return (body, seen);
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the job never finished: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits a 10-frame clip of five people on stairs to anonymize on `server` and checks the
/// whole round trip: 202, progress to 10 of 10, a summary, and a 640×360 MP4 of 10 frames
/// with the sound kept, every labelled face hidden and the rest of the picture kept.
async fn anonymize_round_trip(server: &TestServer) {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("stairs.mp4");
    let truth = make_clip("group5_stairs.jpg", &clip, (640, 360), 10);
    let (status, accepted) = send(
        client
            .post(server.url("/v1/jobs/anonymize"))
            .multipart(video_part(std::fs::read(&clip).unwrap(), "stairs.mp4")),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["kind"], "video");
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(accepted["video_url"], format!("/v1/jobs/{id}/video"));

    let (done, seen) = wait_for(&client, &server.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["kind"], "video");
    assert_eq!(done["progress"]["frames_done"], 10, "{done}");
    assert_eq!(done["progress"]["frames_total"], 10, "{done}");
    // Every report had the total, and the count never went back.
    let counts: Vec<u64> = seen
        .iter()
        .map(|p| {
            assert_eq!(p["frames_total"], 10, "{p}");
            p["frames_done"].as_u64().unwrap()
        })
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");

    let (status, summary) = send(client.get(server.url(&format!("/v1/jobs/{id}/result")))).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (
            summary["frames"].as_u64(),
            summary["width"].as_u64(),
            summary["height"].as_u64(),
            summary["content_type"].as_str(),
        ),
        (Some(10), Some(640), Some(360), Some("video/mp4")),
        "{summary}"
    );
    assert_eq!(summary["frame_rate"], 25.0);
    assert_eq!(summary["duration"], 0.4);
    assert_eq!(summary["audio"], "aac");
    let labelled: usize = truth.iter().map(Vec::len).sum();
    assert!(
        summary["counts"]["hidden"]["total"].as_u64().unwrap() >= labelled as u64,
        "{summary}"
    );

    let out = dir.path().join("private.mp4");
    let url = server.url(&format!("/v1/jobs/{id}/video"));
    let bytes = download_video(&client, url, &out).await;
    assert_eq!(bytes as u64, summary["video_bytes"].as_u64().unwrap());
    assert_eq!(truth.len(), 10);
    let (_, _, checked) = assert_anonymized(&clip, &out, (640, 360), &truth);
    assert!(checked >= 30, "{checked} faces checked");

    // A photo job's id has no video.
    let (status, body) = send(
        client
            .post(server.url("/v1/jobs/inspect"))
            .header("content-type", "image/jpeg")
            .body(data("person_astronaut.jpg")),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let photo = body["id"].as_str().unwrap();
    let (_, _) = wait_for(&client, &server.url(&format!("/v1/jobs/{photo}"))).await;
    let (status, body) = send(client.get(server.url(&format!("/v1/jobs/{photo}/video")))).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
}

/// Submits a 60-frame clip to anonymize on `server`, cancels it once it has frames done, and
/// checks the job is gone.
async fn cancel_while_running(server: &TestServer) {
    let client = client();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("long.mp4");
    make_clip("group5_stairs.jpg", &clip, (640, 360), 60);
    let id = accepted_video(&client, server.url("/v1/jobs/anonymize"), &clip).await;
    let url = server.url(&format!("/v1/jobs/{id}"));
    let started = Instant::now();
    loop {
        let (_, body) = send(client.get(&url)).await;
        assert!(
            body["status"] == "queued" || body["status"] == "running",
            "{body}"
        );
        if body["progress"]["frames_done"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = client.delete(&url).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let (status, body) = send(client.get(&url)).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = send(client.delete(&url)).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
}

/// Waits (a few seconds at most) until TMPDIR holds no `percept-*` entry beyond `expected`.
async fn temporary_files_become(expected: &[PathBuf]) {
    let started = Instant::now();
    while !left_behind(expected).is_empty() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_no_new_files(expected);
}

/// TMPDIR's `percept-*` entries that were not there in `before`. Only new entries count:
/// TMPDIR is shared with every other process (another test run may remove its own files
/// meanwhile).
fn left_behind(before: &[PathBuf]) -> Vec<PathBuf> {
    temporary_files()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect()
}

fn assert_no_new_files(before: &[PathBuf]) {
    assert_eq!(
        left_behind(before),
        Vec::<PathBuf>::new(),
        "temporary files left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_job_in_memory_hides_every_face_and_leaves_no_file_behind() {
    if !ffmpeg_or_skip() {
        return;
    }
    let _one = SERIAL.lock().await;
    let before = temporary_files();
    let server = TestServer::with_tasks(
        Config {
            result_ttl_secs: 4,
            ..config()
        },
        model_registry(),
    )
    .await;
    anonymize_round_trip(&server).await;
    // A cancelled job's files go at once.
    let with_result = temporary_files();
    cancel_while_running(&server).await;
    temporary_files_become(&with_result).await;
    // Once the result expires, its video goes with it; the upload went when the job ended.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (status, _) = send(client().get(server.url("/v1/jobs/none"))).await;
    assert_eq!(status, 404);
    assert_no_new_files(&before);
    server.shutdown().await;
}

/// Sends `request` and asserts it is answered with `status` and the error `code`; returns the
/// body, for checks of the message.
async fn refused(request: reqwest::RequestBuilder, status: u16, code: &str) -> Value {
    let (got, body) = send(request).await;
    assert_eq!((got, error_code(&body)), (status, code), "{body}");
    body
}

/// A file that starts like an MP4 (its `ftyp` box) and is not one.
fn fake_mp4() -> Vec<u8> {
    let mut fake = b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2".to_vec();
    fake.extend(b"garbage".repeat(99));
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_oversized_videos_get_their_codes() {
    if !ffmpeg_or_skip() {
        return;
    }
    let _one = SERIAL.lock().await;
    let before = temporary_files();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("pattern.mp4");
    make_pattern(&clip, "64x48", 2);
    let bytes = std::fs::read(&clip).unwrap();
    let client = client();
    // The video as a multipart upload named `name`, and as the raw body of `content_type`.
    let submit = |server: &TestServer, route: &str, body: Vec<u8>, name: &str| {
        client
            .post(server.url(route))
            .multipart(video_part(body, name))
    };
    let raw = |server: &TestServer, route: &str, content_type: &str, body: Vec<u8>| {
        client
            .post(server.url(route))
            .header("content-type", content_type)
            .body(body)
    };
    let pencil = "/v1/jobs/art/pencil";

    let server = TestServer::start(Config {
        max_video_seconds: 1,
        ..config()
    })
    .await;
    // Longer than max_video_seconds.
    let long = submit(&server, pencil, bytes.clone(), "a.mp4");
    refused(long, 413, "video_too_large").await;
    // Garbage named like a video, and garbage behind an MP4 header.
    let garbage = submit(&server, pencil, b"garbage".repeat(99), "b.mp4");
    refused(garbage, 400, "invalid_video").await;
    let fake = raw(&server, pencil, "video/mp4", fake_mp4());
    refused(fake, 400, "invalid_video").await;
    // A photo named like a video is still a photo.
    let (status, body) = send(submit(
        &server,
        "/v1/jobs/inspect",
        data("person_astronaut.jpg"),
        "c.mp4",
    ))
    .await;
    assert_eq!(status, 202, "{body}");
    // A bad option is refused before the job is queued.
    let one_second = dir.path().join("short.mp4");
    make_pattern(&one_second, "64x48", 1);
    let short = std::fs::read(&one_second).unwrap();
    let bad_option = submit(
        &server,
        "/v1/jobs/art/pencil?sigma_s=99999",
        short.clone(),
        "d.mp4",
    );
    refused(bad_option, 422, "bad_option").await;
    // So is a task that would draw no frame: the result is a video of drawn frames (this
    // server has no models; the CLI's tests refuse `holistic` with `draw=false` too).
    let drawless = submit(&server, "/v1/jobs/inspect", short.clone(), "e.mp4");
    let body = refused(drawless, 422, "bad_option").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("draws nothing"),
        "{body}"
    );
    // The photo routes still take photos only, and say where a video goes.
    let untyped = raw(
        &server,
        "/v1/art/pencil",
        "application/octet-stream",
        short.clone(),
    );
    let body = refused(untyped, 400, "invalid_image").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/jobs/art/pencil")
    );
    let typed = raw(&server, "/v1/art/pencil", "video/mp4", short.clone());
    refused(typed, 415, "unsupported_media_type").await;
    server.shutdown().await;

    // Over max_video_bytes, multipart and raw; and over the pixel limit per frame.
    let server = TestServer::start(Config {
        max_video_bytes: 2000,
        max_pixels: 64 * 48 - 1,
        ..config()
    })
    .await;
    assert!(short.len() > 2000);
    let multipart = submit(&server, pencil, short.clone(), "e.mp4");
    refused(multipart, 413, "payload_too_large").await;
    let whole = raw(&server, pencil, "video/mp4", short.clone());
    refused(whole, 413, "payload_too_large").await;
    server.shutdown().await;
    let server = TestServer::start(Config {
        max_pixels: 64 * 48 - 1,
        ..config()
    })
    .await;
    let large = submit(&server, pencil, short.clone(), "f.mp4");
    refused(large, 413, "image_too_large").await;
    server.shutdown().await;

    // A video under max_video_bytes but over the photo body limit is taken; an output larger
    // than the job store keeps fails the job with its code, leaving no file.
    let server = TestServer::start(Config {
        max_body_bytes: 1000,
        cache_bytes: 1000,
        ..config()
    })
    .await;
    let (status, accepted) = send(submit(&server, pencil, short.clone(), "g.mp4")).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    let (failed, _) = wait_for(&client, &server.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        failed["error"]["error"]["code"], "video_too_large",
        "{failed}"
    );
    assert_eq!(failed["progress"]["frames_done"], 25, "{failed}");
    let video = client.get(server.url(&format!("/v1/jobs/{id}/video")));
    refused(video, 413, "video_too_large").await;
    server.shutdown().await;
    assert_no_new_files(&before);
}

// ---------------------------------------------------------------- redis

/// The keys Redis holds under `percept:`, besides the replicas' own.
fn redis_keys(port: u16) -> Vec<String> {
    let output = Command::new(find_program("redis-cli").unwrap())
        .args(["-p", &port.to_string(), "--scan", "--pattern", "percept:*"])
        .output()
        .unwrap();
    let mut keys: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|k| !k.starts_with("percept:replica"))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_job_in_redis_is_served_by_another_replica() {
    if !ffmpeg_or_skip() {
        return;
    }
    let Some(binary) = redis_or_skip() else {
        return;
    };
    let _one = SERIAL.lock().await;
    let before = temporary_files();
    let (_redis, port) = start_redis(&binary);
    let url = format!("redis://127.0.0.1:{port}");
    let replica = |name: &str| Config {
        redis_url: Some(percept_server::Secret::new(url.clone())),
        replica_id: Some(name.to_string()),
        ..config()
    };
    let one = TestServer::with_tasks(replica("one"), model_registry()).await;
    anonymize_round_trip(&one).await;
    cancel_while_running(&one).await;
    temporary_files_become(&before).await;

    // Progress, summary and video are in Redis: a second replica answers for the first's job.
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("pattern.mp4");
    make_pattern(&clip, "64x48", 1);
    let client = client();
    let id = accepted_video(&client, one.url("/v1/jobs/art/pencil"), &clip).await;
    let two = TestServer::with_tasks(replica("two"), percept_tasks::default_registry()).await;
    let (done, _) = wait_for(&client, &two.url(&format!("/v1/jobs/{id}"))).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["progress"]["frames_done"], 25);
    let out = dir.path().join("pencil.mp4");
    download_video(&client, two.url(&format!("/v1/jobs/{id}/video")), &out).await;
    let info = probe(&out).unwrap();
    assert_eq!((info.width, info.height, info.frames), (64, 48, Some(25)));

    // Failed video jobs report their code from any replica.
    let fake = client
        .post(two.url("/v1/jobs/art/pencil"))
        .header("content-type", "video/mp4")
        .body(fake_mp4());
    refused(fake, 400, "invalid_video").await;

    // Finished jobs leave their status, result and video, nothing else: inputs are deleted
    // and the unfinished-videos set is empty.
    let keys = redis_keys(port);
    assert!(
        keys.iter()
            .all(|k| !k.ends_with(":image") && k != "percept:videos"),
        "{keys:?}"
    );
    assert_eq!(
        keys.iter().filter(|k| k.ends_with(":video")).count(),
        2,
        "{keys:?}"
    );
    one.shutdown().await;
    two.shutdown().await;
    temporary_files_become(&before).await;
}
