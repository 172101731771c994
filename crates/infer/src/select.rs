//! Choosing the engine at start-up (`--engine auto|tract|ort`, DESIGN §4) and finding the
//! ONNX Runtime library.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, EngineKind};
use crate::ort::OrtEngine;
use crate::tract::TractEngine;
use crate::{InferError, Result};

/// Environment variable that names the ONNX Runtime library file; when set, it is the only
/// place looked at.
pub const ORT_DYLIB_ENV: &str = "PERCEPT_ORT_DYLIB";

/// The engine asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// ONNX Runtime when its library is found and loads, else tract.
    #[default]
    Auto,
    /// tract, always.
    Tract,
    /// ONNX Runtime, or an error when its library is missing or does not load.
    Ort,
}

impl FromStr for EngineChoice {
    type Err = InferError;

    /// Parses `auto`, `tract` or `ort` (any case, surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "tract" => Ok(Self::Tract),
            "ort" | "onnxruntime" => Ok(Self::Ort),
            _ => Err(InferError::UnknownEngine(s.to_string())),
        }
    }
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Tract => "tract",
            Self::Ort => "ort",
        })
    }
}

/// Where to look for `libonnxruntime.so`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrtLocator {
    /// A file named by the user ([`ORT_DYLIB_ENV`]); when set, nothing else is searched.
    pub explicit: Option<PathBuf>,
    /// Folders searched in order for `libonnxruntime.so`, then `libonnxruntime.so.<version>`.
    pub dirs: Vec<PathBuf>,
}

impl OrtLocator {
    /// [`ORT_DYLIB_ENV`] if set, else `./.ort/`, the source tree's `.ort/` (where
    /// `scripts/fetch-ort` puts the library), the executable's folder and its `.ort/`.
    pub fn from_env() -> Self {
        let explicit = std::env::var_os(ORT_DYLIB_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let mut dirs = vec![
            PathBuf::from(".ort"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ort"),
        ];
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            dirs.push(exe_dir.join(".ort"));
            dirs.push(exe_dir);
        }
        Self { explicit, dirs }
    }

    /// Only this file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            explicit: Some(path.into()),
            dirs: Vec::new(),
        }
    }

    /// The library to load, or a sentence saying where it was looked for.
    pub fn locate(&self) -> std::result::Result<PathBuf, String> {
        if let Some(path) = &self.explicit {
            return if path.is_file() {
                Ok(path.clone())
            } else {
                Err(format!("{ORT_DYLIB_ENV}={} is not a file", path.display()))
            };
        }
        if let Some(found) = self.dirs.iter().find_map(|dir| find_in(dir)) {
            return Ok(found);
        }
        let looked: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        Err(format!(
            "no libonnxruntime.so in {}; run scripts/fetch-ort or set {ORT_DYLIB_ENV}",
            if looked.is_empty() {
                "any folder".to_string()
            } else {
                looked.join(", ")
            }
        ))
    }
}

fn find_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join("libonnxruntime.so");
    if plain.is_file() {
        return Some(plain);
    }
    // Versioned names sort by version for the 1.x series the wheel ships.
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so."))
                && path.is_file()
        })
        .max()
}

/// How to build the engine a [`EngineChoice`] selects.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Threads one ONNX Runtime run may use (tract always uses one). Keep
    /// `intra_threads × workers ≤ cores`.
    pub intra_threads: usize,
    /// Threads of a large ONNX Runtime run alone (see [`OrtEngine::with_idle_threads`]);
    /// `None` = every core.
    pub idle_threads: Option<usize>,
    /// ONNX Runtime sessions per model (runs of one model at once); `None` = one per core.
    pub max_sessions: Option<usize>,
    /// Where to find the ONNX Runtime library.
    pub locator: OrtLocator,
}

impl Default for EngineOptions {
    /// One intra-op thread, a session per core, the library found by [`OrtLocator::from_env`].
    fn default() -> Self {
        Self {
            intra_threads: 1,
            idle_threads: None,
            max_sessions: None,
            locator: OrtLocator::from_env(),
        }
    }
}

fn ort_engine(options: &EngineOptions) -> Result<OrtEngine> {
    let dylib = options
        .locator
        .locate()
        .map_err(|reason| InferError::EngineUnavailable {
            engine: EngineKind::Ort,
            reason,
        })?;
    let mut engine = OrtEngine::new(&dylib)?.with_intra_threads(options.intra_threads);
    if let Some(threads) = options.idle_threads {
        engine = engine.with_idle_threads(threads);
    }
    if let Some(sessions) = options.max_sessions {
        engine = engine.with_max_sessions(sessions);
    }
    Ok(engine)
}

/// The engine for `choice`. `Auto` falls back to tract, saying why in the log; `Ort` fails with
/// [`InferError::EngineUnavailable`] when the library is missing or does not load.
pub fn select_engine(choice: EngineChoice, options: &EngineOptions) -> Result<Arc<dyn Engine>> {
    match choice {
        EngineChoice::Tract => {
            tracing::info!(engine = "tract", "engine: tract (asked for)");
            Ok(Arc::new(TractEngine))
        }
        EngineChoice::Ort => {
            let engine = ort_engine(options)?;
            tracing::info!(
                engine = "ort",
                dylib = %engine.dylib().display(),
                intra_threads = engine.intra_threads(),
                idle_threads = engine.idle_threads(),
                "engine: ONNX Runtime (asked for)"
            );
            Ok(Arc::new(engine))
        }
        EngineChoice::Auto => match ort_engine(options) {
            Ok(engine) => {
                tracing::info!(
                    engine = "ort",
                    dylib = %engine.dylib().display(),
                    intra_threads = engine.intra_threads(),
                    idle_threads = engine.idle_threads(),
                idle_threads = engine.idle_threads(),
                    "engine: ONNX Runtime (auto: library found and loaded)"
                );
                Ok(Arc::new(engine))
            }
            Err(InferError::EngineUnavailable { reason, .. }) => {
                tracing::info!(engine = "tract", %reason, "engine: tract (auto: ONNX Runtime not available)");
                Ok(Arc::new(TractEngine))
            }
            Err(e) => {
                tracing::warn!(engine = "tract", error = %e, "engine: tract (auto: ONNX Runtime failed)");
                Ok(Arc::new(TractEngine))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_parses_and_prints() {
        let cases = [
            ("auto", Some(EngineChoice::Auto)),
            ("tract", Some(EngineChoice::Tract)),
            ("ort", Some(EngineChoice::Ort)),
            (" ORT ", Some(EngineChoice::Ort)),
            ("onnxruntime", Some(EngineChoice::Ort)),
            ("Tract", Some(EngineChoice::Tract)),
            ("", None),
            ("rten", None),
            ("ort2", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<EngineChoice>().ok();
            assert_eq!(got, want, "{text:?}");
            if let Some(choice) = got {
                assert_eq!(
                    choice.to_string().parse::<EngineChoice>().ok(),
                    Some(choice)
                );
            }
        }
        assert!(matches!(
            "gpu".parse::<EngineChoice>(),
            Err(InferError::UnknownEngine(s)) if s == "gpu"
        ));
        assert_eq!(EngineChoice::default(), EngineChoice::Auto);
    }

    #[test]
    fn choice_reads_from_toml() {
        #[derive(Deserialize)]
        struct C {
            engine: EngineChoice,
        }
        let c: C = toml::from_str("engine = \"ort\"").unwrap();
        assert_eq!(c.engine, EngineChoice::Ort);
        assert!(toml::from_str::<C>("engine = \"gpu\"").is_err());
    }

    fn missing() -> EngineOptions {
        EngineOptions {
            locator: OrtLocator {
                explicit: None,
                dirs: vec![PathBuf::from("/nonexistent/percept-ort")],
            },
            ..EngineOptions::default()
        }
    }

    #[test]
    fn ort_requested_without_library_is_an_error() {
        let err = select_engine(EngineChoice::Ort, &missing())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("engine `ort` is not available"), "{err}");
        assert!(err.contains("scripts/fetch-ort"), "{err}");
        assert!(err.contains("/nonexistent/percept-ort"), "{err}");

        let explicit = EngineOptions {
            locator: OrtLocator::file("/nonexistent/libonnxruntime.so"),
            ..EngineOptions::default()
        };
        let err = select_engine(EngineChoice::Ort, &explicit)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(ORT_DYLIB_ENV), "{err}");
    }

    #[test]
    fn auto_without_library_is_tract() {
        let engine = select_engine(EngineChoice::Auto, &missing());
        assert_eq!(engine.map(|e| e.kind()).ok(), Some(EngineKind::Tract));
        let engine = select_engine(EngineChoice::Tract, &missing());
        assert_eq!(engine.map(|e| e.kind()).ok(), Some(EngineKind::Tract));
    }

    #[test]
    fn a_file_that_is_not_the_library_does_not_load() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so.1.99.0");
        std::fs::write(&fake, b"not a library").unwrap();
        let options = EngineOptions {
            locator: OrtLocator {
                explicit: None,
                dirs: vec![dir.path().to_path_buf()],
            },
            ..EngineOptions::default()
        };
        assert_eq!(options.locator.locate().ok(), Some(fake));
        let err = select_engine(EngineChoice::Ort, &options)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cannot load"), "{err}");
        let engine = select_engine(EngineChoice::Auto, &options);
        assert_eq!(engine.map(|e| e.kind()).ok(), Some(EngineKind::Tract));
    }
}
