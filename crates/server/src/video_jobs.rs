//! Video files through async jobs, whichever store holds the job: the checks at submission
//! (FFmpeg present, a readable video, frame size, duration), and the run — frames decoded by
//! FFmpeg, through the task's `VideoJob`, encoded to an MP4 with the input's audio — on the
//! shared `WorkPool`, with progress counted in frames.
//!
//! Why the pool runs a video in steps (a few hundred milliseconds of frames each, one queue
//! slot at a time) rather than as one long piece of work: a ten-minute video would hold a
//! worker for many minutes, and two of them every worker of a 2-core server, so photos would
//! wait past their deadline. In steps, a video takes its turn in the same bounded queue as
//! every request, the work of other requests runs between its steps, and a full queue makes a
//! video wait (it retries) instead of refusing photos. The number of video jobs accepted at
//! once is bounded separately by each job store (their files are large).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use percept_tasks::{Options, Task, TaskOutput, VideoJob, video_job};
use percept_video::{FrameReader, FrameWriter, VideoError, VideoInfo, WriterSettings};
use serde_json::{Map, Value, json};

use crate::pool::PoolError;
use crate::runner::Runner;
use crate::{ApiError, Config, ErrorCode};

/// Work done on a worker before a video gives its place back to the queue.
const STEP: Duration = Duration::from_millis(300);
/// How long a video step waits before trying a full queue again.
const RETRY: Duration = Duration::from_millis(100);
/// The result video's content type: jobs always write MP4 (H.264, AAC or the input's audio).
pub(crate) const VIDEO_TYPE: &str = "video/mp4";
/// The per-frame fields summed in a video's summary (`counts`): what each task finds.
const COUNTED: &[&str] = &["faces", "hidden", "people", "persons"];

impl From<VideoError> for ApiError {
    fn from(error: VideoError) -> Self {
        let message = error.to_string();
        match error {
            VideoError::FfmpegMissing { .. } => Self::new(ErrorCode::VideoUnsupported, message),
            VideoError::Invalid(_) => Self::new(ErrorCode::InvalidVideo, message),
            VideoError::TooLarge(_) => Self::new(ErrorCode::VideoTooLarge, message),
            // FFmpeg stopping mid-stream is almost always a damaged file; its message is the
            // end of FFmpeg's stderr.
            VideoError::Ffmpeg(_) => Self::new(ErrorCode::InvalidVideo, message),
            VideoError::Io { .. } => Self::internal(message),
        }
    }
}

/// A video job's progress in frames, shared by the run (which counts) and the job store
/// (which reports it).
#[derive(Debug, Default)]
pub(crate) struct Progress {
    done: AtomicU64,
    /// 0 while unknown.
    total: AtomicU64,
    /// Set when the job is cancelled; the run stops at its next frame.
    cancelled: AtomicBool,
}

impl Progress {
    pub(crate) fn new(total: Option<u64>) -> Self {
        Self {
            done: AtomicU64::new(0),
            total: AtomicU64::new(total.unwrap_or(0)),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Stops the run at its next frame (it then fails with `not_found`, the job being gone).
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub(crate) fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|n| *n > 0)
    }

    /// `{frames_done, frames_total}` (`frames_total` null while unknown).
    pub(crate) fn json(&self) -> Value {
        progress_json(self.done(), self.total())
    }
}

/// Where a video job's output video is served.
pub(crate) fn video_url(id: &str) -> String {
    format!("/v1/jobs/{id}/video")
}

/// The `progress` object of a job's status.
pub(crate) fn progress_json(done: u64, total: Option<u64>) -> Value {
    json!({"frames_done": done, "frames_total": total})
}

/// Checks an uploaded video before it is accepted: FFmpeg present (`video_unsupported`), a
/// video FFmpeg reads (`invalid_video`), frames within the pixel limits (`image_too_large`),
/// no longer than `max_video_seconds` (`video_too_large`). Runs ffprobe off the async threads.
pub(crate) async fn check(config: &Config, path: &Path) -> Result<VideoInfo, ApiError> {
    // Both programs, before the 202: without `ffmpeg` the job could only fail later.
    if !percept_video::installed() {
        return Err(VideoError::FfmpegMissing { program: "ffmpeg" }.into());
    }
    let owned = path.to_path_buf();
    let info = tokio::task::spawn_blocking(move || percept_video::probe(&owned))
        .await
        .map_err(ApiError::internal)??;
    let limits = config.decode_limits();
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels > limits.max_pixels || info.width.max(info.height) > limits.max_side {
        return Err(ApiError::new(
            ErrorCode::ImageTooLarge,
            format!(
                "the video's {}×{} frames are over the pixel limit ({} pixels, {} px a side)",
                info.width, info.height, limits.max_pixels, limits.max_side
            ),
        ));
    }
    let seconds = duration(&info);
    if seconds.is_some_and(|s| s > config.max_video_seconds as f64) {
        return Err(ApiError::new(
            ErrorCode::VideoTooLarge,
            format!(
                "the video lasts {:.1} s, over the {} s limit (max_video_seconds)",
                seconds.unwrap_or_default(),
                config.max_video_seconds
            ),
        ));
    }
    Ok(info)
}

/// The video's length in seconds: the container's, else its frames at its rate.
fn duration(info: &VideoInfo) -> Option<f64> {
    info.duration
        .or_else(|| info.frames.map(|n| n as f64 / info.frame_rate.fps()))
}

/// The most frames decoded before a job stops with `video_too_large`: `max_video_seconds` at
/// the video's rate, with a tenth of slack for variable-rate videos. It bounds a container
/// that understates its length.
fn max_frames(config: &Config, info: &VideoInfo) -> u64 {
    (config.max_video_seconds as f64 * info.frame_rate.fps() * 1.1).ceil() as u64 + 1
}

/// A finished job's video, in its own temporary folder (in `TMPDIR`), removed when the last
/// holder (the job store, a download in progress) drops it.
#[derive(Debug)]
pub(crate) struct StoredVideo {
    _dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
}

/// Runs `task` over the video at `input` (checked by [`check`] as `info`): returns the
/// output video and the summary JSON. `progress` counts frames as they are written.
pub(crate) async fn run(
    runner: &Arc<Runner>,
    task: Arc<dyn Task>,
    options: Options,
    input: &Path,
    info: &VideoInfo,
    progress: &Arc<Progress>,
) -> Result<(StoredVideo, Value), ApiError> {
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("percept-video-")
        .tempdir()
        .map_err(|e| ApiError::internal(format!("cannot create a folder in TMPDIR: {e}")))?;
    let target = dir.path().join("output.mp4");
    let job = video_job(Arc::clone(&task), options, info.frame_rate.fps())?;
    let reader = FrameReader::open(input, info, max_frames(&runner.config, info))?;
    let writer = FrameWriter::create(&target, info, Some(input), &WriterSettings::default())?;
    let pipeline = Arc::new(Mutex::new(Pipeline {
        reader,
        job,
        writer: Some(writer),
        task: task.name().to_string(),
        counts: Counts::default(),
        written: 0,
        progress: Arc::clone(progress),
    }));
    loop {
        let step = Arc::clone(&pipeline);
        let deadline = Instant::now() + runner.config.deadline();
        let submitted = runner.pool.submit(deadline, move || {
            step.lock().unwrap_or_else(PoisonError::into_inner).step()
        });
        let outcome = match submitted {
            Ok(pending) => pending.await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok((Ok(true), _)) => break,
            Ok((Ok(false), _)) => {}
            Ok((Err(error), _)) => return Err(error),
            // A busy server: the video waits its turn, photos keep theirs.
            Err(PoolError::QueueFull { .. } | PoolError::Expired) => {
                tokio::time::sleep(RETRY).await;
            }
            Err(error) => return Err(runner.pool_error(error)),
        }
    }
    let (written, counts) = {
        let pipeline = pipeline.lock().unwrap_or_else(PoisonError::into_inner);
        (pipeline.written, pipeline.counts.json())
    };
    let bytes = std::fs::metadata(&target)
        .map_err(|e| ApiError::internal(format!("the output video is missing: {e}")))?
        .len();
    let seconds = started.elapsed().as_secs_f64();
    let fps = info.frame_rate.fps();
    let summary = json!({
        "task": task.name(),
        "kind": "video",
        "frames": written,
        "width": info.width,
        "height": info.height,
        "frame_rate": fps,
        "duration": ((written as f64 / fps) * 1000.0).round() / 1000.0,
        "audio": info.audio_codec,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "frames_per_second": if seconds > 0.0 { ((written as f64 / seconds) * 100.0).round() / 100.0 } else { 0.0 },
        "counts": counts,
        "content_type": VIDEO_TYPE,
        "video_bytes": bytes,
    });
    Ok((
        StoredVideo {
            _dir: dir,
            path: target,
            bytes,
        },
        summary,
    ))
}

/// Decoder → the task's video job → encoder, advanced one step at a time on a worker.
struct Pipeline {
    reader: FrameReader,
    job: Box<dyn VideoJob>,
    writer: Option<FrameWriter>,
    task: String,
    counts: Counts,
    written: u64,
    progress: Arc<Progress>,
}

impl Pipeline {
    /// Runs frames for about [`STEP`]; `true` once the whole video is written.
    fn step(&mut self) -> Result<bool, ApiError> {
        let start = Instant::now();
        while start.elapsed() < STEP {
            if self.progress.is_cancelled() {
                return Err(ApiError::not_found("the job was cancelled"));
            }
            match self.reader.next() {
                Some(frame) => {
                    let outputs = self.job.push(frame?)?;
                    self.emit(outputs)?;
                }
                None => {
                    let outputs = self.job.finish()?;
                    self.emit(outputs)?;
                    if let Some(writer) = self.writer.take() {
                        writer.finish()?;
                    }
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn emit(&mut self, outputs: Vec<TaskOutput>) -> Result<(), ApiError> {
        for output in outputs {
            self.counts.add(&output.json);
            let image = output.image.ok_or_else(|| draws_nothing(&self.task))?;
            if let Some(writer) = self.writer.as_mut() {
                writer.write(image)?;
            }
            self.written += 1;
            self.progress.done.store(self.written, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Per-frame findings summed over the video: for each of [`COUNTED`] present, the total,
/// the most in one frame and the frames with at least one.
#[derive(Debug, Default)]
struct Counts {
    by_field: BTreeMap<&'static str, (u64, u64, u64)>,
}

impl Counts {
    fn add(&mut self, frame: &Map<String, Value>) {
        for field in COUNTED {
            if let Some(Value::Array(items)) = frame.get(*field) {
                let n = items.len() as u64;
                let entry = self.by_field.entry(field).or_default();
                entry.0 += n;
                entry.1 = entry.1.max(n);
                entry.2 += u64::from(n > 0);
            }
        }
    }

    fn json(&self) -> Value {
        let fields: Map<String, Value> = self
            .by_field
            .iter()
            .map(|(field, (total, max, frames))| {
                (
                    (*field).to_string(),
                    json!({"total": total, "max_per_frame": max, "frames_with": frames}),
                )
            })
            .collect();
        Value::Object(fields)
    }
}

/// A video job whose task draws no frame (`Task::draws`): refused when submitted, and an error
/// at the first frame should a task draw none after all.
pub(crate) fn draws_nothing(task: &str) -> ApiError {
    ApiError::bad_option(format!(
        "`{task}` draws nothing to write as a video (with these options)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_each_found_field() {
        let mut counts = Counts::default();
        for faces in [2, 0, 3] {
            let frame = json!({"faces": vec![json!({}); faces], "width": 3});
            counts.add(frame.as_object().unwrap_or(&Map::new()));
        }
        assert_eq!(
            counts.json(),
            json!({"faces": {"total": 5, "max_per_frame": 3, "frames_with": 2}})
        );
    }

    #[test]
    fn video_errors_keep_their_codes() {
        let code = |e: VideoError| ApiError::from(e).code;
        assert_eq!(
            code(VideoError::FfmpegMissing { program: "ffmpeg" }),
            ErrorCode::VideoUnsupported
        );
        assert_eq!(
            code(VideoError::Invalid("x".into())),
            ErrorCode::InvalidVideo
        );
        assert_eq!(
            code(VideoError::TooLarge("x".into())),
            ErrorCode::VideoTooLarge
        );
    }
}
