//! A test harness for the scheduler and the crates above it (feature `testsuite`).
//!
//! - [`FakeExecutor`]: scripted outcomes per template or node name, launch counters,
//!   one-line fault injection ([`FakeExecutor::fail_next_launch`]).
//! - [`SchedulerTest`]: an [`Engine`] on a temporary home with a fake executor, `submit`,
//!   `await_completion`, `restart`, and a record of every action with whether the store already
//!   held the state that produced it.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use cox_config::model::{Manifest, Workflow};
use cox_worker::step::{BoxFuture, Executor, StepOutcome, StepPhase, StepSpec};
use tokio_util::sync::CancellationToken;

use crate::codec;
use crate::engine::{Engine, EngineConfig};
use crate::machine::{Action, Node, RunState};
use crate::store::Store;

/// Which launches a script applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Nodes running this template.
    Template(String),
    /// Nodes with this display name or full name.
    Node(String),
}

/// One scripted attempt: its outcome, and how long it runs first.
#[derive(Debug, Clone)]
pub struct Scripted {
    /// The outcome returned.
    pub outcome: StepOutcome,
    /// How long the attempt takes (tokio time, so paused tests advance it).
    pub duration: Duration,
    /// Run until cancelled instead of for `duration`.
    pub until_cancelled: bool,
    /// Wait for this to be notified (then `duration`) before ending.
    pub gate: Option<Arc<tokio::sync::Notify>>,
}

impl Scripted {
    /// Ends at once with `outcome`.
    pub fn now(outcome: StepOutcome) -> Scripted {
        Scripted {
            outcome,
            duration: Duration::ZERO,
            until_cancelled: false,
            gate: None,
        }
    }

    /// Ends with `outcome` once `gate` is notified (`notify_one`, before or after the
    /// launch).
    pub fn gated(outcome: StepOutcome, gate: Arc<tokio::sync::Notify>) -> Scripted {
        Scripted {
            gate: Some(gate),
            ..Scripted::now(outcome)
        }
    }

    /// Ends with `outcome` after `duration`.
    pub fn after(outcome: StepOutcome, duration: Duration) -> Scripted {
        Scripted {
            duration,
            ..Scripted::now(outcome)
        }
    }

    /// Runs until cancelled.
    pub fn hang() -> Scripted {
        Scripted {
            until_cancelled: true,
            ..Scripted::now(succeeded(None))
        }
    }
}

/// A successful outcome with an optional `outputs.result`.
pub fn succeeded(result: Option<&str>) -> StepOutcome {
    StepOutcome {
        phase: StepPhase::Succeeded,
        exit_code: Some(0),
        message: String::new(),
        result: result.map(str::to_string),
        ..StepOutcome::error("")
    }
}

/// A failed outcome with Argo's message for the exit code.
pub fn failed(exit_code: i32) -> StepOutcome {
    StepOutcome {
        phase: StepPhase::Failed,
        exit_code: Some(exit_code),
        message: format!("Error (exit code {exit_code})"),
        ..StepOutcome::error("")
    }
}

/// One launch the fake saw.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The spec it was given.
    pub spec: StepSpec,
    /// The node as the store held it when the launch happened (None: not persisted, or no
    /// store attached).
    pub stored_node: Option<Node>,
    /// Whether the attempt was cancelled.
    pub cancelled: bool,
}

#[derive(Default)]
struct FakeInner {
    rules: Vec<(Match, VecDeque<Scripted>)>,
    fail_next: usize,
    launches: Vec<Launch>,
}

/// An executor that runs nothing: each launch gets the next scripted outcome of the first
/// matching rule (the last one repeats), or success.
#[derive(Default)]
pub struct FakeExecutor {
    inner: Mutex<FakeInner>,
    store: Mutex<Option<Store>>,
    /// What adopting an attempt of an earlier process gives (`None`: it was lost).
    adopted: Mutex<Option<StepOutcome>>,
    /// Artifact keys deleted through [`Executor::delete_artifacts`].
    deleted: Mutex<Vec<String>>,
}

impl FakeExecutor {
    /// A fake where every step succeeds.
    pub fn new() -> Arc<FakeExecutor> {
        Arc::new(FakeExecutor::default())
    }

    /// Let the fake read the store, to match by template or node name (the spec names only
    /// the node id) and to record what was persisted when each launch happened.
    pub fn attach_store(&self, store: Store) {
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = Some(store);
    }

    /// Let go of the store (it stays locked while anything holds it).
    pub fn detach_store(&self) {
        *self.store.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Append `scripted` to the rule for `matcher`.
    pub fn script(&self, matcher: Match, scripted: Scripted) {
        let mut inner = self.lock();
        match inner.rules.iter_mut().find(|(m, _)| *m == matcher) {
            Some((_, queue)) => queue.push_back(scripted),
            None => inner.rules.push((matcher, VecDeque::from([scripted]))),
        }
    }

    /// Steps running `template` end with `outcome`.
    pub fn on_template(&self, template: &str, outcome: StepOutcome) {
        self.script(Match::Template(template.into()), Scripted::now(outcome));
    }

    /// The node with this display or full name ends with `outcome`.
    pub fn on_node(&self, node: &str, outcome: StepOutcome) {
        self.script(Match::Node(node.into()), Scripted::now(outcome));
    }

    /// Attempts launched by an earlier process are adopted with `outcome` (they ended
    /// while no scheduler ran); by default they are lost.
    pub fn on_adopt(&self, outcome: StepOutcome) {
        *self.adopted.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    }

    /// The next launch fails with an Error outcome, as if the step could not be started.
    pub fn fail_next_launch(&self) {
        self.lock().fail_next += 1;
    }

    /// How many attempts were launched.
    pub fn launch_count(&self) -> usize {
        self.lock().launches.len()
    }

    /// Every launch so far, in order.
    pub fn launches(&self) -> Vec<Launch> {
        self.lock().launches.clone()
    }

    /// How many attempts ran `template`.
    pub fn launch_count_of(&self, template: &str) -> usize {
        self.lock()
            .launches
            .iter()
            .filter(|l| {
                l.stored_node
                    .as_ref()
                    .and_then(|n| n.template_name.as_deref())
                    == Some(template)
            })
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stored_node(&self, spec: &StepSpec) -> Option<Node> {
        let store = self
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let run = store.get_run(&spec.run).ok()??;
        run.nodes.get(&spec.node_id).cloned()
    }

    /// Record the launch and pick its script; the launch's index too.
    fn plan(&self, spec: &StepSpec) -> (usize, Scripted) {
        let stored_node = self.stored_node(spec);
        let mut inner = self.lock();
        let index = inner.launches.len();
        let scripted = if inner.fail_next > 0 {
            inner.fail_next -= 1;
            Scripted::now(StepOutcome::error("injected launch failure"))
        } else {
            let matches = |m: &Match| match (m, &stored_node) {
                (Match::Template(t), Some(node)) => {
                    node.template_name.as_deref() == Some(t.as_str())
                }
                (Match::Node(n), Some(node)) => node.display_name == *n || node.name == *n,
                (_, None) => false,
            };
            match inner.rules.iter_mut().find(|(m, _)| matches(m)) {
                Some((_, queue)) if queue.len() > 1 => queue
                    .pop_front()
                    .unwrap_or_else(|| Scripted::now(succeeded(None))),
                Some((_, queue)) => queue
                    .front()
                    .cloned()
                    .unwrap_or_else(|| Scripted::now(succeeded(None))),
                None => Scripted::now(succeeded(None)),
            }
        };
        inner.launches.push(Launch {
            spec: spec.clone(),
            stored_node,
            cancelled: false,
        });
        (index, scripted)
    }
}

impl Executor for FakeExecutor {
    fn run(&self, spec: StepSpec, cancel: CancellationToken) -> BoxFuture<'_, StepOutcome> {
        Box::pin(async move {
            let (index, scripted) = self.plan(&spec);
            let run_for = async {
                if let Some(gate) = &scripted.gate {
                    gate.notified().await;
                }
                if scripted.until_cancelled {
                    std::future::pending::<()>().await
                } else {
                    tokio::time::sleep(scripted.duration).await
                }
            };
            tokio::select! {
                () = run_for => scripted.outcome,
                () = cancel.cancelled() => {
                    if let Some(launch) = self.lock().launches.get_mut(index) {
                        launch.cancelled = true;
                    }
                    StepOutcome {
                        phase: StepPhase::Failed,
                        message: "Step was cancelled".into(),
                        ..StepOutcome::error("")
                    }
                }
            }
        })
    }

    fn log_path(&self, _run: &str, _node_id: &str, _attempt: u32) -> Option<std::path::PathBuf> {
        None
    }

    fn adopt(
        &self,
        _run: String,
        _node_id: String,
        _attempt: u32,
        _cancel: CancellationToken,
    ) -> BoxFuture<'_, Option<StepOutcome>> {
        let adopted = self
            .adopted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(async move { adopted })
    }

    /// Remembers the keys, as a repository that deleted them.
    fn delete_artifacts(
        &self,
        _repository: Option<cox_worker::repo_config::RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<(), String>> {
        self.deleted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(keys);
        Box::pin(async { Ok(()) })
    }

    /// The keys deleted so far are missing; every other key exists.
    fn missing_artifacts(
        &self,
        _repository: Option<cox_worker::repo_config::RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<String>, String>> {
        let deleted = self.deleted.lock().unwrap_or_else(PoisonError::into_inner);
        let missing = keys.into_iter().filter(|k| deleted.contains(k)).collect();
        Box::pin(async move { Ok(missing) })
    }
}

/// One action a run performed, and whether the store held the producing state already.
#[derive(Debug, Clone)]
pub struct ActionRecord {
    /// The action.
    pub action: Action,
    /// The run it belongs to.
    pub run: String,
    /// The stored state was byte-for-byte the state that produced the action.
    pub persisted_first: bool,
}

/// An engine on a temporary home with a [`FakeExecutor`].
pub struct SchedulerTest {
    /// The fake executor; script it before submitting.
    pub executor: Arc<FakeExecutor>,
    engine: Option<Engine>,
    actions: Arc<Mutex<Vec<ActionRecord>>>,
    dir: tempfile::TempDir,
}

impl SchedulerTest {
    /// A fresh home and engine.
    pub fn new() -> SchedulerTest {
        let dir = tempfile::tempdir().expect("temporary directory");
        let executor = FakeExecutor::new();
        let actions = Arc::new(Mutex::new(Vec::new()));
        let engine = open_engine(dir.path(), &executor, &actions);
        SchedulerTest {
            executor,
            engine: Some(engine),
            actions,
            dir,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine is open")
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// Submit a workflow given as YAML (the only or first Workflow document).
    pub async fn submit(&self, yaml: &str) -> String {
        self.engine()
            .submit(workflow_from_yaml(yaml))
            .await
            .expect("submit")
    }

    /// The next launch fails with an Error outcome.
    pub fn fail_next_launch(&self) {
        self.executor.fail_next_launch();
    }

    /// Wait (at most 30 s) for the run to finish; its final state.
    pub async fn await_completion(&self, name: &str) -> RunState {
        tokio::time::timeout(
            Duration::from_secs(30),
            self.engine().await_completion(name),
        )
        .await
        .unwrap_or_else(|_| panic!("run {name} did not finish within 30 s"))
        .expect("await completion")
    }

    /// Stop the engine as a crash would leave things (actors gone, store kept), open a new
    /// one on the same home, and resume unfinished runs; their names.
    pub async fn restart(&mut self) -> Vec<String> {
        self.restart_after(|_| {}).await
    }

    /// [`SchedulerTest::restart`], with `edit` done to the store while no engine has it
    /// open (a state a crash at an awkward moment would leave).
    pub async fn restart_after(&mut self, edit: impl FnOnce(&Store)) -> Vec<String> {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
        self.executor.detach_store();
        {
            let store = Store::open_waiting(&self.dir.path().join("store"), Duration::from_secs(5))
                .expect("open the store between engines");
            edit(&store);
        }
        let engine = open_engine(self.dir.path(), &self.executor, &self.actions);
        let resumed = engine.resume_unfinished().await.expect("resume");
        self.engine = Some(engine);
        resumed
    }

    /// Every action performed so far.
    pub fn actions(&self) -> Vec<ActionRecord> {
        self.actions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Default for SchedulerTest {
    fn default() -> Self {
        SchedulerTest::new()
    }
}

fn open_engine(
    home: &Path,
    executor: &Arc<FakeExecutor>,
    actions: &Arc<Mutex<Vec<ActionRecord>>>,
) -> Engine {
    let store_slot: Arc<OnceLock<Store>> = Arc::new(OnceLock::new());
    let hook_store = Arc::clone(&store_slot);
    let hook_actions = Arc::clone(actions);
    let mut config = EngineConfig::new(home, Arc::clone(executor) as Arc<dyn Executor>);
    // sled's background threads may hold the previous engine's lock for a moment.
    config.lock_wait = Duration::from_secs(5);
    config.on_action = Some(Arc::new(move |action: &Action, state: &RunState| {
        let persisted_first = hook_store
            .get()
            .and_then(|store| store.get_run(&state.name).ok().flatten())
            .is_some_and(|stored| {
                codec::encode("run", &stored).ok() == codec::encode("run", state).ok()
            });
        hook_actions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ActionRecord {
                action: action.clone(),
                run: state.name.clone(),
                persisted_first,
            });
    }));
    let engine = Engine::open(config).expect("open engine");
    let _ = store_slot.set(engine.store().clone());
    executor.attach_store(engine.store().clone());
    engine
}

/// The sled database of a store at `path` itself (to damage or age records behind the
/// store's back), once a dropped store has let go of its lock (sled's background thread may
/// hold it a moment longer); panics after 10 s (tests only).
pub fn raw_sled(path: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The only or first Workflow document of a YAML text; panics on load errors (tests only).
pub fn workflow_from_yaml(yaml: &str) -> Workflow {
    let loaded = cox_config::load::load("test.yaml", yaml);
    assert!(
        !loaded.has_errors(),
        "workflow does not load: {:?}",
        loaded.diagnostics
    );
    loaded
        .documents
        .into_iter()
        .find_map(|d| match d.manifest {
            Manifest::Workflow(w) => Some(w),
            _ => None,
        })
        .expect("a Workflow document")
}
