//! percept-video: video files in and out through FFmpeg's command-line programs.
//!
//! Why pipes and not the FFmpeg libraries: the `ffmpeg` and `ffprobe` programs of Debian's
//! `ffmpeg` package are driven as child processes (`rawvideo` RGB frames on stdin/stdout), so
//! percept links no native library, builds offline from crates.io alone, and keeps working
//! for photos on a machine without FFmpeg (video then fails with [`VideoError::FfmpegMissing`],
//! naming the package). Frames stream: a reader and a writer thread each hold at most a
//! couple of frames, so a long 1080p video never sits in memory.
//!
//! Imports run one way: `probe` and `sniff` stand alone; `process` (the child processes and
//! their stderr) is used by `reader` and `writer`.

mod error;
mod probe;
mod process;
mod reader;
mod sniff;
#[cfg(feature = "testkit")]
pub mod testkit;
mod writer;

pub use error::VideoError;
pub use probe::{FrameRate, VideoInfo, probe};
pub use reader::FrameReader;
pub use sniff::{VIDEO_EXTENSIONS, has_video_extension, looks_like_video};
pub use writer::{FrameWriter, WriterSettings};

/// Whether both FFmpeg programs percept drives (`ffmpeg`, `ffprobe`) are on the PATH.
pub fn installed() -> bool {
    process::program("ffmpeg").is_ok() && process::program("ffprobe").is_ok()
}

/// The result type of this crate.
pub type Result<T, E = VideoError> = std::result::Result<T, E>;
