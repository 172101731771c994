use std::sync::Arc;

use percept_vision::parse::overlay;
use percept_vision::{ParseOptions, Parser, ParserChoice};
use serde_json::Value;

use crate::png::grey_png_base64;
use crate::task::{PreparedJob, Task, TaskOutput};
use crate::{OptionSpec, Options, TaskError};

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

/// The default is the library's (`ParserChoice::NAMES` lists it first; a test checks).
const PARSER: OptionSpec = OptionSpec::choice(
    "parser",
    &ParserChoice::NAMES,
    "learned (the trained parsing network, one run per person; `parser` in the result names it) or pose-guided (labels from the skeleton's geometry and skin colour).",
);
const MAX_PERSONS: OptionSpec = OptionSpec::integer(
    "max_persons",
    10,
    1,
    20,
    "At most this many people are parsed.",
);
const MIN_SCORE: OptionSpec = OptionSpec::number(
    "min_score",
    0.5,
    0.05,
    1.0,
    "Minimum person/face detection confidence.",
);
/// The default is the library's (a test checks).
const MIRROR: OptionSpec = OptionSpec::boolean(
    "mirror",
    true,
    "With the learned parser: also run the network on each person's crop mirrored left-right and average the two (more accurate labels at twice the network's time).",
);
const ALPHA: OptionSpec = OptionSpec::number(
    "alpha",
    0.6,
    0.0,
    1.0,
    "Opacity of the label colours over the photo in `image`.",
);
const MASK: OptionSpec = OptionSpec::boolean(
    "mask",
    true,
    "Include `mask`: the label-index PNG (one label value per pixel), base64.",
);

pub(crate) const OPTIONS: &[OptionSpec] = &[PARSER, MIRROR, MAX_PERSONS, MIN_SCORE, ALPHA, MASK];

/// The parser's options from the request's.
fn parse_options(options: &mut Options) -> Result<ParseOptions, TaskError> {
    let parser = ParserChoice::from_name(options.choice(&PARSER)?)
        .ok_or_else(|| TaskError::internal("a parser name outside ParserChoice::NAMES"))?;
    Ok(ParseOptions {
        parser,
        max_persons: options.count(&MAX_PERSONS)?,
        min_score: options.number(&MIN_SCORE)? as f32,
        mirror: options.flag(&MIRROR)?,
        ..ParseOptions::default()
    })
}

impl Task for Parse {
    fn name(&self) -> &str {
        "parse"
    }

    fn summary(&self) -> &str {
        "Human parsing: per-person body-part and clothing labels (LIP), overlay and label mask"
    }

    fn options(&self) -> &[OptionSpec] {
        OPTIONS
    }

    fn prepare(&self, mut options: Options) -> Result<PreparedJob, TaskError> {
        let parse_options = parse_options(&mut options)?;
        let alpha = options.number(&ALPHA)? as f32;
        let with_mask = options.flag(&MASK)?;
        options.finish(OPTIONS)?;
        parse_options.validate()?;

        let parser = self.parser.clone();
        Ok(Box::new(move |decoded, stages| {
            let image = decoded.image;
            let parsed = stages.time("parse", || parser.parse(&image, &parse_options))?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

    use super::*;

    #[test]
    fn the_tables_defaults_and_bounds_are_the_librarys() {
        let defaults = parse_options(&mut Options::new()).unwrap();
        assert_eq!(defaults, ParseOptions::default());
        crate::option_spec::at_each_bound(OPTIONS, |spec, mut o| {
            let options = parse_options(&mut o).unwrap();
            assert!(options.validate().is_ok(), "{} at a bound", spec.name);
        });
    }
}
