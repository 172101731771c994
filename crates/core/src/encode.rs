use image::{ExtendedColorType, ImageEncoder, RgbImage};

use crate::CoreError;

/// An output encoding. Neither carries any metadata: EXIF, GPS, XMP and ICC blocks of the
/// input are never written, because percept's encoders are only ever handed raw pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Lossless PNG.
    Png,
    /// Baseline JPEG with the given quality (1–100).
    Jpeg {
        /// 1 (smallest) to 100 (best).
        quality: u8,
    },
}

impl OutputFormat {
    /// The MIME type of the encoded bytes.
    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpeg { .. } => "image/jpeg",
        }
    }

    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg { .. } => "jpg",
        }
    }
}

/// Encodes an RGB image. Fast PNG compression is used: results are transient and the
/// encode stage otherwise dominates large-image latency.
pub fn encode(image: &RgbImage, format: OutputFormat) -> Result<Vec<u8>, CoreError> {
    let mut out = Vec::with_capacity(image.as_raw().len() / 4);
    let (w, h) = image.dimensions();
    let result = match format {
        OutputFormat::Png => image::codecs::png::PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Adaptive,
        )
        .write_image(image.as_raw(), w, h, ExtendedColorType::Rgb8),
        OutputFormat::Jpeg { quality } => {
            let quality = quality.clamp(1, 100);
            match (u16::try_from(w), u16::try_from(h)) {
                (Ok(w16), Ok(h16)) => {
                    return jpeg_encoder::Encoder::new(&mut out, quality)
                        .encode(image.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
                        .map(|()| out)
                        .map_err(|e| CoreError::Encode {
                            format: "jpeg",
                            detail: e.to_string(),
                        });
                }
                // JPEG's own limit is 65 535 per side; let `image` give the error.
                _ => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
                    .write_image(image.as_raw(), w, h, ExtendedColorType::Rgb8),
            }
        }
    };
    result.map_err(|e| CoreError::Encode {
        format: match format {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg { .. } => "jpeg",
        },
        detail: e.to_string(),
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_round_trips_without_metadata() {
        let img = RgbImage::from_fn(321, 123, |x, y| {
            image::Rgb([(x % 256) as u8, (y * 2 % 256) as u8, ((x + y) % 256) as u8])
        });
        let bytes = encode(&img, OutputFormat::Jpeg { quality: 90 }).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        assert!(!bytes.windows(4).any(|w| w == b"Exif"), "no EXIF block");
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), img.dimensions());
        let diff: u64 = img
            .as_raw()
            .iter()
            .zip(back.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / img.as_raw().len() as f64;
        assert!(mean < 4.0, "mean error {mean}");
    }
}
