//! Request parsing: arbitrary content types, query strings and bodies through the extractor
//! (multipart, JSON/base64, raw), the render options and every model-free task's option
//! validation. Any input must give a value or an `ApiError`, never a panic.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use percept_server::{BodyLimits, Render, read_image_input};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime")
    })
}

const CONTENT_TYPES: [&str; 6] = [
    "multipart/form-data; boundary=XyZ",
    "application/json",
    "image/jpeg",
    "text/plain",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    // The first byte picks the content type; up to the first 0 byte is the query string.
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (query, body) = rest.split_at(split);
    let query = String::from_utf8_lossy(query).into_owned();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()]),
    );
    let limits = BodyLimits { max_body_bytes: 1 << 20, max_parts: 8 };
    let body = Body::from(body.to_vec());
    let Ok(input) = runtime().block_on(read_image_input(&headers, Some(&query), body, limits)) else {
        return;
    };
    let tasks = percept_server::tasks::default_registry();
    for task in tasks.iter() {
        let mut options = input.options.clone();
        if Render::from_request(Some("image/png"), &mut options).is_ok() {
            let _ = task.prepare(options);
        }
    }
});
