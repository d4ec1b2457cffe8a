//! `cox retry` and `cox resubmit`: a failed run again, in place or as a new run, as
//! `argo retry` and `argo resubmit` do. Here, or on the server (`--server`); either way the
//! run is followed until it ends, like `cox run` (exit 0 only if it succeeded).

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use cox_scheduler::machine::{NodeFieldSelector, RetryOptions};
use serde_json::{Value, json};

use crate::client::Client;
use crate::remote_cmd::{exit_code, print_workflow};
use crate::run_cmd::{LocalArgs, Output, follow, parse_parameters};

/// What both commands share.
#[derive(Args)]
pub struct Common {
    /// The run.
    name: String,
    /// Set a workflow parameter, `NAME=VALUE` (repeatable).
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    #[command(flatten)]
    local: LocalArgs,
}

/// `cox retry NAME`.
#[derive(Args)]
pub struct RetryArgs {
    #[command(flatten)]
    common: Common,
    /// Also run again the succeeded nodes --node-field-selector matches.
    #[arg(long)]
    restart_successful: bool,
    /// Nodes to restart, e.g. `displayName=train` or `templateName=load,phase=Succeeded`.
    #[arg(long, value_name = "SELECTOR", requires = "restart_successful")]
    node_field_selector: Option<String>,
}

/// `cox resubmit NAME`.
#[derive(Args)]
pub struct ResubmitArgs {
    #[command(flatten)]
    common: Common,
    /// Reuse what succeeded (the run must have failed): those steps do not run again.
    #[arg(long)]
    memoized: bool,
}

/// Retries a failed run in place, then follows it.
pub fn retry(remote: Option<&Client>, args: RetryArgs) -> Result<ExitCode> {
    let c = args.common;
    let parameters = parse_parameters(&c.parameters)?;
    let selector = args
        .node_field_selector
        .as_deref()
        .map(NodeFieldSelector::parse)
        .transpose()
        .map_err(|e| anyhow!(e))?;
    crate::block_on(async move {
        if let Some(client) = remote {
            let body = json!({
                "restartSuccessful": args.restart_successful,
                "nodeFieldSelector": args.node_field_selector.unwrap_or_default(),
                "parameters": c.parameters,
            });
            client.lifecycle(&c.name, "retry", body).await?;
            return follow_remote(client, &c.name, c.local.output).await;
        }
        let options = RetryOptions {
            restart_successful: args.restart_successful,
            node_selector: selector,
            parameters,
        };
        let engine = c.local.open().await?;
        engine.retry(&c.name, &options).await?;
        follow(engine, &c.name, c.local.output).await
    })
}

/// Resubmits a run as a new one, then follows it.
pub fn resubmit(remote: Option<&Client>, args: ResubmitArgs) -> Result<ExitCode> {
    let c = args.common;
    let parameters = parse_parameters(&c.parameters)?;
    crate::block_on(async move {
        if let Some(client) = remote {
            let body = json!({"memoized": args.memoized, "parameters": c.parameters});
            let new = client.lifecycle(&c.name, "resubmit", body).await?;
            let name = new["metadata"]["name"]
                .as_str()
                .ok_or_else(|| anyhow!("the server answered a workflow without a name"))?;
            return follow_remote(client, name, c.local.output).await;
        }
        let engine = c.local.open().await?;
        let name = engine.resubmit(&c.name, args.memoized, &parameters).await?;
        follow(engine, &name, c.local.output).await
    })
}

/// Follows a run on the server to its end; prints it.
async fn follow_remote(client: &Client, name: &str, output: Option<Output>) -> Result<ExitCode> {
    let workflow: Value = client.follow(name, |_| {}).await?;
    print_workflow(&workflow, output)?;
    Ok(exit_code(&workflow))
}
