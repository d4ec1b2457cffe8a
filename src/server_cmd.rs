//! `cox server`: Argo Server's REST API over a local engine, like `argo server`.
//! Wiring only; the API is `cox_scheduler::server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use cox_scheduler::server::{self, ServerConfig};
use cox_scheduler::{Engine, EngineConfig};

use crate::run_cmd::{local_executor, repository};

#[derive(Args)]
pub struct ServerArgs {
    /// Address to listen on; loopback only until the API has authentication.
    #[arg(long, default_value = server::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = server::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Run steps as plain host processes, without the bubblewrap sandbox.
    #[arg(long)]
    no_sandbox: bool,
    /// The cox configuration file (YAML): `artifactRepository` (local or s3); see
    /// docs/artifacts.md.
    #[arg(long, value_name = "FILE", env = "COX_CONFIG")]
    config: Option<PathBuf>,
}

/// Serve until SIGTERM or SIGINT.
pub fn run(args: ServerArgs) -> Result<ExitCode> {
    if !server::is_loopback(&args.addr) {
        bail!(
            "--addr {}: not a loopback address; cox server has no authentication yet, so it only listens on 127.0.0.1 or ::1",
            args.addr
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> Result<ExitCode> {
    if !args.no_sandbox
        && let Err(e) = cox_worker::check_sandbox().await
    {
        bail!("the step sandbox is not available: {e}; install bubblewrap or pass --no-sandbox");
    }
    let home = cox_scheduler::engine::default_home()?;
    let repository = repository(&home, args.config.as_deref())?;
    let engine = Arc::new(Engine::open(EngineConfig::new(
        &home,
        local_executor(&home, args.no_sandbox, repository),
    ))?);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("--addr {}: cannot listen", args.addr))?;
    let resumed = server::resume(&engine).await?;
    eprintln!(
        "cox server: listening on http://{}, home {}, {} run(s) resumed",
        listener.local_addr()?,
        home.display(),
        resumed.len()
    );
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
    };
    server::serve(listener, engine, config, shutdown_signal()).await?;
    eprintln!("cox server: stopped");
    Ok(ExitCode::SUCCESS)
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
