//! `GET /v1/stream/{task}` over a real WebSocket on loopback: holistic answers every frame
//! sent one at a time with the person's points and the drawn frame, following the person from
//! frame to frame; a burst faster than the server runs is answered about its newest frame with
//! the skipped ones counted; a bad frame gets an error and the stream goes on; a bad option is
//! refused before the upgrade.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message as JSON (skipping pings).
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Binary(_) => panic!("a frame where a text message was due"),
            _ => continue,
        }
    }
}

/// Sends `photo` and returns its answer's JSON (its frame read and dropped).
async fn next_json_after(socket: &mut Socket, photo: &[u8]) -> Value {
    socket
        .send(Message::Binary(photo.to_vec().into()))
        .await
        .unwrap();
    let json = next_json(socket).await;
    next_frame(socket).await;
    json
}

async fn next_frame(socket: &mut Socket) -> image::RgbImage {
    match socket.next().await.unwrap().unwrap() {
        Message::Binary(jpeg) => image::load_from_memory(&jpeg).unwrap().to_rgb8(),
        other => panic!("expected the processed frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holistic_streams_every_frame_and_drops_a_backlog() {
    let server = TestServer::with_tasks(config(), model_registry()).await;
    let url = server
        .url("/v1/stream/holistic")
        .replace("http://", "ws://");
    let (mut socket, _) = connect_async(format!("{url}?max_people=1")).await.unwrap();
    let photo = data("person_astronaut.jpg");

    // One at a time: every frame answered, in order, with the drawn frame after its JSON.
    for i in 0..3u64 {
        socket
            .send(Message::Binary(photo.clone().into()))
            .await
            .unwrap();
        let json = next_json(&mut socket).await;
        assert_eq!(json["frame"], i, "{json}");
        assert_eq!(json["dropped"], 0);
        assert_eq!(json["person_count"], 1, "{json}");
        assert_eq!(json["pose"].as_array().unwrap().len(), 33);
        let seed = if i == 0 { "pose" } else { "tracked" };
        assert_eq!(json["people"][0]["seed"], seed, "frame {i}");
        assert_eq!(json["image"], true);
        assert_eq!(next_frame(&mut socket).await.dimensions(), (512, 512));
    }

    // A bad frame: an error for it, and the stream carries on.
    socket
        .send(Message::Binary(vec![0xFF, 0xD8, 0xFF].into()))
        .await
        .unwrap();
    let error = next_json(&mut socket).await;
    assert_eq!(error["error"]["code"], "invalid_image", "{error}");
    assert_eq!(error["frame"], 3);

    // A burst of 12 frames: the server skips what it cannot run, and the last answer is about
    // the last frame.
    for _ in 0..12 {
        socket
            .send(Message::Binary(photo.clone().into()))
            .await
            .unwrap();
    }
    let mut answered = 0;
    let last = loop {
        let json = next_json(&mut socket).await;
        next_frame(&mut socket).await;
        answered += 1;
        if json["frame"] == 15 {
            break json;
        }
    };
    let dropped = last["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "a burst of 12 was run whole: {last}");
    assert_eq!(
        answered + dropped,
        12,
        "answered {answered}, dropped {dropped}"
    );
    socket.close(None).await.unwrap();

    // A bad option and an unknown task are refused before the upgrade.
    for path in ["/v1/stream/holistic?max_people=99", "/v1/stream/juggle"] {
        let url = server.url(path).replace("http://", "ws://");
        let refused = connect_async(url).await.err().unwrap();
        let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
            panic!("{path}: {refused}");
        };
        assert!(response.status().is_client_error(), "{path}: {response:?}");
    }

    // Tasks that pair frames or look ahead on files answer every live frame at once, so a
    // client with one frame in flight is never left waiting.
    for (task, field) in [("anonymize", "count"), ("art/pencil", "width")] {
        let url = server
            .url(&format!("/v1/stream/{task}"))
            .replace("http://", "ws://");
        let (mut socket, _) = connect_async(url).await.unwrap();
        for i in 0..2u64 {
            socket
                .send(Message::Binary(photo.clone().into()))
                .await
                .unwrap();
            let json = next_json(&mut socket).await;
            assert_eq!(json["frame"], i, "{task}: {json}");
            assert!(json[field].is_number(), "{task}: {json}");
            next_frame(&mut socket).await;
        }
        if task == "anonymize" {
            let json = next_json_after(&mut socket, &photo).await;
            assert_eq!(json["count"], 1, "the astronaut's face: {json}");
            assert_eq!(json["hidden"][0]["detected"], true);
        }
        socket.close(None).await.unwrap();
    }

    // Streams at once are bounded by the workers (2 here): a third is refused with 429.
    let url = server
        .url("/v1/stream/art/pencil")
        .replace("http://", "ws://");
    let mut open = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while open.len() < 2 {
        // The first stream's place is given back once its socket has closed on the server.
        match connect_async(url.as_str()).await {
            Ok((socket, _)) => open.push(socket),
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let refused = connect_async(url.as_str()).await.err().unwrap();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("{refused}");
    };
    assert_eq!(response.status(), 429);
    for mut socket in open {
        socket.close(None).await.unwrap();
    }
    server.shutdown().await;
}

/// A server with an API key takes it, from a browser that cannot set headers on a WebSocket,
/// as the `percept.bearer.<hex>` subprotocol, answers with `percept` (never echoing the key),
/// and refuses the upgrade without the key or with a wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_takes_the_api_key_as_a_subprotocol() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    const KEY: &str = "stream-key-0123456789abcdef";
    let server = TestServer::with_tasks(
        Config {
            api_key: Some(percept_server::Secret::new(KEY)),
            ..config()
        },
        model_registry(),
    )
    .await;
    let url = server
        .url("/v1/stream/holistic?max_people=1")
        .replace("http://", "ws://");
    let hex = |key: &str| key.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let offering = |protocols: Option<String>| {
        let mut request = url.as_str().into_client_request().unwrap();
        if let Some(protocols) = protocols {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(&protocols).unwrap(),
            );
        }
        request
    };
    for refused in [
        None,
        Some(format!(
            "percept, percept.bearer.{}",
            hex("wrong-key-0123456789abcdef")
        )),
        Some(format!("percept, percept.bearer.{KEY}")), // the key, not its hex
    ] {
        match connect_async(offering(refused.clone())).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{refused:?}");
            }
            other => panic!("{refused:?}: expected a 401, got {other:?}"),
        }
    }
    let (mut socket, response) = connect_async(offering(Some(format!(
        "percept, percept.bearer.{}",
        hex(KEY)
    ))))
    .await
    .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "percept");
    let json = next_json_after(&mut socket, &data("person_astronaut.jpg")).await;
    assert_eq!(json["person_count"], 1, "{json}");
    socket.close(None).await.unwrap();
    server.shutdown().await;
}
