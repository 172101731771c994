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
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .write_image(image.as_raw(), w, h, ExtendedColorType::Rgb8)
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
