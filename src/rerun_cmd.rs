//! `cox retry` and `cox resubmit`: a failed run again, in place or as a new run, as
//! `argo retry` and `argo resubmit` do; here, like `cox run`, the run is followed until it
//! ends (exit 0 only if it succeeded).

use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use cox_scheduler::machine::{NodeSelector, RetryOptions};

use crate::run_cmd::{RunFlags, follow, parse_parameters};

/// What both commands share.
#[derive(Args)]
pub struct Common {
    /// The run.
    name: String,
    /// Set a workflow parameter, `NAME=VALUE` (repeatable).
    #[arg(short = 'p', long = "parameter", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    #[command(flatten)]
    run: RunFlags,
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
pub fn retry(args: RetryArgs) -> Result<ExitCode> {
    let options = RetryOptions {
        restart_successful: args.restart_successful,
        node_selector: args
            .node_field_selector
            .as_deref()
            .map(NodeSelector::parse)
            .transpose()
            .map_err(|e| anyhow!(e))?,
        parameters: parse_parameters(&args.common.parameters)?,
    };
    let c = args.common;
    runtime()?.block_on(async move {
        let engine = c.run.engine().await?;
        engine.retry(&c.name, &options).await?;
        follow(engine, &c.name, c.run.output).await
    })
}

/// Resubmits a run as a new one, then follows it.
pub fn resubmit(args: ResubmitArgs) -> Result<ExitCode> {
    let c = args.common;
    let parameters = parse_parameters(&c.parameters)?;
    runtime()?.block_on(async move {
        let engine = c.run.engine().await?;
        let name = engine.resubmit(&c.name, args.memoized, &parameters).await?;
        follow(engine, &name, c.run.output).await
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().map_err(|e| anyhow!("cannot start the async runtime: {e}"))
}
