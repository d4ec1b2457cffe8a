//! `GET /api/v1/workflow-events/{namespace}`: the watch stream, as Argo's grpc-gateway
//! sends it: `{"result": {"type": "ADDED" | "MODIFIED" | "DELETED", "object": Workflow}}`
//! lines, until the client goes away.
//!
//! As a Kubernetes watch without a resource version, it opens with `ADDED` for every
//! stored workflow that matches, then follows. Nothing polls the store: a live run's
//! changes come from its actor's progress channel ([`Engine::watch`]), new and deleted
//! runs from the engine's run events ([`Engine::subscribe`]).
//!
//! Selectors: `listOptions.labelSelector` (as the list), `listOptions.fieldSelector` with
//! `metadata.name` and `metadata.namespace` (`=`, `==`, `!=`), as `argo watch` sends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use super::error::{ApiError, ApiResult};
use super::workflow::{LabelSelector, namespace_of, workflow_object};
use super::{AppState, streaming};
use crate::engine::{Engine, RunEvent};
use crate::machine::RunState;

/// Which workflows a watch (or a list) wants.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    namespace: String,
    labels: LabelSelector,
    fields: Vec<(String, bool, String)>,
}

impl Filter {
    pub(super) fn parse(namespace: String, query: &HashMap<String, String>) -> ApiResult<Filter> {
        let labels = LabelSelector::parse(
            query
                .get("listOptions.labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )?;
        let text = query
            .get("listOptions.fieldSelector")
            .map(String::as_str)
            .unwrap_or_default();
        let mut fields = Vec::new();
        for term in crate::machine::selector_terms(text) {
            let (field, equal, value) = term.map_err(|part| {
                ApiError::invalid(format!(
                    "listOptions.fieldSelector: '{part}': expected field=value or field!=value"
                ))
            })?;
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(ApiError::invalid(format!(
                    "listOptions.fieldSelector: '{field}': only metadata.name and metadata.namespace are supported"
                )));
            }
            fields.push((field.to_string(), equal, value.to_string()));
        }
        Ok(Filter {
            namespace,
            labels,
            fields,
        })
    }

    /// Whether the run (name and namespace only) may match.
    fn matches_run(&self, name: &str, namespace: &str) -> bool {
        namespace == self.namespace
            && self.fields.iter().all(|(field, equal, value)| {
                let actual = if field == "metadata.name" {
                    name
                } else {
                    namespace
                };
                (actual == value) == *equal
            })
    }

    /// The run's `Workflow` if it matches.
    pub(super) fn object(&self, run: &RunState) -> Option<Value> {
        if !self.matches_run(&run.name, &namespace_of(run)) {
            return None;
        }
        let object = workflow_object(run);
        self.labels.matches_object(&object).then_some(object)
    }
}

/// `GET /api/v1/workflow-events/{namespace}`.
pub async fn watch_workflows(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let filter = Filter::parse(namespace, &query)?;
    // Subscribed before the listing, so no run started in between is missed.
    let runs = state.engine.subscribe();
    let (sender, receiver) = mpsc::channel(streaming::BUFFER);
    let engine = Arc::clone(&state.engine);
    tokio::spawn(async move {
        Watch {
            engine,
            filter,
            sender,
            sent: HashMap::new(),
            followed: HashSet::new(),
            followers: JoinSet::new(),
        }
        .run(runs)
        .await;
    });
    Ok(streaming::response(
        receiver,
        streaming::wants_events(&headers),
        state.streams_end.clone(),
    ))
}

/// One watch request.
struct Watch {
    engine: Arc<Engine>,
    filter: Filter,
    sender: mpsc::Sender<Value>,
    /// The metadata last sent for each run, for its `DELETED` event.
    sent: HashMap<String, Value>,
    /// Live runs whose progress is being forwarded.
    followed: HashSet<String>,
    followers: JoinSet<String>,
}

impl Watch {
    async fn run(mut self, mut runs: broadcast::Receiver<RunEvent>) {
        if self.sync().await.is_err() {
            return;
        }
        loop {
            let event = tokio::select! {
                event = runs.recv() => event,
                () = self.sender.closed() => return,
                // A follower ends with its run's actor; a resumed run is followed again.
                Some(Ok(name)) = self.followers.join_next(), if !self.followers.is_empty() => {
                    self.followed.remove(&name);
                    continue;
                }
            };
            let sent = match event {
                Ok(RunEvent::Started(name)) => self.announce(&name).await,
                Ok(RunEvent::Deleted(name)) => self.deleted(&name).await,
                // Missed some: compare with the store again.
                Err(broadcast::error::RecvError::Lagged(_)) => self.sync().await,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// `ADDED` for each stored run not sent yet.
    async fn sync(&mut self) -> Result<(), Gone> {
        for summary in self.engine.list().unwrap_or_default() {
            if !self.sent.contains_key(&summary.name) {
                self.announce(&summary.name).await?;
            }
        }
        Ok(())
    }

    /// The run's current state (`ADDED`, or `MODIFIED` if it was sent before), then its
    /// changes while it is live.
    async fn announce(&mut self, name: &str) -> Result<(), Gone> {
        let (run, progress) = match self.engine.watch(name) {
            // Read through the channel, so every later change is seen as one.
            Some(mut progress) => {
                let run = progress.borrow_and_update().clone();
                (run, Some(progress))
            }
            // Already finished and collected, or not live in this process.
            None => match self.engine.get(name) {
                Ok(Some(run)) => (run, None),
                _ => return Ok(()),
            },
        };
        let Some(object) = self.filter.object(&run) else {
            return Ok(());
        };
        let kind = if self.sent.contains_key(name) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.sent
            .insert(name.to_string(), object["metadata"].clone());
        send(&self.sender, kind, object).await?;
        if let Some(progress) = progress
            && self.followed.insert(name.to_string())
        {
            let filter = self.filter.clone();
            let sender = self.sender.clone();
            self.followers
                .spawn(forward(name.to_string(), progress, filter, sender));
        }
        Ok(())
    }

    async fn deleted(&mut self, name: &str) -> Result<(), Gone> {
        let Some(metadata) = self.sent.remove(name) else {
            return Ok(());
        };
        let object = json!({
            "apiVersion": cox_config::load::API_VERSION,
            "kind": "Workflow",
            "metadata": metadata,
            "spec": {},
        });
        send(&self.sender, "DELETED", object).await
    }
}

/// The client has gone.
struct Gone;

async fn send(sender: &mpsc::Sender<Value>, kind: &str, object: Value) -> Result<(), Gone> {
    sender
        .send(json!({ "type": kind, "object": object }))
        .await
        .map_err(|_| Gone)
}

/// Each new state of a live run as `MODIFIED`, until its actor stops (the last state
/// is delivered before the channel reports closed); the run's name.
async fn forward(
    name: String,
    mut progress: watch::Receiver<RunState>,
    filter: Filter,
    sender: mpsc::Sender<Value>,
) -> String {
    while progress.changed().await.is_ok() {
        let run = progress.borrow_and_update().clone();
        if let Some(object) = filter.object(&run)
            && send(&sender, "MODIFIED", object).await.is_err()
        {
            break;
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let query = |selector: &str| {
            HashMap::from([(
                "listOptions.fieldSelector".to_string(),
                selector.to_string(),
            )])
        };
        let filter = Filter::parse("argo".into(), &query("metadata.name=a")).expect("valid");
        assert!(filter.matches_run("a", "argo"));
        assert!(!filter.matches_run("b", "argo"));
        assert!(!filter.matches_run("a", "other"));
        let filter = Filter::parse(
            "argo".into(),
            &query("metadata.name!=a,metadata.namespace==argo"),
        )
        .expect("valid");
        assert!(!filter.matches_run("a", "argo"));
        assert!(filter.matches_run("b", "argo"));
        let error =
            Filter::parse("argo".into(), &query("status.phase=Running")).expect_err("refused");
        assert!(error.message.contains("status.phase"), "{}", error.message);
        assert!(Filter::parse("argo".into(), &query("metadata.name")).is_err());
    }
}
