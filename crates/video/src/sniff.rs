//! Is this file a video? Told by its first bytes (a photo renamed `.mp4` is still a photo),
//! with the file name's extension used only to pick an output container.

use std::path::Path;

/// Output containers percept writes (the extension picks FFmpeg's muxer).
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv", "webm", "avi"];

/// Whether `path`'s extension is one of [`VIDEO_EXTENSIONS`].
pub fn has_video_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// ISO-BMFF brands of still images (AVIF, HEIF), which share MP4's `ftyp` box.
const IMAGE_BRANDS: &[&[u8; 4]] = &[b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"];

/// Whether `head` (a file's first bytes; 16 are enough, 189 to tell MPEG-TS) starts a video
/// container: MP4/MOV/3GP, Matroska/WebM, AVI, MPEG-TS, MPEG-PS, FLV or Ogg.
pub fn looks_like_video(head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(4, b"ftyp") {
        return head
            .get(8..12)
            .is_some_and(|brand| !IMAGE_BRANDS.iter().any(|b| b.as_slice() == brand));
    }
    at(0, &[0x1A, 0x45, 0xDF, 0xA3])
        || (at(0, b"RIFF") && at(8, b"AVI "))
        || (at(0, &[0x47]) && at(188, &[0x47]))
        || at(0, &[0x00, 0x00, 0x01, 0xBA])
        || at(0, b"FLV")
        || at(0, b"OggS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_by_their_first_bytes() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0");
        assert!(looks_like_video(&mp4));
        let mut avif = vec![0, 0, 0, 0x20];
        avif.extend_from_slice(b"ftypavif\0\0\0\0");
        assert!(!looks_like_video(&avif));
        assert!(looks_like_video(&[0x1A, 0x45, 0xDF, 0xA3, 1, 2]));
        assert!(looks_like_video(b"RIFF\0\0\0\0AVI LIST"));
        assert!(!looks_like_video(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!looks_like_video(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!looks_like_video(b"\x89PNG\r\n\x1a\n"));
        assert!(!looks_like_video(b""));
        let mut ts = vec![0u8; 189];
        ts[0] = 0x47;
        ts[188] = 0x47;
        assert!(looks_like_video(&ts));
    }

    #[test]
    fn output_extensions() {
        assert!(has_video_extension(Path::new("a/b.MP4")));
        assert!(has_video_extension(Path::new("clip.webm")));
        assert!(!has_video_extension(Path::new("photo.jpg")));
        assert!(!has_video_extension(Path::new("noext")));
    }
}
