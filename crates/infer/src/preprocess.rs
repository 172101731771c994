//! Fitting images to model inputs and mapping results back to image pixels.

use image::RgbImage;
use image::imageops::{self, FilterType};

use crate::manifest::{InputSpec, Layout};
use crate::{InferError, Result, Tensor};

/// An axis-aligned scale and offset: `input = image * scale + offset`, in pixel units where a
/// pixel's centre is at `i + 0.5`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Horizontal scale, input pixels per image pixel.
    pub scale_x: f32,
    /// Vertical scale.
    pub scale_y: f32,
    /// Where the image's left edge lands in the input.
    pub offset_x: f32,
    /// Where the image's top edge lands in the input.
    pub offset_y: f32,
    /// Width of the resized image content inside the input.
    pub content_width: u32,
    /// Height of the resized image content inside the input.
    pub content_height: u32,
    /// Input width.
    pub input_width: u32,
    /// Input height.
    pub input_height: u32,
}

impl Fit {
    /// Keeps the aspect ratio and centres the image, padding the rest (MediaPipe
    /// `keep_aspect_ratio`). Fails on empty sizes.
    pub fn letterbox(image: (u32, u32), input: (u32, u32)) -> Result<Self> {
        check_sizes(image, input)?;
        let scale = (input.0 as f32 / image.0 as f32).min(input.1 as f32 / image.1 as f32);
        let cw = ((image.0 as f32 * scale).round() as u32).clamp(1, input.0);
        let ch = ((image.1 as f32 * scale).round() as u32).clamp(1, input.1);
        Ok(Self::place(
            image,
            input,
            (cw, ch),
            ((input.0 - cw) / 2, (input.1 - ch) / 2),
        ))
    }

    /// Warps the image to fill the input.
    pub fn stretch(image: (u32, u32), input: (u32, u32)) -> Result<Self> {
        check_sizes(image, input)?;
        Ok(Self::place(image, input, input, (0, 0)))
    }

    /// Resizes the image to `content` pixels and puts it at the input's top-left corner, the
    /// rest padded: for models that accept any multiple of a stride.
    pub fn top_left(image: (u32, u32), content: (u32, u32), input: (u32, u32)) -> Result<Self> {
        check_sizes(image, input)?;
        check_sizes(content, input)?;
        if content.0 > input.0 || content.1 > input.1 {
            return Err(InferError::Shape(format!(
                "content {content:?} does not fit in input {input:?}"
            )));
        }
        Ok(Self::place(image, input, content, (0, 0)))
    }

    fn place(image: (u32, u32), input: (u32, u32), content: (u32, u32), at: (u32, u32)) -> Self {
        Self {
            scale_x: content.0 as f32 / image.0 as f32,
            scale_y: content.1 as f32 / image.1 as f32,
            offset_x: at.0 as f32,
            offset_y: at.1 as f32,
            content_width: content.0,
            content_height: content.1,
            input_width: input.0,
            input_height: input.1,
        }
    }

    /// Maps a point from input pixels back to image pixels.
    pub fn to_image(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x - self.offset_x) / self.scale_x,
            (y - self.offset_y) / self.scale_y,
        )
    }

    /// Maps a point from image pixels to input pixels.
    pub fn to_input(&self, x: f32, y: f32) -> (f32, f32) {
        (
            x * self.scale_x + self.offset_x,
            y * self.scale_y + self.offset_y,
        )
    }

    /// Resizes `image` and pads it to the input size (padding is black).
    pub fn apply(&self, image: &RgbImage) -> RgbImage {
        let resized = if image.dimensions() == (self.content_width, self.content_height) {
            None
        } else {
            Some(resize_rgb(image, self.content_width, self.content_height))
        };
        let content = resized.as_ref().unwrap_or(image);
        if content.dimensions() == (self.input_width, self.input_height) {
            return content.clone();
        }
        let mut out = RgbImage::new(self.input_width, self.input_height);
        imageops::replace(
            &mut out,
            content,
            i64::from(self.offset_x as u32),
            i64::from(self.offset_y as u32),
        );
        out
    }
}

fn check_sizes(image: (u32, u32), input: (u32, u32)) -> Result<()> {
    if image.0 == 0 || image.1 == 0 || input.0 == 0 || input.1 == 0 {
        return Err(InferError::Shape(format!(
            "cannot fit an image of {image:?} into {input:?}"
        )));
    }
    Ok(())
}

/// Converts an RGB image already at the input size into the model's tensor, applying the
/// spec's layout and `(pixel - mean) / std` per channel.
pub fn rgb_to_tensor(image: &RgbImage, spec: &InputSpec) -> Tensor {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let scale = spec.std.map(|s| 1.0 / s);
    let mut data = vec![0.0f32; w * h * 3];
    match spec.layout {
        Layout::Nhwc => {
            for (dst, px) in data.chunks_exact_mut(3).zip(image.pixels()) {
                for c in 0..3 {
                    dst[c] = (f32::from(px.0[c]) - spec.mean[c]) * scale[c];
                }
            }
        }
        Layout::Nchw => {
            let plane = w * h;
            for (i, px) in image.pixels().enumerate() {
                for c in 0..3 {
                    data[c * plane + i] = (f32::from(px.0[c]) - spec.mean[c]) * scale[c];
                }
            }
        }
    }
    let shape = spec.shape_for(h, w);
    // The length matches the shape by construction.
    Tensor::new(shape, data).unwrap_or_else(|_| Tensor::zeros(vec![0]))
}

/// Resamples `image` to `width` × `height` with a bilinear kernel that widens when shrinking
/// (like `image`'s `Triangle`), so large photos are not aliased; SIMD, several times faster.
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    use fast_image_resize::{FilterType as Filter, ResizeAlg, ResizeOptions, Resizer};
    let mut out = RgbImage::new(width, height);
    if width == 0 || height == 0 || image.width() == 0 || image.height() == 0 {
        return out;
    }
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(Filter::Bilinear));
    // Both are 8-bit RGB buffers of their stated sizes, the only way this can fail.
    if Resizer::new().resize(image, &mut out, &options).is_err() {
        return imageops::resize(image, width, height, FilterType::Triangle);
    }
    out
}

/// Fits `image` into the input with `fit` and converts it: the usual first step of a pipeline.
pub fn image_to_tensor(image: &RgbImage, fit: &Fit, spec: &InputSpec) -> Tensor {
    rgb_to_tensor(&fit.apply(image), spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ResizeMode;

    fn spec(layout: Layout, mean: f32, std: f32) -> InputSpec {
        InputSpec {
            name: "x".into(),
            shape: vec![],
            dim_names: None,
            multiple_of: None,
            layout,
            dtype: "float32".into(),
            channels: "RGB".into(),
            range: [0.0, 1.0],
            mean: [mean; 3],
            std: [std; 3],
            resize: Some(ResizeMode::Letterbox),
        }
    }

    #[test]
    fn letterbox_round_trips_points() {
        // (image, input, expected content, expected offset)
        let cases = [
            ((640, 480), (192, 192), (192, 144), (0.0, 24.0)),
            ((480, 640), (192, 192), (144, 192), (24.0, 0.0)),
            ((100, 100), (128, 128), (128, 128), (0.0, 0.0)),
            ((1000, 10), (256, 256), (256, 3), (0.0, 126.0)),
        ];
        for (image, input, content, offset) in cases {
            let fit = Fit::letterbox(image, input).expect("valid sizes");
            assert_eq!(
                (fit.content_width, fit.content_height),
                content,
                "{image:?}"
            );
            assert_eq!((fit.offset_x, fit.offset_y), offset, "{image:?}");
            for (x, y) in [(0.0, 0.0), (image.0 as f32, image.1 as f32), (13.5, 7.25)] {
                let (ix, iy) = fit.to_input(x, y);
                let (bx, by) = fit.to_image(ix, iy);
                assert!((bx - x).abs() < 1e-3 && (by - y).abs() < 1e-3, "{image:?}");
            }
        }
    }

    #[test]
    fn empty_sizes_are_rejected() {
        assert!(Fit::letterbox((0, 10), (10, 10)).is_err());
        assert!(Fit::stretch((10, 10), (10, 0)).is_err());
        assert!(Fit::top_left((10, 10), (20, 10), (10, 10)).is_err());
    }

    #[test]
    fn tensor_layout_and_normalisation() {
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgb([255, 0, 127]));
        img.put_pixel(1, 0, image::Rgb([0, 255, 0]));
        let nhwc = rgb_to_tensor(&img, &spec(Layout::Nhwc, 127.5, 127.5));
        assert_eq!(nhwc.shape(), &[1, 1, 2, 3]);
        assert!((nhwc.data()[0] - 1.0).abs() < 1e-6);
        assert!((nhwc.data()[1] + 1.0).abs() < 1e-6);
        let nchw = rgb_to_tensor(&img, &spec(Layout::Nchw, 0.0, 1.0));
        assert_eq!(nchw.shape(), &[1, 3, 1, 2]);
        assert_eq!(nchw.data(), &[255.0, 0.0, 0.0, 255.0, 127.0, 0.0]);
    }

    #[test]
    fn letterbox_pads_with_black_and_centres() {
        let img = RgbImage::from_pixel(40, 20, image::Rgb([200, 200, 200]));
        let fit = Fit::letterbox((40, 20), (40, 40)).expect("valid sizes");
        let out = fit.apply(&img);
        assert_eq!(out.dimensions(), (40, 40));
        assert_eq!(out.get_pixel(20, 5).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(20, 20).0, [200, 200, 200]);
        assert_eq!(out.get_pixel(20, 35).0, [0, 0, 0]);
    }

    #[test]
    fn resize_matches_a_triangle_filter() {
        let img = RgbImage::from_fn(400, 300, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
        });
        let fast = resize_rgb(&img, 160, 120);
        let reference = imageops::resize(&img, 160, 120, FilterType::Triangle);
        assert_eq!(fast.dimensions(), (160, 120));
        let mean = fast
            .as_raw()
            .iter()
            .zip(reference.as_raw())
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / fast.as_raw().len() as f64;
        assert!(mean < 3.0, "mean difference {mean}");
        assert_eq!(resize_rgb(&img, 0, 10).dimensions(), (0, 10));
    }
}
