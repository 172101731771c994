//! `percept run` on video files made here from the project's own photos: a camera pans and
//! zooms over a group photo, so every labelled face's place in every frame is known. Checks
//! what a person would: the output has the input's frames, size, rate and sound; every face
//! is hidden in every frame and the rest of the picture is left alone; holistic prints a line
//! per frame with the person's points inside the frame; without FFmpeg video fails with a
//! code naming the package while photos still work.
//!
//! Needs Debian's `ffmpeg` (scripts/test installs it); skips, saying so, where it is missing,
//! except under `CI=true`.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;
use common::{data, percept, succeeded};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use image::RgbImage;
use percept_video::{FrameReader, probe};
use serde_json::Value;

fn ffmpeg_or_skip() -> bool {
    let found = percept_video::installed();
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but ffmpeg is missing (scripts/test installs it)"
    );
    if !found {
        eprintln!("skipped: ffmpeg is not installed");
    }
    found
}

/// A face box in frame pixels.
#[derive(Debug, Clone, Copy)]
struct Box2 {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

/// A clip of `frames` frames of `size` at 25 fps with a 440 Hz tone: a window of the photo
/// that pans left to right and zooms in by a fifth. Returns each frame's labelled faces.
fn make_clip(photo: &str, out: &Path, size: (u32, u32), frames: u32) -> Vec<Vec<Box2>> {
    let image = image::open(data(photo)).unwrap().to_rgb8();
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(data("faces.json")).unwrap()).unwrap();
    let faces: Vec<Box2> = labels[photo]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Box2 {
            x: f["x"].as_f64().unwrap() as f32,
            y: f["y"].as_f64().unwrap() as f32,
            w: f["width"].as_f64().unwrap() as f32,
            h: f["height"].as_f64().unwrap() as f32,
        })
        .collect();
    let (pw, ph) = (image.width() as f32, image.height() as f32);
    let aspect = size.0 as f32 / size.1 as f32;
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"])
        .args(["-s", &format!("{}x{}", size.0, size.1), "-framerate", "25"])
        .args(["-i", "pipe:0", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "16"])
        .args(["-c:a", "aac", "-shortest"])
        .arg(out)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut truth = Vec::new();
    for i in 0..frames {
        let t = i as f32 / (frames - 1).max(1) as f32;
        // The window: the photo's full height (or width) at first, a fifth narrower at the end.
        let full_w = pw.min(ph * aspect);
        let cw = full_w * (1.0 - 0.2 * t);
        let ch = cw / aspect;
        let x0 = (pw - cw) * t;
        let y0 = (ph - ch) * 0.5;
        let crop = image::imageops::crop_imm(
            &image,
            x0.round() as u32,
            y0.round() as u32,
            cw.round() as u32,
            ch.round() as u32,
        )
        .to_image();
        let frame =
            image::imageops::resize(&crop, size.0, size.1, image::imageops::FilterType::Triangle);
        stdin.write_all(frame.as_raw()).unwrap();
        let scale = size.0 as f32 / cw;
        truth.push(
            faces
                .iter()
                .map(|f| Box2 {
                    x: (f.x - x0) * scale,
                    y: (f.y - y0) * scale,
                    w: f.w * scale,
                    h: f.h * scale,
                })
                // Faces wholly in the frame only: a face cut by the edge is judged elsewhere.
                .filter(|b| {
                    b.x >= 0.0
                        && b.y >= 0.0
                        && b.x + b.w <= size.0 as f32
                        && b.y + b.h <= size.1 as f32
                })
                .collect(),
        );
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    truth
}

fn frames_of(path: &Path) -> Vec<RgbImage> {
    let info = probe(path).unwrap();
    FrameReader::open(path, &info, 100_000)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Mean squared horizontal + vertical grey-level difference inside the inner 80 % of `b`:
/// the detail a viewer would recognise a face by.
fn detail(image: &RgbImage, b: Box2) -> f64 {
    let grey = |x: u32, y: u32| {
        let p = image.get_pixel(x, y).0;
        0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
    };
    let (x0, y0) = ((b.x + 0.1 * b.w) as u32, (b.y + 0.1 * b.h) as u32);
    let (x1, y1) = ((b.x + 0.9 * b.w) as u32, (b.y + 0.9 * b.h) as u32);
    let (mut sum, mut n) = (0.0f64, 0.0f64);
    for y in y0..y1.min(image.height() - 1) {
        for x in x0..x1.min(image.width() - 1) {
            let g = grey(x, y);
            sum += (grey(x + 1, y) - g).powi(2) + (grey(x, y + 1) - g).powi(2);
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

/// Mean absolute difference of the two frames over pixels at least `margin` px outside every
/// face box.
fn difference_away_from(a: &RgbImage, b: &RgbImage, faces: &[Box2], margin: f32) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0.0f64);
    for (x, y, p) in a.enumerate_pixels() {
        let (fx, fy) = (x as f32, y as f32);
        let near = faces.iter().any(|f| {
            fx > f.x - margin
                && fx < f.x + f.w + margin
                && fy > f.y - margin
                && fy < f.y + f.h + margin
        });
        if near {
            continue;
        }
        let q = b.get_pixel(x, y).0;
        sum +=
            p.0.iter()
                .zip(q)
                .map(|(u, v)| f64::from(u.abs_diff(v)))
                .sum::<f64>()
                / 3.0;
        n += 1.0;
    }
    sum / n.max(1.0)
}

/// `percept run <task> <clip> -o <out> --json`, which must succeed: its JSON lines and stderr.
fn run_json(task: &str, clip: &Path, out: &Path) -> (Vec<Value>, String) {
    let output = percept()
        .args(["run", task])
        .arg(clip)
        .arg("-o")
        .arg(out)
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, stderr)
}

#[test]
fn anonymize_hides_every_face_in_every_frame_and_keeps_the_video_whole() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("stairs.mp4");
    let truth = make_clip("group5_stairs.jpg", &clip, (640, 360), 30);
    let out = dir.path().join("private.mp4");
    let (lines, stderr) = run_json("anonymize", &clip, &out);
    // One JSON line per frame, in order, with the frame's detections and hidden faces.
    assert_eq!(lines.len(), 30);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["frame"], i, "{line}");
        assert!(
            line["hidden"].as_array().unwrap().len() >= truth[i].len(),
            "{line}"
        );
    }
    // The summary on stderr.
    assert!(stderr.contains("frames 30"), "{stderr}");

    let (before, after) = (probe(&clip).unwrap(), probe(&out).unwrap());
    assert_eq!((after.width, after.height), (640, 360));
    assert_eq!(after.frames, before.frames);
    assert_eq!(after.frame_rate, before.frame_rate);
    assert_eq!(
        after.audio_codec.as_deref(),
        Some("aac"),
        "the sound is kept"
    );

    let (original, hidden) = (frames_of(&clip), frames_of(&out));
    assert_eq!(hidden.len(), 30);
    let mut faces_checked = 0;
    for (i, faces) in truth.iter().enumerate() {
        for face in faces {
            let (kept, was) = (detail(&hidden[i], *face), detail(&original[i], *face));
            assert!(
                kept < 0.2 * was,
                "frame {i}: face {face:?} keeps {kept:.1} of {was:.1} detail"
            );
            faces_checked += 1;
        }
        // Away from the faces the picture is the input's (up to re-encoding).
        let elsewhere = difference_away_from(&original[i], &hidden[i], faces, 40.0);
        assert!(elsewhere < 4.0, "frame {i}: {elsewhere:.2} levels changed");
    }
    assert!(faces_checked >= 90, "{faces_checked} faces checked");
}

#[test]
fn holistic_parse_and_art_run_over_every_frame() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("drink.mp4");
    make_clip("person_hands_drink.jpg", &clip, (360, 448), 6);
    let out = dir.path().join("points.mkv");
    let (lines, _) = run_json("holistic", &clip, &out);
    assert_eq!(lines.len(), 6);
    for line in &lines {
        assert_eq!(line["person_count"], 1, "{}", line["frame"]);
        let pose = line["pose"].as_array().unwrap();
        assert_eq!(pose.len(), 33);
        // The nose inside the frame, in its upper half.
        let (x, y) = (
            pose[0]["x"].as_f64().unwrap(),
            pose[0]["y"].as_f64().unwrap(),
        );
        assert!(
            (0.0..360.0).contains(&x) && (0.0..224.0).contains(&y),
            "nose {x},{y}"
        );
    }
    // Found by the detectors in the first frame, followed from pose to pose after it.
    let seeds: Vec<&str> = lines
        .iter()
        .map(|l| l["people"][0]["seed"].as_str().unwrap())
        .collect();
    assert_eq!(
        seeds,
        [
            "pose", "tracked", "tracked", "tracked", "tracked", "tracked"
        ]
    );
    // Matroska does not store a frame count (probe estimates it from the duration): count.
    let drawn = frames_of(&out);
    assert_eq!(drawn.len(), 6);
    assert_eq!(drawn[0].dimensions(), (360, 448));

    for (task, extra) in [("parse", vec![]), ("art", vec!["--style", "pencil"])] {
        let out = dir.path().join(format!("{task}.mp4"));
        let output = percept()
            .args(["run", task])
            .args(&extra)
            .arg(&clip)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{task}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("frames 6"), "{stdout}");
        let info = probe(&out).unwrap();
        assert_eq!(
            (info.width, info.height, info.frames),
            (360, 448, Some(6)),
            "{task}"
        );
    }
}

#[test]
fn bad_videos_and_a_missing_ffmpeg_fail_with_their_codes() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    make_clip("person_astronaut.jpg", &clip, (128, 128), 3);

    // Without FFmpeg on the PATH: the video fails naming the package; a photo still works.
    let output = percept()
        .env("PATH", "/nonexistent")
        .args(["run", "anonymize"])
        .arg(&clip)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("video_unsupported") && stderr.contains("apt-get install ffmpeg"),
        "{stderr}"
    );
    let output = percept()
        .env("PATH", "/nonexistent")
        .args(["run", "anonymize"])
        .arg(data("person_astronaut.jpg"))
        .output()
        .unwrap();
    assert!(output.status.success());

    // A file that starts like an MP4 and is not one.
    let broken = dir.path().join("broken.mp4");
    let mut bytes = std::fs::read(&clip).unwrap();
    bytes.truncate(64);
    std::fs::write(&broken, &bytes).unwrap();
    let output = percept()
        .args(["run", "art", "--style", "oil"])
        .arg(&broken)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid_video"), "{stderr}");

    // A video is not written as a photo, nor to standard output; nothing is left behind.
    for target in ["out.png", "-"] {
        let target = if target == "-" {
            PathBuf::from("-")
        } else {
            dir.path().join(target)
        };
        let output = percept()
            .args(["run", "anonymize"])
            .arg(&clip)
            .arg("-o")
            .arg(&target)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("bad_option"), "{stderr}");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn holistic_follows_a_group_through_a_pan() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("group.mp4");
    make_clip("group4_hands.jpg", &clip, (800, 600), 20);
    let out = dir.path().join("group-points.mp4");
    let (lines, _) = run_json("holistic", &clip, &out);
    assert_eq!(lines.len(), 20);
    let counts: Vec<u64> = lines
        .iter()
        .map(|l| l["person_count"].as_u64().unwrap())
        .collect();
    // Four people on the photo; the pan keeps them in view.
    assert_eq!(counts[0], 4, "{counts:?}");
    assert!(counts.iter().all(|c| (3..=4).contains(c)), "{counts:?}");
    let all = counts.iter().filter(|c| **c == 4).count();
    assert!(all >= 16, "everyone in {all} of 20 frames: {counts:?}");
    // Mostly followed, not detected again.
    let tracked = lines[1..]
        .iter()
        .flat_map(|l| l["people"].as_array().unwrap())
        .filter(|p| p["seed"] == "tracked")
        .count();
    assert!(tracked >= 50, "{tracked} of ~76 people followed");
}

#[test]
fn batch_takes_videos_beside_photos() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    make_clip(
        "person_astronaut.jpg",
        &input.join("clip.mkv"),
        (256, 256),
        4,
    );
    std::fs::copy(data("person_hopper.jpg"), input.join("hopper.jpg")).unwrap();
    let out = dir.path().join("out");
    let output = percept()
        .args(["batch", "art", "--style", "cartoon"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&output);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("clip.json")).unwrap()).unwrap();
    assert_eq!(summary["frames"], 4, "{summary}");
    assert_eq!(frames_of(&out.join("clip.mkv")).len(), 4);
    assert!(out.join("hopper.png").exists());
}
