//! `percept run <task> clip.mp4 -o out.mp4` and `percept batch` over videos: frames decoded
//! by FFmpeg, run through the task's video job (anonymize tracks faces across frames), and
//! encoded with the input's audio, size, rate and frame count. Memory stays at a few frames
//! (the decoder's and encoder's queues plus what the job looks ahead).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use percept_server::{ApiError, Config, ErrorCode};
use percept_tasks::{Options, Task, TaskOutput, video_job};
use percept_video::{FrameReader, FrameWriter, VideoError, VideoInfo, WriterSettings, probe};
use serde_json::{Value, json};

use crate::run::RunError;

/// Whether the file at `path` is a video, by its first bytes (never by its name).
pub(crate) fn is_video(path: &Path) -> bool {
    if path == Path::new("-") {
        return false;
    }
    let mut head = Vec::with_capacity(256);
    let read = std::fs::File::open(path).and_then(|file| file.take(256).read_to_end(&mut head));
    read.is_ok() && percept_video::looks_like_video(&head)
}

impl From<VideoError> for RunError {
    fn from(error: VideoError) -> Self {
        let message = error.to_string();
        match error {
            VideoError::FfmpegMissing { .. } => {
                RunError::Api(ApiError::new(ErrorCode::VideoUnsupported, message))
            }
            VideoError::Invalid(_) => {
                RunError::Api(ApiError::new(ErrorCode::InvalidVideo, message))
            }
            VideoError::TooLarge(_) => {
                RunError::Api(ApiError::new(ErrorCode::ImageTooLarge, message))
            }
            VideoError::Ffmpeg(_) | VideoError::Io { .. } => RunError::Io(message),
        }
    }
}

/// Where one video's result goes: `-o` a video file, or a folder (for several inputs) where
/// it keeps its name and container.
pub(crate) fn output_for(output: Option<&Path>, input: &Path) -> Result<Option<PathBuf>, RunError> {
    let Some(output) = output else {
        return Ok(None);
    };
    if output == Path::new("-") {
        return Err(RunError::Api(ApiError::bad_option(
            "a video is written to a file (-o out.mp4), not to standard output",
        )));
    }
    if output.is_dir() {
        let name = if percept_video::has_video_extension(input) {
            input.file_name().map(PathBuf::from)
        } else {
            input
                .file_stem()
                .map(|stem| PathBuf::from(stem).with_extension("mp4"))
        };
        let name = name.unwrap_or_else(|| PathBuf::from("video.mp4"));
        return Ok(Some(output.join(name)));
    }
    if !percept_video::has_video_extension(output) {
        return Err(RunError::Api(ApiError::bad_option(format!(
            "{} is a video: -o names a video file ({}) or a folder",
            input.display(),
            percept_video::VIDEO_EXTENSIONS
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))));
    }
    Ok(Some(output.to_path_buf()))
}

/// How one video is run.
pub(crate) struct VideoRun<'a> {
    pub(crate) task: Arc<dyn Task>,
    pub(crate) options: Options,
    pub(crate) input: &'a Path,
    pub(crate) output: Option<PathBuf>,
    /// Called with each frame's JSON (the task's fields plus `frame` and `time`).
    pub(crate) on_frame: Option<&'a mut dyn FnMut(Value)>,
    /// Draw a progress bar (frames/s and ETA) on stderr when it is a terminal.
    pub(crate) progress: bool,
    pub(crate) config: &'a Config,
}

/// What `run` and `batch` report for one video.
pub(crate) fn summary_json(info: &VideoInfo, frames: u64, seconds: f64, task: &str) -> Value {
    json!({
        "task": task,
        "frames": frames,
        "width": info.width,
        "height": info.height,
        "frame_rate": info.frame_rate.fps(),
        "audio": info.audio_codec,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "frames_per_second": if seconds > 0.0 { ((frames as f64 / seconds) * 100.0).round() / 100.0 } else { 0.0 },
    })
}

impl VideoRun<'_> {
    /// Decodes, runs and encodes the whole video; returns its summary JSON (with `output`).
    pub(crate) fn run(mut self) -> Result<Value, RunError> {
        let start = Instant::now();
        let info = probe(self.input)?;
        let limits = self.config.decode_limits();
        let pixels = u64::from(info.width) * u64::from(info.height);
        if pixels > limits.max_pixels || info.width.max(info.height) > limits.max_side {
            return Err(RunError::Api(ApiError::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "{}'s {}×{} frames are over the pixel limit ({} pixels, {} px a side)",
                    self.input.display(),
                    info.width,
                    info.height,
                    limits.max_pixels,
                    limits.max_side
                ),
            )));
        }
        let mut options = self.options.clone();
        // Nothing is written: a task that can skip drawing does (holistic's drawing is about a
        // tenth of a 720p frame's time), unless the request asked for it.
        if self.output.is_none() {
            options.default_unless_given(self.task.options(), "draw", Value::Bool(false));
        }
        if self.output.is_some() && !self.task.draws(&options) {
            return Err(RunError::Api(ApiError::bad_option(format!(
                "`{}` draws nothing to write as a video; leave out -o (--json prints each \
                 frame's result)",
                self.task.name()
            ))));
        }
        let mut job = video_job(self.task.clone(), options, info.frame_rate.fps())?;
        let mut writer = self
            .output
            .as_deref()
            .map(|out| {
                FrameWriter::create(out, &info, Some(self.input), &WriterSettings::default())
            })
            .transpose()?;
        let bar = self.progress_bar(&info);
        let mut written = 0u64;
        let mut emit = |outputs: Vec<TaskOutput>,
                        writer: &mut Option<FrameWriter>,
                        on_frame: &mut Option<&mut dyn FnMut(Value)>|
         -> Result<(), RunError> {
            for output in outputs {
                if let Some(callback) = on_frame.as_deref_mut() {
                    let mut fields = output.json;
                    fields.insert("frame".into(), json!(written));
                    let time = written as f64 / info.frame_rate.fps();
                    fields.insert("time".into(), json!((time * 1000.0).round() / 1000.0));
                    callback(Value::Object(fields));
                }
                if let Some(writer) = writer.as_mut() {
                    let image = output.image.ok_or_else(|| {
                        RunError::Api(ApiError::bad_option(format!(
                            "`{}` draws nothing to write as a video; leave out -o (--json \
                             prints each frame's result)",
                            self.task.name()
                        )))
                    })?;
                    writer.write(image)?;
                }
                written += 1;
                bar.set_position(written);
            }
            Ok(())
        };
        for frame in FrameReader::open(self.input, &info, u64::MAX)? {
            let outputs = job.push(frame?)?;
            emit(outputs, &mut writer, &mut self.on_frame)?;
        }
        let outputs = job.finish()?;
        emit(outputs, &mut writer, &mut self.on_frame)?;
        // The encoder's last frames count: the time is the whole video's, written.
        let path = writer.map(FrameWriter::finish).transpose()?;
        bar.finish_and_clear();
        let mut summary = summary_json(
            &info,
            written,
            start.elapsed().as_secs_f64(),
            self.task.name(),
        );
        if let Some(path) = path {
            summary["output"] = Value::String(path.display().to_string());
        }
        Ok(summary)
    }

    fn progress_bar(&self, info: &VideoInfo) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = match info.frames {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} {bar:30} {pos}/{len} frames · {per_sec} · ETA {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(self.input.display().to_string());
        bar
    }
}
