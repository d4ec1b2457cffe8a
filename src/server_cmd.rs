//! `cox server`: Argo Server's REST API over a local engine, like `argo server`.
//! Wiring only; the API is `cox_scheduler::server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use cox_scheduler::server::auth::{self, Auth};
use cox_scheduler::server::{self, ServerConfig};
use cox_scheduler::sync::actor::ParallelismLimits;
use cox_scheduler::{Engine, EngineConfig};

use crate::run_cmd::{local_executor, repository};

#[derive(Args)]
pub struct ServerArgs {
    /// Address to listen on. Any but a loopback address needs `--auth-mode token` (or
    /// `--insecure`).
    #[arg(long, default_value = server::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// How callers authenticate: `server` (nobody needs to, Argo's default) or `token`
    /// (`Authorization: Bearer TOKEN`, tokens from --token-file).
    #[arg(long, value_enum, default_value_t = AuthMode::Server)]
    auth_mode: AuthMode,
    /// The tokens of `--auth-mode token`: one a line, `TOKEN` or `NAME TOKEN`; `#` comments.
    #[arg(long, value_name = "FILE", required_if_eq("auth_mode", "token"))]
    token_file: Option<PathBuf>,
    /// Serve a non-loopback address without authentication.
    #[arg(long)]
    insecure: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = server::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Writes (create, delete, ...) handled at once; more wait their turn.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONCURRENT_WRITES)]
    max_concurrent_writes: usize,
    /// Writes that may wait; past that a write is refused with 503 and Retry-After.
    #[arg(long, default_value_t = server::DEFAULT_MAX_QUEUED_WRITES)]
    max_queued_writes: usize,
    /// Run steps as plain host processes, without the bubblewrap sandbox.
    #[arg(long)]
    no_sandbox: bool,
    /// The cox configuration file (YAML): `artifactRepository` (local or s3); see
    /// docs/artifacts.md.
    #[arg(long, value_name = "FILE", env = "COX_CONFIG")]
    config: Option<PathBuf>,
}

/// Argo Server's `--auth-mode` values that cox supports.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthMode {
    /// No authentication.
    Server,
    /// Bearer tokens from `--token-file`.
    Token,
}

/// Serve until SIGTERM or SIGINT.
pub fn run(args: ServerArgs) -> Result<ExitCode> {
    let auth = match (args.auth_mode, &args.token_file) {
        (AuthMode::Token, Some(file)) => Auth::from_token_file(file).map_err(anyhow::Error::msg)?,
        (AuthMode::Token, None) => bail!("--auth-mode token needs --token-file FILE"),
        (AuthMode::Server, Some(_)) => bail!("--token-file is only used with --auth-mode token"),
        (AuthMode::Server, None) => Auth::Server,
    };
    auth::check_bind(&args.addr, &auth, args.insecure).map_err(anyhow::Error::msg)?;
    log_to_stderr();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args, auth))
}

async fn serve(args: ServerArgs, auth: Auth) -> Result<ExitCode> {
    if !args.no_sandbox
        && let Err(e) = cox_worker::check_sandbox().await
    {
        bail!("the step sandbox is not available: {e}; install bubblewrap or pass --no-sandbox");
    }
    let home = cox_scheduler::engine::default_home()?;
    let repository = repository(&home, args.config.as_deref())?;
    let artifacts = repository.sources();
    let mut engine_config =
        EngineConfig::new(&home, local_executor(&home, args.no_sandbox, repository));
    engine_config.parallelism = parallelism(args.config.as_deref())?;
    let engine = Arc::new(Engine::open(engine_config)?);
    let listener =
        server::bind(args.addr).with_context(|| format!("--addr {}: cannot listen", args.addr))?;
    let resumed = server::resume(&engine).await?;
    eprintln!(
        "cox server: listening on http://{}, home {}, {} run(s) resumed",
        listener.local_addr()?,
        home.display(),
        resumed.len()
    );
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        auth,
        max_concurrent_writes: args.max_concurrent_writes,
        max_queued_writes: args.max_queued_writes,
        artifacts: Some(artifacts),
        ..ServerConfig::default()
    };
    server::serve(listener, engine, config, shutdown_signal()).await?;
    eprintln!("cox server: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The server's tracing events on stderr: warnings and errors, or what `RUST_LOG` asks for.
fn log_to_stderr() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Already set (never, in the binary): the events go where that one sends them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `parallelism` and `namespaceParallelism` of the configuration file (unlimited without one).
fn parallelism(config: Option<&std::path::Path>) -> Result<ParallelismLimits> {
    let Some(path) = config else {
        return Ok(ParallelismLimits::default());
    };
    let file = cox_worker::repo_config::CoxConfigFile::load(path).map_err(anyhow::Error::msg)?;
    Ok(ParallelismLimits {
        server: file.parallelism,
        namespace: file.namespace_parallelism,
    })
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without handlers the default disposition still ends the process.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
