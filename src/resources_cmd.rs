//! `cox apply`, `cox template ...`, `cox cluster-template ...`: WorkflowTemplates,
//! ClusterWorkflowTemplates and ConfigMaps in the local store, as `argo template` and
//! `kubectl apply` handle them. Wiring only: checking and storing is `cox_scheduler::objects`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use cox_config::lint::{LintInput, lint_sources};
use cox_scheduler::objects::{self, StoredObject};
use cox_scheduler::store::{ObjectKind, PutMode};
use serde_json::Value;

use crate::run_cmd::open_local_engine;

#[derive(Args)]
pub struct ApplyArgs {
    /// Files of WorkflowTemplates, ClusterWorkflowTemplates and ConfigMaps (repeatable).
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Namespace of objects that name none.
    #[arg(short, long)]
    namespace: Option<String>,
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
    /// Namespace (WorkflowTemplates only).
    #[arg(short, long)]
    namespace: Option<String>,
}

#[derive(Args)]
pub struct TemplateList {
    /// Namespace (WorkflowTemplates only).
    #[arg(short, long)]
    namespace: Option<String>,
}

#[derive(Args)]
pub struct TemplateName {
    /// The template's name.
    name: String,
    /// Namespace (WorkflowTemplates only).
    #[arg(short, long)]
    namespace: Option<String>,
    /// Output format: json or yaml (default yaml).
    #[arg(short, long, default_value = "yaml")]
    output: String,
}

#[derive(Args)]
pub struct TemplateNames {
    /// The templates' names.
    #[arg(required = true)]
    names: Vec<String>,
    /// Namespace (WorkflowTemplates only).
    #[arg(short, long)]
    namespace: Option<String>,
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
        for document in &loaded.documents {
            let value = serde_json::to_value(&document.manifest)
                .map_err(|e| anyhow!("{}: {e}", input.source))?;
            out.push((document.manifest.kind().to_string(), value));
        }
        for other in loaded.others {
            out.push((other.kind, other.value));
        }
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
            "{kind}: cox apply stores WorkflowTemplate, ClusterWorkflowTemplate and ConfigMap objects; run workflows with cox run or cox submit"
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

pub fn apply(args: ApplyArgs) -> Result<ExitCode> {
    let documents = read_objects(&args.files)?;
    let objects = documents
        .into_iter()
        .map(|(kind, value)| stored_object(&kind, value, args.namespace.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let engine = open_local_engine()?;
    for object in objects {
        let existed = engine
            .store()
            .get_object(object.kind, &object.namespace, &object.name)?
            .is_some();
        let (kind, name) = (object.kind, object.name.clone());
        object.put(engine.store(), PutMode::CreateOrUpdate, Utc::now())?;
        println!(
            "{}/{name} {}",
            kind.resource(),
            if existed { "configured" } else { "created" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `cox template ...` (`cluster`: `cox cluster-template ...`).
pub fn template(command: TemplateCommand, cluster: bool) -> Result<ExitCode> {
    let kind = if cluster {
        ObjectKind::ClusterWorkflowTemplate
    } else {
        ObjectKind::WorkflowTemplate
    };
    match command {
        TemplateCommand::Create(args) => {
            let objects = template_objects(kind, &args)?;
            let engine = open_local_engine()?;
            for object in objects {
                let name = object.name.clone();
                object.put(engine.store(), PutMode::Create, Utc::now())?;
                println!("{}/{name} created", kind.resource());
            }
        }
        TemplateCommand::Lint(args) => {
            let objects = template_objects(kind, &args)?;
            println!("no linting errors found in {} template(s)", objects.len());
        }
        TemplateCommand::List(args) => {
            let engine = open_local_engine()?;
            let namespace = args.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            for object in objects::list(engine.store(), kind, Some(namespace))? {
                println!(
                    "{}",
                    object
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                );
            }
        }
        TemplateCommand::Get(args) => {
            let engine = open_local_engine()?;
            let namespace = args.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            let object = objects::get(engine.store(), kind, namespace, &args.name)?;
            print_object(&object, &args.output)?;
        }
        TemplateCommand::Delete(args) => {
            let engine = open_local_engine()?;
            let namespace = args.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            for name in &args.names {
                if !engine.store().delete_object(kind, namespace, name)? {
                    bail!("{} {name}: not found", kind.as_str());
                }
                println!("{} '{name}' deleted", kind.as_str());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn template_objects(kind: ObjectKind, args: &TemplateFiles) -> Result<Vec<StoredObject>> {
    let objects: Vec<StoredObject> = read_objects(&args.files)?
        .into_iter()
        .filter(|(found, _)| found == kind.as_str())
        .map(|(found, value)| stored_object(&found, value, args.namespace.as_deref()))
        .collect::<Result<_>>()?;
    if objects.is_empty() {
        bail!("no {} in the files given", kind.as_str());
    }
    Ok(objects)
}

/// An object as JSON or YAML on standard output.
pub(crate) fn print_object(object: &Value, output: &str) -> Result<()> {
    match output {
        "json" => println!("{}", serde_json::to_string_pretty(object)?),
        "yaml" => print!(
            "{}",
            serde_saphyr::to_string(object).map_err(|e| anyhow!("cannot write YAML: {e}"))?
        ),
        other => bail!("-o {other}: expected json or yaml"),
    }
    Ok(())
}
