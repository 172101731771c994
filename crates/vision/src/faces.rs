//! Face detection with CenterFace.

use image::RgbImage;
use image::imageops;
use percept_infer::manifest::CenterNetOptions;
use percept_infer::{BBox, Detection, Fit, LoadedModel, Models, Tensor, image_to_tensor, nms};
use serde::Serialize;

use crate::{Result, VisionError};

/// A point in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// Horizontal position.
    pub x: f32,
    /// Vertical position.
    pub y: f32,
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    /// The box in photo pixels, clipped to the photo.
    pub bbox: BBox,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Image-left eye, image-right eye, nose, image-left and image-right mouth corners (the
    /// `fast` detector has one mouth point, the mouth's centre, in both corners).
    pub landmarks: [Point; 5],
}

/// How faces are searched for.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOptions {
    /// Minimum confidence of a reported face, [0.05, 1].
    pub min_score: f32,
    /// Boxes overlapping a better one by more than this IoU are dropped, (0, 1].
    pub nms_iou: f32,
    /// Photos whose long side is at most this are run whole at their own size (multiple of
    /// 32, 128..=2048); it is also the side of the whole-photo pass that finds big faces when
    /// a photo is tiled.
    pub max_single_side: u32,
    /// Smaller photos are upscaled towards this long side first, by at most `max_upscale`
    /// (0 disables; at most `max_single_side`).
    pub min_side: u32,
    /// The most a small photo is upscaled, [1, 8]. CenterFace finds faces of ~20 px and more
    /// at its input reliably (the 10-16 px faces of the test photos' 112 px copies: 17 of 19 at
    /// 1×); 2× brings a 12 px face there. More does not find more and costs the square: an
    /// upscaled face too large for the network is missed instead (the 112 px copies upscaled to
    /// 640, 5.7×: 18 of 19; at 1.5-3×: 19 of 19; `bench/peers/face_e2e.py`, BENCHMARKS.md).
    pub max_upscale: f32,
    /// Larger photos are scaled to this long side (never up): faces down to ~10 px at that
    /// scale are found, so raising it finds smaller faces in big photos at quadratic cost
    /// (`max_single_side`..=8192).
    pub max_detail_side: u32,
    /// The largest pass the model runs at once; a scaled photo larger than this is tiled
    /// (multiple of 32, 256..=2048).
    pub tile: u32,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            min_score: 0.5,
            nms_iou: 0.3,
            max_single_side: 1280,
            min_side: 640,
            max_upscale: 2.0,
            // A 4000×3000 photo runs at 1600×1200: faces from ~25 px, in one pass (BENCHMARKS.md,
            // "Face anonymisation end to end", measures this against 2560).
            max_detail_side: 1600,
            tile: 1600,
        }
    }
}

impl DetectOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(VisionError::BadOption(msg));
        if !(0.05..=1.0).contains(&self.min_score) {
            return bad(format!(
                "min_score must be in [0.05, 1], got {}",
                self.min_score
            ));
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return bad(format!("nms_iou must be in (0, 1], got {}", self.nms_iou));
        }
        if !(128..=2048).contains(&self.max_single_side) || !self.max_single_side.is_multiple_of(32)
        {
            return bad(format!(
                "max_single_side must be a multiple of 32 in 128..=2048, got {}",
                self.max_single_side
            ));
        }
        if self.min_side > self.max_single_side {
            return bad(format!(
                "min_side ({}) must not exceed max_single_side ({})",
                self.min_side, self.max_single_side
            ));
        }
        if !(1.0..=8.0).contains(&self.max_upscale) {
            return bad(format!(
                "max_upscale must be in [1, 8], got {}",
                self.max_upscale
            ));
        }
        if self.max_detail_side < self.max_single_side || self.max_detail_side > 8192 {
            return bad(format!(
                "max_detail_side must be in {}..=8192, got {}",
                self.max_single_side, self.max_detail_side
            ));
        }
        if !(256..=2048).contains(&self.tile) || !self.tile.is_multiple_of(32) {
            return bad(format!(
                "tile must be a multiple of 32 in 256..=2048, got {}",
                self.tile
            ));
        }
        Ok(())
    }
}

/// One run of the model: a region of the photo (image pixels) at a scale.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pass {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    scale: f32,
}

impl Pass {
    fn whole(width: u32, height: u32, scale: f32) -> Self {
        Self {
            x: 0,
            y: 0,
            width,
            height,
            scale,
        }
    }
}

/// The passes that cover a `width` × `height` photo.
fn plan_passes(width: u32, height: u32, o: &DetectOptions) -> Vec<Pass> {
    let long = width.max(height) as f32;
    let whole = |scale: f32| Pass::whole(width, height, scale);
    let scale = if long <= o.max_single_side as f32 {
        if o.min_side > 0 && long < o.min_side as f32 {
            (o.min_side as f32 / long).min(o.max_upscale)
        } else {
            1.0
        }
    } else {
        (o.max_detail_side as f32 / long).min(1.0)
    };
    let mut passes = if long * scale <= o.tile as f32 {
        vec![whole(scale)]
    } else {
        tiled(width, height, scale, o)
    };
    // Big faces: at the detail scale a face filling much of a large photo is several hundred
    // pixels at CenterFace's input, where it scores lowest (the int8 model missed the 1080p
    // copy of `person_hopper`, a 650 px face cut by the crop, that the float one found at
    // 0.7); a pass at `min_side` sees it at a size the network knows, for a quarter or less of
    // the detail pass's cost.
    if o.min_side > 0 && long * scale >= 2.0 * o.min_side as f32 {
        passes.push(whole(o.min_side as f32 / long));
    }
    passes
}

/// A downscaled whole-photo pass and the tiles at `scale` that cover a photo too large for one
/// pass.
fn tiled(width: u32, height: u32, scale: f32, o: &DetectOptions) -> Vec<Pass> {
    let long = width.max(height) as f32;
    let whole = |scale: f32| Pass::whole(width, height, scale);
    // Big faces may span tiles, so a downscaled whole-photo pass finds them; the tiles then find
    // the small faces that downscaling would erase.
    let mut passes = vec![whole(o.max_single_side as f32 / long)];
    let tile = (o.tile as f32 / scale).floor() as u32;
    // Overlap of a quarter tile: a face up to that size is whole in at least one tile.
    let step = (tile * 3 / 4).max(1);
    let starts = |len: u32| -> Vec<u32> {
        if len <= tile {
            return vec![0];
        }
        let mut v: Vec<u32> = (0..)
            .map(|i| i * step)
            .take_while(|&s| s + tile < len)
            .collect();
        v.push(len - tile);
        v
    };
    for y in starts(height) {
        for x in starts(width) {
            passes.push(Pass {
                x,
                y,
                width: tile.min(width - x),
                height: tile.min(height - y),
                scale,
            });
        }
    }
    passes
}

/// CenterFace on the CPU. Cheap to clone; share it in an `Arc` across workers.
#[derive(Debug, Clone)]
pub struct FaceDetector {
    model: LoadedModel,
    options: CenterNetOptions,
    outputs: [usize; 4],
    multiple: u32,
}

impl FaceDetector {
    /// The manifest name of the model this detector needs loaded.
    pub const MODEL: &'static str = "centerface";

    /// A detector on the loaded `centerface` model.
    pub fn new(models: &Models) -> Result<Self> {
        let model = models.get(Self::MODEL)?.clone();
        let spec = model.spec();
        let options = spec
            .centernet
            .clone()
            .ok_or_else(|| VisionError::Output("centerface has no [model.centernet]".into()))?;
        let outputs = [
            spec.output_index(&options.heatmap)?,
            spec.output_index(&options.scale)?,
            spec.output_index(&options.offset)?,
            spec.output_index(&options.landmarks)?,
        ];
        let multiple = spec.input.multiple_of.unwrap_or(32).max(1);
        Ok(Self {
            model,
            options,
            outputs,
            multiple,
        })
    }

    /// Finds the faces in `image`, best first.
    pub fn detect(&self, image: &RgbImage, options: &DetectOptions) -> Result<Vec<Face>> {
        options.validate()?;
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Ok(Vec::new());
        }
        let mut all = Vec::new();
        for pass in plan_passes(w, h, options) {
            all.extend(self.run_pass(image, pass, options.min_score)?);
        }
        let kept = suppress_contained(nms(all, options.nms_iou));
        Ok(kept.into_iter().map(|d| to_face(d, w, h)).collect())
    }

    fn run_pass(&self, image: &RgbImage, pass: Pass, min_score: f32) -> Result<Vec<Detection>> {
        let region;
        let src = if (pass.width, pass.height) == image.dimensions() {
            image
        } else {
            region = imageops::crop_imm(image, pass.x, pass.y, pass.width, pass.height).to_image();
            &region
        };
        let m = self.multiple;
        let cw = ((pass.width as f32 * pass.scale).round() as u32).max(m);
        let ch = ((pass.height as f32 * pass.scale).round() as u32).max(m);
        let input = (cw.div_ceil(m) * m, ch.div_ceil(m) * m);
        let fit = Fit::top_left(src.dimensions(), (cw, ch), input)?;
        let tensor = image_to_tensor(src, &fit, &self.model.spec().input);
        let outputs = self.model.run(&tensor)?;
        let mut dets = self.decode(&outputs, &fit, min_score)?;
        for d in &mut dets {
            d.bbox.x += pass.x as f32;
            d.bbox.y += pass.y as f32;
            for k in &mut d.keypoints {
                k.0 += pass.x as f32;
                k.1 += pass.y as f32;
            }
        }
        Ok(dets)
    }

    /// CenterFace decoding (deface's `postprocess`), mapped back to the pass's region pixels.
    fn decode(&self, outputs: &[Tensor], fit: &Fit, min_score: f32) -> Result<Vec<Detection>> {
        let get = |i: usize, channels: usize| -> Result<(&[f32], usize, usize)> {
            let t = outputs
                .get(i)
                .ok_or_else(|| VisionError::Output(format!("missing output {i}")))?;
            match t.shape() {
                &[1, c, h, w] if c == channels => Ok((t.data(), h, w)),
                s => Err(VisionError::Output(format!(
                    "output {i} has shape {s:?}, expected [1, {channels}, h, w]"
                ))),
            }
        };
        let (heat, gh, gw) = get(self.outputs[0], 1)?;
        let (scale, ..) = get(self.outputs[1], 2)?;
        let (offset, ..) = get(self.outputs[2], 2)?;
        let (lms, ..) = get(self.outputs[3], 10)?;
        let plane = gh * gw;
        if [scale.len(), offset.len(), lms.len()] != [2 * plane, 2 * plane, 10 * plane] {
            return Err(VisionError::Output("output grids differ in size".into()));
        }
        let stride = self.options.stride as f32;
        let (in_w, in_h) = (fit.input_width as f32, fit.input_height as f32);
        let mut dets = Vec::new();
        for (i, &score) in heat.iter().enumerate() {
            if score < min_score {
                continue;
            }
            let (row, col) = ((i / gw) as f32, (i % gw) as f32);
            let bh = scale[i].exp() * stride;
            let bw = scale[plane + i].exp() * stride;
            let cy = (row + offset[i] + 0.5) * stride;
            let cx = (col + offset[plane + i] + 0.5) * stride;
            let x1 = (cx - bw / 2.0).clamp(0.0, in_w);
            let y1 = (cy - bh / 2.0).clamp(0.0, in_h);
            let x2 = (x1 + bw).min(in_w);
            let y2 = (y1 + bh).min(in_h);
            if !(x2 > x1 && y2 > y1) {
                continue;
            }
            // Landmarks are relative to the unclipped-at-the-far-edge box, as deface does.
            let keypoints = (0..5)
                .map(|j| {
                    let ly = lms[2 * j * plane + i] * bh + y1;
                    let lx = lms[(2 * j + 1) * plane + i] * bw + x1;
                    fit.to_image(lx, ly)
                })
                .collect();
            let (ix1, iy1) = fit.to_image(x1, y1);
            let (ix2, iy2) = fit.to_image(x2, y2);
            dets.push(Detection {
                bbox: BBox {
                    x: ix1,
                    y: iy1,
                    width: ix2 - ix1,
                    height: iy2 - iy1,
                },
                score,
                keypoints,
            });
        }
        Ok(dets)
    }
}

/// Drops a box mostly inside a better one: tiles see a face cut at their edge as a smaller,
/// weaker box that IoU-based NMS keeps.
pub(crate) fn suppress_contained(dets: Vec<Detection>) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        let inside = kept.iter().any(|k| {
            let smaller = k.bbox.area().min(d.bbox.area());
            smaller > 0.0 && k.bbox.intersection(&d.bbox) / smaller > 0.7
        });
        if !inside {
            kept.push(d);
        }
    }
    kept
}

pub(crate) fn to_face(d: Detection, w: u32, h: u32) -> Face {
    let (w, h) = (w as f32, h as f32);
    let x1 = d.bbox.x.clamp(0.0, w);
    let y1 = d.bbox.y.clamp(0.0, h);
    let x2 = (d.bbox.x + d.bbox.width).clamp(0.0, w);
    let y2 = (d.bbox.y + d.bbox.height).clamp(0.0, h);
    let mut landmarks = [Point { x: 0.0, y: 0.0 }; 5];
    for (p, k) in landmarks.iter_mut().zip(&d.keypoints) {
        *p = Point { x: k.0, y: k.1 };
    }
    Face {
        bbox: BBox {
            x: x1,
            y: y1,
            width: x2 - x1,
            height: y2 - y1,
        },
        score: d.score,
        landmarks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_medium_photos_are_one_pass() {
        let o = DetectOptions::default();
        let cases = [
            ((256, 205), 2.0),
            ((112, 112), 2.0),
            ((400, 300), 1.6),
            ((640, 480), 1.0),
            ((1024, 683), 1.0),
            ((512, 600), 640.0 / 600.0),
        ];
        for ((w, h), scale) in cases {
            let p = plan_passes(w, h, &o);
            assert_eq!(p.len(), 1, "{w}x{h}");
            assert!((p[0].scale - scale).abs() < 1e-6, "{w}x{h}");
        }
    }

    #[test]
    fn large_photos_run_whole_at_the_detail_side() {
        let o = DetectOptions::default();
        for ((w, h), scale) in [
            ((4000, 3000), 0.4),
            ((1920, 1080), 1600.0 / 1920.0),
            ((1280, 960), 1.0),
        ] {
            let p = plan_passes(w, h, &o);
            // The detail pass, then the coarse one for big faces.
            assert_eq!(p.len(), 2, "{w}x{h}");
            assert_eq!((p[0].width, p[0].height), (w, h));
            assert!((p[0].scale - scale).abs() < 1e-6, "{w}x{h}");
            assert_eq!((p[1].width, p[1].height), (w, h));
            let coarse = 640.0 / w.max(h) as f32;
            assert!((p[1].scale - coarse).abs() < 1e-6, "{w}x{h}");
        }
        // Below twice `min_side` the detail pass sees big faces at a size it knows.
        assert_eq!(plan_passes(1024, 683, &o).len(), 1);
    }

    #[test]
    fn large_photos_are_tiled_and_covered() {
        let o = DetectOptions {
            max_detail_side: 2560,
            tile: 1024,
            ..DetectOptions::default()
        };
        for (w, h) in [(4000, 3000), (1300, 900), (12000, 300)] {
            let p = plan_passes(w, h, &o);
            assert!(p.len() > 1, "{w}x{h}");
            assert_eq!((p[0].width, p[0].height), (w, h));
            // Every pixel is in some tile, and tiles stay inside the photo.
            for t in &p[1..] {
                assert!(t.x + t.width <= w && t.y + t.height <= h);
                assert!(t.width as f32 * t.scale <= o.tile as f32 + 1.0);
            }
            for (x, y) in [(0, 0), (w - 1, h - 1), (w / 2, h / 3)] {
                assert!(
                    p[1..]
                        .iter()
                        .any(|t| x >= t.x && x < t.x + t.width && y >= t.y && y < t.y + t.height)
                );
            }
        }
    }

    #[test]
    fn bad_options_are_rejected() {
        let cases = [
            DetectOptions {
                min_score: 0.0,
                ..Default::default()
            },
            DetectOptions {
                min_score: f32::NAN,
                ..Default::default()
            },
            DetectOptions {
                nms_iou: 0.0,
                ..Default::default()
            },
            DetectOptions {
                max_single_side: 100,
                ..Default::default()
            },
            DetectOptions {
                tile: 1000,
                ..Default::default()
            },
            DetectOptions {
                min_side: 4096,
                ..Default::default()
            },
            DetectOptions {
                max_detail_side: 9000,
                ..Default::default()
            },
            DetectOptions {
                max_upscale: 0.5,
                ..Default::default()
            },
            DetectOptions {
                max_upscale: f32::NAN,
                ..Default::default()
            },
        ];
        for o in cases {
            assert!(o.validate().is_err(), "{o:?}");
        }
        assert!(DetectOptions::default().validate().is_ok());
    }
}
