//! Decoding: `ffmpeg` writes the video's frames as raw RGB on its stdout; a thread cuts them
//! into images and hands them over a channel of two, so decoding overlaps the work on the
//! previous frames and memory stays at a few frames whatever the video's length.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use image::RgbImage;

use crate::process::{Running, program};
use crate::{Result, VideoError, VideoInfo};

/// Frames decoded ahead of the consumer.
const AHEAD: usize = 2;

/// The frames of one video, in order, as upright RGB images of `info`'s size.
pub struct FrameReader {
    frames: flume::Receiver<Result<RgbImage>>,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameReader")
    }
}

impl FrameReader {
    /// Starts decoding `path`, whose facts `probe` read as `info`. More than `max_frames`
    /// frames ends the stream with [`VideoError::TooLarge`].
    pub fn open(path: &Path, info: &VideoInfo, max_frames: u64) -> Result<Self> {
        let child = Command::new(program("ffmpeg")?)
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
            .arg(path)
            // The first video stream only, every frame as decoded (no frame-rate conversion
            // duplicating or dropping frames), as packed 8-bit RGB.
            .args(["-map", "0:v:0", "-fps_mode", "passthrough"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| VideoError::io("cannot start ffmpeg", e))?;
        let mut running = Running::new(child, "ffmpeg decoding");
        let stdout = running
            .child_mut()
            .stdout
            .take()
            .ok_or_else(|| VideoError::Ffmpeg("ffmpeg's stdout was not piped".into()))?;
        let (width, height) = (info.width, info.height);
        let (sender, frames) = flume::bounded(AHEAD);
        std::thread::Builder::new()
            .name("video-decode".into())
            .spawn(move || decode_loop(running, stdout, width, height, max_frames, &sender))
            .map_err(|e| VideoError::io("cannot start the decoding thread", e))?;
        Ok(Self { frames })
    }
}

fn decode_loop(
    running: Running,
    mut stdout: std::process::ChildStdout,
    width: u32,
    height: u32,
    max_frames: u64,
    sender: &flume::Sender<Result<RgbImage>>,
) {
    let frame_bytes = width as usize * height as usize * 3;
    let mut count = 0u64;
    let failure = loop {
        let mut buffer = vec![0u8; frame_bytes];
        match read_full(&mut stdout, &mut buffer) {
            Ok(0) => break None,
            Ok(n) if n < frame_bytes => {
                break Some(VideoError::Ffmpeg(format!(
                    "the decoder's last frame was cut short ({n} of {frame_bytes} bytes)"
                )));
            }
            Ok(_) => {}
            Err(e) => break Some(VideoError::io("cannot read ffmpeg's frames", e)),
        }
        count += 1;
        if count > max_frames {
            break Some(VideoError::TooLarge(format!(
                "the video has more than {max_frames} frames, the configured limit"
            )));
        }
        let Some(image) = RgbImage::from_raw(width, height, buffer) else {
            break Some(VideoError::Ffmpeg("a frame of the wrong size".into()));
        };
        // The consumer stopped (an error, or it had enough): end ffmpeg with it.
        if sender.send(Ok(image)).is_err() {
            return;
        }
    };
    drop(stdout);
    let outcome = match failure {
        // On an early stop ffmpeg is still writing: end it before reporting.
        Some(error) => {
            let mut running = running;
            running.kill();
            Err(error)
        }
        None => running.wait(),
    };
    if let Err(error) = outcome {
        let _ = sender.send(Err(error));
    }
}

/// Reads until `buffer` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Iterator for FrameReader {
    type Item = Result<RgbImage>;

    fn next(&mut self) -> Option<Self::Item> {
        // The thread's sender drops at the end of the stream.
        self.frames.recv().ok()
    }
}
