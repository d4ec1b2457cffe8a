//! `cox submit`, `suspend`, `resume`, `stop`, `terminate`, `node set`, `wait`, `watch`, and
//! the server side of `get`, `list`, `logs`, `delete`: like `argo`'s commands of those names.
//! With a server (`--server URL` or `COX_SERVER`) each is one or a few calls of its REST API;
//! without one, `submit` runs the workflow here to its end and `wait`/`watch` read the local
//! store (a local run is controlled from the `cox run` that runs it: Ctrl-C stops it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, is_finished};
use crate::run_cmd::{self, Output, RunCommand};

#[derive(Args)]
pub struct SubmitArgs {
    /// Workflow files (not with --from).
    files: Vec<PathBuf>,
    /// Submit from a stored template: `workflowtemplate/NAME` or `clusterworkflowtemplate/NAME`.
    #[arg(long, value_name = "KIND/NAME")]
    from: Option<String>,
    /// Set a workflow parameter, `NAME=VALUE` (repeatable).
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    /// A YAML or JSON file of parameters, `name: value`.
    #[arg(long, value_name = "FILE")]
    parameter_file: Option<PathBuf>,
    /// Start with this template instead of `spec.entrypoint`.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Wait for the workflow to end, printing its nodes as they change.
    #[arg(long, conflicts_with = "wait")]
    watch: bool,
    /// Wait for the workflow to end.
    #[arg(long)]
    wait: bool,
    /// Output: name, json or yaml (of the final workflow when waiting).
    #[arg(short, long)]
    output: Option<String>,
    /// Local runs: run steps without the bubblewrap sandbox.
    #[arg(long)]
    no_sandbox: bool,
}

#[derive(Args)]
pub struct LifecycleArgs {
    /// The workflows' names.
    #[arg(required = true)]
    names: Vec<String>,
    /// Only suspend nodes matching this selector (`displayName=approve`); resume and stop.
    #[arg(long)]
    node_field_selector: Option<String>,
    /// Message of the suspend nodes a stop fails.
    #[arg(long)]
    message: Option<String>,
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Set the phase, message or supplied output parameters of suspend nodes.
    Set(NodeSetArgs),
}

#[derive(Args)]
pub struct NodeSetArgs {
    /// The workflow's name.
    name: String,
    /// Which nodes (`displayName=approve`).
    #[arg(long, required = true)]
    node_field_selector: String,
    /// A supplied output parameter, `NAME=VALUE` (repeatable).
    #[arg(long = "output-parameter", value_name = "NAME=VALUE")]
    output_parameters: Vec<String>,
    /// New phase: Succeeded, Failed or Error.
    #[arg(long)]
    phase: Option<String>,
    /// New message.
    #[arg(long)]
    message: Option<String>,
}

#[derive(Args)]
pub struct WaitArgs {
    /// The workflows' names.
    #[arg(required = true)]
    names: Vec<String>,
}

/// `get`, `list`, `logs`, `delete` (and `run`, as `submit --wait`) against the server.
pub async fn runs(client: &Client, command: RunCommand) -> Result<ExitCode> {
    match command {
        RunCommand::Run(args) => {
            let workflow = run_cmd::workflow_from_file(
                &args.file,
                &args.parameters,
                args.parameter_file.as_deref(),
                args.entrypoint.as_deref(),
                None,
            )?;
            let created = create(client, &workflow).await?;
            let name = name_of(&created)?;
            let finished = client.follow(&name, |_| {}).await?;
            print_workflow(&finished, args.local.output)?;
            Ok(exit_code(&finished))
        }
        RunCommand::Get(args) => {
            let workflow = client.get(&client.workflows(Some(&args.name))).await?;
            print_workflow(&workflow, args.output)?;
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::List(args) => {
            let mut path = client.workflows(None);
            if !args.status.is_empty() {
                // Argo's phase label, as `argo list --status` asks for it.
                path.push_str(&format!(
                    "?listOptions.labelSelector={}%20in%20({})",
                    cox_scheduler::server::workflow::PHASE_LABEL,
                    args.status.join(",")
                ));
            }
            let list = client.get(&path).await?;
            let now = Utc::now();
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["NAME", "STATUS", "AGE", "MESSAGE"]);
            for item in list["items"].as_array().into_iter().flatten() {
                let text = |pointer: &str| {
                    item.pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let age = DateTime::parse_from_rfc3339(&text("/metadata/creationTimestamp"))
                    .map(|t| run_cmd::human_duration((now - t.with_timezone(&Utc)).num_seconds()))
                    .unwrap_or_default();
                table.add_row([
                    text("/metadata/name"),
                    status_text(item),
                    age,
                    text("/status/message"),
                ]);
            }
            outln!("{table}")?;
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::Logs(args) => {
            let mut path = format!(
                "{}/log?logOptions.container=main",
                client.workflows(Some(&args.name))
            );
            if let Some(node) = &args.node {
                path.push_str(&format!("&podName={node}"));
            }
            if args.follow {
                path.push_str("&logOptions.follow=true");
            }
            client
                .stream(&path, |entry| {
                    let pod = entry
                        .pointer("/result/podName")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let content = entry
                        .pointer("/result/content")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    // A closed output (`| head`) ends the stream.
                    outln!("{pod}: {content}").is_ok()
                })
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        RunCommand::Delete(args) => {
            client
                .call(Method::DELETE, &client.workflows(Some(&args.name)), None)
                .await?;
            outln!("Workflow '{}' deleted", args.name)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `cox submit`.
pub async fn submit(remote: Option<&Client>, args: SubmitArgs) -> Result<ExitCode> {
    if args.from.is_some() && !args.files.is_empty() {
        bail!("submit takes workflow files or --from, not both");
    }
    if args.from.is_none() && args.files.is_empty() {
        bail!("submit: no workflow file (or --from) given");
    }
    // Without a server the workflows run here (see `run_cmd::local_workflows`); a server
    // lints what it is sent.
    let (target, workflows) = match remote {
        Some(client) => {
            let workflows = match &args.from {
                Some(from) => vec![from_template(from, &args)?],
                None => args
                    .files
                    .iter()
                    .map(|file| {
                        run_cmd::workflow_from_file(
                            file,
                            &args.parameters,
                            args.parameter_file.as_deref(),
                            args.entrypoint.as_deref(),
                            None,
                        )
                    })
                    .collect::<Result<Vec<_>>>()?,
            };
            (Target::Server(client), workflows)
        }
        None => {
            let (engine, mut workflows) = run_cmd::local_workflows(
                &args.files,
                &args.parameters,
                args.parameter_file.as_deref(),
                args.entrypoint.as_deref(),
                args.no_sandbox,
                None,
            )
            .await?;
            if let Some(from) = &args.from {
                workflows.push(from_template(from, &args)?);
            }
            (Target::Here(engine), workflows)
        }
    };
    let output = match args.output.as_deref() {
        None | Some("name" | "wide") => None,
        Some("json") => Some(Output::Json),
        Some("yaml") => Some(Output::Yaml),
        Some(other) => bail!("-o {other}: expected name, json or yaml"),
    };
    let client = match target {
        Target::Server(client) => client,
        // No server: the workflow runs here, so submitting waits for it.
        Target::Here(engine) => {
            let mut code = ExitCode::SUCCESS;
            for workflow in workflows {
                let ended = run_cmd::run_local(&engine, workflow, output).await?;
                if ended != ExitCode::SUCCESS {
                    code = ended;
                }
            }
            return Ok(code);
        }
    };
    let mut code = ExitCode::SUCCESS;
    for workflow in workflows {
        let created = create(client, &workflow).await?;
        let name = name_of(&created)?;
        if !(args.wait || args.watch) {
            match output {
                None => outln!("{name}")?,
                Some(_) => print_workflow(&created, output)?,
            }
            continue;
        }
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let finished = client
            .follow(&name, |workflow| {
                if args.watch {
                    print_changes(workflow, &mut seen);
                }
            })
            .await?;
        match output {
            None => outln!("{name} {}", status_text(&finished))?,
            Some(_) => print_workflow(&finished, output)?,
        }
        if exit_code(&finished) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// Where `submit` sends workflows.
enum Target<'c> {
    Server(&'c Client),
    Here(std::sync::Arc<cox_scheduler::Engine>),
}

/// The Workflow Argo's `submit --from` makes: the template by reference, with parameters.
fn from_template(from: &str, args: &SubmitArgs) -> Result<cox_config::model::Workflow> {
    let (kind, name) = from
        .split_once('/')
        .ok_or_else(|| anyhow!("--from {from}: expected workflowtemplate/NAME"))?;
    let cluster = match kind.to_ascii_lowercase().as_str() {
        "workflowtemplate" | "wftmpl" => false,
        "clusterworkflowtemplate" | "cwftmpl" => true,
        other => {
            bail!("--from {from}: '{other}' is not workflowtemplate or clusterworkflowtemplate")
        }
    };
    let mut parameters = Vec::new();
    for p in &args.parameters {
        let (key, value) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("-p {p}: expected NAME=VALUE"))?;
        parameters.push(json!({"name": key, "value": value}));
    }
    let label = if cluster {
        "workflows.argoproj.io/cluster-workflow-template"
    } else {
        "workflows.argoproj.io/workflow-template"
    };
    let mut spec = json!({"workflowTemplateRef": {"name": name}});
    if cluster {
        spec["workflowTemplateRef"]["clusterScope"] = json!(true);
    }
    if !parameters.is_empty() {
        spec["arguments"] = json!({"parameters": parameters});
    }
    if let Some(entrypoint) = &args.entrypoint {
        spec["entrypoint"] = json!(entrypoint);
    }
    let workflow = json!({
        "apiVersion": cox_config::load::API_VERSION,
        "kind": "Workflow",
        "metadata": {"generateName": format!("{name}-"), "labels": {label: name}},
        "spec": spec,
    });
    serde_json::from_value(workflow).map_err(|e| anyhow!("--from {from}: {e}"))
}

async fn create(client: &Client, workflow: &cox_config::model::Workflow) -> Result<Value> {
    let body = json!({"namespace": client.namespace, "workflow": workflow});
    client
        .call(Method::POST, &client.workflows(None), Some(&body))
        .await
}

fn name_of(workflow: &Value) -> Result<String> {
    workflow
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("server answered a workflow without a name: {workflow}"))
}

/// `cox suspend|resume|stop|terminate NAME...`.
pub async fn lifecycle(
    remote: Option<&Client>,
    verb: &str,
    args: LifecycleArgs,
) -> Result<ExitCode> {
    let client = needs_server(remote, verb)?;
    let mut body = json!({});
    if let Some(selector) = &args.node_field_selector {
        body["nodeFieldSelector"] = json!(selector);
    }
    if let Some(message) = &args.message {
        body["message"] = json!(message);
    }
    for name in &args.names {
        client.lifecycle(name, verb, body.clone()).await?;
        let past = match verb {
            "stop" => "stopped",
            "suspend" => "suspended",
            "resume" => "resumed",
            _ => "terminated",
        };
        outln!("workflow {name} {past}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `cox node set NAME ...`.
pub async fn node(remote: Option<&Client>, command: NodeCommand) -> Result<ExitCode> {
    let client = needs_server(remote, "node set")?;
    let NodeCommand::Set(args) = command;
    let mut outputs = serde_json::Map::new();
    for p in &args.output_parameters {
        let (key, value) = p
            .split_once('=')
            .ok_or_else(|| anyhow!("--output-parameter {p}: expected NAME=VALUE"))?;
        outputs.insert(key.to_string(), json!(value));
    }
    let mut body = json!({"nodeFieldSelector": args.node_field_selector});
    if !outputs.is_empty() {
        body["outputParameters"] = json!(Value::Object(outputs).to_string());
    }
    if let Some(phase) = &args.phase {
        body["phase"] = json!(phase);
    }
    if let Some(message) = &args.message {
        body["message"] = json!(message);
    }
    client.lifecycle(&args.name, "set", body).await?;
    outln!("workflow {} nodes updated", args.name)?;
    Ok(ExitCode::SUCCESS)
}

/// `cox wait NAME...` (`watch`: `cox watch NAME`, printing changes).
pub async fn wait(remote: Option<&Client>, args: WaitArgs, watch: bool) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in &args.names {
        let finished = match remote {
            Some(client) => {
                let mut seen = BTreeMap::new();
                client
                    .follow(name, |workflow| {
                        if watch {
                            print_changes(workflow, &mut seen);
                        }
                    })
                    .await?
            }
            None => {
                let engine = run_cmd::open_local_engine()?;
                let state = engine
                    .get(name)?
                    .ok_or_else(|| anyhow!("run {name}: not found"))?;
                if !state.is_finished() {
                    bail!(
                        "run {name} has not finished and no cox process runs it here; `cox server` resumes it"
                    );
                }
                state.workflow_json()
            }
        };
        outln!("{name} {}", status_text(&finished))?;
        if exit_code(&finished) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn needs_server<'c>(remote: Option<&'c Client>, what: &str) -> Result<&'c Client> {
    remote.ok_or_else(|| {
        anyhow!(
            "cox {what} talks to a server: pass --server URL or set COX_SERVER (a local run is controlled from its cox run: Ctrl-C stops it)"
        )
    })
}

pub(crate) fn exit_code(workflow: &Value) -> ExitCode {
    if workflow.pointer("/status/phase").and_then(Value::as_str) == Some("Succeeded") {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `Running`, `Running (Suspended)`, `Succeeded`, ...
fn status_text(workflow: &Value) -> String {
    let phase = workflow
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    let suspended = workflow.pointer("/spec/suspend") == Some(&json!(true))
        || (!is_finished(workflow)
            && workflow["status"]["nodes"]
                .as_object()
                .is_some_and(|nodes| {
                    nodes
                        .values()
                        .any(|n| n["type"] == "Suspend" && n["phase"] == "Running")
                }));
    if suspended && phase == "Running" {
        "Running (Suspended)".to_string()
    } else {
        phase.to_string()
    }
}

/// One line per node whose phase changed since the last call.
fn print_changes(workflow: &Value, seen: &mut BTreeMap<String, String>) {
    for node in workflow["status"]["nodes"]
        .as_object()
        .into_iter()
        .flat_map(|nodes| nodes.values())
    {
        let id = node["id"].as_str().unwrap_or_default().to_string();
        let phase = node["phase"].as_str().unwrap_or_default().to_string();
        if node["type"] != "StepGroup" && seen.get(&id) != Some(&phase) {
            eprintln!(
                "{}: {phase} {}",
                node["displayName"].as_str().unwrap_or_default(),
                node["message"].as_str().unwrap_or_default()
            );
            seen.insert(id, phase);
        }
    }
}

/// A Workflow from the server: as JSON, YAML, or `argo get`'s summary.
pub(crate) fn print_workflow(workflow: &Value, output: Option<Output>) -> Result<()> {
    match output {
        Some(Output::Json) => outln!("{}", serde_json::to_string_pretty(workflow)?)?,
        Some(Output::Yaml) => out!(
            "{}",
            serde_saphyr::to_string(workflow).map_err(|e| anyhow!("cannot write YAML: {e}"))?
        )?,
        Some(Output::Wide) | None => {
            let text = |pointer: &str| {
                workflow
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            outln!("{:<15}{}", "Name:", text("/metadata/name"))?;
            outln!("{:<15}{}", "Namespace:", text("/metadata/namespace"))?;
            outln!("{:<15}{}", "Status:", status_text(workflow))?;
            for (label, pointer) in [
                ("Message:", "/status/message"),
                ("Started:", "/status/startedAt"),
                ("Finished:", "/status/finishedAt"),
            ] {
                let value = text(pointer);
                if !value.is_empty() {
                    outln!("{label:<15}{value}")?;
                }
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["STEP", "TYPE", "PHASE", "PODNAME", "MESSAGE"]);
            for node in workflow["status"]["nodes"]
                .as_object()
                .into_iter()
                .flat_map(|nodes| nodes.values())
                .filter(|n| n["type"] != "StepGroup")
            {
                let field = |key: &str| node[key].as_str().unwrap_or_default().to_string();
                table.add_row([
                    field("displayName"),
                    field("type"),
                    field("phase"),
                    field("id"),
                    field("message"),
                ]);
            }
            outln!("\n{table}")?;
        }
    }
    Ok(())
}
