//! Encoding: frames go as raw RGB into `ffmpeg`'s stdin (from a thread, over a channel of
//! two, so encoding overlaps the work on the next frames), which muxes them with the input's
//! audio copied unchanged. The output is written to a temporary file beside the target and
//! renamed only when FFmpeg succeeded: a failed run never leaves a half-written video, which
//! for anonymisation could show faces that a later frame would have hidden.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use image::RgbImage;

use crate::process::{Running, program};
use crate::sniff::VIDEO_EXTENSIONS;
use crate::{Result, VideoError, VideoInfo};

/// Frames queued for the encoder.
const QUEUED: usize = 2;

/// How the video stream is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    /// x264's / VP9's constant-quality factor: lower is better and larger.
    pub crf: u8,
    /// x264's speed preset: `veryfast`, so encoding leaves the cores to the models (other
    /// presets not measured here).
    pub preset: &'static str,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            crf: 18,
            preset: "veryfast",
        }
    }
}

/// Audio codecs each container takes as they are; any other is re-encoded.
fn audio_copies(extension: &str, codec: &str) -> bool {
    match extension {
        "mkv" => true,
        "webm" => matches!(codec, "opus" | "vorbis"),
        "avi" => matches!(codec, "mp3" | "ac3" | "pcm_s16le"),
        _ => matches!(codec, "aac" | "mp3" | "alac" | "ac3" | "eac3"),
    }
}

/// The encoder arguments for an output of `extension`.
fn video_args(extension: &str, info: &VideoInfo, settings: &WriterSettings) -> Vec<String> {
    let crf = settings.crf.to_string();
    if extension == "webm" {
        return [
            "-c:v",
            "libvpx-vp9",
            "-b:v",
            "0",
            "-crf",
            &crf,
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-pix_fmt",
            "yuv420p",
        ]
        .map(String::from)
        .to_vec();
    }
    // 4:2:0 needs even sides; an odd-sized video keeps its size in 4:4:4.
    let even = info.width.is_multiple_of(2) && info.height.is_multiple_of(2);
    let pixels = if even { "yuv420p" } else { "yuv444p" };
    let mut args: Vec<String> = [
        "-c:v",
        "libx264",
        "-preset",
        settings.preset,
        "-crf",
        &crf,
        "-pix_fmt",
        pixels,
    ]
    .map(String::from)
    .to_vec();
    if matches!(extension, "mp4" | "m4v" | "mov") {
        // The index at the front: the video plays while it downloads.
        args.extend(["-movflags", "+faststart"].map(String::from));
    }
    args
}

/// Writes frames of `info`'s size and rate to a video file.
pub struct FrameWriter {
    frames: Option<flume::Sender<RgbImage>>,
    feeder: Option<JoinHandle<std::io::Result<()>>>,
    running: Option<Running>,
    temporary: Option<tempfile::TempPath>,
    target: PathBuf,
    size: (u32, u32),
}

impl std::fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWriter")
            .field("target", &self.target)
            .finish()
    }
}

impl FrameWriter {
    /// Starts an encoder writing `target` (its extension picks the container, one of
    /// [`VIDEO_EXTENSIONS`]); `audio_from` is the input whose first audio stream is copied.
    /// Metadata (titles, GPS position, creation time) and subtitles are not carried over.
    pub fn create(
        target: &Path,
        info: &VideoInfo,
        audio_from: Option<&Path>,
        settings: &WriterSettings,
    ) -> Result<Self> {
        let extension = target
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .filter(|e| VIDEO_EXTENSIONS.contains(&e.as_str()))
            .ok_or_else(|| {
                VideoError::Invalid(format!(
                    "cannot write {}: a video's extension picks its container, one of {}",
                    target.display(),
                    VIDEO_EXTENSIONS.join(", ")
                ))
            })?;
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temporary = tempfile::Builder::new()
            .prefix(".percept-")
            .suffix(&format!(".{extension}"))
            .tempfile_in(&folder)
            .map_err(|e| VideoError::io(format!("cannot write in {}", folder.display()), e))?
            .into_temp_path();

        let mut command = Command::new(program("ffmpeg")?);
        command
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
            .args(["-s", &format!("{}x{}", info.width, info.height)])
            .args(["-framerate", &info.frame_rate.to_string()])
            .args(["-i", "pipe:0"]);
        let audio = audio_from.zip(info.audio_codec.as_deref());
        if let Some((input, _)) = audio {
            command.arg("-i").arg(input);
        }
        command.args(["-map", "0:v:0"]);
        if let Some((_, codec)) = audio {
            command.args(["-map", "1:a:0"]);
            if audio_copies(&extension, codec) {
                command.args(["-c:a", "copy"]);
            } else {
                let encoder = if extension == "webm" {
                    "libopus"
                } else {
                    "aac"
                };
                command.args(["-c:a", encoder]);
            }
        }
        command
            .args(video_args(&extension, info, settings))
            .args(["-map_metadata", "-1", "-map_chapters", "-1"])
            .arg(&*temporary)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .map_err(|e| VideoError::io("cannot start ffmpeg", e))?;
        let mut running = Running::new(child, "ffmpeg encoding");
        let mut stdin = running
            .child_mut()
            .stdin
            .take()
            .ok_or_else(|| VideoError::Ffmpeg("ffmpeg's stdin was not piped".into()))?;
        let (sender, frames) = flume::bounded::<RgbImage>(QUEUED);
        let feeder = std::thread::Builder::new()
            .name("video-encode".into())
            .spawn(move || {
                for frame in frames.iter() {
                    stdin.write_all(frame.as_raw())?;
                }
                stdin.flush()
            })
            .map_err(|e| VideoError::io("cannot start the encoding thread", e))?;
        Ok(Self {
            frames: Some(sender),
            feeder: Some(feeder),
            running: Some(running),
            temporary: Some(temporary),
            target: target.to_path_buf(),
            size: (info.width, info.height),
        })
    }

    /// Queues one frame (blocks while two are waiting).
    pub fn write(&mut self, frame: RgbImage) -> Result<()> {
        if frame.dimensions() != self.size {
            return Err(VideoError::Invalid(format!(
                "a {}×{} frame for a {}×{} video",
                frame.width(),
                frame.height(),
                self.size.0,
                self.size.1
            )));
        }
        let sent = self.frames.as_ref().map(|s| s.send(frame).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The feeder stopped: FFmpeg closed its input. Its stderr says why.
        self.frames = None;
        Err(self.stop_with_error())
    }

    /// The error that stopped the encoder, after ending it.
    fn stop_with_error(&mut self) -> VideoError {
        let fed = self.feeder.take().map(|h| h.join());
        let waited = self.running.take().map(Running::wait);
        match (waited, fed) {
            (Some(Err(e)), _) => e,
            (_, Some(Ok(Err(e)))) => VideoError::io("cannot feed ffmpeg", e),
            _ => VideoError::Ffmpeg("the encoder stopped early".into()),
        }
    }

    /// Ends the stream, waits for FFmpeg and moves the finished file into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.frames = None;
        let fed = self.feeder.take().map(|h| h.join());
        let waited = self.running.take().map(Running::wait).transpose();
        waited?;
        match fed {
            Some(Ok(Ok(()))) | None => {}
            Some(Ok(Err(e))) => return Err(VideoError::io("cannot feed ffmpeg", e)),
            Some(Err(_)) => return Err(VideoError::Ffmpeg("the encoding thread panicked".into())),
        }
        let temporary = self
            .temporary
            .take()
            .ok_or_else(|| VideoError::Ffmpeg("the output was already moved".into()))?;
        temporary.persist(&self.target).map_err(|e| {
            VideoError::io(format!("cannot write {}", self.target.display()), e.error)
        })?;
        Ok(self.target.clone())
    }
}

impl Drop for FrameWriter {
    fn drop(&mut self) {
        // Not finished: stop FFmpeg; the temporary file is removed with `temporary`.
        self.frames = None;
        if let Some(mut running) = self.running.take() {
            running.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameRate;

    fn info(width: u32, height: u32) -> VideoInfo {
        VideoInfo {
            width,
            height,
            frame_rate: FrameRate { num: 25, den: 1 },
            frames: None,
            duration: None,
            video_codec: "h264".into(),
            audio_codec: None,
            container: String::new(),
        }
    }

    #[test]
    fn odd_sides_keep_their_size_in_444() {
        let args = video_args("mp4", &info(641, 480), &WriterSettings::default());
        assert!(args.contains(&"yuv444p".to_string()), "{args:?}");
        let args = video_args("mp4", &info(640, 480), &WriterSettings::default());
        assert!(args.contains(&"yuv420p".to_string()), "{args:?}");
        assert!(args.contains(&"+faststart".to_string()));
        let args = video_args("webm", &info(640, 480), &WriterSettings::default());
        assert!(args.contains(&"libvpx-vp9".to_string()));
    }

    #[test]
    fn audio_is_copied_where_the_container_takes_it() {
        assert!(audio_copies("mp4", "aac"));
        assert!(!audio_copies("mp4", "opus"));
        assert!(audio_copies("mkv", "opus"));
        assert!(!audio_copies("webm", "aac"));
    }
}
