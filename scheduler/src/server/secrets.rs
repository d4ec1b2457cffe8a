//! Secrets, on Kubernetes' paths (as ConfigMaps, see [`super::configmaps`]):
//! `GET|POST /api/v1/namespaces/{namespace}/secrets`,
//! `GET|PUT|DELETE /api/v1/namespaces/{namespace}/secrets/{name}`. Like every route they
//! need the server's token. As Kubernetes does, reads return the values (`data`, base64);
//! `stringData` is merged into `data` when stored. Buckets name them with
//! `accessKeySecret`/`secretKeySecret`; their values are read when a step launches and never
//! go into a run, a log or a message.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use serde_json::Value;

use super::configmaps::{create_object, get_object, update_object};
use super::error::ApiResult;
use super::{AppState, templates};
use crate::store::ObjectKind;

/// `POST /api/v1/namespaces/{namespace}/secrets`.
pub async fn create(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    create_object(&state, ObjectKind::Secret, &namespace, &body)
}

/// `PUT /api/v1/namespaces/{namespace}/secrets/{name}`.
pub async fn update(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    update_object(&state, ObjectKind::Secret, (&namespace, &name), &body)
}

/// `GET /api/v1/namespaces/{namespace}/secrets`.
pub async fn list(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    templates::list(&state, ObjectKind::Secret, Some(&namespace), &query)
}

/// `GET /api/v1/namespaces/{namespace}/secrets/{name}`.
pub async fn get(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    get_object(&state, ObjectKind::Secret, &namespace, &name)
}

/// `DELETE /api/v1/namespaces/{namespace}/secrets/{name}`.
pub async fn delete(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    templates::delete(&state, ObjectKind::Secret, &namespace, &name)
}
