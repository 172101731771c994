//! Faces across the frames of a video, for anonymisation that fails closed: a detector misses
//! a face now and then (a turned head, motion blur), and on video that miss is a frame where
//! the face flickers into view. Detections are linked into tracks frame to frame; frame `t` is
//! hidden with every track seen anywhere in `t − window ..= t + window`: interpolated between
//! its sightings on both sides, else held at the nearest one. Looking ahead means frame `t`
//! can be finished only once frame `t + window` has been detected; callers keep that many
//! frames queued.

use percept_infer::BBox;
use serde::Serialize;

use crate::{Face, Point};

/// A face to hide in one frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackedFace {
    /// The face (for a face not detected in this frame: interpolated or held).
    #[serde(flatten)]
    pub face: Face,
    /// The track it belongs to, stable across frames.
    pub track: u32,
    /// Whether the detector found it in this frame (`false`: hidden from neighbouring frames).
    pub detected: bool,
}

#[derive(Debug)]
struct Track {
    id: u32,
    /// Sightings in increasing frame order.
    seen: Vec<(u64, Face)>,
}

impl Track {
    fn last(&self) -> Option<&(u64, Face)> {
        self.seen.last()
    }
}

/// Detections linked over frames.
#[derive(Debug)]
pub struct FaceTracks {
    window: u64,
    tracks: Vec<Track>,
    next_id: u32,
}

/// How well a detection continues a track's last box: its IoU, or, for a face that moved more
/// than its size overlaps, closeness of the centres relative to the face's size. `None`: not
/// the same face.
fn continuity(last: &BBox, next: &BBox) -> Option<f32> {
    let iou = last.iou(next);
    if iou >= 0.2 {
        return Some(1.0 + iou);
    }
    let size = last.width.max(last.height).max(next.width.max(next.height));
    let (dx, dy) = (
        (last.x + last.width / 2.0) - (next.x + next.width / 2.0),
        (last.y + last.height / 2.0) - (next.y + next.height / 2.0),
    );
    let distance = (dx * dx + dy * dy).sqrt() / size.max(1.0);
    let similar_size = next.width.max(next.height) / size.max(1.0) > 0.5;
    (distance < 0.75 && similar_size).then_some(1.0 - distance)
}

fn lerp_face(a: &Face, b: &Face, t: f32) -> Face {
    let mix = |x: f32, y: f32| x + (y - x) * t;
    let mut landmarks = a.landmarks;
    for (point, (p, q)) in landmarks
        .iter_mut()
        .zip(a.landmarks.iter().zip(&b.landmarks))
    {
        *point = Point {
            x: mix(p.x, q.x),
            y: mix(p.y, q.y),
        };
    }
    Face {
        bbox: BBox {
            x: mix(a.bbox.x, b.bbox.x),
            y: mix(a.bbox.y, b.bbox.y),
            width: mix(a.bbox.width, b.bbox.width),
            height: mix(a.bbox.height, b.bbox.height),
        },
        score: a.score.min(b.score),
        landmarks,
    }
}

impl FaceTracks {
    /// Tracks whose faces are hidden `window` frames before and after each sighting.
    pub fn new(window: u32) -> Self {
        Self {
            window: u64::from(window),
            tracks: Vec::new(),
            next_id: 0,
        }
    }

    /// The look-ahead: frame `t` is final once frame `t + window()` is observed.
    pub fn window(&self) -> u64 {
        self.window
    }

    /// Adds frame `frame`'s detections (frames in increasing order) and returns each one's
    /// track. A track continues while its gap is at most twice the window (beyond that the two
    /// halves are hidden separately, which hides the same frames).
    pub fn observe(&mut self, frame: u64, faces: &[Face]) -> Vec<u32> {
        let reach = 2 * self.window + 1;
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            let Some((last_frame, last)) = track.last() else {
                continue;
            };
            if *last_frame >= frame || frame - last_frame > reach {
                continue;
            }
            for (d, face) in faces.iter().enumerate() {
                if let Some(score) = continuity(&last.bbox, &face.bbox) {
                    pairs.push((score, t, d));
                }
            }
        }
        // Greedy, best continuation first: each track and each detection used once.
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of: Vec<Option<usize>> = vec![None; faces.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, t, d) in pairs {
            if !taken[t] && track_of[d].is_none() {
                taken[t] = true;
                track_of[d] = Some(t);
            }
        }
        faces
            .iter()
            .zip(track_of)
            .map(|(face, track)| {
                let index = track.unwrap_or_else(|| {
                    self.tracks.push(Track {
                        id: self.next_id,
                        seen: Vec::new(),
                    });
                    self.next_id = self.next_id.wrapping_add(1);
                    self.tracks.len() - 1
                });
                let track = &mut self.tracks[index];
                track.seen.push((frame, face.clone()));
                track.id
            })
            .collect()
    }

    /// The faces to hide in `frame`; complete once frames up to `frame + window` are observed.
    pub fn hide_at(&self, frame: u64) -> Vec<TrackedFace> {
        let window = self.window;
        let mut hidden = Vec::new();
        for track in &self.tracks {
            let before = track.seen.iter().rev().find(|(f, _)| *f <= frame);
            let after = track.seen.iter().find(|(f, _)| *f >= frame);
            let near_before = before.filter(|(f, _)| frame - f <= window);
            let near_after = after.filter(|(f, _)| f - frame <= window);
            let (face, detected) = match (near_before, near_after) {
                (Some((f, face)), _) if *f == frame => (face.clone(), true),
                (Some((fb, b)), Some((fa, a))) => {
                    let t = (frame - fb) as f32 / (fa - fb) as f32;
                    (lerp_face(b, a, t), false)
                }
                (Some((_, face)), None) | (None, Some((_, face))) => (face.clone(), false),
                (None, None) => continue,
            };
            hidden.push(TrackedFace {
                face,
                track: track.id,
                detected,
            });
        }
        hidden
    }

    /// Forgets what no frame from `frame` on needs: sightings older than the window, except
    /// each track's last one while it can still be continued.
    pub fn forget_before(&mut self, frame: u64) {
        let window = self.window;
        let keep_from = frame.saturating_sub(window);
        let reach = 2 * window + 1;
        for track in &mut self.tracks {
            let last = track.seen.last().map(|(f, _)| *f);
            track
                .seen
                .retain(|(f, _)| *f >= keep_from || (Some(*f) == last && f + reach >= frame));
        }
        self.tracks.retain(|t| !t.seen.is_empty());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

    use super::*;

    fn face(x: f32, y: f32) -> Face {
        Face {
            bbox: BBox {
                x,
                y,
                width: 40.0,
                height: 50.0,
            },
            score: 0.9,
            landmarks: [Point {
                x: x + 20.0,
                y: y + 25.0,
            }; 5],
        }
    }

    #[test]
    fn a_missed_frame_is_hidden_between_its_neighbours() {
        let mut tracks = FaceTracks::new(3);
        let detections = [Some(0.0), Some(10.0), None, Some(30.0), Some(40.0)];
        for (frame, x) in detections.iter().enumerate() {
            let faces: Vec<Face> = x.iter().map(|x| face(*x, 100.0)).collect();
            let ids = tracks.observe(frame as u64, &faces);
            assert!(ids.iter().all(|id| *id == 0), "one track: {ids:?}");
        }
        let missed = tracks.hide_at(2);
        assert_eq!(missed.len(), 1);
        assert!(!missed[0].detected);
        assert!((missed[0].face.bbox.x - 20.0).abs() < 1e-4, "{missed:?}");
        assert!((missed[0].face.landmarks[0].x - 40.0).abs() < 1e-4);
        let seen = tracks.hide_at(3);
        assert!(seen[0].detected);
    }

    #[test]
    fn a_face_is_hidden_a_window_before_it_appears_and_after_it_leaves() {
        let mut tracks = FaceTracks::new(5);
        for frame in 0..40u64 {
            let faces = if (10..20).contains(&frame) {
                vec![face(100.0, 100.0)]
            } else {
                vec![]
            };
            tracks.observe(frame, &faces);
        }
        let hidden: Vec<u64> = (0..40).filter(|f| !tracks.hide_at(*f).is_empty()).collect();
        assert_eq!(hidden, (5..25).collect::<Vec<_>>());
    }

    #[test]
    fn two_faces_keep_their_own_tracks_and_old_sightings_are_forgotten() {
        let mut tracks = FaceTracks::new(2);
        for frame in 0..30u64 {
            let shift = frame as f32 * 3.0;
            // Listed in a different order each frame: matching is by position, not index.
            let mut faces = vec![face(50.0 + shift, 50.0), face(400.0 - shift, 60.0)];
            if frame % 2 == 1 {
                faces.reverse();
            }
            let ids = tracks.observe(frame, &faces);
            let left = if frame % 2 == 1 { ids[1] } else { ids[0] };
            assert_eq!(left, 0, "frame {frame}: {ids:?}");
            tracks.forget_before(frame.saturating_sub(2));
        }
        assert_eq!(tracks.tracks.len(), 2);
        assert!(tracks.tracks.iter().all(|t| t.seen.len() <= 6));
        assert_eq!(tracks.hide_at(27).len(), 2);
    }

    #[test]
    fn a_jump_across_the_photo_is_a_new_track() {
        let mut tracks = FaceTracks::new(2);
        assert_eq!(tracks.observe(0, &[face(0.0, 0.0)]), [0]);
        assert_eq!(tracks.observe(1, &[face(500.0, 400.0)]), [1]);
        // Both are hidden in frame 1: the old one held, the new one detected.
        let at_1 = tracks.hide_at(1);
        assert_eq!(at_1.len(), 2);
        assert_eq!(at_1.iter().filter(|f| f.detected).count(), 1);
    }
}
