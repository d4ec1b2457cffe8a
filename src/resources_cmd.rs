//! `cox apply`, `cox template ...`, `cox cluster-template ...`: WorkflowTemplates,
//! ClusterWorkflowTemplates, ConfigMaps and Secrets in the local store, as `argo template` and
//! `kubectl apply` handle them. Wiring only: checking and storing is `cox_scheduler::objects`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use cox_config::lint::{LintInput, lint_sources};
use cox_scheduler::objects::{self, StoredObject};
use cox_scheduler::store::{ObjectKind, PutMode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::Client;
use crate::run_cmd::open_local_engine;

#[derive(Args)]
pub struct ApplyArgs {
    /// Files of WorkflowTemplates, ClusterWorkflowTemplates, ConfigMaps and Secrets (with a server,
    /// Workflows too: they are submitted) (repeatable).
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum TemplateCommand {
    /// Store templates from files (refused if one of that name exists).
    Create(TemplateFiles),
    /// List stored templates.
    List(TemplateList),
    /// Show a stored template.
    Get(TemplateName),
    /// Delete stored templates.
    Delete(TemplateNames),
    /// Check template files without storing them.
    Lint(TemplateFiles),
}

#[derive(Args)]
pub struct TemplateFiles {
    /// Template files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args)]
pub struct TemplateList {}

#[derive(Args)]
pub struct TemplateName {
    /// The template's name.
    name: String,
    /// Output format: json or yaml (default yaml).
    #[arg(short, long, default_value = "yaml")]
    output: String,
}

#[derive(Args)]
pub struct TemplateNames {
    /// The templates' names.
    #[arg(required = true)]
    names: Vec<String>,
}

const DEFAULT_NAMESPACE: &str = cox_scheduler::resolve::DEFAULT_NAMESPACE;

/// Every document of the files, linted (errors refuse them all): kind and object.
pub(crate) fn read_objects(files: &[PathBuf]) -> Result<Vec<(String, Value)>> {
    let mut inputs = Vec::new();
    for file in files {
        let source = file.display().to_string();
        let text =
            std::fs::read_to_string(file).with_context(|| format!("{source}: cannot read"))?;
        inputs.push(LintInput { source, text });
    }
    let report = lint_sources(&inputs);
    if report.error_count() > 0 {
        let mut message = String::new();
        for d in report.diagnostics.iter().filter(|d| d.is_error()) {
            message.push_str(&format!("{d}\n"));
        }
        bail!(
            "{message}not applied: {} linting error(s)",
            report.error_count()
        );
    }
    let mut out = Vec::new();
    for input in &inputs {
        let loaded = cox_config::load::load(&input.source, &input.text);
        // In the file's order, as kubectl applies them.
        let mut documents: Vec<(usize, String, Value)> = Vec::new();
        for document in &loaded.documents {
            let value = serde_json::to_value(&document.manifest)
                .map_err(|e| anyhow!("{}: {e}", input.source))?;
            documents.push((document.index, document.manifest.kind().to_string(), value));
        }
        for other in loaded.others {
            documents.push((other.index, other.kind, other.value));
        }
        documents.sort_by_key(|(index, _, _)| *index);
        out.extend(documents.into_iter().map(|(_, kind, value)| (kind, value)));
    }
    Ok(out)
}

/// A document as a storable object, or why not.
pub(crate) fn stored_object(
    kind: &str,
    value: Value,
    namespace: Option<&str>,
) -> Result<StoredObject> {
    let Some(kind) = ObjectKind::from_kind(kind) else {
        bail!(
            "{kind}: cox apply stores WorkflowTemplate, ClusterWorkflowTemplate, ConfigMap and Secret objects; run workflows with cox run or cox submit"
        );
    };
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    StoredObject::from_value(kind, value, namespace)
        .map_err(|e| anyhow!("{} {name}: {e}", kind.as_str()))
}

pub async fn apply(
    remote: Option<&Client>,
    namespace: Option<&str>,
    args: ApplyArgs,
) -> Result<ExitCode> {
    let documents = read_objects(&args.files)?;
    if let Some(client) = remote {
        for (kind, value) in documents {
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if kind == "Workflow" {
                let body = json!({"namespace": client.namespace, "workflow": value});
                let created = client
                    .call(Method::POST, &client.workflows(None), Some(&body))
                    .await?;
                let name = created
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                outln!("workflows.argoproj.io/{name} created")?;
                continue;
            }
            let object = stored_object(&kind, value, Some(&client.namespace))?;
            let (status, answer) = client
                .call_status(
                    Method::POST,
                    &collection(client, object.kind),
                    Some(&request_body(&object)),
                )
                .await?;
            let verb = if status == StatusCode::CONFLICT {
                let path = format!("{}/{}", collection(client, object.kind), object.name);
                client
                    .call(Method::PUT, &path, Some(&request_body(&object)))
                    .await?;
                "configured"
            } else if status.is_success() {
                "created"
            } else {
                bail!(
                    "{} {name}: server: {} (HTTP {})",
                    object.kind.as_str(),
                    answer["message"].as_str().unwrap_or_default(),
                    status.as_u16()
                );
            };
            outln!("{}/{name} {verb}", object.kind.resource())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let objects = documents
        .into_iter()
        .map(|(kind, value)| stored_object(&kind, value, namespace))
        .collect::<Result<Vec<_>>>()?;
    let engine = open_local_engine()?;
    for object in objects {
        let existed = engine
            .store()
            .get_object(object.kind, &object.namespace, &object.name)?
            .is_some();
        let (kind, name) = (object.kind, object.name.clone());
        object.put(engine.store(), PutMode::CreateOrUpdate, Utc::now())?;
        outln!(
            "{}/{name} {}",
            kind.resource(),
            if existed { "configured" } else { "created" }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The server's path of a kind's objects.
fn collection(client: &Client, kind: ObjectKind) -> String {
    match kind {
        ObjectKind::WorkflowTemplate => format!("/api/v1/workflow-templates/{}", client.namespace),
        ObjectKind::ClusterWorkflowTemplate => "/api/v1/cluster-workflow-templates".into(),
        ObjectKind::ConfigMap => format!("/api/v1/namespaces/{}/configmaps", client.namespace),
        ObjectKind::Secret => format!("/api/v1/namespaces/{}/secrets", client.namespace),
    }
}

/// The request body that creates or replaces the object: Argo's `{"template": ...}`, or the
/// ConfigMap or Secret itself.
fn request_body(object: &StoredObject) -> Value {
    match object.kind {
        ObjectKind::ConfigMap | ObjectKind::Secret => object.value.clone(),
        _ => json!({"namespace": object.namespace, "template": object.value}),
    }
}

/// `cox template ...` (`cluster`: `cox cluster-template ...`).
pub async fn template(
    remote: Option<&Client>,
    namespace: Option<&str>,
    command: TemplateCommand,
    cluster: bool,
) -> Result<ExitCode> {
    let kind = if cluster {
        ObjectKind::ClusterWorkflowTemplate
    } else {
        ObjectKind::WorkflowTemplate
    };
    let namespace = namespace.unwrap_or(DEFAULT_NAMESPACE);
    if let Some(client) = remote {
        return remote_template(client, kind, command).await;
    }
    match command {
        TemplateCommand::Create(args) => {
            let objects = template_objects(kind, &args, namespace)?;
            let engine = open_local_engine()?;
            for object in objects {
                let name = object.name.clone();
                object.put(engine.store(), PutMode::Create, Utc::now())?;
                outln!("{}/{name} created", kind.resource())?;
            }
        }
        TemplateCommand::Lint(args) => {
            let objects = template_objects(kind, &args, namespace)?;
            outln!("no linting errors found in {} template(s)", objects.len())?;
        }
        TemplateCommand::List(_) => {
            let engine = open_local_engine()?;
            for object in objects::list(engine.store(), kind, Some(namespace))? {
                outln!(
                    "{}",
                    object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )?;
            }
        }
        TemplateCommand::Get(args) => {
            let engine = open_local_engine()?;
            let object = objects::get(engine.store(), kind, namespace, &args.name)?;
            print_object(&object, &args.output)?;
        }
        TemplateCommand::Delete(args) => {
            let engine = open_local_engine()?;
            for name in &args.names {
                if !engine.store().delete_object(kind, namespace, name)? {
                    bail!("{} {name}: not found", kind.as_str());
                }
                outln!("{} '{name}' deleted", kind.as_str())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn remote_template(
    client: &Client,
    kind: ObjectKind,
    command: TemplateCommand,
) -> Result<ExitCode> {
    let path = collection(client, kind);
    match command {
        TemplateCommand::Create(args) => {
            for object in template_objects(kind, &args, &client.namespace)? {
                client
                    .call(Method::POST, &path, Some(&request_body(&object)))
                    .await?;
                outln!("{}/{} created", kind.resource(), object.name)?;
            }
        }
        TemplateCommand::Lint(args) => {
            let objects = template_objects(kind, &args, &client.namespace)?;
            for object in &objects {
                client
                    .call(
                        Method::POST,
                        &format!("{path}/lint"),
                        Some(&request_body(object)),
                    )
                    .await?;
            }
            outln!("no linting errors found in {} template(s)", objects.len())?;
        }
        TemplateCommand::List(_) => {
            let list = client.get(&path).await?;
            for item in list["items"].as_array().into_iter().flatten() {
                outln!(
                    "{}",
                    item.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )?;
            }
        }
        TemplateCommand::Get(args) => {
            let object = client.get(&format!("{path}/{}", args.name)).await?;
            print_object(&object, &args.output)?;
        }
        TemplateCommand::Delete(args) => {
            for name in &args.names {
                client
                    .call(Method::DELETE, &format!("{path}/{name}"), None)
                    .await?;
                outln!("{} '{name}' deleted", kind.as_str())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn template_objects(
    kind: ObjectKind,
    args: &TemplateFiles,
    namespace: &str,
) -> Result<Vec<StoredObject>> {
    let objects: Vec<StoredObject> = read_objects(&args.files)?
        .into_iter()
        .filter(|(found, _)| found == kind.as_str())
        .map(|(found, value)| stored_object(&found, value, Some(namespace)))
        .collect::<Result<_>>()?;
    if objects.is_empty() {
        bail!("no {} in the files given", kind.as_str());
    }
    Ok(objects)
}

/// An object as JSON or YAML on standard output.
pub(crate) fn print_object(object: &Value, output: &str) -> Result<()> {
    match output {
        "json" => outln!("{}", serde_json::to_string_pretty(object)?)?,
        "yaml" => out!(
            "{}",
            serde_saphyr::to_string(object).map_err(|e| anyhow!("cannot write YAML: {e}"))?
        )?,
        other => bail!("-o {other}: expected json or yaml"),
    }
    Ok(())
}
