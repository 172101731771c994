//! Distances to skeleton segments and polygon tests for the pose-guided parser.

use crate::people::PixelBox;

/// Distance from `p` to the segment `a`–`b`, and the position along it (0 at `a`, 1 at `b`,
/// outside [0, 1] beyond the ends).
pub(crate) fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    let ((ex, ey), t) = from_segment(p, a, b);
    (ex.hypot(ey), t)
}

/// The squared distance from `p` to the segment `a`–`b`: for the nearest of several segments,
/// whose root is taken once (a polygon's edges; the trained parser's skeletons keep their
/// bones as columns, `network::Skeleton`).
pub(crate) fn segment_distance_sq(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let ((ex, ey), _) = from_segment(p, a, b);
    ex * ex + ey * ey
}

/// `p` less the nearest point of the segment `a`–`b`, and the position along it.
fn from_segment(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> ((f32, f32), f32) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        ((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2
    } else {
        0.0
    };
    let tc = t.clamp(0.0, 1.0);
    ((p.0 - (a.0 + tc * dx), p.1 - (a.1 + tc * dy)), t)
}

/// Even-odd point-in-polygon test.
pub(crate) fn inside_polygon(p: (f32, f32), poly: &[(f32, f32)]) -> bool {
    let mut inside = false;
    let n = poly.len();
    if n < 3 {
        return false;
    }
    let mut j = n - 1;
    for i in 0..n {
        let (xi, yi) = poly[i];
        let (xj, yj) = poly[j];
        if (yi > p.1) != (yj > p.1) && p.0 < (xj - xi) * (p.1 - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Distance from `p` to a polygon: 0 inside, else to the nearest edge.
pub(crate) fn polygon_distance(p: (f32, f32), poly: &[(f32, f32)]) -> f32 {
    polygon_distance_sq(p, poly).sqrt()
}

/// The squared [`polygon_distance`].
pub(crate) fn polygon_distance_sq(p: (f32, f32), poly: &[(f32, f32)]) -> f32 {
    if inside_polygon(p, poly) {
        return 0.0;
    }
    let n = poly.len();
    (0..n)
        .map(|i| segment_distance_sq(p, poly[i], poly[(i + 1) % n]))
        .fold(f32::INFINITY, f32::min)
}

/// The photo pixels (`x0, y0, x1, y1`, ends exclusive, clipped to `w` × `h`) that a crop of
/// `cw` × `ch` pixels covers, `to_image` mapping crop pixels to photo pixels.
pub(crate) fn covered_box(
    to_image: &percept_infer::Affine,
    (cw, ch): (f32, f32),
    (w, h): (u32, u32),
) -> (u32, u32, u32, u32) {
    let corners = [(0.0, 0.0), (cw, 0.0), (0.0, ch), (cw, ch)].map(|(u, v)| to_image.apply(u, v));
    // A crop wholly outside the photo covers nothing: an empty box, every loop over it empty.
    let b = PixelBox::around(corners, w, h).unwrap_or_default();
    (b.x, b.y, b.x + b.width, b.y + b.height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_polygons() {
        let (d, t) = segment_distance((5.0, 3.0), (0.0, 0.0), (10.0, 0.0));
        assert!((d - 3.0).abs() < 1e-6 && (t - 0.5).abs() < 1e-6);
        let (d, t) = segment_distance((-4.0, 3.0), (0.0, 0.0), (10.0, 0.0));
        assert!((d - 5.0).abs() < 1e-6 && t < 0.0);
        assert!((segment_distance_sq((-4.0, 3.0), (0.0, 0.0), (10.0, 0.0)) - 25.0).abs() < 1e-5);
        let square = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        assert!(inside_polygon((5.0, 5.0), &square));
        assert!(!inside_polygon((15.0, 5.0), &square));
        assert_eq!(polygon_distance((5.0, 5.0), &square), 0.0);
        assert!((polygon_distance((13.0, 5.0), &square) - 3.0).abs() < 1e-6);
    }
}
