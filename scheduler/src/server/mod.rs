//! `cox server`: Argo Server's REST API (the `/api/v1/workflows` subset, `info`, `version`)
//! over the local [`Engine`], so Argo's CLI, UI and SDKs can drive Coxswain.
//!
//! The engine is shared as an `Arc<Engine>`: handlers call it directly (its store is the
//! source of truth and is flushed on every write; its live-run map has its own lock), and a
//! small task per live run removes the run from the engine's live map once it has finished.
//! Another task deletes finished runs whose `ttlStrategy` has expired ([`crate::ttl`]).
//!
//! Every route, the fallback included, sits behind the same three layers: [`auth`] (a
//! bearer token, when configured), then `admission` (writes queue for a few permits; a
//! full queue answers 503), then `limits` (request bodies are limited before they are
//! read, [`ServerConfig::max_body_bytes`]: a `Content-Length` over the limit is refused at
//! once with 413, a streamed body when it crosses the limit). Errors are Argo's JSON shape
//! (see [`error`]).
//!
//! # Layout
//! - `admission`: writes run a few at a time; a full queue answers 503 and `Retry-After`.
//! - `artifacts`: a node's saved artifact, streamed and checked, as an attachment.
//! - [`auth`]: no auth on loopback, or bearer tokens from a file; `/api/v1/userinfo`.
//! - [`error`]: `ApiError`, answered as grpc-gateway's `{code, message, details}`.
//! - `events`: the watch stream, `workflow-events`, from the runs' progress channels.
//! - `limits`: the request body limit in front of every route.
//! - `logs`: step logs, whole or followed, as Argo's `WorkflowLogs` stream.
//! - `metrics`: `/metrics`, Prometheus' text format under Argo's metric names.
//! - `rerun`: retry and resubmit.
//! - `streaming`: streamed answers framed as grpc-gateway's (or as server-sent events).
//! - [`workflow`]: request workflows (linted, located), run -> `Workflow` object, label selectors.
//! - `handlers`: one function per workflow route.
//! - `lifecycle`: suspend, resume, stop, terminate, set.
//! - `templates`: (Cluster)WorkflowTemplates, and submitting from one.
//! - `configmaps`: ConfigMaps, on Kubernetes' paths.
//! - `secrets`: Secrets (keys of artifact buckets), on Kubernetes' paths.
//! - `sync`: `GET /api/v1/sync/{namespace}`, locks, limits, holders and waiters (Coxswain's).

mod admission;
mod artifacts;
pub mod auth;
mod configmaps;
pub mod error;
mod events;
mod handlers;
mod lifecycle;
mod limits;
mod logs;
mod metrics;
mod rerun;
mod secrets;
mod streaming;
mod sync;
mod templates;
pub mod workflow;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use cox_worker::repo_config::ArtifactSources;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::engine::{Engine, RunEvent};
use crate::error::Result;
use crate::machine::RunState;
pub use admission::{LISTEN_BACKLOG, bind};
use auth::Auth;

/// Argo Server's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:2746";

/// The default request body limit: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Writes handled at once by default: each is flushed to the store, so more at once
/// would only wait on the disk.
pub const DEFAULT_MAX_CONCURRENT_WRITES: usize = 16;

/// Writes that may wait for their turn by default; past that they are refused with 503.
pub const DEFAULT_MAX_QUEUED_WRITES: usize = 4096;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Request bodies larger than this are refused with 413 before they are read.
    pub max_body_bytes: usize,
    /// Who may call.
    pub auth: Auth,
    /// Writes (any method but GET, HEAD, OPTIONS) handled at once.
    pub max_concurrent_writes: usize,
    /// Writes that may wait; one more is refused with 503 and `Retry-After`.
    pub max_queued_writes: usize,
    /// Cancelled when the server starts shutting down: open streams (logs, watches) end,
    /// so the graceful shutdown does not wait for clients that never hang up.
    pub streams_end: CancellationToken,
    /// Where the runs' saved artifacts are read from (the executor's repository and
    /// policy); `None`: the artifact routes answer 503.
    pub artifacts: Option<ArtifactSources>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            auth: Auth::Server,
            max_concurrent_writes: DEFAULT_MAX_CONCURRENT_WRITES,
            max_queued_writes: DEFAULT_MAX_QUEUED_WRITES,
            streams_end: CancellationToken::new(),
            artifacts: None,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The engine runs are submitted to and read from.
    pub engine: Arc<Engine>,
    /// The request body limit (for its error message).
    pub max_body_bytes: usize,
    /// See [`ServerConfig::streams_end`].
    pub streams_end: CancellationToken,
    /// See [`ServerConfig::artifacts`].
    pub artifacts: Option<Arc<ArtifactSources>>,
    /// The write queue (its depth is a metric).
    admission: Arc<admission::Admission>,
}

/// The API's routes over an engine.
pub fn router(engine: Arc<Engine>, config: &ServerConfig) -> Router {
    let limit = config.max_body_bytes;
    let admission = Arc::new(admission::Admission::new(
        config.max_concurrent_writes,
        config.max_queued_writes,
    ));
    Router::new()
        .route("/api/v1/info", get(handlers::info))
        .route("/api/v1/version", get(handlers::version))
        .route("/api/v1/userinfo", get(auth::userinfo))
        .route("/metrics", get(metrics::metrics))
        .route(
            "/api/v1/workflows/{namespace}",
            get(handlers::list).post(handlers::create),
        )
        .route("/api/v1/workflows/{namespace}/lint", post(handlers::lint))
        .route(
            "/api/v1/workflows/{namespace}/submit",
            post(templates::submit),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/suspend",
            put(lifecycle::suspend),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/resume",
            put(lifecycle::resume),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/stop",
            put(lifecycle::stop),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/terminate",
            put(lifecycle::terminate),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/set",
            put(lifecycle::set),
        )
        .route(
            "/api/v1/workflow-templates/{namespace}",
            get(templates::list_namespaced).post(templates::create_namespaced),
        )
        .route(
            "/api/v1/workflow-templates/{namespace}/lint",
            post(templates::lint_namespaced),
        )
        .route(
            "/api/v1/workflow-templates/{namespace}/{name}",
            get(templates::get_namespaced)
                .put(templates::update_namespaced)
                .delete(templates::delete_namespaced),
        )
        .route(
            "/api/v1/cluster-workflow-templates",
            get(templates::list_cluster).post(templates::create_cluster),
        )
        .route(
            "/api/v1/cluster-workflow-templates/lint",
            post(templates::lint_cluster),
        )
        .route(
            "/api/v1/cluster-workflow-templates/{name}",
            get(templates::get_cluster)
                .put(templates::update_cluster)
                .delete(templates::delete_cluster),
        )
        .route(
            "/api/v1/namespaces/{namespace}/configmaps",
            get(configmaps::list).post(configmaps::create),
        )
        .route(
            "/api/v1/namespaces/{namespace}/configmaps/{name}",
            get(configmaps::get)
                .put(configmaps::update)
                .delete(configmaps::delete),
        )
        .route(
            "/api/v1/namespaces/{namespace}/secrets",
            get(secrets::list).post(secrets::create),
        )
        .route(
            "/api/v1/namespaces/{namespace}/secrets/{name}",
            get(secrets::get)
                .put(secrets::update)
                .delete(secrets::delete),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}",
            get(handlers::get).delete(handlers::delete),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/retry",
            put(rerun::retry),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/resubmit",
            put(rerun::resubmit),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/log",
            get(logs::workflow_logs),
        )
        .route(
            "/api/v1/workflows/{namespace}/{name}/{pod}/log",
            get(logs::pod_logs),
        )
        .route("/api/v1/sync/{namespace}", get(sync::list))
        .route(
            "/artifacts/{namespace}/{name}/{node_id}/{artifact}",
            get(artifacts::node_artifact::<false>),
        )
        .route(
            "/input-artifacts/{namespace}/{name}/{node_id}/{artifact}",
            get(artifacts::node_artifact::<true>),
        )
        .route(
            "/artifact-files/{namespace}/{kind}/{name}/{node_id}/{direction}/{artifact}",
            get(artifacts::artifact_file),
        )
        .route(
            "/api/v1/workflow-events/{namespace}",
            get(events::watch_workflows),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(AppState {
            engine,
            max_body_bytes: limit,
            streams_end: config.streams_end.clone(),
            artifacts: config.artifacts.clone().map(Arc::new),
            admission: Arc::clone(&admission),
        })
        // limits::limit_body replaces axum's default 2 MB limit for every route.
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(limit, limits::limit_body))
        // Before the body is read: a queued write holds a connection, not its body.
        .layer(from_fn_with_state(admission, admission::admit))
        // Outermost: nothing, not even the body limit, runs for a caller without a token.
        .layer(from_fn_with_state(config.auth.clone(), auth::require))
}

/// Whether the server may listen there without authentication: loopback addresses only.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Start the actors of the runs left unfinished, watching each to its end; their names.
pub async fn resume(engine: &Arc<Engine>) -> Result<Vec<String>> {
    let names = engine.resume_unfinished().await?;
    for name in &names {
        watch_until_finished(engine, name);
    }
    Ok(names)
}

/// Once the run has finished, let the engine forget its actor (the store keeps the run).
/// Nothing awaits runs submitted over HTTP, so without this the live map would only grow.
pub fn watch_until_finished(engine: &Arc<Engine>, name: &str) {
    let Some(mut progress) = engine.watch(name) else {
        return;
    };
    let engine = Arc::clone(engine);
    let name = name.to_string();
    tokio::spawn(async move {
        // Closed without finishing: deleted or shutting down, and the live entry is gone.
        if progress.wait_for(|run| run.is_finished()).await.is_err() {
            return;
        }
        drop(progress);
        match engine.await_completion(&name).await {
            Ok(run) => info!(run = %name, phase = run.phase().as_str(), "finished"),
            Err(e) => warn!(run = %name, error = %e, "finished run not collected"),
        }
    });
}

/// Serve the API on `listener` until `shutdown` completes: then stop taking connections,
/// finish the requests in flight, and stop the runs' actors (the store keeps the runs for
/// the next start).
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&engine), &config);
    metrics::count_phases(&engine);
    let streams_end = config.streams_end.clone();
    let reaper = tokio::spawn(reap_expired(Arc::clone(&engine), streams_end.clone()));
    let shutdown = async move {
        shutdown.await;
        streams_end.cancel();
    };
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving Argo Server's API");
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = reaper.await;
    engine.shutdown().await;
    info!("stopped");
    served
}

/// The longest the reaper sleeps between looks at its next expiry (a bound, so a clock
/// that is set rather than running is still followed; a look costs no store read).
const TTL_WAKE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(1);

/// Delete finished runs whose `ttlStrategy` has expired (see [`crate::ttl`]): every stored
/// run is looked at once, then each run as it finishes, until `end` is cancelled.
async fn reap_expired(engine: Arc<Engine>, end: CancellationToken) {
    use tokio::sync::broadcast::error::RecvError;
    // Subscribed before the scan, so no run can finish unseen in between.
    let mut runs = engine.subscribe();
    let (finished_tx, mut finished) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut reaper = crate::ttl::Reaper::new();
    if let Err(e) = reaper.scan(&engine) {
        warn!(error = %e, "ttlStrategy: stored runs not read");
    }
    loop {
        reaper.reap(&engine).await;
        let wait = reaper
            .next_due()
            .and_then(|at| (at - engine.now()).to_std().ok())
            .map_or(TTL_WAKE_AT_MOST, |wait| wait.min(TTL_WAKE_AT_MOST));
        tokio::select! {
            () = end.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            Some(name) = finished.recv() => reaper.look_at(&engine, &name),
            event = runs.recv() => match event {
                Ok(RunEvent::Started(name)) => {
                    if let Some(mut progress) = engine.watch(&name) {
                        let finished_tx = finished_tx.clone();
                        tokio::spawn(async move {
                            // Finished, or its actor gone (stopped or deleted): look again.
                            let _ = progress.wait_for(RunState::is_finished).await;
                            let _ = finished_tx.send(name);
                        });
                    }
                }
                Ok(RunEvent::Deleted(name)) => reaper.forget(&name),
                Err(RecvError::Lagged(_)) => {
                    if let Err(e) = reaper.scan(&engine) {
                        warn!(error = %e, "ttlStrategy: stored runs not read");
                    }
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}
