//! Holistic on video, as MediaPipe's tracking mode runs it: the people found in one frame are
//! followed into the next by cropping where their pose says they will be (the pose model's
//! two auxiliary landmarks), so the detectors run only to find people again: when everyone is
//! lost, and every `redetect_every` frames while fewer than `max_people` are followed (someone
//! may have walked in). Each followed person's points go through One Euro filters, as
//! MediaPipe smooths them, so a still person's points do not jitter.

use image::RgbImage;
use percept_infer::{BBox, RotatedRect};
use rayon::prelude::*;

use crate::holistic::{Tracked, result_of, segmentation};
use crate::one_euro::{MEDIAPIPE_POSE, OneEuro};
use crate::people::{head_size, hide_faces};
use crate::pose::point as pose_point;
use crate::{Holistic, HolisticOptions, HolisticResult, Landmark, Person, PoseModel, Result};

/// One followed person: where to look next and their filters' state.
#[derive(Debug)]
struct Follow {
    roi: RotatedRect,
    /// The nose in the frame followed from (before smoothing) and the head's size there.
    nose: (f32, f32),
    head: f32,
    filters: PartFilters,
}

impl Follow {
    /// The head's box in the frame followed from: a head wide, 1.2 heads tall, the nose a
    /// little above its middle.
    fn head_box(&self) -> BBox {
        let (x, y) = self.nose;
        BBox {
            x: x - 0.5 * self.head,
            y: y - 0.6 * self.head,
            width: self.head,
            height: 1.2 * self.head,
        }
    }
}

/// How far `person`'s nose is from where `follow` last saw it, in head sizes.
fn moved(person: &Person, follow: &Follow) -> f32 {
    let nose = person.pose.landmarks[pose_point::NOSE];
    (nose.x - follow.nose.0).hypot(nose.y - follow.nose.1) / follow.head.max(1.0)
}

/// A filter per coordinate of every point of each part.
#[derive(Debug, Default)]
struct PartFilters {
    pose: Vec<[OneEuro; 3]>,
    left_hand: Vec<[OneEuro; 3]>,
    right_hand: Vec<[OneEuro; 3]>,
    face: Vec<[OneEuro; 3]>,
}

/// Smooths `points` in place with `filters` (reset when the part was missing or changed size);
/// speeds are measured in sizes of the part's own box per second.
fn smooth(points: &mut [Landmark], filters: &mut Vec<[OneEuro; 3]>, rate: f64, size: (u32, u32)) {
    if points.is_empty() {
        filters.clear();
        return;
    }
    if filters.len() != points.len() {
        *filters = vec![Default::default(); points.len()];
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in points.iter() {
        (x0, y0, x1, y1) = (x0.min(p.x), y0.min(p.y), x1.max(p.x), y1.max(p.y));
    }
    let scale = f64::from(((x1 - x0) + (y1 - y0)) / 2.0).max(1.0);
    let (w, h) = (size.0.max(1) as f32, size.1.max(1) as f32);
    for (p, [fx, fy, fz]) in points.iter_mut().zip(filters.iter_mut()) {
        p.x = fx.apply(f64::from(p.x), rate, scale, &MEDIAPIPE_POSE) as f32;
        p.y = fy.apply(f64::from(p.y), rate, scale, &MEDIAPIPE_POSE) as f32;
        p.z = fz.apply(f64::from(p.z), rate, scale, &MEDIAPIPE_POSE) as f32;
        p.nx = p.x / w;
        p.ny = p.y / h;
    }
}

/// Whether two poses are one person: noses within half a head, the rule the people stage
/// dedups photos by (crops are too coarse: people side by side have overlapping crops).
fn same_person(a: &Person, b: &Person) -> bool {
    let (n, m) = (
        a.pose.landmarks[pose_point::NOSE],
        b.pose.landmarks[pose_point::NOSE],
    );
    (n.x - m.x).hypot(n.y - m.y)
        < 0.5 * head_size(&a.pose.landmarks).max(head_size(&b.pose.landmarks))
}

/// Holistic over the frames of one video, in order.
#[derive(Debug)]
pub struct HolisticTracker {
    followed: Vec<Follow>,
    frame: u64,
    rate: f64,
    redetect_every: u32,
    smooth: bool,
    /// How many people to look for: the most a search found (see `next`).
    expected: usize,
    /// How many the last routine search found.
    last_routine: Option<usize>,
}

impl HolisticTracker {
    /// A tracker for a video of `frame_rate` frames per second. `redetect_every`: frames
    /// between searches for people who came into view while fewer than `max_people` are
    /// followed (0: only when everyone is lost). `smooth`: One Euro filtering of the points.
    pub fn new(frame_rate: f64, redetect_every: u32, smooth: bool) -> Self {
        Self {
            followed: Vec::new(),
            frame: 0,
            rate: if frame_rate.is_finite() && frame_rate > 0.0 {
                frame_rate
            } else {
                30.0
            },
            redetect_every,
            smooth,
            expected: 0,
            last_routine: None,
        }
    }

    /// Everyone's landmarks in the next frame.
    pub fn next(
        &mut self,
        holistic: &Holistic,
        image: &RgbImage,
        options: &HolisticOptions,
    ) -> Result<HolisticResult> {
        options.validate()?;
        let model =
            PoseModel::for_complexity(options.model_complexity, options.enable_segmentation);
        // Someone the last search found and no longer followed is looked for three times as
        // often as newcomers are.
        let every = |frames: u32| frames > 0 && self.frame.is_multiple_of(u64::from(frames));
        let routine = every(self.redetect_every) && self.followed.len() < options.max_people;
        let due = routine
            || (every(self.redetect_every.div_ceil(3)) && self.followed.len() < self.expected);
        self.frame += 1;

        // Everyone followed, where the last frame's poses say they are now (people spread
        // over the cores).
        let heads: Vec<BBox> = self.followed.iter().map(Follow::head_box).collect();
        let score = options.min_detection_score;
        let follow_one =
            |(i, follow): (usize, &Follow)| -> Result<Option<(Person, Option<usize>)>> {
                let people = holistic.people();
                // In a group the crop holds several people and the pose model settles on the one
                // it sees best: the others' heads are greyed out first, as the people stage does
                // around a face.
                let person = if heads.len() > 1 {
                    people.follow(&hide_faces(image, &heads, i), &follow.roi, model)?
                } else {
                    people.follow(image, &follow.roi, model)?
                };
                // A nose that still jumped more than half a head is someone else's: search around
                // the head where they were.
                let person = match person {
                    Some(p) if moved(&p, follow) < 0.5 => Some(p),
                    _ => people
                        .around_head(image, &heads, i, score, model)?
                        .filter(|p| moved(p, follow) < 0.5),
                };
                Ok(person.map(|p| (p, Some(i))))
            };
        let followed: Vec<Option<(Person, Option<usize>)>> = if self.followed.len() > 1 {
            self.followed
                .par_iter()
                .enumerate()
                .map(follow_one)
                .collect::<Result<_>>()?
        } else {
            self.followed
                .iter()
                .enumerate()
                .map(follow_one)
                .collect::<Result<_>>()?
        };
        // Someone lost (or nobody followed) is searched for at once, as MediaPipe re-detects.
        let lost = followed.iter().any(Option::is_none);
        let mut people: Vec<(Person, Option<usize>)> = followed.into_iter().flatten().collect();
        if lost || due || self.followed.is_empty() {
            let seen = if options.max_people > 1 {
                // The followed people join the search's checks: a track that drifted between
                // two people (its nose on nobody's face) gives way to the people found.
                let (known, tracks): (Vec<Person>, Vec<Option<usize>>) =
                    std::mem::take(&mut people).into_iter().unzip();
                people = holistic
                    .people()
                    .find_beside(image, score, options.max_people, model, known)?
                    .into_iter()
                    .map(|(p, k)| (p, k.and_then(|k| tracks.get(k).copied().flatten())))
                    .collect();
                people.len()
            } else {
                let found = holistic.find(image, options)?;
                let seen = found.len();
                for person in found {
                    // A person followed already keeps their track (and filters).
                    if !people.iter().any(|(p, _)| same_person(p, &person)) {
                        people.push((person, None));
                    }
                }
                seen
            };
            // A search can miss someone another found: the count to look for is the most a
            // search saw, lowered only when two routine searches in a row see fewer (someone
            // left).
            if routine {
                let previous = self.last_routine.replace(seen);
                if let Some(previous) = previous.filter(|p| *p < self.expected)
                    && seen < self.expected
                {
                    self.expected = previous.max(seen);
                }
            }
            self.expected = self.expected.max(seen);
        }
        // Two tracks drifted onto one person: the surer pose stays.
        people.sort_by(|a, b| b.0.pose.score.total_cmp(&a.0.pose.score));
        let mut kept: Vec<(Person, Option<usize>)> = Vec::new();
        for (person, track) in people {
            let duplicate = kept.iter().any(|(k, _)| same_person(k, &person));
            if !duplicate && kept.len() < options.max_people {
                kept.push((person, track));
            }
        }

        let tracks: Vec<Option<usize>> = kept.iter().map(|(_, t)| *t).collect();
        let found: Vec<Person> = kept.into_iter().map(|(p, _)| p).collect();
        let mask = segmentation(&found, image, options);
        let mut people: Vec<Tracked> = holistic.landmarks_of(image, found, options)?;

        let mut previous: Vec<Option<Follow>> = std::mem::take(&mut self.followed)
            .into_iter()
            .map(Some)
            .collect();
        for (person, track) in people.iter_mut().zip(tracks) {
            let Some(roi) = person.landmarks.pose.next_roi else {
                continue;
            };
            let mut filters = track
                .and_then(|t| previous.get_mut(t).and_then(Option::take))
                .map(|f| f.filters)
                .unwrap_or_default();
            if self.smooth {
                let size = image.dimensions();
                let lm = &mut person.landmarks;
                smooth(&mut lm.pose.landmarks, &mut filters.pose, self.rate, size);
                let hand = |h: &mut Option<crate::Hand>, f: &mut Vec<[OneEuro; 3]>| match h {
                    Some(hand) => smooth(&mut hand.landmarks, f, self.rate, size),
                    None => f.clear(),
                };
                hand(&mut lm.left_hand, &mut filters.left_hand);
                hand(&mut lm.right_hand, &mut filters.right_hand);
                match &mut lm.face {
                    Some(mesh) => smooth(&mut mesh.landmarks, &mut filters.face, self.rate, size),
                    None => filters.face.clear(),
                }
            }
            let pose = &person.landmarks.pose.landmarks;
            self.followed.push(Follow {
                roi,
                nose: pose[pose_point::NOSE].xy(),
                head: head_size(pose),
                filters,
            });
        }
        Ok(result_of(image, people, mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_steadies_a_jittering_part_and_resets_when_it_is_lost() {
        let mut filters = Vec::new();
        let mut last = Vec::new();
        for i in 0..40 {
            let jitter = if i % 2 == 0 { 1.5 } else { -1.5 };
            // Five points of a person-sized part (300 px), all shaking by ±1.5 px.
            let mut points: Vec<Landmark> = (0..5)
                .map(|k| {
                    let at = 75.0 * k as f32;
                    Landmark::at(100.0 + at + jitter, 100.0 + at, 0.0, 640, 480)
                })
                .collect();
            smooth(&mut points, &mut filters, 25.0, (640, 480));
            last = points;
        }
        for (k, p) in last.iter().enumerate() {
            let at = 100.0 + 75.0 * k as f32;
            assert!((p.x - at).abs() < 0.75, "point {k}: {} for {at}", p.x);
            assert!((p.nx - p.x / 640.0).abs() < 1e-6);
        }
        smooth(&mut [], &mut filters, 25.0, (640, 480));
        assert!(filters.is_empty());
    }
}
