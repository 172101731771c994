//! SSD anchors and box decoding with MediaPipe's semantics (`SsdAnchorsCalculator`,
//! `TensorsToDetectionsCalculator`), so the converted BlazeFace/BlazePose/palm models decode
//! exactly as they do in MediaPipe.

use crate::manifest::SsdOptions;
use crate::nms::{BBox, Detection};
use crate::{InferError, Result};

/// One anchor, normalised to the input: centre and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    /// Centre x in [0, 1].
    pub x_center: f32,
    /// Centre y in [0, 1].
    pub y_center: f32,
    /// Width (1 with `fixed_anchor_size`).
    pub w: f32,
    /// Height (1 with `fixed_anchor_size`).
    pub h: f32,
}

fn calculate_scale(min_scale: f32, max_scale: f32, stride_index: usize, num_strides: usize) -> f32 {
    if num_strides == 1 {
        (min_scale + max_scale) * 0.5
    } else {
        min_scale + (max_scale - min_scale) * stride_index as f32 / (num_strides as f32 - 1.0)
    }
}

/// Generates the anchors of an SSD model, layer by layer; consecutive layers with the same
/// stride share one feature map, as in MediaPipe.
pub fn ssd_anchors(o: &SsdOptions) -> Result<Vec<Anchor>> {
    if o.strides.len() != o.num_layers || o.strides.contains(&0) {
        return Err(InferError::Spec(format!(
            "ssd: {} strides (none zero) needed for {} layers, got {:?}",
            o.num_layers, o.num_layers, o.strides
        )));
    }
    let mut anchors = Vec::new();
    let mut layer_id = 0;
    while layer_id < o.num_layers {
        let mut aspect_ratios = Vec::new();
        let mut scales = Vec::new();
        let mut last_same = layer_id;
        while last_same < o.strides.len() && o.strides[last_same] == o.strides[layer_id] {
            let scale = calculate_scale(o.min_scale, o.max_scale, last_same, o.strides.len());
            if last_same == 0 && o.reduce_boxes_in_lowest_layer {
                aspect_ratios.extend([1.0, 2.0, 0.5]);
                scales.extend([0.1, scale, scale]);
            } else {
                for &ratio in &o.aspect_ratios {
                    aspect_ratios.push(ratio);
                    scales.push(scale);
                }
                if o.interpolated_scale_aspect_ratio > 0.0 {
                    let next = if last_same == o.strides.len() - 1 {
                        1.0
                    } else {
                        calculate_scale(o.min_scale, o.max_scale, last_same + 1, o.strides.len())
                    };
                    scales.push((scale * next).sqrt());
                    aspect_ratios.push(o.interpolated_scale_aspect_ratio);
                }
            }
            last_same += 1;
        }
        let stride = o.strides[layer_id];
        let fh = o.input_height.div_ceil(stride);
        let fw = o.input_width.div_ceil(stride);
        for y in 0..fh {
            for x in 0..fw {
                for (ratio, scale) in aspect_ratios.iter().zip(&scales) {
                    let (w, h) = if o.fixed_anchor_size {
                        (1.0, 1.0)
                    } else {
                        let r = ratio.sqrt();
                        (scale * r, scale / r)
                    };
                    anchors.push(Anchor {
                        x_center: (x as f32 + o.anchor_offset_x) / fw as f32,
                        y_center: (y as f32 + o.anchor_offset_y) / fh as f32,
                        w,
                        h,
                    });
                }
            }
        }
        layer_id = last_same;
    }
    Ok(anchors)
}

/// The logistic function, for score and visibility logits.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes raw SSD outputs (`boxes`: `num_boxes × num_coords`, `scores`: `num_boxes`) into
/// detections above `min_score`, in normalised input coordinates (0..1), before NMS.
pub fn decode_ssd(
    o: &SsdOptions,
    anchors: &[Anchor],
    boxes: &[f32],
    scores: &[f32],
    min_score: f32,
) -> Result<Vec<Detection>> {
    if anchors.len() != o.num_boxes
        || boxes.len() != o.num_boxes * o.num_coords
        || scores.len() < o.num_boxes
    {
        return Err(InferError::Shape(format!(
            "ssd: {} anchors, {} box values, {} scores for {} boxes of {} coords",
            anchors.len(),
            boxes.len(),
            scores.len(),
            o.num_boxes,
            o.num_coords
        )));
    }
    let mut out = Vec::new();
    for (i, anchor) in anchors.iter().enumerate() {
        let mut score = scores[i];
        if let Some(clip) = o.score_clipping_thresh {
            score = score.clamp(-clip, clip);
        }
        if o.sigmoid_score {
            score = sigmoid(score);
        }
        if score < min_score {
            continue;
        }
        let raw = &boxes[i * o.num_coords..(i + 1) * o.num_coords];
        let b = &raw[o.box_coord_offset..];
        let (mut xc, mut yc, mut w, mut h) = if o.reverse_output_order {
            (b[0], b[1], b[2], b[3])
        } else {
            (b[1], b[0], b[3], b[2])
        };
        xc = xc / o.x_scale * anchor.w + anchor.x_center;
        yc = yc / o.y_scale * anchor.h + anchor.y_center;
        if o.apply_exponential_on_box_size {
            w = (w / o.w_scale).exp() * anchor.w;
            h = (h / o.h_scale).exp() * anchor.h;
        } else {
            w = w / o.w_scale * anchor.w;
            h = h / o.h_scale * anchor.h;
        }
        let keypoints = (0..o.num_keypoints)
            .map(|k| {
                let off = o.keypoint_coord_offset + k * o.num_values_per_keypoint;
                let (kx, ky) = if o.reverse_output_order {
                    (raw[off], raw[off + 1])
                } else {
                    (raw[off + 1], raw[off])
                };
                (
                    kx / o.x_scale * anchor.w + anchor.x_center,
                    ky / o.y_scale * anchor.h + anchor.y_center,
                )
            })
            .collect();
        out.push(Detection {
            bbox: BBox {
                x: xc - w / 2.0,
                y: yc - h / 2.0,
                width: w,
                height: h,
            },
            score,
            keypoints,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn manifest() -> Manifest {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        Manifest::load(&path).expect("manifest parses")
    }

    #[test]
    fn anchor_counts_match_the_models() {
        let m = manifest();
        for (name, count) in [
            ("face_detection_full_range", 2304),
            ("face_detection_short_range", 896),
            ("pose_detection", 2254),
            ("palm_detection_full", 2016),
        ] {
            let ssd = m
                .model(name)
                .expect("model")
                .ssd
                .as_ref()
                .expect("ssd options");
            let anchors = ssd_anchors(ssd).expect("anchors");
            assert_eq!(anchors.len(), count, "{name}");
            assert_eq!(anchors.len(), ssd.num_boxes, "{name}");
        }
    }

    #[test]
    fn first_anchors_sit_at_cell_centres() {
        let m = manifest();
        let ssd = m
            .model("face_detection_short_range")
            .expect("model")
            .ssd
            .clone()
            .expect("ssd");
        let anchors = ssd_anchors(&ssd).expect("anchors");
        // 16×16 cells of stride 8, two anchors per cell.
        assert_eq!(
            anchors[0],
            Anchor {
                x_center: 0.5 / 16.0,
                y_center: 0.5 / 16.0,
                w: 1.0,
                h: 1.0
            }
        );
        assert_eq!(anchors[1], anchors[0]);
        assert!((anchors[2].x_center - 1.5 / 16.0).abs() < 1e-6);
        // The stride-16 layers start after 512 anchors.
        assert!((anchors[512].x_center - 0.5 / 8.0).abs() < 1e-6);
    }

    #[test]
    fn decode_places_box_relative_to_anchor() {
        let m = manifest();
        let ssd = m
            .model("face_detection_full_range")
            .expect("model")
            .ssd
            .clone()
            .expect("ssd");
        let anchors = ssd_anchors(&ssd).expect("anchors");
        let mut boxes = vec![0.0; ssd.num_boxes * ssd.num_coords];
        let mut scores = vec![-10.0; ssd.num_boxes];
        let i = 100;
        scores[i] = 5.0;
        // dx = +19.2 px of 192 -> +0.1; w = h = 38.4 px -> 0.2; first keypoint at the centre.
        boxes[i * 16..i * 16 + 4].copy_from_slice(&[19.2, 0.0, 38.4, 38.4]);
        boxes[i * 16 + 4] = 19.2;
        let dets = decode_ssd(&ssd, &anchors, &boxes, &scores, 0.5).expect("decode");
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        let cx = anchors[i].x_center + 0.1;
        assert!((d.bbox.x + d.bbox.width / 2.0 - cx).abs() < 1e-5);
        assert!((d.bbox.width - 0.2).abs() < 1e-5);
        assert!((d.keypoints[0].0 - cx).abs() < 1e-5);
        assert!(d.score > 0.99);
    }
}
