use percept_art::{ArtError, Style, StyleParams};
use serde::Serialize;
use serde_json::Value;

use crate::task::{OptionDoc, PreparedJob, Task, TaskOutput};
use crate::{ApiError, Options};

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

const SIGMA_S: OptionDoc = OptionDoc {
    name: "sigma_s",
    kind: "number",
    default: "60",
    description: "Spatial extent of the edge-preserving filter in pixels, (0, 200].",
    choices: &[],
};

const fn sigma_r(default: &'static str) -> OptionDoc {
    OptionDoc {
        name: "sigma_r",
        kind: "number",
        default,
        description: "Range extent on [0, 1] colours, (0, 1]; smaller keeps more edges.",
        choices: &[],
    }
}

const PENCIL: &[OptionDoc] = &[
    SIGMA_S,
    sigma_r("0.07"),
    OptionDoc {
        name: "shade_factor",
        kind: "number",
        default: "0.02",
        description: "Brightness of the sketch, (0, 0.1]; larger is lighter.",
        choices: &[],
    },
];
const STYLIZE: &[OptionDoc] = &[SIGMA_S, sigma_r("0.45")];
const OIL: &[OptionDoc] = &[
    OptionDoc {
        name: "size",
        kind: "integer",
        default: "7",
        description: "Neighbourhood half-size as OpenCV xphoto oilPainting, 1..=32.",
        choices: &[],
    },
    OptionDoc {
        name: "dyn_ratio",
        kind: "integer",
        default: "1",
        description: "Luminance quantisation step (OpenCV dynRatio), 1..=127.",
        choices: &[],
    },
];
const WATERCOLOR: &[OptionDoc] = &[
    SIGMA_S,
    sigma_r("0.5"),
    OptionDoc {
        name: "texture",
        kind: "number",
        default: "0.15",
        description: "Strength of the paper texture, [0, 1].",
        choices: &[],
    },
];
const CARTOON: &[OptionDoc] = &[
    SIGMA_S,
    sigma_r("0.45"),
    OptionDoc {
        name: "levels",
        kind: "integer",
        default: "6",
        description: "Colour levels per channel, 2..=32.",
        choices: &[],
    },
    OptionDoc {
        name: "edge_threshold",
        kind: "number",
        default: "see percept-art",
        description: "Luma gradient above which a pixel is inked, (0, 4]; smaller draws more lines.",
        choices: &[],
    },
];

fn to_api(error: ArtError) -> ApiError {
    ApiError::bad_option(error.to_string())
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

    fn options(&self) -> &[OptionDoc] {
        match self.style {
            Style::Pencil | Style::PencilColor => PENCIL,
            Style::Oil => OIL,
            Style::Watercolor => WATERCOLOR,
            Style::Stylize => STYLIZE,
            Style::Cartoon => CARTOON,
        }
    }

    fn prepare(&self, mut options: Options) -> Result<PreparedJob, ApiError> {
        let values: Value = options.take_struct()?;
        let params = StyleParams::from_json(self.style, values).map_err(to_api)?;
        let style = self.style;
        Ok(Box::new(move |decoded, _stages| {
            let rendered = percept_art::render(&decoded.image, &params).map_err(to_api)?;
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
