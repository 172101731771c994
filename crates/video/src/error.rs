//! What can go wrong with a video, each failure a variant callers map to a stable code.

/// A video failure.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// `ffmpeg` or `ffprobe` is not on the PATH: video needs Debian's `ffmpeg` package.
    #[error(
        "video needs FFmpeg: `{program}` was not found on the PATH; install Debian's `ffmpeg` \
         package (apt-get install ffmpeg). Photos work without it"
    )]
    FfmpegMissing {
        /// The program that was looked for.
        program: &'static str,
    },
    /// The file is not a video FFmpeg can read (or has no video stream).
    #[error("{0}")]
    Invalid(String),
    /// The video is over a configured limit (pixels per frame, duration, frames).
    #[error("{0}")]
    TooLarge(String),
    /// FFmpeg failed while decoding or encoding; the message carries the end of its stderr.
    #[error("ffmpeg failed: {0}")]
    Ffmpeg(String),
    /// Reading or writing a file or pipe failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl VideoError {
    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
