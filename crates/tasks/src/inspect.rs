use serde::Serialize;
use utoipa::ToSchema;

use crate::task::{PreparedJob, Task, TaskOutput};
use crate::{OptionSpec, Options, TaskError};

/// `inspect`: what percept reads from an image's header and pixels — the smallest task,
/// proving the decode path end to end.
#[derive(Debug, Clone, Copy)]
pub struct Inspect;

/// The JSON of `POST /v1/inspect`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InspectResult {
    /// Width in pixels after EXIF orientation.
    pub width: u32,
    /// Height in pixels after EXIF orientation.
    pub height: u32,
    /// Container format from the magic bytes: jpeg, png, webp, bmp, gif, tiff.
    pub format: String,
    /// EXIF orientation tag (1 = upright … 8).
    pub orientation: u8,
    /// Whether the upload carried EXIF metadata (never copied to any output).
    pub exif: bool,
    /// Width × height / 1e6.
    pub megapixels: f64,
    /// Mean RGB of the decoded pixels, a check that the pixels were really decoded.
    pub mean_rgb: [f64; 3],
}

impl Task for Inspect {
    fn name(&self) -> &str {
        "inspect"
    }

    fn summary(&self) -> &str {
        "Decode an image and report its size, format, EXIF orientation and mean colour"
    }

    fn options(&self) -> &[OptionSpec] {
        &[]
    }

    fn draws(&self, _options: &Options) -> bool {
        false
    }

    fn prepare(&self, options: Options) -> Result<PreparedJob, TaskError> {
        options.finish(&[])?;
        Ok(Box::new(|decoded, _stages| {
            let mut sums = [0u64; 3];
            for pixel in decoded.image.pixels() {
                for (sum, &v) in sums.iter_mut().zip(&pixel.0) {
                    *sum += u64::from(v);
                }
            }
            let n = (u64::from(decoded.image.width()) * u64::from(decoded.image.height())).max(1);
            let info = decoded.info;
            TaskOutput::from_serialize(
                &InspectResult {
                    width: info.width,
                    height: info.height,
                    format: info.format.as_str().to_string(),
                    orientation: info.orientation,
                    exif: info.exif,
                    megapixels: (info.megapixels() * 1000.0).round() / 1000.0,
                    mean_rgb: sums.map(|s| (s as f64 / n as f64 * 100.0).round() / 100.0),
                },
                None,
            )
        }))
    }
}
