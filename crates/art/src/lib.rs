//! Model-free, deterministic art filters for percept.
//!
//! Six [`Style`]s, each with a parameter struct whose defaults are OpenCV's, so code written
//! against `cv2.pencilSketch`, `cv2.stylization` or `cv2.xphoto.oilPainting` can switch
//! without surprises:
//!
//! | style | OpenCV equivalent | parameters |
//! |---|---|---|
//! | `pencil`, `pencil-color` | `pencilSketch` (grey / colour output) | [`PencilParams`] |
//! | `stylize` | `stylization` | [`StylizeParams`] |
//! | `oil` | `xphoto.oilPainting` | [`OilParams`] |
//! | `watercolor` | — (stylization variant) | [`WatercolorParams`] |
//! | `cartoon` | — | [`CartoonParams`] |
//!
//! The first three rest on the domain transform of Gastal & Oliveira (SIGGRAPH 2011) and
//! follow OpenCV's arithmetic (same colour conversions, iteration schedule, box radius and
//! rounding), so outputs match OpenCV's closely (SSIM ≥ 0.9, checked in `tests/ssim.rs`).
//! All work runs on the global rayon pool; every output is a pure function of the input
//! pixels and the parameters.
//!
//! ```
//! use percept_art::{Style, StyleParams, render};
//! let img = image::RgbImage::from_pixel(64, 48, image::Rgb([200, 120, 40]));
//! let params = StyleParams::default_for("pencil".parse::<Style>()?);
//! let out = render(&img, &params)?;
//! assert_eq!(out.dimensions(), img.dimensions());
//! # Ok::<(), percept_art::ArtError>(())
//! ```

mod domain;
mod effects;
mod npr;
mod oil;
mod planar;

use image::RgbImage;
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// Errors from parsing styles and parameters. Every variant is the caller's fault (a bad
/// option), never an internal failure; the message is meant to be shown to the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArtError {
    /// The style name is not one of [`Style::ALL`].
    #[error(
        "unknown art style '{0}'; expected one of pencil, pencil-color, oil, watercolor, stylize, cartoon"
    )]
    UnknownStyle(String),
    /// A parameter is outside its valid range (or not a number).
    #[error("{name} must be in {range}, got {value}")]
    InvalidParameter {
        /// The parameter's name as it appears in requests (e.g. `sigma_s`).
        name: &'static str,
        /// Its valid range, in interval notation.
        range: &'static str,
        /// The rejected value, formatted.
        value: String,
    },
    /// The parameters could not be read (unknown field, wrong type, malformed value).
    #[error("bad parameters for style '{style}': {message}")]
    BadParameters {
        /// The style the parameters were meant for.
        style: Style,
        /// What was wrong, from the deserializer.
        message: String,
    },
}

/// An art style. Parses from and displays as the lowercase names used in routes and on the
/// command line: `pencil`, `pencil-color`, `oil`, `watercolor`, `stylize`, `cartoon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Style {
    /// Grey pencil sketch (OpenCV `pencilSketch`, first output), as RGB with equal channels.
    Pencil,
    /// Colour pencil sketch (OpenCV `pencilSketch`, second output).
    PencilColor,
    /// Oil painting (OpenCV xphoto `oilPainting`).
    Oil,
    /// Watercolour: softened stylization on paper texture.
    Watercolor,
    /// Stylization (OpenCV `stylization`).
    Stylize,
    /// Cartoon: flat colour regions with bold ink edges.
    Cartoon,
}

impl Style {
    /// Every style, in the order they are documented.
    pub const ALL: [Style; 6] = [
        Style::Pencil,
        Style::PencilColor,
        Style::Oil,
        Style::Watercolor,
        Style::Stylize,
        Style::Cartoon,
    ];

    /// The style's name as used in routes and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Style::Pencil => "pencil",
            Style::PencilColor => "pencil-color",
            Style::Oil => "oil",
            Style::Watercolor => "watercolor",
            Style::Stylize => "stylize",
            Style::Cartoon => "cartoon",
        }
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Style {
    type Err = ArtError;

    /// Accepts exactly the names of [`Style::name`] (case-sensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Style::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| ArtError::UnknownStyle(s.to_owned()))
    }
}

/// Parameters of `pencil` and `pencil-color`, as OpenCV `pencilSketch`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PencilParams {
    /// Spatial extent of the smoothing window in pixels, in (0, 200]. Default 60.
    pub sigma_s: f32,
    /// Range extent on colours scaled to [0, 1], in (0, 1]; smaller keeps more edges. Default 0.07.
    pub sigma_r: f32,
    /// Scale from window size to brightness, in (0, 0.1]; larger is lighter. Default 0.02.
    pub shade_factor: f32,
}

impl Default for PencilParams {
    fn default() -> Self {
        Self {
            sigma_s: 60.0,
            sigma_r: 0.07,
            shade_factor: 0.02,
        }
    }
}

/// Parameters of `stylize`, as OpenCV `stylization`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StylizeParams {
    /// Spatial extent in pixels, in (0, 200]. Default 60.
    pub sigma_s: f32,
    /// Range extent on [0, 1] colours, in (0, 1]. Default 0.45.
    pub sigma_r: f32,
}

impl Default for StylizeParams {
    fn default() -> Self {
        Self {
            sigma_s: 60.0,
            sigma_r: 0.45,
        }
    }
}

/// Parameters of `oil`, as OpenCV xphoto `oilPainting(src, dst, size, dynRatio)`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OilParams {
    /// Half-size of the square neighbourhood (the window is `2·size+1` wide), in 1..=32. Default 7.
    pub size: u32,
    /// Luminance quantisation step (grey levels per histogram bin), in 1..=127. Default 1.
    /// Also accepted as `dynRatio`, OpenCV's spelling.
    #[serde(alias = "dynRatio")]
    pub dyn_ratio: u32,
}

impl Default for OilParams {
    fn default() -> Self {
        Self {
            size: 7,
            dyn_ratio: 1,
        }
    }
}

/// Parameters of `watercolor`.
///
/// Recipe: (1) edge-preserving smoothing with the domain transform's *recursive* filter
/// (exponential fall-off, so region borders blend softly instead of the box filter's hard
/// steps), 3 iterations with `sigma_s`, `sigma_r`; (2) a faint, saturating darkening along
/// luma edges of the smoothed image (pigment pooling at wash borders, at most 35 %);
/// (3) a wash towards white (`1 − 0.88·(1 − v)`), as pigment on white paper is lighter than a
/// photo; (4) multiplication by `1 − texture · paper(x, y)`, where `paper` mixes two octaves of
/// value noise (24 px and 5 px cells) and per-pixel grain, all from a fixed-seed integer hash
/// of the pixel coordinates — so the output is reproducible bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatercolorParams {
    /// Spatial extent in pixels, in (0, 200]. Default 60.
    pub sigma_s: f32,
    /// Range extent on [0, 1] colours, in (0, 1]. Default 0.5.
    pub sigma_r: f32,
    /// Strength of the paper texture, in [0, 1]; 0 disables it. Default 0.15.
    pub texture: f32,
}

impl Default for WatercolorParams {
    fn default() -> Self {
        Self {
            sigma_s: 60.0,
            sigma_r: 0.5,
            texture: 0.15,
        }
    }
}

/// Parameters of `cartoon`.
///
/// Recipe: (1) edge-preserving smoothing with the domain transform's normalized convolution
/// (`sigma_s`, `sigma_r`, 3 iterations, as `stylize`); (2) each channel quantised to `levels`
/// uniform bins, each bin painted with its centre value, so at most `levels³` colours remain;
/// (3) ink: pixels where the 3×3 Sobel magnitude of the smoothed luma exceeds `edge_threshold`,
/// dilated by one pixel (3×3) for bold strokes, painted black.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartoonParams {
    /// Spatial extent in pixels, in (0, 200]. Default 60.
    pub sigma_s: f32,
    /// Range extent on [0, 1] colours, in (0, 1]. Default 0.45.
    pub sigma_r: f32,
    /// Colour levels per channel, in 2..=32. Default 6.
    pub levels: u32,
    /// Luma gradient magnitude (Sobel, on [0, 1] luma) above which a pixel is inked, in
    /// (0, 4]. Smaller draws more lines. Default 0.8 (0.3 inks most of a face at portrait
    /// sizes; above ~1.2 object outlines break up).
    pub edge_threshold: f32,
}

impl Default for CartoonParams {
    fn default() -> Self {
        Self {
            sigma_s: 60.0,
            sigma_r: 0.45,
            levels: 6,
            edge_threshold: 0.8,
        }
    }
}

/// A style together with its parameters: what [`render`] needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StyleParams {
    /// Grey pencil sketch.
    Pencil(PencilParams),
    /// Colour pencil sketch.
    PencilColor(PencilParams),
    /// Oil painting.
    Oil(OilParams),
    /// Watercolour.
    Watercolor(WatercolorParams),
    /// Stylization.
    Stylize(StylizeParams),
    /// Cartoon.
    Cartoon(CartoonParams),
}

fn check_f32(name: &'static str, v: f32, range: &'static str, ok: bool) -> Result<(), ArtError> {
    // `ok` is computed with comparisons that are false for NaN, so NaN is rejected too.
    if ok {
        Ok(())
    } else {
        Err(ArtError::InvalidParameter {
            name,
            range,
            value: v.to_string(),
        })
    }
}

fn sigma_s(v: f32) -> Result<(), ArtError> {
    check_f32("sigma_s", v, "(0, 200]", v > 0.0 && v <= 200.0)
}

fn sigma_r(v: f32) -> Result<(), ArtError> {
    check_f32("sigma_r", v, "(0, 1]", v > 0.0 && v <= 1.0)
}

fn int_range(
    name: &'static str,
    v: u32,
    lo: u32,
    hi: u32,
    range: &'static str,
) -> Result<(), ArtError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ArtError::InvalidParameter {
            name,
            range,
            value: v.to_string(),
        })
    }
}

impl StyleParams {
    /// The style's parameters with their defaults (OpenCV's, where OpenCV has the style).
    pub fn default_for(style: Style) -> Self {
        match style {
            Style::Pencil => Self::Pencil(PencilParams::default()),
            Style::PencilColor => Self::PencilColor(PencilParams::default()),
            Style::Oil => Self::Oil(OilParams::default()),
            Style::Watercolor => Self::Watercolor(WatercolorParams::default()),
            Style::Stylize => Self::Stylize(StylizeParams::default()),
            Style::Cartoon => Self::Cartoon(CartoonParams::default()),
        }
    }

    /// The style these parameters belong to.
    pub fn style(&self) -> Style {
        match self {
            Self::Pencil(_) => Style::Pencil,
            Self::PencilColor(_) => Style::PencilColor,
            Self::Oil(_) => Style::Oil,
            Self::Watercolor(_) => Style::Watercolor,
            Self::Stylize(_) => Style::Stylize,
            Self::Cartoon(_) => Style::Cartoon,
        }
    }

    /// Reads parameters for `style` from a JSON object; missing fields take their defaults,
    /// unknown fields are rejected, `null` means all defaults. The result is validated.
    pub fn from_json(style: Style, value: serde_json::Value) -> Result<Self, ArtError> {
        let value = if value.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            value
        };
        let bad = |e: serde_json::Error| ArtError::BadParameters {
            style,
            message: e.to_string(),
        };
        let params = match style {
            Style::Pencil => Self::Pencil(serde_json::from_value(value).map_err(bad)?),
            Style::PencilColor => Self::PencilColor(serde_json::from_value(value).map_err(bad)?),
            Style::Oil => Self::Oil(serde_json::from_value(value).map_err(bad)?),
            Style::Watercolor => Self::Watercolor(serde_json::from_value(value).map_err(bad)?),
            Style::Stylize => Self::Stylize(serde_json::from_value(value).map_err(bad)?),
            Style::Cartoon => Self::Cartoon(serde_json::from_value(value).map_err(bad)?),
        };
        params.validate()?;
        Ok(params)
    }

    /// Reads parameters from string pairs such as query parameters (`sigma_s=40&size=5`):
    /// values that parse as numbers are numbers, others stay strings (and are then rejected
    /// by the typed fields). Same rules as [`StyleParams::from_json`].
    pub fn from_pairs<'a>(
        style: Style,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ArtError> {
        let mut map = serde_json::Map::new();
        for (k, v) in pairs {
            let value = if let Ok(i) = v.parse::<u64>() {
                serde_json::Value::from(i)
            } else if let Some(n) = v.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                serde_json::Value::Number(n)
            } else {
                serde_json::Value::String(v.to_owned())
            };
            map.insert(k.to_owned(), value);
        }
        Self::from_json(style, serde_json::Value::Object(map))
    }

    /// Checks every parameter against its documented range. The error names the first
    /// offending parameter and its valid range.
    pub fn validate(&self) -> Result<(), ArtError> {
        match self {
            Self::Pencil(p) | Self::PencilColor(p) => {
                sigma_s(p.sigma_s)?;
                sigma_r(p.sigma_r)?;
                let v = p.shade_factor;
                check_f32("shade_factor", v, "(0, 0.1]", v > 0.0 && v <= 0.1)
            }
            Self::Stylize(p) => {
                sigma_s(p.sigma_s)?;
                sigma_r(p.sigma_r)
            }
            Self::Oil(p) => {
                int_range("size", p.size, 1, 32, "1..=32")?;
                int_range("dyn_ratio", p.dyn_ratio, 1, 127, "1..=127")
            }
            Self::Watercolor(p) => {
                sigma_s(p.sigma_s)?;
                sigma_r(p.sigma_r)?;
                let v = p.texture;
                check_f32("texture", v, "[0, 1]", (0.0..=1.0).contains(&v))
            }
            Self::Cartoon(p) => {
                sigma_s(p.sigma_s)?;
                sigma_r(p.sigma_r)?;
                int_range("levels", p.levels, 2, 32, "2..=32")?;
                let v = p.edge_threshold;
                check_f32("edge_threshold", v, "(0, 4]", v > 0.0 && v <= 4.0)
            }
        }
    }
}

/// Renders `img` (8-bit RGB, already EXIF-oriented) in the given style.
///
/// Returns an image of the same size (grey styles have three equal channels). Parameters are
/// validated first; any size, including 0×0 and 1×N, is accepted without panicking. The output
/// depends only on the pixels and the parameters (no randomness, no thread-count dependence).
/// Uses the global rayon pool.
///
/// Memory: the large scratch buffers are returned to a process-wide pool for the next render
/// instead of being freed, because touching fresh memory costs about as much as a filter pass
/// on some machines (a cold 12-MP render pays ~0.1 s for it). The pool keeps at most the
/// buffers of *one* 12-MP render — 150 MB of float planes (the three planes of a 4032×3024
/// domain-transform render) plus 50 MB of packed pixels (one 4032×3024 oil render), largest
/// buffers first — so a long-running server holds at most ~200 MB between renders, whatever
/// it rendered before. Concurrent large renders, or larger images, allocate beyond that and
/// free the excess when they finish. Each rayon thread also keeps its line buffers (about
/// 0.6 MB per 1000 pixels of the image's longer side).
pub fn render(img: &RgbImage, params: &StyleParams) -> Result<RgbImage, ArtError> {
    params.validate()?;
    Ok(match *params {
        StyleParams::Pencil(p) => npr::pencil(img, p.sigma_s, p.sigma_r, p.shade_factor, false),
        StyleParams::PencilColor(p) => npr::pencil(img, p.sigma_s, p.sigma_r, p.shade_factor, true),
        StyleParams::Stylize(p) => npr::stylize(img, p.sigma_s, p.sigma_r),
        StyleParams::Oil(p) => oil::oil(img, p.size as usize, p.dyn_ratio),
        StyleParams::Watercolor(p) => effects::watercolor(img, p.sigma_s, p.sigma_r, p.texture),
        StyleParams::Cartoon(p) => {
            effects::cartoon(img, p.sigma_s, p.sigma_r, p.levels, p.edge_threshold)
        }
    })
}
