//! `RunState`: the whole of a run's durable state, and `apply`.

use chrono::{DateTime, Utc};
use cox_config::model::Workflow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::node::{Node, Phase};
use super::{Action, Event};

/// Everything known about one run. Encodable by the store (no free-form JSON inside: the
/// workflow is kept as its JSON text and parsed again when loaded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The run's name (`metadata.name`).
    pub name: String,
    /// The workflow as submitted, name filled in, as JSON text.
    pub workflow_json: String,
    /// Workflow phase.
    pub phase: Phase,
    /// Why the workflow is in its phase.
    pub message: String,
    /// RFC 3339 times.
    pub started_at: Option<String>,
    /// RFC 3339 times.
    pub finished_at: Option<String>,
    /// Nodes by id.
    pub nodes: BTreeMap<String, Node>,
    /// Global outputs (`globalName`): parameters.
    pub global_parameters: Vec<(String, String)>,
    /// Whether the workflow-level exit handler has been started.
    pub exit_handler_started: bool,
    #[serde(skip)]
    spec: Option<Box<Workflow>>,
}

impl RunState {
    /// A new run of `workflow` (whose `metadata.name` is the run's name).
    pub fn new(workflow: Workflow, now: DateTime<Utc>) -> Result<RunState, String> {
        let name = workflow.metadata.name.clone().filter(|n| !n.is_empty()).ok_or("workflow has no name")?;
        let workflow_json = serde_json::to_string(&workflow).map_err(|e| format!("cannot encode workflow: {e}"))?;
        let _ = now;
        Ok(RunState {
            name,
            workflow_json,
            phase: Phase::Pending,
            message: String::new(),
            started_at: None,
            finished_at: None,
            nodes: BTreeMap::new(),
            global_parameters: Vec::new(),
            exit_handler_started: false,
            spec: Some(Box::new(workflow)),
        })
    }

    /// Apply one event; returns what the actor must do (after persisting this state).
    pub fn apply(&mut self, event: Event) -> Vec<Action> {
        let _ = event;
        Vec::new()
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.phase.is_done()
    }
}
