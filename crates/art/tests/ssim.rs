//! Quality check against OpenCV 4.11: `pencil`, `pencil-color` and `stylize` must reach
//! SSIM ≥ 0.9 (on luma) against OpenCV's output for the same photo and parameters.
//! References come from `bench/peers/make_art_refs.py` (see `tests/refs/README.md`).

use image::RgbImage;
use percept_art::{PencilParams, Style, StyleParams, StylizeParams, render};
use std::path::PathBuf;

const PHOTOS: [&str; 3] = ["person_hopper", "group5_stairs", "person_hands_drink"];
const MIN_SSIM: f64 = 0.9;

fn refs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/refs")
}

fn load(name: &str) -> RgbImage {
    image::open(refs_dir().join(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .to_rgb8()
}

/// BT.601 luma as f64.
fn luma(img: &RgbImage) -> Vec<f64> {
    img.pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect()
}

/// Separable Gaussian filter (window 11, σ 1.5), keeping only fully-inside windows ("valid").
fn gauss_valid(src: &[f64], w: usize, h: usize) -> (Vec<f64>, usize, usize) {
    const R: usize = 5;
    let k: Vec<f64> = (0..=2 * R)
        .map(|i| (-((i as f64 - R as f64).powi(2)) / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    let k: Vec<f64> = k.iter().map(|v| v / sum).collect();
    let (w1, h1) = (w - 2 * R, h - 2 * R);
    let mut tmp = vec![0.0; w1 * h];
    for y in 0..h {
        for x in 0..w1 {
            tmp[y * w1 + x] = (0..=2 * R).map(|i| k[i] * src[y * w + x + i]).sum::<f64>();
        }
    }
    let mut out = vec![0.0; w1 * h1];
    for y in 0..h1 {
        for x in 0..w1 {
            out[y * w1 + x] = (0..=2 * R)
                .map(|i| k[i] * tmp[(y + i) * w1 + x])
                .sum::<f64>();
        }
    }
    (out, w1, h1)
}

/// Mean SSIM of the luma of two same-size images (Wang et al. 2004: Gaussian window 11,
/// σ 1.5, K1 0.01, K2 0.03, L 255).
fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (w, h) = (a.width() as usize, a.height() as usize);
    let (x, y) = (luma(a), luma(b));
    let prod = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(u, v)| u * v).collect::<Vec<_>>();
    let (mx, ..) = gauss_valid(&x, w, h);
    let (my, ..) = gauss_valid(&y, w, h);
    let (sxx, ..) = gauss_valid(&prod(&x, &x), w, h);
    let (syy, ..) = gauss_valid(&prod(&y, &y), w, h);
    let (sxy, ..) = gauss_valid(&prod(&x, &y), w, h);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let n = mx.len() as f64;
    (0..mx.len())
        .map(|i| {
            let (ux, uy) = (mx[i], my[i]);
            let (vx, vy, cxy) = (sxx[i] - ux * ux, syy[i] - uy * uy, sxy[i] - ux * uy);
            ((2.0 * ux * uy + c1) * (2.0 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
        .sum::<f64>()
        / n
}

fn check(style: Style) {
    for photo in PHOTOS {
        let input = load(&format!("{photo}.png"));
        let reference = load(&format!("{photo}.{style}.png"));
        let ours =
            render(&input, &StyleParams::default_for(style)).expect("default params are valid");
        let s = ssim(&ours, &reference);
        eprintln!("{photo} {style}: SSIM {s:.4}");
        assert!(s >= MIN_SSIM, "{photo} {style}: SSIM {s:.4} < {MIN_SSIM}");
    }
}

#[test]
fn pencil_matches_opencv() {
    check(Style::Pencil);
}

#[test]
fn pencil_color_matches_opencv() {
    check(Style::PencilColor);
}

#[test]
fn stylize_matches_opencv() {
    check(Style::Stylize);
}

#[test]
fn ssim_is_one_for_identical_images() {
    let img = load("person_hopper.png");
    assert!((ssim(&img, &img) - 1.0).abs() < 1e-9);
}

/// The metric must be able to fail: other parameters or another style must score clearly
/// below the threshold against the same reference.
#[test]
fn ssim_discriminates_wrong_output() {
    for photo in PHOTOS {
        let input = load(&format!("{photo}.png"));
        let pencil_ref = load(&format!("{photo}.pencil.png"));
        let wrong_params = StyleParams::Pencil(PencilParams {
            sigma_s: 20.0,
            sigma_r: 0.2,
            shade_factor: 0.05,
        });
        let s_params = ssim(&render(&input, &wrong_params).unwrap(), &pencil_ref);
        let s_style = ssim(
            &render(&input, &StyleParams::default_for(Style::Stylize)).unwrap(),
            &pencil_ref,
        );
        let s_input = ssim(&input, &pencil_ref);
        eprintln!(
            "{photo}: wrong params {s_params:.4}, wrong style {s_style:.4}, input {s_input:.4}"
        );
        assert!(s_params < MIN_SSIM && s_style < MIN_SSIM && s_input < MIN_SSIM);

        let stylize_ref = load(&format!("{photo}.stylize.png"));
        let soft = StyleParams::Stylize(StylizeParams {
            sigma_s: 10.0,
            sigma_r: 0.1,
        });
        let s_soft = ssim(&render(&input, &soft).unwrap(), &stylize_ref);
        eprintln!("{photo}: stylize with sigma_s 10, sigma_r 0.1: {s_soft:.4}");
        assert!(s_soft < MIN_SSIM);
    }
}
