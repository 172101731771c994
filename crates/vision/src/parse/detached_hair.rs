//! Hair the network paints away from the person's head. Out of CCP's domain (a portrait in a
//! light-brown suit, `tests/data/person_astronaut.jpg`) the learned parser can call patches
//! of clothing `hair` well below the chin; hair is one piece with the head, or close to it, so
//! such a patch is given the label around it instead.

use super::labels::id;
use crate::Landmark;
use crate::people::head_size;
use crate::pose::point as pt;

/// A person's head in work-image pixels: where the nose is and the head's width (ear to ear).
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub(super) owner: u8,
    pub(super) centre: (f32, f32),
    pub(super) size: f32,
}

impl Head {
    /// Person `index`'s head from their 33 pose landmarks; none when the nose is not seen.
    pub(super) fn of(index: usize, lms: &[Landmark]) -> Option<Self> {
        let nose = lms.get(pt::NOSE)?;
        if nose.presence.unwrap_or(1.0) <= 0.5 || lms.len() < 33 {
            return None;
        }
        Some(Self {
            owner: u8::try_from(index + 1).ok()?,
            centre: nose.xy(),
            size: head_size(lms),
        })
    }
}

/// A hair piece is kept when some pixel of it lies within this many head widths of the nose
/// (a lock on the shoulder, hair parted by a hat or a hand), or when it is the person's
/// largest. The stray patches measured on `person_astronaut.jpg` lie 1.6 head widths away.
const REACH: f32 = 1.25;

/// Relabels each person's hair pieces that are neither their largest nor near their head:
/// to the most common label bordering the piece (the same person's, not hair, not
/// background), else background (and no owner).
pub(super) fn relabel_detached_hair(
    (w, h): (u32, u32),
    labels: &mut [u8],
    evidence: &mut [f32],
    owner: &mut [u8],
    heads: &[Head],
) {
    let (w, h) = (w as usize, h as usize);
    let mut seen = vec![false; labels.len()];
    let mut pieces: Vec<(u8, Vec<usize>)> = Vec::new();
    for start in 0..labels.len() {
        if seen[start] || labels[start] != id::HAIR || owner[start] == 0 {
            continue;
        }
        let who = owner[start];
        seen[start] = true;
        let mut piece = vec![start];
        let mut k = 0;
        while k < piece.len() {
            let i = piece[k];
            k += 1;
            for j in neighbours(i, (w, h)) {
                if !seen[j] && labels[j] == id::HAIR && owner[j] == who {
                    seen[j] = true;
                    piece.push(j);
                }
            }
        }
        pieces.push((who, piece));
    }
    for head in heads {
        let mine: Vec<&Vec<usize>> = pieces
            .iter()
            .filter(|(who, _)| *who == head.owner)
            .map(|(_, piece)| piece)
            .collect();
        let Some(largest) = mine.iter().map(|p| p.len()).max() else {
            continue;
        };
        let reach = (REACH * head.size).powi(2);
        for piece in mine {
            let near = piece.iter().any(|&i| {
                let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
                (x - head.centre.0).powi(2) + (y - head.centre.1).powi(2) <= reach
            });
            if near || piece.len() == largest {
                continue;
            }
            let label = surrounding_label((w, h), labels, owner, piece, head.owner);
            for &i in piece {
                labels[i] = label;
                if label == id::BACKGROUND {
                    owner[i] = 0;
                    evidence[i] = 0.0;
                }
            }
        }
    }
}

/// The indices of pixel `i`'s eight neighbours inside a `w × h` map.
fn neighbours(i: usize, (w, h): (usize, usize)) -> impl Iterator<Item = usize> {
    let (x, y) = (i % w, i / w);
    NEIGHBOURS_8.into_iter().filter_map(move |(dx, dy)| {
        let (nx, ny) = (x.checked_add_signed(dx)?, y.checked_add_signed(dy)?);
        (nx < w && ny < h).then_some(ny * w + nx)
    })
}

const NEIGHBOURS_8: [(isize, isize); 8] = [
    (-1, -1),
    (0, -1),
    (1, -1),
    (-1, 0),
    (1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// The most common label on the pixels bordering `piece` that `who` owns, other than hair
/// and background; background when there is none.
fn surrounding_label(
    (w, h): (usize, usize),
    labels: &[u8],
    owner: &[u8],
    piece: &[usize],
    who: u8,
) -> u8 {
    let mut votes = [0u32; 256];
    for &i in piece {
        for j in neighbours(i, (w, h)) {
            let l = labels[j];
            if owner[j] == who && l != id::HAIR && l != id::BACKGROUND {
                votes[usize::from(l)] += 1;
            }
        }
    }
    votes
        .iter()
        .enumerate()
        .max_by_key(|&(_, n)| *n)
        .filter(|&(_, n)| *n > 0)
        .map_or(id::BACKGROUND, |(l, _)| l as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty `w` × `h` map: labels, evidence and owners.
    fn empty(w: usize, h: usize) -> (Vec<u8>, Vec<f32>, Vec<u8>) {
        (
            vec![id::BACKGROUND; w * h],
            vec![0.0; w * h],
            vec![0; w * h],
        )
    }

    /// Relabels one person's (owner 1) detached hair around a head at `centre` of `size`.
    fn relabel_one(
        (w, h): (usize, usize),
        (labels, evidence, owner): &mut (Vec<u8>, Vec<f32>, Vec<u8>),
        centre: (f32, f32),
        size: f32,
    ) {
        let head = Head {
            owner: 1,
            centre,
            size,
        };
        relabel_detached_hair((w as u32, h as u32), labels, evidence, owner, &[head]);
    }

    /// A 12×12 map: one person's hair on the head (rows 0–2), a stray hair patch on their
    /// coat far below (rows 9–10), and a small lock beside the head (row 4).
    #[test]
    fn hair_far_from_the_head_takes_the_label_around_it() {
        let (w, h) = (12usize, 12usize);
        let mut map = empty(w, h);
        let mut paint = |x0: usize, x1: usize, y0: usize, y1: usize, l: u8| {
            for y in y0..y1 {
                for x in x0..x1 {
                    map.0[y * w + x] = l;
                    map.1[y * w + x] = 0.9;
                    map.2[y * w + x] = 1;
                }
            }
        };
        paint(3, 9, 0, 3, id::HAIR);
        paint(2, 10, 6, 12, id::UPPER_CLOTHES);
        paint(5, 7, 9, 11, id::HAIR);
        paint(9, 10, 4, 5, id::HAIR);
        relabel_one((w, h), &mut map, (6.0, 3.0), 4.0);
        let (labels, _, owner) = map;
        assert!(labels[..3 * w].iter().filter(|&&l| l == id::HAIR).count() == 18);
        assert_eq!(labels[4 * w + 9], id::HAIR, "the lock near the head stays");
        for y in 9..11 {
            for x in 5..7 {
                assert_eq!(labels[y * w + x], id::UPPER_CLOTHES, "({x},{y})");
                assert_eq!(owner[y * w + x], 1);
            }
        }
    }

    #[test]
    fn a_lone_stray_piece_with_nothing_around_becomes_background() {
        let (w, h) = (10usize, 10usize);
        let mut map = empty(w, h);
        for (x, y) in [(1, 1), (2, 1), (1, 2), (8, 8)] {
            map.0[y * w + x] = id::HAIR;
            map.1[y * w + x] = 0.8;
            map.2[y * w + x] = 1;
        }
        relabel_one((w, h), &mut map, (1.5, 1.5), 2.0);
        let (labels, evidence, owner) = map;
        assert_eq!(labels[w + 1], id::HAIR);
        assert_eq!(
            (labels[8 * w + 8], owner[8 * w + 8], evidence[8 * w + 8]),
            (id::BACKGROUND, 0, 0.0)
        );
    }
}
