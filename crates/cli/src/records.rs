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

/// The `p`th percentile (0–100) of `sorted` by nearest rank; `None` when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

/// The median of `values` (sorted in place); `None` when empty.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    percentile(values, 50.0)
}
