//! Tasks on the frames of a video. A [`VideoJob`] takes frames in order and gives back each
//! frame's result in order, possibly later: a job that looks ahead (anonymize hides a face
//! seen in the next frames too) holds frames until it can finish them. Tasks without a
//! temporal job of their own run each frame as a photo, two frames at a time so both cores
//! work whatever the task's own parallelism.

use std::sync::Arc;

use percept_core::{Decoded, RgbImage};

use crate::task::{Stages, Task, TaskOutput, VideoJob};
use crate::{Options, TaskError};

/// The job that runs `task` with `options` over a video of `frame_rate` frames per second: the
/// task's own temporal job where it has one (options are checked here, before any frame is
/// decoded), else frame by frame.
pub fn video_job(
    task: Arc<dyn Task>,
    options: Options,
    frame_rate: f64,
) -> Result<Box<dyn VideoJob>, TaskError> {
    if let Some(job) = task.video(options.clone(), frame_rate) {
        return job;
    }
    // Validates the options once, up front, as `prepare` does for a photo.
    drop(task.prepare(options.clone())?);
    Ok(Box::new(FrameByFrame {
        task,
        options,
        waiting: None,
    }))
}

/// Each frame as a photo; frames are paired so two run at once.
struct FrameByFrame {
    task: Arc<dyn Task>,
    options: Options,
    waiting: Option<RgbImage>,
}

impl FrameByFrame {
    fn run(&self, frame: RgbImage) -> Result<TaskOutput, TaskError> {
        let job = self.task.prepare(self.options.clone())?;
        job(Decoded::from_frame(frame), &mut Stages::default())
    }
}

impl VideoJob for FrameByFrame {
    fn push(&mut self, frame: RgbImage) -> Result<Vec<TaskOutput>, TaskError> {
        let Some(first) = self.waiting.take() else {
            self.waiting = Some(frame);
            return Ok(Vec::new());
        };
        let (a, b) = rayon::join(|| self.run(first), || self.run(frame));
        Ok(vec![a?, b?])
    }

    fn flush(&mut self) -> Result<Vec<TaskOutput>, TaskError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<Vec<TaskOutput>, TaskError> {
        self.waiting
            .take()
            .map(|frame| self.run(frame))
            .into_iter()
            .collect()
    }
}
