//! Every art style over HTTP on a real photo: the rendered image comes back as PNG/JPEG or
//! base64 JSON, has the photo's size, and visibly differs from it.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use base64::Engine;
use common::*;

const STYLES: [&str; 6] = [
    "pencil",
    "pencil-color",
    "oil",
    "watercolor",
    "stylize",
    "cartoon",
];

fn changed_fraction(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let changed = a
        .pixels()
        .zip(b.pixels())
        .filter(|(p, q)| p.0.iter().zip(q.0).any(|(x, y)| x.abs_diff(y) > 12))
        .count();
    changed as f64 / (a.width() * a.height()) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_style_renders_a_changed_image() {
    let server = TestServer::start(config()).await;
    let client = client();
    let photo = data("group3_costumes.jpg");
    let original = image::load_from_memory(&photo).unwrap().to_rgb8();
    for style in STYLES {
        let response = client
            .post(server.url(&format!("/v1/art/{style}")))
            .header("accept", "image/png")
            .multipart(multipart(photo.clone(), "image"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{style}");
        assert_eq!(response.headers()["content-type"], "image/png");
        let rendered = image::load_from_memory(&response.bytes().await.unwrap())
            .unwrap()
            .to_rgb8();
        assert_eq!(rendered.dimensions(), original.dimensions(), "{style}");
        let fraction = changed_fraction(&original, &rendered);
        assert!(
            fraction > 0.1,
            "{style}: only {fraction:.2} of pixels changed"
        );
    }

    // JSON with an embedded JPEG, options from the JSON body.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&photo);
    let (status, body) = send(
        client
            .post(server.url("/v1/art/oil"))
            .json(&serde_json::json!({
                "image": b64, "size": 3, "format": "jpeg", "quality": 80
            })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["style"].as_str(), body["image_format"].as_str()),
        (Some("oil"), Some("jpg"))
    );
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(body["image"].as_str().unwrap())
        .unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_art_options_are_422_and_unknown_styles_404() {
    let server = TestServer::start(config()).await;
    let client = client();
    let photo = data("person_astronaut.jpg");
    for (path, query) in [
        ("/v1/art/pencil", "sigma_s=0"),
        ("/v1/art/pencil", "sigma_r=2"),
        ("/v1/art/oil", "size=100"),
        ("/v1/art/oil", "size=big"),
        ("/v1/art/cartoon", "levels=1"),
        ("/v1/art/stylize", "shade_factor=0.1"),
        ("/v1/art/watercolor", "format=gif"),
    ] {
        let (status, body) = send(
            client
                .post(server.url(&format!("{path}?{query}")))
                .header("content-type", "image/jpeg")
                .body(photo.clone()),
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (422, "bad_option"),
            "{path}?{query}: {body}"
        );
    }
    let (status, body) = send(
        client
            .post(server.url("/v1/art/sepia"))
            .header("content-type", "image/jpeg")
            .body(photo),
    )
    .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    server.shutdown().await;
}
