use std::sync::Arc;

use percept_vision::parse::overlay;
use percept_vision::{ParseOptions, Parser, ParserChoice};
use serde_json::Value;

use super::{grey_png_base64, vision_error};
use crate::task::{OptionDoc, PreparedJob, Task, TaskOutput};
use crate::{ApiError, Options};

/// `parse`: multi-person human parsing (the trained network, or the pose-guided rules on
/// request), LIP's labels per pixel.
#[derive(Clone)]
pub struct Parse {
    parser: Arc<Parser>,
}

impl std::fmt::Debug for Parse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parse")
    }
}

impl Parse {
    /// The task on a shared parser (built once at start from the loaded models).
    pub fn new(parser: Arc<Parser>) -> Self {
        Self { parser }
    }
}

pub(crate) const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "parser",
        kind: "string",
        default: "learned",
        description: "learned (the trained parsing network, one run per person; `parser` in the result names it) or pose-guided (labels from the skeleton's geometry and skin colour).",
        choices: &ParserChoice::NAMES,
    },
    OptionDoc {
        name: "max_persons",
        kind: "integer",
        default: "10",
        description: "At most this many people are parsed, 1..=20.",
        choices: &[],
    },
    OptionDoc {
        name: "min_score",
        kind: "number",
        default: "0.5",
        description: "Minimum person/face detection confidence, [0.05, 1].",
        choices: &[],
    },
    OptionDoc {
        name: "alpha",
        kind: "number",
        default: "0.6",
        description: "Opacity of the label colours over the photo in `image`, [0, 1].",
        choices: &[],
    },
    OptionDoc {
        name: "mask",
        kind: "boolean",
        default: "true",
        description: "Include `mask`: the label-index PNG (one label value per pixel), base64.",
        choices: &[],
    },
];

impl Task for Parse {
    fn name(&self) -> &str {
        "parse"
    }

    fn summary(&self) -> &str {
        "Human parsing: per-person body-part and clothing labels (LIP), overlay and label mask"
    }

    fn options(&self) -> &[OptionDoc] {
        OPTIONS
    }

    fn prepare(&self, mut options: Options) -> Result<PreparedJob, ApiError> {
        let defaults = ParseOptions::default();
        let parser = options
            .take_choice("parser", &ParserChoice::NAMES)?
            .and_then(ParserChoice::from_name)
            .unwrap_or(defaults.parser);
        let parse_options = ParseOptions {
            parser,
            max_persons: options
                .take_count("max_persons", 1..=20)?
                .unwrap_or(defaults.max_persons),
            min_score: options
                .take_f64("min_score", 0.05..=1.0)?
                .map_or(defaults.min_score, |v| v as f32),
            ..defaults
        };
        let alpha = options
            .take_f64("alpha", 0.0..=1.0)?
            .map_or(0.6, |v| v as f32);
        let with_mask = options.take_bool("mask")?.unwrap_or(true);
        let known: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        options.finish(&known)?;
        parse_options.validate().map_err(vision_error)?;

        let parser = self.parser.clone();
        Ok(Box::new(move |decoded, stages| {
            let image = decoded.image;
            let parsed = stages
                .time("parse", || parser.parse(&image, &parse_options))
                .map_err(vision_error)?;
            let drawn = stages.time("overlay", || overlay(&image, &parsed.labels, alpha));
            let mut out = TaskOutput::from_serialize(&parsed.result, Some(drawn))?;
            out.json.insert(
                "person_count".into(),
                Value::from(parsed.result.persons.len()),
            );
            if with_mask {
                let mask = stages.time("mask", || grey_png_base64(&parsed.labels))?;
                out.json.insert("mask".into(), Value::String(mask));
            }
            Ok(out)
        }))
    }
}
