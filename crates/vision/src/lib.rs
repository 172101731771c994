//! percept's model pipelines: faces (CenterFace detection with a resolution chosen from the
//! photo, tiling large ones; anonymisation that fails closed) and holistic tracking (MediaPipe
//! Holistic's graph: pose, hands, face mesh).

mod anonymize;
mod blazeface;
mod draw;
mod error;
mod face_mesh;
mod face_tracks;
mod faces;
mod hands;
mod holistic;
mod holistic_tracking;
mod iris;
mod landmarks;
mod one_euro;
pub mod parse;
mod people;
mod pose;
mod runners;
pub mod topology;

pub use anonymize::{AnonymizeMode, AnonymizeOptions, anonymize};
pub use blazeface::FastFaceDetector;
pub use draw::Canvas;
pub use error::{Result, VisionError};
pub use face_mesh::{FaceMesh, FaceMesher};
pub use face_tracks::{FaceTracks, TrackedFace};
pub use faces::{DetectOptions, Face, FaceDetector, Point};
pub use hands::{HAND_LANDMARK_NAMES, Hand, HandTracker, Side};
pub use holistic::{
    BodyLandmarks, Holistic, HolisticOptions, HolisticPerson, HolisticResult, PartInfo, Parts,
    PersonBox, PersonLandmarks, draw_holistic,
};
pub use holistic_tracking::HolisticTracker;
pub use iris::{IrisFinder, REFINED_FACE_POINTS};
pub use landmarks::{Landmark, Roi};
pub use parse::{ParseOptions, ParseResult, Parsed, Parser, ParserChoice};
pub use people::{People, Person, PixelBox, Seed};
pub use percept_infer::BBox;
/// The model runtime, re-exported so callers load models without depending on it directly.
pub use percept_infer::{self, InferError, Models};
pub use pose::{
    CropMask, POSE_LANDMARK_NAMES, PersonDetection, Pose, PoseEstimator, PoseModel,
    point as pose_point,
};
