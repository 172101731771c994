use std::sync::Arc;

use percept_core::RgbImage;
use percept_vision::{
    Holistic as Pipeline, HolisticOptions, HolisticResult, HolisticTracker, draw_holistic,
};

use serde_json::Value;

use crate::png::grey_png_base64;
use crate::task::{PreparedJob, Stages, Task, TaskOutput, VideoJob};
use crate::{OptionSpec, Options, TaskError};

/// `holistic`: 33 pose + 2 × 21 hand + 468 face-mesh landmarks of every person (MediaPipe
/// Holistic's graph per person), drawn on the photo.
#[derive(Clone)]
pub struct Holistic {
    pipeline: Arc<Pipeline>,
}

impl std::fmt::Debug for Holistic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Holistic")
    }
}

impl Holistic {
    /// The task on a shared pipeline (built once at start from the loaded models).
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline }
    }
}

const MIN_SCORE: OptionSpec = OptionSpec::number(
    "min_score",
    0.5,
    0.05,
    1.0,
    "Minimum person-detector confidence.",
);
const MAX_PEOPLE: OptionSpec = OptionSpec::integer(
    "max_people",
    10,
    1,
    20,
    "Track at most this many people, most prominent first (1: MediaPipe's one person, at its cost).",
);
const MODEL_COMPLEXITY: OptionSpec = OptionSpec::integer(
    "model_complexity",
    1,
    0,
    1,
    "MediaPipe's model_complexity: 0 = BlazePose lite (smaller; ~10 % less time on a group of five), 1 = full.",
);
const REFINE_FACE_LANDMARKS: OptionSpec = OptionSpec::boolean(
    "refine_face_landmarks",
    false,
    "MediaPipe's refine_face_landmarks: 478 face points, both irises (5 points each) added from the iris model.",
);
const ENABLE_SEGMENTATION: OptionSpec = OptionSpec::boolean(
    "enable_segmentation",
    false,
    "MediaPipe's enable_segmentation: `segmentation_mask`, the person mask from the pose model as a greyscale PNG (0-255 for probability 0-1, every tracked person), base64.",
);
const HANDS: OptionSpec =
    OptionSpec::boolean("hands", true, "Track both hands (2 × 21 landmarks).");
const FACE: OptionSpec = OptionSpec::boolean("face", true, "Run the face mesh (468 landmarks).");
const DRAW: OptionSpec = OptionSpec::boolean(
    "draw",
    true,
    "Return the photo with the landmarks drawn (false: JSON only).",
);

const SMOOTH: OptionSpec = OptionSpec::boolean(
    "smooth",
    true,
    "Video only: smooth every point over frames with MediaPipe's One Euro filter (min_cutoff 0.05 Hz, beta 80), so a still person's points do not jitter.",
);
const REDETECT_FRAMES: OptionSpec = OptionSpec::integer(
    "redetect_frames",
    15,
    0,
    1000,
    "Video only: people are followed from frame to frame (MediaPipe's tracking mode) and the detectors run again when everyone is lost, and every this many frames while fewer than max_people are followed (0: only when everyone is lost).",
);

pub(crate) const OPTIONS: &[OptionSpec] = &[
    MIN_SCORE,
    MAX_PEOPLE,
    MODEL_COMPLEXITY,
    REFINE_FACE_LANDMARKS,
    ENABLE_SEGMENTATION,
    HANDS,
    FACE,
    DRAW,
    SMOOTH,
    REDETECT_FRAMES,
];

/// The pipeline's options from the request's.
fn holistic_options(options: &mut Options) -> Result<HolisticOptions, TaskError> {
    Ok(HolisticOptions {
        min_detection_score: options.number(&MIN_SCORE)? as f32,
        hands: options.flag(&HANDS)?,
        face: options.flag(&FACE)?,
        max_people: options.count(&MAX_PEOPLE)?,
        // 0..=1 by the table.
        model_complexity: options.count(&MODEL_COMPLEXITY)? as u8,
        refine_face_landmarks: options.flag(&REFINE_FACE_LANDMARKS)?,
        enable_segmentation: options.flag(&ENABLE_SEGMENTATION)?,
    })
}

impl Task for Holistic {
    fn name(&self) -> &str {
        "holistic"
    }

    fn summary(&self) -> &str {
        "Holistic tracking for every person: 33 pose, 2 × 21 hand and 468 face-mesh landmarks each, drawn on the photo"
    }

    fn options(&self) -> &[OptionSpec] {
        OPTIONS
    }

    fn prepare(&self, options: Options) -> Result<PreparedJob, TaskError> {
        let (holistic_options, draw, _) = settings(options)?;
        let pipeline = self.pipeline.clone();
        Ok(Box::new(move |decoded, stages| {
            let image = decoded.image;
            let result = stages.time("landmarks", || pipeline.run(&image, &holistic_options))?;
            output(&image, &result, draw, stages)
        }))
    }

    fn draws(&self, options: &Options) -> bool {
        settings(options.clone()).map_or(true, |(_, draw, _)| draw)
    }

    fn video(
        &self,
        options: Options,
        frame_rate: f64,
    ) -> Option<Result<Box<dyn VideoJob>, TaskError>> {
        Some(
            settings(options).map(|(options, draw, (smooth, redetect))| {
                Box::new(TrackedHolistic {
                    pipeline: self.pipeline.clone(),
                    tracker: HolisticTracker::new(frame_rate, redetect, smooth),
                    options,
                    draw,
                }) as Box<dyn VideoJob>
            }),
        )
    }
}

/// The request's options, checked: the pipeline's, `draw`, and the video's `smooth` and
/// `redetect_frames`.
fn settings(mut options: Options) -> Result<(HolisticOptions, bool, (bool, u32)), TaskError> {
    let holistic_options = holistic_options(&mut options)?;
    let draw = options.flag(&DRAW)?;
    let smooth = options.flag(&SMOOTH)?;
    // 0..=1000 by the table.
    let redetect = options.count(&REDETECT_FRAMES)? as u32;
    options.finish(OPTIONS)?;
    holistic_options.validate()?;
    Ok((holistic_options, draw, (smooth, redetect)))
}

/// A result's JSON, its drawing when asked for, and its mask as PNG when there is one.
fn output(
    image: &RgbImage,
    result: &HolisticResult,
    draw: bool,
    stages: &mut Stages,
) -> Result<TaskOutput, TaskError> {
    let drawn = if draw {
        Some(stages.time("draw", || draw_holistic(image, result))?)
    } else {
        None
    };
    let mut out = TaskOutput::from_serialize(result, drawn)?;
    if let Some(mask) = &result.segmentation_mask {
        let png = stages.time("mask", || grey_png_base64(mask))?;
        out.json
            .insert("segmentation_mask".into(), Value::String(png));
    }
    Ok(out)
}

/// Holistic over a video: people followed from frame to frame, points smoothed.
struct TrackedHolistic {
    pipeline: Arc<Pipeline>,
    tracker: HolisticTracker,
    options: HolisticOptions,
    draw: bool,
}

impl VideoJob for TrackedHolistic {
    fn push(&mut self, frame: RgbImage) -> Result<Vec<TaskOutput>, TaskError> {
        let result = self.tracker.next(&self.pipeline, &frame, &self.options)?;
        Ok(vec![output(
            &frame,
            &result,
            self.draw,
            &mut Stages::default(),
        )?])
    }

    fn finish(&mut self) -> Result<Vec<TaskOutput>, TaskError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

    use super::*;

    #[test]
    fn the_tables_defaults_and_bounds_are_the_librarys() {
        let defaults = holistic_options(&mut Options::new()).unwrap();
        assert_eq!(defaults, HolisticOptions::default());
        crate::option_spec::at_each_bound(OPTIONS, |spec, mut o| {
            let options = holistic_options(&mut o).unwrap();
            assert!(options.validate().is_ok(), "{} at a bound", spec.name);
        });
    }
}
