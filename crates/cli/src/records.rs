//! What one load run measured: every request, and the server's resources over time. Kept
//! apart from `load` (which fills them) and `charts` (which draws them) so neither imports
//! the other.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Record {
    pub(crate) start_s: f64,
    pub(crate) latency_ms: f64,
    pub(crate) status: u16,
    pub(crate) bytes: usize,
    pub(crate) task: String,
    pub(crate) image: String,
    /// Index of the stage it was sent in (0 without --stages).
    pub(crate) stage: usize,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Sample {
    pub(crate) t_s: f64,
    pub(crate) rss_mib: Option<f64>,
    pub(crate) cpu_percent: Option<f64>,
    pub(crate) queue_depth: Option<f64>,
    pub(crate) in_flight: Option<f64>,
}
