//! The answer's statistics: each person's box and parts, each label's pixels and confidence.

use image::GrayImage;

use super::labels::{LABELS, palette};
use super::result::{ParseResult, ParsedPerson, Segment};
use crate::people::PixelBox;

/// Persons and segments from the label map (photo size) and the work-size evidence.
pub(super) fn summarise(
    labels: &GrayImage,
    evidence: &[f32],
    owner: &[u8],
    work: (u32, u32),
    scale: (f32, f32),
    scores: &[f32],
    seeds: &[&'static str],
) -> ParseResult {
    let (w, h) = labels.dimensions();
    #[derive(Clone, Copy)]
    struct Acc {
        count: u64,
        evidence: f64,
        x0: u32,
        y0: u32,
        x1: u32,
        y1: u32,
    }
    let empty = Acc {
        count: 0,
        evidence: 0.0,
        x0: u32::MAX,
        y0: u32::MAX,
        x1: 0,
        y1: 0,
    };
    let mut acc = vec![[empty; 20]; scores.len()];
    for y in 0..h {
        let wy = ((y as f32 + 0.5) / scale.1) as u32;
        for x in 0..w {
            let label = labels.get_pixel(x, y).0[0];
            if label == 0 {
                continue;
            }
            let wx = ((x as f32 + 0.5) / scale.0) as u32;
            let i = (wy.min(work.1 - 1) * work.0 + wx.min(work.0 - 1)) as usize;
            let who = owner[i];
            if who == 0 || label as usize >= LABELS.len() {
                continue;
            }
            let a = &mut acc[(who - 1) as usize][label as usize];
            a.count += 1;
            a.evidence += f64::from(evidence[i]);
            a.x0 = a.x0.min(x);
            a.y0 = a.y0.min(y);
            a.x1 = a.x1.max(x);
            a.y1 = a.y1.max(y);
        }
    }
    let bx = |a: &Acc| PixelBox {
        x: a.x0,
        y: a.y0,
        width: a.x1 - a.x0 + 1,
        height: a.y1 - a.y0 + 1,
    };
    let mut persons = Vec::new();
    let mut segments = Vec::new();
    for (k, per) in acc.iter().enumerate() {
        let total: u64 = per.iter().map(|a| a.count).sum();
        if total == 0 {
            continue;
        }
        let index = persons.len();
        let mut all = empty;
        for (label, a) in per.iter().enumerate() {
            if a.count == 0 {
                continue;
            }
            all.x0 = all.x0.min(a.x0);
            all.y0 = all.y0.min(a.y0);
            all.x1 = all.x1.max(a.x1);
            all.y1 = all.y1.max(a.y1);
            segments.push(Segment {
                label: LABELS[label],
                label_index: label as u8,
                confidence: (a.evidence / a.count as f64) as f32,
                pixel_count: a.count,
                bbox: bx(a),
                person: index,
            });
        }
        persons.push(ParsedPerson {
            index,
            bbox: bx(&all),
            score: scores[k],
            seed: seeds.get(k).copied().unwrap_or("pose"),
            pixel_count: total,
        });
    }
    ParseResult {
        width: w,
        height: h,
        parser: String::new(),
        persons,
        segments,
        palette: palette(),
    }
}
