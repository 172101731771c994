//! Crafted images for tests: valid files in every format, and the hostile ones a service
//! must refuse (header bombs, truncations, corruptions). Enabled by the `testkit` feature so
//! that the server's and CLI's tests share one corpus.

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

/// A JPEG of `img` carrying an EXIF block whose orientation tag is `orientation` (1–8).
pub fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
    let jpeg = encode_as(img, image::ImageFormat::Jpeg);
    // TIFF header (little endian) + one IFD entry: tag 0x0112 SHORT count 1 value.
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = u16::try_from(app1.len() + 2).expect("small segment");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
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
