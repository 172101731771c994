//! LIP's 20 labels and their colours (the PASCAL VOC colour map that SCHP and most LIP tools
//! use), fixed so a legend stays valid across releases.

use serde::Serialize;

/// The label names, index = label value in the mask.
pub const LABELS: [&str; 20] = [
    "background",
    "hat",
    "hair",
    "glove",
    "sunglasses",
    "upper_clothes",
    "dress",
    "coat",
    "socks",
    "pants",
    "jumpsuits",
    "scarf",
    "skirt",
    "face",
    "left_arm",
    "right_arm",
    "left_leg",
    "right_leg",
    "left_shoe",
    "right_shoe",
];

/// Label values used by the pose-guided parser.
#[allow(missing_docs)]
pub mod id {
    pub const BACKGROUND: u8 = 0;
    pub const HAIR: u8 = 2;
    pub const GLOVE: u8 = 3;
    pub const UPPER_CLOTHES: u8 = 5;
    pub const DRESS: u8 = 6;
    pub const COAT: u8 = 7;
    pub const PANTS: u8 = 9;
    pub const JUMPSUITS: u8 = 10;
    pub const SKIRT: u8 = 12;
    pub const FACE: u8 = 13;
    pub const LEFT_ARM: u8 = 14;
    pub const RIGHT_ARM: u8 = 15;
    pub const LEFT_LEG: u8 = 16;
    pub const RIGHT_LEG: u8 = 17;
    pub const LEFT_SHOE: u8 = 18;
    pub const RIGHT_SHOE: u8 = 19;
}

/// The colour of label `index`: bit-interleaved VOC colour map.
pub const fn colour(index: u8) -> [u8; 3] {
    let mut rgb = [0u8; 3];
    let mut lab = index;
    let mut shift = 7i32;
    while lab > 0 && shift >= 0 {
        rgb[0] |= (lab & 1) << shift;
        rgb[1] |= ((lab >> 1) & 1) << shift;
        rgb[2] |= ((lab >> 2) & 1) << shift;
        lab >>= 3;
        shift -= 1;
    }
    rgb
}

/// A loaded segmentation network declared for `task`: the model, its `[model.segmentation]`,
/// the index of its score output, its planes' LIP label values (names LIP lacks → background)
/// and its fixed input size (width, height).
pub(crate) struct SegmentationModel {
    pub model: percept_infer::LoadedModel,
    pub seg: percept_infer::manifest::SegmentationSpec,
    pub output: usize,
    pub to_lip: Vec<u8>,
    pub input: (u32, u32),
}

impl SegmentationModel {
    /// The first loaded model whose manifest task is `task` and that has `[model.segmentation]`.
    pub(crate) fn find(models: &percept_infer::Models, task: &str) -> crate::Result<Option<Self>> {
        let Some(model) = models
            .iter()
            .find(|m| m.spec().task == task && m.spec().segmentation.is_some())
        else {
            return Ok(None);
        };
        let spec = model.spec();
        let missing = |what: &str| crate::VisionError::Output(format!("{}: {what}", spec.name));
        let seg = spec
            .segmentation
            .clone()
            .ok_or_else(|| missing("no [model.segmentation]"))?;
        let (h, w) = spec
            .input
            .fixed_hw()
            .ok_or_else(|| missing("a parsing network needs a fixed input size"))?;
        let to_lip = seg
            .labels
            .iter()
            .map(|name| LABELS.iter().position(|l| l == name).unwrap_or(0) as u8)
            .collect();
        Ok(Some(Self {
            model: model.clone(),
            output: spec.output_index(&seg.output)?,
            seg,
            to_lip,
            input: (w as u32, h as u32),
        }))
    }
}

/// One legend entry.
#[derive(Debug, Clone, Serialize)]
pub struct PaletteEntry {
    /// Label value in the mask.
    pub index: u8,
    /// Label name.
    pub label: &'static str,
    /// Display colour.
    pub color: [u8; 3],
}

/// The whole legend.
pub fn palette() -> Vec<PaletteEntry> {
    LABELS
        .iter()
        .enumerate()
        .map(|(i, &label)| PaletteEntry {
            index: i as u8,
            label,
            color: colour(i as u8),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_match_the_voc_map_and_are_distinct() {
        assert_eq!(colour(0), [0, 0, 0]);
        assert_eq!(colour(2), [0, 128, 0]);
        assert_eq!(colour(13), [192, 0, 128]);
        assert_eq!(colour(19), [128, 192, 0]);
        let mut all: Vec<[u8; 3]> = (0..20).map(colour).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 20);
        assert_eq!(palette()[id::FACE as usize].label, "face");
        assert_eq!(palette()[id::RIGHT_SHOE as usize].label, "right_shoe");
    }
}
