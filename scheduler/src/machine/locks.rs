//! Synchronization locks of a run, derived from its workflow and its durable state:
//! what the run and its nodes need, what they hold (a run that started and has not
//! finished holds its workflow-level locks; a launched, unfinished step holds its
//! template's), and Argo's `status.synchronization`.

use chrono::{DateTime, Utc};
use cox_config::expr::{self, Unresolved, Vars};
use cox_config::model::{Synchronization, Template};
use serde_json::{Value, json};

use super::run::RunState;
use crate::sync::{Holder, Lock};

/// The locks `sync` names, names substituted with `vars` (`{{workflow.name}}` and such),
/// relative to `namespace` unless a lock names its own.
pub(crate) fn locks_of(sync: &Synchronization, vars: &Vars, namespace: &str) -> Vec<Lock> {
    let sub = |s: &str| {
        if s.contains("{{") {
            expr::substitute(s, vars, Unresolved::Leave).unwrap_or_else(|_| s.to_string())
        } else {
            s.to_string()
        }
    };
    let mut locks = Vec::new();
    for mutex in sync.all_mutexes() {
        let Some(name) = mutex.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let ns = mutex.namespace.as_deref().unwrap_or(namespace);
        locks.push(Lock::mutex(&sub(ns), &sub(name)));
    }
    for semaphore in sync.all_semaphores() {
        let Some(selector) = &semaphore.config_map_key_ref else {
            continue;
        };
        let ns = semaphore.namespace.as_deref().unwrap_or(namespace);
        let name = selector.name.as_deref().unwrap_or_default();
        locks.push(Lock::semaphore(&sub(ns), &sub(name), &sub(&selector.key)));
    }
    locks
}

impl RunState {
    /// The run's namespace (`default` when the workflow has none).
    pub fn namespace(&mut self) -> String {
        self.workflow()
            .ok()
            .and_then(|wf| wf.metadata.namespace.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| crate::resolve::DEFAULT_NAMESPACE.to_string())
    }

    /// The workflow's priority (`spec.priority`, 0 when unset).
    pub fn priority(&mut self) -> i32 {
        self.workflow()
            .ok()
            .and_then(|wf| wf.spec.priority)
            .unwrap_or(0)
    }

    /// The workflow-level locks (`spec.synchronization`) the run holds while it runs.
    pub fn workflow_locks(&mut self, now: DateTime<Utc>) -> Vec<Lock> {
        let namespace = self.namespace();
        let Ok(wf) = self.workflow() else {
            return Vec::new();
        };
        let Some(sync) = wf.spec.synchronization.clone() else {
            return Vec::new();
        };
        let wf = wf.clone();
        let vars = self.globals(&wf, now);
        locks_of(&sync, &vars, &namespace)
    }

    /// Whether the run holds its workflow-level locks by its stored state: it started, is
    /// not pending (again) and has not finished.
    pub fn holds_workflow_locks(&self) -> bool {
        self.started_at.is_some() && self.phase != super::Phase::Pending && !self.is_finished()
    }

    /// A retried run goes back to Pending, so that it waits for its workflow-level locks
    /// like a new run instead of taking them (`Start` makes it Running once admitted).
    pub fn wait_for_locks(&mut self) {
        if !self.is_finished() {
            self.phase = super::Phase::Pending;
        }
    }

    /// The template-level locks held by this run's nodes by their stored state: steps
    /// launched and not finished whose template has `synchronization`. (Lock names are
    /// substituted with the workflow's variables only.)
    pub fn node_holdings(&mut self, now: DateTime<Utc>) -> Vec<(Holder, Vec<Lock>)> {
        let namespace = self.namespace();
        let Ok(wf) = self.workflow() else {
            return Vec::new();
        };
        let wf = wf.clone();
        let vars = self.globals(&wf, now);
        let mut held = Vec::new();
        for node in self.nodes.values() {
            if !(node.node_type.is_step() && node.launched && !node.phase.is_done()) {
                continue;
            }
            let Some(template) = node.template_name.as_deref().and_then(|t| self.template(t))
            else {
                continue;
            };
            if let Some(sync) = &template.synchronization {
                let locks = locks_of(sync, &vars, &namespace);
                if !locks.is_empty() {
                    held.push((Holder::node(&self.name, &node.id), locks));
                }
            }
        }
        held
    }

    fn template(&self, name: &str) -> Option<&Template> {
        self.spec.as_deref()?.template(name)
    }

    /// Argo's `status.synchronization` for this run, derived from its state: the locks of
    /// the run (held once it started, waited for while it is pending) and of its steps
    /// (held once launched, waited for while pending); `None` without any.
    pub(super) fn sync_status(&self) -> Option<Value> {
        if !self.workflow_json.contains("synchronization") {
            return None;
        }
        let mut copy = self.header();
        let now = self
            .started_at
            .as_deref()
            .and_then(super::parse_ts)
            .unwrap_or_default();
        let mut entries: Vec<(bool, String, Lock)> = Vec::new();
        let run_locks = copy.workflow_locks(now);
        if !self.is_finished() {
            let holding = self.holds_workflow_locks();
            for lock in run_locks {
                entries.push((holding, self.name.clone(), lock));
            }
        }
        copy.nodes = self.nodes.clone();
        for (holder, locks) in copy.node_holdings(now) {
            for lock in locks {
                entries.push((true, holder.node.clone().unwrap_or_default(), lock));
            }
        }
        // Steps waiting: pending, not launched, with Argo's waiting message.
        let waiting: Vec<(String, String)> = self
            .nodes
            .values()
            .filter(|n| !n.launched && n.phase == super::Phase::Pending)
            .filter_map(|n| {
                let key = n
                    .message
                    .strip_prefix("Waiting for ")?
                    .split(" lock.")
                    .next()?;
                Some((n.id.clone(), key.to_string()))
            })
            .collect();
        if entries.is_empty() && waiting.is_empty() {
            return None;
        }
        let mut mutex_holding = Vec::new();
        let mut mutex_waiting = Vec::new();
        let mut semaphore_holding: Vec<(String, Vec<String>)> = Vec::new();
        let mut semaphore_waiting: Vec<(String, Vec<String>)> = Vec::new();
        let mut add = |holding: bool, holder: String, key: String, is_mutex: bool| {
            if is_mutex {
                let entry = json!({"mutex": key, "holder": holder});
                if holding {
                    mutex_holding.push(entry)
                } else {
                    mutex_waiting.push(entry)
                }
            } else {
                let list = if holding {
                    &mut semaphore_holding
                } else {
                    &mut semaphore_waiting
                };
                match list.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, holders)) => holders.push(holder),
                    None => list.push((key, vec![holder])),
                }
            }
        };
        for (holding, holder, lock) in entries {
            let is_mutex = matches!(lock.kind, crate::sync::LockKind::Mutex);
            add(holding, holder, lock.key, is_mutex);
        }
        for (node, key) in waiting {
            let is_mutex = key.contains("/Mutex/");
            add(false, node, key, is_mutex);
        }
        let semaphores = |list: Vec<(String, Vec<String>)>| {
            list.into_iter()
                .map(|(k, holders)| json!({"semaphore": k, "holders": holders}))
                .collect::<Vec<_>>()
        };
        let mut status = serde_json::Map::new();
        let mut section = |name: &str, holding: Vec<Value>, waiting: Vec<Value>| {
            if holding.is_empty() && waiting.is_empty() {
                return;
            }
            let mut s = serde_json::Map::new();
            if !holding.is_empty() {
                s.insert("holding".into(), Value::Array(holding));
            }
            if !waiting.is_empty() {
                s.insert("waiting".into(), Value::Array(waiting));
            }
            status.insert(name.into(), Value::Object(s));
        };
        section("mutex", mutex_holding, mutex_waiting);
        section(
            "semaphore",
            semaphores(semaphore_holding),
            semaphores(semaphore_waiting),
        );
        Some(Value::Object(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Action, Event, Phase};
    use crate::testsuite::{succeeded, workflow_from_yaml};

    const TEMPLATE_LOCK: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: tl, namespace: argo}\nspec:\n  entrypoint: main\n  priority: 3\n  synchronization:\n    mutexes: [{name: 'run-{{workflow.name}}'}]\n  templates:\n  - name: main\n    steps:\n    - - {name: locked, template: locked}\n  - name: locked\n    synchronization:\n      mutexes: [{name: welcome}]\n      semaphores: [{configMapKeyRef: {name: cm, key: k}}]\n    container: {image: busybox, command: ['true']}\n";

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid time")
    }

    #[test]
    fn a_locked_step_stays_pending_with_the_message_until_admitted() {
        let mut run = RunState::new(workflow_from_yaml(TEMPLATE_LOCK), t(0)).unwrap();
        assert_eq!(
            run.workflow_locks(t(0)),
            vec![Lock::mutex("argo", "run-tl")]
        );
        assert!(!run.holds_workflow_locks());
        let actions = run.apply(Event::Start { now: t(1) });
        let [
            Action::Acquire {
                node_id,
                locks,
                priority,
            },
        ] = actions.as_slice()
        else {
            panic!("one Acquire expected, got {actions:?}");
        };
        assert_eq!(*priority, 3);
        assert_eq!(
            locks,
            &vec![
                Lock::mutex("argo", "welcome"),
                Lock::semaphore("argo", "cm", "k")
            ]
        );
        let node_id = node_id.clone();
        // Asked once: reconciling again while it waits asks nothing.
        assert!(run.apply(Event::Timer { now: t(2) }).is_empty());
        let message = "Waiting for argo/Mutex/welcome lock. Lock status: 0/1".to_string();
        assert!(
            run.apply(Event::LockWaiting {
                node_id: Some(node_id.clone()),
                message: message.clone()
            })
            .is_empty()
        );
        assert_eq!(run.nodes[&node_id].phase, Phase::Pending);
        assert_eq!(run.nodes[&node_id].message, message);
        let status = run.workflow_json()["status"]["synchronization"].clone();
        assert_eq!(
            status["mutex"]["holding"][0],
            json!({"mutex": "argo/Mutex/run-tl", "holder": "tl"})
        );
        assert_eq!(
            status["mutex"]["waiting"][0],
            json!({"mutex": "argo/Mutex/welcome", "holder": node_id})
        );
        assert!(run.node_holdings(t(2)).is_empty());

        let actions = run.apply(Event::LockGranted {
            node_id: node_id.clone(),
            now: t(3),
        });
        assert!(
            matches!(actions.as_slice(), [Action::Launch(_)]),
            "{actions:?}"
        );
        assert!(run.nodes[&node_id].message.is_empty());
        let held = run.node_holdings(t(3));
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].0, Holder::node("tl", &node_id));
        let status = run.workflow_json()["status"]["synchronization"].clone();
        assert_eq!(
            status["semaphore"]["holding"][0],
            json!({"semaphore": "argo/ConfigMap/cm/k", "holders": [node_id]})
        );
        let actions = run.apply(Event::StepFinished {
            node_id: node_id.clone(),
            outcome: succeeded(None),
            now: t(4),
        });
        assert!(actions.contains(&Action::Finished));
        assert!(run.node_holdings(t(4)).is_empty());
        assert!(!run.holds_workflow_locks());
    }

    #[test]
    fn a_run_stopped_while_waiting_for_its_locks_fails_without_running() {
        let mut run = RunState::new(workflow_from_yaml(TEMPLATE_LOCK), t(0)).unwrap();
        let waiting = "Waiting for argo/Mutex/run-tl lock. Lock status: 0/1";
        run.apply(Event::LockWaiting {
            node_id: None,
            message: waiting.into(),
        });
        assert_eq!(run.phase(), Phase::Pending);
        assert_eq!(run.message, waiting);
        assert_eq!(
            run.workflow_json()["status"]["synchronization"]["mutex"]["waiting"][0]["holder"],
            "tl"
        );
        let actions = run.apply(Event::Stop {
            now: t(5),
            terminate: false,
        });
        assert_eq!(actions, vec![Action::Finished]);
        assert_eq!(run.phase(), Phase::Failed);
        assert_eq!(run.message, "Stopped with strategy 'Stop'");
        assert!(run.nodes.is_empty());
    }
}
