//! The bad-input corpus: every hostile request gets its 4xx and stable code, and the server
//! answers the next good request.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use common::*;
use percept_core::testkit;
use reqwest::multipart::{Form, Part};
use serde_json::json;

enum Body {
    Raw(&'static str, Vec<u8>),
    Json(serde_json::Value),
    Text(&'static str, String),
    Multipart(Form),
    Chunked(Vec<u8>),
}

#[tokio::test]
async fn corpus_of_bad_inputs() {
    let server = TestServer::start(common::Config {
        max_body_bytes: 2 * 1024 * 1024,
        ..config()
    })
    .await;
    let client = client();
    let photo = data("person_astronaut.jpg");
    let png = testkit::encode_as(&testkit::gradient(300, 200), image::ImageFormat::Png);
    let big = vec![0xAB; 3 * 1024 * 1024];

    let cases: Vec<(&str, Body, u16, &str)> = vec![
        (
            "empty body",
            Body::Raw("image/jpeg", vec![]),
            400,
            "invalid_image",
        ),
        (
            "one byte",
            Body::Raw("image/jpeg", vec![0xFF]),
            400,
            "invalid_image",
        ),
        (
            "text file",
            Body::Raw("image/png", b"just some text\nnot a picture\n".to_vec()),
            400,
            "invalid_image",
        ),
        (
            "truncated jpeg",
            Body::Raw("image/jpeg", photo[..photo.len() / 2].to_vec()),
            400,
            "invalid_image",
        ),
        (
            "jpeg cut in header",
            Body::Raw("image/jpeg", photo[..300].to_vec()),
            400,
            "invalid_image",
        ),
        (
            "truncated png",
            Body::Raw("image/png", png[..png.len() / 3].to_vec()),
            400,
            "invalid_image",
        ),
        (
            "corrupt idat",
            Body::Raw(
                "image/png",
                testkit::png_corrupt_idat(&testkit::gradient(300, 200)),
            ),
            400,
            "invalid_image",
        ),
        (
            "png claiming 100000²",
            Body::Raw("image/png", testkit::png_claiming(100_000, 100_000)),
            413,
            "image_too_large",
        ),
        (
            "gif bomb",
            Body::Raw("image/gif", testkit::gif_bomb()),
            413,
            "image_too_large",
        ),
        (
            "garbage base64",
            Body::Json(json!({"image": "%%%this is not base64%%%"})),
            400,
            "invalid_image",
        ),
        (
            "base64 of text",
            Body::Json(json!({"image": "aGVsbG8gd29ybGQ="})),
            400,
            "invalid_image",
        ),
        (
            "json without image",
            Body::Json(json!({"picture": "abc"})),
            400,
            "invalid_image",
        ),
        (
            "json image not a string",
            Body::Json(json!({"image": 42})),
            400,
            "invalid_image",
        ),
        (
            "json array",
            Body::Json(json!(["image"])),
            400,
            "invalid_image",
        ),
        (
            "malformed json",
            Body::Text("application/json", "{\"image\": ".into()),
            400,
            "invalid_image",
        ),
        (
            "multipart without image",
            Body::Multipart(
                Form::new()
                    .part("photo", Part::bytes(photo.clone()).file_name("a.jpg"))
                    .text("mode", "x"),
            ),
            400,
            "invalid_image",
        ),
        (
            "multipart empty image",
            Body::Multipart(Form::new().part("image", Part::bytes(Vec::new()).file_name("a.jpg"))),
            400,
            "invalid_image",
        ),
        (
            "wrong content type",
            Body::Text("text/plain", "hello".into()),
            415,
            "unsupported_media_type",
        ),
        (
            "form urlencoded",
            Body::Text("application/x-www-form-urlencoded", "image=abc".into()),
            415,
            "unsupported_media_type",
        ),
        (
            "body over the limit",
            Body::Raw("image/jpeg", big.clone()),
            413,
            "payload_too_large",
        ),
        (
            "chunked body over the limit",
            Body::Chunked(big.clone()),
            413,
            "payload_too_large",
        ),
        (
            "unknown option",
            Body::Raw("image/jpeg", photo.clone()),
            422,
            "bad_option",
        ),
    ];

    for (name, body, status, code) in cases {
        let mut request = client.post(server.url("/v1/inspect"));
        if name == "unknown option" {
            request = request.query(&[("strenght", "3")]);
        }
        request = match body {
            Body::Raw(content_type, bytes) => {
                request.header("content-type", content_type).body(bytes)
            }
            Body::Json(value) => request.json(&value),
            Body::Text(content_type, text) => {
                request.header("content-type", content_type).body(text)
            }
            Body::Multipart(form) => request.multipart(form),
            Body::Chunked(bytes) => {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    bytes.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
                request
                    .header("content-type", "image/jpeg")
                    .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            }
        };
        let (got_status, got) = send(request).await;
        assert_eq!(
            (got_status, error_code(&got)),
            (status, code),
            "{name}: {got}"
        );
        assert!(
            !got["error"]["message"].as_str().unwrap().is_empty(),
            "{name}"
        );

        // The server is alive and correct right after.
        let (ok, body) = send(
            client
                .post(server.url("/v1/inspect"))
                .header("content-type", "image/jpeg")
                .body(photo.clone()),
        )
        .await;
        assert_eq!(
            (ok, body["width"].as_u64()),
            (200, Some(512)),
            "after {name}: {body}"
        );
    }

    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("percept_requests_total{task=\"inspect\",status=\"400\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("percept_rejections_total{reason=\"payload_too_large\"} 2"),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn two_images_on_a_single_image_route() {
    let server = TestServer::start(config()).await;
    let photo = data("person_astronaut.jpg");
    let form = Form::new()
        .part("image", Part::bytes(photo.clone()).file_name("a.jpg"))
        .part("image", Part::bytes(photo).file_name("b.jpg"));
    let (status, body) = send(client().post(server.url("/v1/inspect")).multipart(form)).await;
    assert_eq!((status, error_code(&body)), (422, "bad_option"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/batch/inspect")
    );
    server.shutdown().await;
}
