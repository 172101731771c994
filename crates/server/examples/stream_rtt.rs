//! Round trip of the live stream on loopback: sends a photo scaled to 640×480 as JPEG over
//! `/v1/stream/{task}`, one frame at a time, and times each until its answer (JSON and, for
//! tasks that draw, the processed frame) is back.
//!
//!     cargo run --release -p percept-server --example stream_rtt -- \
//!         ws://127.0.0.1:8080/v1/stream/holistic tests/data/person_hands_drink.jpg 100
#![allow(clippy::unwrap_used)] // a measuring tool: a failure should stop it with its cause

use std::time::Instant;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, photo) = (&args[1], &args[2]);
    let frames: usize = args.get(3).map_or(100, |n| n.parse().unwrap());
    let image = image::open(photo).unwrap().to_rgb8();
    let image = image::imageops::resize(&image, 640, 480, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&image)
        .unwrap();
    let (mut socket, _) = connect_async(url.as_str()).await.unwrap();
    let mut times = Vec::with_capacity(frames);
    let mut compute = Vec::with_capacity(frames);
    for _ in 0..frames {
        let start = Instant::now();
        socket
            .send(Message::Binary(jpeg.clone().into()))
            .await
            .unwrap();
        let json: serde_json::Value = loop {
            if let Message::Text(text) = socket.next().await.unwrap().unwrap() {
                break serde_json::from_str(&text).unwrap();
            }
        };
        if json["image"] == true {
            socket.next().await.unwrap().unwrap();
        }
        times.push(start.elapsed().as_secs_f64() * 1e3);
        compute.push(json["compute_ms"].as_f64().unwrap_or(f64::NAN));
    }
    // The first frame runs the detectors; the rest follow the person.
    let first = times[0];
    times.remove(0);
    compute.remove(0);
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let (times, compute) = (sorted(times), sorted(compute));
    let at = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{{\"frames\": {frames}, \"first_ms\": {first:.1}, \"median_ms\": {:.1}, \"p90_ms\": {:.1}, \"max_ms\": {:.1}, \"median_compute_ms\": {:.1}}}",
        at(&times, 0.5),
        at(&times, 0.9),
        at(&times, 1.0),
        at(&compute, 0.5)
    );
    socket.close(None).await.unwrap();
}
