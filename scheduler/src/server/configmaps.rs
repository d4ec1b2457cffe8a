//! ConfigMaps, on Kubernetes' paths (Argo Server has none; Argo reads them from the cluster):
//! `GET|POST /api/v1/namespaces/{namespace}/configmaps`,
//! `GET|PUT|DELETE /api/v1/namespaces/{namespace}/configmaps/{name}`. The body is the
//! ConfigMap object itself, as `kubectl` sends it; lists are `{"metadata": {}, "items": [...]}`.
//! `configMapKeyRef` parameters read them when a workflow is submitted.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use chrono::Utc;
use serde_json::Value;
use tracing::info;

use super::error::{ApiError, ApiResult};
use super::handlers::{body_text, parse_body};
use super::{AppState, templates};
use crate::objects::{self, StoredObject};
use crate::store::{ObjectKind, PutMode};

fn checked(
    state: &AppState,
    kind: ObjectKind,
    namespace: &str,
    body: &Result<Bytes, BytesRejection>,
) -> ApiResult<StoredObject> {
    let text = body_text(body, state.max_body_bytes)?;
    let value: Value = parse_body(text)?;
    StoredObject::from_value(kind, value, Some(namespace)).map_err(ApiError::invalid)
}

/// Creates a namespaced Kubernetes object of `kind` from the request body.
pub(super) fn create_object(
    state: &AppState,
    kind: ObjectKind,
    namespace: &str,
    body: &Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let object = checked(state, kind, namespace, body)?;
    let name = object.name.clone();
    let stored = object.put(state.engine.store(), PutMode::Create, Utc::now())?;
    // Semaphore limits come from ConfigMaps and change live.
    if kind == ObjectKind::ConfigMap {
        state.engine.refresh_sync_limits();
    }
    info!(kind = kind.as_str(), name = %name, namespace = %namespace, "object created");
    Ok(Json(stored))
}

/// Replaces the namespaced Kubernetes object `name` of `kind` with the request body.
pub(super) fn update_object(
    state: &AppState,
    kind: ObjectKind,
    (namespace, name): (&str, &str),
    body: &Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let object = checked(state, kind, namespace, body)?;
    if object.name != name {
        return Err(ApiError::invalid(format!(
            "metadata.name: '{}' does not match the name in the path, '{name}'",
            object.name
        )));
    }
    let stored = object.put(state.engine.store(), PutMode::Update, Utc::now())?;
    state.engine.refresh_sync_limits();
    Ok(Json(stored))
}

/// One stored object of `kind`.
pub(super) fn get_object(
    state: &AppState,
    kind: ObjectKind,
    namespace: &str,
    name: &str,
) -> ApiResult<Json<Value>> {
    Ok(Json(objects::get(
        state.engine.store(),
        kind,
        namespace,
        name,
    )?))
}

/// `POST /api/v1/namespaces/{namespace}/configmaps`.
pub async fn create(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    create_object(&state, ObjectKind::ConfigMap, &namespace, &body)
}

/// `PUT /api/v1/namespaces/{namespace}/configmaps/{name}`.
pub async fn update(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    update_object(&state, ObjectKind::ConfigMap, (&namespace, &name), &body)
}

/// `GET /api/v1/namespaces/{namespace}/configmaps`.
pub async fn list(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    templates::list(&state, ObjectKind::ConfigMap, Some(&namespace), &query)
}

/// `GET /api/v1/namespaces/{namespace}/configmaps/{name}`.
pub async fn get(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    get_object(&state, ObjectKind::ConfigMap, &namespace, &name)
}

/// `DELETE /api/v1/namespaces/{namespace}/configmaps/{name}`.
pub async fn delete(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let deleted = templates::delete(&state, ObjectKind::ConfigMap, &namespace, &name);
    state.engine.refresh_sync_limits();
    deleted
}
