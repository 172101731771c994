//! The HTTP surface over a real loopback socket: request shapes, results on real photos,
//! health, metrics, OpenAPI, timing headers.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use base64::Engine;
use common::*;
use percept_core::testkit;
use serde_json::json;

#[tokio::test]
async fn inspect_accepts_multipart_raw_and_json_alike() {
    let server = TestServer::start(config()).await;
    let client = client();
    let photo = data("group4_hands.jpg");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&photo);
    let requests = [
        client
            .post(server.url("/v1/inspect"))
            .multipart(multipart(photo.clone(), "image")),
        client
            .post(server.url("/v1/inspect"))
            .header("content-type", "image/jpeg")
            .body(photo.clone()),
        client
            .post(server.url("/v1/inspect"))
            .json(&json!({ "image": b64 })),
        client
            .post(server.url("/v1/inspect"))
            .json(&json!({ "image": format!("data:image/jpeg;base64,{b64}") })),
    ];
    let mut bodies = Vec::new();
    for request in requests {
        let (status, body) = send(request).await;
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    assert_eq!(bodies[0]["width"], 1024);
    assert_eq!(bodies[0]["height"], 772);
    assert_eq!(bodies[0]["format"], "jpeg");
    // A real photo's mean colour is neither black nor white.
    let mean = bodies[0]["mean_rgb"][0].as_f64().unwrap();
    assert!((20.0..235.0).contains(&mean), "{mean}");
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn every_real_photo_inspects_with_its_true_size() {
    let server = TestServer::start(config()).await;
    let client = client();
    let faces: serde_json::Value = serde_json::from_slice(&data("faces.json")).unwrap();
    for (name, facts) in faces.as_object().unwrap() {
        let (status, body) = send(
            client
                .post(server.url("/v1/inspect"))
                .multipart(multipart(data(name), "image")),
        )
        .await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["width"], facts["width"], "{name}");
        assert_eq!(body["height"], facts["height"], "{name}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn exif_orientation_is_reported_and_applied() {
    let server = TestServer::start(config()).await;
    let img = testkit::gradient(60, 20);
    let bytes = testkit::jpeg_with_orientation(&img, 8);
    let (status, body) = send(
        client()
            .post(server.url("/v1/inspect"))
            .header("content-type", "image/jpeg")
            .body(bytes),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(20), Some(60))
    );
    assert_eq!(body["orientation"], 8);
    assert_eq!(body["exif"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn timing_headers_and_metrics() {
    let server = TestServer::start(config()).await;
    let client = client();
    let response = client
        .post(server.url("/v1/inspect"))
        .multipart(multipart(data("person_astronaut.jpg"), "image"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for header in ["x-queue-time", "x-compute-time", "x-total-time"] {
        let value: f64 = response.headers()[header]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(value >= 0.0, "{header}");
    }
    let timing = response.headers()["server-timing"].to_str().unwrap();
    assert!(
        timing.contains("decode;dur=") && timing.contains("queue;dur="),
        "{timing}"
    );

    let metrics = metrics_text(&server).await;
    for needle in [
        "percept_requests_total{task=\"inspect\",status=\"200\"} 1",
        "percept_request_duration_seconds_count{task=\"inspect\"} 1",
        "percept_stage_duration_seconds_count{task=\"inspect\",stage=\"decode\"} 1",
        "percept_stage_duration_seconds_count{task=\"inspect\",stage=\"queue\"} 1",
        "percept_queue_depth 0",
        "percept_in_flight 0",
        "percept_workers 2",
        "percept_build_info{",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let rss_line = metrics
        .lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))
        .expect("rss metric");
    let rss: f64 = rss_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(rss > 1e6, "{rss_line}");

    // The format and its content type follow `Accept`: Prometheus asks for OpenMetrics.
    let scrape = |accept: &'static str| {
        let request = client.get(server.url("/metrics"));
        async move {
            let response = request.header("accept", accept).send().await.unwrap();
            let kind = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            (kind, response.text().await.unwrap())
        }
    };
    let (kind, body) =
        scrape("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4")
            .await;
    assert!(
        kind.starts_with("application/openmetrics-text; version=1.0.0"),
        "{kind}"
    );
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(body.contains("# TYPE percept_requests counter"), "{body}");
    let (kind, body) = scrape("*/*").await;
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!body.contains("# EOF"), "{body}");
    assert!(
        body.contains("# TYPE percept_requests_total counter"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE process_cpu_seconds_total counter"),
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn health_readiness_models_openapi_and_page() {
    let server = TestServer::start(config()).await;
    let client = client();
    for path in ["/healthz", "/health"] {
        let (status, body) = send(client.get(server.url(path))).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("ok")),
            "{path}"
        );
    }
    let (status, body) = send(client.get(server.url("/readyz"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["model_loaded"], true);
    let (status, body) = send(client.get(server.url("/v1/models"))).await;
    assert_eq!(status, 200);
    assert!(body["models"].is_array());
    let (status, doc) = send(client.get(server.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(
        doc["paths"]["/v1/inspect"]["post"]["requestBody"].is_object(),
        "{doc}"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // A choice option documents its values as an enum (the page turns it into a menu).
    let format = doc["paths"]["/v1/inspect"]["post"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "format"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        format["schema"]["enum"],
        json!(["png", "jpeg", "jpg"]),
        "{format}"
    );
    assert_eq!(format["schema"]["default"], "png");
    // A numeric option carries its bounds and default from the same table entry.
    let strength = doc["paths"]["/v1/art/pencil"]["post"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "sigma_s"))
        .cloned()
        .unwrap_or_default();
    let schema = &strength["schema"];
    assert_eq!(schema["type"], "number", "{strength}");
    assert_eq!(schema["exclusiveMinimum"].as_f64(), Some(0.0), "{strength}");
    assert_eq!(schema["maximum"].as_f64(), Some(200.0), "{strength}");
    assert_eq!(schema["default"].as_f64(), Some(60.0), "{strength}");
    assert!(schema.get("minimum").is_none(), "{strength}");
    let page = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<title>percept</title>")
    );
    let (status, body) = send(client.get(server.url("/v2/nothing"))).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = send(client.post(server.url("/v1/no-such-task")).body("x")).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    let (status, body) = send(client.get(server.url("/v1/inspect"))).await;
    assert_eq!((status, error_code(&body)), (405, "method_not_allowed"));
    server.shutdown().await;
}
