//! `PUT /api/v1/workflows/{namespace}/{name}/{suspend|resume|stop|terminate|set}`: Argo's
//! lifecycle requests, answered with the Workflow as it is once the request is persisted.
//! A request that does not apply to the workflow as it is (completed, no matching suspend
//! node, a supplied output without a value) is refused with 400 and changes nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use tracing::info;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::handlers::{body_text, parse_body};
use super::workflow::{namespace_of, workflow_object};
use crate::machine::{Phase, Request};

/// The fields of `WorkflowResumeRequest`, `WorkflowStopRequest` and `WorkflowSetRequest`
/// (the suspend and terminate requests have none that matter).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LifecycleBody {
    #[serde(default)]
    node_field_selector: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    phase: Option<String>,
    /// A JSON object of name -> value, as text (Argo's CLI sends it so).
    #[serde(default)]
    output_parameters: Option<String>,
}

/// The request body (empty is `{}`), after checking the run is in `namespace`.
fn read(
    state: &AppState,
    namespace: &str,
    name: &str,
    body: &Result<Bytes, BytesRejection>,
) -> ApiResult<LifecycleBody> {
    let found = state
        .engine
        .get(name)?
        .is_some_and(|run| namespace_of(&run) == namespace);
    if !found {
        return Err(ApiError::workflow_not_found(name));
    }
    let text = body_text(body, state.max_body_bytes)?;
    if text.trim().is_empty() {
        return Ok(LifecycleBody::default());
    }
    parse_body(text)
}

async fn answer(state: &AppState, name: &str, request: Request) -> ApiResult<Json<Value>> {
    let run = state.engine.request(name, request).await?;
    Ok(Json(workflow_object(&run)))
}

/// `PUT .../suspend`: `spec.suspend: true`; running steps finish, nothing new starts.
pub async fn suspend(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    read(&state, &namespace, &name, &body)?;
    info!(run = %name, "suspend");
    answer(&state, &name, Request::Suspend).await
}

/// `PUT .../resume`: the workflow, or the suspend nodes `nodeFieldSelector` matches.
pub async fn resume(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = read(&state, &namespace, &name, &body)?;
    info!(run = %name, "resume");
    let request = Request::Resume {
        node_field_selector: body.node_field_selector.filter(|s| !s.is_empty()),
    };
    answer(&state, &name, request).await
}

/// `PUT .../stop`: exit handlers still run. With a message or a node selector, the matching
/// suspend nodes fail with that message first, as Argo does.
pub async fn stop(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = read(&state, &namespace, &name, &body)?;
    info!(run = %name, "stop");
    let request = Request::Stop {
        terminate: false,
        message: body.message.filter(|m| !m.is_empty()),
        node_field_selector: body.node_field_selector.filter(|s| !s.is_empty()),
    };
    answer(&state, &name, request).await
}

/// `PUT .../terminate`: stop without exit handlers.
pub async fn terminate(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    read(&state, &namespace, &name, &body)?;
    info!(run = %name, "terminate");
    let request = Request::Stop {
        terminate: true,
        message: None,
        node_field_selector: None,
    };
    answer(&state, &name, request).await
}

/// `PUT .../set`: phase, message and supplied output parameters of suspend nodes.
pub async fn set(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = read(&state, &namespace, &name, &body)?;
    let node_field_selector = body
        .node_field_selector
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("nodeFieldSelector: required"))?;
    let phase = match body.phase.as_deref().unwrap_or_default() {
        "" => None,
        "Succeeded" => Some(Phase::Succeeded),
        "Failed" => Some(Phase::Failed),
        "Error" => Some(Phase::Error),
        other => {
            return Err(ApiError::invalid(format!(
                "phase: '{other}': expected Succeeded, Failed or Error"
            )));
        }
    };
    let output_parameters = match body.output_parameters.as_deref().unwrap_or_default() {
        "" => Vec::new(),
        text => {
            let map: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(|e| {
                ApiError::invalid(format!(
                    "outputParameters: not a JSON object of names to values: {e}"
                ))
            })?;
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect()
        }
    };
    info!(run = %name, "set");
    let request = Request::Set {
        node_field_selector,
        phase,
        message: body.message.filter(|m| !m.is_empty()),
        output_parameters,
    };
    answer(&state, &name, request).await
}
