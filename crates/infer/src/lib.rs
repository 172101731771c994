//! percept's model runtime: reads `models/manifest.toml`, verifies each model's sha256, loads
//! and warms sessions behind an engine-neutral [`Session`] trait, and offers the tensor helpers
//! every pipeline shares: fitting images to inputs ([`Fit`]), SSD anchors and decoding, NMS,
//! and rotated crops.
//!
//! # Engines
//!
//! Two engines implement [`Engine`]: [`TractEngine`] (pure Rust, always there, so the binary
//! runs anywhere with nothing installed) and [`OrtEngine`] (ONNX Runtime through the `ort` crate,
//! 1.5–10× faster on percept's models; see BENCHMARKS.md). ONNX Runtime is not linked: the
//! `ort` crate is built with `load-dynamic` and no default features, so the build downloads
//! nothing, and `libonnxruntime.so` is opened at start from, in order, `PERCEPT_ORT_DYLIB`,
//! `./.ort/`, the source tree's `.ort/`, and the executable's folder ([`OrtLocator`]).
//! `scripts/fetch-ort` puts the library from the pinned PyPI `onnxruntime` wheel into `.ort/`.
//!
//! [`EngineChoice`] (`auto|tract|ort`) picks one with [`select_engine`] or
//! [`Models::load_choice`]: `auto` takes ONNX Runtime when the library is found and loads, else
//! tract, and logs which and why; `ort` without a loadable library is an error.

mod affine;
mod anchors;
mod engine;
mod error;
pub mod graph;
pub mod manifest;
mod models;
mod native;
mod nms;
mod ort;
mod preprocess;
mod select;
mod tensor;
mod tract;

pub use self::ort::{OrtEngine, OrtSession, WIDE_ABOVE_VALUES};
pub use affine::{Affine, Border, RotatedRect, crop_rotated, crop_rotated_with};
pub use anchors::{Anchor, decode_ssd, sigmoid, ssd_anchors};
pub use engine::{Engine, EngineKind, Session};
pub use error::{InferError, Result};
pub use manifest::{Manifest, ModelSpec};
pub use models::{DYNAMIC_WARM_SIDE, LoadedModel, Models};
pub use nms::{BBox, Detection, nms, weighted_nms};
pub use preprocess::{Fit, image_to_tensor, resize_rgb, rgb_to_tensor};
pub use select::{EngineChoice, EngineOptions, ORT_DYLIB_ENV, OrtLocator, select_engine};
pub use tensor::Tensor;
pub use tract::{TractEngine, TractSession};
