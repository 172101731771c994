use std::sync::Arc;

use percept_vision::{
    AnonymizeMode, AnonymizeOptions, DetectOptions, Face, FaceDetector, anonymize,
};

use super::vision_error;
use serde::Serialize;

use crate::task::{OptionDoc, PreparedJob, Task, TaskOutput};
use crate::{ApiError, Options};

/// `anonymize`: finds every face (CenterFace) and hides it by blur, pixelation or a box. Fails
/// closed: any error answers with an error, never with the un-anonymised photo.
#[derive(Clone)]
pub struct Anonymize {
    detector: Arc<FaceDetector>,
}

impl std::fmt::Debug for Anonymize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Anonymize")
    }
}

impl Anonymize {
    /// The task on a shared detector (built once at start from the loaded models).
    pub fn new(detector: Arc<FaceDetector>) -> Self {
        Self { detector }
    }
}

/// The JSON of `POST /v1/anonymize` (the anonymised image is added as `image`).
#[derive(Debug, Serialize)]
struct AnonymizeResult {
    faces: Vec<Face>,
    count: usize,
    width: u32,
    height: u32,
}

const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "mode",
        kind: "string",
        default: "blur",
        description: "blur, pixelate or box.",
    },
    OptionDoc {
        name: "strength",
        kind: "number",
        default: "1",
        description: "[0.1, 10]. Blur: sigma = 0.1 × strength × face size. Pixelate: about 8 / strength blocks across a face.",
    },
    OptionDoc {
        name: "min_score",
        kind: "number",
        default: "0.5",
        description: "Minimum face confidence, [0.05, 1]; lower hides more (and more false faces).",
    },
    OptionDoc {
        name: "box_scale",
        kind: "number",
        default: "1.3",
        description: "Enlargement of each face box before masking, [1, 3].",
    },
    OptionDoc {
        name: "draw_boxes",
        kind: "boolean",
        default: "false",
        description: "Draw the anonymised regions' boxes (debugging view).",
    },
];

impl Task for Anonymize {
    fn name(&self) -> &str {
        "anonymize"
    }

    fn summary(&self) -> &str {
        "Face privacy: detect every face and blur, pixelate or box it"
    }

    fn options(&self) -> &[OptionDoc] {
        OPTIONS
    }

    fn prepare(&self, mut options: Options) -> Result<PreparedJob, ApiError> {
        let defaults = AnonymizeOptions::default();
        let mode = match options.take_choice("mode", &["blur", "pixelate", "box"])? {
            Some(choice) => choice.parse::<AnonymizeMode>().map_err(vision_error)?,
            None => defaults.mode,
        };
        let anonymize_options = AnonymizeOptions {
            mode,
            strength: options
                .take_f64("strength", 0.1..=10.0)?
                .map_or(defaults.strength, |v| v as f32),
            box_scale: options
                .take_f64("box_scale", 1.0..=3.0)?
                .map_or(defaults.box_scale, |v| v as f32),
            draw_boxes: options.take_bool("draw_boxes")?.unwrap_or(false),
        };
        let detect_defaults = DetectOptions::default();
        let detect_options = DetectOptions {
            min_score: options
                .take_f64("min_score", 0.05..=1.0)?
                .map_or(detect_defaults.min_score, |v| v as f32),
            ..detect_defaults
        };
        let known: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        options.finish(&known)?;
        anonymize_options.validate().map_err(vision_error)?;
        detect_options.validate().map_err(vision_error)?;

        let detector = self.detector.clone();
        Ok(Box::new(move |decoded, stages| {
            let mut image = decoded.image;
            let faces = stages
                .time("detect", || detector.detect(&image, &detect_options))
                .map_err(vision_error)?;
            // On error `image` is dropped here: a partly anonymised photo never leaves.
            stages
                .time("anonymize", || {
                    anonymize(&mut image, &faces, &anonymize_options)
                })
                .map_err(vision_error)?;
            let (width, height) = image.dimensions();
            TaskOutput::from_serialize(
                &AnonymizeResult {
                    count: faces.len(),
                    faces,
                    width,
                    height,
                },
                Some(image),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

    use std::path::Path;
    use std::sync::OnceLock;

    use percept_core::{DecodeLimits, decode};
    use percept_vision::Models;
    use serde_json::{Value, json};

    use super::*;
    use crate::error::ErrorCode;
    use crate::task::Stages;

    fn task() -> Anonymize {
        static DETECTOR: OnceLock<Arc<FaceDetector>> = OnceLock::new();
        let detector = DETECTOR.get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let models = Models::load(root.join("models"), &[FaceDetector::MODEL]).unwrap();
            Arc::new(FaceDetector::new(&models).unwrap())
        });
        Anonymize::new(detector.clone())
    }

    fn options(pairs: &[(&str, Value)]) -> Options {
        let mut o = Options::new();
        for (k, v) in pairs {
            o.insert(k, v.clone());
        }
        o
    }

    #[test]
    fn bad_options_are_422() {
        let cases = [
            ("mode", json!("mosaic")),
            ("strength", json!(0)),
            ("strength", json!("strong")),
            ("min_score", json!(1.5)),
            ("box_scale", json!(0.5)),
            ("draw_boxes", json!("yes")),
            ("colour", json!("red")),
        ];
        for (key, value) in cases {
            let err = task()
                .prepare(options(&[(key, value.clone())]))
                .err()
                .unwrap();
            assert_eq!(err.code, ErrorCode::BadOption, "{key}={value}");
        }
    }

    #[test]
    fn finds_and_hides_the_astronaut() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let bytes = std::fs::read(root.join("tests/data/person_astronaut.jpg")).unwrap();
        for mode in ["blur", "pixelate", "box"] {
            let decoded = decode(&bytes, &DecodeLimits::default()).unwrap();
            let original = decoded.image.clone();
            let job = task()
                .prepare(options(&[
                    ("mode", json!(mode)),
                    ("draw_boxes", json!(false)),
                ]))
                .unwrap();
            let mut stages = Stages::default();
            let out = job(decoded, &mut stages).unwrap();
            assert_eq!(out.json["count"], json!(1), "{mode}");
            assert_eq!(out.json["width"], json!(512));
            let face = &out.json["faces"][0];
            for key in ["x", "y", "width", "height"] {
                assert!(face["bbox"][key].is_number(), "{face}");
            }
            assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);
            assert!(face["landmarks"][0]["x"].is_number());
            assert!(face["score"].as_f64().unwrap() > 0.5);
            assert_ne!(out.image.unwrap(), original, "{mode}");
            let names: Vec<&str> = stages.iter().map(|(n, _)| n).collect();
            assert_eq!(names, ["detect", "anonymize"]);
        }
    }
}
