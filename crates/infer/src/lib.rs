//! percept's model runtime: reads `models/manifest.toml`, verifies each model's sha256, loads
//! and warms sessions behind an engine-neutral [`Session`] trait (tract today), and offers the
//! tensor helpers every pipeline shares: fitting images to inputs ([`Fit`]), SSD anchors and
//! decoding, NMS, and rotated crops.

mod affine;
mod anchors;
mod engine;
mod error;
pub mod manifest;
mod models;
mod nms;
mod preprocess;
mod tensor;
mod tract;

pub use affine::{Affine, Border, RotatedRect, crop_rotated, crop_rotated_with};
pub use anchors::{Anchor, decode_ssd, sigmoid, ssd_anchors};
pub use engine::{Engine, EngineKind, Session};
pub use error::{InferError, Result};
pub use manifest::{Manifest, ModelSpec};
pub use models::{DYNAMIC_WARM_SIDE, LoadedModel, Models};
pub use nms::{BBox, Detection, nms, weighted_nms};
pub use preprocess::{Fit, image_to_tensor, rgb_to_tensor};
pub use tensor::Tensor;
pub use tract::{TractEngine, TractSession};
