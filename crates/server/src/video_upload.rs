//! Reading a job request whose body may be a video: the bytes are streamed, the first ones
//! sniffed (never the Content-Type), and a video is written to a temporary file as it arrives
//! (MP4 needs seeking, and a video may be far over the photo limit), so no video is ever held
//! whole in memory. A photo is collected in memory under `max_body_bytes`, exactly as the
//! other routes read it.

use std::fmt::Display;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::extract::{
    BodyKind, BodyLimits, ImageInput, ImagePart, body_kind, no_image_field, query_options,
    read_body, read_json, too_large, too_many,
};
use crate::{ApiError, ErrorCode, Options};

/// Bytes sniffed before deciding photo or video (MPEG-TS needs 189).
const SNIFF: usize = 256;

/// A video upload spilled to a temporary file (removed when this is dropped).
#[derive(Debug)]
pub(crate) struct VideoUpload {
    /// The file, in `TMPDIR`.
    pub(crate) path: TempPath,
    /// Its size in bytes.
    pub(crate) bytes: u64,
}

/// What a job request carried.
pub(crate) enum JobInput {
    /// Photos (one, for a job), read as every other route reads them.
    Photos(ImageInput),
    /// One video and the request's options.
    Video(VideoUpload, Options),
}

/// One uploaded part, told by its first bytes.
enum Part {
    Photo(Bytes),
    Video(VideoUpload),
}

fn video_too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the video is larger than the {limit} byte limit (max_video_bytes)"),
    )
}

/// Reads a job request: multipart (`image` field), a raw body, or JSON with base64 `image`
/// (a JSON video is bounded by `max_body_bytes`, as it is decoded in memory).
pub(crate) async fn read_job_input(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
    limits: BodyLimits,
    max_video_bytes: usize,
) -> Result<JobInput, ApiError> {
    // A raw video body may say so (`video/mp4`); what it is, its first bytes tell.
    let labelled_video = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("video/"));
    let kind = if labelled_video {
        BodyKind::Raw
    } else {
        body_kind(headers)?
    };
    let mut options = query_options(query)?;
    let largest = limits.max_body_bytes.max(max_video_bytes);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > largest) {
        return Err(too_large(largest));
    }
    let parts = match kind {
        BodyKind::Json => {
            let bytes = read_body(body, headers, limits.max_body_bytes).await?;
            let images = read_json(&bytes, &mut options, limits)?;
            match <[ImagePart; 1]>::try_from(images) {
                Ok([image]) if percept_video::looks_like_video(&image.bytes) => {
                    vec![(Part::Video(spill(&image.bytes).await?), false)]
                }
                Ok([image]) => vec![(Part::Photo(image.bytes), false)],
                Err(images) => images
                    .into_iter()
                    .map(|i| (Part::Photo(i.bytes), false))
                    .collect(),
            }
        }
        BodyKind::Raw => {
            let stream = body.into_data_stream();
            let part = collect_or_spill(stream, limits.max_body_bytes, max_video_bytes, read_error)
                .await?;
            vec![(part, labelled_video)]
        }
        BodyKind::Multipart(boundary) => {
            read_multipart(body, boundary, &mut options, limits, max_video_bytes).await?
        }
    };
    into_input(parts, options)
}

fn read_error(error: impl Display) -> ApiError {
    ApiError::invalid_image(format!("the request body could not be read: {error}"))
}

fn into_input(parts: Vec<(Part, bool)>, options: Options) -> Result<JobInput, ApiError> {
    let count = parts.len();
    let mut images = Vec::with_capacity(count);
    for (part, labelled_video) in parts {
        match part {
            Part::Video(video) if count == 1 => return Ok(JobInput::Video(video, options)),
            Part::Video(_) => {
                return Err(ApiError::bad_option(format!(
                    "a job takes one video, got {count} files"
                )));
            }
            Part::Photo(bytes) if bytes.is_empty() => {
                return Err(ApiError::invalid_image("the image is empty (0 bytes)"));
            }
            // Sent as a video (a `video/*` type, a video file name) and neither a video's nor
            // an image's first bytes: say what the client meant to send is unreadable. A
            // photo renamed `.mp4` is still a photo.
            Part::Photo(bytes) if labelled_video && image::guess_format(&bytes).is_err() => {
                return Err(ApiError::new(
                    ErrorCode::InvalidVideo,
                    "the upload is not a video percept can read: its first bytes are no video \
                     container's (MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV, Ogg)",
                ));
            }
            Part::Photo(bytes) => images.push(ImagePart {
                bytes,
                filename: None,
            }),
        }
    }
    Ok(JobInput::Photos(ImageInput { images, options }))
}

/// Reads `stream` to its end: into memory (at most `photo_limit` bytes) when its first bytes
/// are not a video's, else into a temporary file (at most `video_limit` bytes).
async fn collect_or_spill<S, E>(
    mut stream: S,
    photo_limit: usize,
    video_limit: usize,
    failed: fn(E) -> ApiError,
) -> Result<Part, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut head = BytesMut::new();
    let mut ended = true;
    while let Some(chunk) = stream.next().await {
        head.extend_from_slice(&chunk.map_err(failed)?);
        if head.len() >= SNIFF {
            ended = false;
            break;
        }
    }
    if percept_video::looks_like_video(&head) {
        if head.len() > video_limit {
            return Err(video_too_large(video_limit));
        }
        let (file, path) = temporary()?;
        let mut file = tokio::fs::File::from_std(file);
        let mut written = head.len();
        file.write_all(&head).await.map_err(spill_failed)?;
        while !ended && let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(failed)?;
            written += chunk.len();
            if written > video_limit {
                // `path` is dropped here: the partial file goes with it.
                return Err(video_too_large(video_limit));
            }
            file.write_all(&chunk).await.map_err(spill_failed)?;
        }
        file.flush().await.map_err(spill_failed)?;
        return Ok(Part::Video(VideoUpload {
            path,
            bytes: written as u64,
        }));
    }
    if head.len() > photo_limit {
        return Err(too_large(photo_limit));
    }
    while !ended && let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(failed)?;
        if head.len() + chunk.len() > photo_limit {
            return Err(too_large(photo_limit));
        }
        head.extend_from_slice(&chunk);
    }
    Ok(Part::Photo(head.freeze()))
}

/// A new temporary file in `TMPDIR`, removed when its path is dropped.
fn temporary() -> Result<(std::fs::File, TempPath), ApiError> {
    tempfile::Builder::new()
        .prefix("percept-upload-")
        .tempfile()
        .map(tempfile::NamedTempFile::into_parts)
        .map_err(spill_failed)
}

fn spill_failed(error: std::io::Error) -> ApiError {
    ApiError::internal(format!("cannot write an uploaded video to TMPDIR: {error}"))
}

/// A video that arrived base64 in JSON, written out like a streamed one.
async fn spill(bytes: &[u8]) -> Result<VideoUpload, ApiError> {
    let (file, path) = temporary()?;
    let mut file = tokio::fs::File::from_std(file);
    file.write_all(bytes).await.map_err(spill_failed)?;
    file.flush().await.map_err(spill_failed)?;
    Ok(VideoUpload {
        path,
        bytes: bytes.len() as u64,
    })
}

/// Multipart read as it streams in: each `image` part sniffed and collected or spilled; the
/// photos together under `max_body_bytes`, the whole body under the larger of the two limits.
async fn read_multipart(
    body: Body,
    boundary: String,
    options: &mut Options,
    limits: BodyLimits,
    max_video_bytes: usize,
) -> Result<Vec<(Part, bool)>, ApiError> {
    let largest = limits.max_body_bytes.max(max_video_bytes);
    let constraints = multer::Constraints::new().size_limit(
        // Room for the other fields and the part headers around the largest file.
        multer::SizeLimit::new().whole_stream((largest as u64).saturating_add(64 * 1024)),
    );
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let mut parts = Vec::new();
    let mut photo_bytes = 0usize;
    let mut seen = Vec::new();
    let mut fields = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        fields += 1;
        if fields > limits.max_parts {
            return Err(too_many(limits.max_parts));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == "image" || name == "images" || name == "image[]" {
            let labelled_video = field
                .file_name()
                .is_some_and(|name| percept_video::has_video_extension(std::path::Path::new(name)))
                || field
                    .content_type()
                    .is_some_and(|mime| mime.type_() == "video");
            let room = limits.max_body_bytes.saturating_sub(photo_bytes);
            let part = collect_or_spill(field, room, max_video_bytes, malformed).await?;
            if let Part::Photo(bytes) = &part {
                photo_bytes += bytes.len();
            }
            parts.push((part, labelled_video));
        } else if field.file_name().is_some() {
            seen.push(format!("file `{name}`"));
        } else {
            let text = field.text().await.map_err(malformed)?;
            seen.push(format!("`{name}`"));
            options.insert_text(&name, &text);
        }
    }
    if parts.is_empty() {
        return Err(no_image_field(&seen));
    }
    Ok(parts)
}

fn malformed(error: multer::Error) -> ApiError {
    match error {
        multer::Error::StreamSizeExceeded { limit } => {
            too_large(usize::try_from(limit).unwrap_or(usize::MAX))
        }
        other => ApiError::invalid_image(format!("the multipart body is malformed: {other}")),
    }
}
