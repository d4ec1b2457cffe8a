//! `cox run`, `cox get`, `cox list`, `cox logs`, `cox delete`: local runs, like `argo submit
//! --watch`, `argo get`, `argo list`, `argo logs` and `argo delete`. Wiring and rendering only;
//! the engine is `cox_scheduler::Engine`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use cox_config::lint::lint_loaded;
use cox_config::model::{Manifest, Workflow};
use cox_config::validate::Registry;
use cox_scheduler::machine::{Node, NodeType, Phase, RunState};
use cox_scheduler::{Engine, EngineConfig};

use crate::client::Client;
use crate::remote_cmd;
use cox_worker::repo_config::{
    ArtifactSources, CoxConfigFile, Credentials, RepositoryConfig, RepositoryPolicy,
    env_credentials,
};
use cox_worker::step::Executor;
use cox_worker::{LocalExecutor, LocalExecutorConfig};

/// How long a command waits for another `cox` process to release the home before failing.
const LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Subcommand)]
pub enum RunCommand {
    /// Run a workflow file locally and wait for it to end (exit 0 only if it succeeded).
    Run(RunArgs),
    /// Show a run: its status and node tree.
    Get(GetArgs),
    /// List runs, oldest first.
    List(ListArgs),
    /// Print a run's step logs, `node: line`.
    Logs(LogsArgs),
    /// Delete a run.
    Delete(DeleteArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The workflow file (its Workflow document, or its only document).
    pub(crate) file: PathBuf,
    /// Set a workflow parameter, `NAME=VALUE` (repeatable).
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
    pub(crate) parameters: Vec<String>,
    /// A YAML or JSON file of parameters, `name: value`.
    #[arg(long, value_name = "FILE")]
    pub(crate) parameter_file: Option<PathBuf>,
    /// Start with this template instead of `spec.entrypoint`.
    #[arg(long)]
    pub(crate) entrypoint: Option<String>,
    #[command(flatten)]
    pub(crate) local: LocalArgs,
}

/// How a run started here is run and shown: shared by `cox run`, `cox retry` and
/// `cox resubmit`.
#[derive(Args)]
pub struct LocalArgs {
    /// Output format of the final result.
    #[arg(short, long, value_enum)]
    pub(crate) output: Option<Output>,
    /// Here: run steps as plain host processes, without the bubblewrap sandbox.
    #[arg(long)]
    pub(crate) no_sandbox: bool,
    /// Here: the cox configuration file (YAML): `artifactRepository` (local or s3); see
    /// docs/artifacts.md.
    #[arg(long, value_name = "FILE", env = "COX_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

impl LocalArgs {
    /// The engine on the local home with these settings.
    pub(crate) async fn open(&self) -> Result<Arc<Engine>> {
        open_runner(self.no_sandbox, self.config.as_deref()).await
    }
}

#[derive(Args)]
pub struct GetArgs {
    /// The run's name.
    pub(crate) name: String,
    /// Output format.
    #[arg(short, long, value_enum)]
    pub(crate) output: Option<Output>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only runs in these phases (comma separated, repeatable): Pending, Running, Succeeded,
    /// Failed, Error.
    #[arg(long, value_delimiter = ',', value_name = "PHASE[,PHASE]", value_parser = workflow_phase)]
    pub(crate) status: Vec<String>,
}

/// The workflow phases `--status` accepts, Argo's names.
const WORKFLOW_PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Error"];

fn workflow_phase(text: &str) -> Result<String, String> {
    WORKFLOW_PHASES
        .iter()
        .find(|phase| phase.eq_ignore_ascii_case(text.trim()))
        .map(|phase| phase.to_string())
        .ok_or_else(|| {
            format!(
                "unknown workflow phase '{text}' (one of {})",
                WORKFLOW_PHASES.join(", ")
            )
        })
}

#[derive(Args)]
pub struct LogsArgs {
    /// The run's name.
    pub(crate) name: String,
    /// Only this node (id, name or display name).
    pub(crate) node: Option<String>,
    /// Keep following logs that are still being written.
    #[arg(short, long)]
    pub(crate) follow: bool,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// The run's name.
    pub(crate) name: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// The Workflow object as JSON.
    Json,
    /// The Workflow object as YAML.
    Yaml,
    /// The summary with inputs and outputs of each node.
    Wide,
}

/// Run one of the subcommands on a fresh runtime: against the server when there is one.
pub fn run(command: RunCommand, remote: Option<Client>) -> Result<ExitCode> {
    crate::block_on(async move {
        if let Some(client) = remote {
            return remote_cmd::runs(&client, command).await;
        }
        match command {
            RunCommand::Run(args) => run_workflow(args).await,
            RunCommand::Get(args) => get(args).await,
            RunCommand::List(args) => list(args).await,
            RunCommand::Logs(args) => logs(args).await,
            RunCommand::Delete(args) => delete(args).await,
        }
    })
}

/// The executor for local runs: host processes in `<home>/runs`, artifacts in the configured
/// repository (`<home>/artifacts` by default).
pub(crate) fn local_executor(
    home: &Path,
    no_sandbox: bool,
    configured: Configured,
) -> Arc<dyn Executor> {
    let mut config = LocalExecutorConfig::new(home, home.join("artifacts"));
    config.sandbox = !no_sandbox;
    config.set_repository(configured.repository);
    config.archive_logs = configured.archive_logs;
    config.policy = configured.policy;
    Arc::new(LocalExecutor::new(config))
}

/// The configuration file's artifact repository and its repository-wide settings.
#[derive(Debug, Clone)]
pub(crate) struct Configured {
    /// Where artifacts go.
    pub repository: RepositoryConfig,
    /// The repository's `archiveLogs`: every step's log archived.
    pub archive_logs: bool,
    /// What repositories workflows may name, and which get the host's keys.
    pub policy: RepositoryPolicy,
}

impl Configured {
    /// Where the runs' saved artifacts are read back from (`cox cp`, `cox server`).
    pub fn sources(&self) -> ArtifactSources {
        ArtifactSources {
            configured: self.repository.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// Keys from the environment of this process (a half-set pair counts as none).
fn process_env_credentials() -> Option<Credentials> {
    env_credentials(&|name| std::env::var(name).ok()).unwrap_or(None)
}

/// The artifact repository of the configuration file `config` (`--config`/`COX_CONFIG`),
/// `<home>/artifacts` without one.
pub(crate) fn repository(home: &Path, config: Option<&Path>) -> Result<Configured> {
    let default = home.join("artifacts");
    let Some(path) = config else {
        let repository = RepositoryConfig::Local(default.clone());
        let policy = RepositoryPolicy::new(&repository, &[], process_env_credentials(), default);
        return Ok(Configured {
            repository,
            archive_logs: false,
            policy,
        });
    };
    let file = CoxConfigFile::load(path).map_err(|e| anyhow!("{e}"))?;
    let base = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let repository = file
        .repository(&base, &default, &|name| std::env::var(name).ok())
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let policy = file.policy(&base, &repository, process_env_credentials(), &default);
    Ok(Configured {
        repository,
        archive_logs: file.archive_logs(),
        policy,
    })
}

/// The engine on the local home, to read and write the store (steps run sandboxed).
pub(crate) fn open_local_engine() -> Result<Engine> {
    open_engine(false)
}

fn open_engine(no_sandbox: bool) -> Result<Engine> {
    let config = std::env::var_os("COX_CONFIG").map(PathBuf::from);
    open_engine_with(no_sandbox, config.as_deref())
}

fn open_engine_with(no_sandbox: bool, config_file: Option<&Path>) -> Result<Engine> {
    let home = cox_scheduler::engine::default_home()?;
    let repository = repository(&home, config_file)?;
    let mut config = EngineConfig::new(&home, local_executor(&home, no_sandbox, repository));
    config.lock_wait = LOCK_WAIT;
    Ok(Engine::open(config)?)
}

async fn run_workflow(args: RunArgs) -> Result<ExitCode> {
    let (engine, mut workflows) = local_workflows(
        std::slice::from_ref(&args.file),
        &args.parameters,
        args.parameter_file.as_deref(),
        args.entrypoint.as_deref(),
        args.local.no_sandbox,
        args.local.config.as_deref(),
    )
    .await?;
    let workflow = workflows.pop().ok_or_else(|| anyhow!("no workflow"))?;
    run_local(&engine, workflow, args.local.output).await
}

/// Workflow files to run here, and the engine to run them: each file is linted before the
/// home is touched, then again against the templates the home stores.
pub(crate) async fn local_workflows(
    files: &[PathBuf],
    parameters: &[String],
    parameter_file: Option<&Path>,
    entrypoint: Option<&str>,
    no_sandbox: bool,
    config: Option<&Path>,
) -> Result<(std::sync::Arc<Engine>, Vec<Workflow>)> {
    let read = |stored: Option<&[Manifest]>| {
        files
            .iter()
            .map(|file| workflow_from_file(file, parameters, parameter_file, entrypoint, stored))
            .collect::<Result<Vec<_>>>()
    };
    read(None)?;
    let engine = open_runner(no_sandbox, config).await?;
    let stored = stored_templates(&engine)?;
    let workflows = read(Some(&stored))?;
    Ok((engine, workflows))
}

/// The engine that runs workflows here (the sandbox checked first, unless refused).
pub(crate) async fn open_runner(
    no_sandbox: bool,
    config: Option<&Path>,
) -> Result<std::sync::Arc<Engine>> {
    if !no_sandbox && let Err(e) = cox_worker::check_sandbox().await {
        bail!("the step sandbox is not available: {e}; install bubblewrap or pass --no-sandbox");
    }
    Ok(std::sync::Arc::new(open_engine_with(no_sandbox, config)?))
}

/// The templates stored in the local home (default namespace), for lint.
pub(crate) fn stored_templates(engine: &Engine) -> Result<Vec<Manifest>> {
    Ok(cox_scheduler::objects::template_manifests(
        engine.store(),
        cox_scheduler::resolve::DEFAULT_NAMESPACE,
    )?)
}

/// Run a workflow here to its end, showing progress; exit 0 only if it succeeded.
pub(crate) async fn run_local(
    engine: &std::sync::Arc<Engine>,
    workflow: Workflow,
    output: Option<Output>,
) -> Result<ExitCode> {
    let name = engine.submit(workflow).await?;
    follow(engine.clone(), &name, output).await
}

/// Shows run `name` of `engine` until it ends, then its result; exit 0 only if it succeeded.
pub(crate) async fn follow(
    engine: std::sync::Arc<Engine>,
    name: &str,
    output: Option<Output>,
) -> Result<ExitCode> {
    // Ctrl-C stops the run as `argo stop` does (exit handlers run); a second one terminates it.
    let interrupts = {
        let (engine, name) = (engine.clone(), name.to_string());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "cox: stopping {name} (exit handlers still run); Ctrl-C again terminates it"
                );
                let _ = engine.stop(&name, false);
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("cox: terminating {name}");
                    let _ = engine.stop(&name, true);
                }
            }
        })
    };
    if let Some(progress) = engine.watch(name) {
        show_progress(progress).await;
    }
    let state = engine.await_completion(name).await?;
    interrupts.abort();
    print_result(&state, output)?;
    Ok(if state.phase() == Phase::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A workflow file's Workflow, linted (references checked against `stored` templates when
/// given, as a store that holds every template), with `-p NAME=VALUE`, `--parameter-file`
/// and `--entrypoint` applied.
pub(crate) fn workflow_from_file(
    file: &Path,
    parameters: &[String],
    parameter_file: Option<&Path>,
    entrypoint: Option<&str>,
    stored: Option<&[Manifest]>,
) -> Result<Workflow> {
    let source = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("{source}: cannot read"))?;
    let loaded = cox_config::load::load(&source, &text);
    let mut registry = Registry::default();
    registry.complete = stored.is_some();
    for manifest in stored.unwrap_or_default() {
        registry.add(manifest);
    }
    for document in &loaded.documents {
        registry.add(&document.manifest);
    }
    let report = lint_loaded(std::slice::from_ref(&loaded), &registry);
    if report.error_count() > 0 {
        let mut message = String::new();
        for d in report.diagnostics.iter().filter(|d| d.is_error()) {
            let _ = writeln!(message, "{d}");
        }
        bail!(
            "{message}{source}: not run: {} linting error(s)",
            report.error_count()
        );
    }
    drop(registry);
    let mut workflows: Vec<Workflow> = loaded
        .documents
        .into_iter()
        .filter_map(|d| match d.manifest {
            Manifest::Workflow(w) => Some(w),
            _ => None,
        })
        .collect();
    let mut workflow = match workflows.len() {
        1 => workflows.remove(0),
        0 => bail!("{source}: no Workflow document to run"),
        n => bail!("{source}: {n} Workflow documents; cox run takes a file with one"),
    };
    let given = parameters;
    let mut parameters: Vec<(String, String)> = Vec::new();
    if let Some(path) = parameter_file {
        parameters.extend(read_parameter_file(path)?);
    }
    parameters.extend(parse_parameters(given)?);
    let arguments = workflow.spec.arguments.get_or_insert_default();
    for (name, value) in parameters {
        // A value outside the parameter's enum is refused before anything runs, as Argo does.
        arguments
            .set_parameter(&name, &value)
            .map_err(|e| anyhow!(e))?;
    }
    if let Some(entrypoint) = entrypoint {
        workflow.spec.entrypoint = Some(entrypoint.to_string());
    }
    Ok(workflow)
}

/// `-p NAME=VALUE` arguments as pairs.
pub(crate) fn parse_parameters(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("-p {p}: expected NAME=VALUE"))
        })
        .collect()
}

fn read_parameter_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let values: BTreeMap<String, serde_json::Value> =
        serde_saphyr::from_str(&text).map_err(|e| {
            anyhow!(
                "{}: not a map of parameter names to values: {e}",
                path.display()
            )
        })?;
    Ok(values
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (name, text)
        })
        .collect())
}

/// Progress on stderr, so stdout holds only the result: a live tree on a terminal, else a
/// line each time a node changes phase.
async fn show_progress(mut progress: tokio::sync::watch::Receiver<RunState>) {
    let live = std::io::stderr().is_terminal();
    let mut drawn_lines = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut store_error: Option<String> = None;
    // The last state shown (plain lines), to say what changed since.
    let mut shown: Option<RunState> = None;
    loop {
        let state = progress.borrow_and_update().clone();
        let mut err = std::io::stderr().lock();
        // A store that refuses writes (a full disk) is said once, and again once it is over.
        if state.store_error != store_error {
            match &state.store_error {
                Some(e) => {
                    let _ = writeln!(err, "cox: {e}");
                }
                None => {
                    let _ = writeln!(err, "cox: the store accepts writes again");
                }
            }
            drawn_lines = 0;
            store_error.clone_from(&state.store_error);
        }
        if live {
            let text = live_tree(&state, Utc::now());
            if drawn_lines > 0 {
                let _ = write!(err, "\x1b[{drawn_lines}A\x1b[J");
            }
            let _ = write!(err, "{text}");
            drawn_lines = text.lines().count();
        } else {
            // Written at once (`writeln!` on stderr makes a write per piece). A node is said
            // when it is new or its phase changed since the last state shown, walked in step
            // with it (both in id order, so no node is looked up).
            let mut lines = String::new();
            let mut before = shown.as_ref().map(|s| s.nodes.iter().peekable());
            for (id, node) in state.nodes.iter() {
                if let Some(before) = &mut before {
                    while before.next_if(|(old, _)| *old < id).is_some() {}
                    if let Some((_, was)) = before.next_if(|(old, _)| *old == id)
                        && was.phase == node.phase
                    {
                        continue;
                    }
                }
                if node.node_type != NodeType::StepGroup {
                    let _ = writeln!(
                        lines,
                        "{}: {} {}",
                        node.display_name,
                        node.phase.as_str(),
                        node.message
                    );
                }
            }
            let _ = err.write_all(lines.as_bytes());
            drop(before);
            shown = Some(state.clone());
        }
        drop(err);
        if state.is_finished() {
            return;
        }
        tokio::select! {
            changed = progress.changed() => if changed.is_err() { return },
            // Redraw durations of running nodes.
            _ = tick.tick(), if live => {}
        }
    }
}

fn live_tree(state: &RunState, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "{}  {}  {}\n",
        state.name,
        state.phase().as_str(),
        run_duration(state, now)
    );
    for row in tree_rows(state) {
        let node = row.node;
        let _ = writeln!(
            out,
            "{}{} {}  {}",
            row.prefix,
            icon(node.phase),
            node.display_name,
            node_duration(node, now)
        );
    }
    out
}

pub(crate) fn print_result(state: &RunState, output: Option<Output>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        Some(Output::Json) => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&state.workflow_json())?
        )?,
        Some(Output::Yaml) => write!(
            out,
            "{}",
            serde_saphyr::to_string(&state.workflow_json()).map_err(|e| anyhow!("{e}"))?
        )?,
        Some(Output::Wide) => write!(out, "{}", summary(state, true, Utc::now()))?,
        None => write!(out, "{}", summary(state, false, Utc::now()))?,
    }
    Ok(())
}

/// `argo get`'s text: the run's fields, then the node tree as a table.
fn summary(state: &RunState, wide: bool, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<15}{}", "Name:", state.name);
    let _ = writeln!(out, "{:<15}{}", "Status:", state.phase().as_str());
    if !state.message.is_empty() {
        let _ = writeln!(out, "{:<15}{}", "Message:", state.message);
    }
    if let Some(t) = &state.started_at {
        let _ = writeln!(out, "{:<15}{t}", "Started:");
    }
    if let Some(t) = &state.finished_at {
        let _ = writeln!(out, "{:<15}{t}", "Finished:");
    }
    let _ = writeln!(out, "{:<15}{}", "Duration:", run_duration(state, now));
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    let mut header = vec!["STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE"];
    if wide {
        header.extend(["INPUTS", "OUTPUTS"]);
    }
    table.set_header(header);
    for row in tree_rows(state) {
        let node = row.node;
        let mut cells = vec![
            format!("{}{} {}", row.prefix, icon(node.phase), node.display_name),
            node.template_name.clone().unwrap_or_default(),
            if node.node_type == NodeType::Pod {
                node.id.clone()
            } else {
                String::new()
            },
            node_duration(node, now),
            node.message.clone(),
        ];
        if wide {
            cells.push(pairs(&node.inputs));
            let mut outputs = pairs(&node.outputs.parameters);
            if let Some(result) = &node.outputs.result {
                outputs = [outputs, format!("result={result}")]
                    .join(" ")
                    .trim()
                    .to_string();
            }
            cells.push(outputs);
        }
        table.add_row(cells);
    }
    let _ = writeln!(out, "\n{table}");
    out
}

fn pairs(values: &[(String, String)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Row<'a> {
    prefix: String,
    node: &'a Node,
}

/// The node tree from the root, depth first, with box-drawing prefixes. Step groups are not
/// shown (their children hang from the steps node), as `argo get` does.
fn tree_rows(state: &RunState) -> Vec<Row<'_>> {
    fn shown_children<'a>(state: &'a RunState, node: &'a Node) -> Vec<&'a Node> {
        let mut out = Vec::new();
        for id in &node.children {
            let Some(child) = state.nodes.get(id) else {
                continue;
            };
            if child.node_type == NodeType::StepGroup {
                out.extend(shown_children(state, child));
            } else {
                out.push(child);
            }
        }
        out
    }
    fn walk<'a>(
        state: &'a RunState,
        node: &'a Node,
        indent: &str,
        prefix: String,
        rows: &mut Vec<Row<'a>>,
        depth: usize,
    ) {
        rows.push(Row { prefix, node });
        // Exit handlers and hooks can make node graphs deep, not cyclic; the bound is a guard.
        if depth > 64 {
            return;
        }
        let children = shown_children(state, node);
        let count = children.len();
        for (i, child) in children.into_iter().enumerate() {
            let last = i + 1 == count;
            let branch = if last { "└─" } else { "├─" };
            let next_indent = format!("{indent}{}", if last { "  " } else { "│ " });
            walk(
                state,
                child,
                &next_indent,
                format!("{indent}{branch}"),
                rows,
                depth + 1,
            );
        }
    }
    let mut rows = Vec::new();
    if let Some(root) = state.nodes.get(&state.name) {
        walk(state, root, "", String::new(), &mut rows, 0);
    }
    // Nodes outside the root's tree (the workflow's exit handler) follow it.
    for node in state.nodes.values() {
        if node.boundary_id.is_none()
            && node.id != state.name
            && !rows.iter().any(|r| r.node.id == node.id)
        {
            walk(state, node, "", String::new(), &mut rows, 0);
        }
    }
    rows
}

fn icon(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "◷",
        Phase::Running => "●",
        Phase::Succeeded => "✔",
        Phase::Failed => "✖",
        Phase::Error => "⚠",
        Phase::Skipped | Phase::Omitted => "○",
    }
}

fn parse_time(t: Option<&String>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn span(started: Option<&String>, finished: Option<&String>, now: DateTime<Utc>) -> String {
    let Some(start) = parse_time(started) else {
        return String::new();
    };
    let end = parse_time(finished).unwrap_or(now);
    human_duration((end - start).num_seconds().max(0))
}

fn run_duration(state: &RunState, now: DateTime<Utc>) -> String {
    span(state.started_at.as_ref(), state.finished_at.as_ref(), now)
}

fn node_duration(node: &Node, now: DateTime<Utc>) -> String {
    span(node.started_at.as_ref(), node.finished_at.as_ref(), now)
}

/// `45s`, `2m 5s`, `1h 0m`, as `argo get` prints durations.
pub(crate) fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

async fn get(args: GetArgs) -> Result<ExitCode> {
    let engine = open_engine(true)?;
    let state = engine
        .get(&args.name)?
        .ok_or_else(|| anyhow!("run {}: not found", args.name))?;
    print_result(&state, args.output)?;
    Ok(ExitCode::SUCCESS)
}

async fn list(args: ListArgs) -> Result<ExitCode> {
    let engine = open_engine(true)?;
    let now = Utc::now();
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["NAME", "STATUS", "AGE", "DURATION", "MESSAGE"]);
    for run in engine.list()? {
        if !args.status.is_empty() && !args.status.iter().any(|s| s == run.phase.as_str()) {
            continue;
        }
        table.add_row([
            run.name.clone(),
            run.phase.as_str().to_string(),
            human_duration((now - run.created_at).num_seconds().max(0)),
            span(run.started_at.as_ref(), run.finished_at.as_ref(), now),
            run.message.clone(),
        ]);
    }
    outln!("{table}")?;
    Ok(ExitCode::SUCCESS)
}

async fn logs(args: LogsArgs) -> Result<ExitCode> {
    let engine = open_engine(true)?;
    let state = engine
        .get(&args.name)?
        .ok_or_else(|| anyhow!("run {}: not found", args.name))?;
    let pods: Vec<&Node> = state
        .nodes
        .values()
        .filter(|n| n.node_type == NodeType::Pod && n.launched)
        .filter(|n| match &args.node {
            Some(wanted) => n.id == *wanted || n.name == *wanted || n.display_name == *wanted,
            None => true,
        })
        .collect();
    if let Some(wanted) = &args.node
        && pods.is_empty()
    {
        bail!("run {}: no step node {wanted}", args.name);
    }
    let mut pods = pods;
    pods.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let mut out = std::io::stdout().lock();
    for node in pods {
        let Some(path) = engine
            .executor()
            .log_path(&state.name, &node.id, node.attempt)
        else {
            continue;
        };
        if !path.exists() {
            continue;
        }
        if args.follow && !node.phase.is_done() {
            // Only this process could have been running the step, and it is not: the file ends here.
            eprintln!(
                "cox: {}: the run is not running; showing its log so far",
                node.display_name
            );
        }
        for line in cox_worker::read_log(&path).await? {
            writeln!(out, "{}: {}", node.display_name, line.line)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(args: DeleteArgs) -> Result<ExitCode> {
    let engine = open_engine(true)?;
    if !engine.delete(&args.name).await? {
        bail!("run {}: not found", args.name);
    }
    outln!("Workflow '{}' deleted", args.name)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_argo() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(3_660), "1h 1m");
    }
}
