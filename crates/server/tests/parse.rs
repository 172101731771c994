//! Human parsing over HTTP on real photos: people counted, each label where a person would
//! look for it (face inside the detected face, hair around it, clothes below it, the person's
//! own left and right), a label mask that decodes, and no person answered with 0 persons.
//! The trained network is the default parser; `parser=pose-guided` still runs the rules.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use base64::Engine as _;
use common::*;
use serde_json::Value;

fn b64_image(body: &Value, key: &str) -> image::DynamicImage {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body[key].as_str().unwrap())
        .unwrap();
    image::load_from_memory(&bytes).unwrap()
}

fn centre(b: &Value) -> (f64, f64) {
    (
        b["x"].as_f64().unwrap() + b["width"].as_f64().unwrap() / 2.0,
        b["y"].as_f64().unwrap() + b["height"].as_f64().unwrap() / 2.0,
    )
}

fn segment<'a>(body: &'a Value, person: u64, label: &str) -> Option<&'a Value> {
    body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["person"] == person && s["label"] == label)
}

async fn parse(server: &TestServer, name: &str) -> Value {
    parse_with(server, name, "").await
}

async fn parse_with(server: &TestServer, name: &str, query: &str) -> Value {
    let (status, body) = send(
        client()
            .post(server.url(&format!("/v1/parse{query}")))
            .multipart(multipart(data(name), "image")),
    )
    .await;
    assert_eq!(status, 200, "{name}: {body}");
    body
}

/// Labelled pixels of person `i`.
fn person_pixels(body: &Value, i: u64) -> u64 {
    body["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["person"] == i)
        .map(|s| s["pixel_count"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_lie_where_a_person_would_look_for_them() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let faces: Value = serde_json::from_slice(&data("faces.json")).unwrap();
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("parse");
    std::fs::create_dir_all(&out_dir).unwrap();
    for name in [
        "person_astronaut.jpg",
        "person_hopper.jpg",
        "person_hands_drink.jpg",
    ] {
        let body = parse(&server, name).await;
        b64_image(&body, "image")
            .save(out_dir.join(name.replace(".jpg", "_parse.png")))
            .unwrap();
        assert_eq!(body["parser"], "learned:lip_parser", "{name}");
        assert_eq!(body["person_count"], 1, "{name}");
        assert_eq!(body["persons"].as_array().unwrap().len(), 1);
        let face_truth = &faces[name]["faces"][0];
        let (fx, fy) = centre(face_truth);
        let (fw, fh) = (
            face_truth["width"].as_f64().unwrap(),
            face_truth["height"].as_f64().unwrap(),
        );
        // Face pixels: inside the labelled face (with a margin for the box's looseness).
        let face = segment(&body, 0, "face").unwrap_or_else(|| panic!("{name}: no face"));
        let (cx, cy) = centre(&face["bbox"]);
        assert!(
            (cx - fx).abs() < 0.3 * fw && (cy - fy).abs() < 0.3 * fh,
            "{name}: face at {cx},{cy}"
        );
        assert!(
            face["pixel_count"].as_u64().unwrap() as f64 > 0.3 * fw * fh,
            "{name}"
        );
        let conf = face["confidence"].as_f64().unwrap();
        assert!(conf > 0.5 && conf <= 1.0, "{name}: {conf}");
        // Hair: above or around the face, never below the chin.
        if let Some(hair) = segment(&body, 0, "hair") {
            let top = hair["bbox"]["y"].as_f64().unwrap();
            let (_, hy) = centre(&hair["bbox"]);
            assert!(top < fy - 0.3 * fh, "{name}: hair starts at {top}");
            assert!(hy < fy + 0.5 * fh, "{name}: hair centred at {hy}");
        }
        // Clothes: the top is below the face.
        let top = segment(&body, 0, "upper_clothes")
            .unwrap_or_else(|| panic!("{name}: no upper_clothes"));
        let (_, uy) = centre(&top["bbox"]);
        assert!(
            uy > fy + 0.5 * fh,
            "{name}: upper_clothes centred at {uy}, face at {fy}"
        );
        // The mask decodes to the photo's size and holds the labels the segments list.
        let mask = b64_image(&body, "mask").to_luma8();
        let photo = image::load_from_memory(&data(name)).unwrap();
        assert_eq!(mask.dimensions(), (photo.width(), photo.height()));
        let face_px = mask.pixels().filter(|p| p.0[0] == 13).count() as u64;
        assert_eq!(face_px, face["pixel_count"].as_u64().unwrap(), "{name}");
        assert_eq!(body["palette"][13]["label"], "face");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legs_are_the_persons_own_and_groups_are_counted() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    // She faces the camera: her left leg is on the image's right.
    let body = parse(&server, "person_hands_drink.jpg").await;
    if let (Some(left), Some(right)) = (
        segment(&body, 0, "left_leg"),
        segment(&body, 0, "right_leg"),
    ) {
        assert!(centre(&left["bbox"]).0 > centre(&right["bbox"]).0, "{body}");
    }
    let people: Value = serde_json::from_slice(&data("people.json")).unwrap();
    let faces: Value = serde_json::from_slice(&data("faces.json")).unwrap();
    for name in [
        "group3_costumes.jpg",
        "group4_hands.jpg",
        "group5_stairs.jpg",
    ] {
        let expected = people[name]["count"].as_u64().unwrap();
        // The default averages both views of each crop; one view and the rules must count
        // and label everyone too.
        for query in ["", "?mirror=false", "?parser=pose-guided"] {
            let body = parse_with(&server, name, query).await;
            let found = body["person_count"].as_u64().unwrap();
            eprintln!(
                "{name}{query}: {found} of {expected} people, {}",
                body["parser"]
            );
            assert_eq!(
                found, expected,
                "{name}{query}: {found} of {expected} people"
            );
            // Every person has a head and a body labelled: nobody is a stray limb or a
            // chair, and the network labelled everyone the pose stage found.
            for p in body["persons"].as_array().unwrap() {
                let i = p["index"].as_u64().unwrap();
                assert!(
                    segment(&body, i, "face").is_some() || segment(&body, i, "hair").is_some(),
                    "{name}{query}: person {i} has no head"
                );
                let bbox = &p["bbox"];
                let area = bbox["width"].as_u64().unwrap() * bbox["height"].as_u64().unwrap();
                assert!(
                    person_pixels(&body, i) * 10 > area,
                    "{name}{query}: person {i} has {} labelled pixels in a {area} px box",
                    person_pixels(&body, i)
                );
            }
            if query.is_empty() {
                labels_sit_around_the_true_faces(&body, &faces[name]["faces"], name);
            }
        }
    }
    let body = parse(&server, "none_chelsea.png").await;
    assert_eq!(body["person_count"], 0);
    assert!(body["segments"].as_array().unwrap().is_empty());
}

/// The face pixels of the label mask lie on the hand-labelled faces (`truth`, boxes grown by
/// half), most true faces are labelled `face`, and each person's hair starts above and upper
/// clothes sit below their own face.
fn labels_sit_around_the_true_faces(body: &Value, truth: &Value, name: &str) {
    let mask = b64_image(body, "mask").to_luma8();
    let boxes: Vec<(f64, f64, f64, f64)> = truth
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let (cx, cy) = centre(f);
            (
                cx,
                cy,
                f["width"].as_f64().unwrap(),
                f["height"].as_f64().unwrap(),
            )
        })
        .collect();
    let inside = |x: f64, y: f64, grow: f64| {
        boxes
            .iter()
            .position(|&(cx, cy, w, h)| (x - cx).abs() < grow * w && (y - cy).abs() < grow * h)
    };
    let mut on_faces = 0;
    let mut face_px = 0;
    let mut per_face = vec![0u64; boxes.len()];
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[0] != 13 {
            continue;
        }
        let (x, y) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        face_px += 1;
        on_faces += usize::from(inside(x, y, 0.75).is_some());
        if let Some(k) = inside(x, y, 0.5) {
            per_face[k] += 1;
        }
    }
    eprintln!("{name}: {on_faces} of {face_px} face pixels on true faces, per face {per_face:?}");
    assert!(
        on_faces * 10 >= face_px * 8,
        "{name}: {on_faces} of {face_px} face pixels on faces"
    );
    // The hand-drawn boxes run from hairline to chin and ear to ear: a fully labelled face
    // fills a third to two thirds of one. Known limit (MODELS.md): on the dim stairs photo one
    // of five seated faces (a profile in shadow) comes out mostly as hair, so four in five is
    // the bar, not all (the weights before neighbour pasting managed three).
    let labelled = boxes
        .iter()
        .zip(&per_face)
        .filter(|&(&(_, _, w, h), &n)| n as f64 > 0.2 * w * h)
        .count();
    assert!(
        labelled * 5 >= boxes.len() * 4,
        "{name}: {labelled} of {} true faces labelled face ({per_face:?})",
        boxes.len()
    );
    for p in body["persons"].as_array().unwrap() {
        let i = p["index"].as_u64().unwrap();
        let Some(face) = segment(body, i, "face") else {
            continue;
        };
        let (_, fy) = centre(&face["bbox"]);
        if let Some(hair) = segment(body, i, "hair") {
            let top = hair["bbox"]["y"].as_f64().unwrap();
            assert!(
                top < fy,
                "{name}: person {i}'s hair starts at {top}, face at {fy}"
            );
        }
        if let Some(top) = segment(body, i, "upper_clothes") {
            let (_, uy) = centre(&top["bbox"]);
            assert!(
                uy > fy,
                "{name}: person {i}'s upper clothes at {uy}, face at {fy}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_422() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    for query in [
        "max_persons=0",
        "max_persons=2.5",
        "alpha=2",
        "mask=perhaps",
        "labels=lip",
        "parser=magic",
    ] {
        let (status, body) = send(
            client()
                .post(server.url(&format!("/v1/parse?{query}")))
                .multipart(multipart(data("person_astronaut.jpg"), "image")),
        )
        .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(error_code(&body), "bad_option");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compatibility_routes_answer_like_the_old_service() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let image = base64::engine::general_purpose::STANDARD.encode(data("group3_costumes.jpg"));
    let (status, body) = send(
        client()
            .post(server.url("/api/parse"))
            .json(&serde_json::json!({ "image": image })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 0);
    assert_eq!(body["message"], "success");
    assert_eq!(body["data"]["person_count"], 3);
    let segments = body["data"]["segments"].as_array().unwrap();
    assert!(segments.iter().any(|s| s["label"] == "face"));
    for s in segments {
        assert!(s["confidence"].is_number() && s["pixel_count"].as_u64().unwrap() > 0);
    }
    // The coloured mask is served from memory by an absolute URL (the clients of the service
    // percept replaces fetch it as it is), in the palette's colours.
    let url = body["data"]["colored_mask_url"].as_str().unwrap();
    assert!(url.starts_with(&server.url("/api/results/")), "{url}");
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let mask = image::load_from_memory(&response.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(mask.dimensions(), (1024, 683));
    let face_colour = [192u8, 0, 128];
    assert!(mask.pixels().any(|p| p.0 == face_colour));
    let (status, body) = send(client().get(server.url("/api/results/unknown.png"))).await;
    assert_eq!(status, 404, "{body}");
    // /predict is /v1/parse.
    let (status, body) = send(
        client()
            .post(server.url("/predict"))
            .multipart(multipart(data("person_astronaut.jpg"), "image")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["person_count"], 1);
    // Bad input keeps the standard error body.
    let (status, body) = send(
        client()
            .post(server.url("/api/parse"))
            .json(&serde_json::json!({ "image": "bm90IGFuIGltYWdl" })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "invalid_image");
}
