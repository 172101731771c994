//! Face privacy over HTTP on real photos with hand-labelled faces: every face found, its
//! pixels changed, pixels far from faces untouched, metadata gone, the compatibility route.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use common::*;

fn registry() -> percept_server::TaskRegistry {
    model_registry()
}

#[derive(Clone, Copy, Debug)]
struct Box2 {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn boxes(value: &serde_json::Value) -> Vec<Box2> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let b = b.get("bbox").unwrap_or(b);
            Box2 {
                x: b["x"].as_f64().unwrap(),
                y: b["y"].as_f64().unwrap(),
                w: b["width"].as_f64().unwrap(),
                h: b["height"].as_f64().unwrap(),
            }
        })
        .collect()
}

fn iou(a: Box2, b: Box2) -> f64 {
    let ix = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
    let iy = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
    let inter = ix.max(0.0) * iy.max(0.0);
    inter / (a.w * a.h + b.w * b.h - inter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_labelled_face_is_found_and_hidden() {
    let server = TestServer::with_tasks(config(), registry()).await;
    let client = client();
    let labels: serde_json::Value = serde_json::from_slice(&data("faces.json")).unwrap();
    for (name, facts) in labels.as_object().unwrap() {
        let truth = boxes(&facts["faces"]);
        let (status, body) = send(
            client
                .post(server.url("/v1/anonymize"))
                .multipart(multipart(data(name), "image")),
        )
        .await;
        assert_eq!(status, 200, "{name}: {body}");
        let found = boxes(&body["faces"]);
        assert_eq!(body["count"].as_u64().unwrap() as usize, found.len());
        for face in &truth {
            let best = found.iter().map(|f| iou(*face, *f)).fold(0.0, f64::max);
            assert!(
                best >= 0.3,
                "{name}: labelled face {face:?} not found (best IoU {best:.2})"
            );
        }
        for f in &found {
            let best = truth.iter().map(|t| iou(*t, *f)).fold(0.0, f64::max);
            assert!(best >= 0.3, "{name}: false positive {f:?}");
        }

        // The anonymised PNG: faces changed, far pixels identical.
        let response = client
            .post(server.url("/v1/anonymize"))
            .header("accept", "image/png")
            .multipart(multipart(data(name), "image"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], "image/png");
        let out = image::load_from_memory(&response.bytes().await.unwrap())
            .unwrap()
            .to_rgb8();
        let original = image::load_from_memory(&data(name)).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), original.dimensions());
        for face in &truth {
            let (mut diff, mut n) = (0u64, 0u64);
            // The central half of the face: the mask is feathered at its rim.
            let (x0, y0) = (
                (face.x + face.w * 0.25) as u32,
                (face.y + face.h * 0.25) as u32,
            );
            for y in y0..(y0 + (face.h * 0.5) as u32).min(out.height()) {
                for x in x0..(x0 + (face.w * 0.5) as u32).min(out.width()) {
                    let (a, b) = (original.get_pixel(x, y), out.get_pixel(x, y));
                    diff +=
                        a.0.iter()
                            .zip(b.0)
                            .map(|(p, q)| u64::from(p.abs_diff(q)))
                            .sum::<u64>();
                    n += 3;
                }
            }
            let mean = diff as f64 / n.max(1) as f64;
            assert!(
                mean > 4.0,
                "{name}: face {face:?} barely changed (mean diff {mean:.1})"
            );
        }
        let near_a_face = |x: u32, y: u32| {
            found.iter().any(|f| {
                let (cx, cy) = (f.x + f.w / 2.0, f.y + f.h / 2.0);
                (f64::from(x) - cx).abs() < f.w * 1.5 && (f64::from(y) - cy).abs() < f.h * 1.5
            })
        };
        let changed_far = (0..out.height())
            .step_by(3)
            .flat_map(|y| (0..out.width()).step_by(3).map(move |x| (x, y)))
            .filter(|&(x, y)| !near_a_face(x, y) && original.get_pixel(x, y) != out.get_pixel(x, y))
            .count();
        assert_eq!(changed_far, 0, "{name}: pixels far from any face changed");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn modes_options_metadata_and_the_compatibility_route() {
    let server = TestServer::with_tasks(config(), registry()).await;
    let client = client();
    let photo = data("group4_small_faces.jpg");
    for mode in ["blur", "pixelate", "box"] {
        let (status, body) = send(
            client
                .post(server.url(&format!(
                    "/v1/anonymize?mode={mode}&strength=2&draw_boxes=true"
                )))
                .multipart(multipart(photo.clone(), "image")),
        )
        .await;
        assert_eq!(
            (status, body["count"].as_u64()),
            (200, Some(4)),
            "{mode}: {body}"
        );
    }
    for query in [
        "mode=smudge",
        "strength=0",
        "strength=11",
        "min_score=2",
        "box_scale=9",
        "colour=red",
    ] {
        let (status, body) = send(
            client
                .post(server.url(&format!("/v1/anonymize?{query}")))
                .multipart(multipart(photo.clone(), "image")),
        )
        .await;
        assert_eq!((status, error_code(&body)), (422, "bad_option"), "{query}");
    }
    // EXIF (with a GPS-like marker) in, none out.
    let img = image::load_from_memory(&photo).unwrap().to_rgb8();
    let with_exif = percept_core::testkit::jpeg_with_orientation(&img, 1);
    let response = client
        .post(server.url("/process"))
        .multipart(multipart(with_exif, "image"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let jpeg = response.bytes().await.unwrap();
    assert!(!jpeg.windows(4).any(|w| w == b"Exif"), "metadata stripped");
    assert_eq!(image::load_from_memory(&jpeg).unwrap().width(), 256);

    let (status, body) = send(
        client
            .post(server.url("/v1/anonymize"))
            .multipart(multipart(data("none_chelsea.png"), "image")),
    )
    .await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(0)));
    server.shutdown().await;
}
