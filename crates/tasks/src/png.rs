//! One-channel maps (parse's label indices, holistic's person mask) as greyscale PNGs.

use crate::TaskError;

/// `map` as a greyscale PNG, base64 (not through `percept_core::encode`, which writes RGB
/// results).
pub(crate) fn grey_png_base64(map: &image::GrayImage) -> Result<String, TaskError> {
    use base64::Engine as _;
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        map.as_raw(),
        map.width(),
        map.height(),
        image::ExtendedColorType::L8,
    )
    .map_err(TaskError::internal)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}
