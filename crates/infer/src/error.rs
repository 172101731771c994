use std::path::PathBuf;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The manifest could not be read or parsed.
    #[error("cannot read model manifest {path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A requested model is not described in the manifest.
    #[error("model `{0}` is not in the manifest")]
    UnknownModel(String),
    /// A model file listed in the manifest is not on disk.
    #[error("model file {path} is missing (expected sha256 {expected})")]
    MissingFile {
        /// The expected location.
        path: PathBuf,
        /// The sha256 the manifest pins.
        expected: String,
    },
    /// A model file's content differs from what the manifest pins.
    #[error("model file {path} has sha256 {actual}, the manifest expects {expected}")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The sha256 the manifest pins.
        expected: String,
        /// The sha256 of the file on disk.
        actual: String,
    },
    /// Reading a file failed for another reason than its absence.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The engine could not load, optimise or run a model.
    #[error("engine error in model `{model}`: {message}")]
    Engine {
        /// The model name.
        model: String,
        /// The engine's message.
        message: String,
    },
    /// A tensor's shape or size does not fit where it is used.
    #[error("shape error: {0}")]
    Shape(String),
    /// A manifest value is out of its valid range for the operation asked.
    #[error("invalid model spec: {0}")]
    Spec(String),
    /// The engine asked for cannot run here (for ONNX Runtime: the library is missing or does
    /// not load).
    #[error("engine `{engine}` is not available: {reason}")]
    EngineUnavailable {
        /// The engine.
        engine: crate::EngineKind,
        /// Why, and what to do about it.
        reason: String,
    },
    /// An engine name other than `auto`, `tract` or `ort`.
    #[error("unknown engine `{0}`: expected auto, tract or ort")]
    UnknownEngine(String),
}

/// Result alias of this crate.
pub type Result<T, E = InferError> = std::result::Result<T, E>;
