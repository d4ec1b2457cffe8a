//! `GET /metrics`: Prometheus' text format, with Argo's metric names and labels where
//! a metric means the same thing, so existing dashboards keep working:
//!
//! - `argo_workflows_gauge{phase}`: stored workflows by phase (and the pre-3.6 name,
//!   `argo_workflows_count{status}`);
//! - `argo_workflows_pods_gauge{phase}`: the steps (Argo's pods) of unfinished runs by
//!   phase;
//! - `argo_workflows_total_count{phase, namespace}`: workflows that entered each phase
//!   since the server started;
//! - `argo_workflows_operation_duration_seconds`: histogram of one run actor operation
//!   (apply an event, persist), Argo's reconciliation of one workflow;
//! - `argo_workflows_queue_depth_gauge{queue_name="workflow_queue"}`: writes waiting
//!   for admission (see `admission`);
//! - `cox_sync_locks_held{lock}`, `cox_sync_locks_pending{lock}`, `cox_sync_lock_limit{lock}`
//!   (-1: unknown) and the histogram `cox_sync_wait_seconds` (Coxswain's): the concurrency
//!   gate's locks ([`crate::sync`]), set by the gate actor as they change.
//!
//! Gauges are computed when scraped, from the store and the live runs' progress
//! channels; counters and the histogram are recorded through the `metrics` facade into
//! one recorder for the process (a process serves one API).

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::broadcast;

use super::AppState;
use super::error::ApiResult;
use super::workflow::namespace_of;
use crate::actor::OPERATION_DURATION_METRIC;
use crate::engine::{Engine, RunEvent};
use crate::machine::{NodeType, Phase};

/// Argo's workflow phases.
const WORKFLOW_PHASES: [Phase; 5] = [
    Phase::Pending,
    Phase::Running,
    Phase::Succeeded,
    Phase::Failed,
    Phase::Error,
];

/// Pod phases (Kubernetes' names, which Argo's pods gauge uses).
const POD_PHASES: [Phase; 4] = [
    Phase::Pending,
    Phase::Running,
    Phase::Succeeded,
    Phase::Failed,
];

/// Buckets of the operation histogram, in seconds.
const OPERATION_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];

/// Buckets of the time waiting for synchronization locks, in seconds.
const WAIT_BUCKETS: [f64; 10] = [
    0.01, 0.1, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
];

/// The process's recorder, installed on first use.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Only an empty bucket list is refused.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(OPERATION_DURATION_METRIC.into()),
                &OPERATION_BUCKETS,
            )
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(crate::sync::actor::WAIT_METRIC.into()),
                    &WAIT_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only when an embedding program installed its own recorder first: the
        // metrics then go there, and this handle renders none.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Start counting workflow phase changes (`argo_workflows_total_count`) of the runs the
/// engine starts from now on.
pub fn count_phases(engine: &Arc<Engine>) {
    prometheus();
    let mut runs = engine.subscribe();
    // Weak: the task must not keep the engine (and its store's lock) alive; it ends when
    // the engine is dropped and its run events close.
    let engine = Arc::downgrade(engine);
    tokio::spawn(async move {
        loop {
            match runs.recv().await {
                Ok(RunEvent::Started(name)) => {
                    let Some(engine) = engine.upgrade() else {
                        return;
                    };
                    if let Some(progress) = engine.watch(&name) {
                        tokio::spawn(count_run_phases(progress));
                    }
                }
                Ok(RunEvent::Deleted(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

async fn count_run_phases(mut progress: tokio::sync::watch::Receiver<crate::machine::RunState>) {
    let mut last = None;
    loop {
        let (phase, namespace) = {
            let run = progress.borrow_and_update();
            (run.phase(), namespace_of(&run))
        };
        if last != Some(phase) {
            last = Some(phase);
            metrics::counter!(
                "argo_workflows_total_count",
                "phase" => phase.as_str(),
                "namespace" => namespace
            )
            .increment(1);
        }
        if progress.changed().await.is_err() {
            return;
        }
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let handle = prometheus();
    let summaries = state.engine.list()?;
    for phase in WORKFLOW_PHASES {
        let count = summaries.iter().filter(|s| s.phase == phase).count() as f64;
        metrics::gauge!("argo_workflows_gauge", "phase" => phase.as_str()).set(count);
        metrics::gauge!("argo_workflows_count", "status" => phase.as_str()).set(count);
    }
    let mut pods = [0usize; POD_PHASES.len()];
    for summary in summaries.iter().filter(|s| !s.phase.is_done()) {
        let Some(progress) = state.engine.watch(&summary.name) else {
            continue;
        };
        let run = progress.borrow();
        for node in run.nodes.values().filter(|n| n.node_type == NodeType::Pod) {
            let phase = match node.phase {
                Phase::Pending | Phase::Running if !node.launched => Phase::Pending,
                Phase::Error => Phase::Failed,
                phase => phase,
            };
            if let Some(i) = POD_PHASES.iter().position(|p| *p == phase) {
                pods[i] += 1;
            }
        }
    }
    for (phase, count) in POD_PHASES.iter().zip(pods) {
        metrics::gauge!("argo_workflows_pods_gauge", "phase" => phase.as_str()).set(count as f64);
    }
    metrics::gauge!("argo_workflows_queue_depth_gauge", "queue_name" => "workflow_queue")
        .set(state.admission.waiting() as f64);
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
