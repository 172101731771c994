use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percept_core::CoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The stable error codes of the API. Clients switch on these strings; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The bytes are not a decodable image (empty, truncated, corrupt, unknown format, no
    /// image field, bad base64).
    InvalidImage,
    /// An option has an unknown name, the wrong type or an out-of-range value.
    BadOption,
    /// The request's content type is not one percept reads.
    UnsupportedMediaType,
    /// The request body is larger than the configured byte limit.
    PayloadTooLarge,
    /// The image's pixel count or side is over the configured limit.
    ImageTooLarge,
    /// An API key is configured and the request did not carry it.
    Unauthorized,
    /// No such route, task, job or result.
    NotFound,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// The work queue is full; retry after the `Retry-After` seconds.
    QueueFull,
    /// The request's deadline passed before its work finished.
    Timeout,
    /// The server is draining for shutdown.
    ShuttingDown,
    /// A service percept depends on (the Redis job store) cannot be reached; retry later.
    Unavailable,
    /// A model reload was refused; the old models keep serving.
    ReloadFailed,
    /// A bug or an internal failure; details are in the server log, not the response.
    Internal,
}

impl ErrorCode {
    /// The single table mapping codes to HTTP statuses.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidImage => StatusCode::BAD_REQUEST,
            ErrorCode::BadOption => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge | ErrorCode::ImageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::QueueFull => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Timeout | ErrorCode::ShuttingDown | ErrorCode::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Internal | ErrorCode::ReloadFailed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidImage => "invalid_image",
            ErrorCode::BadOption => "bad_option",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::ImageTooLarge => "image_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ReloadFailed => "reload_failed",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code named `text` (as [`ErrorCode::as_str`] writes it).
    pub fn parse(text: &str) -> Option<Self> {
        use ErrorCode::*;
        [
            InvalidImage,
            BadOption,
            UnsupportedMediaType,
            PayloadTooLarge,
            ImageTooLarge,
            Unauthorized,
            NotFound,
            MethodNotAllowed,
            QueueFull,
            Timeout,
            ShuttingDown,
            Unavailable,
            Internal,
        ]
        .into_iter()
        .find(|code| code.as_str() == text)
    }
}

/// An API failure: a stable code, a human message, and for `queue_full` a retry hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation, safe to show to the client.
    pub message: String,
    /// Seconds for the `Retry-After` header.
    pub retry_after: Option<u64>,
}

/// The JSON error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `invalid_image`.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `invalid_image`.
    pub fn invalid_image(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidImage, message)
    }

    /// `bad_option`.
    pub fn bad_option(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadOption, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `internal`; the message is generic, the detail goes to the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::TooLarge { .. } | CoreError::MemoryLimit(_) => {
                ApiError::new(ErrorCode::ImageTooLarge, error.to_string())
            }
            CoreError::Encode { .. } => ApiError::internal(error),
            CoreError::Empty | CoreError::UnknownFormat | CoreError::Corrupt { .. } => {
                ApiError::invalid_image(error.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        for (code, status, text) in [
            (ErrorCode::InvalidImage, 400, "invalid_image"),
            (ErrorCode::BadOption, 422, "bad_option"),
            (
                ErrorCode::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (ErrorCode::PayloadTooLarge, 413, "payload_too_large"),
            (ErrorCode::ImageTooLarge, 413, "image_too_large"),
            (ErrorCode::Unauthorized, 401, "unauthorized"),
            (ErrorCode::NotFound, 404, "not_found"),
            (ErrorCode::QueueFull, 429, "queue_full"),
            (ErrorCode::Timeout, 503, "timeout"),
            (ErrorCode::ShuttingDown, 503, "shutting_down"),
            (ErrorCode::Unavailable, 503, "unavailable"),
            (ErrorCode::Internal, 500, "internal"),
        ] {
            assert_eq!(code.status().as_u16(), status);
            assert_eq!(code.as_str(), text);
            assert_eq!(serde_json::to_value(code).unwrap(), text);
            assert_eq!(ErrorCode::parse(text), Some(code));
        }
    }
}
