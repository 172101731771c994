//! What the CLI's test files share: the binary under test and the test photos.

use std::path::PathBuf;
use std::process::Command;

/// The `percept` binary, without the caller's queue or config settings, logging warnings.
pub fn percept() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_percept"));
    command
        .env_remove("PERCEPT_QUEUE")
        .env_remove("PERCEPT_CONFIG")
        .env("PERCEPT_LOG", "warn");
    command
}

/// A file of `tests/data`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

/// Asserts the command succeeded, showing its stderr when it did not.
pub fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
