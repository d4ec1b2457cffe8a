//! `cox`: the Coxswain command line. Parsing and wiring only; the work lives in the crates.

/// `println!` that returns the write's error instead of panicking on it (`cox list | head`):
/// `main` ends quietly on a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` that returns the write's error, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod cache_cmd;
mod client;
mod cp_cmd;
mod lint;
mod remote_cmd;
mod rerun_cmd;
mod resources_cmd;
mod run_cmd;
mod server_cmd;
mod step_cmd;
mod sync_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Coxswain runs Argo Workflows YAML, on a laptop or on Kubernetes.
#[derive(Parser)]
#[command(name = "cox", version, about, propagate_version = true)]
struct Cli {
    /// Talk to this server (`http://host:port`) instead of the local store.
    #[arg(long, global = true, env = "COX_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Namespace of workflows, templates and ConfigMaps (default `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files (files or directories, recursively) without running them.
    Lint(lint::LintArgs),
    #[command(flatten)]
    Runs(run_cmd::RunCommand),
    /// Submit workflows (from files or a stored template); without a server they run here.
    Submit(remote_cmd::SubmitArgs),
    /// Suspend workflows: running steps finish, no new step starts.
    Suspend(remote_cmd::LifecycleArgs),
    /// Resume suspended workflows (or only their matching suspend nodes).
    Resume(remote_cmd::LifecycleArgs),
    /// Stop workflows: running steps are stopped, exit handlers run.
    Stop(remote_cmd::LifecycleArgs),
    /// Terminate workflows: like stop, without exit handlers.
    Terminate(remote_cmd::LifecycleArgs),
    /// Act on nodes of a workflow.
    #[command(subcommand)]
    Node(remote_cmd::NodeCommand),
    /// Wait for workflows to end; exit 0 only if all succeeded.
    Wait(remote_cmd::WaitArgs),
    /// Follow a workflow to its end, printing node changes.
    Watch(remote_cmd::WaitArgs),
    /// Store WorkflowTemplates, ClusterWorkflowTemplates and ConfigMaps from files.
    Apply(resources_cmd::ApplyArgs),
    /// WorkflowTemplates: create, list, get, delete, lint.
    #[command(subcommand)]
    Template(resources_cmd::TemplateCommand),
    /// ClusterWorkflowTemplates: create, list, get, delete, lint.
    #[command(subcommand)]
    ClusterTemplate(resources_cmd::TemplateCommand),
    /// Serve Argo Server's REST API on this machine (runs workflows locally).
    Server(server_cmd::ServerArgs),
    /// Run a failed workflow again in place: what failed (and, with --restart-successful,
    /// the selected succeeded nodes) runs again; then follow it like `cox run`.
    Retry(rerun_cmd::RetryArgs),
    /// Submit a run's workflow again as a new run (--memoized: reuse what succeeded); then
    /// follow it like `cox run`.
    Resubmit(rerun_cmd::ResubmitArgs),
    /// The step cache of memoized templates (`memoize`): list, show, delete, prune.
    #[command(subcommand)]
    Cache(cache_cmd::CacheCommand),
    /// Copy a run's output artifacts to a directory.
    Cp(cp_cmd::CpArgs),
    /// Synchronization locks (mutexes, semaphores, parallelism): limits, holders, waiters.
    #[command(subcommand)]
    Sync(sync_cmd::SyncCommand),
}

fn main() -> ExitCode {
    // Hidden `cox __step` and `cox argosay`, before clap: see step_cmd.rs.
    if let Some(code) = step_cmd::dispatch() {
        return code;
    }
    let cli = Cli::parse();
    let result = dispatch(cli);
    match result {
        Ok(code) => code,
        // A closed pipe (`cox logs NAME | head`) ends the output quietly, like other Unix tools.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cox: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let namespace = cli.namespace.as_deref();
    let remote = cli
        .server
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|server| client::Client::new(server, namespace))
        .transpose()?;
    match cli.command {
        Command::Lint(args) => lint::run(&args),
        Command::Runs(command) => run_cmd::run(command, remote),
        Command::Server(args) => server_cmd::run(args),
        Command::Submit(args) => block_on(remote_cmd::submit(remote.as_ref(), args)),
        Command::Suspend(args) => block_on(remote_cmd::lifecycle(remote.as_ref(), "suspend", args)),
        Command::Resume(args) => block_on(remote_cmd::lifecycle(remote.as_ref(), "resume", args)),
        Command::Stop(args) => block_on(remote_cmd::lifecycle(remote.as_ref(), "stop", args)),
        Command::Terminate(args) => {
            block_on(remote_cmd::lifecycle(remote.as_ref(), "terminate", args))
        }
        Command::Node(command) => block_on(remote_cmd::node(remote.as_ref(), command)),
        Command::Wait(args) => block_on(remote_cmd::wait(remote.as_ref(), args, false)),
        Command::Watch(args) => block_on(remote_cmd::wait(remote.as_ref(), args, true)),
        Command::Apply(args) => block_on(resources_cmd::apply(remote.as_ref(), namespace, args)),
        Command::Template(command) => block_on(resources_cmd::template(
            remote.as_ref(),
            namespace,
            command,
            false,
        )),
        Command::ClusterTemplate(command) => block_on(resources_cmd::template(
            remote.as_ref(),
            namespace,
            command,
            true,
        )),
        Command::Cache(command) => cache_cmd::run(command),
        Command::Retry(args) => rerun_cmd::retry(remote.as_ref(), args),
        Command::Resubmit(args) => rerun_cmd::resubmit(remote.as_ref(), args),
        Command::Cp(args) => cp_cmd::run(args),
        Command::Sync(command) => block_on(sync_cmd::run(remote.as_ref(), namespace, command)),
    }
}

/// Run `work` to its end on a fresh runtime: the one way the CLI's commands get one.
pub(crate) fn block_on<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?
        .block_on(work)
}
