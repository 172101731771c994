//! A real clip through the real `ffmpeg`: probed, decoded frame by frame, re-encoded with its
//! audio, and the output probed again. Skips (saying so) where FFmpeg is not installed, except
//! under `CI=true`, where scripts/test installs it and a skip would hide a failure.

#![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

use std::path::Path;
use std::process::Command;

use percept_video::testkit::ffmpeg_or_skip;
use percept_video::{FrameReader, FrameWriter, VideoError, WriterSettings, probe};

/// A 2 s, 25 fps test pattern with a 440 Hz tone.
fn make_clip(path: &Path, size: &str, audio: bool) {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-y", "-f", "lavfi", "-i"]);
    command.arg(format!("testsrc=size={size}:rate=25:duration=2"));
    if audio {
        command.args(["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]);
        command.args(["-c:a", "aac"]);
    }
    // x264's 4:2:0 needs even sides.
    let even = size
        .split('x')
        .all(|side| side.parse::<u32>().unwrap() % 2 == 0);
    let pixels = if even { "yuv420p" } else { "yuv444p" };
    let status = command
        .args(["-c:v", "libx264", "-pix_fmt", pixels])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn frames_round_trip_with_their_audio() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, "320x240", true);
    let info = probe(&input).unwrap();
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(info.frames, Some(50));
    assert_eq!(info.audio_codec.as_deref(), Some("aac"));

    let output = dir.path().join("out.mp4");
    let mut writer =
        FrameWriter::create(&output, &info, Some(&input), &WriterSettings::default()).unwrap();
    let mut count = 0;
    let mut first_pixel = None;
    for frame in FrameReader::open(&input, &info, 10_000).unwrap() {
        let mut frame = frame.unwrap();
        first_pixel.get_or_insert(frame.get_pixel(10, 10).0);
        // Invert: the output must carry our frames, not the input's.
        for p in frame.pixels_mut() {
            p.0 = p.0.map(|c| 255 - c);
        }
        writer.write(frame).unwrap();
        count += 1;
    }
    assert_eq!(count, 50);
    // Nothing at the target until the encoder has finished.
    assert!(!output.exists());
    writer.finish().unwrap();

    let out = probe(&output).unwrap();
    assert_eq!((out.width, out.height, out.frames), (320, 240, Some(50)));
    assert_eq!(out.frame_rate, info.frame_rate);
    assert_eq!(out.audio_codec.as_deref(), Some("aac"));
    let first = FrameReader::open(&output, &out, 10_000)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let (inverted, original) = (first.get_pixel(10, 10).0, first_pixel.unwrap());
    for c in 0..3 {
        let expected = 255 - i32::from(original[c]);
        assert!(
            (i32::from(inverted[c]) - expected).abs() < 24,
            "{inverted:?} vs inverted {original:?}"
        );
    }
    // No temporary file is left beside the output.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_silent_odd_sized_mkv_keeps_its_size_and_has_no_audio() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mkv");
    make_clip(&input, "161x121", false);
    let info = probe(&input).unwrap();
    assert_eq!((info.width, info.height), (161, 121));
    let output = dir.path().join("out.mkv");
    let mut writer =
        FrameWriter::create(&output, &info, Some(&input), &WriterSettings::default()).unwrap();
    let frames = FrameReader::open(&input, &info, 10_000).unwrap();
    for frame in frames {
        writer.write(frame.unwrap()).unwrap();
    }
    writer.finish().unwrap();
    let out = probe(&output).unwrap();
    assert_eq!((out.width, out.height, out.frames), (161, 121, Some(50)));
    assert_eq!(out.audio_codec, None);
}

#[test]
fn an_abandoned_writer_leaves_nothing_and_limits_hold() {
    if !ffmpeg_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    make_clip(&input, "64x48", false);
    let info = probe(&input).unwrap();
    let output = dir.path().join("out.mp4");
    {
        let mut writer =
            FrameWriter::create(&output, &info, None, &WriterSettings::default()).unwrap();
        let frame = FrameReader::open(&input, &info, 10)
            .unwrap()
            .next()
            .unwrap();
        writer.write(frame.unwrap()).unwrap();
        // A frame of the wrong size is refused.
        assert!(writer.write(image::RgbImage::new(8, 8)).is_err());
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // The frame limit ends the stream with TooLarge.
    let last = FrameReader::open(&input, &info, 10)
        .unwrap()
        .last()
        .unwrap();
    assert!(matches!(last, Err(VideoError::TooLarge(_))), "{last:?}");

    // A photo is not a video.
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/none_chelsea.png");
    let probed = probe(&photo);
    assert!(
        probed.is_err() || probed.as_ref().unwrap().frames <= Some(1),
        "{probed:?}"
    );
}
