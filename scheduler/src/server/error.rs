//! The API's errors, in Argo Server's (grpc-gateway's) JSON shape:
//! `{"code": <gRPC code>, "message": "...", "details": []}` with a fitting HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::warn;

use crate::error::Error;

/// The gRPC status codes the API answers with (grpc-gateway puts them in `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    /// 3: the request or the workflow in it is invalid.
    InvalidArgument = 3,
    /// 5: no such workflow or route.
    NotFound = 5,
    /// 6: a workflow with that name exists.
    AlreadyExists = 6,
    /// 8: the request body is too large.
    ResourceExhausted = 8,
    /// 9: the workflow is not in a state the request applies to.
    FailedPrecondition = 9,
    /// 12: the route exists but not with this method.
    Unimplemented = 12,
    /// 13: the server failed.
    Internal = 13,
    /// 14: the store is busy; try again.
    Unavailable = 14,
    /// 16: no valid token.
    Unauthenticated = 16,
}

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The gRPC code in the body.
    pub code: GrpcCode,
    /// What went wrong, lowercase, for the client.
    pub message: String,
}

/// The API's result type.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    /// 400 InvalidArgument.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: GrpcCode::InvalidArgument,
            message: message.into(),
        }
    }

    /// 404 NotFound for a workflow, in Kubernetes' words (Argo clients show them as is).
    pub fn workflow_not_found(name: &str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: GrpcCode::NotFound,
            message: format!("workflows.argoproj.io \"{name}\" not found"),
        }
    }

    /// 413 ResourceExhausted.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: GrpcCode::ResourceExhausted,
            message: format!("request body larger than {limit} bytes"),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let (status, code, message) = match &error {
            Error::RunNotFound(name) => return ApiError::workflow_not_found(name),
            Error::RunExists(name) => (
                StatusCode::CONFLICT,
                GrpcCode::AlreadyExists,
                format!("workflows.argoproj.io \"{name}\" already exists"),
            ),
            Error::ObjectNotFound { kind, name } => (
                StatusCode::NOT_FOUND,
                GrpcCode::NotFound,
                format!("{} \"{name}\" not found", resource(kind)),
            ),
            Error::ObjectExists { kind, name } => (
                StatusCode::CONFLICT,
                GrpcCode::AlreadyExists,
                format!("{} \"{name}\" already exists", resource(kind)),
            ),
            Error::Lifecycle { message, .. } => (
                StatusCode::BAD_REQUEST,
                GrpcCode::FailedPrecondition,
                message.clone(),
            ),
            Error::Submit(message) => (
                StatusCode::BAD_REQUEST,
                GrpcCode::InvalidArgument,
                message.clone(),
            ),
            // Both pass: a full disk is the operator's to free, and the request can be repeated.
            Error::Locked { .. } | Error::NoSpace { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                GrpcCode::Unavailable,
                error.to_string(),
            ),
            _ => {
                warn!(error = %error, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    GrpcCode::Internal,
                    error.to_string(),
                )
            }
        };
        ApiError {
            status,
            code,
            message,
        }
    }
}

/// Seconds a client is asked to wait before retrying a request refused as unavailable.
pub const RETRY_AFTER_SECONDS: &str = "1";

/// Kubernetes' resource name of a stored kind, for messages.
fn resource(kind: &str) -> &str {
    crate::store::ObjectKind::from_kind(kind).map_or(kind, |k| k.resource())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.code as i32, "message": self.message, "details": [] });
        let mut response = (self.status, Json(body)).into_response();
        // Busy (the write queue is full, or the store is held): nothing was done, try again.
        if self.code == GrpcCode::Unavailable {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}
