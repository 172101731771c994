use percept_art::{Style, StyleParams};
use serde::Serialize;
use serde_json::Value;

use crate::task::{PreparedJob, Task, TaskOutput};
use crate::{OptionKind, OptionSpec, Options, TaskError};

/// `art/<style>`: one model-free filter of `percept-art`, with OpenCV's parameter names and
/// defaults.
#[derive(Debug, Clone, Copy)]
pub struct Art {
    style: Style,
    name: &'static str,
}

impl Art {
    /// The task for `style`.
    pub fn new(style: Style) -> Self {
        let name = match style {
            Style::Pencil => "art/pencil",
            Style::PencilColor => "art/pencil-color",
            Style::Oil => "art/oil",
            Style::Watercolor => "art/watercolor",
            Style::Stylize => "art/stylize",
            Style::Cartoon => "art/cartoon",
        };
        Self { style, name }
    }
}

/// The JSON of `POST /v1/art/{style}` (the rendered image is added as `image`).
#[derive(Debug, Serialize)]
struct ArtResult {
    style: String,
    width: u32,
    height: u32,
}

// The art crate validates its parameters too (it is a library of its own); these tables are
// what the service and CLI check, list and document, and a test holds the two in agreement.
const SIGMA_S: OptionSpec = OptionSpec::number(
    "sigma_s",
    60.0,
    0.0,
    200.0,
    "Spatial extent of the edge-preserving filter in pixels.",
)
.above_min();

const fn sigma_r(default: f64) -> OptionSpec {
    OptionSpec::number(
        "sigma_r",
        default,
        0.0,
        1.0,
        "Range extent on [0, 1] colours; smaller keeps more edges.",
    )
    .above_min()
}

const PENCIL: &[OptionSpec] = &[
    SIGMA_S,
    sigma_r(0.07),
    OptionSpec::number(
        "shade_factor",
        0.02,
        0.0,
        0.1,
        "Brightness of the sketch; larger is lighter.",
    )
    .above_min(),
];
const STYLIZE: &[OptionSpec] = &[SIGMA_S, sigma_r(0.45)];
const OIL: &[OptionSpec] = &[
    OptionSpec::integer(
        "size",
        7,
        1,
        32,
        "Neighbourhood half-size as OpenCV xphoto oilPainting.",
    ),
    OptionSpec::integer(
        "dyn_ratio",
        1,
        1,
        127,
        "Luminance quantisation step (OpenCV dynRatio).",
    ),
];
const WATERCOLOR: &[OptionSpec] = &[
    SIGMA_S,
    sigma_r(0.5),
    OptionSpec::number("texture", 0.15, 0.0, 1.0, "Strength of the paper texture."),
];
const CARTOON: &[OptionSpec] = &[
    SIGMA_S,
    sigma_r(0.45),
    OptionSpec::integer("levels", 6, 2, 32, "Colour levels per channel."),
    OptionSpec::number(
        "edge_threshold",
        0.8,
        0.0,
        4.0,
        "Luma gradient above which a pixel is inked; smaller draws more lines.",
    )
    .above_min(),
];

/// The style's parameters from the request's options, each read through its table entry.
fn style_params(
    style: Style,
    specs: &[OptionSpec],
    options: &mut Options,
) -> Result<StyleParams, TaskError> {
    let mut values = serde_json::Map::new();
    for spec in specs {
        let value = match spec.kind {
            OptionKind::Integer { .. } => Value::from(options.integer(spec)?),
            _ => Value::from(options.number(spec)?),
        };
        values.insert(spec.name.to_string(), value);
    }
    Ok(StyleParams::from_json(style, Value::Object(values))?)
}

impl Task for Art {
    fn name(&self) -> &str {
        self.name
    }

    fn summary(&self) -> &str {
        match self.style {
            Style::Pencil => "Grey pencil sketch (OpenCV pencilSketch)",
            Style::PencilColor => "Colour pencil sketch (OpenCV pencilSketch, colour output)",
            Style::Oil => "Oil painting (OpenCV xphoto oilPainting)",
            Style::Watercolor => "Watercolour: soft edge-preserving wash with paper texture",
            Style::Stylize => "Stylization (OpenCV stylization)",
            Style::Cartoon => "Cartoon: smoothing, colour quantisation and bold edges",
        }
    }

    fn options(&self) -> &[OptionSpec] {
        match self.style {
            Style::Pencil | Style::PencilColor => PENCIL,
            Style::Oil => OIL,
            Style::Watercolor => WATERCOLOR,
            Style::Stylize => STYLIZE,
            Style::Cartoon => CARTOON,
        }
    }

    fn prepare(&self, mut options: Options) -> Result<PreparedJob, TaskError> {
        let specs = self.options();
        let params = style_params(self.style, specs, &mut options)?;
        options.finish(specs)?;
        let style = self.style;
        Ok(Box::new(move |decoded, _stages| {
            let rendered = percept_art::render(&decoded.image, &params)?;
            TaskOutput::from_serialize(
                &ArtResult {
                    style: style.to_string(),
                    width: rendered.width(),
                    height: rendered.height(),
                },
                Some(rendered),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

    use super::*;

    /// The tables and the art crate's own checks agree: the same defaults, every bound the
    /// table accepts accepted by the library, and a step past it refused by both.
    #[test]
    fn the_tables_agree_with_the_art_crate() {
        for style in Style::ALL {
            let task = Art::new(style);
            let specs = task.options();
            let ours = style_params(style, specs, &mut Options::new()).unwrap();
            let library = StyleParams::from_json(style, Value::Null).unwrap();
            assert_eq!(ours, library, "{style} defaults");
            for spec in specs {
                let (min, max, min_exclusive) = spec.bounds().unwrap();
                let step = if spec.type_name() == "integer" {
                    1.0
                } else {
                    1e-3
                };
                let lowest = if min_exclusive { min + step } else { min };
                for (value, valid) in [
                    (lowest, true),
                    (max, true),
                    (lowest - step, false),
                    (max + step, false),
                ] {
                    let value = if step == 1.0 {
                        serde_json::json!(value as i64)
                    } else {
                        serde_json::json!(value)
                    };
                    let mut given = serde_json::Map::new();
                    given.insert(spec.name.into(), value.clone());
                    let library = StyleParams::from_json(style, Value::Object(given.clone()));
                    assert_eq!(library.is_ok(), valid, "{style} {}={value}: art", spec.name);
                    let mut options = Options::new();
                    options.insert(spec.name, value.clone());
                    let ours = style_params(style, specs, &mut options);
                    assert_eq!(ours.is_ok(), valid, "{style} {}={value}: table", spec.name);
                }
            }
        }
    }
}
