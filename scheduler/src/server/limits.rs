//! The request body limit, in front of every route: a declared `Content-Length` over the
//! limit is refused with 413 before a byte of the body is read; any other body (chunked,
//! or of unknown length) is read up to the limit, and refused with 413 as soon as it
//! crosses it. A body within the limit is handed on whole, so no route can be made to
//! read more than the limit, whatever it does with its body.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::ApiError;

/// The middleware; its state is the limit in bytes.
pub async fn limit_body(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return ApiError::body_too_large(limit).into_response();
    }
    let (parts, body) = request.into_parts();
    let mut chunks = body.into_data_stream();
    let mut buffered = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                return ApiError::invalid(format!("cannot read the request body: {e}"))
                    .into_response();
            }
        };
        if buffered.len() + chunk.len() > limit {
            return ApiError::body_too_large(limit).into_response();
        }
        buffered.extend_from_slice(&chunk);
    }
    let request = Request::from_parts(parts, Body::from(Bytes::from(buffered)));
    next.run(request).await
}
