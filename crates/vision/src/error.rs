use percept_infer::InferError;

/// Errors of the vision pipelines.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The model runtime failed (loading, shapes, engine).
    #[error(transparent)]
    Infer(#[from] InferError),
    /// An option is outside its valid range; the message names it.
    #[error("{0}")]
    BadOption(String),
    /// The model gave outputs of an unexpected shape.
    #[error("unexpected model output: {0}")]
    Output(String),
}

/// Result alias of this crate.
pub type Result<T, E = VisionError> = std::result::Result<T, E>;
