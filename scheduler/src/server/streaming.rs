//! Streamed answers as grpc-gateway sends Argo Server's server-streaming calls: one JSON
//! object a line, `{"result": MESSAGE}` (or `{"error": STATUS}`), flushed as each is
//! made; or, for a client that asks for `text/event-stream` (Argo's UI), each message as
//! a server-sent event, `data: MESSAGE\n\n`.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many messages may wait for a slow client before producers wait too.
pub const BUFFER: usize = 256;

/// Whether the client asked for server-sent events.
pub fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// The answer that streams each `result` received on `messages` until every sender is
/// gone or `end` is cancelled (the server is stopping).
pub fn response(messages: mpsc::Receiver<Value>, events: bool, end: CancellationToken) -> Response {
    let chunks = stream::unfold(messages, move |mut messages| {
        let end = end.clone();
        async move {
            let result = tokio::select! {
                result = messages.recv() => result?,
                () = end.cancelled() => return None,
            };
            let chunk = frame(&json!({ "result": result }), events);
            Some((Ok::<_, std::convert::Infallible>(chunk), messages))
        }
    });
    let content_type = if events {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut response = Body::from_stream(chunks).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Proxies must not hold the stream back to buffer it.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn frame(message: &Value, events: bool) -> Bytes {
    let text = message.to_string();
    Bytes::from(if events {
        format!("data: {text}\n\n")
    } else {
        format!("{text}\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_lines_or_events() {
        let message = json!({"result": {"content": "hi"}});
        assert_eq!(
            frame(&message, false),
            "{\"result\":{\"content\":\"hi\"}}\n"
        );
        assert_eq!(
            frame(&message, true),
            "data: {\"result\":{\"content\":\"hi\"}}\n\n"
        );
    }
}
