//! The malformed-input corpus across every task route: each format truncated at several
//! points, a decompression bomb in each format, wrong and missing fields, absurd options.
//! Every case must get its status and stable code, and the next good request must succeed.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use common::*;
use futures::StreamExt;
use image::ImageFormat as F;
use percept_core::testkit;
use serde_json::json;

#[derive(Clone)]
enum Body {
    Raw(&'static str, Vec<u8>),
    Json(serde_json::Value),
    Multipart(Vec<(&'static str, Vec<u8>)>),
}

#[derive(Clone)]
struct Case {
    name: String,
    query: &'static str,
    body: Body,
    status: u16,
    code: &'static str,
}

fn case(name: impl Into<String>, body: Body, status: u16, code: &'static str) -> Case {
    Case {
        name: name.into(),
        query: "",
        body,
        status,
        code,
    }
}

fn photo_in(format: F) -> Vec<u8> {
    let photo = image::load_from_memory(&data("person_astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let small = image::imageops::resize(&photo, 160, 160, image::imageops::FilterType::Triangle);
    testkit::encode_as(&small, format)
}

fn input_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (format, mime) in [
        (F::Jpeg, "image/jpeg"),
        (F::Png, "image/png"),
        (F::WebP, "image/webp"),
        (F::Gif, "image/gif"),
        (F::Bmp, "image/bmp"),
        (F::Tiff, "image/tiff"),
    ] {
        let bytes = photo_in(format);
        for percent in [5, 30, 60, 90, 99] {
            let cut = bytes.len() * percent / 100;
            cases.push(case(
                format!("{format:?} truncated at {percent}%"),
                Body::Raw(mime, bytes[..cut].to_vec()),
                400,
                "invalid_image",
            ));
        }
    }
    let tiny = testkit::gradient(16, 16);
    for (name, mime, bytes) in [
        (
            "png bomb",
            "image/png",
            testkit::png_claiming(100_000, 100_000),
        ),
        ("gif bomb", "image/gif", testkit::gif_bomb()),
        (
            "jpeg bomb",
            "image/jpeg",
            testkit::jpeg_claiming(&tiny, 65_000, 65_000),
        ),
        (
            "bmp bomb",
            "image/bmp",
            testkit::bmp_claiming(50_000, 50_000),
        ),
        (
            "tiff bomb",
            "image/tiff",
            testkit::tiff_claiming(60_000, 60_000),
        ),
        (
            "webp bomb",
            "image/webp",
            testkit::webp_claiming(16_000, 16_000),
        ),
        ("tall png", "image/png", testkit::png_claiming(10, 12_001)),
    ] {
        cases.push(case(name, Body::Raw(mime, bytes), 413, "image_too_large"));
    }
    let jpeg = photo_in(F::Jpeg);
    cases.extend([
        case(
            "empty",
            Body::Raw("image/jpeg", vec![]),
            400,
            "invalid_image",
        ),
        case(
            "one byte",
            Body::Raw("image/jpeg", vec![0xFF]),
            400,
            "invalid_image",
        ),
        case(
            "png magic only",
            Body::Raw("image/png", b"\x89PNG\r\n\x1a\n".to_vec()),
            400,
            "invalid_image",
        ),
        case(
            "html",
            Body::Raw("image/jpeg", b"<html><body>hi</body></html>".to_vec()),
            400,
            "invalid_image",
        ),
        case(
            "zeros",
            Body::Raw("application/octet-stream", vec![0; 4096]),
            400,
            "invalid_image",
        ),
        case(
            "corrupt idat",
            Body::Raw(
                "image/png",
                testkit::png_corrupt_idat(&testkit::gradient(64, 64)),
            ),
            400,
            "invalid_image",
        ),
        case(
            "claimed size no data",
            Body::Raw("image/png", testkit::png_claiming(64, 64)),
            400,
            "invalid_image",
        ),
        case(
            "json no image",
            Body::Json(json!({"photo": "x"})),
            400,
            "invalid_image",
        ),
        case(
            "json image null",
            Body::Json(json!({"image": null})),
            400,
            "invalid_image",
        ),
        case(
            "json image object",
            Body::Json(json!({"image": {"data": "x"}})),
            400,
            "invalid_image",
        ),
        case(
            "json garbage base64",
            Body::Json(json!({"image": "!!!!"})),
            400,
            "invalid_image",
        ),
        case(
            "json empty string",
            Body::Json(json!({"image": ""})),
            400,
            "invalid_image",
        ),
        case(
            "json images not array",
            Body::Json(json!({"images": "abc"})),
            400,
            "invalid_image",
        ),
        case(
            "json data url without comma",
            Body::Json(json!({"image": "data:image/png;base64"})),
            400,
            "invalid_image",
        ),
        case(
            "json deeply nested",
            Body::Raw(
                "application/json",
                format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            ),
            400,
            "invalid_image",
        ),
        case(
            "json string",
            Body::Json(json!("image")),
            400,
            "invalid_image",
        ),
        case(
            "multipart wrong field",
            Body::Multipart(vec![("file", jpeg.clone())]),
            400,
            "invalid_image",
        ),
        case(
            "multipart empty image",
            Body::Multipart(vec![("image", vec![])]),
            400,
            "invalid_image",
        ),
        case(
            "multipart text image",
            Body::Multipart(vec![("image", b"hello".to_vec())]),
            400,
            "invalid_image",
        ),
        case(
            "text/plain",
            Body::Raw("text/plain", b"hello".to_vec()),
            415,
            "unsupported_media_type",
        ),
        case(
            "xml",
            Body::Raw("application/xml", b"<a/>".to_vec()),
            415,
            "unsupported_media_type",
        ),
        case(
            "multipart without boundary",
            Body::Raw("multipart/form-data", jpeg),
            400,
            "invalid_image",
        ),
    ]);
    cases
}

fn option_cases(route: &str) -> Vec<Case> {
    let jpeg = photo_in(F::Jpeg);
    let bad = |query: &'static str| Case {
        name: format!("{route}?{query}"),
        query,
        body: Body::Raw("image/jpeg", jpeg.clone()),
        status: 422,
        code: "bad_option",
    };
    let mut cases = vec![
        bad("format=gif"),
        bad("quality=0"),
        bad("quality=101"),
        bad("quality=abc"),
        bad("nonsense=1"),
    ];
    if route.starts_with("art/") {
        cases.extend([
            bad("sigma_s=1e308"),
            bad("sigma_s=-1"),
            bad("sigma_r=NaN"),
            bad("size=1000000000000"),
        ]);
    }
    cases
}

async fn check(
    server: &TestServer,
    client: &reqwest::Client,
    route: &str,
    case: Case,
    good: &[u8],
) {
    let url = server.url(&format!(
        "/v1/{route}{}{}",
        if case.query.is_empty() { "" } else { "?" },
        case.query
    ));
    let request = match case.body {
        Body::Raw(mime, bytes) => client.post(url).header("content-type", mime).body(bytes),
        Body::Json(value) => client.post(url).json(&value),
        Body::Multipart(parts) => {
            let mut form = reqwest::multipart::Form::new();
            for (field, bytes) in parts {
                form = form.part(
                    field,
                    reqwest::multipart::Part::bytes(bytes).file_name("x.jpg"),
                );
            }
            client.post(url).multipart(form)
        }
    };
    let (status, body) = send(request).await;
    assert_eq!(
        (status, error_code(&body)),
        (case.status, case.code),
        "{route}: {}: {body}",
        case.name
    );
    let (status, body) = send(
        client
            .post(server.url(&format!("/v1/{route}")))
            .header("content-type", "image/jpeg")
            .body(good.to_vec()),
    )
    .await;
    assert_eq!(
        status, 200,
        "good request after {route}: {}: {body}",
        case.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_malformed_input() {
    let server = TestServer::start(config()).await;
    let client = client();
    let good = data("group4_small_faces.jpg");
    let routes = [
        "inspect",
        "art/pencil",
        "art/pencil-color",
        "art/oil",
        "art/watercolor",
        "art/stylize",
        "art/cartoon",
    ];
    let mut count = 0;
    for route in routes {
        for case in input_cases().into_iter().chain(option_cases(route)) {
            check(&server, &client, route, case, &good).await;
            count += 1;
        }
    }
    assert!(count >= 100, "the corpus has {count} cases");
    let (status, _) = send(client.get(server.url("/healthz"))).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_body_is_cut_by_the_deadline() {
    let server = TestServer::start(Config {
        deadline_ms: 400,
        ..config()
    })
    .await;
    let jpeg = data("person_astronaut.jpg");
    // 40 chunks 50 ms apart: the whole body would take 2 s, five times the deadline. What is
    // checked is that the server answered before the client had sent it all (how many chunks
    // it pulled), not a wall-clock bound a busy machine could break.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        jpeg.chunks(64).take(40).map(|c| Ok(c.to_vec())).collect();
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = pulled.clone();
    let slow = futures::stream::iter(chunks).then(move |chunk| {
        let counter = counter.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            chunk
        }
    });
    let (status, body) = send(
        client()
            .post(server.url("/v1/inspect"))
            .header("content-type", "image/jpeg")
            .body(reqwest::Body::wrap_stream(slow)),
    )
    .await;
    assert_eq!((status, error_code(&body)), (503, "timeout"));
    let pulled = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        pulled < 40,
        "the server waited for the whole body ({pulled} chunks)"
    );
    let (status, _) = send(
        client()
            .post(server.url("/v1/inspect"))
            .header("content-type", "image/jpeg")
            .body(jpeg),
    )
    .await;
    assert_eq!(status, 200);
    server.shutdown().await;
}
