//! The result cache over real HTTP: identical (image, task, options) is a hit with the same
//! body; any difference is a miss; `cache_bytes = 0` turns it off; /metrics counts it.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use common::*;

async fn post(
    client: &reqwest::Client,
    url: &str,
    bytes: Vec<u8>,
) -> (u16, Option<String>, bytes::Bytes) {
    let response = client
        .post(url)
        .header("content-type", "image/jpeg")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string());
    (status, cache, response.bytes().await.unwrap())
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn identical_requests_are_served_from_the_cache() {
    let server = TestServer::start(config()).await;
    let client = client();
    let url = server.url("/v1/art/pencil?shade_factor=0.05");
    let photo = data("person_hopper.jpg");

    let (status, cache, first) = post(&client, &url, photo.clone()).await;
    assert_eq!((status, cache.as_deref()), (200, Some("miss")));
    let (status, cache, second) = post(&client, &url, photo.clone()).await;
    assert_eq!((status, cache.as_deref()), (200, Some("hit")));
    assert_eq!(first, second, "a hit answers the very same body");

    // A different option, a different image, a different task: each a miss.
    let (_, cache, other) = post(
        &client,
        &server.url("/v1/art/pencil?shade_factor=0.06"),
        photo.clone(),
    )
    .await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_ne!(first, other);
    let (_, cache, _) = post(&client, &url, data("person_astronaut.jpg")).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    let (_, cache, _) = post(&client, &server.url("/v1/inspect"), photo.clone()).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    // Option order does not matter: the options are canonicalised.
    let (_, cache, _) = post(
        &client,
        &server.url("/v1/art/pencil?sigma_s=60&shade_factor=0.05"),
        photo.clone(),
    )
    .await;
    assert_eq!(cache.as_deref(), Some("miss"));
    let (_, cache, _) = post(
        &client,
        &server.url("/v1/art/pencil?shade_factor=0.05&sigma_s=60"),
        photo.clone(),
    )
    .await;
    assert_eq!(cache.as_deref(), Some("hit"));

    // Batches and jobs share the cache.
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(photo.clone()))
        .part("image", reqwest::multipart::Part::bytes(photo.clone()));
    let response = client
        .post(server.url("/v1/batch/art/pencil?shade_factor=0.05"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-cache"], "hit");
    let batch: serde_json::Value = response.json().await.unwrap();
    let single: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(batch["results"][1]["result"], single);
    let (status, accepted) = send(
        client
            .post(server.url("/v1/jobs/art/pencil?shade_factor=0.05"))
            .header("content-type", "image/jpeg")
            .body(photo.clone()),
    )
    .await;
    assert_eq!(status, 202);
    let id = accepted["id"].as_str().unwrap();
    let (status, result) = send(client.get(server.url(&format!("/v1/jobs/{id}/result")))).await;
    assert_eq!(status, 200, "a cached job is done at once");
    assert_eq!(result, single);

    let metrics = metrics_text(&server).await;
    assert_eq!(metric(&metrics, "percept_cache_hits_total"), 5.0);
    assert_eq!(metric(&metrics, "percept_cache_misses_total"), 5.0);
    assert!(metric(&metrics, "percept_cache_bytes") > 10_000.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_zero_budget_turns_the_cache_off() {
    let server = TestServer::start(Config {
        cache_bytes: 0,
        ..config()
    })
    .await;
    let client = client();
    let url = server.url("/v1/inspect");
    for _ in 0..2 {
        let (status, cache, _) = post(&client, &url, data("person_hopper.jpg")).await;
        assert_eq!((status, cache), (200, None));
    }
    let metrics = metrics_text(&server).await;
    assert_eq!(metric(&metrics, "percept_cache_hits_total"), 0.0);
    assert_eq!(metric(&metrics, "percept_cache_bytes"), 0.0);
    server.shutdown().await;
}
