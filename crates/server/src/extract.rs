use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::Value;

use crate::{ApiError, ErrorCode, Options};

/// One uploaded image, still encoded.
#[derive(Debug, Clone)]
pub struct ImagePart {
    /// The encoded bytes exactly as uploaded; they are never written to disk.
    pub bytes: Bytes,
    /// The client's file name, for display only (never used as a path).
    pub filename: Option<String>,
}

/// A task request: one or more images and the options that came with them.
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// Images in the order they were sent.
    pub images: Vec<ImagePart>,
    /// Options from the query string and the body.
    pub options: Options,
}

/// Limits applied while reading a request.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body in bytes.
    pub max_body_bytes: usize,
    /// Most multipart parts.
    pub max_parts: usize,
}

pub(crate) enum BodyKind {
    Multipart(String),
    Json,
    Raw,
}

pub(crate) fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyKind::Raw);
    };
    let content_type = value
        .to_str()
        .map_err(|_| unsupported("an unreadable Content-Type"))?
        .trim();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "multipart/form-data" {
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            ApiError::invalid_image("multipart/form-data without a boundary parameter")
        })?;
        Ok(BodyKind::Multipart(boundary))
    } else if essence == "application/json" || essence.ends_with("+json") {
        Ok(BodyKind::Json)
    } else if essence.starts_with("image/") || essence == "application/octet-stream" {
        Ok(BodyKind::Raw)
    } else if essence.starts_with("video/") {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type `{essence}`: this route takes photos; send a video to \
                 POST /v1/jobs/{{task}} (an async job)"
            ),
        ))
    } else {
        Err(unsupported(&format!("Content-Type `{essence}`")))
    }
}

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!(
            "{what} is not accepted: send multipart/form-data with an `image` field, a raw \
             image/* body, or application/json with a base64 `image`"
        ),
    )
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than the {} byte limit", limit),
    )
}

pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid_image(format!("the request body could not be read: {e}"))
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// The options of a query string (the body's fields may add to them).
pub(crate) fn query_options(query: Option<&str>) -> Result<Options, ApiError> {
    let mut options = Options::new();
    if let Some(query) = query {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::bad_option(format!("the query string is malformed: {e}")))?;
        for (key, value) in pairs {
            options.insert_text(&key, &value);
        }
    }
    Ok(options)
}

/// Reads a task request in any of the three accepted shapes (DESIGN §2): multipart with
/// `image` field(s), a raw `image/*` body, or JSON with a base64 `image` (or `images`).
/// Options come from the query string, then the body's other fields (which win).
pub async fn read_image_input(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
    limits: BodyLimits,
) -> Result<ImageInput, ApiError> {
    let kind = body_kind(headers)?;
    let mut options = query_options(query)?;
    let bytes = read_body(body, headers, limits.max_body_bytes).await?;
    let images = match kind {
        BodyKind::Raw => vec![ImagePart {
            bytes,
            filename: None,
        }],
        BodyKind::Json => read_json(&bytes, &mut options, limits)?,
        BodyKind::Multipart(boundary) => {
            read_multipart(bytes, boundary, &mut options, limits).await?
        }
    };
    if let Some(position) = images.iter().position(|p| p.bytes.is_empty()) {
        return Err(ApiError::invalid_image(if images.len() == 1 {
            "the image is empty (0 bytes)".to_string()
        } else {
            format!("image #{} is empty (0 bytes)", position + 1)
        }));
    }
    Ok(ImageInput { images, options })
}

pub(crate) fn read_json(
    bytes: &[u8],
    options: &mut Options,
    limits: BodyLimits,
) -> Result<Vec<ImagePart>, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_image(format!("the JSON body is malformed: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::invalid_image(
            "the JSON body must be an object with a base64 `image` field",
        ));
    };
    let mut images = Vec::new();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("image", Value::String(text)) => images.push(decode_base64(&text, None)?),
            ("images", Value::Array(items)) => {
                if items.len() > limits.max_parts {
                    return Err(too_many(limits.max_parts));
                }
                for (i, item) in items.into_iter().enumerate() {
                    let Value::String(text) = item else {
                        return Err(ApiError::invalid_image(format!(
                            "`images[{i}]` must be a base64 string"
                        )));
                    };
                    images.push(decode_base64(&text, Some(i))?);
                }
            }
            ("image" | "images", _) => {
                return Err(ApiError::invalid_image(
                    "`image` must be a base64 string (`images` an array of them)",
                ));
            }
            (_, value) => options.insert(&key, value),
        }
    }
    if images.is_empty() {
        return Err(ApiError::invalid_image(
            "the JSON body has no `image` field (a base64 string, data-URL prefix allowed)",
        ));
    }
    Ok(images)
}

pub(crate) fn too_many(limit: usize) -> ApiError {
    ApiError::bad_option(format!("at most {limit} images per request"))
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64 (standard or URL-safe, padding optional, line breaks ignored), tolerating a
/// `data:image/...;base64,` prefix.
fn decode_base64(text: &str, index: Option<usize>) -> Result<ImagePart, ApiError> {
    let payload = match text.strip_prefix("data:") {
        Some(rest) => rest
            .split_once(',')
            .map(|(_, data)| data)
            .ok_or_else(|| ApiError::invalid_image("the data URL has no `,` before its payload"))?,
        None => text,
    };
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = BASE64
        .decode(&compact)
        .or_else(|_| BASE64_URL.decode(&compact))
        .map_err(|e| {
            let which = index.map_or("`image`".to_string(), |i| format!("`images[{i}]`"));
            ApiError::invalid_image(format!("{which} is not valid base64: {e}"))
        })?;
    Ok(ImagePart {
        bytes: Bytes::from(bytes),
        filename: None,
    })
}

async fn read_multipart(
    body: Bytes,
    boundary: String,
    options: &mut Options,
    limits: BodyLimits,
) -> Result<Vec<ImagePart>, ApiError> {
    let stream = futures::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let malformed =
        |e: multer::Error| ApiError::invalid_image(format!("the multipart body is malformed: {e}"));
    let mut images = Vec::new();
    let mut seen = Vec::new();
    let mut parts = 0usize;
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        parts += 1;
        if parts > limits.max_parts {
            return Err(too_many(limits.max_parts));
        }
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        if name == "image" || name == "images" || name == "image[]" {
            let bytes = field.bytes().await.map_err(malformed)?;
            images.push(ImagePart { bytes, filename });
        } else if filename.is_some() {
            seen.push(format!("file `{name}`"));
        } else {
            let text = field.text().await.map_err(malformed)?;
            seen.push(format!("`{name}`"));
            options.insert_text(&name, &text);
        }
    }
    if images.is_empty() {
        return Err(no_image_field(&seen));
    }
    Ok(images)
}

/// A multipart body without an `image` field, naming the fields it had (`seen`).
pub(crate) fn no_image_field(seen: &[String]) -> ApiError {
    ApiError::invalid_image(format!(
        "the multipart body has no `image` field{}",
        if seen.is_empty() {
            String::new()
        } else {
            format!(" (fields sent: {})", seen.join(", "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants() {
        let png = b"\x89PNG\r\n\x1a\n".to_vec();
        let standard = base64::engine::general_purpose::STANDARD.encode(&png);
        for text in [
            standard.clone(),
            standard.trim_end_matches('=').to_string(),
            format!("data:image/png;base64,{standard}"),
            format!("{}\n{}", &standard[..4], &standard[4..]),
        ] {
            assert_eq!(
                decode_base64(&text, None).unwrap().bytes.as_ref(),
                png.as_slice(),
                "{text}"
            );
        }
        assert!(decode_base64("***not base64***", None).is_err());
        assert!(decode_base64("data:image/png;base64", None).is_err());
    }
}
