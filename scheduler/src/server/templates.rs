//! WorkflowTemplates (`/api/v1/workflow-templates/{namespace}...`) and
//! ClusterWorkflowTemplates (`/api/v1/cluster-workflow-templates...`): create, list, get,
//! update, delete, lint, as Argo Server answers them; and submitting a workflow from one
//! (`POST /api/v1/workflows/{namespace}/submit`).
//!
//! A template is linted (located errors, references checked against the stored templates)
//! before it is stored; what is stored is the object as checked, with `uid` and
//! `creationTimestamp` set by the server.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use chrono::Utc;
use cox_config::model::{
    AnyString, Arguments, Manifest, ObjectMeta, Parameter, Workflow, WorkflowSpec,
    WorkflowTemplateRef,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tracing::info;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::handlers::{CreateOptions, body_text, parse_body, submit_workflow};
use super::workflow::{LabelSelector, parse_manifest};
use crate::objects::{self, StoredObject};
use crate::store::{ObjectKind, PutMode};

/// Label Argo puts on workflows submitted from a WorkflowTemplate.
const FROM_TEMPLATE_LABEL: &str = "workflows.argoproj.io/workflow-template";
/// Label Argo puts on workflows submitted from a ClusterWorkflowTemplate.
const FROM_CLUSTER_TEMPLATE_LABEL: &str = "workflows.argoproj.io/cluster-workflow-template";

/// `WorkflowTemplateCreateRequest`, `...LintRequest`, `...UpdateRequest` and their cluster
/// counterparts: the template is kept as text so lint errors can point into the body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateRequest<'a> {
    #[serde(borrow, default)]
    template: Option<&'a RawValue>,
    #[serde(default)]
    create_options: Option<CreateOptions>,
}

/// The templates lint checks references against (see [`objects::template_manifests`]).
pub(super) fn stored_manifests(state: &AppState, namespace: &str) -> ApiResult<Vec<Manifest>> {
    Ok(objects::template_manifests(
        state.engine.store(),
        namespace,
    )?)
}

/// Lint the request's template and check it as a stored object of `kind`.
fn checked(
    state: &AppState,
    kind: ObjectKind,
    namespace: Option<&str>,
    text: &str,
) -> ApiResult<(StoredObject, bool)> {
    let request: TemplateRequest = parse_body(text)?;
    let stored = stored_manifests(state, namespace.unwrap_or_default())?;
    let manifest = parse_manifest(text, request.template, "template", &stored)?;
    if manifest.kind() != kind.as_str() {
        return Err(ApiError::invalid(format!(
            "template.kind: must be {}, not {}",
            kind.as_str(),
            manifest.kind()
        )));
    }
    let value: Value = request
        .template
        .map(|raw| serde_json::from_str(raw.get()))
        .transpose()
        .map_err(|e| ApiError::invalid(format!("template: {e}")))?
        .unwrap_or_default();
    let object = StoredObject::from_value(kind, value, namespace)
        .map_err(|e| ApiError::invalid(format!("template.{e}")))?;
    let dry_run = request
        .create_options
        .is_some_and(|options| !options.dry_run.is_empty());
    Ok((object, dry_run))
}

async fn create(
    state: AppState,
    kind: ObjectKind,
    namespace: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let text = body_text(&body, state.max_body_bytes)?;
    let (object, dry_run) = checked(&state, kind, namespace.as_deref(), text)?;
    if dry_run {
        return Ok(Json(object.value));
    }
    let name = object.name.clone();
    let stored = object.put(state.engine.store(), PutMode::Create, Utc::now())?;
    info!(kind = kind.as_str(), name = %name, "created");
    Ok(Json(stored))
}

async fn lint(
    state: AppState,
    kind: ObjectKind,
    namespace: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let text = body_text(&body, state.max_body_bytes)?;
    let (object, _) = checked(&state, kind, namespace.as_deref(), text)?;
    Ok(Json(object.value))
}

async fn update(
    state: AppState,
    kind: ObjectKind,
    namespace: Option<String>,
    name: String,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let text = body_text(&body, state.max_body_bytes)?;
    let (object, _) = checked(&state, kind, namespace.as_deref(), text)?;
    if object.name != name {
        return Err(ApiError::invalid(format!(
            "template.metadata.name: '{}' does not match the name in the path, '{name}'",
            object.name
        )));
    }
    let stored = object.put(state.engine.store(), PutMode::Update, Utc::now())?;
    info!(kind = kind.as_str(), name = %name, "updated");
    Ok(Json(stored))
}

/// A `...List` of the stored objects of a kind, filtered by the query's label selector
/// (`listOptions.labelSelector`, or Kubernetes' `labelSelector`).
pub(super) fn list(
    state: &AppState,
    kind: ObjectKind,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> ApiResult<Json<Value>> {
    let selector = query
        .get("listOptions.labelSelector")
        .or_else(|| query.get("labelSelector"))
        .map(String::as_str)
        .unwrap_or_default();
    let selector = LabelSelector::parse(selector)?;
    let items: Vec<Value> = objects::list(state.engine.store(), kind, namespace)?
        .into_iter()
        .filter(|object| selector.matches_object(object))
        .collect();
    Ok(Json(json!({ "metadata": {}, "items": items })))
}

/// Delete a stored object: `{}`, or 404.
pub(super) fn delete(
    state: &AppState,
    kind: ObjectKind,
    namespace: &str,
    name: &str,
) -> ApiResult<Json<Value>> {
    if !state.engine.store().delete_object(kind, namespace, name)? {
        return Err(crate::Error::ObjectNotFound {
            kind: kind.as_str(),
            name: name.to_string(),
        }
        .into());
    }
    info!(kind = kind.as_str(), name = %name, "deleted");
    Ok(Json(json!({})))
}

/// `POST /api/v1/workflow-templates/{namespace}`.
pub async fn create_namespaced(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    create(state, ObjectKind::WorkflowTemplate, Some(namespace), body).await
}

/// `POST /api/v1/workflow-templates/{namespace}/lint`.
pub async fn lint_namespaced(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    lint(state, ObjectKind::WorkflowTemplate, Some(namespace), body).await
}

/// `GET /api/v1/workflow-templates/{namespace}`: `WorkflowTemplateList`.
pub async fn list_namespaced(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list(
        &state,
        ObjectKind::WorkflowTemplate,
        Some(&namespace),
        &query,
    )
}

/// `GET /api/v1/workflow-templates/{namespace}/{name}`.
pub async fn get_namespaced(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(objects::get(
        state.engine.store(),
        ObjectKind::WorkflowTemplate,
        &namespace,
        &name,
    )?))
}

/// `PUT /api/v1/workflow-templates/{namespace}/{name}`.
pub async fn update_namespaced(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    update(
        state,
        ObjectKind::WorkflowTemplate,
        Some(namespace),
        name,
        body,
    )
    .await
}

/// `DELETE /api/v1/workflow-templates/{namespace}/{name}`.
pub async fn delete_namespaced(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    delete(&state, ObjectKind::WorkflowTemplate, &namespace, &name)
}

/// `POST /api/v1/cluster-workflow-templates`.
pub async fn create_cluster(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    create(state, ObjectKind::ClusterWorkflowTemplate, None, body).await
}

/// `POST /api/v1/cluster-workflow-templates/lint`.
pub async fn lint_cluster(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    lint(state, ObjectKind::ClusterWorkflowTemplate, None, body).await
}

/// `GET /api/v1/cluster-workflow-templates`: `ClusterWorkflowTemplateList`.
pub async fn list_cluster(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list(&state, ObjectKind::ClusterWorkflowTemplate, None, &query)
}

/// `GET /api/v1/cluster-workflow-templates/{name}`.
pub async fn get_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(objects::get(
        state.engine.store(),
        ObjectKind::ClusterWorkflowTemplate,
        "",
        &name,
    )?))
}

/// `PUT /api/v1/cluster-workflow-templates/{name}`.
pub async fn update_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    update(state, ObjectKind::ClusterWorkflowTemplate, None, name, body).await
}

/// `DELETE /api/v1/cluster-workflow-templates/{name}`.
pub async fn delete_cluster(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    delete(&state, ObjectKind::ClusterWorkflowTemplate, "", &name)
}

/// `WorkflowSubmitRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubmitRequest {
    #[serde(default)]
    resource_kind: String,
    #[serde(default)]
    resource_name: String,
    #[serde(default)]
    submit_options: SubmitOptions,
}

/// `SubmitOpts`: the options Coxswain honours.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SubmitOptions {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    generate_name: Option<String>,
    #[serde(default)]
    entry_point: Option<String>,
    /// `NAME=VALUE` each.
    #[serde(default)]
    parameters: Vec<String>,
    /// `KEY=VALUE,KEY=VALUE`.
    #[serde(default)]
    labels: Option<String>,
    #[serde(default)]
    annotations: Option<String>,
    #[serde(default)]
    server_dry_run: bool,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/workflows/{namespace}/submit`: a workflow that refers to the template (as
/// Argo makes it: `workflowTemplateRef`, parameters as arguments, Argo's label), submitted.
pub async fn submit(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let text = body_text(&body, state.max_body_bytes)?;
    let request: SubmitRequest = parse_body(text)?;
    let (cluster, label) = match request.resource_kind.as_str() {
        "WorkflowTemplate" | "workflowtemplate" => (false, FROM_TEMPLATE_LABEL),
        "ClusterWorkflowTemplate" | "clusterworkflowtemplate" => {
            (true, FROM_CLUSTER_TEMPLATE_LABEL)
        }
        other => {
            return Err(ApiError::invalid(format!(
                "resourceKind: '{other}' cannot be submitted; use WorkflowTemplate or ClusterWorkflowTemplate"
            )));
        }
    };
    let name = request.resource_name;
    if name.is_empty() {
        return Err(ApiError::invalid("resourceName: required"));
    }
    let kind = if cluster {
        ObjectKind::ClusterWorkflowTemplate
    } else {
        ObjectKind::WorkflowTemplate
    };
    // Refused here with 404 rather than as an invalid workflow.
    objects::get(state.engine.store(), kind, &namespace, &name)?;
    let options = request.submit_options;
    let mut metadata = ObjectMeta {
        name: options.name.filter(|n| !n.is_empty()),
        generate_name: options
            .generate_name
            .filter(|n| !n.is_empty())
            .or_else(|| Some(format!("{name}-"))),
        namespace: Some(namespace.clone()),
        ..ObjectMeta::default()
    };
    metadata.labels = pairs(options.labels.as_deref(), "submitOptions.labels")?;
    metadata.labels.insert(label.to_string(), name.clone());
    metadata.annotations = pairs(options.annotations.as_deref(), "submitOptions.annotations")?;
    let mut parameters = Vec::new();
    for p in &options.parameters {
        let (key, value) = p.split_once('=').ok_or_else(|| {
            ApiError::invalid(format!(
                "submitOptions.parameters: '{p}': expected NAME=VALUE"
            ))
        })?;
        parameters.push(Parameter {
            name: key.to_string(),
            value: Some(AnyString(value.to_string())),
            ..Parameter::default()
        });
    }
    let workflow = Workflow {
        api_version: cox_config::load::API_VERSION.to_string(),
        kind: "Workflow".to_string(),
        metadata,
        spec: WorkflowSpec {
            entrypoint: options.entry_point.filter(|e| !e.is_empty()),
            arguments: (!parameters.is_empty()).then(|| Arguments {
                parameters,
                ..Arguments::default()
            }),
            workflow_template_ref: Some(WorkflowTemplateRef {
                name: Some(name),
                cluster_scope: cluster.then_some(true),
            }),
            ..WorkflowSpec::default()
        },
        status: None,
    };
    submit_workflow(&state, workflow, options.server_dry_run || options.dry_run).await
}

/// `a=b,c=d` as a map; `what` names the field in errors.
fn pairs(text: Option<&str>, what: &str) -> ApiResult<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for part in text
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| ApiError::invalid(format!("{what}: '{part}': expected KEY=VALUE")))?;
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}
