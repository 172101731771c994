use std::sync::Arc;

use percept_vision::{Holistic as Pipeline, HolisticOptions, draw_holistic};

use serde_json::Value;

use super::{grey_png_base64, vision_error};

use crate::task::{OptionDoc, PreparedJob, Task, TaskOutput};
use crate::{ApiError, Options};

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

pub(crate) const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "min_score",
        kind: "number",
        default: "0.5",
        description: "Minimum person-detector confidence, [0.05, 1].",
        choices: &[],
    },
    OptionDoc {
        name: "max_people",
        kind: "integer",
        default: "10",
        description: "1..=20: track at most this many people, most prominent first (1: MediaPipe's one person, at its cost).",
        choices: &[],
    },
    OptionDoc {
        name: "model_complexity",
        kind: "integer",
        default: "1",
        description: "0..=1, MediaPipe's model_complexity: 0 = BlazePose lite (smaller; ~10 % less time on a group of five), 1 = full.",
        choices: &[],
    },
    OptionDoc {
        name: "refine_face_landmarks",
        kind: "boolean",
        default: "false",
        description: "MediaPipe's refine_face_landmarks: 478 face points, both irises (5 points each) added from the iris model.",
        choices: &[],
    },
    OptionDoc {
        name: "enable_segmentation",
        kind: "boolean",
        default: "false",
        description: "MediaPipe's enable_segmentation: `segmentation_mask`, the person mask from the pose model as a greyscale PNG (0-255 for probability 0-1, every tracked person), base64.",
        choices: &[],
    },
    OptionDoc {
        name: "hands",
        kind: "boolean",
        default: "true",
        description: "Track both hands (2 × 21 landmarks).",
        choices: &[],
    },
    OptionDoc {
        name: "face",
        kind: "boolean",
        default: "true",
        description: "Run the face mesh (468 landmarks).",
        choices: &[],
    },
    OptionDoc {
        name: "draw",
        kind: "boolean",
        default: "true",
        description: "Return the photo with the landmarks drawn (false: JSON only).",
        choices: &[],
    },
];

impl Task for Holistic {
    fn name(&self) -> &str {
        "holistic"
    }

    fn summary(&self) -> &str {
        "Holistic tracking for every person: 33 pose, 2 × 21 hand and 468 face-mesh landmarks each, drawn on the photo"
    }

    fn options(&self) -> &[OptionDoc] {
        OPTIONS
    }

    fn prepare(&self, mut options: Options) -> Result<PreparedJob, ApiError> {
        let defaults = HolisticOptions::default();
        let holistic_options = HolisticOptions {
            min_detection_score: options
                .take_f64("min_score", 0.05..=1.0)?
                .map_or(defaults.min_detection_score, |v| v as f32),
            hands: options.take_bool("hands")?.unwrap_or(defaults.hands),
            face: options.take_bool("face")?.unwrap_or(defaults.face),
            max_people: options
                .take_count("max_people", 1..=20)?
                .unwrap_or(defaults.max_people),
            model_complexity: options
                .take_count("model_complexity", 0..=1)?
                .map_or(defaults.model_complexity, |v| v as u8),
            refine_face_landmarks: options
                .take_bool("refine_face_landmarks")?
                .unwrap_or(defaults.refine_face_landmarks),
            enable_segmentation: options
                .take_bool("enable_segmentation")?
                .unwrap_or(defaults.enable_segmentation),
        };
        let draw = options.take_bool("draw")?.unwrap_or(true);
        let known: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        options.finish(&known)?;
        holistic_options.validate().map_err(vision_error)?;

        let pipeline = self.pipeline.clone();
        Ok(Box::new(move |decoded, stages| {
            let image = decoded.image;
            let result = stages
                .time("landmarks", || pipeline.run(&image, &holistic_options))
                .map_err(vision_error)?;
            let drawn = if draw {
                Some(
                    stages
                        .time("draw", || draw_holistic(&image, &result))
                        .map_err(vision_error)?,
                )
            } else {
                None
            };
            let mut out = TaskOutput::from_serialize(&result, drawn)?;
            if let Some(mask) = &result.segmentation_mask {
                let png = stages.time("mask", || grey_png_base64(mask))?;
                out.json
                    .insert("segmentation_mask".into(), Value::String(png));
            }
            Ok(out)
        }))
    }
}
