//! Property: whatever option names and values a client sends, a task route answers 200 or
//! 422 `bad_option` — never 500, never a dropped connection.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use common::*;
use percept_core::testkit;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        (-2.0f64..300.0).prop_map(|v| format!("{v:.3}")),
        (0u32..40).prop_map(|v| v.to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just(String::new()),
        "[a-z%<>\"' ]{0,12}",
        "\\PC{0,8}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "sigma_s",
            "sigma_r",
            "shade_factor",
            "size",
            "dyn_ratio",
            "dynRatio",
            "texture",
            "levels",
            "edge_threshold",
            "format",
            "quality",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,10}",
    ]
}

#[test]
fn random_options_give_200_or_422() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start(config()));
    let client = client();
    let image = testkit::encode_as(&testkit::gradient(48, 32), image::ImageFormat::Png);
    let routes = [
        "inspect",
        "art/pencil",
        "art/pencil-color",
        "art/oil",
        "art/watercolor",
        "art/stylize",
        "art/cartoon",
    ];
    let strategy = (
        prop::sample::select(routes.to_vec()),
        prop::collection::vec((key(), value()), 0..4),
    );
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 300,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let seen = [
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    ];
    runner
        .run(&strategy, |(route, pairs)| {
            let (status, body) = runtime.block_on(async {
                let request = client
                    .post(server.url(&format!("/v1/{route}")))
                    .query(&pairs)
                    .header("content-type", "image/png")
                    .body(image.clone());
                send(request).await
            });
            match status {
                200 => {
                    seen[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                422 => {
                    prop_assert_eq!(error_code(&body), "bad_option");
                    seen[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                other => prop_assert!(false, "{route} {pairs:?} → {other}: {body}"),
            }
            Ok(())
        })
        .unwrap();
    let seen = seen.map(std::sync::atomic::AtomicUsize::into_inner);
    assert!(
        seen[0] > 10 && seen[1] > 10,
        "both outcomes exercised: {seen:?}"
    );
    runtime.block_on(server.shutdown());
}

/// The ranges `/v1/tasks` serves are the ones the tasks enforce: for every numeric option of
/// every task (model tasks included), a step past either bound is 422 `bad_option` naming the
/// option, and on the model-free tasks both bounds themselves are accepted (the model tasks'
/// bounds are checked against their libraries in percept-tasks' unit tests).
#[tokio::test]
async fn the_served_ranges_are_the_enforced_ones() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let client = client();
    let (status, listing) = send(client.get(server.url("/v1/tasks"))).await;
    assert_eq!(status, 200);
    let image = testkit::encode_as(&testkit::gradient(48, 32), image::ImageFormat::Png);
    let post = |task: &str, name: &str, value: serde_json::Value| {
        client
            .post(server.url(&format!("/v1/{task}")))
            .query(&[(name, value.to_string())])
            .header("content-type", "image/png")
            .body(image.clone())
    };
    let mut checked = 0;
    for task in listing["tasks"].as_array().unwrap() {
        let name = task["name"].as_str().unwrap();
        for option in task["options"].as_array().unwrap() {
            let (Some(min), Some(max)) = (option["minimum"].as_f64(), option["maximum"].as_f64())
            else {
                continue;
            };
            let key = option["name"].as_str().unwrap();
            let integer = option["kind"] == "integer";
            let step = if integer { 1.0 } else { 1e-3 };
            let exclusive = option["exclusive_minimum"] == true;
            let number = |v: f64| {
                if integer {
                    serde_json::json!(v as i64)
                } else {
                    serde_json::json!(v)
                }
            };
            let below = if exclusive { min } else { min - step };
            for outside in [below, max + step] {
                let (status, body) = send(post(name, key, number(outside))).await;
                assert_eq!(status, 422, "{name} {key}={outside}: {body}");
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains(key), "{name}: {message}");
            }
            if !percept_tasks::MODEL_TASKS.contains(&name) {
                let lowest = if exclusive { min + step } else { min };
                for inside in [lowest, max] {
                    let (status, body) = send(post(name, key, number(inside))).await;
                    assert_eq!(status, 200, "{name} {key}={inside}: {body}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} numeric options listed");
    server.shutdown().await;
}
