//! `RunState`: the whole of a run's durable state, and `apply`.

use chrono::{DateTime, Utc};
use cox_config::expr::Vars;
use cox_config::model::{Template, Workflow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

use super::lifecycle::{self, Request};
use super::node::{Phase, node_id};
use super::nodes::Nodes;
use super::operator::{Call, Operator, TemplateSource, parse_ts, ts};
use super::{Action, Event};

/// A template by stored key (`namespaced/<wftmpl>/<name>`: keys have a `/`, names do not)
/// among `stored`, or by name among the workflow's.
pub(super) fn find_template<'a>(
    workflow: &'a Workflow,
    stored: &'a BTreeMap<String, Template>,
    name: &str,
) -> Option<&'a Template> {
    if name.contains('/') {
        return stored.get(name);
    }
    workflow
        .spec
        .templates
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
}

/// The workflow a run executes, parsed from its JSON text: the stored WorkflowTemplate spec
/// replaces the submitted one when there is one, and the stored templates are parsed.
#[derive(Debug, Clone)]
pub(super) struct Executable {
    pub(super) workflow: Workflow,
    pub(super) stored: BTreeMap<String, Template>,
}

impl Executable {
    /// A template by stored key (`namespaced/<wftmpl>/<name>`, which has a `/`) or by name.
    pub(super) fn template(&self, name: &str) -> Option<&Template> {
        find_template(&self.workflow, &self.stored, name)
    }

    fn new(mut workflow: Workflow) -> Result<Executable, String> {
        let status = workflow.status.clone().unwrap_or(Value::Null);
        if let Some(spec) = status.get(crate::resolve::STORED_SPEC) {
            // Suspending is done on the workflow's own spec, as Argo does.
            let suspend = workflow.spec.suspend;
            workflow.spec = serde_json::from_value(spec.clone())
                .map_err(|e| format!("status.{}: {e}", crate::resolve::STORED_SPEC))?;
            workflow.spec.suspend = suspend;
        }
        let mut stored = BTreeMap::new();
        if let Some(Value::Object(templates)) = status.get(crate::resolve::STORED_TEMPLATES) {
            for (key, template) in templates {
                let template = serde_json::from_value(template.clone()).map_err(|e| {
                    format!("status.{}.{key}: {e}", crate::resolve::STORED_TEMPLATES)
                })?;
                stored.insert(key.clone(), template);
            }
        }
        Ok(Executable { workflow, stored })
    }
}

/// Everything known about one run. Encodable by the store (no free-form JSON inside: the
/// workflow is kept as its JSON text and parsed again when loaded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The run's name (`metadata.name`).
    pub name: String,
    /// The workflow as submitted, name filled in, as JSON text (shared with the copies
    /// published to watchers and with what the store last wrote: its size is the workflow's).
    pub workflow_json: std::sync::Arc<str>,
    /// Workflow phase.
    pub phase: Phase,
    /// Why the workflow is in its phase.
    pub message: String,
    /// RFC 3339 start.
    pub started_at: Option<String>,
    /// RFC 3339 end.
    pub finished_at: Option<String>,
    /// Nodes by id.
    pub nodes: Nodes,
    /// Global outputs (`globalName`): parameters.
    pub global_parameters: Vec<(String, String)>,
    /// Global outputs (`globalName`): artifacts, named by their global name.
    #[serde(default)]
    pub global_artifacts: Vec<super::node::ArtifactRef>,
    /// The main part ended: its phase and message, kept while the exit handler runs.
    pub main_result: Option<(Phase, String)>,
    /// Asked to stop: the message, and whether exit handlers are skipped (terminate).
    pub stopped: Option<(String, bool)>,
    /// Why the latest state could not be stored, while that lasts (a full disk): shown by
    /// the API and the CLI, never stored.
    #[serde(skip)]
    pub store_error: Option<String>,
    #[serde(skip)]
    /// Shared with the copies published to watchers: a copy does not copy the workflow.
    pub(super) spec: Option<std::sync::Arc<Executable>>,
    #[serde(skip)]
    cache: super::operator::Cache,
    /// Nodes admitted to their template's locks and not launched yet (derived: a restart
    /// asks again for those not launched).
    #[serde(skip)]
    pub(super) locks_granted: BTreeSet<String>,
    /// Nodes whose locks were asked for ([`Action::Acquire`]) in this process.
    #[serde(skip)]
    pub(super) locks_requested: BTreeSet<String>,
}

impl RunState {
    /// A new run of `workflow` (whose `metadata.name` is the run's name).
    pub fn new(workflow: Workflow, now: DateTime<Utc>) -> Result<RunState, String> {
        let name = workflow
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or("workflow has no name")?;
        let mut workflow = workflow;
        if workflow.metadata.creation_timestamp.is_none() {
            workflow.metadata.creation_timestamp = Some(ts(now));
        }
        let workflow_json =
            serde_json::to_string(&workflow).map_err(|e| format!("cannot encode workflow: {e}"))?;
        let spec = Some(std::sync::Arc::new(Executable::new(workflow)?));
        Ok(RunState::pending(name, workflow_json, spec))
    }

    /// A run of `workflow_json` as read from an older stored shape: not started until its
    /// caller sets the stored fields; the workflow is parsed when first used.
    pub(crate) fn stored(name: String, workflow_json: String) -> RunState {
        RunState::pending(name, workflow_json, None)
    }

    /// A run that has not started, of the workflow `workflow_json` (`spec`: parsed).
    fn pending(
        name: String,
        workflow_json: String,
        spec: Option<std::sync::Arc<Executable>>,
    ) -> RunState {
        RunState {
            name,
            workflow_json: workflow_json.into(),
            phase: Phase::Pending,
            message: String::new(),
            started_at: None,
            finished_at: None,
            nodes: Nodes::new(),
            global_parameters: Vec::new(),
            global_artifacts: Vec::new(),
            main_result: None,
            stopped: None,
            spec,
            cache: Default::default(),
            store_error: None,
            locks_granted: BTreeSet::new(),
            locks_requested: BTreeSet::new(),
        }
    }

    /// The workflow this run executes.
    pub fn workflow(&mut self) -> Result<&Workflow, String> {
        if self.spec.is_none() {
            let wf: Workflow = serde_json::from_str(&self.workflow_json)
                .map_err(|e| format!("stored workflow is unreadable: {e}"))?;
            self.spec = Some(std::sync::Arc::new(Executable::new(wf)?));
        }
        self.spec
            .as_deref()
            .map(|e| &e.workflow)
            .ok_or_else(|| "workflow missing".to_string())
    }

    /// Runs `workflow` from now on (parameters changed by a retry).
    pub(super) fn replace_workflow(&mut self, workflow: Workflow) -> Result<(), String> {
        self.workflow_json = serde_json::to_string(&workflow)
            .map_err(|e| format!("cannot encode workflow: {e}"))?
            .into();
        self.spec = None;
        self.reset_derived();
        Ok(())
    }

    /// Forgets what the machine derived from the nodes (they were changed from outside).
    pub(super) fn reset_derived(&mut self) {
        self.cache = Default::default();
    }

    /// A run of which nothing can be read but its name and creation time (its stored
    /// record is damaged): an empty workflow, not started. The store quarantines it.
    pub fn quarantined(name: &str, created_at: DateTime<Utc>) -> RunState {
        let workflow = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name, "creationTimestamp": ts(created_at)},
            "spec": {},
        });
        RunState::pending(name.to_string(), workflow.to_string(), None)
    }

    /// This state without its nodes (which the store keeps one record each).
    pub fn header(&self) -> RunState {
        RunState {
            name: self.name.clone(),
            workflow_json: self.workflow_json.clone(),
            phase: self.phase,
            message: self.message.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.finished_at.clone(),
            nodes: Nodes::new(),
            global_parameters: self.global_parameters.clone(),
            global_artifacts: self.global_artifacts.clone(),
            main_result: self.main_result.clone(),
            stopped: self.stopped.clone(),
            spec: None,
            cache: Default::default(),
            store_error: None,
            locks_granted: BTreeSet::new(),
            locks_requested: BTreeSet::new(),
        }
    }

    /// Whether this state's header ([`RunState::header`], what the store writes beside the
    /// nodes) is `other`'s. Every field is named: a new one must be placed here.
    pub(crate) fn same_header(&self, other: &RunState) -> bool {
        let RunState {
            name,
            workflow_json,
            phase,
            message,
            started_at,
            finished_at,
            nodes: _,
            global_parameters,
            global_artifacts,
            main_result,
            stopped,
            store_error: _,
            spec: _,
            cache: _,
            locks_granted: _,
            locks_requested: _,
        } = self;
        *name == other.name
            && *workflow_json == other.workflow_json
            && *phase == other.phase
            && *message == other.message
            && *started_at == other.started_at
            && *finished_at == other.finished_at
            && *global_parameters == other.global_parameters
            && *global_artifacts == other.global_artifacts
            && *main_result == other.main_result
            && *stopped == other.stopped
    }

    /// The workflow phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.phase.is_done()
    }

    /// Pod nodes launched and not ended.
    pub fn running_steps(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.node_type.is_step() && n.launched && !n.phase.is_done())
            .map(|n| n.id.clone())
            .collect()
    }

    /// Why a lifecycle request would be refused now (nothing changes here).
    pub fn check(&mut self, request: &Request) -> Result<(), String> {
        if self.is_finished() {
            return Err(format!("cannot {} a completed workflow", request.verb()));
        }
        self.workflow()?;
        let executable = self.spec.as_deref().ok_or("workflow missing")?;
        lifecycle::plan(executable, &self.nodes, request).map(drop)
    }

    /// Whether the workflow is suspended (`spec.suspend`).
    pub fn is_suspended(&mut self) -> bool {
        self.workflow()
            .is_ok_and(|workflow| workflow.spec.suspend == Some(true))
    }

    /// Apply one event; returns what the actor must do (after persisting this state).
    pub fn apply(&mut self, event: Event) -> Vec<Action> {
        if self.is_finished() {
            return Vec::new();
        }
        if let Err(e) = self.workflow() {
            self.phase = Phase::Error;
            self.message = e;
            return vec![Action::Finished];
        }
        let not_started = self.phase == Phase::Pending && self.nodes.is_empty();
        match &event {
            // Argo's waiting message, on the run or on the node.
            Event::LockWaiting { node_id, message } => {
                match node_id {
                    None if self.phase == Phase::Pending => self.message = message.clone(),
                    None => {}
                    Some(id) => {
                        if let Some(node) = self.nodes.get_mut(id)
                            && node.phase == Phase::Pending
                            && !node.launched
                        {
                            node.message = message.clone();
                        }
                    }
                }
                return Vec::new();
            }
            Event::LockGranted { node_id, .. } => {
                if let Some(node) = self.nodes.get_mut(node_id) {
                    if node.message.starts_with("Waiting for ") {
                        node.message.clear();
                    }
                    self.locks_granted.insert(node_id.clone());
                }
            }
            // Stopped while waiting for its locks: nothing ran, nothing will.
            Event::Stop { now, terminate }
            | Event::Lifecycle {
                now,
                request: Request::Stop { terminate, .. },
            } if not_started => {
                self.mark_stopped(*terminate);
                self.phase = Phase::Failed;
                self.message = self
                    .stopped
                    .as_ref()
                    .map(|(m, _)| m.clone())
                    .unwrap_or_default();
                self.finished_at = Some(ts(*now));
                return vec![Action::Finished];
            }
            _ => {}
        }
        // A request that is refused (see `check`) changes nothing; the tree is reconciled anyway.
        if let Event::Lifecycle { now, request } = &event
            && let Some(executable) = self.spec.as_mut().map(std::sync::Arc::make_mut)
            && let Ok(plan) = lifecycle::plan(executable, &self.nodes, request)
        {
            lifecycle::apply(
                plan,
                executable,
                &mut self.workflow_json,
                &mut self.nodes,
                *now,
            );
            if let Request::Stop { terminate, .. } = request {
                self.mark_stopped(*terminate);
            }
        }
        // Borrow the parsed workflow out of the state for this event instead of copying it.
        let Some(workflow) = self.spec.take() else {
            return Vec::new();
        };
        let actions = self.apply_with(&workflow.workflow, &workflow.stored, event);
        self.spec = Some(workflow);
        actions
    }

    fn apply_with(
        &mut self,
        workflow: &Workflow,
        stored: &BTreeMap<String, Template>,
        event: Event,
    ) -> Vec<Action> {
        let (now, finished_step) = match event {
            Event::Start { now } => (now, None),
            Event::StepFinished {
                node_id,
                outcome,
                now,
            } => (now, Some((node_id, outcome))),
            Event::Timer { now }
            | Event::Lifecycle { now, .. }
            | Event::LockGranted { now, .. } => (now, None),
            // Answered in `apply`.
            Event::LockWaiting { .. } => return Vec::new(),
            Event::Stop { now, terminate } => {
                self.mark_stopped(terminate);
                (now, None)
            }
        };
        if self.phase == Phase::Pending {
            self.phase = Phase::Running;
            self.started_at = Some(ts(now));
            // The only message of a pending run is why it waited.
            self.message.clear();
        }
        let globals = self.globals(workflow, now);
        let running_pods = self.running_steps().len();
        let mut op = Operator {
            wf: workflow,
            stored,
            scope: None,
            run: &self.name.clone(),
            nodes: &mut self.nodes,
            actions: Vec::new(),
            now,
            globals,
            wake: None,
            running_pods,
            parallelism: workflow.spec.parallelism.map(|p| p.max(0) as usize),
            shutdown: None,
            global_parameters: self.global_parameters.clone(),
            global_artifacts: self.global_artifacts.clone(),
            cache: &mut self.cache,
            locks_granted: &mut self.locks_granted,
            locks_requested: &mut self.locks_requested,
        };
        if let Some((id, outcome)) = &finished_step {
            op.record_outcome(id, outcome);
            op.running_pods = op.running_pods.saturating_sub(1);
        }

        // Workflow deadline: stop everything, fail, then run the exit handler.
        if let (Some(limit), Some(started)) = (
            workflow.spec.active_deadline_seconds,
            self.started_at.as_deref().and_then(parse_ts),
        ) {
            let deadline = started + chrono::Duration::seconds(limit);
            if now >= deadline && self.main_result.is_none() {
                op.shutdown = Some("Max duration limit exceeded".to_string());
            } else if self.main_result.is_none() {
                op.wake = Some(op.wake.map_or(deadline, |w| w.min(deadline)));
            }
        }
        if let Some((message, _)) = &self.stopped
            && self.main_result.is_none()
        {
            op.shutdown = Some(message.clone());
        }
        let name = self.name.clone();
        let entry = workflow.spec.entrypoint.clone().unwrap_or_default();
        let arguments = workflow.spec.arguments.clone().unwrap_or_default();
        let call = Call {
            template: TemplateSource::Named(entry),
            parameters: arguments
                .parameters
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        p.value_or_default().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            // `spec.arguments.artifacts`: the entrypoint's inputs, by location.
            artifacts: arguments
                .artifacts
                .iter()
                .filter_map(|a| {
                    super::operator::ArtifactInput::from_location(a, &op.globals)
                        .map(|i| (a.name.clone(), i))
                })
                .collect(),
        };
        let root = node_id(&name, &name);
        if self.main_result.is_none() {
            let deadline_hit = op.shutdown.clone();
            if deadline_hit.is_some() {
                // Stop what runs; each stopped step reports back and keeps this reason.
                let running: Vec<String> = op
                    .nodes
                    .values()
                    .filter(|n| {
                        n.node_type.is_step()
                            && n.launched
                            && !n.phase.is_done()
                            && n.message.is_empty()
                    })
                    .map(|n| n.id.clone())
                    .collect();
                for id in running {
                    op.actions.push(Action::Cancel {
                        node_id: id.clone(),
                    });
                    // A stopped step says why: its deadline passed, or the run was stopped.
                    let reason = match &self.stopped {
                        Some((message, _)) => message.clone(),
                        None => super::operator::DEADLINE_MESSAGE.to_string(),
                    };
                    if let Some(n) = op.nodes.get_mut(&id) {
                        n.message = reason;
                    }
                }
            }
            op.execute(&name, &name, &call, None, None, &Vars::new());
            let still_running = op
                .nodes
                .values()
                .any(|n| n.node_type.is_step() && n.launched && !n.phase.is_done());
            if let Some(message) = deadline_hit.filter(|_| !still_running) {
                // Once every stopped step has ended, everything still open ends too.
                let open: Vec<String> = op
                    .nodes
                    .values()
                    .filter(|n| !n.phase.is_done())
                    .map(|n| n.id.clone())
                    .collect();
                for id in open {
                    if let Some(n) = op.nodes.get_mut(&id) {
                        n.phase = Phase::Failed;
                        n.message = message.clone();
                        n.finished_at = Some(ts(now));
                    }
                }
            }
            if let Some(root_node) = op.nodes.get(&root)
                && root_node.phase.is_done()
            {
                let message = if root_node.phase.is_failure() {
                    root_node.message.clone()
                } else {
                    String::new()
                };
                // A stopped run says so, as Argo does, whatever its children reported.
                self.main_result = match &self.stopped {
                    Some((stop_message, _)) => Some((Phase::Failed, stop_message.clone())),
                    None => Some((root_node.phase, message)),
                };
            }
        }
        let mut finished = false;
        if let Some((phase, message)) = self.main_result.clone() {
            let terminated = self
                .stopped
                .as_ref()
                .is_some_and(|(_, terminate)| *terminate);
            let exit_handler = workflow.spec.on_exit.clone().or_else(|| {
                workflow
                    .spec
                    .hooks
                    .get("exit")
                    .and_then(|h| h.template.clone())
            });
            match exit_handler.filter(|_| !terminated) {
                Some(exit) => {
                    let status = match phase {
                        Phase::Succeeded => "Succeeded",
                        Phase::Error => "Error",
                        _ => "Failed",
                    };
                    op.globals
                        .insert("workflow.status", Value::String(status.to_string()));
                    let failures: Vec<Value> = op
                        .nodes
                        .values()
                        .filter(|n| n.phase.is_failure() && n.node_type.is_step())
                        .map(|n| json!({"displayName": n.display_name, "message": n.message, "templateName": n.template_name, "phase": n.phase.as_str(), "podName": n.id, "finishedAt": n.finished_at}))
                        .collect();
                    op.globals.insert(
                        "workflow.failures",
                        Value::String(serde_json::to_string(&failures).unwrap_or_default()),
                    );
                    op.shutdown = None;
                    let exit_name = format!("{name}.onExit");
                    let exit_call = Call {
                        template: TemplateSource::Named(exit),
                        parameters: Vec::new(),
                        artifacts: Vec::new(),
                    };
                    let exit_id =
                        op.execute(&exit_name, &exit_name, &exit_call, None, None, &Vars::new());
                    if let Some(exit_node) = op.nodes.get(&exit_id)
                        && exit_node.phase.is_done()
                    {
                        finished = true;
                        let exit_failed = exit_node.phase.is_failure();
                        self.phase = if phase == Phase::Succeeded && exit_failed {
                            Phase::Failed
                        } else {
                            phase
                        };
                        self.message = if phase == Phase::Succeeded && exit_failed {
                            exit_node.message.clone()
                        } else {
                            message
                        };
                    }
                }
                None => {
                    finished = true;
                    self.phase = phase;
                    self.message = message;
                }
            }
        }
        let mut actions = std::mem::take(&mut op.actions);
        let wake = op.wake;
        self.global_parameters = op.global_parameters.clone();
        self.global_artifacts = op.global_artifacts.clone();
        if finished {
            self.finished_at = Some(ts(now));
            for (repository, keys) in self.artifact_gc(workflow, GC_ON_COMPLETION) {
                actions.push(Action::DeleteArtifacts { repository, keys });
            }
            actions.push(Action::Finished);
        } else if let Some(at) = wake {
            actions.push(Action::WakeAt { at });
        }
        actions
    }

    /// Asked to stop: the first request decides the strategy.
    fn mark_stopped(&mut self, terminate: bool) {
        if self.stopped.is_none() {
            let strategy = if terminate { "Terminate" } else { "Stop" };
            self.stopped = Some((format!("Stopped with strategy '{strategy}'"), terminate));
        }
    }

    pub(super) fn globals(&self, wf: &Workflow, now: DateTime<Utc>) -> Vars {
        let mut vars = Vars::new().with_now(now);
        vars.insert("workflow.name", Value::String(self.name.clone()));
        vars.insert(
            "workflow.namespace",
            Value::String(
                wf.metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
        );
        vars.insert("workflow.uid", Value::String(node_id(&self.name, "uid")));
        vars.insert(
            "workflow.serviceAccountName",
            Value::String(
                wf.spec
                    .service_account_name
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            ),
        );
        vars.insert(
            "workflow.mainEntrypoint",
            Value::String(wf.spec.entrypoint.clone().unwrap_or_default()),
        );
        if let Some(p) = wf.spec.priority {
            vars.insert("workflow.priority", Value::String(p.to_string()));
        }
        if let Some(created) = &wf.metadata.creation_timestamp {
            vars.insert("workflow.creationTimestamp", Value::String(created.clone()));
            if let Some(t) = parse_ts(created) {
                for (k, v) in [
                    ("Y", t.format("%Y")),
                    ("m", t.format("%m")),
                    ("d", t.format("%d")),
                    ("H", t.format("%H")),
                    ("M", t.format("%M")),
                    ("S", t.format("%S")),
                ] {
                    vars.insert(
                        format!("workflow.creationTimestamp.{k}"),
                        Value::String(v.to_string()),
                    );
                }
                vars.insert(
                    "workflow.creationTimestamp.RFC3339",
                    Value::String(created.clone()),
                );
            }
        }
        if let Some(started) = self.started_at.as_deref().and_then(parse_ts) {
            vars.insert(
                "workflow.duration",
                Value::String(format!(
                    "{}",
                    (now - started).num_milliseconds() as f64 / 1000.0
                )),
            );
        }
        let mut params = serde_json::Map::new();
        for p in wf.spec.arguments.iter().flat_map(|a| a.parameters.iter()) {
            let v = p.value_or_default().unwrap_or_default().to_string();
            vars.insert(
                format!("workflow.parameters.{}", p.name),
                Value::String(v.clone()),
            );
            params.insert(p.name.clone(), Value::String(v));
        }
        vars.insert(
            "workflow.parameters.json",
            Value::String(serde_json::to_string(&params).unwrap_or_default()),
        );
        let mut labels = serde_json::Map::new();
        for (k, v) in &wf.metadata.labels {
            vars.insert(format!("workflow.labels.{k}"), Value::String(v.clone()));
            labels.insert(k.clone(), Value::String(v.clone()));
        }
        vars.insert(
            "workflow.labels.json",
            Value::String(serde_json::to_string(&labels).unwrap_or_default()),
        );
        let mut annotations = serde_json::Map::new();
        for (k, v) in &wf.metadata.annotations {
            vars.insert(
                format!("workflow.annotations.{k}"),
                Value::String(v.clone()),
            );
            annotations.insert(k.clone(), Value::String(v.clone()));
        }
        vars.insert(
            "workflow.annotations.json",
            Value::String(serde_json::to_string(&annotations).unwrap_or_default()),
        );
        for (k, v) in &self.global_parameters {
            vars.insert(
                format!("workflow.outputs.parameters.{k}"),
                Value::String(v.clone()),
            );
        }
        for a in &self.global_artifacts {
            vars.insert(
                format!("workflow.outputs.artifacts.{}", a.name),
                Value::String(format!("artifact:{}", a.key)),
            );
        }
        vars
    }

    /// The output artifacts whose `artifactGC.strategy` (the artifact's own, else the
    /// workflow's `spec.artifactGC`) is `strategy`, as keys grouped by the repository they
    /// are in (an artifact's own bucket, else the run's repository: `None` is the configured
    /// one), each once, in the order first met.
    pub fn artifact_gc(
        &self,
        wf: &Workflow,
        strategy: &str,
    ) -> Vec<(cox_worker::step::ArtifactStore, Vec<String>)> {
        let default = wf
            .spec
            .artifact_gc
            .as_ref()
            .and_then(|g| g.strategy.as_deref())
            .unwrap_or_default();
        let run_repository = crate::resolve::run_repository(wf);
        let mut batches: Vec<(cox_worker::step::ArtifactStore, Vec<String>)> = Vec::new();
        for n in self.nodes.values() {
            let declared = n
                .template_name
                .as_deref()
                .and_then(|t| {
                    wf.spec
                        .templates
                        .iter()
                        .find(|x| x.name.as_deref() == Some(t))
                })
                .and_then(|t| t.outputs.as_ref());
            for a in &n.outputs.artifacts {
                let declaration =
                    declared.and_then(|o| o.artifacts.iter().find(|d| d.name == a.name));
                let own = declaration
                    .and_then(|d| d.artifact_gc.as_ref())
                    .and_then(|g| g.strategy.as_deref())
                    .filter(|s| !s.is_empty());
                if own.unwrap_or(default) != strategy {
                    continue;
                }
                let repository = a.store.clone().or_else(|| run_repository.clone());
                let batch = match batches.iter_mut().find(|(r, _)| *r == repository) {
                    Some((_, keys)) => keys,
                    None => {
                        batches.push((repository, Vec::new()));
                        &mut batches.last_mut().expect("just pushed").1
                    }
                };
                if !batch.contains(&a.key) {
                    batch.push(a.key.clone());
                }
            }
        }
        batches
    }

    /// The run as Argo's Workflow object: metadata, spec and status.
    pub fn workflow_json(&self) -> Value {
        let mut wf: Value = serde_json::from_str(&self.workflow_json).unwrap_or(Value::Null);
        let mut nodes = serde_json::Map::new();
        let (mut done, mut total) = (0, 0);
        for n in self.nodes.values() {
            if n.node_type.is_step() {
                total += 1;
                if n.phase.is_done() {
                    done += 1;
                }
            }
            let mut node = json!({
                "id": n.id,
                "name": n.name,
                "displayName": n.display_name,
                "type": n.node_type.as_str(),
                "phase": n.phase.as_str(),
            });
            let obj = node.as_object_mut().expect("object literal");
            match n
                .template_name
                .as_deref()
                .map(|t| t.splitn(3, '/').collect::<Vec<_>>())
            {
                // A stored template's key: Argo shows the reference and its scope.
                Some(parts) if parts.len() == 3 => {
                    let mut reference = json!({"name": parts[1], "template": parts[2]});
                    if parts[0] == "cluster" {
                        reference["clusterScope"] = json!(true);
                    }
                    obj.insert("templateRef".into(), reference);
                    obj.insert(
                        "templateScope".into(),
                        json!(format!("{}/{}", parts[0], parts[1])),
                    );
                }
                Some(parts) => {
                    obj.insert("templateName".into(), json!(parts.join("/")));
                }
                None => {}
            }
            if let Some(b) = &n.boundary_id {
                obj.insert("boundaryID".into(), json!(b));
            }
            // Only existing nodes: a retried run's children that run again keep their
            // place before they are created anew.
            let children: Vec<&String> = n
                .children
                .iter()
                .filter(|c| self.nodes.contains_key(c))
                .collect();
            if !children.is_empty() {
                obj.insert("children".into(), json!(children));
            }
            if !n.message.is_empty() {
                obj.insert("message".into(), json!(n.message));
            }
            if let Some(m) = &n.memoization {
                obj.insert(
                    "memoizationStatus".into(),
                    json!({"hit": m.hit, "key": m.key, "cacheName": m.cache_name}),
                );
            }
            if let Some(s) = &n.started_at {
                obj.insert("startedAt".into(), json!(s));
            }
            if let Some(s) = &n.finished_at {
                obj.insert("finishedAt".into(), json!(s));
            }
            if !n.inputs.is_empty() {
                obj.insert("inputs".into(), json!({"parameters": n.inputs.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>()}));
            }
            if !n.outputs.is_empty() {
                let mut out = serde_json::Map::new();
                if !n.outputs.parameters.is_empty() {
                    out.insert(
                        "parameters".into(),
                        json!(
                            n.outputs
                                .parameters
                                .iter()
                                .map(|(k, v)| json!({"name": k, "value": v}))
                                .collect::<Vec<_>>()
                        ),
                    );
                }
                if !n.outputs.artifacts.is_empty() {
                    out.insert(
                        "artifacts".into(),
                        json!(
                            n.outputs
                                .artifacts
                                .iter()
                                .map(artifact_json)
                                .collect::<Vec<_>>()
                        ),
                    );
                }
                if let Some(r) = &n.outputs.result {
                    out.insert("result".into(), json!(r));
                }
                if let Some(c) = n.outputs.exit_code {
                    out.insert("exitCode".into(), json!(c.to_string()));
                }
                obj.insert("outputs".into(), Value::Object(out));
            }
            nodes.insert(n.id.clone(), node);
        }
        let mut status =
            json!({ "phase": self.phase.as_str(), "progress": format!("{done}/{total}") });
        let st = status.as_object_mut().expect("object literal");
        if let Some(s) = &self.started_at {
            st.insert("startedAt".into(), json!(s));
        }
        if let Some(s) = &self.finished_at {
            st.insert("finishedAt".into(), json!(s));
        }
        if let Some(error) = &self.store_error {
            st.insert("message".into(), json!(error));
        } else if !self.message.is_empty() {
            st.insert("message".into(), json!(self.message));
        }
        if !nodes.is_empty() {
            st.insert("nodes".into(), Value::Object(nodes));
        }
        if let Some(sync) = self.sync_status() {
            st.insert("synchronization".into(), sync);
        }
        let mut outputs = serde_json::Map::new();
        if !self.global_parameters.is_empty() {
            outputs.insert(
                "parameters".into(),
                json!(
                    self.global_parameters
                        .iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect::<Vec<_>>()
                ),
            );
        }
        if !self.global_artifacts.is_empty() {
            outputs.insert(
                "artifacts".into(),
                json!(
                    self.global_artifacts
                        .iter()
                        .map(artifact_json)
                        .collect::<Vec<_>>()
                ),
            );
        }
        if !outputs.is_empty() {
            st.insert("outputs".into(), Value::Object(outputs));
        }
        if let (Some((_, terminate)), Some(spec)) = (
            &self.stopped,
            wf.get_mut("spec").and_then(Value::as_object_mut),
        ) {
            let strategy = if *terminate { "Terminate" } else { "Stop" };
            spec.insert("shutdown".into(), json!(strategy));
        }
        if let Value::Object(map) = &mut wf {
            // What resolution stored at submission stays in the status.
            let submitted = map.remove("status").unwrap_or(Value::Null);
            for key in [
                crate::resolve::STORED_TEMPLATES,
                crate::resolve::STORED_SPEC,
                crate::resolve::ARTIFACT_REPOSITORY_REF,
            ] {
                if let (Some(value), Value::Object(status)) = (submitted.get(key), &mut status) {
                    status.insert(key.into(), value.clone());
                }
            }
            map.insert("status".into(), status);
        }
        wf
    }
}

/// Argo's `artifactGC` strategies.
pub const GC_ON_COMPLETION: &str = "OnWorkflowCompletion";
/// See [`GC_ON_COMPLETION`].
pub const GC_ON_DELETION: &str = "OnWorkflowDeletion";

/// An artifact in a node's or the workflow's outputs, in Argo's `Artifact` shape: where it
/// is as an `s3:` location, key-only for the run's repository (as Argo writes artifacts of
/// its default repository), with endpoint, bucket, region, `insecure` and the Secret
/// references for an artifact's own bucket (as Argo records it); and its archive strategy
/// when not the default tar+gzip. Size and digest stay in the node record (`cox cp` and
/// input staging check them), since Argo's schema has no place for them.
fn artifact_json(a: &super::node::ArtifactRef) -> Value {
    let mut value = json!({"name": a.name, "s3": {"key": a.key}});
    if let Some(cox_worker::repo_config::RepositoryLocation::S3 {
        endpoint,
        bucket,
        region,
        insecure,
        key_prefix: _,
        secrets,
    }) = &a.store
    {
        let s3 = &mut value["s3"];
        if let Some(endpoint) = endpoint {
            s3["endpoint"] = json!(endpoint);
        }
        s3["bucket"] = json!(bucket);
        s3["region"] = json!(region);
        if *insecure {
            s3["insecure"] = json!(true);
        }
        let selectors = [
            ("accessKeySecret", &secrets.access_key_secret),
            ("secretKeySecret", &secrets.secret_key_secret),
            ("sessionTokenSecret", &secrets.session_token_secret),
        ];
        for (field, secret) in selectors {
            if let Some(secret) = secret {
                s3[field] = json!({"name": secret.name, "key": secret.key});
            }
        }
    }
    if !a.path.is_empty() {
        value["path"] = json!(a.path);
    }
    match a.archive.as_str() {
        "none" => value["archive"] = json!({"none": {}}),
        "zip" => value["archive"] = json!({"zip": {}}),
        _ => {}
    }
    value
}
