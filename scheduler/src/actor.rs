//! One actor per run: the imperative shell around the pure [`RunState`] machine.
//!
//! ```text
//!   post_start ──► apply(Start) ─┐                 (queued events first: one commit for all)
//!   StepFinished ─► apply(..) ───┼─► Commit ─► persist (flushed) ─► publish ─► perform actions
//!   Timer ────────► apply(..) ───┘                                    │
//!        ▲                                                            ├─ Launch   ─► task: executor.run ─► StepFinished
//!        └──────────────── send_after ◄───────────────────────────────├─ WakeAt
//!                                                                     ├─ Cancel   ─► cancel the attempt's token
//!                                                                     └─ Finished ─► answer waiters, stop
//! ```
//!
//! The state is always persisted before its actions are performed, so a crash at any point
//! leaves a store that is not behind what was done. Commits are grouped: an event's actions
//! wait for a `Commit` message the actor sends itself, so events already queued behind it
//! (steps that ended at the same time) are applied first and share one flushed write. On
//! restart the machine gets `Start` again; attempts the store says were running are adopted
//! from the executor ([`Executor::adopt`]): an attempt that ended while no scheduler ran
//! gives its recorded outcome (not rerun), one still running is waited for (and can be
//! cancelled), one that vanished is reported lost: an Error outcome, an infrastructure error
//! whatever the program's exit code would have been ([`LOST_STEP_MESSAGE`]), so the
//! template's `retryStrategy` decides whether it runs again, as for Argo's lost pods:
//! `retryPolicy: OnError`, `OnTransientError` or `Always` retry it; the default policy,
//! `OnFailure`, retries only the program's own failures, so by default the node stays Error.
//!
//! # A store that refuses writes
//!
//! When the commit's write fails (a full disk), nothing of that state is performed: no step
//! is launched, cancelled or marked failed for it. The error is published with the state
//! ([`RunState::store_error`], shown by the API and `cox run`) and the commit is tried again
//! after a backoff (100 ms doubling to 5 s), with the events that arrive meanwhile; once it
//! is stored, the actions of all of them are performed and the error is cleared.
//!
//! # Fencing
//!
//! Every launch gets an [`AttemptId`]: the store's epoch (it grows on every start, see
//! [`Store::epoch`]) and a sequence number within this actor. A `StepFinished` counts only
//! when its id is the one of the attempt the actor has running for that node; a late
//! result of a stale attempt (an earlier launch of the node, or one of an earlier process)
//! is logged and ignored, and the state is not touched.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cox_worker::step::{Executor, StepOutcome, StepSpec};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::machine::{Action, Event, Request, RunState};
use crate::store::Store;
use crate::sync::actor::GateMsg;
use crate::sync::{Holder, Lock};

/// Node message of an attempt that was running when the previous `cox` process stopped and
/// of which nothing is left (no live supervisor, no recorded exit).
pub const LOST_STEP_MESSAGE: &str =
    "step lost: it vanished without recording an outcome while the scheduler was down";

/// One launch of one step: the store epoch it was launched in and its sequence number in
/// the run actor (see the module doc, "Fencing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptId {
    /// [`Store::epoch`] of the process that launched it.
    pub epoch: u64,
    /// Launches made by the run actor before this one.
    pub seq: u64,
}

impl std::fmt::Display for AttemptId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

/// Where "now" comes from: the machine never reads the clock itself.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Called with each action and the state that produced it, just before the action is
/// performed (tests use it to check that the store already holds that state).
pub type ActionHook = Arc<dyn Fn(&Action, &RunState) + Send + Sync>;

/// The run actor (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunActor;

/// What a run actor is started with.
pub struct RunActorArgs {
    /// The run, as created or as loaded from the store.
    pub run: RunState,
    /// Where each new state is persisted.
    pub store: Store,
    /// What runs the steps.
    pub executor: Arc<dyn Executor>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Each new state is published here, for progress display and `await_completion`.
    pub progress: watch::Sender<RunState>,
    /// Optional hook called before each action is performed.
    pub on_action: Option<ActionHook>,
    /// The concurrency gate ([`crate::sync`]), asked for locks.
    pub gate: Option<ActorRef<GateMsg>>,
    /// The locks the whole run must hold to start (`spec.synchronization`, parallelism).
    pub run_locks: Vec<Lock>,
}

/// A run actor's state.
pub struct RunActorState {
    run: RunState,
    store: Store,
    executor: Arc<dyn Executor>,
    clock: Arc<dyn Clock>,
    progress: watch::Sender<RunState>,
    on_action: Option<ActionHook>,
    /// The attempts launched and not yet reported, by node id: their id and cancellation
    /// token.
    running: HashMap<String, (AttemptId, CancellationToken)>,
    /// Attempt ids handed out so far.
    launched: u64,
    /// Pending `WakeAt` timers, aborted when the actor stops.
    timers: Vec<JoinHandle<()>>,
    /// Callers of [`RunMsg::AwaitCompletion`], answered when the run finishes.
    waiters: Vec<RpcReplyPort<RunState>>,
    /// Actions of events applied since the last commit, performed after it.
    uncommitted: Vec<Action>,
    /// A [`RunMsg::Commit`] is queued.
    commit_queued: bool,
    /// Artifacts to delete when the run finishes ([`Action::DeleteArtifacts`]): keys, by
    /// the repository they are in.
    gc: Vec<(cox_worker::step::ArtifactStore, Vec<String>)>,
    /// Commits that failed in a row (the store's disk is full): the next try waits longer.
    failed_commits: u32,
    /// The concurrency gate.
    gate: Option<ActorRef<GateMsg>>,
    /// The run is pending until the gate admits it to its locks.
    waiting_for_locks: bool,
    /// Nodes that asked for or hold template-level locks, released once they end.
    lock_nodes: std::collections::BTreeSet<String>,
}

/// Messages of a run actor.
pub enum RunMsg {
    /// A step attempt ended (sent by the task that ran it).
    StepFinished {
        /// The attempt's node id.
        node_id: String,
        /// Which launch it was: a result of any other attempt is ignored.
        attempt: AttemptId,
        /// How it ended.
        outcome: StepOutcome,
    },
    /// A timer asked for with [`Action::WakeAt`] is due.
    Timer,
    /// Stop the run (`terminate`: without exit handlers).
    Stop {
        /// Skip the exit handlers.
        terminate: bool,
    },
    /// Persist the events applied since the last commit, then perform their actions.
    Commit,
    /// Suspend, resume, stop or set nodes: checked, then applied and persisted; answered with the
    /// new state, or why the request was refused (nothing changed then).
    Lifecycle {
        /// What is asked.
        request: Request,
        /// The answer.
        reply: RpcReplyPort<Result<RunState, String>>,
    },
    /// The current state.
    Snapshot(RpcReplyPort<RunState>),
    /// The final state, answered when the run finishes.
    AwaitCompletion(RpcReplyPort<RunState>),
    /// The gate admitted the run (`node: None`) or a node to its locks.
    LockGranted {
        /// The node, for template-level locks.
        node: Option<String>,
    },
    /// The run or a node waits for its locks: Argo's message.
    LockWaiting {
        /// The node, for template-level locks.
        node: Option<String>,
        /// Why it waits.
        message: String,
    },
}

impl Actor for RunActor {
    type Msg = RunMsg;
    type State = RunActorState;
    type Arguments = RunActorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RunMsg>,
        args: RunActorArgs,
    ) -> Result<RunActorState, ActorProcessingErr> {
        let mut run = args.run;
        let mut waiting_for_locks = false;
        let mut lock_nodes = std::collections::BTreeSet::new();
        if let Some(gate) = &args.gate {
            // Asked here, before `spawn` returns, so that the gate queues runs in the
            // order they were started: submission order, and stored order on a restart.
            if !args.run_locks.is_empty() && run.phase() == crate::machine::Phase::Pending {
                gate.cast(GateMsg::Request {
                    holder: Holder::run(&run.name),
                    locks: args.run_locks.clone(),
                    priority: run.priority(),
                    notify: myself.clone(),
                })?;
                waiting_for_locks = true;
            }
            let now = args.clock.now();
            lock_nodes = run
                .node_holdings(now)
                .into_iter()
                .filter_map(|(holder, _)| holder.node)
                .collect();
        }
        Ok(RunActorState {
            gate: args.gate,
            waiting_for_locks,
            lock_nodes,
            run,
            store: args.store,
            executor: args.executor,
            clock: args.clock,
            progress: args.progress,
            on_action: args.on_action,
            running: HashMap::new(),
            launched: 0,
            timers: Vec::new(),
            waiters: Vec::new(),
            uncommitted: Vec::new(),
            commit_queued: false,
            gc: Vec::new(),
            failed_commits: 0,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<RunMsg>,
        state: &mut RunActorState,
    ) -> Result<(), ActorProcessingErr> {
        // A run waiting for its locks starts when the gate admits it.
        if state.waiting_for_locks {
            return Ok(());
        }
        // Attempts marked launched by an earlier process (a restart after a crash or a stop):
        // the executor adopts them (a local step's supervisor outlives its launcher), so one
        // that ended meanwhile gives its recorded outcome and one still running is waited
        // for, never launched twice. One of which nothing is left is reported lost, an Error
        // outcome, so the retry strategy and failure rules apply.
        // One that cannot have started its program (the earlier process died first) is
        // launched again by the machine, as the same attempt.
        let mut orphans = state.run.running_steps();
        orphans.retain(|node_id| {
            let Some(node) = state.run.nodes.get_mut(node_id) else {
                return false;
            };
            if state
                .executor
                .may_have_started(&state.run.name, node_id, node.attempt)
            {
                return true;
            }
            debug!(run = %state.run.name, node = %node_id, "relaunching a step that never started");
            node.launched = false;
            false
        });
        let now = state.clock.now();
        state.step(&myself, Event::Start { now })?;
        for node_id in orphans {
            if !state.running.contains_key(&node_id) {
                let number = state.run.nodes.get(&node_id).map_or(0, |n| n.attempt);
                state.adopt(&myself, node_id, number);
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RunMsg>,
        message: RunMsg,
        state: &mut RunActorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RunMsg::StepFinished {
                node_id,
                attempt,
                outcome,
            } => {
                let current = state.running.get(&node_id).map(|(id, _)| *id);
                if current != Some(attempt) {
                    warn!(
                        run = %state.run.name,
                        node = %node_id,
                        %attempt,
                        running = ?current.map(|id| id.to_string()),
                        "late result of a stale attempt; ignored"
                    );
                    return Ok(());
                }
                state.running.remove(&node_id);
                let now = state.clock.now();
                state.step(
                    &myself,
                    Event::StepFinished {
                        node_id,
                        outcome,
                        now,
                    },
                )
            }
            RunMsg::Timer => {
                state.timers.retain(|t| !t.is_finished());
                let now = state.clock.now();
                state.step(&myself, Event::Timer { now })
            }
            RunMsg::LockGranted { node: None } => {
                if !std::mem::take(&mut state.waiting_for_locks) {
                    return Ok(());
                }
                let now = state.clock.now();
                state.step(&myself, Event::Start { now })
            }
            RunMsg::LockGranted {
                node: Some(node_id),
            } => {
                let now = state.clock.now();
                state.step(&myself, Event::LockGranted { node_id, now })
            }
            RunMsg::LockWaiting { node, message } => state.step(
                &myself,
                Event::LockWaiting {
                    node_id: node,
                    message,
                },
            ),
            RunMsg::Lifecycle { request, reply }
                if state.waiting_for_locks && !matches!(request, Request::Stop { .. }) =>
            {
                let _ = reply.send(Err(format!(
                    "cannot {} a workflow waiting for its synchronization locks",
                    request.verb()
                )));
                Ok(())
            }
            RunMsg::Stop { terminate } => {
                let now = state.clock.now();
                state.step(&myself, Event::Stop { now, terminate })
            }
            // Already done when something needed the state persisted at once.
            RunMsg::Commit if !state.commit_queued => Ok(()),
            RunMsg::Commit => {
                let _ = state.commit(&myself);
                Ok(())
            }
            RunMsg::Lifecycle { request, reply } => {
                if let Err(refused) = state.run.check(&request) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                let now = state.clock.now();
                state.step(&myself, Event::Lifecycle { now, request })?;
                // The answer is the persisted state.
                let answer = match state.commit(&myself) {
                    Ok(()) => Ok(state.run.clone()),
                    Err(e) => Err(format!(
                        "accepted, but not yet stored (it is, and takes effect, once the store accepts writes again): {e}"
                    )),
                };
                let _ = reply.send(answer);
                Ok(())
            }
            RunMsg::Snapshot(reply) => {
                // A state the store does not hold yet is shown only with its `store_error`.
                if state.commit_queued {
                    let _ = state.commit(&myself);
                }
                let _ = reply.send(state.run.clone());
                Ok(())
            }
            RunMsg::AwaitCompletion(reply) => {
                if state.commit_queued {
                    let _ = state.commit(&myself);
                }
                if state.run.is_finished() && !state.commit_queued {
                    let _ = reply.send(state.run.clone());
                } else {
                    state.waiters.push(reply);
                }
                Ok(())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RunMsg>,
        state: &mut RunActorState,
    ) -> Result<(), ActorProcessingErr> {
        // Events applied and not yet committed: keep what they learnt (an outcome), without
        // acting on it; a restart acts.
        if state.commit_queued
            && let Err(e) = state.store.put_run(&state.run)
        {
            warn!(run = %state.run.name, error = %e, "cannot persist the run as its actor stops");
        }
        // Stopped with attempts still out (deleted, or the engine is shutting down): stop them
        // rather than leave processes behind; a restart relaunches what the machine wants.
        for (_, token) in state.running.values() {
            token.cancel();
        }
        for timer in &state.timers {
            timer.abort();
        }
        // Deleted or shutting down: whatever it held or waited for is given back.
        if let Some(gate) = &state.gate {
            let _ = gate.cast(GateMsg::ReleaseRun(state.run.name.clone()));
        }
        Ok(())
    }
}

/// The wait before the `failures`-th retry of a commit: 100 ms doubling to 5 s.
fn commit_backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(6);
    Duration::from_millis(100u64 << exponent).min(Duration::from_secs(5))
}

/// The histogram of [`RunActorState::step`]'s durations, in seconds, under Argo's name.
pub const OPERATION_DURATION_METRIC: &str = "argo_workflows_operation_duration_seconds";

impl RunActorState {
    /// Apply one event; its actions wait for the next commit.
    fn step(&mut self, myself: &ActorRef<RunMsg>, event: Event) -> Result<(), ActorProcessingErr> {
        let started = std::time::Instant::now();
        let actions = self.run.apply(event);
        // Argo's "operation": one reconciliation of one workflow (persisted with the next
        // commit, shared by the events queued with it).
        metrics::histogram!(OPERATION_DURATION_METRIC).record(started.elapsed().as_secs_f64());
        self.uncommitted.extend(actions);
        if !self.commit_queued {
            myself.cast(RunMsg::Commit)?;
            self.commit_queued = true;
        }
        Ok(())
    }

    /// Persist, publish, then perform the actions of every event applied since the last
    /// commit. When the store refuses the write (a full disk), nothing is performed: the
    /// error is published with the state ([`RunState::store_error`]) and the commit is tried
    /// again after a backoff, the actions waiting for it; the error is returned.
    fn commit(&mut self, myself: &ActorRef<RunMsg>) -> Result<(), crate::Error> {
        if let Err(e) = self.store.put_run(&self.run) {
            self.failed_commits = self.failed_commits.saturating_add(1);
            let delay = commit_backoff(self.failed_commits);
            warn!(
                run = %self.run.name,
                error = %e,
                retry_in_ms = delay.as_millis() as u64,
                "cannot store the run; its actions wait until it is stored"
            );
            self.commit_queued = true;
            self.run.store_error = Some(e.to_string());
            self.progress.send_replace(self.run.clone());
            myself.send_after(delay, || RunMsg::Commit);
            return Err(e);
        }
        self.commit_queued = false;
        if self.run.store_error.take().is_some() {
            info!(run = %self.run.name, failures = self.failed_commits, "run stored again");
        }
        self.failed_commits = 0;
        self.progress.send_replace(self.run.clone());
        for action in std::mem::take(&mut self.uncommitted) {
            if let Some(hook) = &self.on_action {
                hook(&action, &self.run);
            }
            self.perform(myself, action);
        }
        self.release_ended_nodes();
        Ok(())
    }

    /// Nodes with template-level locks that ended give them back (or stop waiting).
    fn release_ended_nodes(&mut self) {
        let Some(gate) = &self.gate else { return };
        let nodes = &self.run.nodes;
        let ended: Vec<String> = self
            .lock_nodes
            .iter()
            .filter(|id| nodes.get(id).is_none_or(|n| n.phase.is_done()))
            .cloned()
            .collect();
        for node_id in ended {
            self.lock_nodes.remove(&node_id);
            let _ = gate.cast(GateMsg::Release(Holder::node(&self.run.name, &node_id)));
        }
    }

    fn perform(&mut self, myself: &ActorRef<RunMsg>, action: Action) {
        match action {
            Action::Launch(spec) => self.launch(myself, *spec),
            Action::Cancel { node_id } => match self.running.get(&node_id) {
                Some((_, token)) => token.cancel(),
                None => {
                    debug!(run = %self.run.name, node = %node_id, "cancel of an attempt not running")
                }
            },
            Action::WakeAt { at } => {
                let delay = (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                let myself = myself.clone();
                self.timers.push(tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    // A stopped actor needs no timer.
                    let _ = myself.cast(RunMsg::Timer);
                }));
            }
            Action::DeleteArtifacts { repository, keys } => {
                match self.gc.iter_mut().find(|(r, _)| *r == repository) {
                    Some((_, known)) => known.extend(keys),
                    None => self.gc.push((repository, keys)),
                }
            }
            Action::Acquire {
                node_id,
                locks,
                priority,
            } => match &self.gate {
                Some(gate) => {
                    self.lock_nodes.insert(node_id.clone());
                    let _ = gate.cast(GateMsg::Request {
                        holder: Holder::node(&self.run.name, &node_id),
                        locks,
                        priority,
                        notify: myself.clone(),
                    });
                }
                // No gate (a bare actor in tests): nothing to wait for.
                None => {
                    let _ = myself.cast(RunMsg::LockGranted {
                        node: Some(node_id),
                    });
                }
            },
            Action::Finished => {
                // Everything held is given back as the run ends.
                if let Some(gate) = &self.gate {
                    let _ = gate.cast(GateMsg::ReleaseRun(self.run.name.clone()));
                }
                let waiters: Vec<_> = self.waiters.drain(..).collect();
                let gc = std::mem::take(&mut self.gc);
                let (executor, run, myself) =
                    (Arc::clone(&self.executor), self.run.clone(), myself.clone());
                // Waiters hear of the end once the artifacts to collect are gone.
                tokio::spawn(async move {
                    for (repository, keys) in gc.into_iter().filter(|(_, k)| !k.is_empty()) {
                        if let Err(e) = executor.delete_artifacts(repository, keys).await {
                            warn!(run = %run.name, error = %e, "artifact garbage collection failed");
                        }
                    }
                    for waiter in waiters {
                        let _ = waiter.send(run.clone());
                    }
                    myself.stop(Some("run finished".into()));
                });
            }
        }
    }

    fn next_attempt(&mut self) -> AttemptId {
        self.launched += 1;
        AttemptId {
            epoch: self.store.epoch(),
            seq: self.launched,
        }
    }

    /// Takes over an attempt launched by an earlier process ([`Executor::adopt`]).
    fn adopt(&mut self, myself: &ActorRef<RunMsg>, node_id: String, number: u32) {
        let run = self.run.name.clone();
        let node = node_id.clone();
        self.track(myself, node_id, move |executor, token| async move {
            let adopted = executor
                .adopt(run.clone(), node.clone(), number, token)
                .await;
            adopted.unwrap_or_else(|| {
                warn!(run = %run, node = %node, "step lost when its process stopped");
                StepOutcome::error(LOST_STEP_MESSAGE)
            })
        });
    }

    fn launch(&mut self, myself: &ActorRef<RunMsg>, spec: StepSpec) {
        let node_id = spec.node_id.clone();
        if self.running.contains_key(&node_id) {
            warn!(run = %self.run.name, node = %node_id, "launch of an attempt already running; ignored");
            return;
        }
        self.track(myself, node_id, move |executor, token| async move {
            executor.run(spec, token).await
        });
    }

    /// Registers a new attempt of `node_id` as running and runs `attempt` for it, which
    /// reports a `StepFinished` under the attempt's id.
    fn track<F, Fut>(&mut self, myself: &ActorRef<RunMsg>, node_id: String, attempt: F)
    where
        F: FnOnce(Arc<dyn Executor>, CancellationToken) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = StepOutcome> + Send + 'static,
    {
        let token = CancellationToken::new();
        let id = self.next_attempt();
        self.running.insert(node_id.clone(), (id, token.clone()));
        let executor = Arc::clone(&self.executor);
        let myself = myself.clone();
        let run = self.run.name.clone();
        tokio::spawn(async move {
            // The attempt runs in its own task so that an executor panic becomes an Error
            // outcome instead of a lost step.
            let task = tokio::spawn(attempt(executor, token));
            let outcome = match task.await {
                Ok(outcome) => outcome,
                Err(e) => {
                    warn!(run = %run, node = %node_id, error = %e, "executor task failed");
                    StepOutcome::error(format!("executor failed: {e}"))
                }
            };
            if myself
                .cast(RunMsg::StepFinished {
                    node_id,
                    attempt: id,
                    outcome,
                })
                .is_err()
            {
                debug!(run = %run, "step finished after its run actor stopped");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Phase;
    use crate::testsuite::{FakeExecutor, Match, Scripted, succeeded, workflow_from_yaml};

    const ONE_STEP: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: fenced}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    container: {image: busybox, command: [sh, -c, 'true']}\n";

    /// The arguments of an actor for a new run of [`ONE_STEP`] (stored), and its progress.
    fn one_step_run(
        store: Store,
        executor: Arc<dyn Executor>,
    ) -> (RunActorArgs, watch::Receiver<RunState>) {
        let run = RunState::new(workflow_from_yaml(ONE_STEP), Utc::now()).unwrap();
        store.create_run(&run, Utc::now()).unwrap();
        let (progress, watched) = watch::channel(run.clone());
        let args = RunActorArgs {
            run,
            store,
            executor,
            clock: Arc::new(SystemClock),
            progress,
            on_action: None,
            gate: None,
            run_locks: Vec::new(),
        };
        (args, watched)
    }

    /// Panics in every step it runs.
    struct Panicking;

    impl Executor for Panicking {
        fn run(
            &self,
            _spec: StepSpec,
            _cancel: CancellationToken,
        ) -> cox_worker::step::BoxFuture<'_, StepOutcome> {
            Box::pin(async { panic!("the executor broke") })
        }

        fn log_path(&self, _run: &str, _node: &str, _attempt: u32) -> Option<std::path::PathBuf> {
            None
        }
    }

    #[tokio::test]
    async fn an_executor_panic_is_the_step_s_error_not_a_lost_step() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (args, _watched) = one_step_run(store, Arc::new(Panicking));
        let (actor, handle) = Actor::spawn(None, RunActor, args).await.unwrap();
        let done = ractor::call_t!(actor, RunMsg::AwaitCompletion, 10_000).unwrap();
        assert_eq!(done.phase(), Phase::Error, "{done:?}");
        let step = done
            .nodes
            .values()
            .find(|n| n.message.contains("executor failed"))
            .unwrap_or_else(|| panic!("no node says the executor failed: {done:?}"));
        assert!(
            step.message.contains("the executor broke"),
            "{}",
            step.message
        );
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn a_late_result_of_a_stale_attempt_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let epoch = store.epoch();
        let executor = FakeExecutor::new();
        executor.attach_store(store.clone());
        executor.script(Match::Template("main".into()), Scripted::hang());
        let (args, mut watched) = one_step_run(store, executor.clone());
        let (actor, handle) = Actor::spawn(None, RunActor, args).await.unwrap();
        let running = watched
            .wait_for(|s| !s.running_steps().is_empty())
            .await
            .unwrap()
            .running_steps();
        let [node_id] = running.as_slice() else {
            panic!("one step running, got {running:?}");
        };

        // The first launch of this actor is seq 1 of this epoch: anything else is stale.
        let stale = [
            AttemptId {
                epoch: epoch - 1,
                seq: 1,
            },
            AttemptId { epoch, seq: 2 },
        ];
        for attempt in stale {
            actor
                .cast(RunMsg::StepFinished {
                    node_id: node_id.clone(),
                    attempt,
                    outcome: StepOutcome::error("late"),
                })
                .unwrap();
        }
        let snapshot = ractor::call_t!(actor, RunMsg::Snapshot, 10_000).unwrap();
        assert_eq!(executor.launch_count(), 1);
        assert_eq!(
            snapshot.nodes[node_id].phase,
            Phase::Running,
            "{snapshot:?}"
        );
        assert_eq!(snapshot.phase(), Phase::Running);

        actor
            .cast(RunMsg::StepFinished {
                node_id: node_id.clone(),
                attempt: AttemptId { epoch, seq: 1 },
                outcome: succeeded(None),
            })
            .unwrap();
        let done = ractor::call_t!(actor, RunMsg::AwaitCompletion, 10_000).unwrap();
        assert_eq!(done.phase(), Phase::Succeeded);
        assert_eq!(done.nodes[node_id].phase, Phase::Succeeded);
        handle.await.unwrap();
    }
}
