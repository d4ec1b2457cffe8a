//! `cox server`: Argo Server's REST API (the `/api/v1/workflows` subset, `info`, `version`)
//! over the local [`Engine`], so Argo's CLI, UI and SDKs can drive Coxswain.
//!
//! The engine is shared as an `Arc<Engine>`: handlers call it directly (its store is the
//! source of truth and is flushed on every write; its live-run map has its own lock), and a
//! small task per live run removes the run from the engine's live map once it has finished.
//!
//! Request bodies are limited before they are read ([`ServerConfig::max_body_bytes`]):
//! a `Content-Length` over the limit is refused at once with 413, a streamed body when it
//! crosses the limit. Errors are Argo's JSON shape (see [`error`]).
//!
//! # Layout
//! - [`error`]: `ApiError`, answered as grpc-gateway's `{code, message, details}`.
//! - [`workflow`]: request workflows (linted, located), run -> `Workflow` object, label selectors.
//! - `handlers`: one function per workflow route.
//! - `lifecycle`: suspend, resume, stop, terminate, set.
//! - `templates`: (Cluster)WorkflowTemplates, and submitting from one.
//! - `configmaps`: ConfigMaps, on Kubernetes' paths.

mod configmaps;
pub mod error;
mod handlers;
mod lifecycle;
mod templates;
pub mod workflow;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::limit::RequestBodyLimitLayer;
use tracing::{info, warn};

use crate::engine::Engine;
use crate::error::Result;
use error::ApiError;

/// Argo Server's port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:2746";

/// The default request body limit: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Request bodies larger than this are refused with 413 before they are read.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
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
}

/// The API's routes over an engine.
pub fn router(engine: Arc<Engine>, config: &ServerConfig) -> Router {
    let limit = config.max_body_bytes;
    Router::new()
        .route("/api/v1/info", get(handlers::info))
        .route("/api/v1/version", get(handlers::version))
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
            "/api/v1/workflows/{namespace}/{name}",
            get(handlers::get).delete(handlers::delete),
        )
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(AppState {
            engine,
            max_body_bytes: limit,
        })
        // tower-http's limit replaces axum's default 2 MB one: it refuses on Content-Length
        // before reading, and stops a streamed body at the limit.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(axum::middleware::map_response(
            move |response: Response| async move { json_payload_too_large(response, limit) },
        ))
}

/// tower-http answers 413 in plain text; clients get Argo's JSON error instead.
fn json_payload_too_large(response: Response, limit: usize) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::body_too_large(limit).into_response();
    }
    response
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
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving Argo Server's API");
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    engine.shutdown().await;
    info!("stopped");
    served
}
