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
    for (name, mime, bytes) in [
        ("png 0 wide", "image/png", testkit::png_claiming(0, 64)),
        ("png 0 high", "image/png", testkit::png_claiming(64, 0)),
        (
            "jpeg 0x0",
            "image/jpeg",
            testkit::jpeg_claiming(&tiny, 0, 0),
        ),
        ("bmp 0 wide", "image/bmp", testkit::bmp_claiming(0, 64)),
    ] {
        cases.push(case(name, Body::Raw(mime, bytes), 400, "invalid_image"));
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

/// Where a case is sent: a task route, a compatibility route (path, and the task whose
/// `/v1` route checks the server afterwards), a batch or an async job.
#[derive(Clone, Copy, Debug)]
enum Route {
    Task(&'static str),
    Compat(&'static str, &'static str),
    Batch(&'static str),
    Job(&'static str),
}

impl Route {
    fn path(self) -> String {
        match self {
            Route::Task(task) => format!("/v1/{task}"),
            Route::Compat(path, _) => path.to_string(),
            Route::Batch(task) => format!("/v1/batch/{task}"),
            Route::Job(task) => format!("/v1/jobs/{task}"),
        }
    }

    fn task(self) -> &'static str {
        match self {
            Route::Task(task) | Route::Compat(_, task) | Route::Batch(task) | Route::Job(task) => {
                task
            }
        }
    }
}

/// Status and body bytes, whatever the content type (`/process` answers a JPEG).
async fn send_raw(request: reqwest::RequestBuilder) -> (u16, Vec<u8>) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// (status, error code) of a JSON error body; code "" for a success.
fn verdict(status: u16, body: &[u8]) -> (u16, String) {
    if (200..300).contains(&status) {
        return (status, String::new());
    }
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        panic!(
            "a {status} that is not JSON: {:.200}",
            String::from_utf8_lossy(body)
        )
    });
    (status, error_code(&json).to_string())
}

/// What the client finally learns about one image: a batch's single slot, a job's result
/// once it finished, or the route's own answer.
async fn outcome(
    server: &TestServer,
    client: &reqwest::Client,
    route: Route,
    request: reqwest::RequestBuilder,
) -> (u16, String) {
    let (status, body) = send_raw(request).await;
    match route {
        Route::Batch(_) if status == 200 => {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let results = json["results"].as_array().unwrap();
            assert_eq!(results.len(), 1, "{json}");
            let slot = &results[0];
            let status = u16::try_from(slot["status"].as_u64().unwrap()).unwrap();
            if status == 200 {
                (200, String::new())
            } else {
                (
                    status,
                    slot["error"]["error"]["code"].as_str().unwrap().to_string(),
                )
            }
        }
        Route::Job(_) if status == 202 => {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let result_url = server.url(json["result_url"].as_str().unwrap());
            for _ in 0..3000 {
                let (status, body) = send_raw(client.get(&result_url)).await;
                if status != 202 {
                    return verdict(status, &body);
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("job {result_url} never finished");
        }
        _ => verdict(status, &body),
    }
}

fn request(client: &reqwest::Client, url: String, body: Body) -> reqwest::RequestBuilder {
    match body {
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
    }
}

async fn check(
    server: &TestServer,
    client: &reqwest::Client,
    route: Route,
    case: Case,
    good: &[u8],
) {
    let url = server.url(&format!(
        "{}{}{}",
        route.path(),
        if case.query.is_empty() { "" } else { "?" },
        case.query
    ));
    let got = outcome(server, client, route, request(client, url, case.body)).await;
    assert_eq!(
        got,
        (case.status, case.code.to_string()),
        "{route:?}: {}",
        case.name
    );
    let (status, body) = send(
        client
            .post(server.url(&format!("/v1/{}", route.task())))
            .header("content-type", "image/jpeg")
            .body(good.to_vec()),
    )
    .await;
    assert_eq!(
        status, 200,
        "good request after {route:?}: {}: {body}",
        case.name
    );
}

/// Every task route, the compatibility routes, batches and jobs: the same corpus, the same
/// status and code for the one image (SECURITY.md's promise).
const ROUTES: &[Route] = &[
    Route::Task("inspect"),
    Route::Task("art/pencil"),
    Route::Task("art/pencil-color"),
    Route::Task("art/oil"),
    Route::Task("art/watercolor"),
    Route::Task("art/stylize"),
    Route::Task("art/cartoon"),
    Route::Task("parse"),
    Route::Task("anonymize"),
    Route::Task("holistic"),
    Route::Compat("/predict", "parse"),
    Route::Compat("/api/parse", "parse"),
    Route::Compat("/process", "anonymize"),
    Route::Batch("inspect"),
    Route::Batch("parse"),
    Route::Batch("anonymize"),
    Route::Job("holistic"),
    Route::Job("art/oil"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_malformed_input() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let client = client();
    // Small, so the check after each case costs little on the model routes (and is cached).
    let good = photo_in(F::Jpeg);
    let mut count = 0;
    for &route in ROUTES {
        let task = route.task();
        for case in input_cases().into_iter().chain(option_cases(task)) {
            check(&server, &client, route, case, &good).await;
            count += 1;
        }
    }
    assert!(count >= 1000, "the corpus has {count} cases");
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

/// Files that are unusual but valid: each decodes to its true size on every task route (the
/// models too), and what is used of it is said: the first frame of an animation, EXIF
/// orientation only when it is 1–8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusual_valid_files_decode_on_every_route() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let client = client();
    let photo = image::load_from_memory(&data("person_astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let photo = image::imageops::resize(&photo, 120, 160, image::imageops::FilterType::Triangle);
    let black = image::RgbImage::new(120, 160);
    let huge_exif: Vec<(u16, u16)> = (0..5400).map(|i| (0x9000 + (i % 7), i)).collect();
    let mut broken_offset = testkit::tiff_with_entries(&[(0x0112, 6)]);
    broken_offset[4..8].copy_from_slice(&60_000u32.to_le_bytes()); // IFD far past the end
    let truncated = testkit::tiff_with_entries(&[(0x0112, 6), (0x0100, 5)])[..14].to_vec();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("CMYK JPEG", "image/jpeg", testkit::jpeg_cmyk(&photo)),
        (
            "progressive JPEG",
            "image/jpeg",
            testkit::jpeg_progressive(&photo),
        ),
        (
            "grey PNG",
            "image/png",
            testkit::png_as(&photo, image::ColorType::L8),
        ),
        (
            "grey+alpha PNG",
            "image/png",
            testkit::png_as(&photo, image::ColorType::La8),
        ),
        (
            "RGBA PNG",
            "image/png",
            testkit::png_as(&photo, image::ColorType::Rgba8),
        ),
        (
            "16-bit grey PNG",
            "image/png",
            testkit::png_as(&photo, image::ColorType::L16),
        ),
        (
            "16-bit RGB PNG",
            "image/png",
            testkit::png_as(&photo, image::ColorType::Rgb16),
        ),
        (
            "16-bit RGBA PNG",
            "image/png",
            testkit::png_as(&photo, image::ColorType::Rgba16),
        ),
        (
            "interlaced PNG",
            "image/png",
            testkit::png_interlaced(&photo),
        ),
        (
            "animated GIF",
            "image/gif",
            testkit::gif_animated(&[photo.clone(), black.clone()]),
        ),
        (
            "animated WebP",
            "image/webp",
            testkit::webp_animated(&[photo.clone(), black]),
        ),
        (
            "64 KB EXIF",
            "image/jpeg",
            testkit::jpeg_with_exif(&photo, &testkit::tiff_with_entries(&huge_exif)),
        ),
        (
            "EXIF IFD past the end",
            "image/jpeg",
            testkit::jpeg_with_exif(&photo, &broken_offset),
        ),
        (
            "EXIF truncated",
            "image/jpeg",
            testkit::jpeg_with_exif(&photo, &truncated),
        ),
        (
            "EXIF garbage",
            "image/jpeg",
            testkit::jpeg_with_exif(&photo, b"MM\0*garbage"),
        ),
        (
            "orientation 0",
            "image/jpeg",
            testkit::jpeg_with_orientation(&photo, 0),
        ),
        (
            "orientation 9",
            "image/jpeg",
            testkit::jpeg_with_orientation(&photo, 9),
        ),
        (
            "orientation 65535",
            "image/jpeg",
            testkit::jpeg_with_orientation(&photo, 65_535),
        ),
    ];
    let photo_mean: Vec<f64> = (0..3)
        .map(|c| photo.pixels().map(|p| f64::from(p.0[c])).sum::<f64>() / (120.0 * 160.0))
        .collect();
    for (name, mime, bytes) in cases {
        let (status, json) = send(
            client
                .post(server.url("/v1/inspect"))
                .header("content-type", mime)
                .body(bytes.clone()),
        )
        .await;
        assert_eq!(status, 200, "{name}: {json}");
        assert_eq!(
            (json["width"].as_u64(), json["height"].as_u64()),
            (Some(120), Some(160)),
            "{name}: a bad orientation is ignored, not applied: {json}"
        );
        assert_eq!(json["orientation"], 1, "{name}: {json}");
        // The decoded pixels are the photo's (an animation's first frame, not the black one).
        let mean = json["mean_rgb"].as_array().unwrap();
        let grey = name.contains("grey");
        for (c, want) in photo_mean.iter().enumerate() {
            let got = mean[c].as_f64().unwrap();
            let want = if grey {
                photo_mean.iter().sum::<f64>() / 3.0
            } else {
                *want
            };
            assert!(
                (got - want).abs() < 12.0,
                "{name}: mean {mean:?} vs {photo_mean:?}"
            );
        }
        for route in ["parse", "anonymize", "holistic", "art/cartoon"] {
            let (status, body) = send_raw(
                client
                    .post(server.url(&format!("/v1/{route}")))
                    .header("content-type", mime)
                    .body(bytes.clone()),
            )
            .await;
            assert_eq!(
                status,
                200,
                "{name} on {route}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
    }
    server.shutdown().await;
}

/// Degenerate shapes through every model task: an answer (with nobody found), never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pixel_and_one_pixel_wide_photos_on_every_task() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let client = client();
    for (w, h) in [(1, 1), (1, 5000), (5000, 1), (2, 3)] {
        let png = testkit::encode_as(&testkit::gradient(w, h), F::Png);
        for route in [
            "inspect",
            "parse",
            "anonymize",
            "holistic",
            "art/oil",
            "art/watercolor",
        ] {
            let (status, json) = send(
                client
                    .post(server.url(&format!("/v1/{route}")))
                    .header("content-type", "image/png")
                    .body(png.clone()),
            )
            .await;
            assert_eq!(status, 200, "{w}x{h} on {route}: {json}");
            for count in ["person_count", "count"] {
                if let Some(n) = json.get(count) {
                    assert_eq!(n, 0, "{w}x{h} on {route}: nobody is in a gradient: {json}");
                }
            }
        }
    }
    server.shutdown().await;
}

/// More images than `max_parts`: refused as a whole, multipart or JSON, before any decoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_parts_than_max_parts_are_refused() {
    let server = TestServer::with_tasks(
        Config {
            max_parts: 3,
            ..config()
        },
        model_registry(),
    )
    .await;
    let client = client();
    let jpeg = photo_in(F::Jpeg);
    for route in ["/v1/batch/inspect", "/v1/batch/parse", "/batch/parse"] {
        let parts: Vec<(&'static str, Vec<u8>)> = (0..4).map(|_| ("image", jpeg.clone())).collect();
        let got = outcome(
            &server,
            &client,
            Route::Task("inspect"),
            request(&client, server.url(route), Body::Multipart(parts)),
        )
        .await;
        assert_eq!(got, (422, "bad_option".to_string()), "{route} multipart");
        let b64 = base64_of(&jpeg);
        let got = outcome(
            &server,
            &client,
            Route::Task("inspect"),
            request(
                &client,
                server.url(route),
                Body::Json(json!({"images": [b64, b64, b64, b64]})),
            ),
        )
        .await;
        assert_eq!(got, (422, "bad_option".to_string()), "{route} JSON");
        // Exactly max_parts is fine.
        let parts: Vec<(&'static str, Vec<u8>)> = (0..3).map(|_| ("image", jpeg.clone())).collect();
        let (status, _) =
            send_raw(request(&client, server.url(route), Body::Multipart(parts))).await;
        assert_eq!(status, 200, "{route} with max_parts images");
    }
    server.shutdown().await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
