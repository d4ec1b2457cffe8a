//! The route handlers: each reads its request, calls the engine, answers JSON.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tracing::info;

use super::error::{ApiError, ApiResult};
use super::templates::stored_manifests;
use super::workflow::{namespace_of, new_uid, parse_workflow, workflow_object};
use super::{AppState, watch_until_finished};
use cox_config::model::Workflow;

/// `WorkflowCreateRequest` and `WorkflowLintRequest` (the lint request has only the first two
/// fields). The workflow is kept as text so lint errors can point into the body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkflowRequest<'a> {
    #[serde(borrow, default)]
    workflow: Option<&'a RawValue>,
    #[serde(default)]
    server_dry_run: bool,
    #[serde(default)]
    create_options: Option<CreateOptions>,
}

/// `CreateOptions`: only `dryRun` is honoured.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateOptions {
    #[serde(default)]
    pub dry_run: Vec<String>,
}

/// The body as UTF-8 text; a body over the limit was refused before it was read in full.
pub(super) fn body_text(body: &Result<Bytes, BytesRejection>, limit: usize) -> ApiResult<&str> {
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::body_too_large(limit));
        }
        Err(rejection) => {
            return Err(ApiError::invalid(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            )));
        }
    };
    std::str::from_utf8(bytes).map_err(|e| ApiError::invalid(format!("body: not UTF-8: {e}")))
}

/// A JSON request body, typed; errors lead with the position.
pub(super) fn parse_body<'a, T: Deserialize<'a>>(text: &'a str) -> ApiResult<T> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json ends its messages with " at line L column C"; the position leads here.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        ApiError::invalid(format!(
            "{}:{}: body: not a valid request: {message}",
            e.line(),
            e.column()
        ))
    })
}

/// `POST /api/v1/workflows/{namespace}`: lint, then submit (or only check, on a dry run).
pub async fn create(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let text = body_text(&body, state.max_body_bytes)?;
    let request: WorkflowRequest = parse_body(text)?;
    let stored = stored_manifests(&state, &namespace)?;
    let mut workflow = parse_workflow(text, request.workflow, &stored)?;
    workflow.metadata.namespace = Some(namespace.clone());
    let dry_run = request.server_dry_run
        || request
            .create_options
            .is_some_and(|options| !options.dry_run.is_empty());
    submit_workflow(&state, workflow, dry_run).await
}

/// Submit a checked workflow (namespace set), or only answer it on a dry run.
pub(super) async fn submit_workflow(
    state: &AppState,
    mut workflow: Workflow,
    dry_run: bool,
) -> ApiResult<Json<Value>> {
    let namespace = workflow.metadata.namespace.clone().unwrap_or_default();
    if dry_run {
        let mut object = serde_json::to_value(&workflow)
            .map_err(|e| ApiError::invalid(format!("workflow: {e}")))?;
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("namespace".into(), json!(namespace));
        }
        return Ok(Json(object));
    }
    workflow.metadata.uid = Some(new_uid());
    let name = state.engine.submit(workflow).await?;
    info!(run = %name, namespace = %namespace, "created");
    watch_until_finished(&state.engine, &name);
    let run = state
        .engine
        .get(&name)?
        .ok_or_else(|| ApiError::workflow_not_found(&name))?;
    Ok(Json(workflow_object(&run)))
}

/// `POST /api/v1/workflows/{namespace}/lint`: the workflow back if it is valid.
pub async fn lint(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let text = body_text(&body, state.max_body_bytes)?;
    let request: WorkflowRequest = parse_body(text)?;
    let raw = request.workflow;
    let stored = stored_manifests(&state, &namespace)?;
    parse_workflow(text, raw, &stored)?;
    let mut object: Value = raw
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|e| ApiError::invalid(format!("workflow: {e}")))?
        .unwrap_or_default();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("namespace".into(), json!(namespace));
    }
    Ok(Json(object))
}

/// `GET /api/v1/workflows/{namespace}`: `WorkflowList`, newest first, filtered by
/// `listOptions.labelSelector` (the phase through Argo's `workflows.argoproj.io/phase`
/// label, as `argo list --status` asks) and `listOptions.fieldSelector` (as the watch), in
/// pages of `listOptions.limit` when given: `metadata.continue` then names where the next
/// page starts (`listOptions.continue`), and stays valid whatever is created or deleted
/// in between.
pub async fn list(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let filter = super::events::Filter::parse(namespace, &query)?;
    let limit = match query.get("listOptions.limit").map(|l| l.trim()) {
        None | Some("" | "0") => None,
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ApiError::invalid(format!(
                "listOptions.limit: '{text}': expected a non-negative integer"
            ))
        })?),
    };
    let after = query
        .get("listOptions.continue")
        .filter(|token| !token.is_empty())
        .map(|token| parse_continue(token))
        .transpose()?;
    let mut runs = state.engine.list()?;
    // Newest first; the name orders runs created at the same instant.
    runs.sort_by(|a, b| (b.created_at, &b.name).cmp(&(a.created_at, &a.name)));
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for summary in runs {
        if let Some((at, name)) = &after
            && (summary.created_at, &summary.name) >= (*at, name)
        {
            continue;
        }
        // Deleted between the listing and the read: not listed.
        let Some(run) = state.engine.get(&summary.name)? else {
            continue;
        };
        let Some(object) = filter.object(&run) else {
            continue;
        };
        if limit.is_some_and(|limit| items.len() == limit) {
            more = true;
            break;
        }
        items.push(object);
        last = Some((summary.created_at, summary.name));
    }
    let mut metadata = json!({});
    if let Some((at, name)) = last.filter(|_| more) {
        metadata["continue"] = json!(continue_token(at, &name));
    }
    Ok(Json(json!({ "metadata": metadata, "items": items })))
}

/// Where the next page starts: after the run created at `at` named `name`.
fn continue_token(at: DateTime<Utc>, name: &str) -> String {
    format!("{}:{name}", at.timestamp_nanos_opt().unwrap_or_default())
}

/// [`continue_token`] read back.
fn parse_continue(token: &str) -> ApiResult<(DateTime<Utc>, String)> {
    token
        .split_once(':')
        .and_then(|(nanos, name)| {
            Some((
                DateTime::from_timestamp_nanos(nanos.parse().ok()?),
                name.to_string(),
            ))
        })
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "listOptions.continue: '{token}': not a token this server gave"
            ))
        })
}

/// `GET /api/v1/workflows/{namespace}/{name}`.
pub async fn get(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let run = state
        .engine
        .get(&name)?
        .filter(|run| namespace_of(run) == namespace)
        .ok_or_else(|| ApiError::workflow_not_found(&name))?;
    Ok(Json(workflow_object(&run)))
}

/// `DELETE /api/v1/workflows/{namespace}/{name}`: stops the run's steps and removes it.
pub async fn delete(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let found = state
        .engine
        .get(&name)?
        .is_some_and(|run| namespace_of(&run) == namespace);
    if !found || !state.engine.delete(&name).await? {
        return Err(ApiError::workflow_not_found(&name));
    }
    info!(run = %name, namespace = %namespace, "deleted");
    Ok(Json(json!({})))
}

/// `GET /api/v1/info`.
pub async fn info() -> Json<Value> {
    Json(json!({ "links": [], "columns": [], "modals": {} }))
}

/// `GET /api/v1/version`: Argo's `Version`; the Go-specific fields say what they can.
pub async fn version() -> Json<Value> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Json(json!({
        "version": concat!("v", env!("CARGO_PKG_VERSION")),
        "buildDate": "",
        "gitCommit": "",
        "gitTag": "",
        "gitTreeState": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{arch}", std::env::consts::OS),
    }))
}

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        code: super::error::GrpcCode::NotFound,
        message: "no such route".into(),
    }
}

/// Known routes with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        code: super::error::GrpcCode::Unimplemented,
        message: "method not allowed on this route".into(),
    }
}
