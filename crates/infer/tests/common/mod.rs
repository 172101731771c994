//! What the test binaries that need ONNX Runtime share.

use std::io::Write as _;

use percept_infer::{OrtEngine, OrtLocator};

/// ONNX Runtime when its library is found; otherwise a loud banner and `None` (the caller
/// skips), or a panic when `PERCEPT_REQUIRE_ORT=1` (`scripts/test` sets it).
pub fn ort_engine() -> Option<OrtEngine> {
    let required = std::env::var("PERCEPT_REQUIRE_ORT").is_ok_and(|v| v == "1");
    let found = OrtLocator::from_env()
        .locate()
        .and_then(|path| OrtEngine::new(&path).map_err(|e| e.to_string()));
    match found {
        Ok(engine) => Some(engine),
        Err(reason) if required => panic!("PERCEPT_REQUIRE_ORT=1 but ONNX Runtime: {reason}"),
        Err(reason) => {
            // Straight to stderr, not eprintln!: the test harness swallows eprintln! output
            // of passing tests, and a skipped comparison must be seen.
            static BANNER: std::sync::Once = std::sync::Once::new();
            BANNER.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !! SKIPPED (this test binary): ONNX Runtime is not available ({reason}).\n\
                     !! Run scripts/fetch-ort to compare tract with ONNX Runtime.\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
            });
            None
        }
    }
}
