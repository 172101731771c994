//! Decoding on every supported format, orientation, limits and hostile inputs.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use image::ImageFormat as F;
use percept_core::testkit::*;
use percept_core::{CoreError, DecodeLimits, ImageFormat, OutputFormat, decode, encode, probe};

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

#[test]
fn every_format_decodes_to_the_same_size() {
    let img = gradient(64, 48);
    for (format, expected) in [
        (F::Png, ImageFormat::Png),
        (F::Jpeg, ImageFormat::Jpeg),
        (F::WebP, ImageFormat::Webp),
        (F::Bmp, ImageFormat::Bmp),
        (F::Gif, ImageFormat::Gif),
        (F::Tiff, ImageFormat::Tiff),
    ] {
        let bytes = encode_as(&img, format);
        let decoded = decode(&bytes, &limits()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(decoded.info.format, expected);
        assert_eq!(decoded.image.dimensions(), (64, 48), "{format:?}");
        // Lossless formats must round-trip exactly; lossy ones approximately.
        let max_diff = decoded
            .image
            .as_raw()
            .iter()
            .zip(img.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        let tolerance = match format {
            F::Jpeg => 60,
            F::Gif => 255, // palette quantisation
            _ => 0,
        };
        assert!(max_diff <= tolerance, "{format:?}: max diff {max_diff}");
    }
}

#[test]
fn exif_orientation_is_applied() {
    // A 40×20 image whose left half is red: rotated 90° clockwise (tag 6) it becomes 20×40
    // with red on top.
    let img = image::RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let bytes = jpeg_with_orientation(&img, 6);
    let info = probe(&bytes, &limits()).unwrap();
    assert_eq!((info.orientation, info.exif), (6, true));
    assert_eq!((info.width, info.height), (20, 40));
    let decoded = decode(&bytes, &limits()).unwrap();
    assert_eq!(decoded.image.dimensions(), (20, 40));
    let top = decoded.image.get_pixel(10, 5);
    let bottom = decoded.image.get_pixel(10, 35);
    assert!(
        top[0] > 200 && top[2] < 60,
        "top should be red, got {top:?}"
    );
    assert!(
        bottom[2] > 200 && bottom[0] < 60,
        "bottom should be blue, got {bottom:?}"
    );

    let upright = decode(&jpeg_with_orientation(&img, 1), &limits()).unwrap();
    assert_eq!(upright.image.dimensions(), (40, 20));
}

#[test]
fn header_bomb_is_refused_before_decoding() {
    let bomb = png_claiming(100_000, 100_000);
    assert!(bomb.len() < 1024);
    match decode(&bomb, &limits()) {
        Err(CoreError::TooLarge { width, height, .. }) => {
            assert_eq!((width, height), (100_000, 100_000))
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        probe(&gif_bomb(), &limits()),
        Err(CoreError::TooLarge { .. })
    ));
    assert!(matches!(
        decode(&gif_bomb(), &limits()),
        Err(CoreError::TooLarge { .. })
    ));
    // Under the pixel limit but over the per-side limit.
    assert!(matches!(
        decode(&png_claiming(12_001, 10), &limits()),
        Err(CoreError::TooLarge { .. })
    ));
}

#[test]
fn hostile_bytes_are_typed_errors() {
    let img = gradient(200, 150);
    let jpeg = encode_as(&img, F::Jpeg);
    let png = encode_as(&img, F::Png);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("one byte", vec![0xFF]),
        ("text", b"hello, this is not an image\n".to_vec()),
        ("truncated jpeg", jpeg[..jpeg.len() / 2].to_vec()),
        ("jpeg header only", jpeg[..200].to_vec()),
        ("truncated png", png[..png.len() / 2].to_vec()),
        ("corrupt idat", png_corrupt_idat(&img)),
        ("claimed size, no data", png_claiming(300, 300)),
    ];
    for (name, bytes) in cases {
        match decode(&bytes, &limits()) {
            Err(e) => assert!(e.is_client_error(), "{name}: {e}"),
            Ok(d) => panic!("{name}: decoded to {:?}", d.image.dimensions()),
        }
    }
    assert!(matches!(decode(&[], &limits()), Err(CoreError::Empty)));
}

#[test]
fn encoded_outputs_carry_no_metadata() {
    let img = gradient(32, 32);
    let with_exif = png_with_exif(&img);
    let decoded = decode(&with_exif, &limits()).unwrap();
    assert!(decoded.info.exif);
    for format in [OutputFormat::Png, OutputFormat::Jpeg { quality: 90 }] {
        let out = encode(&decoded.image, format).unwrap();
        assert!(
            !out.windows(4).any(|w| w == b"eXIf" || w == b"Exif"),
            "{format:?}"
        );
        assert!(!out.windows(10).any(|w| w == b"GPS-SECRET"));
        let again = decode(&out, &limits()).unwrap();
        assert!(!again.info.exif);
        assert_eq!(again.image.dimensions(), (32, 32));
    }
}
