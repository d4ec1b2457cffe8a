//! The local engine: a home directory, its store, and one [`RunActor`] per live run.
//!
//! `cox run` opens an engine, submits a workflow and awaits it; `cox get/list/delete` open
//! one to read the store. The executor is passed in, so tests run with a fake.
//!
//! # Home
//! `COX_HOME` if set, else `$XDG_DATA_HOME/coxswain`, else `~/.local/share/coxswain`.
//! The store is `<home>/store`; only one process can have it open (see [`crate::store`]).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::SecondsFormat;
use cox_config::model::Workflow;
use cox_worker::step::Executor;
use ractor::{Actor, ActorRef};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::actor::{ActionHook, Clock, RunActor, RunActorArgs, RunMsg, SystemClock};
use crate::cache::{MemoizingExecutor, StepCache};
use crate::error::{Error, Result};
use crate::machine::{Request, RetryOptions, RunState};
use crate::store::{RunSummary, Store};
use crate::sync::actor::{GateActor, GateArgs, GateMsg, ParallelismLimits};
use crate::sync::{Holder, LockStatus};

/// Argo's (Kubernetes') alphabet for generated name suffixes: no vowels, no look-alikes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const NAME_SUFFIX_LEN: usize = 5;

/// The home directory from the environment: `COX_HOME`, else `$XDG_DATA_HOME/coxswain`,
/// else `$HOME/.local/share/coxswain`.
pub fn default_home() -> Result<PathBuf> {
    home_from(|key| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

fn home_from(var: impl Fn(&str) -> Option<PathBuf>) -> Result<PathBuf> {
    if let Some(home) = var("COX_HOME") {
        return Ok(home);
    }
    if let Some(data) = var("XDG_DATA_HOME") {
        return Ok(data.join("coxswain"));
    }
    var("HOME")
        .map(|home| home.join(".local/share/coxswain"))
        .ok_or(Error::NoHome)
}

/// How to open an [`Engine`].
#[derive(Clone)]
pub struct EngineConfig {
    /// The home directory (the store is `<home>/store`).
    pub home: PathBuf,
    /// What runs the steps.
    pub executor: Arc<dyn Executor>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// How long to wait for another process to release the store before failing.
    pub lock_wait: Duration,
    /// Called before each action of each run is performed (tests).
    pub on_action: Option<ActionHook>,
    /// Workflows running at once, on the whole engine and per namespace.
    pub parallelism: ParallelismLimits,
}

impl EngineConfig {
    /// A configuration with the system clock, failing at once when the store is busy.
    pub fn new(home: impl Into<PathBuf>, executor: Arc<dyn Executor>) -> EngineConfig {
        EngineConfig {
            home: home.into(),
            executor,
            clock: Arc::new(SystemClock),
            lock_wait: Duration::ZERO,
            on_action: None,
            parallelism: ParallelismLimits::default(),
        }
    }
}

/// How many run events a slow subscriber may fall behind before it is told it lagged.
const RUN_EVENTS_BUFFER: usize = 1024;

/// A change to the set of runs, for those who watch every run (`workflow-events`);
/// each live run's own progress is [`Engine::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// A run's actor started (a new run, or a stored one resumed).
    Started(String),
    /// A run was deleted.
    Deleted(String),
}

struct LiveRun {
    actor: ActorRef<RunMsg>,
    progress: watch::Receiver<RunState>,
    handle: JoinHandle<()>,
}

/// The local engine (see the module doc).
pub struct Engine {
    home: PathBuf,
    store: Store,
    executor: Arc<dyn Executor>,
    clock: Arc<dyn Clock>,
    on_action: Option<ActionHook>,
    live: Mutex<HashMap<String, LiveRun>>,
    events: broadcast::Sender<RunEvent>,
    parallelism: ParallelismLimits,
    /// The concurrency gate ([`crate::sync`]), started with the first run.
    gate: tokio::sync::OnceCell<GateHandle>,
}

/// The gate actor and its task (taken when the engine shuts down).
type GateHandle = (ActorRef<GateMsg>, Mutex<Option<JoinHandle<()>>>);

impl Engine {
    /// Open the home's store (creating the home).
    pub fn open(config: EngineConfig) -> Result<Engine> {
        let store = Store::open_waiting(&config.home.join("store"), config.lock_wait).map_err(
            |e| match e {
                // Name the home, which is what the user set, rather than its store directory.
                Error::Locked { .. } => Error::Locked {
                    home: config.home.clone(),
                },
                other => other,
            },
        )?;
        // Buckets that name Secrets get their keys from the store, at launch.
        config.executor.use_secrets(Arc::new(store.clone()));
        // Memoized steps (template `memoize`) are answered from the store's step cache.
        let executor = Arc::new(MemoizingExecutor::new(
            config.executor,
            StepCache::new(store.clone()),
            Arc::clone(&config.clock),
        ));
        Ok(Engine {
            home: config.home,
            store,
            executor,
            clock: config.clock,
            on_action: config.on_action,
            live: Mutex::new(HashMap::new()),
            events: broadcast::channel(RUN_EVENTS_BUFFER).0,
            parallelism: config.parallelism,
            gate: tokio::sync::OnceCell::new(),
        })
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The step cache (memoized outcomes), in the store.
    pub fn cache(&self) -> StepCache {
        StepCache::new(self.store.clone())
    }

    /// Now, by the engine's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// Record a new run of `workflow` and start it; returns the run's name (`metadata.name`,
    /// or `generateName` and five random characters, as Argo names runs).
    pub async fn submit(&self, workflow: Workflow) -> Result<String> {
        self.create(workflow, RunState::new).await
    }

    /// Store a new run of `workflow`, named (its name, or its `generateName` and a random
    /// suffix), its state made by `state`; then start it.
    async fn create(
        &self,
        mut workflow: Workflow,
        state: impl Fn(Workflow, chrono::DateTime<chrono::Utc>) -> std::result::Result<RunState, String>,
    ) -> Result<String> {
        let now = self.clock.now();
        let fixed_name = workflow.metadata.name.clone().filter(|n| !n.is_empty());
        let prefix = workflow
            .metadata
            .generate_name
            .clone()
            .filter(|n| !n.is_empty());
        if fixed_name.is_none() && prefix.is_none() {
            return Err(Error::Submit(
                "metadata: name or generateName is required".into(),
            ));
        }
        workflow.metadata.creation_timestamp = Some(now.to_rfc3339_opts(SecondsFormat::Secs, true));
        // Resolving reads stored objects: when that failed because the store itself is
        // failing (a full disk), its own error says so, not the field being resolved.
        crate::resolve::resolve(&mut workflow, &self.store)
            .map_err(|e| self.store.flush().err().unwrap_or(Error::Submit(e)))?;
        crate::resolve::check_run_repository(&workflow, |l| self.executor.check_repository(l))
            .map_err(Error::Submit)?;
        let mut attempts = 0;
        let state = loop {
            let name = match (&fixed_name, &prefix) {
                (Some(name), _) => name.clone(),
                (None, Some(prefix)) => format!("{prefix}{}", random_suffix()),
                (None, None) => unreachable!("checked above"),
            };
            workflow.metadata.name = Some(name.clone());
            let state = state(workflow.clone(), now).map_err(Error::Submit)?;
            match self.store.create_run(&state, now) {
                Ok(()) => break state,
                // A generated name that is taken is drawn again; a given one is the user's to change.
                Err(Error::RunExists(_)) if fixed_name.is_none() && attempts < 10 => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        let name = state.name.clone();
        info!(run = %name, "submitted");
        self.start(state).await?;
        Ok(name)
    }

    /// Resubmit a stored run as a new one (Argo's `resubmit`): the same workflow under a
    /// generated name, `parameters` set; with `memoized` (the run must have failed) what
    /// succeeded is reused, not run again. The new run's name.
    pub async fn resubmit(
        &self,
        name: &str,
        memoized: bool,
        parameters: &[(String, String)],
    ) -> Result<String> {
        let mut old = self
            .store
            .get_run(name)?
            .ok_or_else(|| Error::RunNotFound(name.to_string()))?;
        let workflow = old.resubmission(parameters).map_err(Error::Submit)?;
        if memoized {
            self.create(workflow, |workflow, now| {
                RunState::memoized_from(&old, workflow, now)
            })
            .await
        } else {
            self.submit(workflow).await
        }
    }

    /// Retry a stored, failed run in place (Argo's `retry`): what failed, and the succeeded
    /// nodes `options` selects, run again.
    pub async fn retry(&self, name: &str, options: &RetryOptions) -> Result<()> {
        if self.lock_live().contains_key(name) {
            return Err(Error::Submit(format!("workflow {name} is still running")));
        }
        let mut state = self
            .store
            .get_run(name)?
            .ok_or_else(|| Error::RunNotFound(name.to_string()))?;
        state
            .retry(options, self.clock.now())
            .map_err(Error::Submit)?;
        // A retried run with workflow-level locks queues for them again.
        if !self.run_locks(&mut state).is_empty() {
            state.wait_for_locks();
        }
        self.store.replace_run(&state)?;
        info!(run = %name, "retried");
        self.start(state).await
    }

    /// Start the actors of runs left unfinished (after a crash or a stop); their names.
    /// A run with a record that cannot be read is quarantined ([`Store::quarantine_run`]):
    /// stored as ended in Error, saying why, never resumed; the others go on.
    ///
    /// The locks their stored state says they hold are given to the gate first, all of
    /// them, so that no waiter is admitted past a holder that is not started yet; then the
    /// runs start in stored (submission) order, which is the order waiters of one priority
    /// queue again. The gate admits nobody until every resumed run has asked for what it
    /// waits for (its workflow's locks as it starts, its steps' as its `Start` is
    /// performed): a lock free after the restart goes to the highest priority waiter of
    /// all, not to the first run started.
    pub async fn resume_unfinished(&self) -> Result<Vec<String>> {
        for (name, error) in self.store.unreadable_runs()? {
            self.quarantine(&name, &error)?;
        }
        let mut names = self.store.unfinished_runs()?;
        let mut states = Vec::with_capacity(names.len());
        for name in names.drain(..) {
            if self.lock_live().contains_key(&name) {
                continue;
            }
            match self.store.get_run(&name) {
                Ok(Some(state)) if !state.is_finished() => states.push(state),
                Ok(_) => {}
                Err(e @ Error::Record { .. }) => self.quarantine(&name, &e)?,
                Err(e) => return Err(e),
            }
        }
        for state in &mut states {
            self.restore_locks(state).await?;
        }
        // (Errors name the first run with locks: the one the gate is held for first.)
        let gated = states
            .iter_mut()
            .find_map(|s| self.uses_gate(s).then(|| s.name.clone()));
        let gate = match gated {
            Some(first) => {
                let gate = self.gate().await?;
                cast_to_gate(&gate, GateMsg::Hold, &first)?;
                Some((gate, first))
            }
            None => None,
        };
        let mut resumed = Vec::with_capacity(states.len());
        let started = async {
            for state in states {
                let name = state.name.clone();
                self.start(state).await?;
                resumed.push(name);
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Some((gate, first)) = gate {
            // A run's `Start` is performed before it answers (its steps' requests are then
            // cast to the gate, ahead of `Open`). One that does not answer is not waited for.
            for name in &resumed {
                if let Err(e) = self.snapshot(name).await {
                    warn!(run = %name, error = %e, "resumed run did not settle; the gate opens without it");
                }
            }
            cast_to_gate(&gate, GateMsg::Open, &first)?;
        }
        started?;
        Ok(resumed)
    }

    /// Whether a run has anything to do with the gate: locks of its own or of the engine,
    /// or `synchronization` in its workflow (its steps').
    fn uses_gate(&self, state: &mut RunState) -> bool {
        !self.run_locks(state).is_empty() || state.workflow_json.contains("synchronization")
    }

    fn quarantine(&self, name: &str, error: &Error) -> Result<()> {
        warn!(run = %name, %error, "run quarantined: a record of it is unreadable");
        self.store
            .quarantine_run(name, &error.to_string(), self.clock.now())
            .map(drop)
    }

    /// The gate, started on first use.
    async fn gate(&self) -> Result<ActorRef<GateMsg>> {
        let (gate, _) = self
            .gate
            .get_or_try_init(|| async {
                let args = GateArgs {
                    store: self.store.clone(),
                    parallelism: self.parallelism,
                    clock: Arc::clone(&self.clock),
                };
                let (gate, handle) =
                    Actor::spawn(None, GateActor, args)
                        .await
                        .map_err(|e| Error::Actor {
                            run: "sync-gate".into(),
                            message: format!("cannot start the concurrency gate: {e}"),
                        })?;
                Ok::<_, Error>((gate, Mutex::new(Some(handle))))
            })
            .await?;
        Ok(gate.clone())
    }

    /// The locks a run holds by its stored state, told to the gate (see
    /// [`crate::sync`], "Durability"); nothing for a run that holds none.
    async fn restore_locks(&self, state: &mut RunState) -> Result<()> {
        let now = self.clock.now();
        let mut holdings = state.node_holdings(now);
        if state.holds_workflow_locks() {
            let locks = self.run_locks(state);
            if !locks.is_empty() {
                holdings.push((Holder::run(&state.name), locks));
            }
        }
        if holdings.is_empty() {
            return Ok(());
        }
        let gate = self.gate().await?;
        for (holder, locks) in holdings {
            cast_to_gate(&gate, GateMsg::Restore { holder, locks }, &state.name)?;
        }
        Ok(())
    }

    /// What the whole run must hold while it runs: its `spec.synchronization` locks and the
    /// engine's workflow parallelism.
    fn run_locks(&self, state: &mut RunState) -> Vec<crate::sync::Lock> {
        let mut locks = state.workflow_locks(self.clock.now());
        locks.extend(self.parallelism.locks(&state.namespace()));
        locks
    }

    /// Every lock (of `namespace`, when given) with its limit, holders and waiters.
    pub async fn sync_status(&self, namespace: Option<&str>) -> Result<Vec<LockStatus>> {
        let gate = self.gate().await?;
        let namespace = namespace.map(str::to_string);
        ractor::call_t!(gate, |reply| GateMsg::Status { namespace, reply }, 5_000).map_err(|e| {
            Error::Actor {
                run: "sync-gate".into(),
                message: format!("no answer: {e}"),
            }
        })
    }

    /// The locks as the store says they are, without a running gate (`cox sync list` with
    /// no server): unfinished runs that started hold their locks, those still pending wait
    /// for them (in stored order), launched steps hold their templates' locks.
    pub fn stored_sync_status(&self, namespace: Option<&str>) -> Result<Vec<LockStatus>> {
        let now = self.clock.now();
        let mut gate = crate::sync::Gate::default();
        for name in self.store.unfinished_runs()? {
            let Some(mut state) = self.store.get_run(&name)? else {
                continue;
            };
            let run_locks = self.run_locks(&mut state);
            if !run_locks.is_empty() {
                let holder = Holder::run(&state.name);
                if state.holds_workflow_locks() {
                    let since = state
                        .started_at
                        .as_deref()
                        .and_then(crate::machine::parse_ts)
                        .unwrap_or(now);
                    gate.restore(holder, run_locks, since);
                } else {
                    let priority = state.priority();
                    let since = state
                        .workflow()
                        .ok()
                        .and_then(|wf| wf.metadata.creation_timestamp.clone())
                        .as_deref()
                        .and_then(crate::machine::parse_ts)
                        .unwrap_or(now);
                    gate.request(holder, run_locks, priority, since);
                }
            }
            for (holder, locks) in state.node_holdings(now) {
                gate.restore(holder, locks, now);
            }
        }
        for lock in gate.unknown_limits() {
            let limit = crate::sync::actor::limit_of(&self.store, &self.parallelism, &lock);
            gate.set_limit(&lock.key, limit);
        }
        Ok(gate.status(namespace, now))
    }

    /// ConfigMaps changed: semaphore limits are looked up again (and waiters admitted).
    pub fn refresh_sync_limits(&self) {
        if let Some((gate, _)) = self.gate.get() {
            let _ = gate.cast(GateMsg::RefreshLimits);
        }
    }

    /// Start the actor of a stored, unfinished run (the machine gets `Start` again).
    pub async fn resume(&self, name: &str) -> Result<()> {
        if self.lock_live().contains_key(name) {
            return Ok(());
        }
        let state = self
            .store
            .get_run(name)?
            .ok_or_else(|| Error::RunNotFound(name.to_string()))?;
        if state.is_finished() {
            return Ok(());
        }
        self.start(state).await
    }

    async fn start(&self, mut state: RunState) -> Result<()> {
        let name = state.name.clone();
        // A run that holds locks by its state (resumed, retried) has them counted first.
        self.restore_locks(&mut state).await?;
        let run_locks = self.run_locks(&mut state);
        // The gate (and the store it reads limits from) is started only once a run has
        // anything to do with locks.
        let gate = if !run_locks.is_empty() || state.workflow_json.contains("synchronization") {
            Some(self.gate().await?)
        } else {
            self.gate.get().map(|(gate, _)| gate.clone())
        };
        let (progress_tx, progress) = watch::channel(state.clone());
        let args = RunActorArgs {
            run: state,
            store: self.store.clone(),
            executor: Arc::clone(&self.executor),
            clock: Arc::clone(&self.clock),
            progress: progress_tx,
            on_action: self.on_action.clone(),
            gate,
            run_locks,
        };
        let (actor, handle) =
            Actor::spawn(None, RunActor, args)
                .await
                .map_err(|e| Error::Actor {
                    run: name.clone(),
                    message: format!("cannot start: {e}"),
                })?;
        self.lock_live().insert(
            name.clone(),
            LiveRun {
                actor,
                progress,
                handle,
            },
        );
        // Nobody listening is fine.
        let _ = self.events.send(RunEvent::Started(name));
        Ok(())
    }

    /// Runs starting and being deleted, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.events.subscribe()
    }

    /// Each new state of a live run, as it is persisted (for progress display).
    pub fn watch(&self, name: &str) -> Option<watch::Receiver<RunState>> {
        self.lock_live().get(name).map(|live| live.progress.clone())
    }

    /// The current state of a live run, from its actor.
    pub async fn snapshot(&self, name: &str) -> Result<RunState> {
        let actor = self.lock_live().get(name).map(|live| live.actor.clone());
        match actor {
            Some(actor) => {
                ractor::call_t!(actor, RunMsg::Snapshot, 5_000).map_err(|e| Error::Actor {
                    run: name.to_string(),
                    message: format!("no answer: {e}"),
                })
            }
            None => self
                .get(name)?
                .ok_or_else(|| Error::RunNotFound(name.to_string())),
        }
    }

    /// Wait until the run has finished and its actor has stopped; its final state.
    pub async fn await_completion(&self, name: &str) -> Result<RunState> {
        // The run stays live (stoppable, deletable) while it is awaited.
        let progress = self.lock_live().get(name).map(|live| live.progress.clone());
        let Some(mut progress) = progress else {
            // Not live: finished earlier, or never started in this process.
            let state = self
                .get(name)?
                .ok_or_else(|| Error::RunNotFound(name.to_string()))?;
            if state.is_finished() {
                return Ok(state);
            }
            return Err(Error::Actor {
                run: name.to_string(),
                message: "not running in this process".into(),
            });
        };
        // The watch closes when the actor stops, finished or not; the store says which.
        let _ = progress.wait_for(RunState::is_finished).await;
        let handle = self.lock_live().remove(name).map(|live| live.handle);
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        let state = self
            .get(name)?
            .ok_or_else(|| Error::RunNotFound(name.to_string()))?;
        if state.is_finished() {
            Ok(state)
        } else {
            Err(Error::Actor {
                run: name.to_string(),
                message: "run actor stopped before the run finished".into(),
            })
        }
    }

    /// Stop a live run, as Argo's `stop` (exit handlers run) or `terminate` (they do not).
    pub fn stop(&self, name: &str, terminate: bool) -> Result<()> {
        let actor = self.lock_live().get(name).map(|live| live.actor.clone());
        let actor = actor.ok_or_else(|| Error::RunNotFound(name.to_string()))?;
        actor
            .cast(RunMsg::Stop { terminate })
            .map_err(|e| Error::Actor {
                run: name.to_string(),
                message: format!("cannot stop: {e}"),
            })
    }

    /// The live actor of a run; a stored run that is not live has finished (`verb` says what
    /// cannot be done to it then).
    fn live_actor(&self, name: &str, verb: &str) -> Result<ActorRef<RunMsg>> {
        if let Some(actor) = self.lock_live().get(name).map(|live| live.actor.clone()) {
            return Ok(actor);
        }
        match self.get(name)? {
            Some(state) if state.is_finished() => Err(Error::Lifecycle {
                run: name.to_string(),
                message: format!("cannot {verb} a completed workflow"),
            }),
            Some(_) => Err(Error::Actor {
                run: name.to_string(),
                message: "not running in this process".into(),
            }),
            None => Err(Error::RunNotFound(name.to_string())),
        }
    }

    /// Suspend, resume, stop or set nodes of a live run (see [`Request`]); the new state
    /// once persisted, or [`Error::Lifecycle`] with why the request was refused.
    pub async fn request(&self, name: &str, request: Request) -> Result<RunState> {
        let actor = self.live_actor(name, request.verb())?;
        let answer = ractor::call_t!(actor, |reply| RunMsg::Lifecycle { request, reply }, 5_000)
            .map_err(|e| Error::Actor {
                run: name.to_string(),
                message: format!("no answer: {e}"),
            })?;
        answer.map_err(|message| Error::Lifecycle {
            run: name.to_string(),
            message,
        })
    }

    /// Submit and wait for the end: the final state.
    pub async fn run_to_completion(&self, workflow: Workflow) -> Result<RunState> {
        let name = self.submit(workflow).await?;
        self.await_completion(&name).await
    }

    /// A run's stored state; while its latest state cannot be stored (a full disk), with
    /// why ([`RunState::store_error`]).
    pub fn get(&self, name: &str) -> Result<Option<RunState>> {
        let mut state = self.store.get_run(name)?;
        if let Some(state) = &mut state {
            let live = self.lock_live();
            if let Some(live) = live.get(name) {
                state
                    .store_error
                    .clone_from(&live.progress.borrow().store_error);
            }
        }
        Ok(state)
    }

    /// Every stored run, oldest first.
    pub fn list(&self) -> Result<Vec<RunSummary>> {
        self.store.list_runs()
    }

    /// Stop a run (cancelling its running steps) and remove it; whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool> {
        let live = self.lock_live().remove(name);
        if let Some(live) = live {
            live.actor.stop(Some("run deleted".into()));
            let _ = live.handle.await;
        }
        // artifactGC OnWorkflowDeletion: the artifacts go first; the run stays if they cannot.
        if let Some(mut run) = self.store.get_run(name)? {
            let batches = match run.workflow() {
                Ok(wf) => {
                    let wf = wf.clone();
                    run.artifact_gc(&wf, crate::machine::GC_ON_DELETION)
                }
                Err(_) => Vec::new(),
            };
            for (repository, keys) in batches {
                self.executor
                    .delete_artifacts(repository, keys)
                    .await
                    .map_err(|message| Error::ArtifactGc {
                        run: name.to_string(),
                        message,
                    })?;
            }
        }
        let existed = self.store.delete_run(name)?;
        if existed {
            let _ = self.events.send(RunEvent::Deleted(name.to_string()));
        }
        Ok(existed)
    }

    /// Stop every live run's actor (their steps are cancelled); the store keeps them for
    /// [`Engine::resume_unfinished`].
    pub async fn shutdown(&self) {
        // The gate goes first: runs stopping now give their locks back, and nobody may be
        // admitted (and started) on the strength of that while the engine shuts down.
        if let Some((gate, handle)) = self.gate.get() {
            gate.stop(Some("engine shutting down".into()));
            let handle = handle.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(handle) = handle {
                let _ = handle.await;
            }
        }
        let live: Vec<LiveRun> = self.lock_live().drain().map(|(_, live)| live).collect();
        for run in live {
            run.actor.stop(Some("engine shutting down".into()));
            let _ = run.handle.await;
        }
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveRun>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The gate holds the store open: it goes with the engine.
        if let Some((gate, _)) = self.gate.get() {
            gate.stop(Some("engine dropped".into()));
        }
    }
}

/// Casts `message` to the gate; `run` is whose business it is (for the error).
fn cast_to_gate(gate: &ActorRef<GateMsg>, message: GateMsg, run: &str) -> Result<()> {
    gate.cast(message).map_err(|e| Error::Actor {
        run: run.to_string(),
        message: format!("cannot reach the concurrency gate: {e}"),
    })
}

/// Five characters from Argo's alphabet, random enough to tell runs apart.
fn random_suffix() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    let mut bits = hasher.finish();
    let base = NAME_ALPHABET.len() as u64;
    (0..NAME_SUFFIX_LEN)
        .map(|_| {
            let c = NAME_ALPHABET[(bits % base) as usize];
            bits /= base;
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_prefers_cox_home_then_xdg_then_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                vars.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| PathBuf::from(v))
            }
        };
        const ALL: &[(&str, &str)] = &[("COX_HOME", "/c"), ("XDG_DATA_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(home_from(env(ALL)).unwrap(), PathBuf::from("/c"));
        assert_eq!(
            home_from(env(&ALL[1..])).unwrap(),
            PathBuf::from("/x/coxswain")
        );
        assert_eq!(
            home_from(env(&ALL[2..])).unwrap(),
            PathBuf::from("/h/.local/share/coxswain")
        );
        assert!(matches!(home_from(env(&[])), Err(Error::NoHome)));
    }

    #[test]
    fn suffixes_are_five_characters_of_the_alphabet() {
        let a = random_suffix();
        assert_eq!(a.len(), NAME_SUFFIX_LEN);
        assert!(a.bytes().all(|c| NAME_ALPHABET.contains(&c)));
        let distinct: std::collections::HashSet<String> =
            (0..50).map(|_| random_suffix()).collect();
        assert!(distinct.len() > 40);
    }
}
