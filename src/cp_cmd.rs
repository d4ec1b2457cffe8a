//! `cox cp NAME DIR`: copies a run's output artifacts out of the artifact repository (or
//! the artifact's own bucket, where it was saved to one), as `argo cp` does. Each artifact is downloaded, checked against the size and SHA-256
//! recorded when it was saved, and unpacked (safely) to its own path under `DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use cox_artifacts::{Archive, Expected};
use cox_scheduler::engine::{Engine, EngineConfig};

use crate::run_cmd;

/// Argo's default `--path`.
const DEFAULT_PATH: &str = "{namespace}/{workflowName}/{nodeId}/outputs/{artifactName}";

/// `cox cp` arguments (Argo's `argo cp`).
#[derive(clap::Args)]
pub struct CpArgs {
    /// The run.
    name: String,
    /// Where to put the artifacts.
    output_directory: PathBuf,
    /// Only the output artifact with this name.
    #[arg(long)]
    artifact_name: Option<String>,
    /// Only the artifacts of the node with this id.
    #[arg(long)]
    node_id: Option<String>,
    /// Only the artifacts of nodes of this template.
    #[arg(long)]
    template_name: Option<String>,
    /// Where each artifact goes under the output directory; {workflowName}, {nodeId},
    /// {templateName}, {artifactName} and {namespace} are replaced.
    #[arg(long, default_value = DEFAULT_PATH)]
    path: String,
    /// The configuration file naming the artifact repository (default: `COX_CONFIG`).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Runs `cox cp`.
pub fn run(args: CpArgs) -> Result<ExitCode> {
    crate::block_on(copy(args))
}

async fn copy(args: CpArgs) -> Result<ExitCode> {
    let home = cox_scheduler::engine::default_home()?;
    let config = args
        .config
        .clone()
        .or_else(|| std::env::var_os("COX_CONFIG").map(PathBuf::from));
    let repository = run_cmd::repository(&home, config.as_deref())?;
    let (state, store) = {
        let engine = Engine::open(EngineConfig::new(
            &home,
            run_cmd::local_executor(&home, true, repository.clone()),
        ))?;
        let state = engine
            .get(&args.name)?
            .ok_or_else(|| anyhow!("run {}: not found", args.name))?;
        (state, engine.store().clone())
    };
    let sources = repository.sources();
    let workflow = state.workflow_json();
    let namespace = workflow["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let mut copied = 0;
    for node in state.nodes.values() {
        let template = node.template_name.as_deref().unwrap_or_default();
        if args.node_id.as_ref().is_some_and(|id| *id != node.id)
            || args.template_name.as_ref().is_some_and(|t| t != template)
        {
            continue;
        }
        for a in &node.outputs.artifacts {
            if args.artifact_name.as_ref().is_some_and(|n| *n != a.name) {
                continue;
            }
            let rel = args
                .path
                .replace("{namespace}", &namespace)
                .replace("{workflowName}", &state.name)
                .replace("{nodeId}", &node.id)
                .replace("{templateName}", template)
                .replace("{artifactName}", &a.name);
            let dest = safe_join(&args.output_directory, &rel)?;
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let archive = match a.archive.as_str() {
                "none" => Archive::None,
                "zip" => Archive::Zip,
                _ => Archive::default(),
            };
            // The run's repository (its artifactRepositoryRef, else the configured one), or
            // the artifact's own bucket, under the same policy as the steps (its Secrets, or
            // the host's keys for an allowed bucket).
            let from = sources
                .for_artifact(&workflow, a.store.as_ref(), &store)
                .map_err(|e| anyhow!("artifact {} of node {}: {e}", a.name, node.display_name))?
                .open()
                .with_context(|| {
                    format!(
                        "artifact {} of node {}: cannot open its repository",
                        a.name, node.display_name
                    )
                })?;
            from.load_path(
                &a.key,
                &dest,
                archive,
                Some(Expected::new(a.size, &a.sha256)),
            )
            .await
            .with_context(|| format!("artifact {} of node {}", a.name, node.display_name))?;
            outln!("{} -> {}", a.name, dest.display())?;
            copied += 1;
        }
    }
    if copied == 0 {
        bail!("run {}: no output artifacts match", state.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `dir/rel`, refusing a `rel` that is absolute or climbs out with `..`.
fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute()
        || rel.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        bail!(
            "--path gives {}, which leaves the output directory",
            rel.display()
        );
    }
    Ok(dir.join(rel))
}
