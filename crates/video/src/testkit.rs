//! Clips for tests, made with the real `ffmpeg` from the project's photos, and the checks made
//! on their frames. Enabled by the `testkit` feature so that the CLI's and the server's video
//! tests share one clip maker: both check each labelled face is hidden in every frame, which
//! only holds if both know where the camera put each face.
//!
//! Panics rather than returning errors: a clip that cannot be made is a failed test.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use image::RgbImage;
use percept_core::testkit::services::installed_or_skip;

use crate::{FrameReader, probe};

/// [`installed_or_skip`] for FFmpeg's programs.
pub fn ffmpeg_or_skip() -> bool {
    installed_or_skip("ffmpeg", crate::installed())
}

/// A face box in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// The faces `tests/data/faces.json` (given as its bytes) labels on `photo`, in photo pixels;
/// `None` where it has no list of faces for that photo.
pub fn labelled_faces(faces_json: &[u8], photo: &str) -> Option<Vec<FaceBox>> {
    let labels: serde_json::Value = serde_json::from_slice(faces_json)
        .unwrap_or_else(|e| panic!("faces.json is not JSON: {e}"));
    let number = |f: &serde_json::Value, key: &str| {
        f[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{photo}: a face without a number {key}: {f}")) as f32
    };
    let faces = labels[photo]["faces"].as_array()?;
    Some(
        faces
            .iter()
            .map(|f| FaceBox {
                x: number(f, "x"),
                y: number(f, "y"),
                w: number(f, "width"),
                h: number(f, "height"),
            })
            .collect(),
    )
}

/// Writes to `out` a clip of `frames` frames of `size` at 25 fps with a 440 Hz tone (AAC, so
/// a test can check the sound is kept): a window of `image` that pans left to right and zooms
/// in by a fifth, so every face moves and grows. Returns each frame's boxes of `faces` (given
/// in `image` pixels), those wholly inside the frame only: a face cut by the edge is judged
/// elsewhere.
pub fn pan_clip(
    image: &RgbImage,
    faces: &[FaceBox],
    out: &Path,
    size: (u32, u32),
    frames: u32,
) -> Vec<Vec<FaceBox>> {
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
        .unwrap_or_else(|e| panic!("starting ffmpeg: {e}"));
    let mut stdin = child.stdin.take().expect("ffmpeg's stdin is piped");
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
            image,
            x0.round() as u32,
            y0.round() as u32,
            cw.round() as u32,
            ch.round() as u32,
        )
        .to_image();
        let frame =
            image::imageops::resize(&crop, size.0, size.1, image::imageops::FilterType::Triangle);
        stdin
            .write_all(frame.as_raw())
            .unwrap_or_else(|e| panic!("writing frame {i} to ffmpeg: {e}"));
        let scale = size.0 as f32 / cw;
        truth.push(
            faces
                .iter()
                .map(|f| FaceBox {
                    x: (f.x - x0) * scale,
                    y: (f.y - y0) * scale,
                    w: f.w * scale,
                    h: f.h * scale,
                })
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
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("waiting for ffmpeg: {e}"));
    assert!(status.success(), "ffmpeg failed making {}", out.display());
    truth
}

/// Every frame of the video at `path`, decoded.
pub fn frames_of(path: &Path) -> Vec<RgbImage> {
    let info = probe(path).unwrap_or_else(|e| panic!("probing {}: {e}", path.display()));
    FrameReader::open(path, &info, 100_000)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
        .map(|frame| frame.unwrap_or_else(|e| panic!("decoding {}: {e}", path.display())))
        .collect()
}

/// Mean squared horizontal + vertical grey-level difference inside the inner 80 % of `b`:
/// the detail a viewer would recognise a face by. A hidden face keeps little of it.
pub fn detail(image: &RgbImage, b: FaceBox) -> f64 {
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

/// Asserts every face of `truth` (a frame's boxes per frame) keeps under a fifth of its
/// detail from `original` in `hidden`, the same frames after anonymizing; returns how many
/// faces it checked, so a test can tell that the clip showed enough of them.
pub fn assert_faces_hidden(
    original: &[RgbImage],
    hidden: &[RgbImage],
    truth: &[Vec<FaceBox>],
) -> usize {
    let mut checked = 0;
    for (i, faces) in truth.iter().enumerate() {
        for face in faces {
            let (kept, was) = (detail(&hidden[i], *face), detail(&original[i], *face));
            assert!(
                kept < 0.2 * was,
                "frame {i}: face {face:?} keeps {kept:.1} of {was:.1} detail"
            );
            checked += 1;
        }
    }
    checked
}

/// Asserts `out`, the anonymized copy of `clip`, is whole — `size`, the input's frame count
/// and rate, its AAC sound kept, one decoded frame per frame of `truth` — and that every face
/// of `truth` is hidden ([`assert_faces_hidden`]). Returns the frames of `clip` and of `out`,
/// for further checks, and how many faces were checked.
pub fn assert_anonymized(
    clip: &Path,
    out: &Path,
    size: (u32, u32),
    truth: &[Vec<FaceBox>],
) -> (Vec<RgbImage>, Vec<RgbImage>, usize) {
    let probed = |path: &Path| probe(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (before, after) = (probed(clip), probed(out));
    assert_eq!((after.width, after.height), size);
    assert_eq!(after.frames, before.frames);
    assert_eq!(after.frame_rate, before.frame_rate);
    assert_eq!(
        after.audio_codec.as_deref(),
        Some("aac"),
        "the sound is kept"
    );
    let (original, hidden) = (frames_of(clip), frames_of(out));
    assert_eq!(hidden.len(), truth.len());
    let checked = assert_faces_hidden(&original, &hidden, truth);
    (original, hidden, checked)
}
