//! The gate actor: owns the engine's [`Gate`], looks limits up (ConfigMaps, the engine's
//! parallelism config), tells run actors when they are admitted, and keeps the metrics.
//!
//! Every message is a cast except [`GateMsg::Status`]: run actors never wait on the gate,
//! and the gate never waits on a run actor, so neither can deadlock the other.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{debug, warn};

use super::{Gate, Holder, Lock, LockKind, LockStatus};
use crate::actor::{Clock, RunMsg};
use crate::resolve::config_map_data;
use crate::store::{ObjectKind, Store};

/// Gauge: holders of each lock.
pub const HELD_METRIC: &str = "cox_sync_locks_held";
/// Gauge: waiters of each lock.
pub const PENDING_METRIC: &str = "cox_sync_locks_pending";
/// Gauge: each lock's limit.
pub const LIMIT_METRIC: &str = "cox_sync_lock_limit";
/// Histogram: seconds from asking for locks to getting them.
pub const WAIT_METRIC: &str = "cox_sync_wait_seconds";

/// Workflow parallelism limits of the engine (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParallelismLimits {
    /// Workflows running at once on the whole server.
    pub server: Option<u32>,
    /// Workflows running at once in each namespace.
    pub namespace: Option<u32>,
}

impl ParallelismLimits {
    /// The parallelism locks a run of `namespace` must hold while it runs.
    pub fn locks(&self, namespace: &str) -> Vec<Lock> {
        let mut locks = Vec::new();
        if self.server.is_some() {
            locks.push(Lock::parallelism(None));
        }
        if self.namespace.is_some() {
            locks.push(Lock::parallelism(Some(namespace)));
        }
        locks
    }
}

/// The gate actor (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct GateActor;

/// What the gate actor is started with.
pub struct GateArgs {
    /// Where ConfigMaps (semaphore limits) are read.
    pub store: Store,
    /// The engine's parallelism limits.
    pub parallelism: ParallelismLimits,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

/// The gate actor's state.
pub struct GateState {
    gate: Gate,
    store: Store,
    parallelism: ParallelismLimits,
    clock: Arc<dyn Clock>,
    /// Where to tell each waiter it was admitted.
    notify: std::collections::HashMap<Holder, ActorRef<RunMsg>>,
    /// Admission is held ([`GateMsg::Hold`]): requests queue, nobody is admitted.
    held: bool,
}

/// Messages of the gate actor.
pub enum GateMsg {
    /// `holder` asks for `locks`; `notify` hears [`RunMsg::LockGranted`] (and, while it
    /// waits, [`RunMsg::LockWaiting`] with Argo's message).
    Request {
        /// Who asks.
        holder: Holder,
        /// What it needs.
        locks: Vec<Lock>,
        /// Its priority (higher first).
        priority: i32,
        /// The run actor to tell.
        notify: ActorRef<RunMsg>,
    },
    /// `holder` holds `locks` already (stored state after a restart).
    Restore {
        /// Who holds.
        holder: Holder,
        /// What it holds.
        locks: Vec<Lock>,
    },
    /// `holder` gives back what it holds, or stops waiting.
    Release(Holder),
    /// The run and its nodes give back everything and stop waiting.
    ReleaseRun(String),
    /// ConfigMaps changed: look the semaphore limits up again.
    RefreshLimits,
    /// Admit nobody until [`GateMsg::Open`]; requests still queue (by priority). The
    /// engine holds the gate while it resumes runs after a restart, so that a lock freed
    /// meanwhile goes to the best waiter of all resumed runs, not to the first one started.
    Hold,
    /// Admit again what fits (the end of a [`GateMsg::Hold`]).
    Open,
    /// Every lock (of a namespace, when given), for `cox sync list`.
    Status {
        /// Only this namespace's locks (and the server-wide ones).
        namespace: Option<String>,
        /// The answer.
        reply: RpcReplyPort<Vec<LockStatus>>,
    },
}

impl Actor for GateActor {
    type Msg = GateMsg;
    type State = GateState;
    type Arguments = GateArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<GateMsg>,
        args: GateArgs,
    ) -> Result<GateState, ActorProcessingErr> {
        Ok(GateState {
            gate: Gate::default(),
            store: args.store,
            parallelism: args.parallelism,
            clock: args.clock,
            notify: std::collections::HashMap::new(),
            held: false,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<GateMsg>,
        message: GateMsg,
        state: &mut GateState,
    ) -> Result<(), ActorProcessingErr> {
        let now = state.clock.now();
        match message {
            GateMsg::Request {
                holder,
                locks,
                priority,
                notify,
            } => {
                if state.gate.holds(&holder) {
                    // Held already (restored): admitted as it asks.
                    let _ = notify.cast(RunMsg::LockGranted {
                        node: holder.node.clone(),
                    });
                    return Ok(());
                }
                if !state.gate.request(holder.clone(), locks, priority, now) {
                    return Ok(());
                }
                state.notify.insert(holder.clone(), notify);
                state.learn_limits();
                state.admit();
                if let (Some(message), Some(notify)) = (
                    state.gate.waiting_message(&holder),
                    state.notify.get(&holder),
                ) {
                    let _ = notify.cast(RunMsg::LockWaiting {
                        node: holder.node.clone(),
                        message,
                    });
                }
            }
            GateMsg::Restore { holder, locks } => {
                state.gate.restore(holder, locks, now);
                state.learn_limits();
            }
            GateMsg::Release(holder) => {
                state.notify.remove(&holder);
                if state.gate.release(&holder) {
                    state.admit();
                }
            }
            GateMsg::ReleaseRun(run) => {
                state.notify.retain(|h, _| h.run != run);
                if state.gate.release_run(&run) {
                    state.admit();
                }
            }
            GateMsg::RefreshLimits => {
                for lock in state.gate.locks() {
                    let limit = state.limit_of(&lock);
                    state.gate.set_limit(&lock.key, limit);
                }
                state.admit();
            }
            GateMsg::Hold => state.held = true,
            GateMsg::Open => {
                state.held = false;
                state.admit();
            }
            GateMsg::Status { namespace, reply } => {
                let _ = reply.send(state.gate.status(namespace.as_deref(), now));
            }
        }
        state.report();
        Ok(())
    }
}

impl GateState {
    /// Limits of locks not seen before.
    fn learn_limits(&mut self) {
        for lock in self.gate.unknown_limits() {
            let limit = self.limit_of(&lock);
            self.gate.set_limit(&lock.key, limit);
        }
    }

    fn limit_of(&self, lock: &Lock) -> Option<u32> {
        limit_of(&self.store, &self.parallelism, lock)
    }

    /// Admit what fits and tell the admitted (unless admission is held); a waiter whose
    /// actor is gone gives its locks back at once.
    fn admit(&mut self) {
        while !self.held {
            let grants = self.gate.admit(self.clock.now());
            if grants.is_empty() {
                return;
            }
            let mut gone = false;
            for grant in grants {
                metrics::histogram!(WAIT_METRIC).record(grant.waited_seconds);
                let delivered = self.notify.remove(&grant.holder).is_some_and(|notify| {
                    notify
                        .cast(RunMsg::LockGranted {
                            node: grant.holder.node.clone(),
                        })
                        .is_ok()
                });
                if !delivered {
                    debug!(holder = %grant.holder, "admitted waiter is gone; released");
                    self.gate.release(&grant.holder);
                    gone = true;
                }
            }
            if !gone {
                return;
            }
        }
    }

    fn report(&mut self) {
        for (key, held, pending, limit) in self.gate.counts() {
            metrics::gauge!(HELD_METRIC, "lock" => key.clone()).set(held as f64);
            metrics::gauge!(PENDING_METRIC, "lock" => key.clone()).set(pending as f64);
            metrics::gauge!(LIMIT_METRIC, "lock" => key).set(limit.map_or(-1.0, f64::from));
        }
    }
}

/// A lock's limit: 1 for a mutex, the engine's parallelism, or the integer in the
/// semaphore's ConfigMap (`None` when that is missing or not a non-negative integer).
pub fn limit_of(store: &Store, parallelism: &ParallelismLimits, lock: &Lock) -> Option<u32> {
    match &lock.kind {
        LockKind::Mutex => Some(1),
        LockKind::Parallelism { namespace: None } => parallelism.server,
        LockKind::Parallelism { namespace: Some(_) } => parallelism.namespace,
        LockKind::Semaphore {
            namespace,
            config_map,
            key,
        } => {
            let text = match store.get_object(ObjectKind::ConfigMap, namespace, config_map) {
                Ok(Some(text)) => text,
                Ok(None) => {
                    debug!(lock = %lock.key, "semaphore ConfigMap not found");
                    return None;
                }
                Err(e) => {
                    warn!(lock = %lock.key, error = %e, "cannot read semaphore ConfigMap");
                    return None;
                }
            };
            let value = config_map_data(&text).ok()?.get(key)?.trim().parse().ok();
            if value.is_none() {
                warn!(lock = %lock.key, "semaphore limit is not a non-negative integer");
            }
            value
        }
    }
}
