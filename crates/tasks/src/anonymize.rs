use std::sync::Arc;

use std::collections::VecDeque;

use percept_core::RgbImage;
use percept_vision::{
    AnonymizeMode, AnonymizeOptions, DetectOptions, Face, FaceDetector, FaceTracks,
    FastFaceDetector, TrackedFace, anonymize,
};

use serde::Serialize;

use crate::task::{PreparedJob, Task, TaskOutput, VideoJob};
use crate::{OptionSpec, Options, TaskError};

/// `anonymize`: finds every face (CenterFace in `accurate` mode, BlazeFace full range in
/// `fast` mode) and hides it by blur, pixelation or a box. Fails closed: any error answers with
/// an error, never with the un-anonymised photo.
#[derive(Clone)]
pub struct Anonymize {
    accurate: Arc<FaceDetector>,
    fast: Arc<FastFaceDetector>,
}

impl std::fmt::Debug for Anonymize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Anonymize")
    }
}

impl Anonymize {
    /// The task on shared detectors (built once at start from the loaded models).
    pub fn new(accurate: Arc<FaceDetector>, fast: Arc<FastFaceDetector>) -> Self {
        Self { accurate, fast }
    }
}

/// The JSON of `POST /v1/anonymize` (the anonymised image is added as `image`).
#[derive(Debug, Serialize)]
struct AnonymizeResult {
    faces: Vec<Face>,
    count: usize,
    detector: &'static str,
    width: u32,
    height: u32,
}

const DETECTOR: OptionSpec = OptionSpec::choice(
    "detector",
    &["accurate", "fast"],
    "accurate (CenterFace at a resolution chosen from the photo: small and far faces too) or fast (BlazeFace full range, MediaPipe's detector: one 192×192 pass of the whole photo, plus one per square along a wide photo's long side from 1280 px; misses faces below ~2 % of the photo's long side; one mouth point).",
);
const DETAIL_SIDE: OptionSpec = OptionSpec::integer(
    "detail_side",
    1600,
    1280,
    8192,
    "accurate only: photos with a longer side are scaled down to it (faces down to ~10 px at that scale are found); raise it to find smaller faces in big photos, at quadratic cost (above 1600 the photo is tiled).",
);
const MODE: OptionSpec = OptionSpec::choice(
    "mode",
    &["blur", "pixelate", "box"],
    "How a face is hidden.",
);
const STRENGTH: OptionSpec = OptionSpec::number(
    "strength",
    1.0,
    0.1,
    10.0,
    "Blur: sigma = 0.1 × strength × face size. Pixelate: about 8 / strength blocks across a face.",
);
const MIN_SCORE: OptionSpec = OptionSpec::number(
    "min_score",
    0.5,
    0.05,
    1.0,
    "Minimum face confidence; lower hides more (and more false faces).",
);
const BOX_SCALE: OptionSpec = OptionSpec::number(
    "box_scale",
    1.3,
    1.0,
    3.0,
    "Enlargement of each face box before masking.",
);
const DRAW_BOXES: OptionSpec = OptionSpec::boolean(
    "draw_boxes",
    false,
    "Draw the anonymised regions' boxes (debugging view).",
);

const TRACK_FRAMES: OptionSpec = OptionSpec::integer(
    "track_frames",
    5,
    0,
    50,
    "Video only: a face found in any frame up to this many before or after a frame is hidden in it too (between two sightings at its interpolated place), so a face the detector misses for a moment never shows; 0 hides each frame's own detections. The output is final this many frames after its input.",
);

pub(crate) const OPTIONS: &[OptionSpec] = &[
    DETECTOR,
    DETAIL_SIDE,
    MODE,
    STRENGTH,
    MIN_SCORE,
    BOX_SCALE,
    DRAW_BOXES,
    TRACK_FRAMES,
];

/// The masking and detection options from the request's.
fn pipeline_options(options: &mut Options) -> Result<(AnonymizeOptions, DetectOptions), TaskError> {
    let anonymize = AnonymizeOptions {
        mode: options.choice(&MODE)?.parse::<AnonymizeMode>()?,
        strength: options.number(&STRENGTH)? as f32,
        box_scale: options.number(&BOX_SCALE)? as f32,
        draw_boxes: options.flag(&DRAW_BOXES)?,
    };
    let detect = DetectOptions {
        min_score: options.number(&MIN_SCORE)? as f32,
        // 1280..=8192 by the table.
        max_detail_side: options.count(&DETAIL_SIDE)? as u32,
        ..DetectOptions::default()
    };
    Ok((anonymize, detect))
}

/// The video JSON of one frame: the photo's fields plus every face hidden in it, detected
/// here or carried from neighbouring frames.
#[derive(Debug, Serialize)]
struct AnonymizedFrame {
    #[serde(flatten)]
    detected: AnonymizeResult,
    hidden: Vec<TrackedFace>,
}

/// The detector a request chose.
#[derive(Clone)]
enum Detector {
    Accurate(Arc<FaceDetector>),
    Fast(Arc<FastFaceDetector>),
}

impl Detector {
    fn name(&self) -> &'static str {
        match self {
            Detector::Accurate(_) => "accurate",
            Detector::Fast(_) => "fast",
        }
    }

    fn detect(&self, image: &RgbImage, options: &DetectOptions) -> Result<Vec<Face>, TaskError> {
        Ok(match self {
            Detector::Accurate(d) => d.detect(image, options)?,
            Detector::Fast(d) => d.detect(image, options)?,
        })
    }
}

impl Anonymize {
    /// The request's options, checked: masking, detection, the detector, the track window.
    fn settings(
        &self,
        mut options: Options,
    ) -> Result<(AnonymizeOptions, DetectOptions, Detector, u32), TaskError> {
        let (anonymize_options, detect_options) = pipeline_options(&mut options)?;
        let detector = match options.choice(&DETECTOR)? {
            "fast" => Detector::Fast(self.fast.clone()),
            _ => Detector::Accurate(self.accurate.clone()),
        };
        // 0..=50 by the table.
        let window = options.count(&TRACK_FRAMES)? as u32;
        options.finish(OPTIONS)?;
        anonymize_options.validate()?;
        detect_options.validate()?;
        Ok((anonymize_options, detect_options, detector, window))
    }
}

/// Anonymisation over a video: faces are detected in every frame (two frames at once), linked
/// into tracks, and frame `t` is hidden once frame `t + track_frames` is detected.
struct TrackedAnonymize {
    detector: Detector,
    detect: DetectOptions,
    mask: AnonymizeOptions,
    tracks: FaceTracks,
    /// Frames detected but not yet final, oldest first, with their own detections.
    held: VecDeque<(u64, RgbImage, Vec<Face>)>,
    /// A frame waiting for a partner to be detected with.
    waiting: Option<RgbImage>,
    next_frame: u64,
}

impl TrackedAnonymize {
    fn detect_and_hold(&mut self, frames: Vec<RgbImage>) -> Result<(), TaskError> {
        let detected = match frames.as_slice() {
            [a, b] => {
                let (fa, fb) = rayon::join(
                    || self.detector.detect(a, &self.detect),
                    || self.detector.detect(b, &self.detect),
                );
                vec![fa?, fb?]
            }
            _ => frames
                .iter()
                .map(|f| self.detector.detect(f, &self.detect))
                .collect::<Result<_, _>>()?,
        };
        for (frame, faces) in frames.into_iter().zip(detected) {
            let index = self.next_frame;
            self.next_frame += 1;
            self.tracks.observe(index, &faces);
            self.held.push_back((index, frame, faces));
        }
        Ok(())
    }

    /// Hides and returns the held frames that are final (all of them at the end).
    fn release(&mut self, all: bool) -> Result<Vec<TaskOutput>, TaskError> {
        let mut done = Vec::new();
        while let Some((index, _, _)) = self.held.front() {
            let seen_up_to = self.next_frame.saturating_sub(1);
            if !all && index + self.tracks.window() > seen_up_to {
                break;
            }
            let Some((index, mut image, faces)) = self.held.pop_front() else {
                break;
            };
            let hidden = self.tracks.hide_at(index);
            let masks: Vec<Face> = hidden.iter().map(|h| h.face.clone()).collect();
            // On error the frame is dropped here and the job ends: fail closed.
            anonymize(&mut image, &masks, &self.mask)?;
            self.tracks.forget_before(index + 1);
            let (width, height) = image.dimensions();
            done.push(TaskOutput::from_serialize(
                &AnonymizedFrame {
                    detected: AnonymizeResult {
                        count: faces.len(),
                        detector: self.detector.name(),
                        faces,
                        width,
                        height,
                    },
                    hidden,
                },
                Some(image),
            )?);
        }
        Ok(done)
    }
}

impl VideoJob for TrackedAnonymize {
    fn push(&mut self, frame: RgbImage) -> Result<Vec<TaskOutput>, TaskError> {
        let Some(first) = self.waiting.take() else {
            self.waiting = Some(frame);
            return Ok(Vec::new());
        };
        self.detect_and_hold(vec![first, frame])?;
        self.release(false)
    }

    fn flush(&mut self) -> Result<Vec<TaskOutput>, TaskError> {
        if let Some(frame) = self.waiting.take() {
            self.detect_and_hold(vec![frame])?;
        }
        self.release(false)
    }

    fn finish(&mut self) -> Result<Vec<TaskOutput>, TaskError> {
        if let Some(frame) = self.waiting.take() {
            self.detect_and_hold(vec![frame])?;
        }
        self.release(true)
    }
}

impl Task for Anonymize {
    fn name(&self) -> &str {
        "anonymize"
    }

    fn summary(&self) -> &str {
        "Face privacy: detect every face and blur, pixelate or box it"
    }

    fn options(&self) -> &[OptionSpec] {
        OPTIONS
    }

    fn prepare(&self, options: Options) -> Result<PreparedJob, TaskError> {
        let (anonymize_options, detect_options, detector, _) = self.settings(options)?;
        Ok(Box::new(move |decoded, stages| {
            let mut image = decoded.image;
            let faces = stages.time("detect", || detector.detect(&image, &detect_options))?;
            // On error `image` is dropped here: a partly anonymised photo never leaves.
            stages.time("anonymize", || {
                anonymize(&mut image, &faces, &anonymize_options)
            })?;
            let (width, height) = image.dimensions();
            TaskOutput::from_serialize(
                &AnonymizeResult {
                    count: faces.len(),
                    detector: detector.name(),
                    faces,
                    width,
                    height,
                },
                Some(image),
            )
        }))
    }

    fn video(
        &self,
        options: Options,
        _frame_rate: f64,
    ) -> Option<Result<Box<dyn VideoJob>, TaskError>> {
        Some(
            self.settings(options)
                .map(|(mask, detect, detector, window)| {
                    Box::new(TrackedAnonymize {
                        detector,
                        detect,
                        mask,
                        tracks: FaceTracks::new(window),
                        held: VecDeque::new(),
                        waiting: None,
                        next_frame: 0,
                    }) as Box<dyn VideoJob>
                }),
        )
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
    use crate::task::Stages;

    fn task() -> Anonymize {
        static TASK: OnceLock<Anonymize> = OnceLock::new();
        TASK.get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let models = Models::load(
                root.join("models"),
                &[FaceDetector::MODEL, FastFaceDetector::MODEL],
            )
            .unwrap();
            Anonymize::new(
                Arc::new(FaceDetector::new(&models).unwrap()),
                Arc::new(FastFaceDetector::new(&models).unwrap()),
            )
        })
        .clone()
    }

    fn options(pairs: &[(&str, Value)]) -> Options {
        let mut o = Options::new();
        for (k, v) in pairs {
            o.insert(k, v.clone());
        }
        o
    }

    #[test]
    fn the_tables_defaults_are_the_librarys() {
        let (anonymize, detect) = pipeline_options(&mut Options::new()).unwrap();
        assert_eq!(anonymize, AnonymizeOptions::default());
        assert_eq!(detect, DetectOptions::default());
        // The library accepts the table's whole range.
        crate::option_spec::at_each_bound(OPTIONS, |spec, mut o| {
            let (anonymize, detect) = pipeline_options(&mut o).unwrap();
            assert!(
                anonymize.validate().is_ok() && detect.validate().is_ok(),
                "{} at a bound",
                spec.name
            );
        });
    }

    #[test]
    fn bad_options_are_422() {
        let cases = [
            ("mode", json!("mosaic")),
            ("detector", json!("fastest")),
            ("detail_side", json!(640)),
            ("detail_side", json!(10000)),
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
            assert_eq!(err.code(), "bad_option", "{key}={value}");
        }
    }

    #[test]
    fn finds_and_hides_the_astronaut() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let bytes = std::fs::read(root.join("tests/data/person_astronaut.jpg")).unwrap();
        let cases = ["blur", "pixelate", "box"]
            .into_iter()
            .flat_map(|mode| ["accurate", "fast"].map(|detector| (mode, detector)));
        for (mode, detector) in cases {
            let decoded = decode(&bytes, &DecodeLimits::default()).unwrap();
            let original = decoded.image.clone();
            let job = task()
                .prepare(options(&[
                    ("mode", json!(mode)),
                    ("detector", json!(detector)),
                    ("draw_boxes", json!(false)),
                ]))
                .unwrap();
            let mut stages = Stages::default();
            let out = job(decoded, &mut stages).unwrap();
            assert_eq!(out.json["count"], json!(1), "{mode} {detector}");
            assert_eq!(out.json["detector"], json!(detector));
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
