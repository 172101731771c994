//! Landmarks in image pixels, and the ROI rules (from `models/manifest.toml`) that chain
//! MediaPipe's stages: DetectionsToRects / AlignmentPointsRects / HandDetectionsFromPoseToRects
//! followed by RectTransformation. Everything works in image pixels; MediaPipe works in
//! coordinates normalised per axis, which is the same geometry once multiplied back.

use std::f32::consts::PI;

use percept_infer::manifest::RoiSpec;
use percept_infer::{Models, RotatedRect};
use serde::Serialize;

use crate::{Result, VisionError};

/// One landmark of a pose, hand or face mesh.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Landmark {
    /// Horizontal position in image pixels.
    pub x: f32,
    /// Vertical position in image pixels.
    pub y: f32,
    /// Depth in the same pixel scale as `x` (smaller is nearer the camera), relative to the
    /// part's own origin (hips for the pose, wrist for a hand, the face's centre for the mesh).
    pub z: f32,
    /// `x` divided by the image width.
    pub nx: f32,
    /// `y` divided by the image height.
    pub ny: f32,
    /// Probability that the point is visible (not occluded), where the model gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<f32>,
    /// Probability that the point is inside the photo, where the model gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<f32>,
}

impl Landmark {
    /// A landmark at image pixel (`x`, `y`) of a `width` × `height` photo.
    pub fn at(x: f32, y: f32, z: f32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            z,
            nx: x / width.max(1) as f32,
            ny: y / height.max(1) as f32,
            visibility: None,
            presence: None,
        }
    }

    /// The point as a pair.
    pub fn xy(&self) -> (f32, f32) {
        (self.x, self.y)
    }
}

/// A rotated region of interest as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Roi {
    /// Centre x in pixels.
    pub cx: f32,
    /// Centre y in pixels.
    pub cy: f32,
    /// Width in pixels.
    pub width: f32,
    /// Height in pixels.
    pub height: f32,
    /// Clockwise rotation in degrees.
    pub rotation_deg: f32,
}

impl From<RotatedRect> for Roi {
    fn from(r: RotatedRect) -> Self {
        Self {
            cx: r.cx,
            cy: r.cy,
            width: r.width,
            height: r.height,
            rotation_deg: r.rotation.to_degrees(),
        }
    }
}

/// The square around a whole `width` × `height` photo: cropping it into a square input is
/// MediaPipe's letterbox (a plain bilinear warp with a black border).
pub(crate) fn whole_image(width: u32, height: u32) -> RotatedRect {
    let side = width.max(height) as f32;
    RotatedRect {
        cx: width as f32 / 2.0,
        cy: height as f32 / 2.0,
        width: side,
        height: side,
        rotation: 0.0,
    }
}

/// Wraps an angle into [-π, π) (MediaPipe's `NormalizeRadians`).
pub(crate) fn normalize_radians(angle: f32) -> f32 {
    angle - 2.0 * PI * ((angle + PI) / (2.0 * PI)).floor()
}

/// The rotation that turns the vector `start → end` to `target_deg` (DetectionsToRects'
/// `ComputeRotation`; image y points down, hence the minus).
pub(crate) fn rotation(target_deg: f32, start: (f32, f32), end: (f32, f32)) -> f32 {
    normalize_radians(target_deg.to_radians() - (-(end.1 - start.1)).atan2(end.0 - start.0))
}

/// RectTransformationCalculator: shift along the rect's own axes, optionally square it on its
/// long side, then scale.
pub(crate) fn transform(rect: RotatedRect, rule: &RoiSpec) -> RotatedRect {
    let (sin, cos) = rect.rotation.sin_cos();
    let (sx, sy) = (rect.width * rule.shift_x, rect.height * rule.shift_y);
    let mut out = RotatedRect {
        cx: rect.cx + sx * cos - sy * sin,
        cy: rect.cy + sx * sin + sy * cos,
        ..rect
    };
    if rule.square_long {
        let long = out.width.max(out.height);
        out.width = long;
        out.height = long;
    }
    out.width *= rule.scale_x;
    out.height *= rule.scale_y;
    out
}

/// Builds the ROI a rule describes from the source's points (image pixels). `None` when the
/// points are missing or degenerate (a collapsed skeleton gives a zero-size crop).
pub(crate) fn roi_from_points(points: &[(f32, f32)], rule: &RoiSpec) -> Option<RotatedRect> {
    let selected: Vec<(f32, f32)> = if rule.points.is_empty() {
        points.to_vec()
    } else {
        rule.points
            .iter()
            .map(|&i| points.get(i).copied())
            .collect::<Option<_>>()?
    };
    if selected.is_empty()
        || selected
            .iter()
            .any(|p| !(p.0.is_finite() && p.1.is_finite()))
    {
        return None;
    }
    let rect = match rule.rect.as_str() {
        "alignment_points" => {
            let centre = *selected.get(rule.rotation_start)?;
            let end = *selected.get(rule.rotation_end)?;
            let side = 2.0 * (end.0 - centre.0).hypot(end.1 - centre.1);
            RotatedRect {
                cx: centre.0,
                cy: centre.1,
                width: side,
                height: side,
                rotation: rotation(rule.target_angle_deg, centre, end),
            }
        }
        "bbox" | "keypoints_bbox" => {
            let (mut x0, mut y0) = (f32::INFINITY, f32::INFINITY);
            let (mut x1, mut y1) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
            for &(x, y) in &selected {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
            RotatedRect {
                cx: (x0 + x1) / 2.0,
                cy: (y0 + y1) / 2.0,
                width: x1 - x0,
                height: y1 - y0,
                rotation: rotation(
                    rule.target_angle_deg,
                    *selected.get(rule.rotation_start)?,
                    *selected.get(rule.rotation_end)?,
                ),
            }
        }
        "hand_from_pose" => {
            // [wrist, pinky, index]: the hand's middle lies a third of the way from the index
            // knuckle to the pinky one (HandDetectionsFromPoseToRectsCalculator).
            let (wrist, pinky, index) = (selected[0], *selected.get(1)?, *selected.get(2)?);
            let middle = (
                (2.0 * index.0 + pinky.0) / 3.0,
                (2.0 * index.1 + pinky.1) / 3.0,
            );
            let side = 2.0 * (middle.0 - wrist.0).hypot(middle.1 - wrist.1);
            RotatedRect {
                cx: middle.0,
                cy: middle.1,
                width: side,
                height: side,
                rotation: rotation(rule.target_angle_deg, wrist, middle),
            }
        }
        _ => return None,
    };
    let out = transform(rect, rule);
    (out.width > 1.0 && out.height > 1.0 && out.width.is_finite() && out.height.is_finite())
        .then_some(out)
}

/// The ROI rule called `name` in the loaded manifest.
pub(crate) fn rule(models: &Models, name: &str) -> Result<RoiSpec> {
    models
        .manifest()
        .roi(name)
        .cloned()
        .ok_or_else(|| VisionError::Output(format!("models/manifest.toml has no [[roi]] {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rect: &str, points: Vec<usize>, target: f32, scale: f32, shift_y: f32) -> RoiSpec {
        RoiSpec {
            name: "t".into(),
            from: "a".into(),
            to: "b".into(),
            points,
            rect: rect.into(),
            rotation_start: 0,
            rotation_end: 1,
            target_angle_deg: target,
            scale_x: scale,
            scale_y: scale,
            shift_x: 0.0,
            shift_y,
            square_long: true,
            min_wrist_visibility: None,
            mirror: false,
        }
    }

    #[test]
    fn upright_body_needs_no_rotation() {
        // Hip centre below the body-size point, as for a standing person: the vector points up,
        // which is the 90° MediaPipe aligns to.
        let rule = spec("alignment_points", vec![], 90.0, 1.25, 0.0);
        let r = roi_from_points(&[(100.0, 200.0), (100.0, 100.0)], &rule).unwrap();
        assert!(r.rotation.abs() < 1e-6, "{r:?}");
        assert!((r.width - 250.0).abs() < 1e-3 && (r.height - 250.0).abs() < 1e-3);
        assert_eq!((r.cx, r.cy), (100.0, 200.0));
    }

    #[test]
    fn lying_body_is_rotated_a_quarter_turn() {
        let rule = spec("alignment_points", vec![], 90.0, 1.0, 0.0);
        // Head to the right of the hips: the body must turn 90° anticlockwise on screen to
        // stand up, i.e. the ROI is rotated by +90° (clockwise positive, image y down).
        let r = roi_from_points(&[(100.0, 100.0), (200.0, 100.0)], &rule).unwrap();
        assert!((r.rotation - PI / 2.0).abs() < 1e-5, "{r:?}");
    }

    #[test]
    fn shift_follows_the_rect_rotation() {
        let rule = spec("bbox", vec![], 0.0, 1.0, -0.1);
        let rect = RotatedRect {
            cx: 50.0,
            cy: 50.0,
            width: 20.0,
            height: 20.0,
            rotation: PI / 2.0,
        };
        let t = transform(rect, &rule);
        // Shifting "up" by 10 % in a frame rotated 90° clockwise moves right on screen.
        assert!(
            (t.cx - 52.0).abs() < 1e-4 && (t.cy - 50.0).abs() < 1e-4,
            "{t:?}"
        );
    }

    #[test]
    fn degenerate_points_give_no_roi() {
        let rule = spec("alignment_points", vec![], 90.0, 1.25, 0.0);
        assert!(roi_from_points(&[(5.0, 5.0), (5.0, 5.0)], &rule).is_none());
        assert!(roi_from_points(&[(f32::NAN, 5.0), (5.0, 9.0)], &rule).is_none());
        assert!(roi_from_points(&[(5.0, 5.0)], &rule).is_none());
        let hand = spec("hand_from_pose", vec![15, 17, 19], 90.0, 2.7, -0.1);
        assert!(roi_from_points(&[(0.0, 0.0); 10], &hand).is_none());
    }

    #[test]
    fn angles_wrap() {
        for a in [-7.0f32, -PI, 0.0, 3.0, 9.5] {
            let n = normalize_radians(a);
            assert!((-PI..PI).contains(&n), "{a} -> {n}");
            assert!(
                ((a - n) / (2.0 * PI)).fract().abs() < 1e-4
                    || ((a - n) / (2.0 * PI)).fract().abs() > 0.9999
            );
        }
    }
}
