//! What can go wrong preparing or running a task, each failure with the stable code clients
//! see (`bad_option`, `invalid_image`…). The server maps the codes to HTTP statuses; the CLI
//! prints them; neither is known here.

use percept_core::CoreError;

/// A task's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// An option is unknown, of the wrong type or out of its range (`bad_option`).
    #[error("{0}")]
    BadOption(String),
    /// The bytes are not an image percept can read (`invalid_image`).
    #[error("{0}")]
    InvalidImage(String),
    /// The image is over the pixel or side limit, or would need more memory than allowed
    /// (`image_too_large`).
    #[error("{0}")]
    ImageTooLarge(String),
    /// Ours, not the client's: the detail is logged where it happened and never sent
    /// (`internal`).
    #[error("internal error; see the server log")]
    Internal,
}

impl TaskError {
    /// A bad option, with a message naming it.
    pub fn bad_option(message: impl Into<String>) -> Self {
        Self::BadOption(message.into())
    }

    /// An internal failure: logs `detail` and returns the error that hides it.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::Internal
    }

    /// The stable code of the API's error body and of the CLI's `--json` errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadOption(_) => "bad_option",
            Self::InvalidImage(_) => "invalid_image",
            Self::ImageTooLarge(_) => "image_too_large",
            Self::Internal => "internal",
        }
    }
}

impl From<CoreError> for TaskError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::TooLarge { .. } | CoreError::MemoryLimit(_) => {
                Self::ImageTooLarge(error.to_string())
            }
            CoreError::Encode { .. } => Self::internal(error),
            CoreError::Empty | CoreError::UnknownFormat | CoreError::Corrupt { .. } => {
                Self::InvalidImage(error.to_string())
            }
        }
    }
}

/// A pipeline's error: a bad option is the client's, anything else is ours.
impl From<percept_vision::VisionError> for TaskError {
    fn from(error: percept_vision::VisionError) -> Self {
        match error {
            percept_vision::VisionError::BadOption(message) => Self::BadOption(message),
            other => Self::internal(other),
        }
    }
}

/// The art crate reports only invalid parameters.
impl From<percept_art::ArtError> for TaskError {
    fn from(error: percept_art::ArtError) -> Self {
        Self::BadOption(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_cause() {
        assert_eq!(TaskError::from(CoreError::Empty).code(), "invalid_image");
        assert_eq!(TaskError::bad_option("x").code(), "bad_option");
        assert_eq!(
            TaskError::internal("detail").to_string(),
            "internal error; see the server log"
        );
        let vision = percept_vision::VisionError::BadOption("min_score".into());
        assert_eq!(
            TaskError::from(vision),
            TaskError::BadOption("min_score".into())
        );
    }
}
