//! Crafted images for tests: valid files in every format, and the hostile ones a service
//! must refuse (header bombs, truncations, corruptions); and, in [`services`], the real
//! programs the integration tests start. Enabled by the `testkit` feature so that the
//! server's, the CLI's and the video crate's tests share one corpus and one way to start them.

pub mod services;

use image::{ExtendedColorType, ImageEncoder, RgbImage};

/// A smooth colour ramp with some texture, `width × height`.
pub fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            ((x ^ y) & 0xFF) as u8,
        ])
    })
}

/// Encodes `img` in `format` with the `image` crate's encoders.
pub fn encode_as(img: &RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encoding {format:?} in the testkit: {e}"));
    out.into_inner()
}

/// A JPEG of `img` carrying an EXIF block whose orientation tag is `orientation` (1–8 are
/// the valid values; others are for tests of what a decoder does with them).
pub fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
    jpeg_with_exif(img, &tiff_with_entries(&[(0x0112, orientation)]))
}

/// A little-endian TIFF block (an EXIF payload) with one IFD of SHORT entries `(tag, value)`.
pub fn tiff_with_entries(entries: &[(u16, u16)]) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    let count = u16::try_from(entries.len()).expect("at most 65535 entries");
    tiff.extend_from_slice(&count.to_le_bytes());
    for &(tag, value) in entries {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff
}

/// A JPEG of `img` with an APP1 `Exif` segment holding `tiff` (at most 65527 bytes: one
/// segment's limit), whatever it contains.
pub fn jpeg_with_exif(img: &RgbImage, tiff: &[u8]) -> Vec<u8> {
    let jpeg = encode_as(img, image::ImageFormat::Jpeg);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(tiff);
    let len = u16::try_from(app1.len() + 2).expect("an APP1 segment is at most 65535 bytes");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A progressive JPEG of `img`.
pub fn jpeg_progressive(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(true);
    let (w, h) = (dim16(img.width()), dim16(img.height()));
    encoder
        .encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap_or_else(|e| panic!("progressive JPEG in the testkit: {e}"));
    out
}

/// A four-channel CMYK JPEG of `img` (Adobe marker, as print workflows write them).
pub fn jpeg_cmyk(img: &RgbImage) -> Vec<u8> {
    let cmyk: Vec<u8> = img
        .pixels()
        .flat_map(|p| {
            let [r, g, b] = p.0;
            let k = 255 - r.max(g).max(b);
            let ink = |c: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - c - k) as u32 * 255 / (255 - k) as u32) as u8
                }
            };
            [ink(r), ink(g), ink(b), k]
        })
        .collect();
    let mut out = Vec::new();
    let (w, h) = (dim16(img.width()), dim16(img.height()));
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&cmyk, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap_or_else(|e| panic!("CMYK JPEG in the testkit: {e}"));
    out
}

fn dim16(n: u32) -> u16 {
    u16::try_from(n).expect("a test image side fits a JPEG header")
}

/// `img` as PNG in another colour type: `L8`, `La8`, `Rgba8`, `Rgb16`, `Rgba16`, `L16`.
pub fn png_as(img: &RgbImage, color: image::ColorType) -> Vec<u8> {
    let dynamic = image::DynamicImage::ImageRgb8(img.clone());
    let converted = match color {
        image::ColorType::L8 => image::DynamicImage::ImageLuma8(dynamic.to_luma8()),
        image::ColorType::La8 => image::DynamicImage::ImageLumaA8(dynamic.to_luma_alpha8()),
        image::ColorType::Rgba8 => image::DynamicImage::ImageRgba8(dynamic.to_rgba8()),
        image::ColorType::L16 => image::DynamicImage::ImageLuma16(dynamic.to_luma16()),
        image::ColorType::Rgb16 => image::DynamicImage::ImageRgb16(dynamic.to_rgb16()),
        image::ColorType::Rgba16 => image::DynamicImage::ImageRgba16(dynamic.to_rgba16()),
        other => panic!("no PNG of {other:?} in the testkit"),
    };
    let mut out = std::io::Cursor::new(Vec::new());
    converted
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("PNG {color:?} in the testkit: {e}"));
    out.into_inner()
}

/// An Adam7-interlaced RGB PNG of `img` (the `image` crate writes only non-interlaced ones):
/// the seven passes' scanlines, unfiltered, in stored (uncompressed) deflate blocks.
pub fn png_interlaced(img: &RgbImage) -> Vec<u8> {
    // (x start, y start, x step, y step) of each pass.
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let (w, h) = img.dimensions();
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in PASSES {
        if x0 >= w || y0 >= h {
            continue; // an empty pass has no scanlines
        }
        for y in (y0..h).step_by(dy as usize) {
            raw.push(0); // filter: none
            for x in (x0..w).step_by(dx as usize) {
                raw.extend_from_slice(&img.get_pixel(x, y).0);
            }
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]); // 8-bit RGB, deflate, adaptive, Adam7
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// `data` as a zlib stream of stored deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len())); // BFINAL, BTYPE 00
        let len = u16::try_from(chunk.len()).expect("chunked to 65535");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    if chunks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// An animated GIF with `frames` (all the same size), 100 ms each.
pub fn gif_animated(frames: &[RgbImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        let frames = frames.iter().map(|f| {
            let rgba = image::DynamicImage::ImageRgb8(f.clone()).to_rgba8();
            image::Frame::from_parts(rgba, 0, 0, image::Delay::from_numer_denom_ms(100, 1))
        });
        encoder
            .encode_frames(frames)
            .unwrap_or_else(|e| panic!("animated GIF in the testkit: {e}"));
    }
    out
}

/// An animated WebP with `frames` (all the same size), 100 ms each: the `image` crate writes
/// only still WebP, so each frame's lossless VP8L chunk is wrapped in an ANMF chunk under a
/// VP8X header with the animation flag and an ANIM chunk.
pub fn webp_animated(frames: &[RgbImage]) -> Vec<u8> {
    let le24 = |v: u32| v.to_le_bytes()[..3].to_vec();
    let riff_chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(kind);
        out.extend_from_slice(&u32::try_from(data.len()).expect("chunk").to_le_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
    };
    let (w, h) = frames.first().map_or((1, 1), |f| f.dimensions());
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x02, 0, 0, 0]; // animation flag
    vp8x.extend(le24(w - 1));
    vp8x.extend(le24(h - 1));
    riff_chunk(&mut body, b"VP8X", &vp8x);
    riff_chunk(&mut body, b"ANIM", &[0, 0, 0, 0, 0, 0]); // background, loop forever
    for frame in frames {
        let still = encode_as(frame, image::ImageFormat::WebP);
        // RIFF header (12 bytes), then the VP8L chunk the frame is made of.
        let vp8l = still.get(12..).expect("a WebP has a RIFF header");
        assert_eq!(&vp8l[..4], b"VP8L", "the image crate writes lossless WebP");
        let mut anmf = Vec::new();
        anmf.extend(le24(0));
        anmf.extend(le24(0));
        anmf.extend(le24(w - 1));
        anmf.extend(le24(h - 1));
        anmf.extend(le24(100));
        anmf.push(0);
        anmf.extend_from_slice(vp8l);
        riff_chunk(&mut body, b"ANMF", &anmf);
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).expect("size").to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).expect("chunk").to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A tiny, well-formed PNG whose header claims `width × height` (a decompression bomb when
/// large): valid signature, IHDR with a correct CRC, one small IDAT, IEND.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    png_chunk(&mut out, b"IHDR", &ihdr);
    // A zlib stream of a few zero bytes: far too little data for the claimed size.
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A valid PNG whose IDAT payload is overwritten with garbage (CRC left stale).
pub fn png_corrupt_idat(img: &RgbImage) -> Vec<u8> {
    let mut png = encode_as(img, image::ImageFormat::Png);
    let idat = png
        .windows(4)
        .position(|w| w == b"IDAT")
        .expect("a PNG has an IDAT chunk");
    let start = idat + 4 + 2; // keep the zlib header so the failure is in the data
    let end = (start + 64).min(png.len() - 12);
    for (i, b) in png[start..end].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0xA5;
    }
    png
}

/// A GIF whose logical screen and frame claim 65535×65535 pixels in a few dozen bytes.
pub fn gif_bomb() -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&u16::MAX.to_le_bytes());
    out.extend_from_slice(&u16::MAX.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2C); // image descriptor
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&u16::MAX.to_le_bytes());
    out.extend_from_slice(&u16::MAX.to_le_bytes());
    out.push(0);
    out.push(2); // LZW minimum code size
    out.extend_from_slice(&[2, 0x4C, 0x01, 0]); // a tiny LZW stream
    out.push(0x3B);
    out
}

/// Encodes `img` as PNG with an `eXIf` chunk, to check outputs never carry input metadata.
pub fn png_with_exif(img: &RgbImage) -> Vec<u8> {
    let mut raw = Vec::new();
    image::codecs::png::PngEncoder::new(&mut raw)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("png encode");
    // Right after IHDR (8-byte signature + 25-byte chunk): decoders read metadata before IDAT.
    let mut out = raw[..33].to_vec();
    png_chunk(&mut out, b"eXIf", b"MM\0*\0\0\0\x08\0\0\0\0\0\0GPS-SECRET");
    out.extend_from_slice(&raw[33..]);
    out
}

/// A JPEG of `img` whose frame header (SOF) is patched to claim `width × height`.
pub fn jpeg_claiming(img: &RgbImage, width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = encode_as(img, image::ImageFormat::Jpeg);
    let sof = jpeg
        .windows(2)
        .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC2))
        .expect("a JPEG has a frame header");
    // FFCx, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

/// A BMP header (BITMAPINFOHEADER, 24-bit) claiming `width × height` with almost no pixel data.
pub fn bmp_claiming(width: i32, height: i32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&70u32.to_le_bytes()); // file size (a lie, as bombs do)
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    out.extend_from_slice(&40u32.to_le_bytes()); // info header size
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // planes
    out.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
    out.extend_from_slice(&[0; 24]); // no compression, sizes and palette counts 0
    out.extend_from_slice(&[0; 16]);
    out
}

/// A little-endian TIFF with one IFD claiming `width × height` 8-bit RGB and a single tiny strip.
pub fn tiff_claiming(width: u32, height: u32) -> Vec<u8> {
    let entries: [(u16, u16, u32); 8] = [
        (256, 4, width),              // ImageWidth LONG
        (257, 4, height),             // ImageLength LONG
        (258, 3, 8),                  // BitsPerSample (one value for brevity)
        (259, 3, 1),                  // Compression: none
        (262, 3, 2),                  // Photometric: RGB
        (273, 4, 8 + 2 + 8 * 12 + 4), // StripOffsets: right after the IFD
        (277, 3, 3),                  // SamplesPerPixel
        (279, 4, 16),                 // StripByteCounts
    ];
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&[0x55; 16]);
    out
}

/// A lossless WebP (VP8L) whose header claims `width × height` (each at most 16384) with a
/// few bytes of bitstream.
pub fn webp_claiming(width: u32, height: u32) -> Vec<u8> {
    let packed = (width - 1) | ((height - 1) << 14);
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&packed.to_le_bytes());
    vp8l.extend_from_slice(&[0; 11]);
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8L");
    body.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    body.extend_from_slice(&vp8l);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}
