//! `cox sync list`: synchronization locks (mutexes, semaphores, workflow parallelism) with
//! their limits, holders and waiters. From a server (`--server`), its live gate; without
//! one, what the local store says (runs that hold or wait for locks after a stop).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use cox_scheduler::sync::{HolderStatus, LockStatus};

use crate::client::Client;

/// `cox sync ...`.
#[derive(Subcommand)]
pub enum SyncCommand {
    /// Locks with their limit, holders (and for how long) and waiters in queue order (and
    /// for how long they have waited).
    List(ListArgs),
}

/// `cox sync list`.
#[derive(Args)]
pub struct ListArgs {
    /// Print the locks as JSON.
    #[arg(short, long)]
    json: bool,
}

/// Run a `cox sync` command.
pub async fn run(
    remote: Option<&Client>,
    namespace: Option<&str>,
    command: SyncCommand,
) -> Result<ExitCode> {
    let SyncCommand::List(args) = command;
    let namespace = namespace.unwrap_or(cox_scheduler::resolve::DEFAULT_NAMESPACE);
    let locks: Vec<LockStatus> = match remote {
        Some(client) => {
            let answer = client.get(&format!("/api/v1/sync/{namespace}")).await?;
            serde_json::from_value(answer.get("locks").cloned().unwrap_or_default())
                .context("the server's answer has no list of locks")?
        }
        None => {
            let engine = crate::run_cmd::open_local_engine()?;
            engine.stored_sync_status(Some(namespace))?
        }
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&locks)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if locks.is_empty() {
        outln!("no locks in namespace {namespace}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["LOCK", "KIND", "HELD", "HOLDERS", "WAITERS"]);
    for lock in &locks {
        let limit = lock.limit.map_or("?".to_string(), |l| l.to_string());
        table.add_row([
            lock.key.clone(),
            lock.kind.clone(),
            format!("{}/{limit}", lock.holders.len()),
            people(&lock.holders),
            people(&lock.waiters),
        ]);
    }
    outln!("{table}")?;
    Ok(ExitCode::SUCCESS)
}

/// `run (12s)` or `run/node (3s)`, comma separated, in order.
fn people(list: &[HolderStatus]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(|h| {
            let who = match &h.node {
                Some(node) => format!("{}/{node}", h.run),
                None => h.run.clone(),
            };
            format!("{who} ({:.0}s)", h.seconds)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
