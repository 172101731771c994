//! Colour evidence: CIE Lab of a lightly blurred photo, and a skin model learned from the
//! person's own face.

use image::RgbImage;

/// Lab values of every pixel (after a 3×3 box blur, which hides JPEG's 8×8 chroma blocks).
#[derive(Debug, Clone)]
pub(crate) struct LabImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<[f32; 3]>,
}

fn srgb_to_linear_table() -> [f32; 256] {
    let mut t = [0.0f32; 256];
    for (i, v) in t.iter_mut().enumerate() {
        let c = i as f32 / 255.0;
        *v = if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        };
    }
    t
}

fn lab_f(t: f32) -> f32 {
    if t > 0.008_856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

/// sRGB (0..=255 per channel, possibly fractional after blurring) to CIE Lab (D65).
fn to_lab(table: &[f32; 256], rgb: [f32; 3]) -> [f32; 3] {
    let lin = |c: f32| {
        let i = c.clamp(0.0, 255.0);
        let (lo, frac) = (i.floor() as usize, i - i.floor());
        let hi = (lo + 1).min(255);
        table[lo] * (1.0 - frac) + table[hi] * frac
    };
    let (r, g, b) = (lin(rgb[0]), lin(rgb[1]), lin(rgb[2]));
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let (fx, fy, fz) = (lab_f(x), lab_f(y), lab_f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

impl LabImage {
    pub(crate) fn new(image: &RgbImage) -> Self {
        let (w, h) = image.dimensions();
        let table = srgb_to_linear_table();
        let raw = image.as_raw();
        let (wi, hi) = (w as i64, h as i64);
        let mut data = vec![[0.0f32; 3]; (w * h) as usize];
        for y in 0..hi {
            for x in 0..wi {
                let mut acc = [0.0f32; 3];
                let mut n = 0.0f32;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        let (sx, sy) = (x + dx, y + dy);
                        if sx < 0 || sy < 0 || sx >= wi || sy >= hi {
                            continue;
                        }
                        let i = ((sy * wi + sx) * 3) as usize;
                        for c in 0..3 {
                            acc[c] += f32::from(raw[i + c]);
                        }
                        n += 1.0;
                    }
                }
                data[(y * wi + x) as usize] = to_lab(&table, acc.map(|v| v / n));
            }
        }
        Self {
            width: w,
            height: h,
            data,
        }
    }

    pub(crate) fn at(&self, x: u32, y: u32) -> [f32; 3] {
        self.data[(y * self.width + x) as usize]
    }
}

/// Skin colour of one person: robust centre and spread of their face's lightness, chroma and
/// hue angle (Lab). Hue and chroma decide: across a body, light changes skin's lightness far
/// more than its hue, while cloth usually differs in hue or is nearly grey.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SkinModel {
    centre: [f32; 3],
    spread: [f32; 3],
}

fn median(v: &mut [f32]) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Lightness, chroma and hue angle (degrees) of a Lab colour.
fn lch(lab: [f32; 3]) -> [f32; 3] {
    [
        lab[0],
        lab[1].hypot(lab[2]),
        lab[2].atan2(lab[1]).to_degrees(),
    ]
}

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    if d > 180.0 { d - 360.0 } else { d }
}

impl SkinModel {
    /// From Lab samples of the face; `None` with too few samples to trust.
    pub(crate) fn learn(samples: &[[f32; 3]]) -> Option<Self> {
        if samples.len() < 20 {
            return None;
        }
        let lchs: Vec<[f32; 3]> = samples.iter().map(|&s| lch(s)).collect();
        let mut centre = [0.0f32; 3];
        let mut spread = [0.0f32; 3];
        for c in 0..3 {
            let mut v: Vec<f32> = lchs.iter().map(|s| s[c]).collect();
            centre[c] = median(&mut v);
            let mut dev: Vec<f32> = lchs
                .iter()
                .map(|s| {
                    if c == 2 {
                        angle_diff(s[c], centre[c]).abs()
                    } else {
                        (s[c] - centre[c]).abs()
                    }
                })
                .collect();
            spread[c] = 1.4826 * median(&mut dev);
        }
        // A face of grey pixels (a mask, a black-and-white photo) teaches nothing about skin.
        (centre[1] >= 6.0).then_some(Self { centre, spread })
    }

    /// A generic skin model for people whose face gave no samples (a back view).
    pub(crate) fn generic() -> Self {
        Self {
            centre: [62.0, 28.0, 55.0],
            spread: [12.0, 6.0, 8.0],
        }
    }

    /// Skin likelihood in [0, 1]: 1 at the face's colour, 0.5 at the decision boundary.
    pub(crate) fn likelihood(&self, lab: [f32; 3]) -> f32 {
        let [l, c, h] = lch(lab);
        let dh = angle_diff(h, self.centre[2]) / (2.5 * self.spread[2]).max(25.0);
        let dc = (c - self.centre[1]) / (2.5 * self.spread[1]).max(14.0);
        let dl = (l - self.centre[0]) / (2.5 * self.spread[0]).max(25.0);
        // Near-grey pixels have no meaningful hue: chroma alone decides for them.
        let dh = if c < 6.0 { 0.0 } else { dh };
        let d2 = dh * dh + dc * dc + 0.35 * dl * dl;
        (-0.693 * d2).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_of_white_grey_and_red() {
        let t = srgb_to_linear_table();
        let white = to_lab(&t, [255.0; 3]);
        assert!((white[0] - 100.0).abs() < 0.1 && white[1].abs() < 0.1 && white[2].abs() < 0.1);
        let grey = to_lab(&t, [119.0; 3]);
        assert!((grey[0] - 50.0).abs() < 0.5);
        let red = to_lab(&t, [255.0, 0.0, 0.0]);
        assert!((red[0] - 53.2).abs() < 0.5 && (red[1] - 80.1).abs() < 0.5);
    }

    #[test]
    fn skin_model_accepts_its_own_colour_and_rejects_blue_cloth() {
        let t = srgb_to_linear_table();
        let samples: Vec<[f32; 3]> = (0..50)
            .map(|i| to_lab(&t, [200.0 + (i % 5) as f32, 150.0, 120.0 + (i % 3) as f32]))
            .collect();
        let m = SkinModel::learn(&samples).unwrap();
        assert!(m.likelihood(to_lab(&t, [202.0, 150.0, 121.0])) > 0.9);
        assert!(
            m.likelihood(to_lab(&t, [160.0, 115.0, 95.0])) > 0.5,
            "shaded skin"
        );
        assert!(
            m.likelihood(to_lab(&t, [30.0, 60.0, 160.0])) < 0.05,
            "blue cloth"
        );
        assert!(SkinModel::learn(&samples[..5]).is_none());
    }
}
