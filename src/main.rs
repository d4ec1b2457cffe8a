//! `cox`: the Coxswain command line. Parsing and wiring only; the work lives in the crates.

mod cp_cmd;
mod lint;
mod run_cmd;
mod server_cmd;
mod step_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Coxswain runs Argo Workflows YAML, on a laptop or on Kubernetes.
#[derive(Parser)]
#[command(name = "cox", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files (files or directories, recursively) without running them.
    Lint(lint::LintArgs),
    #[command(flatten)]
    Runs(run_cmd::RunCommand),
    /// Serve Argo Server's REST API on this machine (runs workflows locally).
    Server(server_cmd::ServerArgs),
    /// Copy a run's output artifacts to a directory.
    Cp(cp_cmd::CpArgs),
}

fn main() -> ExitCode {
    // Hidden `cox __step` and `cox argosay`, before clap: see step_cmd.rs.
    if let Some(code) = step_cmd::dispatch() {
        return code;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lint(args) => lint::run(&args),
        Command::Runs(command) => run_cmd::run(command),
        Command::Server(args) => server_cmd::run(args),
        Command::Cp(args) => cp_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cox: {e:#}");
            ExitCode::from(2)
        }
    }
}
