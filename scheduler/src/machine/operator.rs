//! The reconcile pass: Argo's operator as a pure function over the node tree.
//!
//! `execute` is called for the root on every event and walks down the templates. It is
//! idempotent: a node that exists and has ended is returned as it is, a running composite
//! node looks at its children again, and a step that has not been launched yet is launched
//! (as an [`Action::Launch`]) once its turn comes and a parallelism slot is free.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use cox_config::expr::{self, Unresolved, Vars, depends};
use cox_config::model::{
    Arguments, Artifact, DagTask, IntOrString, Parameter, Template, TemplateKind, TemplateRef,
    Workflow,
};
use cox_worker::step::{
    ArchiveKind, ArtifactSource, InputArtifact, Memoize, OutputArtifact, OutputParameter, StepSpec,
    VolumeMount,
};
use serde_json::Value;

use super::Action;
use super::node::{ArtifactRef, MemoizationStatus, Node, NodeType, Phase, node_id};

/// How a template is called: by name, inline, with arguments already resolved.
#[derive(Clone)]
pub(crate) struct Call {
    pub template: TemplateSource,
    pub parameters: Vec<(String, String)>,
    pub artifacts: Vec<(String, ArtifactInput)>,
}

#[derive(Clone)]
pub(crate) enum TemplateSource {
    Named(String),
    Inline(Box<Template>),
}

/// An artifact argument, resolved to where its bytes are.
#[derive(Clone, Debug)]
pub(crate) enum ArtifactInput {
    Stored(ArtifactRef),
    Raw(String),
    Http(String),
    /// An explicit `s3:` location: its key, in its own bucket when it names one, else in
    /// the run's repository.
    Key(String, cox_worker::step::ArtifactStore),
    /// An `s3:` location that cannot be used: why.
    Invalid(String),
    /// Only `subPath` of the inner artifact.
    Sub(Box<ArtifactInput>, String),
}

impl ArtifactInput {
    /// An artifact argument or input given by its own location (`raw`, `http`, `s3.key`),
    /// its text and key substituted with `vars`.
    pub(crate) fn from_location(a: &Artifact, vars: &Vars) -> Option<ArtifactInput> {
        let sub = |t: &str| {
            expr::substitute(t, vars, Unresolved::Leave).unwrap_or_else(|_| t.to_string())
        };
        if let Some(raw) = &a.raw {
            Some(ArtifactInput::Raw(sub(&raw.data)))
        } else if let Some(h) = &a.http {
            Some(ArtifactInput::Http(sub(&h.url)))
        } else {
            let s3 = a.s3.as_ref()?;
            let key = sub(s3.key.as_deref()?);
            Some(match artifact_store(s3, vars) {
                Ok(store) => ArtifactInput::Key(key, store),
                Err(e) => ArtifactInput::Invalid(format!("artifact {:?}: {e}", a.name)),
            })
        }
    }
}

/// An artifact's own bucket (its `s3:` naming an endpoint, a bucket or Secrets), texts
/// substituted with `vars`, Secrets in the workflow's namespace.
pub(crate) fn artifact_store(
    s3: &cox_config::model::S3Artifact,
    vars: &Vars,
) -> Result<cox_worker::step::ArtifactStore, String> {
    let namespace = vars
        .get("workflow.namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let sub =
        |t: &str| expr::substitute(t, vars, Unresolved::Leave).unwrap_or_else(|_| t.to_string());
    cox_worker::repo_config::RepositoryLocation::of_artifact(s3, &namespace, &sub)
}

/// The message of a step stopped because a deadline passed.
pub(crate) const DEADLINE_MESSAGE: &str = "Step exceeded its deadline";

pub(crate) struct Operator<'a> {
    pub wf: &'a Workflow,
    /// Templates of (Cluster)WorkflowTemplates, by stored key (`namespaced/<wftmpl>/<name>`).
    pub stored: &'a BTreeMap<String, Template>,
    /// The stored scope (`namespaced/<wftmpl>`) of the template being executed: plain
    /// template names called from it are its WorkflowTemplate's.
    pub scope: Option<String>,
    pub run: &'a str,
    pub nodes: &'a mut super::nodes::Nodes,
    pub actions: Vec<Action>,
    pub now: DateTime<Utc>,
    pub globals: Vars,
    pub wake: Option<DateTime<Utc>>,
    /// Pods running now (launched, not ended), for parallelism limits.
    pub running_pods: usize,
    /// Workflow-level parallelism.
    pub parallelism: Option<usize>,
    /// No new work may start (deadline passed, failFast, stop).
    pub shutdown: Option<String>,
    /// Outputs with `globalName`, published as they appear.
    pub global_parameters: Vec<(String, String)>,
    /// Global outputs (`globalName`): artifacts, named by their global name.
    pub global_artifacts: Vec<ArtifactRef>,
    /// Parsed `depends` and DAG task node ids, kept between events (derived, never stored).
    pub cache: &'a mut Cache,
    /// Nodes admitted to their template's locks (taken out once launched).
    pub locks_granted: &'a mut std::collections::BTreeSet<String>,
    /// Nodes whose template's locks were asked for.
    pub locks_requested: &'a mut std::collections::BTreeSet<String>,
}

/// Derived data the reconcile needs on every event, computed once per run.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// Per DAG node (by name), what its tasks need at every event.
    dags: HashMap<String, std::sync::Arc<DagPlan>>,
    /// Per steps node (by name), the steps its template names.
    steps: HashMap<String, std::sync::Arc<Mentions>>,
}

/// A copy of a state starts with an empty cache: it is derived and rebuilt on demand.
impl Clone for Cache {
    fn clone(&self) -> Self {
        Cache::default()
    }
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn phase_for_expr(p: Phase) -> depends::NodePhase {
    match p {
        Phase::Pending => depends::NodePhase::Pending,
        Phase::Running => depends::NodePhase::Running,
        Phase::Succeeded => depends::NodePhase::Succeeded,
        Phase::Failed => depends::NodePhase::Failed,
        Phase::Error => depends::NodePhase::Error,
        Phase::Skipped => depends::NodePhase::Skipped,
        Phase::Omitted => depends::NodePhase::Omitted,
    }
}

/// Substitute every string in a JSON value (single pass per string).
fn substitute_value(value: &mut Value, vars: &Vars, unresolved: Unresolved) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains("{{") => {
            *s = expr::substitute(s, vars, unresolved).map_err(|e| e.to_string())?;
        }
        Value::Array(items) => {
            for item in items {
                substitute_value(item, vars, unresolved)?;
            }
        }
        Value::Object(map) => {
            for (_, v) in map.iter_mut() {
                substitute_value(v, vars, unresolved)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Deep-merge `over` onto `base` (objects merge, everything else replaces).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// How an item shows in a loop child's name, as Argo prints it.
fn item_label(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) => serde_json::to_string(item).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Put a loop item in scope as `item` (and `item.key` for maps).
fn add_item(vars: &mut Vars, item: &Value) {
    match item {
        Value::String(s) => vars.insert("item", Value::String(s.clone())),
        Value::Object(map) => {
            vars.insert(
                "item",
                Value::String(serde_json::to_string(item).unwrap_or_default()),
            );
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                vars.insert(format!("item.{k}"), Value::String(text));
            }
        }
        Value::Array(list) => {
            vars.insert(
                "item",
                Value::String(serde_json::to_string(item).unwrap_or_default()),
            );
            for (i, v) in list.iter().enumerate() {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                vars.insert(format!("item.[{i}]"), Value::String(text));
            }
        }
        other => vars.insert("item", Value::String(other.to_string())),
    }
}

/// `withSequence`: numbers from start to end (or count of them), formatted.
fn sequence(seq: &cox_config::model::Sequence, vars: &Vars) -> Result<Vec<Value>, String> {
    let num = |v: &Option<IntOrString>| -> Result<Option<i64>, String> {
        match v {
            None => Ok(None),
            Some(IntOrString::Int(i)) => Ok(Some(*i)),
            Some(IntOrString::String(s)) => {
                let s = expr::substitute(s, vars, Unresolved::Error).map_err(|e| e.to_string())?;
                s.trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("withSequence value '{s}' is not an integer"))
            }
        }
    };
    let start = num(&seq.start)?.unwrap_or(0);
    let (from, to) = match (num(&seq.count)?, num(&seq.end)?) {
        (Some(count), _) => {
            if count <= 0 {
                return Ok(Vec::new());
            }
            (start, start + count - 1)
        }
        (None, Some(end)) => (start, end),
        (None, None) => return Err("withSequence needs count or end".into()),
    };
    let numbers: Vec<i64> = if from <= to {
        (from..=to).collect()
    } else {
        (to..=from).rev().collect()
    };
    Ok(numbers
        .into_iter()
        .map(|n| {
            Value::String(match &seq.format {
                Some(f) if !f.is_empty() => format_printf(f, n),
                _ => n.to_string(),
            })
        })
        .collect())
}

/// The subset of printf Argo's `withSequence.format` examples use: `%d`, `%02d`, `%x`, text.
fn format_printf(format: &str, n: i64) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let width: usize = spec.trim_start_matches('0').parse().unwrap_or(0);
        let zero = spec.starts_with('0');
        let body = match chars.next() {
            Some('d') => n.to_string(),
            Some('x') => format!("{n:x}"),
            Some('%') => "%".to_string(),
            Some(other) => format!("%{other}"),
            None => String::new(),
        };
        if body.len() < width {
            let pad = if zero { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(pad, width - body.len()));
        }
        out.push_str(&body);
    }
    out
}

fn archive_kind(artifact: &Artifact) -> ArchiveKind {
    match &artifact.archive {
        Some(a) if a.none.is_some() => ArchiveKind::None,
        Some(a) if a.zip.is_some() => ArchiveKind::Zip,
        _ => ArchiveKind::TarGz,
    }
}

fn archive_name(kind: ArchiveKind) -> &'static str {
    match kind {
        ArchiveKind::TarGz => "tgz",
        ArchiveKind::None => "none",
        ArchiveKind::Zip => "zip",
    }
}

fn archive_from_name(name: &str) -> ArchiveKind {
    match name {
        "none" => ArchiveKind::None,
        "zip" => ArchiveKind::Zip,
        _ => ArchiveKind::TarGz,
    }
}

/// What a step or task refers to when it calls a template.
struct CallSite<'t> {
    template: Option<&'t str>,
    inline: Option<&'t Template>,
    template_ref: Option<&'t TemplateRef>,
    arguments: Option<&'t Arguments>,
}

impl<'a> Operator<'a> {
    /// A template by name, or by stored key for templates of (Cluster)WorkflowTemplates
    /// (template names have no `/`, stored keys do).
    fn template(&self, name: &str) -> Option<&'a Template> {
        super::run::find_template(self.wf, self.stored, name)
    }

    fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    fn wake_at(&mut self, at: DateTime<Utc>) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// Create a node if missing; returns its id.
    fn ensure_node(
        &mut self,
        name: &str,
        display: &str,
        node_type: NodeType,
        template: Option<&str>,
        boundary: Option<&str>,
        parent: Option<&str>,
    ) -> String {
        let id = node_id(self.run, name);
        if !self.nodes.contains_key(&id) {
            self.nodes.insert(
                id.clone(),
                Node {
                    template_name: template.map(str::to_string),
                    boundary_id: boundary.map(str::to_string),
                    started_at: Some(ts(self.now)),
                    ..Node::new(id.clone(), name.to_string(), display.to_string(), node_type)
                },
            );
            if let Some(parent) = parent
                && let Some(p) = self.nodes.get_mut(parent)
                && !p.children.contains(&id)
            {
                p.children.push(id.clone());
            }
        }
        id
    }

    /// A node that ends as soon as it is made (skipped, omitted, or refused before it ran).
    #[allow(clippy::too_many_arguments)]
    fn ended_node(
        &mut self,
        name: &str,
        display: &str,
        node_type: NodeType,
        template: Option<&str>,
        boundary: Option<&str>,
        parent: Option<&str>,
        phase: Phase,
        message: impl Into<String>,
    ) -> String {
        let id = self.ensure_node(name, display, node_type, template, boundary, parent);
        self.finish(&id, phase, message);
        id
    }

    fn finish(&mut self, id: &str, phase: Phase, message: impl Into<String>) {
        let now = ts(self.now);
        if let Some(n) = self.nodes.get_mut(id)
            && !n.phase.is_done()
        {
            n.phase = phase;
            n.message = message.into();
            n.finished_at = Some(now);
        }
    }

    fn set_running(&mut self, id: &str) {
        if let Some(n) = self.nodes.get_mut(id)
            && n.phase == Phase::Pending
        {
            n.phase = Phase::Running;
        }
    }

    /// Record a finished step attempt's outcome on its node.
    pub fn record_outcome(&mut self, id: &str, outcome: &cox_worker::step::StepOutcome) {
        self.record(id, outcome);
        let template = self
            .nodes
            .get(id)
            .and_then(|n| n.template_name.clone())
            .and_then(|t| self.template(&t));
        if let Some(template) = template {
            self.publish_globals(id, template);
        }
    }

    fn record(&mut self, id: &str, outcome: &cox_worker::step::StepOutcome) {
        // A container set's collecting step: the result and exit code stay main's.
        let main = self
            .nodes
            .get(id)
            .map(|n| node_id(self.run, &format!("{}.main", n.name)))
            .and_then(|m| {
                self.nodes
                    .get(id)
                    .filter(|n| n.children.contains(&m))
                    .map(|_| m)
            })
            .and_then(|m| self.nodes.get(&m))
            .map(|m| (m.outputs.exit_code, m.outputs.result.clone()));
        let Some(node) = self.nodes.get_mut(id) else {
            return;
        };
        if node.phase.is_done() {
            return;
        }
        node.phase = match outcome.phase {
            cox_worker::step::StepPhase::Succeeded => Phase::Succeeded,
            cox_worker::step::StepPhase::Failed => Phase::Failed,
            cox_worker::step::StepPhase::Error => Phase::Error,
        };
        // A step the machine stopped keeps the reason it was stopped for.
        if node.message.is_empty() || outcome.phase == cox_worker::step::StepPhase::Succeeded {
            node.message = outcome.message.clone();
        }
        if let Some(m) = &mut node.memoization {
            m.hit = outcome.cache_hit;
        }
        (node.outputs.exit_code, node.outputs.result) =
            main.unwrap_or_else(|| (outcome.exit_code, outcome.result.clone()));
        for (name, value) in &outcome.parameters {
            node.outputs.parameters.push((name.clone(), value.clone()));
        }
        for a in &outcome.artifacts {
            node.outputs.artifacts.push(ArtifactRef {
                name: a.name.clone(),
                key: a.key.clone(),
                path: a.path.clone(),
                archive: archive_name(a.archive).to_string(),
                size: a.size,
                sha256: a.sha256.clone(),
                store: a.store.clone(),
            });
        }
        if let Some(s) = &outcome.started_at {
            node.started_at = Some(s.clone());
        }
        node.finished_at = Some(outcome.finished_at.clone().unwrap_or_else(|| ts(self.now)));
    }

    /// Execute a template as node `name`; returns the node id.
    pub fn execute(
        &mut self,
        name: &str,
        display: &str,
        call: &Call,
        boundary: Option<&str>,
        parent: Option<&str>,
        extra: &Vars,
    ) -> String {
        let id = node_id(self.run, name);
        if let Some(n) = self.node(&id)
            && n.phase.is_done()
        {
            return id;
        }
        let template = match &call.template {
            TemplateSource::Named(t) => match self.template(t) {
                Some(t) => t,
                None => {
                    let id = self.ended_node(
                        name,
                        display,
                        NodeType::Skipped,
                        Some(t),
                        boundary,
                        parent,
                        Phase::Error,
                        format!("template '{t}' not found"),
                    );
                    return id;
                }
            },
            TemplateSource::Inline(t) => t.as_ref(),
        };
        // Nodes of stored templates keep the stored key, so later lookups find the template.
        let template_name = match &call.template {
            TemplateSource::Named(key) if key.contains('/') => key.clone(),
            _ => template.name.clone().unwrap_or_else(|| display.to_string()),
        };
        let template = self.with_defaults(template);
        let template: &Template = &template;

        // Inputs: arguments, then the template's own values and defaults.
        let mut vars = self.globals.clone();
        for (k, v) in extra.iter() {
            vars.insert(k, v.clone());
        }
        let inputs = template.inputs.clone().unwrap_or_default();
        let mut input_values: Vec<(String, String)> = Vec::new();
        let mut missing = None;
        for p in &inputs.parameters {
            // Arguments arrive resolved by the caller and are never expanded again; the
            // template's own value or default may still name globals.
            let given = call
                .parameters
                .iter()
                .find(|(n, _)| n == &p.name)
                .map(|(_, v)| v.clone());
            let own = || {
                p.value_str().or_else(|| p.default_str()).map(|v| {
                    expr::substitute(v, &vars, Unresolved::Leave).unwrap_or_else(|_| v.to_string())
                })
            };
            match given.or_else(own) {
                Some(v) => {
                    let allowed = p.enum_strs();
                    if !allowed.is_empty() && !allowed.contains(&v.as_str()) {
                        missing = Some(format!(
                            "inputs.parameters.{} value '{v}' is not in its enum: {}",
                            p.name,
                            allowed.join(", ")
                        ));
                    }
                    input_values.push((p.name.clone(), v));
                }
                None => missing = Some(format!("inputs.parameters.{} was not supplied", p.name)),
            }
        }
        for (k, v) in &input_values {
            vars.insert(format!("inputs.parameters.{k}"), Value::String(v.clone()));
        }
        if !input_values.is_empty() {
            let map: serde_json::Map<String, Value> = input_values
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            vars.insert(
                "inputs.parameters",
                Value::String(serde_json::to_string(&Value::Object(map)).unwrap_or_default()),
            );
        }
        let mut input_artifacts: Vec<(Artifact, Option<ArtifactInput>)> = Vec::new();
        for a in &inputs.artifacts {
            let given = call
                .artifacts
                .iter()
                .find(|(n, _)| n == &a.name)
                .map(|(_, v)| v.clone());
            let own = ArtifactInput::from_location(a, &vars);
            let source = given.or(own);
            if source.is_none() && a.optional != Some(true) {
                missing = Some(format!("inputs.artifacts.{} was not supplied", a.name));
            }
            if let Some(p) = &a.path {
                vars.insert(
                    format!("inputs.artifacts.{}.path", a.name),
                    Value::String(p.clone()),
                );
            }
            input_artifacts.push((a.clone(), source));
        }
        // Argo's `{{outputs.artifacts.X.path}}` and `{{outputs.parameters.X.path}}`.
        if let Some(outputs) = &template.outputs {
            for a in &outputs.artifacts {
                if let Some(p) = &a.path {
                    vars.insert(
                        format!("outputs.artifacts.{}.path", a.name),
                        Value::String(p.clone()),
                    );
                }
            }
            for p in &outputs.parameters {
                if let Some(path) = p.value_from.as_ref().and_then(|v| v.path.as_ref()) {
                    vars.insert(
                        format!("outputs.parameters.{}.path", p.name),
                        Value::String(path.clone()),
                    );
                }
            }
        }

        let kind = template.kind();
        let has_retry = template.retry_strategy.is_some()
            && matches!(
                kind,
                Some(
                    TemplateKind::Container
                        | TemplateKind::Script
                        | TemplateKind::Steps
                        | TemplateKind::Dag
                )
            );
        let node_type = if has_retry {
            NodeType::Retry
        } else {
            match kind {
                Some(TemplateKind::Steps) => NodeType::Steps,
                Some(TemplateKind::Dag) => NodeType::Dag,
                Some(TemplateKind::Suspend) => NodeType::Suspend,
                _ => NodeType::Pod,
            }
        };
        let id = self.ensure_node(
            name,
            display,
            node_type,
            Some(&template_name),
            boundary,
            parent,
        );
        if let Some(n) = self.nodes.get_mut(&id)
            && n.inputs.is_empty()
        {
            n.inputs = input_values.clone();
        }
        if let Some(message) = missing {
            self.finish(&id, Phase::Error, message);
            return id;
        }
        if self.shutdown.is_some()
            && self
                .nodes
                .get(&id)
                .is_some_and(|n| n.phase == Phase::Pending && !n.launched)
            && node_type != NodeType::Retry
        {
            let message = self.shutdown.clone().unwrap_or_default();
            self.finish(&id, Phase::Failed, message);
            return id;
        }

        // Plain names called from a stored template are its WorkflowTemplate's; an inline
        // template keeps the scope it is written in.
        let outer_scope = self.scope.clone();
        if let TemplateSource::Named(key) = &call.template {
            self.scope = key.rsplit_once('/').map(|(scope, _)| scope.to_string());
        }
        if has_retry {
            self.execute_retry(
                &id,
                name,
                display,
                template,
                &template_name,
                &vars,
                &input_artifacts,
                boundary,
            );
        } else {
            self.execute_kind(
                &id,
                name,
                template,
                &template_name,
                &vars,
                &input_artifacts,
                boundary,
                0,
            );
        }
        self.scope = outer_scope;
        id
    }

    /// The template with `templateDefaults` merged under it.
    fn with_defaults<'t>(&self, template: &'t Template) -> std::borrow::Cow<'t, Template> {
        let Some(defaults) = self.wf.spec.template_defaults.as_deref() else {
            return std::borrow::Cow::Borrowed(template);
        };
        let mut base = serde_json::to_value(defaults).unwrap_or(Value::Null);
        let over = serde_json::to_value(template).unwrap_or(Value::Null);
        // Only the template type the template itself uses takes defaults of that type.
        if let (Value::Object(b), Value::Object(o)) = (&mut base, &over) {
            for key in [
                "container",
                "script",
                "dag",
                "steps",
                "suspend",
                "resource",
                "containerSet",
                "http",
                "data",
                "plugin",
            ] {
                if !o.contains_key(key) {
                    b.remove(key);
                }
            }
        }
        merge(&mut base, over);
        std::borrow::Cow::Owned(serde_json::from_value(base).unwrap_or_else(|_| template.clone()))
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_retry(
        &mut self,
        id: &str,
        name: &str,
        display: &str,
        template: &Template,
        template_name: &str,
        vars: &Vars,
        artifacts: &[(Artifact, Option<ArtifactInput>)],
        boundary: Option<&str>,
    ) {
        let strategy = template.retry_strategy.clone().unwrap_or_default();
        self.set_running(id);
        let children = self
            .nodes
            .get(id)
            .map(|n| n.children.clone())
            .unwrap_or_default();
        let attempt = children.len() as u32;
        if let Some(last) = children.last().and_then(|c| self.nodes.get(c)).cloned() {
            if !last.phase.is_done() {
                let mut attempt_vars = vars.clone();
                attempt_vars.insert("retries", Value::String(last.attempt.to_string()));
                let mut t = template.clone();
                t.retry_strategy = None;
                self.execute_kind(
                    &last.id,
                    &last.name,
                    &t,
                    template_name,
                    &attempt_vars,
                    artifacts,
                    Some(id).or(boundary),
                    last.attempt,
                );
                if !self.nodes.get(&last.id).is_some_and(|n| n.phase.is_done()) {
                    return;
                }
            }
            let last = self.nodes.get(&last.id).cloned().unwrap_or(last);
            if last.phase == Phase::Succeeded {
                let outputs = last.outputs.clone();
                if let Some(n) = self.nodes.get_mut(id) {
                    n.outputs = outputs;
                }
                self.finish(id, Phase::Succeeded, "");
                return;
            }
            // Failed or Error: retry?
            let limit = strategy.limit.as_ref().and_then(|l| match l {
                IntOrString::Int(i) => Some(*i),
                IntOrString::String(s) => expr::substitute(s, vars, Unresolved::Leave)
                    .ok()?
                    .trim()
                    .parse()
                    .ok(),
            });
            let policy = strategy.retry_policy.as_deref().unwrap_or("OnFailure");
            let policy_allows = match policy {
                "Always" => true,
                "OnError" | "OnTransientError" => last.phase == Phase::Error,
                _ => last.phase == Phase::Failed,
            };
            let within_limit = limit.is_none_or(|l| i64::from(attempt) <= l);
            let mut allowed = policy_allows && within_limit && self.shutdown.is_none();
            if allowed && let Some(expression) = strategy.expression.as_deref() {
                let mut ev = vars.clone();
                ev.insert(
                    "lastRetry.exitCode",
                    Value::String(
                        last.outputs
                            .exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "-1".into()),
                    ),
                );
                ev.insert(
                    "lastRetry.status",
                    Value::String(last.phase.as_str().to_string()),
                );
                ev.insert("lastRetry.message", Value::String(last.message.clone()));
                let duration = match (
                    last.started_at.as_deref().and_then(parse_ts),
                    last.finished_at.as_deref().and_then(parse_ts),
                ) {
                    (Some(s), Some(f)) => (f - s).num_seconds().to_string(),
                    _ => "0".into(),
                };
                ev.insert("lastRetry.duration", Value::String(duration));
                let text = expr::substitute(expression, &ev, Unresolved::Leave)
                    .unwrap_or_else(|_| expression.to_string());
                allowed = matches!(expr::evaluate(&text, &ev), Ok(Value::Bool(true)));
            }
            if !allowed {
                let message = if within_limit && policy_allows {
                    last.message.clone()
                } else {
                    "No more retries left".to_string()
                };
                let outputs = last.outputs.clone();
                if let Some(n) = self.nodes.get_mut(id) {
                    n.outputs = outputs;
                }
                self.finish(id, last.phase, message);
                return;
            }
            // Backoff before the next attempt.
            if let Some(backoff) = &strategy.backoff {
                let base = backoff
                    .duration
                    .as_deref()
                    .and_then(|d| cox_config::duration::parse(d).ok())
                    .unwrap_or_default();
                let factor = backoff
                    .factor
                    .as_ref()
                    .and_then(IntOrString::as_i64)
                    .unwrap_or(1)
                    .max(1) as f64;
                let mut wait = base.as_secs_f64() * factor.powi(attempt.saturating_sub(1) as i32);
                if let Some(cap) = backoff
                    .cap
                    .as_deref()
                    .and_then(|d| cox_config::duration::parse(d).ok())
                {
                    wait = wait.min(cap.as_secs_f64());
                }
                if let Some(max) = backoff
                    .max_duration
                    .as_deref()
                    .and_then(|d| cox_config::duration::parse(d).ok())
                {
                    let first = children
                        .first()
                        .and_then(|c| self.nodes.get(c))
                        .and_then(|n| n.started_at.as_deref())
                        .and_then(parse_ts);
                    if first.is_some_and(|f| (self.now - f).to_std().unwrap_or_default() >= max) {
                        let outputs = last.outputs.clone();
                        if let Some(n) = self.nodes.get_mut(id) {
                            n.outputs = outputs;
                        }
                        self.finish(id, last.phase, "Max duration limit exceeded");
                        return;
                    }
                }
                let ready = last
                    .finished_at
                    .as_deref()
                    .and_then(parse_ts)
                    .unwrap_or(self.now)
                    + chrono::Duration::milliseconds((wait * 1000.0) as i64);
                if ready > self.now {
                    if let Some(n) = self.nodes.get_mut(id) {
                        n.message = format!("Backoff for {}", humantime(wait));
                    }
                    self.wake_at(ready);
                    return;
                }
            }
        } else if self.shutdown.is_some() {
            let message = self.shutdown.clone().unwrap_or_default();
            self.finish(id, Phase::Failed, message);
            return;
        }
        // Start attempt number `attempt`.
        let child_name = format!("{name}({attempt})");
        let child_display = format!("{display}({attempt})");
        let child_type = match template.kind() {
            Some(TemplateKind::Steps) => NodeType::Steps,
            Some(TemplateKind::Dag) => NodeType::Dag,
            _ => NodeType::Pod,
        };
        let child = self.ensure_node(
            &child_name,
            &child_display,
            child_type,
            Some(template_name),
            Some(id).or(boundary),
            Some(id),
        );
        let inputs = self
            .nodes
            .get(id)
            .map(|n| n.inputs.clone())
            .unwrap_or_default();
        if let Some(n) = self.nodes.get_mut(&child) {
            n.attempt = attempt;
            n.inputs = inputs;
        }
        if let Some(n) = self.nodes.get_mut(id) {
            n.message.clear();
        }
        let mut attempt_vars = vars.clone();
        attempt_vars.insert("retries", Value::String(attempt.to_string()));
        let mut t = template.clone();
        t.retry_strategy = None;
        self.execute_kind(
            &child,
            &child_name,
            &t,
            template_name,
            &attempt_vars,
            artifacts,
            boundary,
            attempt,
        );
        // An attempt that ended at once (an error before launch) is looked at next pass.
        if self.nodes.get(&child).is_some_and(|n| n.phase.is_done()) {
            self.execute_retry(
                id,
                name,
                display,
                template,
                template_name,
                vars,
                artifacts,
                boundary,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn execute_kind(
        &mut self,
        id: &str,
        name: &str,
        template: &Template,
        template_name: &str,
        vars: &Vars,
        artifacts: &[(Artifact, Option<ArtifactInput>)],
        boundary: Option<&str>,
        attempt: u32,
    ) {
        match template.kind() {
            Some(TemplateKind::Container | TemplateKind::Script) => {
                self.execute_pod(id, template, vars, artifacts, attempt)
            }
            Some(TemplateKind::Steps) => {
                self.execute_steps(id, name, template, vars, &resolved_inputs(artifacts))
            }
            Some(TemplateKind::Dag) => {
                self.execute_dag(id, name, template, vars, &resolved_inputs(artifacts))
            }
            Some(TemplateKind::Suspend) => self.execute_suspend(id, template, vars),
            Some(TemplateKind::ContainerSet) => {
                self.execute_container_set(id, name, template, vars, artifacts, attempt)
            }
            Some(other) => {
                self.finish(
                    id,
                    Phase::Error,
                    format!(
                        "{} templates are not supported by the local engine yet",
                        other.as_str()
                    ),
                );
            }
            None => self.finish(
                id,
                Phase::Error,
                format!("template '{template_name}' has no single template type"),
            ),
        }
        let _ = boundary;
        if self.nodes.get(id).is_some_and(|n| n.phase.is_done()) {
            self.publish_globals(id, template);
        }
    }

    fn execute_suspend(&mut self, id: &str, template: &Template, vars: &Vars) {
        self.set_running(id);
        let duration = template.suspend.as_ref().and_then(|s| s.duration.clone());
        let Some(duration) = duration else { return };
        let duration = expr::substitute(&duration, vars, Unresolved::Leave).unwrap_or(duration);
        let Ok(d) = cox_config::duration::parse(&duration) else {
            self.finish(
                id,
                Phase::Error,
                format!("invalid suspend duration '{duration}'"),
            );
            return;
        };
        let started = self
            .nodes
            .get(id)
            .and_then(|n| n.started_at.as_deref())
            .and_then(parse_ts)
            .unwrap_or(self.now);
        let until = started + chrono::Duration::from_std(d).unwrap_or_default();
        if self.now >= until {
            self.finish(id, Phase::Succeeded, "");
        } else {
            if let Some(n) = self.nodes.get_mut(id) {
                n.resume_at = Some(ts(until));
            }
            self.wake_at(until);
        }
    }

    fn execute_pod(
        &mut self,
        id: &str,
        template: &Template,
        vars: &Vars,
        artifacts: &[(Artifact, Option<ArtifactInput>)],
        attempt: u32,
    ) {
        let node = self.nodes.get(id).cloned();
        let Some(node) = node else { return };
        // A suspended workflow starts nothing new; what runs finishes.
        if node.launched || self.wf.spec.suspend == Some(true) {
            return;
        }
        if self
            .parallelism
            .is_some_and(|limit| self.running_pods >= limit)
        {
            return;
        }
        // Template-level synchronization: the node stays Pending until admitted.
        if let Some(sync) = &template.synchronization
            && !self.locks_granted.contains(id)
        {
            let namespace = self
                .wf
                .metadata
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| crate::resolve::DEFAULT_NAMESPACE.to_string());
            let locks = super::locks::locks_of(sync, vars, &namespace);
            if !locks.is_empty() {
                if self.locks_requested.insert(id.to_string()) {
                    self.actions.push(Action::Acquire {
                        node_id: id.to_string(),
                        locks,
                        priority: self.wf.spec.priority.unwrap_or(0),
                    });
                }
                return;
            }
        }
        self.locks_granted.remove(id);
        let mut vars = vars.clone();
        vars.insert("pod.name", Value::String(id.to_string()));
        vars.insert("node.name", Value::String(node.name.clone()));
        // Substitute the whole template once, then read what the step needs.
        let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("outputs");
        }
        if let Err(e) = substitute_value(&mut value, &vars, Unresolved::Leave) {
            self.finish(id, Phase::Error, e);
            return;
        }
        let resolved: Template = match serde_json::from_value(value) {
            Ok(t) => t,
            Err(e) => {
                self.finish(id, Phase::Error, format!("cannot resolve template: {e}"));
                return;
            }
        };
        let (image, command, args, env, working_dir, mounts, script) =
            if let Some(c) = &resolved.container {
                (
                    c.image.clone(),
                    c.command.clone(),
                    c.args.clone(),
                    c.env.clone(),
                    c.working_dir.clone(),
                    c.volume_mounts.clone(),
                    None,
                )
            } else if let Some(s) = &resolved.script {
                (
                    s.image.clone(),
                    s.command.clone(),
                    s.args.clone(),
                    s.env.clone(),
                    s.working_dir.clone(),
                    s.volume_mounts.clone(),
                    Some(s.source.clone()),
                )
            } else {
                self.finish(id, Phase::Error, "not a container or script template");
                return;
            };
        let mut volumes = Vec::new();
        for m in &mounts {
            let volume = self
                .wf
                .spec
                .volumes
                .iter()
                .chain(template.volumes.iter())
                .find(|v| v.get("name").and_then(Value::as_str) == Some(m.name.as_str()));
            let host = match volume {
                Some(v) if v.get("hostPath").is_some() => {
                    let path = v["hostPath"]["path"].as_str().unwrap_or("");
                    expr::substitute(path, &vars, Unresolved::Leave)
                        .unwrap_or_else(|_| path.to_string())
                        .into()
                }
                Some(v) if v.get("emptyDir").is_some() => {
                    // A container of a set shares the set's emptyDir volumes.
                    let owner = match node.node_type {
                        NodeType::Container => {
                            node.boundary_id.clone().unwrap_or_else(|| id.to_string())
                        }
                        _ => id.to_string(),
                    };
                    format!("steps/{owner}-{attempt}/volumes/{}", m.name).into()
                }
                _ => format!("volumes/{}", m.name).into(),
            };
            volumes.push(VolumeMount {
                host,
                target: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false),
            });
        }
        let mut input_artifacts = Vec::new();
        for (a, source) in artifacts {
            let Some(path) = a.path.clone() else { continue };
            let (source, sub_path) = match source {
                Some(ArtifactInput::Sub(inner, sub)) => (Some(&**inner), Some(sub.clone())),
                other => (other.as_ref(), a.sub_path.clone()),
            };
            let store = match source {
                Some(ArtifactInput::Key(_, store)) => store.clone(),
                // Where its producer saved it: its own bucket, else the run's repository.
                Some(ArtifactInput::Stored(r)) => r.store.clone(),
                Some(ArtifactInput::Sub(inner, _)) => match &**inner {
                    ArtifactInput::Stored(r) => r.store.clone(),
                    _ => None,
                },
                Some(ArtifactInput::Invalid(e)) => {
                    self.finish(id, Phase::Error, e.clone());
                    return;
                }
                _ => None,
            };
            let source = match source {
                Some(ArtifactInput::Raw(data)) => ArtifactSource::Raw(
                    expr::substitute(data, &vars, Unresolved::Leave)
                        .unwrap_or_else(|_| data.clone()),
                ),
                Some(ArtifactInput::Http(url)) => ArtifactSource::Http(url.clone()),
                Some(ArtifactInput::Key(key, _)) => ArtifactSource::Key(key.clone()),
                Some(ArtifactInput::Invalid(_)) => ArtifactSource::Absent,
                Some(ArtifactInput::Stored(r)) => ArtifactSource::Stored {
                    key: r.key.clone(),
                    archive: archive_from_name(&r.archive),
                    size: Some(r.size),
                    sha256: Some(r.sha256.clone()),
                },
                // Nested subPaths: the innermost artifact, the outer path.
                Some(ArtifactInput::Sub(inner, _)) => match &**inner {
                    ArtifactInput::Stored(r) => ArtifactSource::Key(r.key.clone()),
                    _ => ArtifactSource::Absent,
                },
                None => ArtifactSource::Absent,
            };
            input_artifacts.push(InputArtifact {
                name: a.name.clone(),
                path,
                source,
                mode: a.mode.map(|m| m as u32),
                sub_path,
                optional: a.optional == Some(true),
                store,
            });
        }
        let outputs = template.outputs.clone().unwrap_or_default();
        let mut output_parameters = Vec::new();
        for p in &outputs.parameters {
            if let Some(vf) = &p.value_from
                && let Some(path) = &vf.path
            {
                let path = expr::substitute(path, &vars, Unresolved::Leave)
                    .unwrap_or_else(|_| path.clone());
                output_parameters.push(OutputParameter {
                    name: p.name.clone(),
                    path,
                    default: vf.default.as_ref().map(|d| d.as_str().to_string()),
                });
            }
        }
        let mut output_artifacts = Vec::new();
        for a in &outputs.artifacts {
            let Some(path) = a.path.clone() else { continue };
            let path = expr::substitute(&path, &vars, Unresolved::Leave).unwrap_or(path);
            let archive = archive_kind(a);
            let suffix = match archive {
                ArchiveKind::TarGz => ".tgz",
                ArchiveKind::Zip => ".zip",
                ArchiveKind::None => "",
            };
            // An explicit `s3:` key names the object (Argo's key-only artifacts).
            let key = match a.s3.as_ref().and_then(|s3| s3.key.as_deref()) {
                Some(k) => {
                    expr::substitute(k, &vars, Unresolved::Leave).unwrap_or_else(|_| k.to_string())
                }
                None => format!("{}/{}/{}{}", self.run, id, a.name, suffix),
            };
            let store = match a.s3.as_ref().map(|s3| artifact_store(s3, &vars)) {
                Some(Ok(store)) => store,
                Some(Err(e)) => {
                    self.finish(id, Phase::Error, format!("artifact {:?}: {e}", a.name));
                    return;
                }
                None => None,
            };
            output_artifacts.push(OutputArtifact {
                name: a.name.clone(),
                path,
                key,
                archive,
                optional: a.optional == Some(true),
                store,
            });
        }
        let deadline = resolved
            .active_deadline_seconds
            .as_ref()
            .and_then(IntOrString::as_i64)
            .map(|s| s.max(0) as u64)
            .or_else(|| {
                resolved
                    .timeout
                    .as_deref()
                    .and_then(|t| cox_config::duration::parse(t).ok())
                    .map(|d| d.as_secs().max(1))
            });
        let spec = StepSpec {
            run: self.run.to_string(),
            node_id: id.to_string(),
            attempt,
            image: image.unwrap_or_default(),
            command,
            args,
            script,
            env: env
                .iter()
                .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
                .collect(),
            working_dir,
            input_artifacts,
            output_parameters,
            output_artifacts,
            volumes,
            deadline_seconds: deadline,
            capture_result: true,
            // Argo: the template's archiveLocation, else the workflow's spec.
            archive_logs: template
                .archive_location
                .as_ref()
                .and_then(|l| l.archive_logs)
                .or(self.wf.spec.archive_logs)
                .unwrap_or(false),
            memoize: None,
            repository: crate::resolve::run_repository(self.wf),
        };
        let spec = StepSpec {
            memoize: resolved.memoize.as_ref().map(|m| Memoize {
                namespace: self
                    .wf
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
                cache: m.cache.config_map.name.clone().unwrap_or_default(),
                // Coxswain's automatic key, when the template asks for it.
                key: if super::memo_key::wanted(&resolved, &self.wf.metadata.annotations) {
                    super::memo_key::key(
                        &m.key,
                        template,
                        &resolved,
                        &node.inputs,
                        &spec.input_artifacts,
                    )
                } else {
                    m.key.clone()
                },
                max_age_seconds: cox_config::duration::parse(&m.max_age)
                    .ok()
                    .map(|d| d.as_secs()),
            }),
            ..spec
        };
        if let Some(n) = self.nodes.get_mut(id) {
            n.memoization = spec.memoize.as_ref().map(|m| MemoizationStatus {
                hit: false,
                key: m.key.clone(),
                cache_name: m.cache.clone(),
            });
            n.launched = true;
            n.phase = Phase::Running;
            n.started_at = Some(ts(self.now));
        }
        self.running_pods += 1;
        self.actions.push(Action::Launch(Box::new(spec)));
    }

    /// A container set: each container is a child step, started once the containers it
    /// depends on succeeded; the set's outputs are those of the container named `main`.
    #[allow(clippy::too_many_arguments)]
    fn execute_container_set(
        &mut self,
        id: &str,
        name: &str,
        template: &Template,
        vars: &Vars,
        artifacts: &[(Artifact, Option<ArtifactInput>)],
        attempt: u32,
    ) {
        self.set_running(id);
        let Some(set) = &template.container_set else {
            return;
        };
        let (base_layer, on_volumes) = split_outputs(template.outputs.as_ref(), &set.volume_mounts);
        let mut all_done = true;
        let mut failure = None;
        for c in &set.containers {
            let child_name = format!("{name}.{}", c.name);
            let child = node_id(self.run, &child_name);
            if let Some(n) = self.nodes.get(&child)
                && n.phase.is_done()
            {
                if n.phase.is_failure() && failure.is_none() {
                    failure = Some(n.message.clone());
                }
                continue;
            }
            all_done = false;
            let deps: Vec<Phase> = c
                .dependencies
                .iter()
                .map(|d| {
                    self.nodes
                        .get(&node_id(self.run, &format!("{name}.{d}")))
                        .map_or(Phase::Pending, |n| n.phase)
                })
                .collect();
            if deps
                .iter()
                .any(|p| p.is_failure() || matches!(p, Phase::Omitted | Phase::Skipped))
            {
                let cid = self.ensure_node(
                    &child_name,
                    &c.name,
                    NodeType::Container,
                    None,
                    Some(id),
                    Some(id),
                );
                self.finish(
                    &cid,
                    Phase::Omitted,
                    "a container it depends on did not succeed",
                );
                continue;
            }
            if !deps.iter().all(|p| *p == Phase::Succeeded) {
                continue;
            }
            // The container as a template of its own, with the set's mounts and volumes.
            let mut value = serde_json::to_value(c).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.remove("dependencies");
            }
            let Ok(mut container) = serde_json::from_value::<cox_config::model::Container>(value)
            else {
                self.ended_node(
                    &child_name,
                    &c.name,
                    NodeType::Container,
                    None,
                    Some(id),
                    Some(id),
                    Phase::Error,
                    "container of the set could not be read",
                );
                continue;
            };
            container
                .volume_mounts
                .extend(set.volume_mounts.iter().cloned());
            let single = Template {
                name: template.name.clone(),
                container: Some(container),
                volumes: template.volumes.clone(),
                // Outputs on the set's volumes are collected once every container ended
                // (below); main collects those in its own filesystem, as in Argo (where
                // main must then be last to finish).
                outputs: if c.name == "main" {
                    base_layer
                        .clone()
                        .filter(|o| !o.parameters.is_empty() || !o.artifacts.is_empty())
                } else {
                    None
                },
                inputs: template.inputs.clone(),
                ..Template::default()
            };
            let cid = self.ensure_node(
                &child_name,
                &c.name,
                NodeType::Container,
                template.name.as_deref(),
                Some(id),
                Some(id),
            );
            self.execute_pod(&cid, &single, vars, artifacts, attempt);
        }
        if !all_done {
            return;
        }
        if let Some(main) = self
            .nodes
            .get(&node_id(self.run, &format!("{name}.main")))
            .map(|n| n.outputs.clone())
            && let Some(n) = self.nodes.get_mut(id)
        {
            n.outputs = main;
        }
        if let Some(m) = failure {
            self.finish(id, Phase::Failed, m);
            return;
        }
        // As Argo's wait container, outputs are read only once every container ended (a
        // container may still be writing them when `main` ends): a step of the set's own
        // node that runs `true` with the set's volumes and collects the outputs. Its
        // outcome ends the set.
        let Some(on_volumes) =
            on_volumes.filter(|o| !o.parameters.is_empty() || !o.artifacts.is_empty())
        else {
            self.finish(id, Phase::Succeeded, "");
            return;
        };
        let collect = Template {
            name: template.name.clone(),
            container: Some(cox_config::model::Container {
                image: set.containers.first().and_then(|c| c.image.clone()),
                command: vec!["true".to_string()],
                volume_mounts: set.volume_mounts.clone(),
                ..Default::default()
            }),
            volumes: template.volumes.clone(),
            outputs: Some(on_volumes),
            ..Template::default()
        };
        self.execute_pod(id, &collect, vars, &[], attempt);
    }

    /// Whether a steps template asked to stop starting children after a failure.
    fn fail_fast(&self, parent: &str) -> bool {
        let template = self
            .nodes
            .get(parent)
            .and_then(|n| n.template_name.as_deref())
            .and_then(|t| self.template(t));
        template.is_some_and(|t| t.fail_fast == Some(true))
    }

    /// Template-level parallelism: whether a steps or DAG node may start another child
    /// (Argo limits the children running at once, whatever runs inside them).
    fn has_slot(&self, parent: &str) -> bool {
        if self
            .parallelism
            .is_some_and(|limit| self.running_pods >= limit)
        {
            return false;
        }
        let limit = self
            .nodes
            .get(parent)
            .and_then(|n| n.template_name.as_deref())
            .and_then(|t| self.template(t))
            .and_then(|t| t.parallelism);
        limit.is_none_or(|limit| self.count_running_under(parent) < limit.max(0) as usize)
    }

    /// Running children (pods, or composite children that are running) directly under a node's
    /// groups, which is what Argo's template parallelism counts.
    /// The steps a steps template's steps and outputs name (`steps.NAME`), once per node.
    fn steps_mentions(&mut self, name: &str, template: &Template) -> std::sync::Arc<Mentions> {
        if let Some(m) = self.cache.steps.get(name) {
            return m.clone();
        }
        let text = serde_json::to_string(&(&template.steps, &template.outputs)).unwrap_or_default();
        let mentions = std::sync::Arc::new(Mentions::of("steps", &text));
        self.cache.steps.insert(name.to_string(), mentions.clone());
        mentions
    }

    /// The DAG node `name`'s plan, derived from its tasks on first use.
    fn dag_plan(&mut self, name: &str, tasks: &[DagTask]) -> std::sync::Arc<DagPlan> {
        if let Some(plan) = self.cache.dags.get(name) {
            return plan.clone();
        }
        let index_of: HashMap<String, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let depends: Vec<_> = tasks.iter().map(task_depends).collect();
        let deps = depends
            .iter()
            .map(|d| {
                d.as_ref()
                    .map(|d| {
                        d.tasks()
                            .iter()
                            .filter_map(|n| index_of.get(*n).copied())
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let plan = std::sync::Arc::new(DagPlan {
            ids: tasks
                .iter()
                .map(|t| node_id(self.run, &format!("{name}.{}", t.name)))
                .collect(),
            index_of,
            depends,
            deps,
            mentions: tasks
                .iter()
                .map(|t| Mentions::of("tasks", &serde_json::to_string(t).unwrap_or_default()))
                .collect(),
        });
        self.cache.dags.insert(name.to_string(), plan.clone());
        plan
    }

    fn count_running_under(&self, id: &str) -> usize {
        let Some(node) = self.nodes.get(id) else {
            return 0;
        };
        let mut count = 0;
        let mut stack: Vec<&str> = node.children.iter().map(String::as_str).collect();
        while let Some(c) = stack.pop() {
            let Some(child) = self.nodes.get(c) else {
                continue;
            };
            match child.node_type {
                NodeType::StepGroup | NodeType::TaskGroup | NodeType::Retry => {
                    stack.extend(child.children.iter().map(String::as_str))
                }
                _ => {
                    if child.phase == Phase::Running
                        || (child.node_type.is_step() && child.launched && !child.phase.is_done())
                    {
                        count += 1;
                    }
                }
            }
        }
        count
    }

    /// Variables that describe a finished (or running) step or task for its siblings.
    fn node_vars(&self, vars: &mut Vars, prefix: &str, id: &str, aggregate: bool) {
        let Some(node) = self.nodes.get(id) else {
            return;
        };
        vars.insert(format!("{prefix}.id"), Value::String(node.id.clone()));
        vars.insert(
            format!("{prefix}.status"),
            Value::String(node.phase.as_str().to_string()),
        );
        if let Some(s) = &node.started_at {
            vars.insert(format!("{prefix}.startedAt"), Value::String(s.clone()));
        }
        if let Some(s) = &node.finished_at {
            vars.insert(format!("{prefix}.finishedAt"), Value::String(s.clone()));
        }
        // A skipped node that has outputs is a pod reused by a memoized resubmit.
        if matches!(node.phase, Phase::Skipped | Phase::Omitted) && node.outputs.is_empty() {
            // Argo v4: a skipped producer's declared output defaults stand in for its outputs.
            let outputs = node
                .template_name
                .as_deref()
                .and_then(|t| self.template(t))
                .and_then(|t| t.outputs.as_ref());
            for p in outputs.map(|o| o.parameters.as_slice()).unwrap_or_default() {
                if let Some(d) = p.value_from.as_ref().and_then(|vf| vf.default.as_ref()) {
                    vars.insert(
                        format!("{prefix}.outputs.parameters.{}", p.name),
                        Value::String(d.as_str().to_string()),
                    );
                }
            }
            return;
        }
        if aggregate {
            // Loop parent: JSON lists of the children's outputs.
            let children: Vec<&Node> = node
                .children
                .iter()
                .filter_map(|c| self.nodes.get(c))
                .collect();
            let results: Vec<Value> = children
                .iter()
                .filter_map(|c| c.outputs.result.clone())
                .map(|r| serde_json::from_str(&r).unwrap_or(Value::String(r)))
                .collect();
            vars.insert(
                format!("{prefix}.outputs.result"),
                Value::String(serde_json::to_string(&results).unwrap_or_default()),
            );
            let params: Vec<Value> = children
                .iter()
                .filter(|c| !c.outputs.parameters.is_empty())
                .map(|c| {
                    Value::Object(
                        c.outputs
                            .parameters
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect();
            // And per name: `steps.X.outputs.parameters.p` is the list of each child's `p`.
            let mut names: Vec<&str> = Vec::new();
            for c in &children {
                for (k, _) in &c.outputs.parameters {
                    if !names.contains(&k.as_str()) {
                        names.push(k);
                    }
                }
            }
            for name in names {
                let values: Vec<Value> = children
                    .iter()
                    .filter_map(|c| c.outputs.parameter(name))
                    .map(|v| Value::String(v.to_string()))
                    .collect();
                vars.insert(
                    format!("{prefix}.outputs.parameters.{name}"),
                    Value::String(serde_json::to_string(&values).unwrap_or_default()),
                );
            }
            vars.insert(
                format!("{prefix}.outputs.parameters"),
                Value::String(serde_json::to_string(&params).unwrap_or_default()),
            );
            return;
        }
        let outputs = &node.outputs;
        if let Some(r) = &outputs.result {
            vars.insert(format!("{prefix}.outputs.result"), Value::String(r.clone()));
        }
        if let Some(c) = outputs.exit_code {
            vars.insert(format!("{prefix}.exitCode"), Value::String(c.to_string()));
        }
        for (k, v) in &outputs.parameters {
            vars.insert(
                format!("{prefix}.outputs.parameters.{k}"),
                Value::String(v.clone()),
            );
        }
        for a in &outputs.artifacts {
            vars.insert(
                format!("{prefix}.outputs.artifacts.{}", a.name),
                Value::String(format!("artifact:{}", a.key)),
            );
        }
    }

    /// Find an artifact named by a `from` reference such as `{{steps.gen.outputs.artifacts.out}}`.
    fn resolve_artifact_from(
        &self,
        from: &str,
        scope: &HashMap<String, String>,
    ) -> Option<ArtifactRef> {
        let inner = from
            .trim()
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .trim();
        if let Some(global) = inner.strip_prefix("workflow.outputs.artifacts.") {
            return self
                .global_artifacts
                .iter()
                .find(|a| a.name == global)
                .cloned();
        }
        let (prefix, artifact) = inner.rsplit_once(".outputs.artifacts.")?;
        let id = scope.get(prefix)?;
        let node = self.nodes.get(id)?;
        let found = node
            .outputs
            .artifacts
            .iter()
            .find(|a| a.name == artifact)
            .cloned();
        found.or_else(|| {
            // A retry or loop parent: look at its children.
            node.children
                .iter()
                .rev()
                .filter_map(|c| self.nodes.get(c))
                .find_map(|c| {
                    c.outputs
                        .artifacts
                        .iter()
                        .find(|a| a.name == artifact)
                        .cloned()
                })
        })
    }

    /// Resolve a call's arguments in a scope.
    fn call_for(
        &self,
        site: &CallSite<'_>,
        vars: &Vars,
        nodes_in_scope: &HashMap<String, String>,
        inputs_artifacts: &[(String, ArtifactInput)],
    ) -> Result<Call, String> {
        let template = match (site.template, site.inline, site.template_ref) {
            (_, _, Some(reference)) => {
                TemplateSource::Named(crate::resolve::stored_key(reference)?)
            }
            (Some(t), _, _) => {
                let t = expr::substitute(t, vars, Unresolved::Error).map_err(|e| e.to_string())?;
                // Called from a stored template: the name is one of its WorkflowTemplate's.
                TemplateSource::Named(match &self.scope {
                    Some(scope) => format!("{scope}/{t}"),
                    None => t,
                })
            }
            (None, Some(t), _) => TemplateSource::Inline(Box::new(t.clone())),
            _ => return Err("step has no template".into()),
        };
        let mut parameters = Vec::new();
        let mut artifacts = Vec::new();
        if let Some(args) = site.arguments {
            for p in &args.parameters {
                match self.argument_value(p, vars) {
                    Ok(value) => parameters.push((p.name.clone(), value)),
                    // Argo v4: a reference to an output a skipped or omitted producer never
                    // made leaves the argument out, so the input's own default applies.
                    Err(e) if self.names_skipped_output(p, nodes_in_scope) => {
                        let _ = e;
                    }
                    Err(e) => return Err(e),
                }
            }
            for a in &args.artifacts {
                let input = if let Some(from) = &a.from {
                    if let Some(name) = from
                        .trim()
                        .strip_prefix("{{inputs.artifacts.")
                        .and_then(|r| r.strip_suffix("}}"))
                    {
                        inputs_artifacts
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, v)| v.clone())
                    } else {
                        self.resolve_artifact_from(from, nodes_in_scope)
                            .map(ArtifactInput::Stored)
                    }
                } else {
                    ArtifactInput::from_location(a, vars)
                };
                let input = match (input, &a.sub_path) {
                    (Some(i), Some(sub)) => Some(ArtifactInput::Sub(
                        Box::new(i),
                        expr::substitute(sub, vars, Unresolved::Leave)
                            .unwrap_or_else(|_| sub.clone()),
                    )),
                    (i, _) => i,
                };
                match input {
                    Some(i) => artifacts.push((a.name.clone(), i)),
                    None if a.optional == Some(true) => {}
                    None => {
                        return Err(format!(
                            "unable to resolve input artifact '{}' from '{}'",
                            a.name,
                            a.from.clone().unwrap_or_default()
                        ));
                    }
                }
            }
        }
        Ok(Call {
            template,
            parameters,
            artifacts,
        })
    }

    /// Whether an argument reads an output of a node that was skipped or omitted.
    fn names_skipped_output(
        &self,
        p: &Parameter,
        nodes_in_scope: &HashMap<String, String>,
    ) -> bool {
        let text = p.value_str().unwrap_or_default();
        nodes_in_scope.iter().any(|(prefix, id)| {
            text.contains(&format!("{prefix}.outputs."))
                && self
                    .nodes
                    .get(id)
                    .is_some_and(|n| matches!(n.phase, Phase::Skipped | Phase::Omitted))
        })
    }

    fn argument_value(&self, p: &Parameter, vars: &Vars) -> Result<String, String> {
        if let Some(v) = p.value_str() {
            return expr::substitute(v, vars, Unresolved::Error).map_err(|e| e.to_string());
        }
        if let Some(vf) = &p.value_from {
            if let Some(e) = &vf.expression {
                let e = expr::substitute(e, vars, Unresolved::Leave).unwrap_or_else(|_| e.clone());
                return expr::evaluate(&e, vars)
                    .map(|v| render(&v))
                    .map_err(|e| e.to_string());
            }
            if let Some(d) = &vf.default {
                return Ok(d.as_str().to_string());
            }
        }
        Err(format!("arguments.parameters.{} has no value", p.name))
    }

    /// Expand loops: the items a step or task iterates over, if any.
    fn loop_items(
        &self,
        with_items: &[Value],
        with_param: Option<&str>,
        with_sequence: Option<&cox_config::model::Sequence>,
        vars: &Vars,
    ) -> Result<Option<Vec<Value>>, String> {
        if !with_items.is_empty() {
            let mut items = Vec::new();
            for item in with_items {
                let mut item = item.clone();
                substitute_value(&mut item, vars, Unresolved::Error)?;
                items.push(item);
            }
            return Ok(Some(items));
        }
        if let Some(param) = with_param {
            let text =
                expr::substitute(param, vars, Unresolved::Error).map_err(|e| e.to_string())?;
            let parsed: Value = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "withParam value could not be parsed as a JSON list: {}: {e}",
                    text.trim()
                )
            })?;
            return match parsed {
                Value::Array(items) => Ok(Some(items)),
                _ => Err(format!(
                    "withParam value could not be parsed as a JSON list: {}",
                    text.trim()
                )),
            };
        }
        if let Some(seq) = with_sequence {
            return sequence(seq, vars).map(Some);
        }
        Ok(None)
    }

    /// The value of a `when` condition after substitution.
    fn when_holds(&self, when: Option<&str>, vars: &Vars) -> Result<Option<String>, String> {
        let Some(when) = when else { return Ok(None) };
        let text = expr::substitute(when, vars, Unresolved::Error).map_err(|e| e.to_string())?;
        if expr::evaluate_when(&text).map_err(|e| e.to_string())? {
            Ok(None)
        } else {
            Ok(Some(format!("when '{text}' evaluated false")))
        }
    }

    fn execute_steps(
        &mut self,
        id: &str,
        name: &str,
        template: &Template,
        vars: &Vars,
        input_artifacts: &[(String, ArtifactInput)],
    ) {
        self.set_running(id);
        let mentioned = self.steps_mentions(name, template);
        let mut scope_vars = vars.clone();
        let mut scope_nodes: HashMap<String, String> = HashMap::new();
        for (i, group) in template.steps.iter().enumerate() {
            let group_name = format!("{name}[{i}]");
            let group_id = self.ensure_node(
                &group_name,
                &format!("[{i}]"),
                NodeType::StepGroup,
                None,
                Some(id),
                Some(id),
            );
            self.set_running(&group_id);
            let mut all_done = true;
            let mut failure: Option<String> = None;
            for step in group {
                let step_name_short = step.name.clone().unwrap_or_default();
                let step_name = format!("{group_name}.{step_name_short}");
                let mut step_id = node_id(self.run, &step_name);
                let has_hooks = step.on_exit.is_some() || step.hooks.contains_key("exit");
                // An ended step without exit hooks has nothing left to do: judged below
                // without copying the scope (a long run of groups would copy it per group).
                if has_hooks || !self.nodes.get(&step_id).is_some_and(|n| n.phase.is_done()) {
                    let mut step_vars = scope_vars.clone();
                    step_vars.insert("steps.name", Value::String(step_name_short.clone()));
                    let site = CallSite {
                        template: step.template.as_deref(),
                        inline: step.inline.as_deref(),
                        template_ref: step.template_ref.as_ref(),
                        arguments: step.arguments.as_ref(),
                    };
                    if !self.nodes.contains_key(&step_id) && !self.has_slot(id) {
                        all_done = false;
                        continue;
                    }
                    step_id = self.run_call(
                        &step_name,
                        &step_name_short,
                        &site,
                        step.when.as_deref(),
                        &step.with_items,
                        step.with_param.as_deref(),
                        step.with_sequence.as_ref(),
                        &step_vars,
                        &scope_nodes,
                        input_artifacts,
                        id,
                        &group_id,
                        NodeType::StepGroup,
                    );
                    self.run_exit_hook(
                        &step_id,
                        step.on_exit.as_deref(),
                        step.hooks.get("exit"),
                        &step_vars,
                        &scope_nodes,
                        id,
                    );
                }
                let Some(node) = self.nodes.get(&step_id) else {
                    continue;
                };
                let hook_pending = node
                    .exit_hook
                    .as_ref()
                    .is_some_and(|h| !self.nodes.get(h).is_some_and(|n| n.phase.is_done()));
                if !node.phase.is_done() || hook_pending {
                    all_done = false;
                } else if node.phase.is_failure() {
                    let continue_on = step.continue_on.as_ref();
                    let tolerated = (node.phase == Phase::Failed
                        && continue_on.and_then(|c| c.failed) == Some(true))
                        || (node.phase == Phase::Error
                            && continue_on.and_then(|c| c.error) == Some(true));
                    if !tolerated && failure.is_none() {
                        failure = Some(format!("child '{step_id}' failed"));
                    }
                }
            }
            if !all_done {
                return;
            }
            match failure {
                Some(message) => {
                    self.finish(&group_id, Phase::Failed, message.clone());
                    self.finish(id, Phase::Failed, message);
                    return;
                }
                None => self.finish(&group_id, Phase::Succeeded, ""),
            }
            // Later groups see this group's outputs, those the template names.
            for step in group {
                let short = step.name.clone().unwrap_or_default();
                if !mentioned.includes(&short) {
                    continue;
                }
                let step_id = node_id(self.run, &format!("{group_name}.{short}"));
                let aggregate = !step.with_items.is_empty()
                    || step.with_param.is_some()
                    || step.with_sequence.is_some();
                let prefix = format!("steps.{short}");
                self.node_vars(&mut scope_vars, &prefix, &step_id, aggregate);
                scope_nodes.insert(prefix, step_id);
            }
        }
        self.complete_composite(id, template, &scope_vars);
    }

    /// Run a step or task: `when`, loops, then the template. Returns the node id.
    #[allow(clippy::too_many_arguments)]
    fn run_call(
        &mut self,
        node_name: &str,
        display: &str,
        site: &CallSite<'_>,
        when: Option<&str>,
        with_items: &[Value],
        with_param: Option<&str>,
        with_sequence: Option<&cox_config::model::Sequence>,
        vars: &Vars,
        scope_nodes: &HashMap<String, String>,
        input_artifacts: &[(String, ArtifactInput)],
        boundary: &str,
        parent: &str,
        parent_type: NodeType,
    ) -> String {
        let id = node_id(self.run, node_name);
        if self.nodes.get(&id).is_some_and(|n| n.phase.is_done()) {
            return id;
        }
        let looped = !with_items.is_empty() || with_param.is_some() || with_sequence.is_some();
        // A loop's `when` is judged for each item (it may read `item`).
        if !looped && !self.nodes.contains_key(&id) {
            match self.when_holds(when, vars) {
                Ok(Some(skip)) => {
                    let sid = self.ended_node(
                        node_name,
                        display,
                        NodeType::Skipped,
                        site.template,
                        Some(boundary),
                        Some(parent),
                        Phase::Skipped,
                        skip,
                    );
                    return sid;
                }
                Ok(None) => {}
                Err(e) => {
                    let sid = self.ended_node(
                        node_name,
                        display,
                        NodeType::Skipped,
                        site.template,
                        Some(boundary),
                        Some(parent),
                        Phase::Error,
                        e,
                    );
                    return sid;
                }
            }
        }
        if !looped {
            return match self.call_for(site, vars, scope_nodes, input_artifacts) {
                Ok(call) => self.execute(
                    node_name,
                    display,
                    &call,
                    Some(boundary),
                    Some(parent),
                    vars,
                ),
                Err(e) => self.ended_node(
                    node_name,
                    display,
                    NodeType::Pod,
                    site.template,
                    Some(boundary),
                    Some(parent),
                    Phase::Error,
                    e,
                ),
            };
        }
        // A loop: in steps the children hang under the group; in a DAG under a TaskGroup node.
        let items = match self.loop_items(with_items, with_param, with_sequence, vars) {
            Ok(items) => items.unwrap_or_default(),
            Err(e) => {
                let sid = self.ended_node(
                    node_name,
                    display,
                    NodeType::Skipped,
                    site.template,
                    Some(boundary),
                    Some(parent),
                    Phase::Error,
                    e,
                );
                return sid;
            }
        };
        let group_type = if parent_type == NodeType::StepGroup {
            NodeType::StepGroup
        } else {
            NodeType::TaskGroup
        };
        let loop_id = self.ensure_node(
            node_name,
            display,
            group_type,
            site.template,
            Some(boundary),
            Some(parent),
        );
        self.set_running(&loop_id);
        let mut all_done = true;
        let mut failed = None;

        // Children are created in item order, so the first ones are the loop node's children:
        // finished ones are counted without rebuilding their names (checked by their index:
        // a retry or a memoized resubmit removes the items that run again).
        let created: Vec<String> = self
            .nodes
            .get(&loop_id)
            .map(|n| n.children.clone())
            .unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            if let Some(done) = created.get(i).and_then(|c| self.nodes.get(c)).filter(|n| {
                n.phase.is_done()
                    && n.name
                        .strip_prefix(node_name)
                        .is_some_and(|rest| rest.starts_with(&format!("({i}:")))
            }) {
                if done.phase.is_failure() && failed.is_none() {
                    failed = Some(format!("child '{}' failed", done.id));
                }
                continue;
            }
            let child_name = format!("{node_name}({i}:{})", item_label(item));
            let child_display = format!("{display}({i}:{})", item_label(item));
            let child_id = node_id(self.run, &child_name);
            if self.nodes.get(&child_id).is_some_and(|n| n.phase.is_done()) {
                if self.nodes[&child_id].phase.is_failure() && failed.is_none() {
                    failed = Some(format!("child '{child_id}' failed"));
                }
                continue;
            }
            if !self.nodes.contains_key(&child_id) {
                // failFast on the enclosing template: after a failure, start nothing new.
                if failed.is_some() && self.fail_fast(boundary) {
                    continue;
                }
                if !self.has_slot(boundary) {
                    all_done = false;
                    continue;
                }
            }
            let mut item_vars = vars.clone();
            add_item(&mut item_vars, item);
            if !self.nodes.contains_key(&child_id) {
                let skip = match self.when_holds(when, &item_vars) {
                    Ok(skip) => skip.map(|m| (Phase::Skipped, m)),
                    Err(e) => Some((Phase::Error, e)),
                };
                if let Some((phase, message)) = skip {
                    let sid = self.ended_node(
                        &child_name,
                        &child_display,
                        NodeType::Skipped,
                        site.template,
                        Some(boundary),
                        Some(&loop_id),
                        phase,
                        message,
                    );
                    if phase == Phase::Error && failed.is_none() {
                        failed = Some(format!("child '{sid}' failed"));
                    }
                    continue;
                }
            }
            let child = match self.call_for(site, &item_vars, scope_nodes, input_artifacts) {
                Ok(call) => self.execute(
                    &child_name,
                    &child_display,
                    &call,
                    Some(boundary),
                    Some(&loop_id),
                    &item_vars,
                ),
                Err(e) => self.ended_node(
                    &child_name,
                    &child_display,
                    NodeType::Pod,
                    site.template,
                    Some(boundary),
                    Some(&loop_id),
                    Phase::Error,
                    e,
                ),
            };
            match self.nodes.get(&child).map(|n| n.phase) {
                Some(p) if p.is_done() => {
                    if p.is_failure() && failed.is_none() {
                        failed = Some(format!("child '{child}' failed"));
                    }
                }
                _ => all_done = false,
            }
        }
        if all_done {
            match failed {
                Some(m) => self.finish(&loop_id, Phase::Failed, m),
                None => self.finish(&loop_id, Phase::Succeeded, ""),
            }
        }
        loop_id
    }

    /// Step- or task-level `onExit` / `hooks.exit`, run once the node has ended.
    fn run_exit_hook(
        &mut self,
        id: &str,
        on_exit: Option<&str>,
        hook: Option<&cox_config::model::LifecycleHook>,
        vars: &Vars,
        scope_nodes: &HashMap<String, String>,
        boundary: &str,
    ) {
        let Some(node) = self.nodes.get(id).cloned() else {
            return;
        };
        if !node.phase.is_done() || node.phase == Phase::Skipped {
            return;
        }
        let (template, arguments) = match (hook, on_exit) {
            (Some(h), _) => (h.template.as_deref(), h.arguments.as_ref()),
            (None, Some(t)) => (Some(t), None),
            (None, None) => return,
        };
        let Some(template) = template else { return };
        let hook_name = format!("{}.onExit", node.name);
        let mut hook_vars = vars.clone();
        let short = node.display_name.clone();
        let mut scope = scope_nodes.clone();
        for prefix in [format!("steps.{short}"), format!("tasks.{short}")] {
            self.node_vars(&mut hook_vars, &prefix, id, false);
            scope.insert(prefix, id.to_string());
        }
        let site = CallSite {
            template: Some(template),
            inline: None,
            template_ref: None,
            arguments,
        };
        let hook_id = match self.call_for(&site, &hook_vars, &scope, &[]) {
            Ok(call) => self.execute(
                &hook_name,
                &format!("{short}.onExit"),
                &call,
                Some(boundary),
                Some(id),
                &hook_vars,
            ),
            Err(e) => self.ended_node(
                &hook_name,
                &format!("{short}.onExit"),
                NodeType::Pod,
                Some(template),
                Some(boundary),
                Some(id),
                Phase::Error,
                e,
            ),
        };
        if let Some(n) = self.nodes.get_mut(id) {
            n.exit_hook = Some(hook_id);
        }
    }

    fn execute_dag(
        &mut self,
        id: &str,
        name: &str,
        template: &Template,
        vars: &Vars,
        input_artifacts: &[(String, ArtifactInput)],
    ) {
        self.set_running(id);
        let Some(dag) = &template.dag else { return };
        let fail_fast = dag.fail_fast.unwrap_or(true);
        let tasks: &Vec<DagTask> = &dag.tasks;
        let plan = self.dag_plan(name, tasks);
        let by_name = |t: &str| plan.index_of.get(t).map(|&i| &tasks[i]);
        // Targets: only these tasks and what they need.
        let targets: Option<HashSet<String>> = dag.target.as_deref().map(|t| {
            let t = expr::substitute(t, vars, Unresolved::Leave).unwrap_or_else(|_| t.to_string());
            let mut needed = HashSet::new();
            let mut stack: Vec<String> = t.split_whitespace().map(str::to_string).collect();
            while let Some(n) = stack.pop() {
                if needed.insert(n.clone())
                    && let Some(&i) = plan.index_of.get(n.as_str())
                    && let Ok(d) = &plan.depends[i]
                {
                    stack.extend(d.tasks().into_iter().map(str::to_string));
                }
            }
            needed
        });
        let ids = &plan.ids;
        let dep_index = &plan.deps;
        let task_node = |op: &Self, t: &str| match plan.index_of.get(t) {
            Some(&i) => ids[i].clone(),
            None => node_id(op.run, &format!("{name}.{t}")),
        };
        let mut scope_vars = vars.clone();
        let mut scope_nodes: HashMap<String, String> = HashMap::new();
        let mut progress = true;
        let mut any_unhandled_failure = false;
        // Keep going while tasks finish within this pass (skips, errors before launch).
        while progress {
            progress = false;
            let dag_limit = template.parallelism.map(|l| l.max(0) as usize);
            let mut running_children = if dag_limit.is_some() {
                self.count_running_under(id)
            } else {
                0
            };
            for (index, task) in tasks.iter().enumerate() {
                if targets.as_ref().is_some_and(|t| !t.contains(&task.name)) {
                    continue;
                }
                // Cheap first look: a task not started whose dependencies have not all ended
                // has nothing to do this pass (most tasks of a large DAG, most of the time).
                let started = self.nodes.get(&ids[index]).map(|n| n.phase);
                let has_hooks = task.on_exit.is_some() || task.hooks.contains_key("exit");
                if started.is_some_and(Phase::is_done) && !has_hooks {
                    continue;
                }
                // No free slot, nothing new can start (counted once per pass, not per task).
                if started.is_none()
                    && (self.parallelism.is_some_and(|l| self.running_pods >= l)
                        || dag_limit.is_some_and(|l| running_children >= l))
                {
                    continue;
                }
                if started.is_none()
                    && !dep_index[index]
                        .iter()
                        .all(|&d| self.nodes.get(&ids[d]).is_some_and(|n| n.phase.is_done()))
                {
                    continue;
                }
                let tid = task_node(self, &task.name);
                if self.nodes.get(&tid).is_some_and(|n| n.phase.is_done()) {
                    let hook_done = self.nodes[&tid].exit_hook.is_none()
                        && (task.on_exit.is_some() || task.hooks.contains_key("exit"));
                    if hook_done {
                        let mut hv = scope_vars.clone();
                        hv.insert("tasks.name", Value::String(task.name.clone()));
                        self.run_exit_hook(
                            &tid,
                            task.on_exit.as_deref(),
                            task.hooks.get("exit"),
                            &hv,
                            &scope_nodes,
                            id,
                        );
                    }
                    continue;
                }
                let deps = match plan.depends[index].clone() {
                    Ok(d) => d,
                    Err(e) => {
                        self.ended_node(
                            &format!("{name}.{}", task.name),
                            &task.name,
                            NodeType::Skipped,
                            task.template.as_deref(),
                            Some(id),
                            Some(id),
                            Phase::Error,
                            e,
                        );
                        continue;
                    }
                };
                let states: HashMap<String, depends::TaskState> = deps
                    .tasks()
                    .into_iter()
                    .map(|d| {
                        let did = task_node(self, d);
                        let node = self.nodes.get(&did);
                        let dep_task = by_name(d);
                        let state = depends::TaskState {
                            phase: node
                                .map(|n| phase_for_expr(n.phase))
                                .unwrap_or(depends::NodePhase::Pending),
                            daemoned: false,
                            children: node.filter(|n| n.node_type == NodeType::TaskGroup).map(
                                |n| {
                                    n.children
                                        .iter()
                                        .filter_map(|c| self.nodes.get(c))
                                        .map(|c| phase_for_expr(c.phase))
                                        .collect()
                                },
                            ),
                            continue_on_failed: dep_task
                                .and_then(|t| t.continue_on.as_ref())
                                .and_then(|c| c.failed)
                                == Some(true),
                            continue_on_error: dep_task
                                .and_then(|t| t.continue_on.as_ref())
                                .and_then(|c| c.error)
                                == Some(true),
                        };
                        (d.to_string(), state)
                    })
                    .collect();
                if !states.values().all(depends::TaskState::fulfilled) {
                    continue;
                }
                if self.shutdown.is_some() && !self.nodes.contains_key(&tid) {
                    continue;
                }
                let satisfied =
                    deps.evaluate(&|t: &str| states.get(t).cloned().unwrap_or_default());
                if !satisfied {
                    self.ended_node(
                        &format!("{name}.{}", task.name),
                        &task.name,
                        NodeType::Skipped,
                        task.template.as_deref(),
                        Some(id),
                        Some(id),
                        Phase::Omitted,
                        "omitted: depends condition not met",
                    );
                    progress = true;
                    continue;
                }
                // The outputs of its dependencies, and of theirs, in scope (Argo lets a task
                // refer to any task it depends on, directly or not).
                let mut ancestors: Vec<usize> = dep_index[index].clone();
                let mut seen: HashSet<usize> = ancestors.iter().copied().collect();
                let mut next = 0;
                while next < ancestors.len() {
                    for &a in &dep_index[ancestors[next]] {
                        if seen.insert(a) {
                            ancestors.push(a);
                        }
                    }
                    next += 1;
                }
                // Only those its own fields name: a long chain's last task would otherwise
                // copy the outputs of every task before it, at every event.
                let mentioned = &plan.mentions[index];
                for &a in ancestors
                    .iter()
                    .filter(|&&a| mentioned.includes(&tasks[a].name))
                {
                    let t = &tasks[a];
                    let aggregate = !t.with_items.is_empty()
                        || t.with_param.is_some()
                        || t.with_sequence.is_some();
                    let key = format!("tasks.{}", t.name);
                    self.node_vars(&mut scope_vars, &key, &ids[a], aggregate);
                    scope_nodes.insert(key, ids[a].clone());
                }
                let mut task_vars = scope_vars.clone();
                task_vars.insert("tasks.name", Value::String(task.name.clone()));
                let site = CallSite {
                    template: task.template.as_deref(),
                    inline: task.inline.as_deref(),
                    template_ref: task.template_ref.as_ref(),
                    arguments: task.arguments.as_ref(),
                };
                let before = self.nodes.contains_key(&tid);
                // Template-level failFast: once a task failed, no new task starts.
                if !before
                    && template.fail_fast == Some(true)
                    && self.dag_has_unhandled_failure(tasks, name)
                {
                    continue;
                }
                let tid = self.run_call(
                    &format!("{name}.{}", task.name),
                    &task.name,
                    &site,
                    task.when.as_deref(),
                    &task.with_items,
                    task.with_param.as_deref(),
                    task.with_sequence.as_ref(),
                    &task_vars,
                    &scope_nodes,
                    input_artifacts,
                    id,
                    id,
                    NodeType::TaskGroup,
                );
                if self.nodes.get(&tid).is_some_and(|n| n.phase.is_done()) {
                    self.run_exit_hook(
                        &tid,
                        task.on_exit.as_deref(),
                        task.hooks.get("exit"),
                        &task_vars,
                        &scope_nodes,
                        id,
                    );
                    progress = true;
                } else if !before {
                    // Started now: it holds one of this template's slots.
                    running_children += 1;
                }
            }
            // failFast: a failure stops new tasks.
            if fail_fast && self.shutdown.is_none() {
                let failed = tasks.iter().zip(ids).any(|(t, tid)| {
                    let n = self.nodes.get(tid);
                    n.is_some_and(|n| n.phase.is_failure())
                        && t.continue_on.as_ref().and_then(|c| c.failed) != Some(true)
                        && !self.failure_handled(tasks, &t.name, name)
                });
                if failed {
                    any_unhandled_failure = true;
                }
            }
        }
        // Done when every (target) task is done. (Each task's node id is `ids[i]`: no
        // per-task id is built again at every event.)
        let relevant: Vec<(&DagTask, &String)> = tasks
            .iter()
            .zip(ids)
            .filter(|(t, _)| targets.as_ref().is_none_or(|s| s.contains(&t.name)))
            .collect();
        // A task or a hook still running: nothing more to decide (looked at first, and
        // stopping at the first one, as it is the common case of a DAG in progress).
        let running = relevant.iter().any(|(_, tid)| {
            self.nodes.get(tid).is_some_and(|n| {
                !n.phase.is_done()
                    || n.exit_hook
                        .as_ref()
                        .is_some_and(|h| !self.nodes.get(h).is_some_and(|h| h.phase.is_done()))
            })
        });
        if running {
            return;
        }
        let pending: Vec<&DagTask> = relevant
            .iter()
            .filter(|(_, tid)| !self.nodes.get(tid).is_some_and(|n| n.phase.is_done()))
            .map(|(t, _)| *t)
            .collect();
        if !pending.is_empty() && !any_unhandled_failure {
            // Tasks wait on something that will never come; mark them omitted.
            for t in &pending {
                self.ended_node(
                    &format!("{name}.{}", t.name),
                    &t.name,
                    NodeType::Skipped,
                    t.template.as_deref(),
                    Some(id),
                    Some(id),
                    Phase::Omitted,
                    "omitted: depends condition not met",
                );
            }
        }
        // Phase: any failed task whose failure no dependent handled fails the DAG.
        let mut failure = None;
        for (t, tid) in &relevant {
            let Some(n) = self.nodes.get(tid) else {
                continue;
            };
            if n.phase.is_failure()
                && t.continue_on.as_ref().and_then(|c| {
                    if n.phase == Phase::Failed {
                        c.failed
                    } else {
                        c.error
                    }
                }) != Some(true)
                && !self.failure_handled(tasks, &t.name, name)
            {
                failure = Some(format!("child '{tid}' failed"));
                break;
            }
        }
        for t in tasks {
            let tid = task_node(self, &t.name);
            let aggregate =
                !t.with_items.is_empty() || t.with_param.is_some() || t.with_sequence.is_some();
            self.node_vars(
                &mut scope_vars,
                &format!("tasks.{}", t.name),
                &tid,
                aggregate,
            );
            scope_nodes.insert(format!("tasks.{}", t.name), tid);
        }
        if failure.is_some() && template.fail_fast == Some(true) && !pending.is_empty() {
            failure =
                Some("template has failed or errored children and failFast enabled".to_string());
        }
        match failure {
            Some(m) => self.finish(id, Phase::Failed, m),
            None => self.complete_composite(id, template, &scope_vars),
        }
    }

    /// Whether some task of this DAG failed and nothing handles the failure.
    fn dag_has_unhandled_failure(&self, tasks: &[DagTask], dag_name: &str) -> bool {
        tasks.iter().any(|t| {
            let node = self
                .nodes
                .get(&node_id(self.run, &format!("{dag_name}.{}", t.name)));
            node.is_some_and(|n| n.phase.is_failure())
                && t.continue_on.as_ref().and_then(|c| c.failed) != Some(true)
                && !self.failure_handled(tasks, &t.name, dag_name)
        })
    }

    /// A failed task is handled when a task depending on it ran anyway (its depends held).
    fn failure_handled(&self, tasks: &[DagTask], failed: &str, dag_name: &str) -> bool {
        tasks.iter().any(|t| {
            let names_it = match &t.depends {
                Some(d) => depends::parse(d)
                    .map(|d| d.tasks().contains(&failed))
                    .unwrap_or(false),
                None => t.dependencies.iter().any(|d| d == failed),
            };
            names_it
                && self
                    .nodes
                    .get(&node_id(self.run, &format!("{dag_name}.{}", t.name)))
                    .is_some_and(|n| n.phase != Phase::Omitted)
        })
    }

    /// Variables for an expression: outputs a skipped or omitted producer declared but never
    /// made are `nil`, so `??` can fall back (Argo v4).
    fn expression_vars(&self, scope: &Vars) -> Vars {
        let mut vars = scope.clone();
        for (key, id) in scope.iter() {
            let Some(prefix) = key.strip_suffix(".id") else {
                continue;
            };
            let Some(node) = id.as_str().and_then(|id| self.nodes.get(id)) else {
                continue;
            };
            if !matches!(node.phase, Phase::Skipped | Phase::Omitted) {
                continue;
            }
            let outputs = node
                .template_name
                .as_deref()
                .and_then(|t| self.template(t))
                .and_then(|t| t.outputs.as_ref());
            for p in outputs.map(|o| o.parameters.as_slice()).unwrap_or_default() {
                let name = format!("{prefix}.outputs.parameters.{}", p.name);
                if vars.get(&name).is_none() {
                    vars.insert(name, Value::Null);
                }
            }
            for a in outputs.map(|o| o.artifacts.as_slice()).unwrap_or_default() {
                let name = format!("{prefix}.outputs.artifacts.{}", a.name);
                if vars.get(&name).is_none() {
                    vars.insert(name, Value::Null);
                }
            }
        }
        vars
    }

    /// A steps or DAG template ended well: compute its outputs.
    fn complete_composite(&mut self, id: &str, template: &Template, scope: &Vars) {
        let outputs = template.outputs.clone().unwrap_or_default();
        let mut parameters = Vec::new();
        let mut artifacts = Vec::new();
        for p in &outputs.parameters {
            let value = if let Some(vf) = &p.value_from {
                if let Some(param) = &vf.parameter {
                    expr::substitute(param, scope, Unresolved::Error).map_err(|e| e.to_string())
                } else if let Some(e) = &vf.expression {
                    let e =
                        expr::substitute(e, scope, Unresolved::Leave).unwrap_or_else(|_| e.clone());
                    expr::evaluate(&e, &self.expression_vars(scope))
                        .map(|v| render(&v))
                        .map_err(|e| e.to_string())
                } else {
                    Err("no parameter source".to_string())
                }
                .or_else(|e| vf.default.as_ref().map(|d| d.as_str().to_string()).ok_or(e))
            } else {
                p.value_str()
                    .map(|v| {
                        expr::substitute(v, scope, Unresolved::Leave)
                            .unwrap_or_else(|_| v.to_string())
                    })
                    .ok_or_else(|| "no value".to_string())
            };
            match value {
                Ok(v) => parameters.push((p.name.clone(), v)),
                Err(e) => {
                    self.finish(
                        id,
                        Phase::Error,
                        format!("unable to resolve outputs.parameters.{}: {e}", p.name),
                    );
                    return;
                }
            }
        }
        let scope_nodes: HashMap<String, String> = scope
            .iter()
            .filter_map(|(k, v)| {
                k.strip_suffix(".id")
                    .map(|p| (p.to_string(), v.as_str().unwrap_or_default().to_string()))
            })
            .collect();
        for a in &outputs.artifacts {
            if let Some(e) = &a.from_expression {
                match self.artifact_from_expression(e, scope, &scope_nodes) {
                    Ok(r) => artifacts.push(ArtifactRef {
                        name: a.name.clone(),
                        ..r
                    }),
                    Err(_) if a.optional == Some(true) => {}
                    Err(e) => {
                        self.finish(
                            id,
                            Phase::Error,
                            format!("unable to resolve outputs.artifacts.{}: {e}", a.name),
                        );
                        return;
                    }
                }
            } else if let Some(from) = &a.from {
                if let Some(r) = self.resolve_artifact_from(from, &scope_nodes) {
                    artifacts.push(ArtifactRef {
                        name: a.name.clone(),
                        ..r
                    });
                } else if a.optional != Some(true) {
                    self.finish(
                        id,
                        Phase::Error,
                        format!(
                            "unable to resolve outputs.artifacts.{} from '{from}'",
                            a.name
                        ),
                    );
                    return;
                }
            }
        }
        if let Some(n) = self.nodes.get_mut(id) {
            n.outputs.parameters = parameters;
            n.outputs.artifacts = artifacts;
        }
        self.finish(id, Phase::Succeeded, "");
    }

    /// Argo's `fromExpression`: an expression whose value is an artifact of a node in
    /// scope (`cond ? steps.a.outputs.artifacts.x : steps.b.outputs.artifacts.x`).
    fn artifact_from_expression(
        &self,
        e: &str,
        scope: &Vars,
        scope_nodes: &HashMap<String, String>,
    ) -> Result<ArtifactRef, String> {
        let e = expr::substitute(e, scope, Unresolved::Leave).unwrap_or_else(|_| e.to_string());
        let value = expr::evaluate(&e, &self.expression_vars(scope)).map_err(|e| e.to_string())?;
        let key = value
            .as_str()
            .and_then(|v| v.strip_prefix("artifact:"))
            .ok_or_else(|| format!("expression {e:?} did not give an artifact"))?;
        scope_nodes
            .values()
            .filter_map(|id| self.nodes.get(id))
            .flat_map(|n| n.outputs.artifacts.iter())
            .chain(self.global_artifacts.iter())
            .find(|a| a.key == key)
            .cloned()
            .ok_or_else(|| format!("no artifact with key {key:?} in scope"))
    }

    /// Publish `globalName` outputs of a finished node.
    fn publish_globals(&mut self, id: &str, template: &Template) {
        let Some(outputs) = &template.outputs else {
            return;
        };
        let Some(node) = self.nodes.get(id) else {
            return;
        };
        let mut found = Vec::new();
        for p in &outputs.parameters {
            if let Some(g) = &p.global_name
                && let Some(v) = node.outputs.parameter(&p.name)
            {
                found.push((g.clone(), v.to_string()));
            }
        }
        let mut found_artifacts = Vec::new();
        for a in &outputs.artifacts {
            if let Some(g) = &a.global_name
                && let Some(r) = node.outputs.artifacts.iter().find(|r| r.name == a.name)
            {
                found_artifacts.push(ArtifactRef {
                    name: g.clone(),
                    ..r.clone()
                });
            }
        }
        for (g, v) in found {
            self.globals.insert(
                format!("workflow.outputs.parameters.{g}"),
                Value::String(v.clone()),
            );
            self.global_parameters.retain(|(n, _)| n != &g);
            self.global_parameters.push((g, v));
        }
        for r in found_artifacts {
            self.globals.insert(
                format!("workflow.outputs.artifacts.{}", r.name),
                Value::String(format!("artifact:{}", r.key)),
            );
            self.global_artifacts.retain(|a| a.name != r.name);
            self.global_artifacts.push(r);
        }
    }
}

/// A container set's outputs: those in the containers' own filesystems (main collects
/// them), and those on the set's volumes (collected once every container ended).
fn split_outputs(
    outputs: Option<&cox_config::model::Outputs>,
    mounts: &[cox_config::model::k8s::VolumeMount],
) -> (
    Option<cox_config::model::Outputs>,
    Option<cox_config::model::Outputs>,
) {
    let Some(outputs) = outputs else {
        return (None, None);
    };
    let on_volume = |path: Option<&String>| {
        path.is_some_and(|p| {
            mounts
                .iter()
                .any(|m| std::path::Path::new(p).starts_with(&m.mount_path))
        })
    };
    let (mut base, mut vol) = (outputs.clone(), outputs.clone());
    base.parameters
        .retain(|p| !on_volume(p.value_from.as_ref().and_then(|v| v.path.as_ref())));
    vol.parameters
        .retain(|p| on_volume(p.value_from.as_ref().and_then(|v| v.path.as_ref())));
    base.artifacts.retain(|a| !on_volume(a.path.as_ref()));
    vol.artifacts.retain(|a| on_volume(a.path.as_ref()));
    (Some(base), Some(vol))
}

/// A task's parsed `depends` (or `dependencies`).
fn task_depends(t: &DagTask) -> Result<depends::Depends, String> {
    match &t.depends {
        Some(d) => depends::parse(d).map_err(|e| e.to_string()),
        None => Ok(depends::from_dependencies(&t.dependencies)),
    }
}

/// What a DAG's tasks need at every event, derived once per DAG node from its template.
#[derive(Debug)]
pub(crate) struct DagPlan {
    /// Each task's node id.
    ids: Vec<String>,
    /// Task name to index.
    index_of: HashMap<String, usize>,
    /// Each task's parsed `depends` (an error stays an error each time).
    depends: Vec<Result<depends::Depends, String>>,
    /// For each task, the indices of the tasks its `depends` names.
    deps: Vec<Vec<usize>>,
    /// The other tasks each task's own fields may refer to.
    mentions: Vec<Mentions>,
}

/// The tasks whose variables (`tasks.NAME....`) a task's own fields (arguments, `when`,
/// loops, hooks, an inline template) may use: the names after each `tasks.` in its text, or
/// every task when the text names them some other way (`tasks['a']`, an inline DAG). The
/// same for the steps (`steps.NAME....`) a steps template's steps and outputs may use.
#[derive(Debug)]
pub(crate) enum Mentions {
    All,
    Names(HashSet<String>),
}

impl Mentions {
    /// The names after `PREFIX.` in some text (`tasks`, `steps`), or all for any other use
    /// of the prefix.
    fn of(prefix: &str, text: &str) -> Mentions {
        let mut names = HashSet::new();
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            rest = &rest[at + prefix.len()..];
            let Some(after) = rest.strip_prefix('.') else {
                return Mentions::All;
            };
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(after.len());
            names.insert(after[..end].to_string());
            rest = &after[end..];
        }
        Mentions::Names(names)
    }

    fn includes(&self, name: &str) -> bool {
        match self {
            Mentions::All => true,
            Mentions::Names(names) => names.contains(name),
        }
    }
}

/// A template's input artifacts as its children may take them (`from: "{{inputs.artifacts.x}}"`).
fn resolved_inputs(
    artifacts: &[(Artifact, Option<ArtifactInput>)],
) -> Vec<(String, ArtifactInput)> {
    artifacts
        .iter()
        .filter_map(|(a, source)| source.clone().map(|s| (a.name.clone(), s)))
        .collect()
}

/// How an expression's value reads when substituted into text (Go's `%v` for scalars).
pub(crate) fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn humantime(seconds: f64) -> String {
    if seconds >= 60.0 {
        format!("{}m{}s", (seconds / 60.0) as u64, (seconds % 60.0) as u64)
    } else {
        format!("{}s", seconds.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::Mentions;

    fn names(m: &Mentions) -> Option<Vec<&str>> {
        match m {
            Mentions::All => None,
            Mentions::Names(n) => {
                let mut v: Vec<&str> = n.iter().map(String::as_str).collect();
                v.sort();
                Some(v)
            }
        }
    }

    #[test]
    fn mentions_are_the_names_after_the_prefix_or_all_for_any_other_use() {
        let text = r#"{"arguments":{"parameters":[{"value":"{{tasks.gen-1.outputs.result}} {{tasks.name}}"}]},"when":"{{tasks.b_2.status}} == Succeeded"}"#;
        assert_eq!(
            names(&Mentions::of("tasks", text)),
            Some(vec!["b_2", "gen-1", "name"])
        );
        assert_eq!(
            names(&Mentions::of("tasks", r#"{"name":"x"}"#)),
            Some(vec![])
        );
        // Indexing by expression, or an inline DAG's own `tasks`: any task may be meant.
        assert!(
            names(&Mentions::of(
                "tasks",
                r#"{"when":"{{=tasks['a'].outputs.result}}"}"#
            ))
            .is_none()
        );
        assert!(names(&Mentions::of("tasks", r#"{"inline":{"dag":{"tasks":[]}}}"#)).is_none());
        let steps = r#"[[{"name":"b","arguments":{"parameters":[{"value":"{{steps.a.outputs.parameters.p}}"}]}}]]"#;
        assert_eq!(names(&Mentions::of("steps", steps)), Some(vec!["a"]));
        assert!(Mentions::of("steps", steps).includes("a"));
        assert!(!Mentions::of("steps", steps).includes("b"));
    }
}
