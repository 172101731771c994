//! The learned-model slot: a semantic-segmentation network declared in the manifest
//! (`task = "human_parsing"` with `[model.segmentation]`) labels the pixels instead of the
//! pose-guided rules; people are still told apart by their pose masks.

use image::RgbImage;
use percept_infer::manifest::{Layout, ResizeMode, SegmentationSpec};
use percept_infer::{Fit, LoadedModel, Models, image_to_tensor};

use super::labels::SegmentationModel;
use crate::{Result, VisionError};

/// The manifest task that marks a parsing network.
pub const TASK: &str = "human_parsing";

/// A loaded parsing network and how its labels map onto LIP's.
#[derive(Debug, Clone)]
pub(crate) struct LearnedParser {
    model: LoadedModel,
    seg: SegmentationSpec,
    output: usize,
    to_lip: Vec<u8>,
    size: (u32, u32),
}

/// Per work-image pixel: LIP label and the network's probability for it.
pub(crate) struct LearnedLabels {
    pub labels: Vec<u8>,
    pub confidence: Vec<f32>,
}

impl LearnedParser {
    /// The parsing network among the loaded models, if the manifest declares one and it was
    /// loaded.
    pub(crate) fn find(models: &Models) -> Result<Option<Self>> {
        Ok(SegmentationModel::find(models, TASK)?.map(|m| Self {
            model: m.model,
            seg: m.seg,
            output: m.output,
            to_lip: m.to_lip,
            size: m.input,
        }))
    }

    /// The manifest name, for the result's `parser` field.
    pub(crate) fn name(&self) -> &str {
        &self.model.spec().name
    }

    /// Labels every pixel of `image` (work size) with the network's best label.
    pub(crate) fn label(&self, image: &RgbImage) -> Result<LearnedLabels> {
        let spec = self.model.spec();
        let fit = match spec.input.resize {
            Some(ResizeMode::Stretch) => Fit::stretch(image.dimensions(), self.size)?,
            _ => Fit::letterbox(image.dimensions(), self.size)?,
        };
        let outputs = self.model.run(&image_to_tensor(image, &fit, &spec.input))?;
        let scores = outputs
            .get(self.output)
            .ok_or_else(|| VisionError::Output("missing segmentation output".into()))?;
        let n = self.seg.labels.len();
        let (w, h) = (self.size.0 as usize, self.size.1 as usize);
        if scores.len() != n * w * h {
            return Err(VisionError::Output(format!(
                "segmentation output has {} values, expected {n} labels × {w} × {h}",
                scores.len()
            )));
        }
        let data = scores.data();
        let at = |c: usize, y: usize, x: usize| match self.seg.layout {
            Layout::Nchw => data[(c * h + y) * w + x],
            Layout::Nhwc => data[(y * w + x) * n + c],
        };
        // Argmax and softmax probability per network pixel, then nearest-neighbour to the photo.
        let mut best = vec![(0u8, 0.0f32); w * h];
        for y in 0..h {
            for x in 0..w {
                let (mut arg, mut max) = (0, f32::NEG_INFINITY);
                for c in 0..n {
                    let v = at(c, y, x);
                    if v > max {
                        (arg, max) = (c, v);
                    }
                }
                let sum: f32 = (0..n).map(|c| (at(c, y, x) - max).exp()).sum();
                best[y * w + x] = (self.to_lip[arg], 1.0 / sum.max(1.0));
            }
        }
        let (iw, ih) = image.dimensions();
        let mut labels = vec![0u8; (iw * ih) as usize];
        let mut confidence = vec![0.0f32; (iw * ih) as usize];
        for y in 0..ih {
            for x in 0..iw {
                let (u, v) = fit.to_input(x as f32 + 0.5, y as f32 + 0.5);
                let (u, v) = ((u as usize).min(w - 1), (v as usize).min(h - 1));
                let i = (y * iw + x) as usize;
                (labels[i], confidence[i]) = best[v * w + u];
            }
        }
        Ok(LearnedLabels { labels, confidence })
    }
}
