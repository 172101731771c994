//! Pencil sketch and stylization, reproducing OpenCV's `pencilSketch` and `stylization`.

use crate::domain::{self, Mode, with_scratch};
use crate::planar::{STRIP, Tiled, give_plane, take_plane, to_u8, unit_lut};
use image::RgbImage;
use rayon::prelude::*;

/// Rows per parallel work item in the per-pixel output stages.
pub(crate) const BAND: usize = 8;

/// Grey and colour pencil sketches.
///
/// OpenCV's sketch is `shade_factor × (nx + ny)`, where `nx`/`ny` count the pixels inside the
/// first-iteration box window of the horizontal/vertical domain transform: flat areas have wide
/// windows (so saturate to white) and edges narrow ones (dark strokes). Later iterations in
/// OpenCV do not affect the output, so only the first is computed. The colour sketch replaces
/// luma in OpenCV's float YCrCb with the grey sketch.
pub(crate) fn pencil(
    img: &RgbImage,
    sigma_s: f32,
    sigma_r: f32,
    shade: f32,
    color: bool,
) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = RgbImage::new(img.width(), img.height());
    if w == 0 || h == 0 {
        return out;
    }
    let src: &[u8] = img.as_raw();
    let dlut = domain::derivative_lut(sigma_s / sigma_r);
    let radius = domain::box_radius(domain::sigma_h(sigma_s, 0));
    // Vertical window sizes, tiled like `Tiled` so each strip is one task.
    let mut ny = take_plane(w.div_ceil(STRIP) * h);
    ny.par_chunks_mut(h).enumerate().for_each(|(strip, part)| {
        with_scratch(|s| {
            domain::strip_dist(src, w, h, strip * STRIP, &mut s.dist);
            domain::bounds(
                &s.dist,
                &dlut,
                radius,
                &mut s.ct,
                &mut s.line,
                &mut s.lo,
                &mut s.up,
            );
            for ((o, l), u) in part.iter_mut().zip(&s.lo).zip(&s.up) {
                for k in 0..STRIP {
                    o[k] = (u[k] - l[k]) as f32;
                }
            }
        });
    });
    let lut = unit_lut();
    out.par_chunks_mut(w * 3 * STRIP)
        .enumerate()
        .for_each(|(band, dst)| {
            with_scratch(|s| {
                let i0 = band * STRIP;
                let rows = dst.len() / (w * 3);
                domain::band_dist(src, w, i0, rows, &mut s.dist);
                domain::bounds(
                    &s.dist,
                    &dlut,
                    radius,
                    &mut s.ct,
                    &mut s.line,
                    &mut s.lo,
                    &mut s.up,
                );
                for (r, drow) in dst.chunks_exact_mut(w * 3).enumerate() {
                    let i = i0 + r;
                    let srow = &src[i * w * 3..(i + 1) * w * 3];
                    let strips = drow.chunks_mut(STRIP * 3).zip(srow.chunks(STRIP * 3));
                    for (st, (dseg, sseg)) in strips.enumerate() {
                        let nys = &ny[st * h + i];
                        let x0 = st * STRIP;
                        let bounds = s.lo[x0..].iter().zip(&s.up[x0..]);
                        for (((o, px), &cy), (l, u)) in dseg
                            .chunks_exact_mut(3)
                            .zip(sseg.chunks_exact(3))
                            .zip(nys)
                            .zip(bounds)
                        {
                            let pen = shade * ((u[r] - l[r]) as f32 + cy);
                            if color {
                                let [r, g, b] = [0, 1, 2].map(|c| lut[usize::from(px[c])]);
                                o.copy_from_slice(&ycrcb_replace_luma(r, g, b, pen).map(to_u8));
                            } else {
                                o.fill(to_u8(pen));
                            }
                        }
                    }
                }
            });
        });
    give_plane(ny);
    out
}

/// OpenCV float BGR→YCrCb, replace Y, YCrCb→BGR; returns R, G, B (unclamped).
#[inline]
fn ycrcb_replace_luma(r: f32, g: f32, b: f32, y_new: f32) -> [f32; 3] {
    const DELTA: f32 = 0.5;
    let y = b * 0.114 + g * 0.587 + r * 0.299;
    let cr = (r - y) * 0.713 + DELTA;
    let cb = (b - y) * 0.564 + DELTA;
    let (dcr, dcb) = (cr - DELTA, cb - DELTA);
    [
        y_new + dcr * 1.403,
        y_new + dcr * -0.714 + dcb * -0.344,
        y_new + dcb * 1.773,
    ]
}

/// Left and right neighbour indices with reflect-101 borders (a 1-wide line reflects onto itself).
#[inline]
pub(crate) fn neighbours(x: usize, n: usize) -> (usize, usize) {
    if n == 1 {
        return (0, 0);
    }
    let l = if x == 0 { 1 } else { x - 1 };
    let r = if x + 1 == n { n - 2 } else { x + 1 };
    (l, r)
}

/// 3×3 Sobel gradient magnitude of row 1 of `rows` (three consecutive rows, `w` wide, OpenCV
/// `BORDER_REFLECT_101` horizontally), added to `out`.
#[inline]
pub(crate) fn add_sobel_mag(rows: &[f32], w: usize, out: &mut [f32]) {
    let (up, rest) = rows.split_at(w);
    let (mid, dn) = rest.split_at(w);
    let dn = &dn[..w];
    let at = |x: usize| {
        let (xl, xr) = neighbours(x, w);
        let gx = (up[xr] - up[xl]) + 2.0 * (mid[xr] - mid[xl]) + (dn[xr] - dn[xl]);
        let gy = (dn[xl] + 2.0 * dn[x] + dn[xr]) - (up[xl] + 2.0 * up[x] + up[xr]);
        (gx * gx + gy * gy).sqrt()
    };
    if w < 3 {
        for (x, o) in out.iter_mut().enumerate() {
            *o += at(x);
        }
        return;
    }
    out[0] += at(0);
    out[w - 1] += at(w - 1);
    // Interior without index arithmetic, so it vectorises.
    let inner = out[1..w - 1]
        .iter_mut()
        .zip(up.windows(3))
        .zip(mid.windows(3))
        .zip(dn.windows(3));
    for (((o, u), m), d) in inner {
        let gx = (u[2] - u[0]) + 2.0 * (m[2] - m[0]) + (d[2] - d[0]);
        let gy = (d[0] + 2.0 * d[1] + d[2]) - (u[0] + 2.0 * u[1] + u[2]);
        *o += (gx * gx + gy * gy).sqrt();
    }
}

/// `(1 − strength · Σc |∇c|) · res`, OpenCV's edge darkening in `stylization` (strength 1),
/// written as 8-bit RGB.
pub(crate) fn darken_edges(res: &Tiled, strength: f32) -> RgbImage {
    let (w, h) = (res.width, res.height);
    let mut out = RgbImage::new(w as u32, h as u32);
    if w == 0 || h == 0 {
        return out;
    }
    out.par_chunks_mut(w * 3 * BAND).enumerate().for_each_init(
        || (<[Vec<f32>; 3]>::default(), Vec::new()),
        |(rows, mag), (band, dst)| {
            let i0 = band * BAND;
            let n = dst.len() / (w * 3);
            res.read_rows(i0, i0 + n, 1, rows);
            for (r, drow) in dst.chunks_exact_mut(w * 3).enumerate() {
                mag.clear();
                mag.resize(w, 0.0);
                for plane in rows.iter() {
                    add_sobel_mag(&plane[r * w..(r + 3) * w], w, mag);
                }
                let mid = [0, 1, 2].map(|c| &rows[c][(r + 1) * w..(r + 2) * w]);
                for (x, (o, &m)) in drow.chunks_exact_mut(3).zip(mag.iter()).enumerate() {
                    let k = 1.0 - strength * m;
                    for (o, plane) in o.iter_mut().zip(mid) {
                        *o = to_u8(plane[x] * k);
                    }
                }
            }
        },
    );
    out
}

/// OpenCV `stylization`: normalized-convolution domain transform, then edge darkening.
/// Images narrower or shorter than 2 pixels are returned unchanged, as OpenCV does.
pub(crate) fn stylize(img: &RgbImage, sigma_s: f32, sigma_r: f32) -> RgbImage {
    if img.width() < 2 || img.height() < 2 {
        return img.clone();
    }
    let res = domain::filter(img, sigma_s, sigma_r, Mode::Normalized);
    darken_edges(&res, 1.0)
}
