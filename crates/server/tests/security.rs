//! The HTTP surface's security stance: optional bearer token on everything but the page and
//! health, no CORS headers by default, nothing reflected unescaped in the form route's HTML.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use common::*;
use percept_server::Secret;
use reqwest::multipart::{Form, Part};

const KEY: &str = "test-key-0123456789abcdef";

#[tokio::test]
async fn an_api_key_guards_every_route_but_page_and_health() {
    let server = TestServer::start(Config {
        api_key: Some(Secret::new(KEY)),
        ..config()
    })
    .await;
    let client = client();
    for path in ["/", "/assets/app.js", "/healthz", "/health", "/readyz"] {
        let status = client.get(server.url(path)).send().await.unwrap().status();
        assert_eq!(status, 200, "{path} stays open");
    }
    for path in [
        "/metrics",
        "/v1/models",
        "/v1/tasks",
        "/openapi.json",
        "/v1/jobs/abc",
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "unauthorized");
    }
    let photo = data("person_astronaut.jpg");
    for (header, value, expected) in [
        ("authorization", format!("Bearer {KEY}"), 200),
        ("x-api-key", KEY.to_string(), 200),
        (
            "authorization",
            "Bearer wrong-key-0123456789abcdef".to_string(),
            401,
        ),
        ("authorization", KEY.to_string(), 401), // missing the Bearer scheme
        ("x-api-key", format!("{KEY}x"), 401),
    ] {
        let status = client
            .post(server.url("/v1/inspect"))
            .header(header, value.clone())
            .header("content-type", "image/jpeg")
            .body(photo.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "{header}: {value}");
    }
    let no_key = client
        .post(server.url("/v1/inspect"))
        .header("content-type", "image/jpeg")
        .body(photo);
    assert_eq!(no_key.send().await.unwrap().status(), 401);
    server.shutdown().await;
}

#[tokio::test]
async fn no_cors_headers_by_default() {
    let server = TestServer::start(config()).await;
    let response = client()
        .request(reqwest::Method::OPTIONS, server.url("/v1/inspect"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let response = client()
        .post(server.url("/v1/inspect"))
        .header("origin", "https://evil.example")
        .header("content-type", "image/jpeg")
        .body(data("person_astronaut.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_form_route_renders_escaped_html() {
    let server = TestServer::start(config()).await;
    let evil = "<script>alert(1)</script>.jpg";
    let form = Form::new()
        .part(
            "image",
            Part::bytes(data("person_hopper.jpg")).file_name(evil),
        )
        .text("task", "art/pencil");
    let response = client()
        .post(server.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.jpg"),
        "{html:.300}"
    );
    assert!(!html.contains("<script>"), "no reflected script");
    assert!(html.contains("<img alt=\"result\" src=\"data:image/png;base64,"));

    let form = Form::new()
        .part(
            "image",
            Part::bytes(data("person_hopper.jpg")).file_name("a.jpg"),
        )
        .text("task", "<img src=x onerror=alert(1)>");
    let response = client()
        .post(server.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<img src=x"));

    let form = Form::new()
        .part("image", Part::bytes(b"garbage".to_vec()).file_name("a.jpg"))
        .text("task", "inspect");
    let response = client()
        .post(server.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    server.shutdown().await;
}
