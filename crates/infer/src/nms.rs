//! Non-maximum suppression: hard (keep the best, drop overlaps) and weighted (MediaPipe's
//! `WEIGHTED`: average each cluster by score, which steadies boxes and keypoints).

/// An axis-aligned box: top-left corner and size, in any consistent unit. In results (a
/// face's `bbox`, a tracked person's box) it is in photo pixels, sub-pixel, and serialises as
/// `{x, y, width, height}`; parse's persons use `PixelBox` instead, whole pixels of a labelled
/// region, which stay integers in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct BBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width (≥ 0).
    pub width: f32,
    /// Height (≥ 0).
    pub height: f32,
}

impl BBox {
    /// Area; zero for degenerate boxes.
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    /// Area of the intersection with `other`.
    pub fn intersection(&self, other: &BBox) -> f32 {
        let w = (self.x + self.width).min(other.x + other.width) - self.x.max(other.x);
        let h = (self.y + self.height).min(other.y + other.height) - self.y.max(other.y);
        w.max(0.0) * h.max(0.0)
    }

    /// Intersection over union; 0 when both are empty.
    pub fn iou(&self, other: &BBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// A scored box with optional keypoints `(x, y)` in the same unit as the box.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The box.
    pub bbox: BBox,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Keypoints, model-specific order.
    pub keypoints: Vec<(f32, f32)>,
}

fn by_score_desc(mut dets: Vec<Detection>) -> Vec<Detection> {
    // NaN scores sort last instead of panicking.
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    dets.retain(|d| !d.score.is_nan());
    dets
}

/// Hard NMS: keeps the best-scoring box of every group whose IoU exceeds `iou_threshold`.
pub fn nms(dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::new();
    for d in by_score_desc(dets) {
        if kept.iter().all(|k| k.bbox.iou(&d.bbox) <= iou_threshold) {
            kept.push(d);
        }
    }
    kept
}

/// Weighted NMS: each cluster (boxes overlapping the best remaining one by more than
/// `iou_threshold`) becomes one detection whose box and keypoints are the score-weighted mean
/// of the cluster and whose score is the best one's.
pub fn weighted_nms(dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    let mut remaining = by_score_desc(dets);
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let best = remaining[0].clone();
        let (cluster, rest): (Vec<_>, Vec<_>) = remaining
            .into_iter()
            .partition(|d| d.bbox.iou(&best.bbox) > iou_threshold || *d == best);
        remaining = rest;
        let total: f32 = cluster.iter().map(|d| d.score).sum();
        if total <= 0.0 {
            out.push(best);
            continue;
        }
        let mut merged = Detection {
            bbox: BBox::default(),
            score: best.score,
            keypoints: vec![(0.0, 0.0); best.keypoints.len()],
        };
        for d in &cluster {
            let w = d.score / total;
            merged.bbox.x += d.bbox.x * w;
            merged.bbox.y += d.bbox.y * w;
            merged.bbox.width += d.bbox.width * w;
            merged.bbox.height += d.bbox.height * w;
            for (m, k) in merged.keypoints.iter_mut().zip(&d.keypoints) {
                m.0 += k.0 * w;
                m.1 += k.1 * w;
            }
        }
        out.push(merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, size: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox {
                x,
                y,
                width: size,
                height: size,
            },
            score,
            keypoints: vec![(x, y)],
        }
    }

    #[test]
    fn iou_table() {
        let a = BBox {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        let cases = [
            (a, 1.0),
            (BBox { x: 5.0, ..a }, 50.0 / 150.0),
            (BBox { x: 10.0, ..a }, 0.0),
            (
                BBox {
                    x: 2.0,
                    y: 2.0,
                    width: 5.0,
                    height: 5.0,
                },
                0.25,
            ),
            (BBox { width: 0.0, ..a }, 0.0),
        ];
        for (b, expected) in cases {
            assert!((a.iou(&b) - expected).abs() < 1e-6, "{b:?}");
            assert!((b.iou(&a) - expected).abs() < 1e-6, "{b:?}");
        }
    }

    #[test]
    fn hard_nms_keeps_best_of_each_cluster() {
        let dets = vec![
            det(0.0, 0.0, 10.0, 0.6),
            det(1.0, 0.0, 10.0, 0.9),
            det(50.0, 50.0, 10.0, 0.7),
            det(51.0, 50.0, 10.0, f32::NAN),
        ];
        let kept = nms(dets, 0.3);
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.7]);
        assert_eq!(kept[0].bbox.x, 1.0);
    }

    #[test]
    fn weighted_nms_averages_by_score() {
        let dets = vec![
            det(0.0, 0.0, 10.0, 0.75),
            det(2.0, 0.0, 10.0, 0.25),
            det(40.0, 0.0, 10.0, 0.5),
        ];
        let kept = weighted_nms(dets, 0.3);
        assert_eq!(kept.len(), 2);
        assert!((kept[0].bbox.x - 0.5).abs() < 1e-6);
        assert!((kept[0].keypoints[0].0 - 0.5).abs() < 1e-6);
        assert_eq!(kept[0].score, 0.75);
        assert_eq!(kept[1].bbox.x, 40.0);
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(nms(Vec::new(), 0.5).is_empty());
        assert!(weighted_nms(Vec::new(), 0.5).is_empty());
    }
}
