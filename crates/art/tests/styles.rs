//! Properties of every style on real photos, the parameter API, and tiny/degenerate sizes.

use image::{Rgb, RgbImage};
use percept_art::{
    ArtError, CartoonParams, OilParams, Style, StyleParams, WatercolorParams, render,
};
use std::collections::HashSet;

fn photo() -> RgbImage {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/refs/person_hopper.png");
    image::open(path)
        .expect("tests/refs/person_hopper.png")
        .to_rgb8()
}

fn luma(img: &RgbImage) -> Vec<f32> {
    img.pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect()
}

fn distinct(img: &RgbImage) -> usize {
    img.pixels().map(|p| p.0).collect::<HashSet<_>>().len()
}

/// Mean over interior pixels of the luma variance in a 3×3 neighbourhood.
fn local_variance(img: &RgbImage) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let y = luma(img);
    let mut total = 0.0;
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            let v: Vec<f32> = (0..9)
                .map(|k| y[(r + k / 3 - 1) * w + c + k % 3 - 1])
                .collect();
            let m = v.iter().sum::<f32>() / 9.0;
            total += v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / 9.0;
        }
    }
    total / ((w - 2) * (h - 2)) as f32
}

#[test]
fn every_style_changes_the_photo_keeps_its_size_and_is_deterministic() {
    let img = photo();
    for style in Style::ALL {
        let params = StyleParams::default_for(style);
        let a = render(&img, &params).unwrap();
        let b = render(&img, &params).unwrap();
        assert_eq!(a.dimensions(), img.dimensions(), "{style}");
        assert!(a == b, "{style} is not deterministic");
        let changed = a.pixels().zip(img.pixels()).filter(|(p, q)| p != q).count();
        assert!(
            changed * 2 > a.len() / 3,
            "{style} changed only {changed} pixels"
        );
    }
}

#[test]
fn oil_reduces_colours_and_local_variance() {
    let img = photo();
    let out = render(&img, &StyleParams::Oil(OilParams::default())).unwrap();
    assert!(
        distinct(&out) * 2 < distinct(&img),
        "{} vs {}",
        distinct(&out),
        distinct(&img)
    );
    assert!(
        local_variance(&out) < local_variance(&img),
        "{} vs {}",
        local_variance(&out),
        local_variance(&img)
    );
    // Brush strokes are flat: far more pixels equal their right-hand neighbour.
    let flat = |im: &RgbImage| {
        im.rows()
            .map(|r| {
                r.collect::<Vec<_>>()
                    .windows(2)
                    .filter(|p| p[0] == p[1])
                    .count()
            })
            .sum::<usize>()
    };
    assert!(
        flat(&out) > 3 * flat(&img),
        "{} vs {}",
        flat(&out),
        flat(&img)
    );
    // A bigger brush smooths more.
    let big = render(
        &img,
        &StyleParams::Oil(OilParams {
            size: 12,
            dyn_ratio: 1,
        }),
    )
    .unwrap();
    assert!(local_variance(&big) < local_variance(&out));
}

#[test]
fn cartoon_has_few_colours_and_inks_strong_edges() {
    let img = photo();
    let p = CartoonParams::default();
    let out = render(&img, &StyleParams::Cartoon(p)).unwrap();
    assert!(
        distinct(&out) <= (p.levels.pow(3) + 1) as usize,
        "{} colours",
        distinct(&out)
    );
    // The strongest 2 % of input gradients should mostly have ink within one pixel.
    let (w, h) = (img.width() as usize, img.height() as usize);
    let y = luma(&img);
    let mut grads: Vec<(f32, usize, usize)> = Vec::new();
    for r in 1..h - 1 {
        for c in 1..w - 1 {
            let gx = y[r * w + c + 1] - y[r * w + c - 1];
            let gy = y[(r + 1) * w + c] - y[(r - 1) * w + c];
            grads.push((gx.hypot(gy), r, c));
        }
    }
    grads.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top = &grads[..grads.len() / 50];
    let dark = |r: usize, c: usize| out.get_pixel(c as u32, r as u32).0.iter().all(|&v| v < 40);
    let inked = top
        .iter()
        .filter(|&&(_, r, c)| (r - 1..=r + 1).any(|rr| (c - 1..=c + 1).any(|cc| dark(rr, cc))))
        .count();
    assert!(
        inked * 10 >= top.len() * 6,
        "only {inked} of {} strong edges inked",
        top.len()
    );
}

#[test]
fn watercolor_is_lighter_and_textured() {
    let img = photo();
    let out = render(&img, &StyleParams::default_for(Style::Watercolor)).unwrap();
    let mean = |v: Vec<f32>| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(luma(&out)) > mean(luma(&img)));
    let plain = render(
        &img,
        &StyleParams::Watercolor(WatercolorParams {
            texture: 0.0,
            ..Default::default()
        }),
    )
    .unwrap();
    assert!(plain != out, "texture must show");
    // On a flat grey card the paper texture is the only thing left, and it must be visible.
    let card = RgbImage::from_pixel(64, 64, Rgb([180, 180, 180]));
    let textured = render(&card, &StyleParams::default_for(Style::Watercolor)).unwrap();
    assert!(distinct(&textured) > 8);
}

#[test]
fn tiny_and_thin_images_do_not_panic() {
    let sizes = [
        (0, 0),
        (0, 5),
        (5, 0),
        (1, 1),
        (2, 2),
        (1, 37),
        (37, 1),
        (3, 2),
        (2, 3),
        (17, 5),
        (33, 40),
    ];
    for (w, h) in sizes {
        let img = RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 40 % 256) as u8,
                (y * 70 % 256) as u8,
                ((x + y) * 13 % 256) as u8,
            ])
        });
        for style in Style::ALL {
            let out = render(&img, &StyleParams::default_for(style)).unwrap();
            assert_eq!(out.dimensions(), (w, h), "{style} {w}x{h}");
        }
    }
}

#[test]
fn styles_parse_and_display() {
    for style in Style::ALL {
        assert_eq!(style.to_string().parse::<Style>().unwrap(), style);
        assert_eq!(StyleParams::default_for(style).style(), style);
    }
    assert!(matches!(
        "sketch".parse::<Style>(),
        Err(ArtError::UnknownStyle(_))
    ));
}

#[test]
fn params_from_json_and_pairs() {
    let p =
        StyleParams::from_json(Style::Oil, serde_json::json!({"size": 3, "dynRatio": 2})).unwrap();
    assert_eq!(
        p,
        StyleParams::Oil(OilParams {
            size: 3,
            dyn_ratio: 2
        })
    );
    assert_eq!(
        StyleParams::from_json(Style::Pencil, serde_json::Value::Null).unwrap(),
        StyleParams::default_for(Style::Pencil)
    );
    let err = StyleParams::from_json(Style::Pencil, serde_json::json!({"sigma": 1})).unwrap_err();
    assert!(matches!(err, ArtError::BadParameters { .. }), "{err}");
    let err = StyleParams::from_pairs(Style::Stylize, [("sigma_s", "250")]).unwrap_err();
    assert_eq!(err.to_string(), "sigma_s must be in (0, 200], got 250");
    let err = StyleParams::from_pairs(Style::Oil, [("size", "0")]).unwrap_err();
    assert!(
        err.to_string().starts_with("size must be in 1..=32"),
        "{err}"
    );
    let ok = StyleParams::from_pairs(
        Style::PencilColor,
        [("sigma_r", "0.1"), ("shade_factor", "0.05")],
    )
    .unwrap();
    assert!(
        matches!(ok, StyleParams::PencilColor(p) if p.sigma_r == 0.1 && p.shade_factor == 0.05)
    );
    let nan = StyleParams::Cartoon(CartoonParams {
        edge_threshold: f32::NAN,
        ..Default::default()
    });
    assert!(render(&photo(), &nan).is_err());
}
