//! What a parse answers: the JSON part (people, segments, palette) and the label map.

use image::GrayImage;
use serde::Serialize;

use super::labels::PaletteEntry;
use crate::people::PixelBox;

/// One parsed person.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedPerson {
    /// Index used by `segments[].person`.
    pub index: usize,
    /// Box of the person's labelled pixels.
    pub bbox: PixelBox,
    /// The pose model's person-presence probability.
    pub score: f32,
    /// How the person was found: `pose` (whole-photo detector) or `face` (a crop around a face).
    pub seed: &'static str,
    /// Pixels labelled for this person.
    pub pixel_count: u64,
}

/// One (person, label) region.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// LIP label name.
    pub label: &'static str,
    /// Label value in the mask.
    pub label_index: u8,
    /// Mean per-pixel evidence (person-mask probability × how clearly the pixel's colour and
    /// place fit the label), in [0, 1].
    pub confidence: f32,
    /// Pixels with this label for this person.
    pub pixel_count: u64,
    /// Their box.
    pub bbox: PixelBox,
    /// The person (`persons[].index`).
    pub person: usize,
}

/// The JSON part of a parse.
#[derive(Debug, Clone, Serialize)]
pub struct ParseResult {
    /// Photo width.
    pub width: u32,
    /// Photo height.
    pub height: u32,
    /// Which parser produced the labels: `learned:<manifest name>` (the shipped per-person
    /// network, or a whole-photo network the manifest declares) or `pose-guided`.
    pub parser: String,
    /// People found, most confident first.
    pub persons: Vec<ParsedPerson>,
    /// Labelled regions, by person then label.
    pub segments: Vec<Segment>,
    /// Label colours, for a legend.
    pub palette: Vec<PaletteEntry>,
}

/// A parse: the JSON part and the label map (one label value per pixel, photo size).
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Persons, segments, palette.
    pub result: ParseResult,
    /// Label values (see [`LABELS`]).
    pub labels: GrayImage,
}
