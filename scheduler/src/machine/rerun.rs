//! Retry and resubmit, as `argo retry` and `argo resubmit` do them: new states built from a
//! finished run. Pure, like the rest of the machine.
//!
//! Both keep what succeeded and let the machine run the rest again:
//! - a step node (pod, container, suspend, skipped) that did not succeed goes, with what it
//!   contains; so does a succeeded one chosen for restarting (`--restart-successful` with a
//!   node selector);
//! - a group node (steps, step group, DAG, task group, retry) that still contains something
//!   kept stays, back to Running (retry) or Pending (resubmit) when something below it went;
//!   a group with nothing kept goes;
//! - the workflow's exit handler goes, so it runs again at the end.
//!
//! Nodes are found again by their ids, which come from their names, so the machine's
//! reconcile sees the kept nodes as done and recreates the rest.
//!
//! `resubmit --memoized` starts a new run (a new name, so nodes are renamed and get new ids)
//! in which succeeded pods appear as Argo shows them: type and phase `Skipped`, message
//! `original pod: <old id>`, outputs kept.

use std::collections::{HashMap, HashSet};

use super::nodes::Nodes;

use chrono::{DateTime, Utc};
use cox_config::model::Workflow;

use super::lifecycle::NodeFieldSelector;
use super::node::{Node, NodeType, Phase, node_id};
use super::operator::ts;
use super::run::RunState;

/// Argo's label naming the workflow a resubmitted one came from.
pub const RESUBMITTED_FROM: &str = "workflows.argoproj.io/resubmitted-from-workflow";

/// What `retry` restarts besides the failures.
#[derive(Debug, Clone, Default)]
pub struct RetryOptions {
    /// Also restart the succeeded nodes the selector matches.
    pub restart_successful: bool,
    /// Argo's `nodeFieldSelector`.
    pub node_selector: Option<NodeFieldSelector>,
    /// Workflow parameters to set (`-p NAME=VALUE`).
    pub parameters: Vec<(String, String)>,
}

fn is_group(t: NodeType) -> bool {
    matches!(
        t,
        NodeType::Steps
            | NodeType::StepGroup
            | NodeType::Dag
            | NodeType::TaskGroup
            | NodeType::Retry
    )
}

/// The nodes of `nodes` that stay (see the module doc), and the groups among them that lost
/// something below them. Inside a group that succeeded, failures stay as they are (handled
/// ones, earlier attempts of a retry): only `restart` removes anything there.
fn kept_nodes(
    run: &str,
    nodes: &Nodes,
    restart: &dyn Fn(&Node) -> bool,
) -> (HashSet<String>, HashSet<String>) {
    struct Walk<'a> {
        nodes: &'a Nodes,
        restart: &'a dyn Fn(&Node) -> bool,
        kept: HashSet<String>,
        lost: HashSet<String>,
    }
    impl Walk<'_> {
        /// Whether the subtree at `id` keeps anything, and whether it lost anything.
        fn visit(&mut self, id: &str, in_succeeded: bool) -> (bool, bool) {
            let Some(node) = self.nodes.get(id) else {
                return (false, false);
            };
            if self.kept.contains(id) || self.lost.contains(id) {
                return (self.kept.contains(id), self.lost.contains(id));
            }
            let below = node.children.iter().chain(node.exit_hook.iter());
            if !is_group(node.node_type) {
                if (self.restart)(node) || (!in_succeeded && node.phase != Phase::Succeeded) {
                    self.lost.insert(id.to_string());
                    return (false, true);
                }
                self.kept.insert(id.to_string());
                // A kept step keeps what it contains (a container set's containers, its hook).
                for child in below {
                    self.visit(child, true);
                }
                return (true, false);
            }
            let succeeded = node.phase == Phase::Succeeded;
            let (mut any_kept, mut any_lost) = (false, !(in_succeeded || succeeded));
            for child in below {
                let (k, l) = self.visit(child, in_succeeded || succeeded);
                any_kept |= k;
                any_lost |= l;
            }
            if any_kept {
                self.kept.insert(id.to_string());
            }
            if any_lost {
                self.lost.insert(id.to_string());
            }
            (any_kept, any_lost)
        }
    }
    let mut walk = Walk {
        nodes,
        restart,
        kept: HashSet::new(),
        lost: HashSet::new(),
    };
    walk.visit(run, false);
    let exit_handler = format!("{run}.onExit");
    let mut kept = walk.kept;
    kept.retain(|id| {
        nodes
            .get(id)
            .is_some_and(|n| !n.name.starts_with(&exit_handler))
    });
    (kept, walk.lost)
}

impl RunState {
    /// Retries this finished run in place (Argo's `retry`): what failed, and the succeeded
    /// nodes `options` selects, run again; the rest is kept.
    pub fn retry(&mut self, options: &RetryOptions, now: DateTime<Utc>) -> Result<(), String> {
        if !matches!(self.phase, Phase::Failed | Phase::Error) {
            return Err(format!(
                "workflow must be Failed/Error to retry (it is {})",
                self.phase.as_str()
            ));
        }
        if !options.parameters.is_empty() {
            let mut workflow = self.workflow()?.clone();
            set_parameters(&mut workflow, &options.parameters)?;
            self.replace_workflow(workflow)?;
        }
        let restart = |n: &Node| {
            options.restart_successful
                && options.node_selector.as_ref().is_none_or(|s| s.matches(n))
        };
        let (kept, lost) = kept_nodes(&self.name, &self.nodes, &restart);
        self.nodes.retain(|id, _| kept.contains(id));
        self.nodes.update_all(|node| {
            // Children that run again keep their place (the status lists only existing
            // nodes): a loop's aggregated outputs follow the children's order.
            if node.exit_hook.as_ref().is_some_and(|h| !kept.contains(h)) {
                node.exit_hook = None;
            }
            if lost.contains(&node.id) {
                node.phase = Phase::Running;
                node.message.clear();
                node.finished_at = None;
            }
        });
        self.phase = Phase::Running;
        self.message.clear();
        self.started_at = Some(ts(now));
        self.finished_at = None;
        self.stopped = None;
        self.main_result = None;
        self.reset_derived();
        Ok(())
    }

    /// The workflow of a resubmission of this run: the same spec under a generated name,
    /// labelled with this run's name, with `parameters` set.
    pub fn resubmission(&mut self, parameters: &[(String, String)]) -> Result<Workflow, String> {
        let mut workflow = self.workflow()?.clone();
        let prefix = workflow
            .metadata
            .generate_name
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| format!("{}-", self.name));
        workflow.metadata.generate_name = Some(prefix);
        workflow.metadata.name = None;
        workflow.metadata.creation_timestamp = None;
        workflow
            .metadata
            .labels
            .insert(RESUBMITTED_FROM.to_string(), self.name.clone());
        workflow.spec.shutdown = None;
        if workflow.spec.active_deadline_seconds == Some(0) {
            // A terminated workflow had its deadline set to 0.
            workflow.spec.active_deadline_seconds = None;
        }
        set_parameters(&mut workflow, parameters)?;
        Ok(workflow)
    }

    /// A new run of `workflow` (a [`RunState::resubmission`] given its name) that reuses
    /// what succeeded in `old` (Argo's `resubmit --memoized`; `old` must have failed).
    pub fn memoized_from(
        old: &RunState,
        workflow: Workflow,
        now: DateTime<Utc>,
    ) -> Result<RunState, String> {
        if !matches!(old.phase, Phase::Failed | Phase::Error) {
            return Err(format!(
                "workflow must be Failed/Error to resubmit in memoized mode (it is {})",
                old.phase.as_str()
            ));
        }
        let mut state = RunState::new(workflow, now)?;
        let new = state.name.clone();
        let (kept, lost) = kept_nodes(&old.name, &old.nodes, &|_| false);
        let rename = |name: &str| match name.strip_prefix(&old.name) {
            Some(rest) => format!("{new}{rest}"),
            None => name.to_string(),
        };
        let ids: HashMap<&str, String> = old
            .nodes
            .values()
            .map(|n| (n.id.as_str(), node_id(&new, &rename(&n.name))))
            .collect();
        for node in old.nodes.values().filter(|n| kept.contains(&n.id)) {
            let mut copy = node.clone();
            copy.name = rename(&node.name);
            if node.display_name == old.name {
                copy.display_name = new.clone();
            }
            copy.id = ids[node.id.as_str()].clone();
            copy.boundary_id = node
                .boundary_id
                .as_deref()
                .and_then(|b| ids.get(b).cloned());
            // As in a retry, children that run again keep their place.
            copy.children = node
                .children
                .iter()
                .filter_map(|c| ids.get(c.as_str()).cloned())
                .collect();
            copy.exit_hook = node
                .exit_hook
                .as_deref()
                .filter(|h| kept.contains(*h))
                .and_then(|h| ids.get(h).cloned());
            if node.node_type == NodeType::Pod {
                copy.node_type = NodeType::Skipped;
                copy.phase = Phase::Skipped;
                copy.message = format!("original pod: {}", node.id);
                copy.started_at = Some(ts(now));
                copy.finished_at = Some(ts(now));
                copy.launched = false;
            } else if lost.contains(&node.id) {
                copy.phase = Phase::Pending;
                copy.message.clear();
                copy.started_at = None;
                copy.finished_at = None;
            }
            state.nodes.insert(copy.id.clone(), copy);
        }
        Ok(state)
    }
}

/// Sets workflow parameters as `-p NAME=VALUE` does.
fn set_parameters(workflow: &mut Workflow, parameters: &[(String, String)]) -> Result<(), String> {
    if parameters.is_empty() {
        return Ok(());
    }
    let arguments = workflow.spec.arguments.get_or_insert_default();
    for (name, value) in parameters {
        arguments.set_parameter(name, value)?;
    }
    Ok(())
}
