//! percept-core: the image plumbing every percept task shares.
//!
//! - [`decode`]: bytes → oriented RGB image, refusing over-limit images from the header before
//!   any pixel buffer is allocated, and applying EXIF orientation.
//! - [`encode`]: RGB image → PNG or JPEG bytes that carry no metadata from the input.
//! - [`CoreError`]: the typed failures, which the server maps onto stable API error codes.

mod decode;
mod encode;
mod error;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use decode::{DecodeLimits, Decoded, ImageFormat, ImageInfo, decode, probe};
pub use encode::{OutputFormat, encode};
pub use error::CoreError;
pub use image::{Rgb, RgbImage};
