//! `POST /upload`: the form route of the Python services percept replaces — a multipart form
//! with `image` and `task` answered by an HTML page showing the result.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

use crate::ApiError;
use crate::request::{prepare, read_request};
use crate::state::AppState;

/// Escapes text for HTML element content and attribute values. Everything a client sent
/// (file names, option values echoed in messages) passes through here before reaching the page.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         img{{max-width:100%}}pre{{background:#f3f4f8;padding:.8rem;overflow:auto}}.error{{color:#b3261e}}</style>\
         </head><body><h1>{}</h1>{body}<p><a href=\"/\">Back</a></p></body></html>",
        escape_html(title),
        escape_html(title)
    )
}

fn error_page(error: &ApiError) -> Response {
    let body = format!(
        "<p class=\"error\">{} <code>{}</code></p>",
        escape_html(&error.message),
        escape_html(error.code.as_str())
    );
    (error.status(), Html(page("percept: error", &body))).into_response()
}

/// The handler.
pub(crate) async fn upload(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let arrived = Instant::now();
    let outcome = run(&state, request, arrived).await;
    let response = match outcome {
        Ok(html) => (StatusCode::OK, Html(html)).into_response(),
        Err(error) => error_page(&error),
    };
    state
        .runner
        .metrics
        .observe_request("upload", response.status().as_u16(), arrived.elapsed());
    response
}

async fn run(
    state: &Arc<AppState>,
    request: Request,
    arrived: Instant,
) -> Result<String, ApiError> {
    let deadline = arrived + state.config.deadline();
    let (_, mut input) = read_request(state, request, deadline).await?;
    let name = match input.options.take("task") {
        None => "parse".to_string(),
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(ApiError::bad_option(format!(
                "`task` must be a name, got {other}"
            )));
        }
    };
    let task = state.runner.task(&name)?;
    if input.images.len() != 1 {
        return Err(ApiError::bad_option(format!(
            "the form takes one image, got {}",
            input.images.len()
        )));
    }
    let filename = input
        .images
        .first()
        .and_then(|image| image.filename.clone())
        .unwrap_or_else(|| "upload".into());
    let (work, mut render) = prepare(state, task.as_ref(), input, None)?.single("")?;
    render.raw_image = false;
    let (executed, ran, _) = state
        .runner
        .run_one(task.name(), work, render, deadline)
        .await?;
    let mut json = executed.json.clone();
    json.remove("image");
    let pretty = serde_json::to_string_pretty(&Value::Object(json)).unwrap_or_default();
    let picture = executed
        .image
        .as_ref()
        .map(|bytes| {
            format!(
                "<img alt=\"result\" src=\"data:{};base64,{}\">",
                executed.format.mime(),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p>{} · {} · {:.0} ms</p>{picture}<pre>{}</pre>",
        escape_html(&filename),
        escape_html(task.name()),
        (ran.queued + ran.compute).as_secs_f64() * 1000.0,
        escape_html(&pretty)
    );
    Ok(page(&format!("percept: {}", task.name()), &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
