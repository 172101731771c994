//! Holistic tracking over HTTP on real photos: 543 landmarks where everything is visible, the
//! skeleton on the person, an annotated image that differs from the photo, and a photo without
//! a person answered with empty parts, not an error.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use base64::Engine as _;
use common::*;

fn decode_png(body: &serde_json::Value) -> image::RgbImage {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body["image"].as_str().unwrap())
        .unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landmarks_lie_on_the_person_and_are_drawn() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let client = client();
    let people: serde_json::Value = serde_json::from_slice(&data("people.json")).unwrap();
    // group5_stairs: the followed person's left hand is visible, so all four parts come back.
    let (status, body) = send(
        client
            .post(server.url("/v1/holistic"))
            .multipart(multipart(data("group5_stairs.jpg"), "image")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pose"].as_array().unwrap().len(), 33);
    assert_eq!(body["face"].as_array().unwrap().len(), 468);
    assert_eq!(body["left_hand"].as_array().unwrap().len(), 21);
    let count = body["landmark_count"].as_u64().unwrap();
    assert!(count >= 33 + 468 + 21, "{count}");
    assert_eq!(body["parts"]["pose"]["present"], true);

    // The followed person's visible pose points lie inside one labelled person box.
    let boxes = people["group5_stairs.jpg"]["people"].as_array().unwrap();
    let visible: Vec<(f64, f64)> = body["pose"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["visibility"].as_f64().unwrap() > 0.5 && p["presence"].as_f64().unwrap() > 0.5
        })
        .map(|p| (p["x"].as_f64().unwrap(), p["y"].as_f64().unwrap()))
        .collect();
    assert!(visible.len() >= 15, "{}", visible.len());
    let holds = boxes.iter().any(|b| {
        let (x, y, w, h) = (
            b["x"].as_f64().unwrap() - 20.0,
            b["y"].as_f64().unwrap() - 20.0,
            b["width"].as_f64().unwrap() + 40.0,
            b["height"].as_f64().unwrap() + 40.0,
        );
        visible
            .iter()
            .all(|&(px, py)| px >= x && px <= x + w && py >= y && py <= y + h)
    });
    assert!(
        holds,
        "visible pose points are not inside any labelled person"
    );

    // The drawing changed pixels along the skeleton and left far-away pixels alone.
    let original = image::load_from_memory(&data("group5_stairs.jpg"))
        .unwrap()
        .to_rgb8();
    let drawn = decode_png(&body);
    assert_eq!(drawn.dimensions(), original.dimensions());
    let changed = drawn
        .pixels()
        .zip(original.pixels())
        .filter(|(a, b)| a.0.iter().zip(b.0).any(|(x, y)| x.abs_diff(y) > 40))
        .count();
    let total = (original.width() * original.height()) as usize;
    assert!(
        changed > total / 500 && changed < total / 5,
        "{changed} of {total} pixels changed"
    );
    // Everyone is tracked and drawn: each person's box holds drawn pixels.
    let everyone = body["people"].as_array().unwrap();
    assert_eq!(
        body["person_count"].as_u64().unwrap() as usize,
        everyone.len()
    );
    assert!(everyone.len() >= 4, "{} people", everyone.len());
    assert_eq!(
        everyone[0]["pose"], body["pose"],
        "people[0] is the top-level person"
    );
    for p in everyone {
        assert_eq!(p["pose"].as_array().unwrap().len(), 33, "{p}");
        let b = &p["bbox"];
        let (x0, y0) = (
            b["x"].as_u64().unwrap() as u32,
            b["y"].as_u64().unwrap() as u32,
        );
        let (x1, y1) = (
            x0 + b["width"].as_u64().unwrap() as u32,
            y0 + b["height"].as_u64().unwrap() as u32,
        );
        let drawn_here = (y0..y1.min(original.height()))
            .flat_map(|y| (x0..x1.min(original.width())).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let (a, o) = (drawn.get_pixel(x, y), original.get_pixel(x, y));
                a.0.iter().zip(o.0).any(|(p, q)| p.abs_diff(q) > 40)
            })
            .count();
        assert!(
            drawn_here > 200,
            "person {}: {drawn_here} drawn pixels",
            p["index"]
        );
    }
    let nose = &body["pose"][0];
    let (nx, ny) = (
        nose["x"].as_f64().unwrap() as u32,
        nose["y"].as_f64().unwrap() as u32,
    );
    assert!(nx < original.width() && ny < original.height());

    // JSON only, without the drawing.
    let (status, body) = send(
        client
            .post(server.url("/v1/holistic?draw=false&face=false&hands=false"))
            .multipart(multipart(data("person_astronaut.jpg"), "image")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("image").is_none() || body["image"].is_null(),
        "{body}"
    );
    assert_eq!(body["pose"].as_array().unwrap().len(), 33);
    assert!(body["face"].as_array().unwrap().is_empty());
    assert_eq!(body["landmark_count"], 33);

    // One person at most: MediaPipe's answer.
    let (status, body) = send(
        client
            .post(server.url("/v1/holistic?max_people=1&draw=false"))
            .multipart(multipart(data("group5_stairs.jpg"), "image")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["person_count"], 1);
    assert_eq!(body["people"].as_array().unwrap().len(), 1);

    // BlazePose lite: the same person, other numbers.
    let (status, lite) = send(
        client
            .post(server.url("/v1/holistic?max_people=1&draw=false&model_complexity=0"))
            .multipart(multipart(data("group5_stairs.jpg"), "image")),
    )
    .await;
    assert_eq!(status, 200, "{lite}");
    assert_eq!(lite["pose"].as_array().unwrap().len(), 33);
    assert_ne!(
        lite["pose"], body["pose"],
        "model_complexity=0 ran the full model"
    );
    let (a, b) = (&lite["pose"][0], &body["pose"][0]);
    let d = (a["x"].as_f64().unwrap() - b["x"].as_f64().unwrap())
        .hypot(a["y"].as_f64().unwrap() - b["y"].as_f64().unwrap());
    assert!(d < 30.0, "lite's nose {d} px from full's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_person_is_an_empty_answer_and_bad_options_are_422() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let client = client();
    let (status, body) = send(
        client
            .post(server.url("/v1/holistic"))
            .multipart(multipart(data("none_chelsea.png"), "image")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["landmark_count"], 0);
    for part in ["pose", "face", "left_hand", "right_hand"] {
        assert!(body[part].as_array().unwrap().is_empty(), "{part}");
        assert_eq!(body["parts"][part]["present"], false);
    }
    assert_eq!(body["person_count"], 0);
    assert!(body["people"].as_array().unwrap().is_empty());
    for query in [
        "min_score=0",
        "hands=maybe",
        "colour=red",
        "max_people=0",
        "max_people=2.5",
        "max_people=21",
        "model_complexity=2",
        "model_complexity=0.5",
        "refine_face_landmarks=yes",
        "enable_segmentation=2",
    ] {
        let (status, body) = send(
            client
                .post(server.url(&format!("/v1/holistic?{query}")))
                .multipart(multipart(data("person_astronaut.jpg"), "image")),
        )
        .await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(error_code(&body), "bad_option");
    }
    // The form route answers with a page holding the annotated image.
    let form = reqwest::multipart::Form::new()
        .text("task", "holistic")
        .part(
            "image",
            reqwest::multipart::Part::bytes(data("person_hopper.jpg")).file_name("p.jpg"),
        );
    let response = client
        .post(server.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("data:image/"), "no image in the page");
    assert!(page.contains("holistic"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mediapipes_refine_and_segmentation_options_are_honoured() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let client = client();
    let (status, body) =
        send(
            client
                .post(server.url(
                    "/v1/holistic?refine_face_landmarks=true&enable_segmentation=true&draw=false",
                ))
                .multipart(multipart(data("person_astronaut.jpg"), "image")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // 468 mesh points and both irises, inside the face's own box.
    let face = body["face"].as_array().unwrap();
    assert_eq!(face.len(), 478);
    let xs: Vec<f64> = face[..468]
        .iter()
        .map(|p| p["x"].as_f64().unwrap())
        .collect();
    let ys: Vec<f64> = face[..468]
        .iter()
        .map(|p| p["y"].as_f64().unwrap())
        .collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::MAX, f64::min),
        xs.iter().copied().fold(f64::MIN, f64::max),
    );
    let (y0, y1) = (
        ys.iter().copied().fold(f64::MAX, f64::min),
        ys.iter().copied().fold(f64::MIN, f64::max),
    );
    for iris in &face[468..] {
        let (x, y) = (iris["x"].as_f64().unwrap(), iris["y"].as_f64().unwrap());
        assert!(
            x > x0 && x < x1 && y > y0 && y < y1,
            "iris point ({x}, {y}) outside the face"
        );
    }
    assert_eq!(body["people"][0]["face"].as_array().unwrap().len(), 478);
    // The mask: a greyscale PNG the photo's size, the person's pixels bright, under the nose.
    let png = base64::engine::general_purpose::STANDARD
        .decode(body["segmentation_mask"].as_str().unwrap())
        .unwrap();
    let mask = image::load_from_memory(&png).unwrap();
    assert_eq!(mask.color(), image::ColorType::L8);
    let mask = mask.to_luma8();
    assert_eq!(
        (u64::from(mask.width()), u64::from(mask.height())),
        (
            body["width"].as_u64().unwrap(),
            body["height"].as_u64().unwrap()
        )
    );
    let nose = &body["pose"][0];
    let (nx, ny) = (
        nose["x"].as_f64().unwrap() as u32,
        nose["y"].as_f64().unwrap() as u32,
    );
    assert!(
        mask.get_pixel(nx, ny).0[0] > 200,
        "the nose is not in the mask"
    );
    let person = mask.pixels().filter(|p| p.0[0] >= 128).count() as f64;
    let share = person / f64::from(mask.width() * mask.height());
    assert!(
        (0.05..0.9).contains(&share),
        "person on {share:.2} of the photo"
    );
    assert!(body.get("image").is_none());

    // Without the options: 468 points and no mask, as before.
    let (status, body) = send(
        client
            .post(server.url("/v1/holistic?draw=false"))
            .multipart(multipart(data("person_astronaut.jpg"), "image")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["face"].as_array().unwrap().len(), 468);
    assert!(body.get("segmentation_mask").is_none());
}
