//! Requests on a running workflow, as Argo's `suspend`, `resume` and `set` do them: planned
//! first against the state (read only, so a refused request changes nothing), then applied.
//!
//! - Suspend: `spec.suspend: true`; running steps finish, no new step starts.
//! - Resume without a node selector: `spec.suspend` is cleared and every active suspend node
//!   succeeds; with one, only the matching suspend nodes do. A suspend node's output
//!   parameters `valueFrom.supplied` must have a value by then (set, or `valueFrom.default`).
//! - Set: phase, message and supplied output parameters of the matching active suspend nodes.
//! - Stop: with a message or selector, the matching suspend nodes fail with it; a suspended
//!   workflow is resumed, so that its exit handlers can run.

use cox_config::model::Template;
use serde_json::Value;

use super::node::{Node, NodeType, Phase};
use super::operator::ts;
use super::run::Executable;
use chrono::{DateTime, Utc};

/// A parsed node field selector (`displayName=approve,phase!=Failed`): every requirement must
/// hold. Fields: `id`, `name`, `displayName`, `templateName`, `phase`, `type`,
/// `templateRef.name`, `templateRef.template`, `inputs.parameters.<NAME>.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFieldSelector(Vec<(String, bool, String)>);

/// The terms of a Kubernetes-style field selector (`a=b`, `a==b`, `a!=b`, comma separated):
/// each as (field, equal, value), trimmed, or the term that is none of those.
pub fn selector_terms(text: &str) -> impl Iterator<Item = Result<(&str, bool, &str), &str>> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(part);
            };
            Ok((field.trim(), equal, value.trim()))
        })
}

impl NodeFieldSelector {
    /// Parse `field=value`, `field==value`, `field!=value`, comma separated.
    pub fn parse(text: &str) -> Result<NodeFieldSelector, String> {
        let mut requirements = Vec::new();
        for term in selector_terms(text) {
            let (field, equal, value) = term.map_err(|part| {
                format!("nodeFieldSelector: '{part}': expected FIELD=VALUE or FIELD!=VALUE")
            })?;
            let known = matches!(
                field,
                "id" | "name"
                    | "displayName"
                    | "templateName"
                    | "phase"
                    | "type"
                    | "templateRef.name"
                    | "templateRef.template"
            ) || (field.starts_with("inputs.parameters.") && field.ends_with(".value"));
            if !known {
                return Err(format!("nodeFieldSelector: unknown field '{field}'"));
            }
            requirements.push((field.to_string(), equal, value.to_string()));
        }
        Ok(NodeFieldSelector(requirements))
    }

    /// Whether a node satisfies every requirement.
    pub fn matches(&self, node: &Node) -> bool {
        let template = node.template_name.as_deref().unwrap_or_default();
        let parts: Vec<&str> = template.splitn(3, '/').collect();
        let (reference_name, reference_template) = match parts.as_slice() {
            [_, name, template] => (Some(*name), Some(*template)),
            _ => (None, None),
        };
        self.0.iter().all(|(field, equal, wanted)| {
            let actual: Option<&str> = match field.as_str() {
                "id" => Some(&node.id),
                "name" => Some(&node.name),
                "displayName" => Some(&node.display_name),
                "templateName" => Some(parts.last().copied().unwrap_or_default()),
                "phase" => Some(node.phase.as_str()),
                "type" => Some(node.node_type.as_str()),
                "templateRef.name" => reference_name,
                "templateRef.template" => reference_template,
                other => other
                    .strip_prefix("inputs.parameters.")
                    .and_then(|rest| rest.strip_suffix(".value"))
                    .and_then(|name| {
                        node.inputs
                            .iter()
                            .find(|(n, _)| n == name)
                            .map(|(_, v)| v.as_str())
                    }),
            };
            (actual == Some(wanted.as_str())) == *equal
        })
    }
}

/// One lifecycle request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Request {
    /// Suspend the workflow.
    Suspend,
    /// Resume the workflow, or only the matching suspend nodes.
    Resume {
        /// Which suspend nodes (all when `None`).
        node_field_selector: Option<String>,
    },
    /// Stop (`terminate`: without exit handlers). With a message or a selector, the
    /// matching active suspend nodes fail with that message first, as Argo does.
    Stop {
        /// Skip the exit handlers.
        terminate: bool,
        /// Message of the failed suspend nodes.
        message: Option<String>,
        /// Which suspend nodes fail (all when `None` and a message is given).
        node_field_selector: Option<String>,
    },
    /// Set fields of the matching active suspend nodes.
    Set {
        /// Which nodes.
        node_field_selector: String,
        /// New phase (`Succeeded` resumes, `Failed` fails the node).
        phase: Option<Phase>,
        /// New message.
        message: Option<String>,
        /// Supplied output parameters, by name.
        output_parameters: Vec<(String, String)>,
    },
}

/// What a planned request changes.
pub(super) struct Plan {
    /// New `spec.suspend`, if it changes.
    suspend: Option<bool>,
    /// The nodes it changes.
    nodes: Vec<NodeChange>,
}

/// A change to one node.
struct NodeChange {
    id: String,
    phase: Option<Phase>,
    message: Option<String>,
    /// Output parameters, replacing those of the same name.
    outputs: Vec<(String, String)>,
}

/// The template a node runs: by stored key or by name.
fn template_of<'e>(executable: &'e Executable, node: &Node) -> Option<&'e Template> {
    executable.template(node.template_name.as_deref()?)
}

/// Output parameters a suspend node waits for (`valueFrom.supplied`), with their defaults.
fn supplied_outputs(template: Option<&Template>) -> Vec<(String, Option<String>)> {
    template
        .and_then(|t| t.outputs.as_ref())
        .map(|o| o.parameters.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let from = p.value_from.as_ref()?;
            from.supplied.as_ref()?;
            Some((
                p.name.clone(),
                from.default.as_ref().map(|d| d.as_str().to_string()),
            ))
        })
        .collect()
}

fn is_active_suspend(node: &Node) -> bool {
    node.node_type == NodeType::Suspend && !node.phase.is_done()
}

/// Plan a request against the nodes (nothing changes here); why it is refused.
pub(super) fn plan(
    executable: &Executable,
    nodes: &super::nodes::Nodes,
    request: &Request,
) -> Result<Plan, String> {
    // A resumed node needs every supplied output: set now, set before, or defaulted.
    let resumed = |node: &Node,
                   given: &[(String, String)]|
     -> Result<Vec<(String, String)>, String> {
        let mut outputs = Vec::new();
        for (name, default) in supplied_outputs(template_of(executable, node)) {
            let set = given.iter().any(|(n, _)| *n == name)
                || node.outputs.parameters.iter().any(|(n, _)| *n == name);
            if set {
                continue;
            }
            match default {
                Some(value) => outputs.push((name, value)),
                None => {
                    return Err(format!(
                        "raw output parameter '{name}' has not been set and does not have a default value"
                    ));
                }
            }
        }
        Ok(outputs)
    };
    match request {
        Request::Suspend => Ok(Plan {
            suspend: Some(true),
            nodes: Vec::new(),
        }),
        Request::Resume {
            node_field_selector,
        } => {
            let selector = node_field_selector
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(NodeFieldSelector::parse)
                .transpose()?;
            let mut planned = Vec::new();
            for node in nodes.values().filter(|n| is_active_suspend(n)) {
                if selector.as_ref().is_some_and(|s| !s.matches(node)) {
                    continue;
                }
                let outputs = resumed(node, &[])?;
                planned.push(NodeChange {
                    id: node.id.clone(),
                    phase: Some(Phase::Succeeded),
                    message: None,
                    outputs,
                });
            }
            if let Some(selector) = node_field_selector.as_deref().filter(|s| !s.is_empty())
                && planned.is_empty()
            {
                return Err(format!(
                    "currently, set only targets suspend nodes: no suspend nodes matching nodeFieldSelector: {selector}"
                ));
            }
            Ok(Plan {
                suspend: selector.is_none().then_some(false),
                nodes: planned,
            })
        }
        Request::Set {
            node_field_selector,
            phase,
            message,
            output_parameters,
        } => {
            let selector = NodeFieldSelector::parse(node_field_selector)?;
            let mut planned = Vec::new();
            for node in nodes
                .values()
                .filter(|n| is_active_suspend(n) && selector.matches(n))
            {
                let supplied = supplied_outputs(template_of(executable, node));
                for (name, _) in output_parameters {
                    if supplied.is_empty() {
                        return Err(format!(
                            "node '{}' does not have any output parameters",
                            node.name
                        ));
                    }
                    if !supplied.iter().any(|(n, _)| n == name) {
                        return Err(format!(
                            "node '{}' does not have an output parameter '{name}'",
                            node.name
                        ));
                    }
                }
                let mut outputs = output_parameters.clone();
                if *phase == Some(Phase::Succeeded) {
                    outputs.extend(resumed(node, output_parameters)?);
                }
                planned.push(NodeChange {
                    id: node.id.clone(),
                    phase: *phase,
                    message: message.clone(),
                    outputs,
                });
            }
            if planned.is_empty() {
                return Err(format!(
                    "currently, set only targets suspend nodes: no suspend nodes matching nodeFieldSelector: {node_field_selector}"
                ));
            }
            Ok(Plan {
                suspend: None,
                nodes: planned,
            })
        }
        Request::Stop {
            message,
            node_field_selector,
            ..
        } => {
            let mut failed = Vec::new();
            if message.is_some() || node_field_selector.is_some() {
                let set = Request::Set {
                    node_field_selector: node_field_selector.clone().unwrap_or_default(),
                    phase: Some(Phase::Failed),
                    message: message.clone(),
                    output_parameters: Vec::new(),
                };
                // No suspend node to fail is not a reason to refuse the stop.
                if let Ok(plan) = plan(executable, nodes, &set) {
                    failed = plan.nodes;
                }
            }
            // A stopped workflow is no longer suspended: its exit handlers run.
            Ok(Plan {
                suspend: Some(false),
                nodes: failed,
            })
        }
    }
}

impl Request {
    /// What the request does, as a verb for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Suspend => "suspend",
            Request::Resume { .. } => "resume",
            Request::Stop {
                terminate: false, ..
            } => "stop",
            Request::Stop {
                terminate: true, ..
            } => "terminate",
            Request::Set { .. } => "set nodes of",
        }
    }
}

/// Apply a plan: nodes, and `spec.suspend` in both the parsed workflow and its JSON text.
pub(super) fn apply(
    plan: Plan,
    executable: &mut Executable,
    workflow_json: &mut std::sync::Arc<str>,
    nodes: &mut super::nodes::Nodes,
    now: DateTime<Utc>,
) {
    if let Some(suspend) = plan.suspend {
        executable.workflow.spec.suspend = suspend.then_some(true);
        if let Ok(mut value) = serde_json::from_str::<Value>(workflow_json)
            && let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut)
        {
            if suspend {
                spec.insert("suspend".into(), Value::Bool(true));
            } else {
                spec.remove("suspend");
            }
            if let Ok(text) = serde_json::to_string(&value) {
                *workflow_json = text.into();
            }
        }
    }
    for NodeChange {
        id,
        phase,
        message,
        outputs,
    } in plan.nodes
    {
        let Some(node) = nodes.get_mut(&id) else {
            continue;
        };
        for (name, value) in outputs {
            match node.outputs.parameters.iter_mut().find(|(n, _)| *n == name) {
                Some(existing) => existing.1 = value,
                None => node.outputs.parameters.push((name, value)),
            }
        }
        if let Some(message) = message {
            node.message = message;
        }
        if let Some(phase) = phase {
            node.phase = phase;
            if phase.is_done() {
                node.finished_at = Some(ts(now));
            }
        }
    }
}
