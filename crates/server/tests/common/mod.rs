//! Starts a real percept server on a loopback port for a test.
#![allow(dead_code)] // each test binary uses a different subset
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test

use std::path::PathBuf;
use std::sync::Arc;

pub use percept_server::Config;
use percept_server::{AppState, TaskRegistry};
use tokio::sync::oneshot;

pub struct TestServer {
    pub url: String,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::with_tasks(config, percept_tasks::default_registry()).await
    }

    pub async fn with_tasks(config: Config, tasks: TaskRegistry) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(config, tasks, Vec::new(), "none");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(percept_server::serve(listener, Arc::clone(&state), async {
            let _ = stopped.await;
        }));
        Self {
            url,
            state,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Triggers graceful shutdown and waits for the server to drain.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }

    pub fn trigger_shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.handle.take().unwrap()
    }
}

pub fn config() -> Config {
    Config {
        workers: 2,
        queue: 8,
        ..Config::default()
    }
}

pub fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub fn multipart(bytes: Vec<u8>, field: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        field.to_string(),
        reqwest::multipart::Part::bytes(bytes).file_name("photo.jpg"),
    )
}

/// Sends `request` and returns (status, parsed JSON body).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:.200}"));
    (status, json)
}

pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Every task, with the models loaded once per test binary.
pub fn model_registry() -> TaskRegistry {
    static MODELS: std::sync::OnceLock<percept_vision::Models> = std::sync::OnceLock::new();
    let models = MODELS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");
        percept_vision::Models::load(dir, &percept_tasks::model_names()).unwrap()
    });
    percept_tasks::registry_with_models(models).unwrap()
}

/// The server's `/metrics` text.
pub async fn metrics_text(server: &TestServer) -> String {
    client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Posts a photo of tests/data as the multipart `image` field to `route`.
pub async fn post_photo(
    client: &reqwest::Client,
    server: &TestServer,
    route: &str,
    photo: &str,
) -> (u16, serde_json::Value) {
    send(
        client
            .post(server.url(route))
            .multipart(multipart(data(photo), "image")),
    )
    .await
}
