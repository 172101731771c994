use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use percept_core::CoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The stable error codes of the API. Clients switch on these strings; never rename one.
///
/// The string of a code is its variant name in snake_case, derived once for JSON (serde), for
/// [`ErrorCode::as_str`] and [`ErrorCode::parse`] (strum), so a new code cannot be left out
/// of one of them (`parse` once lacked `reload_failed`, and a Redis job that stored it read
/// back as `internal`). [`ErrorCode::status`] is the one hand-written table; the compiler
/// checks it is complete, a test checks the README's table against it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    ToSchema,
    strum::EnumIter,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    /// The bytes are not a decodable image (empty, truncated, corrupt, unknown format, no
    /// image field, bad base64).
    InvalidImage,
    /// The file is a video FFmpeg cannot read, or has no video stream.
    InvalidVideo,
    /// Video needs FFmpeg (Debian's `ffmpeg` package), which this machine lacks.
    VideoUnsupported,
    /// A video job's video is longer than `max_video_seconds`, or its output video is larger
    /// than the job store keeps.
    VideoTooLarge,
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
            ErrorCode::InvalidImage | ErrorCode::InvalidVideo => StatusCode::BAD_REQUEST,
            ErrorCode::VideoUnsupported => StatusCode::NOT_IMPLEMENTED,
            ErrorCode::BadOption => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge | ErrorCode::ImageTooLarge | ErrorCode::VideoTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
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
        self.into()
    }

    /// The code named `text` (as [`ErrorCode::as_str`] writes it).
    pub fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }

    /// Every code, in declaration order.
    pub fn all() -> impl Iterator<Item = Self> {
        <Self as strum::IntoEnumIterator>::iter()
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

    /// `queue_full` (429), with a `Retry-After` of `retry_after` seconds: a full queue clears
    /// by itself, so the client is told when to come back.
    pub fn queue_full(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(ErrorCode::QueueFull, message)
        }
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
        percept_tasks::TaskError::from(error).into()
    }
}

/// A task's failure as the API reports it: the same code, its HTTP status from [`ErrorCode`].
impl From<percept_tasks::TaskError> for ApiError {
    fn from(error: percept_tasks::TaskError) -> Self {
        use percept_tasks::TaskError;
        let code = match &error {
            TaskError::BadOption(_) => ErrorCode::BadOption,
            TaskError::InvalidImage(_) => ErrorCode::InvalidImage,
            TaskError::ImageTooLarge(_) => ErrorCode::ImageTooLarge,
            // Logged where it happened (TaskError::internal).
            TaskError::Internal => ErrorCode::Internal,
        };
        debug_assert_eq!(code.as_str(), error.code());
        Self::new(code, error.to_string())
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
    fn every_code_round_trips_through_json_and_parse() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::all() {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert_eq!(serde_json::to_value(code).unwrap(), text);
            assert_eq!(ErrorCode::parse(text), Some(code));
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
        assert_eq!(
            seen.len(),
            17,
            "a code was added: add it to the README's table too"
        );
        assert_eq!(
            ErrorCode::parse("reload_failed"),
            Some(ErrorCode::ReloadFailed)
        );
        assert_eq!(ErrorCode::parse("Internal"), None);
        assert_eq!(ErrorCode::parse(""), None);
    }

    /// The README's error table (`| `code` | status | meaning |`) lists exactly the codes,
    /// each with the status the server sends.
    #[test]
    fn the_readme_table_matches_the_codes() {
        let readme = include_str!("../../../README.md");
        let rows: std::collections::HashMap<String, u16> = readme
            .lines()
            .filter_map(|line| {
                let mut cells = line.strip_prefix("| `")?.split('|');
                let code = cells.next()?.trim().strip_suffix('`')?;
                let status = cells.next()?.trim().parse().ok()?;
                Some((code.to_string(), status))
            })
            .collect();
        for code in ErrorCode::all() {
            assert_eq!(
                rows.get(code.as_str()),
                Some(&code.status().as_u16()),
                "README row for {}",
                code.as_str()
            );
        }
        assert_eq!(rows.len(), 17, "README rows {rows:?}");
    }
}
