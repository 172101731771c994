use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage};
use serde::Serialize;

use crate::CoreError;

/// The limits applied to every decode. Defaults follow DESIGN §3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Largest accepted `width × height`, checked from the header before any pixel is decoded.
    pub max_pixels: u64,
    /// Largest accepted width or height.
    pub max_side: u32,
    /// Ceiling on what a decoder may allocate, guarding formats whose header lies or whose
    /// frames are larger than the canvas.
    pub max_alloc_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_pixels: 40_000_000,
            max_side: 12_000,
            max_alloc_bytes: 1 << 30,
        }
    }
}

/// Image container formats percept reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG (8 or 16 bit, any colour type).
    Png,
    /// WebP, lossy or lossless.
    Webp,
    /// Windows bitmap.
    Bmp,
    /// GIF; only the first frame is used.
    Gif,
    /// TIFF (baseline).
    Tiff,
    /// A frame of a video, decoded to raw RGB by FFmpeg (never from a request's bytes).
    Raw,
}

impl ImageFormat {
    /// Lower-case name, as used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Bmp => "bmp",
            ImageFormat::Gif => "gif",
            ImageFormat::Tiff => "tiff",
            ImageFormat::Raw => "raw",
        }
    }

    fn from_image(format: image::ImageFormat) -> Option<Self> {
        Some(match format {
            image::ImageFormat::Jpeg => ImageFormat::Jpeg,
            image::ImageFormat::Png => ImageFormat::Png,
            image::ImageFormat::WebP => ImageFormat::Webp,
            image::ImageFormat::Bmp => ImageFormat::Bmp,
            image::ImageFormat::Gif => ImageFormat::Gif,
            image::ImageFormat::Tiff => ImageFormat::Tiff,
            _ => return None,
        })
    }
}

/// What the header says about an image, before and after orientation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImageInfo {
    /// Container format, from the magic bytes (never from a file name or content type).
    pub format: ImageFormat,
    /// Width after EXIF orientation: the width of every coordinate percept reports.
    pub width: u32,
    /// Height after EXIF orientation.
    pub height: u32,
    /// EXIF orientation tag value, 1 (upright) to 8.
    pub orientation: u8,
    /// Whether the file carried an EXIF block (which percept never copies to its outputs).
    pub exif: bool,
}

impl ImageInfo {
    /// `width × height / 1e6`.
    pub fn megapixels(&self) -> f64 {
        f64::from(self.width) * f64::from(self.height) / 1e6
    }
}

/// A decoded, upright, 8-bit RGB image with the facts read from its header.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Pixels after EXIF orientation; alpha, if any, is dropped.
    pub image: RgbImage,
    /// Header facts.
    pub info: ImageInfo,
}

impl Decoded {
    /// A video frame FFmpeg decoded (upright already, with no EXIF of its own).
    pub fn from_frame(image: RgbImage) -> Self {
        let (width, height) = image.dimensions();
        Self {
            image,
            info: ImageInfo {
                format: ImageFormat::Raw,
                width,
                height,
                orientation: 1,
                exif: false,
            },
        }
    }
}

struct Opened<'a> {
    format: ImageFormat,
    reader: ImageReader<Cursor<&'a [u8]>>,
}

fn open<'a>(bytes: &'a [u8]) -> Result<Opened<'a>, CoreError> {
    if bytes.is_empty() {
        return Err(CoreError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| CoreError::UnknownFormat)?;
    let format = reader
        .format()
        .and_then(ImageFormat::from_image)
        .ok_or(CoreError::UnknownFormat)?;
    // Only the header is read until `check_dimensions` has passed, so the reader itself may
    // stay unlimited; that way an over-limit image is reported with its claimed size.
    reader.no_limits();
    Ok(Opened { format, reader })
}

fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<(), CoreError> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err(CoreError::Corrupt {
            format: "image",
            detail: format!("the header claims an empty {width}×{height} image"),
        });
    }
    if pixels > limits.max_pixels || width > limits.max_side || height > limits.max_side {
        return Err(too_large(width, height, limits));
    }
    Ok(())
}

fn too_large(width: u32, height: u32, limits: &DecodeLimits) -> CoreError {
    CoreError::TooLarge {
        width,
        height,
        megapixels: f64::from(width) * f64::from(height) / 1e6,
        max_megapixels: limits.max_pixels as f64 / 1e6,
        max_side: limits.max_side,
    }
}

fn map_image_error(
    format: ImageFormat,
    error: ImageError,
    dims: Option<(u32, u32)>,
    limits: &DecodeLimits,
) -> CoreError {
    match error {
        ImageError::Limits(e) => match dims {
            Some((w, h)) if check_dimensions(w, h, limits).is_err() => too_large(w, h, limits),
            _ => CoreError::MemoryLimit(e.to_string()),
        },
        ImageError::Unsupported(e) => CoreError::Corrupt {
            format: format.as_str(),
            detail: format!("unsupported variant: {e}"),
        },
        other => CoreError::Corrupt {
            format: format.as_str(),
            detail: other.to_string(),
        },
    }
}

/// Reads the header only: format, dimensions, orientation, whether EXIF is present.
///
/// Costs no pixel allocation, so it is safe to call on any bytes; over-limit images are
/// reported as [`CoreError::TooLarge`].
pub fn probe(bytes: &[u8], limits: &DecodeLimits) -> Result<ImageInfo, CoreError> {
    let Opened { format, reader } = open(bytes)?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(format, e, None, limits))?;
    header_info(format, &mut decoder, limits)
}

fn header_info(
    format: ImageFormat,
    decoder: &mut impl ImageDecoder,
    limits: &DecodeLimits,
) -> Result<ImageInfo, CoreError> {
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    // A broken EXIF block should not make an otherwise good photo undecodable: treat it as absent.
    let exif = decoder.exif_metadata().ok().flatten();
    let orientation = exif
        .as_deref()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .map_or(1, |o| o.to_exif());
    let (width, height) = if orientation >= 5 {
        (height, width)
    } else {
        (width, height)
    };
    Ok(ImageInfo {
        format,
        width,
        height,
        orientation,
        exif: exif.is_some(),
    })
}

/// Decodes `bytes` into an upright RGB image.
///
/// The dimensions are checked against `limits` from the header, before any pixel buffer
/// exists; a JPEG cut short before its end-of-image marker is reported as truncated rather
/// than silently padded with grey.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, CoreError> {
    let Opened { format, reader } = open(bytes)?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(format, e, None, limits))?;
    let info = header_info(format, &mut decoder, limits)?;
    let dims = decoder.dimensions();
    let mut image_limits = Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    decoder
        .set_limits(image_limits)
        .map_err(|e| map_image_error(format, e, Some(dims), limits))?;
    if format == ImageFormat::Jpeg && !jpeg_has_end_marker(bytes) {
        return Err(CoreError::Corrupt {
            format: format.as_str(),
            detail: "the file ends before the JPEG end-of-image marker (truncated upload?)".into(),
        });
    }
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|e| map_image_error(format, e, Some(dims), limits))?;
    if let Some(orientation) = image::metadata::Orientation::from_exif(info.orientation) {
        image.apply_orientation(orientation);
    }
    let image = match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    };
    Ok(Decoded { image, info })
}

/// The JPEG decoder tolerates missing scan data by filling grey, which would let a truncated
/// upload through as a half-grey photo. This walks the marker segments (skipping APPn blocks,
/// which may hold a thumbnail with its own end marker) and the entropy-coded scans, and says
/// whether the main image reaches its end-of-image marker. Bytes after it (padding, the video
/// a motion photo appends) are allowed.
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        match marker {
            0xD9 => return true,
            // Fill bytes, TEM and restart markers carry no length.
            0xFF => i += 1,
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let Some(len) = bytes
                    .get(i + 2..i + 4)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                else {
                    return false;
                };
                i += 2 + len;
                if marker == 0xDA {
                    // Entropy-coded data: a marker is FF followed by neither a stuffed 00 nor RSTn.
                    while i + 1 < bytes.len()
                        && (bytes[i] != 0xFF || matches!(bytes[i + 1], 0x00 | 0xD0..=0xD7))
                    {
                        i += 1;
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn end_marker_detection() {
        let good = jpeg(32, 16);
        assert!(jpeg_has_end_marker(&good));
        let mut padded = good.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(jpeg_has_end_marker(&padded));
        assert!(!jpeg_has_end_marker(&good[..good.len() / 2]));
        let mut motion = good.clone();
        motion.extend_from_slice(b"\0\0\0\x18ftypmp42\xFF\xDA\x00\x02rest-of-video");
        assert!(jpeg_has_end_marker(&motion));
        for cut in [3, 20, good.len() - 2, good.len() - 1] {
            assert!(!jpeg_has_end_marker(&good[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn limits_table() {
        let limits = DecodeLimits {
            max_pixels: 100,
            max_side: 20,
            max_alloc_bytes: 1 << 20,
        };
        for (w, h, ok) in [
            (10, 10, true),
            (20, 5, true),
            (21, 1, false),
            (11, 10, false),
        ] {
            assert_eq!(check_dimensions(w, h, &limits).is_ok(), ok, "{w}×{h}");
        }
        assert!(check_dimensions(0, 5, &limits).is_err());
    }
}
