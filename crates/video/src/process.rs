//! FFmpeg's programs as child processes: found on the PATH (or reported missing by name),
//! their stderr kept (the end of it) for error messages, killed when dropped so a failed or
//! abandoned video leaves no process behind.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::thread::JoinHandle;

use crate::{Result, VideoError};

/// The most of a child's stderr kept for an error message.
const STDERR_KEEP: usize = 4096;

/// The full path of `name` (`ffmpeg`, `ffprobe`) on the PATH.
pub(crate) fn program(name: &'static str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or(VideoError::FfmpegMissing { program: name })
}

/// The last lines of a program's stderr, as one line.
pub(crate) fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut tail: Vec<&str> = text.trim().lines().rev().take(4).collect();
    tail.reverse();
    if tail.is_empty() {
        "no message".into()
    } else {
        tail.join(" / ")
    }
}

/// A running FFmpeg program whose stderr is drained by a thread (a full stderr pipe would
/// stall it); killed on drop unless waited for.
pub(crate) struct Running {
    child: Child,
    stderr: Option<JoinHandle<Vec<u8>>>,
    what: &'static str,
}

impl Running {
    /// Takes over `child`, whose stderr must be piped.
    pub(crate) fn new(mut child: Child, what: &'static str) -> Self {
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    kept.extend_from_slice(&chunk[..n]);
                    // Keep the end: that is where FFmpeg says why it stopped.
                    if kept.len() > 4 * STDERR_KEEP {
                        kept.drain(..kept.len() - STDERR_KEEP);
                    }
                }
                kept
            })
        });
        Self {
            child,
            stderr,
            what,
        }
    }

    pub(crate) fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the program to end; an unsuccessful exit is an error with its stderr.
    pub(crate) fn wait(mut self) -> Result<()> {
        let status: ExitStatus = self
            .child
            .wait()
            .map_err(|e| VideoError::io(format!("cannot wait for {}", self.what), e))?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(VideoError::Ffmpeg(format!(
                "{} ({status}): {}",
                self.what,
                stderr_tail(&stderr)
            )))
        }
    }

    /// Stops the program now (an error elsewhere ended the video).
    pub(crate) fn kill(&mut self) {
        // Already ended is fine: kill reports it and wait reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let text = (0..10)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            stderr_tail(text.as_bytes()),
            "line 6 / line 7 / line 8 / line 9"
        );
        assert_eq!(stderr_tail(b"  \n"), "no message");
    }

    #[test]
    fn a_missing_program_names_the_package() {
        let err = program("percept-no-such-program-xyz").err();
        let Some(VideoError::FfmpegMissing { program }) = err else {
            panic!("expected FfmpegMissing, got {err:?}");
        };
        assert_eq!(program, "percept-no-such-program-xyz");
        let message = VideoError::FfmpegMissing { program: "ffmpeg" }.to_string();
        assert!(message.contains("apt-get install ffmpeg"), "{message}");
    }
}
