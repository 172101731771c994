use thiserror::Error;

/// Why an image could not be decoded or encoded.
///
/// Every variant but [`CoreError::Encode`] is the client's fault (bad bytes or an image over the
/// configured limits); the server maps them to 4xx codes.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The input had no bytes at all.
    #[error("the image is empty (0 bytes)")]
    Empty,
    /// The bytes are not in any supported image format.
    #[error("not a supported image: the bytes are not JPEG, PNG, WebP, BMP, GIF or TIFF")]
    UnknownFormat,
    /// The format was recognised but the data is broken or cut short.
    #[error("the {format} image is corrupt or truncated: {detail}")]
    Corrupt {
        /// Format name as recognised from the magic bytes.
        format: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// The image's dimensions exceed the configured limits (checked from the header).
    #[error(
        "the image is {width}×{height} ({megapixels:.1} MP); the limit is {max_megapixels:.1} MP and {max_side} px per side"
    )]
    TooLarge {
        /// Width claimed by the header.
        width: u32,
        /// Height claimed by the header.
        height: u32,
        /// `width × height / 1e6`.
        megapixels: f64,
        /// The configured pixel limit in megapixels.
        max_megapixels: f64,
        /// The configured per-side limit.
        max_side: u32,
    },
    /// The decoder needed more memory than the limits allow (a decompression bomb).
    #[error("decoding the image would need more memory than allowed: {0}")]
    MemoryLimit(String),
    /// Encoding the output failed; never the client's fault.
    #[error("encoding the {format} output failed: {detail}")]
    Encode {
        /// Output format.
        format: &'static str,
        /// What the encoder reported.
        detail: String,
    },
}

impl CoreError {
    /// True when the failure is caused by the input (a 4xx), false for internal failures.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, CoreError::Encode { .. })
    }
}
