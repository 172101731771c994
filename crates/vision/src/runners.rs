//! The two kinds of MediaPipe model every pipeline chains: SSD detectors (anchors, sigmoid
//! scores, weighted NMS) and landmark regressors run on a rotated crop.

use image::RgbImage;
use percept_infer::manifest::{LandmarksSpec, SsdOptions};
use percept_infer::{
    Affine, Anchor, Border, Detection, LoadedModel, Models, RotatedRect, Tensor, crop_rotated_with,
    decode_ssd, rgb_to_tensor, sigmoid, ssd_anchors, weighted_nms,
};

use crate::{Result, VisionError};

/// The values of output `index`, checked to hold at least `min_len` of them.
pub(crate) fn output(outputs: &[Tensor], index: usize, min_len: usize) -> Result<&[f32]> {
    let t = outputs
        .get(index)
        .ok_or_else(|| VisionError::Output(format!("missing output {index}")))?;
    if t.len() < min_len {
        return Err(VisionError::Output(format!(
            "output {index} has {} values, expected at least {min_len}",
            t.len()
        )));
    }
    Ok(t.data())
}

/// The fixed (width, height) of a model's image input.
fn input_size(model: &LoadedModel) -> Result<(u32, u32)> {
    let (h, w) = model.spec().input.fixed_hw().ok_or_else(|| {
        VisionError::Output(format!("{} has no fixed input size", model.spec().name))
    })?;
    Ok((w as u32, h as u32))
}

/// An SSD detector (BlazeFace, BlazePose detector, palm detector) with its anchors.
#[derive(Debug, Clone)]
pub(crate) struct SsdDetector {
    model: LoadedModel,
    ssd: SsdOptions,
    anchors: Vec<Anchor>,
    boxes: usize,
    scores: usize,
    size: (u32, u32),
}

impl SsdDetector {
    pub(crate) fn new(models: &Models, name: &str) -> Result<Self> {
        let model = models.get(name)?.clone();
        let spec = model.spec();
        let ssd = spec
            .ssd
            .clone()
            .ok_or_else(|| VisionError::Output(format!("{name} has no [model.ssd]")))?;
        if spec.outputs.len() < 2 {
            return Err(VisionError::Output(format!("{name} needs two outputs")));
        }
        let anchors = ssd_anchors(&ssd)?;
        let size = input_size(&model)?;
        Ok(Self {
            model,
            ssd,
            anchors,
            boxes: 0,
            scores: 1,
            size,
        })
    }

    /// Detections on an image already at the input size, in its pixels, after weighted NMS,
    /// best first.
    pub(crate) fn detect(&self, input: &RgbImage, min_score: f32) -> Result<Vec<Detection>> {
        if input.dimensions() != self.size {
            return Err(VisionError::Output(format!(
                "{} wants {:?}, got {:?}",
                self.model.spec().name,
                self.size,
                input.dimensions()
            )));
        }
        let outputs = self
            .model
            .run(&rgb_to_tensor(input, &self.model.spec().input))?;
        let boxes = output(
            &outputs,
            self.boxes,
            self.ssd.num_boxes * self.ssd.num_coords,
        )?;
        let scores = output(&outputs, self.scores, self.ssd.num_boxes)?;
        let dets = decode_ssd(&self.ssd, &self.anchors, boxes, scores, min_score)?;
        let (w, h) = (self.size.0 as f32, self.size.1 as f32);
        let mut dets = weighted_nms(dets, self.ssd.nms_min_suppression_threshold);
        for d in &mut dets {
            d.bbox.x *= w;
            d.bbox.y *= h;
            d.bbox.width *= w;
            d.bbox.height *= h;
            for k in &mut d.keypoints {
                k.0 *= w;
                k.1 *= h;
            }
        }
        Ok(dets)
    }

    /// Detections inside a rotated ROI of `image`, mapped back to image pixels.
    pub(crate) fn detect_in(
        &self,
        image: &RgbImage,
        roi: &RotatedRect,
        min_score: f32,
    ) -> Result<Vec<Detection>> {
        let (crop, map) = crop_rotated_with(image, roi, self.size.0, self.size.1, Border::Zero)?;
        let mut dets = self.detect(&crop, min_score)?;
        for d in &mut dets {
            // The box is only used through its keypoints downstream; map its corners' span.
            let (x0, y0) = map.apply(d.bbox.x, d.bbox.y);
            let (x1, y1) = map.apply(d.bbox.x + d.bbox.width, d.bbox.y + d.bbox.height);
            d.bbox.x = x0.min(x1);
            d.bbox.y = y0.min(y1);
            d.bbox.width = (x1 - x0).abs();
            d.bbox.height = (y1 - y0).abs();
            for k in &mut d.keypoints {
                *k = map.apply(k.0, k.1);
            }
        }
        Ok(dets)
    }
}

/// What a landmark model returned for one crop, still in crop coordinates.
#[derive(Debug, Clone)]
pub(crate) struct CropLandmarks {
    /// Per landmark: x, y (crop pixels), z (crop pixels, already divided by `normalize_z`),
    /// visibility and presence (probabilities; 1 when the model has none).
    pub points: Vec<[f32; 5]>,
    /// The presence flag as a probability, when the model has one.
    pub flag: Option<f32>,
    /// All raw outputs, for model-specific extras (segmentation, heatmaps).
    pub outputs: Vec<Tensor>,
    /// Crop pixels → image pixels.
    pub to_image: Affine,
    /// The crop's size.
    pub size: (u32, u32),
}

impl CropLandmarks {
    /// The points in image pixels of a `width` × `height` photo, `roi` being the crop's
    /// region (its width scales z the way MediaPipe's LandmarkProjectionCalculator does).
    pub(crate) fn to_landmarks(
        &self,
        roi: &RotatedRect,
        width: u32,
        height: u32,
        with_visibility: bool,
    ) -> Vec<crate::Landmark> {
        let z_scale = roi.width / self.size.0.max(1) as f32;
        self.points
            .iter()
            .map(|p| {
                let (x, y) = self.to_image.apply(p[0], p[1]);
                let mut lm = crate::Landmark::at(x, y, p[2] * z_scale, width, height);
                if with_visibility {
                    lm.visibility = Some(p[3]);
                    lm.presence = Some(p[4]);
                }
                lm
            })
            .collect()
    }
}

/// A landmark regressor (pose, hand, face mesh, hand re-crop) run on rotated crops.
#[derive(Debug, Clone)]
pub(crate) struct LandmarkModel {
    model: LoadedModel,
    spec: LandmarksSpec,
    output: usize,
    flag: Option<usize>,
    size: (u32, u32),
    /// MediaPipe's landmark graphs leave ImageToTensor's border at its default, replicate;
    /// measured against MediaPipe's own output, zero padding moves the pose points 2–4× further.
    border: Border,
}

impl LandmarkModel {
    pub(crate) fn new(models: &Models, name: &str) -> Result<Self> {
        let model = models.get(name)?.clone();
        let m = model.spec();
        let spec = m
            .landmarks
            .clone()
            .ok_or_else(|| VisionError::Output(format!("{name} has no [model.landmarks]")))?;
        let output = m.output_index(&spec.output)?;
        let flag = spec
            .flag_output
            .as_deref()
            .map(|o| m.output_index(o))
            .transpose()?;
        let size = input_size(&model)?;
        Ok(Self {
            model,
            spec,
            output,
            flag,
            size,
            border: Border::Replicate,
        })
    }

    /// The index of the output called `name`.
    pub(crate) fn output_index(&self, name: &str) -> Result<usize> {
        Ok(self.model.spec().output_index(name)?)
    }

    /// The manifest's landmark facts.
    pub(crate) fn spec(&self) -> &LandmarksSpec {
        &self.spec
    }

    /// Crops `roi` (replicating edge pixels, as MediaPipe's landmark graphs do) and runs the
    /// model on it.
    pub(crate) fn run(&self, image: &RgbImage, roi: &RotatedRect) -> Result<CropLandmarks> {
        self.run_on(image, roi, false)
    }

    /// As [`LandmarkModel::run`] with the crop mirrored left–right before inference and the
    /// points mirrored back: a model trained on one side (the iris model's left eye) reads the
    /// other side's crop that way.
    pub(crate) fn run_mirrored(
        &self,
        image: &RgbImage,
        roi: &RotatedRect,
    ) -> Result<CropLandmarks> {
        self.run_on(image, roi, true)
    }

    fn run_on(&self, image: &RgbImage, roi: &RotatedRect, mirror: bool) -> Result<CropLandmarks> {
        let (mut crop, to_image) =
            crop_rotated_with(image, roi, self.size.0, self.size.1, self.border)?;
        if mirror {
            image::imageops::flip_horizontal_in_place(&mut crop);
        }
        let outputs = self
            .model
            .run(&rgb_to_tensor(&crop, &self.model.spec().input))?;
        let s = &self.spec;
        let n = s.num_landmarks;
        let v = s.values_per_landmark;
        let raw = output(&outputs, self.output, n * v)?;
        let activate = |kind: &Option<String>, x: f32| match kind.as_deref() {
            Some("SIGMOID") => sigmoid(x),
            _ => x,
        };
        let norm_z = s.normalize_z.unwrap_or(1.0).max(1e-6);
        // Every point the model gives, beyond the `used_landmarks` reported: the pose's two
        // auxiliary points place the next video frame's crop.
        let points = (0..n)
            .map(|i| {
                let p = &raw[i * v..(i + 1) * v];
                let z = if v > 2 { p[2] / norm_z } else { 0.0 };
                let vis = if v > 3 {
                    activate(&s.visibility_activation, p[3])
                } else {
                    1.0
                };
                let pres = if v > 4 {
                    activate(&s.presence_activation, p[4])
                } else {
                    1.0
                };
                // Mirrored back: the crop's x runs from its right edge.
                let x = if mirror {
                    self.size.0 as f32 - p[0]
                } else {
                    p[0]
                };
                [x, p[1], z, vis, pres]
            })
            .collect();
        let flag = match self.flag {
            Some(i) => Some(activate(&s.flag_activation, output(&outputs, i, 1)?[0])),
            None => None,
        };
        Ok(CropLandmarks {
            points,
            flag,
            outputs,
            to_image,
            size: self.size,
        })
    }

    /// Gets the engine ready for `runs` runs of this model at once.
    pub(crate) fn reserve(&self, runs: usize) -> Result<()> {
        Ok(self.model.session().reserve(runs)?)
    }

    /// Whether the flag says the part is there (no flag: always).
    pub(crate) fn present(&self, lm: &CropLandmarks) -> bool {
        match lm.flag {
            Some(p) => p > self.spec.flag_threshold.unwrap_or(0.5),
            None => true,
        }
    }
}
