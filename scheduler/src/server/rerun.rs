//! `PUT .../retry` and `PUT .../resubmit` (Argo's `WorkflowRetryRequest` and
//! `WorkflowResubmitRequest`): a failed run again, in place or as a new run.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use tracing::info;

use super::error::{ApiError, ApiResult};
use super::handlers::body_text;
use super::workflow::{namespace_of, workflow_object};
use super::{AppState, watch_until_finished};
use crate::machine::{NodeFieldSelector, RetryOptions};

/// `WorkflowRetryRequest` (name and namespace come from the path).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RetryRequest {
    #[serde(default)]
    restart_successful: bool,
    #[serde(default)]
    node_field_selector: String,
    #[serde(default)]
    parameters: Vec<String>,
}

/// `WorkflowResubmitRequest`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResubmitRequest {
    #[serde(default)]
    memoized: bool,
    #[serde(default)]
    parameters: Vec<String>,
}

/// The request body as `T`; an empty body is the default request.
fn request<T: for<'de> Deserialize<'de> + Default>(
    body: &Result<Bytes, BytesRejection>,
    limit: usize,
) -> ApiResult<T> {
    let text = body_text(body, limit)?;
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text).map_err(|e| ApiError::invalid(format!("request body: {e}")))
}

/// `NAME=VALUE` strings as pairs.
fn parameters(list: &[String]) -> ApiResult<Vec<(String, String)>> {
    list.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .ok_or_else(|| ApiError::invalid(format!("parameter {p:?}: expected NAME=VALUE")))
        })
        .collect()
}

/// The stored run `name` in `namespace`, or 404.
fn existing(state: &AppState, namespace: &str, name: &str) -> ApiResult<()> {
    let found = state
        .engine
        .get(name)?
        .is_some_and(|run| namespace_of(&run) == namespace);
    if found {
        Ok(())
    } else {
        Err(ApiError::workflow_not_found(name))
    }
}

/// The run as a Workflow object, from the store.
fn object(state: &AppState, name: &str) -> ApiResult<Json<Value>> {
    let run = state
        .engine
        .get(name)?
        .ok_or_else(|| ApiError::workflow_not_found(name))?;
    Ok(Json(workflow_object(&run)))
}

/// `PUT /api/v1/workflows/{namespace}/{name}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: RetryRequest = request(&body, state.max_body_bytes)?;
    existing(&state, &namespace, &name)?;
    let selector = Some(request.node_field_selector.as_str())
        .filter(|s| !s.is_empty())
        .map(NodeFieldSelector::parse)
        .transpose()
        .map_err(ApiError::invalid)?;
    let options = RetryOptions {
        restart_successful: request.restart_successful,
        node_selector: selector,
        parameters: parameters(&request.parameters)?,
    };
    state.engine.retry(&name, &options).await?;
    watch_until_finished(&state.engine, &name);
    info!(run = %name, namespace = %namespace, "retried");
    object(&state, &name)
}

/// `PUT /api/v1/workflows/{namespace}/{name}/resubmit`.
pub async fn resubmit(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: ResubmitRequest = request(&body, state.max_body_bytes)?;
    existing(&state, &namespace, &name)?;
    let new = state
        .engine
        .resubmit(&name, request.memoized, &parameters(&request.parameters)?)
        .await?;
    watch_until_finished(&state.engine, &new);
    info!(run = %new, from = %name, namespace = %namespace, "resubmitted");
    object(&state, &new)
}
