//! percept's model pipelines. Today: faces — CenterFace detection with a resolution chosen from
//! the photo (tiling large ones) and anonymisation (blur, pixelate, box) that fails closed.

mod anonymize;
mod error;
mod faces;

pub use anonymize::{AnonymizeMode, AnonymizeOptions, anonymize};
pub use error::{Result, VisionError};
pub use faces::{DetectOptions, Face, FaceBox, FaceDetector, Point};
/// The model runtime, re-exported so callers load models without depending on it directly.
pub use percept_infer::{self, InferError, Models};
