//! Global concurrency through the real engine: run actors, the gate actor, the machine and
//! a sled store, with a fake executor. Run intervals are recorded by the action hook
//! (each run's first `Launch` to its `Finished`, in hook order and with the time of each),
//! which brackets the time the run holds its workflow-level locks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use cox_scheduler::machine::{Action, Phase, RunState};
use cox_scheduler::objects::StoredObject;
use cox_scheduler::store::{ObjectKind, PutMode};
use cox_scheduler::sync::LockStatus;
use cox_scheduler::testsuite::{
    FakeExecutor, Match, SchedulerTest, Scripted, succeeded, workflow_from_yaml,
};
use cox_scheduler::{Engine, EngineConfig};
use cox_worker::step::Executor;
use serde_json::json;

/// One hook event: its place in the order of all events, when, which run, and whether it
/// was the run's launch (else its end).
#[derive(Debug, Clone)]
struct Mark {
    at: Instant,
    run: String,
    launch: bool,
}

/// A run's interval: (index of its first launch, of its end) in hook order, and the same
/// as instants.
type Span = ((usize, usize), (Instant, Instant));

struct Harness {
    engine: Engine,
    executor: Arc<FakeExecutor>,
    marks: Arc<Mutex<Vec<Mark>>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temporary directory");
        let executor = FakeExecutor::new();
        let marks: Arc<Mutex<Vec<Mark>>> = Arc::default();
        let hook_marks = Arc::clone(&marks);
        let mut config = EngineConfig::new(dir.path(), Arc::clone(&executor) as Arc<dyn Executor>);
        config.on_action = Some(Arc::new(move |action: &Action, state: &RunState| {
            let launch = match action {
                Action::Launch(_) => true,
                Action::Finished => false,
                _ => return,
            };
            hook_marks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Mark {
                    at: Instant::now(),
                    run: state.name.clone(),
                    launch,
                });
        }));
        let engine = Engine::open(config).expect("open engine");
        executor.attach_store(engine.store().clone());
        Harness {
            engine,
            executor,
            marks,
            _dir: dir,
        }
    }

    /// Each run's interval: (index of its first launch, of its end) in hook order, and the
    /// same as instants.
    fn intervals(&self) -> HashMap<String, Span> {
        let marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut spans: HashMap<String, Span> = HashMap::new();
        for (i, mark) in marks.iter().enumerate() {
            let span = spans
                .entry(mark.run.clone())
                .or_insert(((i, usize::MAX), (mark.at, mark.at)));
            if !mark.launch {
                span.0.1 = i;
                span.1.1 = mark.at;
            }
        }
        spans
    }

    async fn submit(&self, yaml: &str) -> String {
        self.engine
            .submit(workflow_from_yaml(yaml))
            .await
            .expect("submit")
    }

    async fn finish(&self, name: &str) -> RunState {
        tokio::time::timeout(Duration::from_secs(120), self.engine.await_completion(name))
            .await
            .unwrap_or_else(|_| panic!("run {name} did not finish"))
            .expect("await completion")
    }

    /// Poll the gate (every 10 ms, at most 60 s) until `done` holds for its locks.
    async fn until(&self, what: &str, done: impl Fn(&[LockStatus]) -> bool) -> Vec<LockStatus> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.engine.sync_status(None).await.expect("sync status");
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}: {status:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn config_map(&self, name: &str, data: serde_json::Value) {
        let object = StoredObject::from_value(
            ObjectKind::ConfigMap,
            json!({"metadata": {"name": name}, "data": data}),
            Some("default"),
        )
        .expect("config map");
        object
            .put(self.engine.store(), PutMode::CreateOrUpdate, Utc::now())
            .expect("store config map");
        self.engine.refresh_sync_limits();
    }
}

fn lock<'a>(status: &'a [LockStatus], key: &str) -> Option<&'a LockStatus> {
    status.iter().find(|l| l.key == key)
}

fn mutex_workflow(name: &str, priority: i32, template: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: {name}}}\nspec:\n  entrypoint: {template}\n  priority: {priority}\n  synchronization:\n    mutexes: [{{name: one}}]\n  templates:\n  - name: {template}\n    container: {{image: busybox, command: ['true']}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_runs_of_one_mutex_never_overlap_and_go_by_priority_then_submission() {
    let h = Harness::new();
    h.executor
        .script(Match::Template("block".into()), Scripted::hang());
    h.executor.script(
        Match::Template("work".into()),
        Scripted::after(succeeded(None), Duration::from_millis(5)),
    );
    let blocker = h.submit(&mutex_workflow("blocker", 0, "block")).await;
    h.until("the blocker to hold the mutex", |s| {
        lock(s, "default/Mutex/one").is_some_and(|l| l.holders.len() == 1)
    })
    .await;
    let mut expected: Vec<(i32, usize, String)> = Vec::new();
    for i in 0..30 {
        let priority = [0, 5, 2][i % 3];
        let name = h
            .submit(&mutex_workflow(&format!("run-{i:02}"), priority, "work"))
            .await;
        expected.push((-priority, i, name));
    }
    let status = h
        .until("thirty waiters", |s| {
            lock(s, "default/Mutex/one").is_some_and(|l| l.waiters.len() == 30)
        })
        .await;
    // Argo's message on the waiting run, and Argo's status shape.
    let mut waiting = h.engine.snapshot("run-00").await.expect("snapshot");
    assert_eq!(waiting.phase(), Phase::Pending);
    assert_eq!(
        waiting.message,
        "Waiting for default/Mutex/one lock. Lock status: 0/1"
    );
    assert_eq!(
        waiting.workflow_json()["status"]["synchronization"]["mutex"]["waiting"][0],
        json!({"mutex": "default/Mutex/one", "holder": "run-00"})
    );
    assert!(waiting.workflow_locks(Utc::now()).len() == 1);
    assert_eq!(
        lock(&status, "default/Mutex/one").map(|l| l.limit),
        Some(Some(1))
    );

    h.engine
        .stop(&blocker, true)
        .expect("terminate the blocker");
    assert_eq!(h.finish(&blocker).await.phase(), Phase::Failed);
    for (_, _, name) in &expected {
        let done = h.finish(name).await;
        assert_eq!(done.phase(), Phase::Succeeded, "{name}: {}", done.message);
    }

    let spans = h.intervals();
    let mut order: Vec<(usize, usize, &str)> = expected
        .iter()
        .map(|(_, _, name)| {
            let ((start, end), _) = spans[name];
            assert!(end != usize::MAX && start < end, "{name}: {start}..{end}");
            (start, end, name.as_str())
        })
        .collect();
    order.sort();
    for pair in order.windows(2) {
        assert!(
            pair[0].1 < pair[1].0,
            "{} and {} overlap",
            pair[0].2,
            pair[1].2
        );
    }
    let mut wanted = expected.clone();
    wanted.sort();
    let ran: Vec<&str> = order.iter().map(|(_, _, n)| *n).collect();
    let wanted: Vec<&str> = wanted.iter().map(|(_, _, n)| n.as_str()).collect();
    assert_eq!(ran, wanted, "priority order, then submission order");
    let after = h.engine.sync_status(None).await.expect("status");
    let one = lock(&after, "default/Mutex/one").expect("the mutex");
    assert!(one.holders.is_empty() && one.waiters.is_empty(), "{one:?}");
    h.engine.shutdown().await;
}

/// Kinds of lock needs in the semaphore test, by submission index.
fn semaphore_run(i: usize) -> (String, bool, Option<&'static str>) {
    // (yaml, uses the semaphore, its mutex)
    let (sem, mutex) = match i % 5 {
        0 | 1 => (true, None),
        2 => (true, Some("left")),
        3 => (true, Some("right")),
        _ => (false, Some("left")),
    };
    let mut sync = String::new();
    if sem {
        sync.push_str("    semaphores: [{configMapKeyRef: {name: limits, key: workflow}}]\n");
    }
    if let Some(m) = mutex {
        sync.push_str(&format!("    mutexes: [{{name: {m}}}]\n"));
    }
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: sem-{i:02}}}\nspec:\n  entrypoint: work\n  synchronization:\n{sync}  templates:\n  - name: work\n    container: {{image: busybox, command: ['true']}}\n"
    );
    (yaml, sem, mutex)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_semaphore_of_three_keeps_its_slots_busy_and_never_over_admits() {
    const LIMIT: usize = 3;
    let h = Harness::new();
    h.executor.script(
        Match::Template("work".into()),
        Scripted::after(succeeded(None), Duration::from_millis(300)),
    );
    // No ConfigMap yet: the limit is unknown and everything queues.
    let mut runs = Vec::new();
    for i in 0..50 {
        let (yaml, sem, mutex) = semaphore_run(i);
        let name = h.submit(&yaml).await;
        runs.push((name, sem, mutex));
    }
    h.until("fifty queued", |s| {
        lock(s, "default/ConfigMap/limits/workflow").is_some_and(|l| l.waiters.len() == 40)
            && lock(s, "default/Mutex/left")
                .is_some_and(|l| l.waiters.len() + l.holders.len() == 20)
    })
    .await;
    let waiting = h.engine.snapshot("sem-00").await.expect("snapshot");
    assert_eq!(
        waiting.message,
        "Failed to get semaphore limit for default/ConfigMap/limits/workflow"
    );
    // The limit arrives live.
    let opened = Instant::now();
    h.config_map("limits", json!({"workflow": "3"}));
    for (name, _, _) in &runs {
        let done = h.finish(name).await;
        assert_eq!(done.phase(), Phase::Succeeded, "{name}: {}", done.message);
    }

    let spans = h.intervals();
    // Sweep the recorded intervals: slot use, and whether a run that could take a free
    // slot (its mutex free at that instant) was waiting.
    let mut times: Vec<Instant> = vec![opened];
    for (_, (a, b)) in spans.values() {
        times.push(*a);
        times.push(*b);
    }
    times.sort();
    times.dedup();
    let holds = |name: &str, t: Instant| {
        let (_, (a, b)) = spans[name];
        a <= t && t < b
    };
    let (mut busy, mut offered) = (0.0f64, 0.0f64);
    for w in times.windows(2) {
        let (t, next) = (w[0], w[1]);
        if t < opened {
            continue;
        }
        let holders = runs
            .iter()
            .filter(|(n, sem, _)| *sem && holds(n, t))
            .count();
        assert!(holders <= LIMIT, "{holders} semaphore holders at once");
        for m in ["left", "right"] {
            let n = runs
                .iter()
                .filter(|(n, _, mx)| *mx == Some(m) && holds(n, t))
                .count();
            assert!(n <= 1, "mutex {m} held by {n}");
        }
        let eligible = runs.iter().any(|(n, sem, mutex)| {
            let (_, (start, _)) = spans[n];
            *sem && start > t
                && mutex
                    .is_none_or(|m| !runs.iter().any(|(o, _, om)| *om == Some(m) && holds(o, t)))
        });
        if eligible {
            let span = (next - t).as_secs_f64();
            busy += holders as f64 * span;
            offered += LIMIT as f64 * span;
        }
    }
    let utilisation = busy / offered;
    eprintln!(
        "semaphore slots busy while a run could use one: {:.2}%",
        utilisation * 100.0
    );
    assert!(offered > 0.0);
    assert!(
        utilisation >= 0.95,
        "slots busy {:.3} of the time a waiter could use one",
        utilisation
    );
    h.engine.shutdown().await;
}

const HOLD_TEMPLATE_LOCK: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: tmpl-}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: locked, template: locked, withParam: '[\"1\",\"2\",\"3\"]'}\n  - name: locked\n    synchronization:\n      mutexes: [{name: welcome}]\n    container: {image: busybox, command: ['true']}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_locks_serialise_steps_and_stop_releases_them() {
    let h = Harness::new();
    h.executor.script(
        Match::Template("locked".into()),
        Scripted::after(succeeded(None), Duration::from_millis(20)),
    );
    let a = h.submit(HOLD_TEMPLATE_LOCK).await;
    let b = h.submit(HOLD_TEMPLATE_LOCK).await;
    for name in [&a, &b] {
        assert_eq!(h.finish(name).await.phase(), Phase::Succeeded);
    }
    // Six steps under one mutex: their launch-to-end intervals never overlap.
    let launches = h.executor.launches();
    assert_eq!(launches.len(), 6);
    let status = h.engine.sync_status(Some("default")).await.expect("status");
    let welcome = lock(&status, "default/Mutex/welcome").expect("the mutex");
    assert!(welcome.holders.is_empty() && welcome.waiters.is_empty());

    // A step waiting for a held lock is Pending with Argo's message; stopping its run
    // gives back everything it held or waited for.
    h.executor
        .script(Match::Template("locked".into()), Scripted::hang());
    let c = h.submit(HOLD_TEMPLATE_LOCK).await;
    h.until("two steps waiting", |s| {
        lock(s, "default/Mutex/welcome")
            .is_some_and(|l| l.holders.len() == 1 && l.waiters.len() == 2)
    })
    .await;
    let snapshot = h.engine.snapshot(&c).await.expect("snapshot");
    let waiting: Vec<_> = snapshot
        .nodes
        .values()
        .filter(|n| n.phase == Phase::Pending && n.node_type.is_step())
        .collect();
    assert_eq!(waiting.len(), 2);
    for node in waiting {
        assert_eq!(
            node.message,
            "Waiting for default/Mutex/welcome lock. Lock status: 0/1"
        );
    }
    h.engine.stop(&c, false).expect("stop");
    assert_eq!(h.finish(&c).await.phase(), Phase::Failed);
    h.until("the mutex free", |s| {
        lock(s, "default/Mutex/welcome")
            .is_some_and(|l| l.holders.is_empty() && l.waiters.is_empty())
    })
    .await;
    h.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelism_limits_and_delete_release_everything() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let executor = FakeExecutor::new();
    let mut config = EngineConfig::new(dir.path(), Arc::clone(&executor) as Arc<dyn Executor>);
    config.parallelism.server = Some(1);
    let engine = Engine::open(config).expect("open");
    executor.attach_store(engine.store().clone());
    executor.script(Match::Template("main".into()), Scripted::hang());
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: p-}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    container: {image: busybox, command: ['true']}\n";
    let first = engine
        .submit(workflow_from_yaml(yaml))
        .await
        .expect("submit");
    let second = engine
        .submit(workflow_from_yaml(yaml))
        .await
        .expect("submit");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = engine.sync_status(None).await.expect("status");
        if lock(&s, "*/Parallelism").is_some_and(|l| l.holders.len() == 1 && l.waiters.len() == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = engine
        .request(&second, cox_scheduler::machine::Request::Suspend)
        .await
        .expect_err("a waiting run cannot be suspended");
    assert!(
        refused
            .to_string()
            .contains("waiting for its synchronization locks"),
        "{refused}"
    );
    // Deleting the holder admits the other.
    assert!(engine.delete(&first).await.expect("delete"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = engine.snapshot(&second).await.expect("snapshot");
        if s.phase() == Phase::Running {
            break;
        }
        assert!(Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.stop(&second, true).expect("terminate");
    engine.await_completion(&second).await.expect("finish");
    let s = engine.sync_status(None).await.expect("status");
    let p = lock(&s, "*/Parallelism").expect("parallelism lock");
    assert!(p.holders.is_empty() && p.waiters.is_empty(), "{p:?}");
    engine.shutdown().await;
}

/// Poll (every 10 ms, at most 30 s) until a lock has one holder and `waiting` waiters.
async fn until_one_holds_and_waiting(t: &SchedulerTest, waiting: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !t
        .engine()
        .sync_status(None)
        .await
        .expect("status")
        .iter()
        .any(|l| l.holders.len() == 1 && l.waiters.len() == waiting)
    {
        assert!(Instant::now() < deadline, "{waiting} waiters never queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_holders_come_from_the_store_and_waiters_keep_their_order() {
    let mut t = SchedulerTest::new();
    t.executor
        .script(Match::Template("block".into()), Scripted::hang());
    let blocker = t.submit(&mutex_workflow("holder", 0, "block")).await;
    let mut waiters = Vec::new();
    for i in 0..5 {
        waiters.push(t.submit(&mutex_workflow(&format!("w{i}"), 0, "work")).await);
    }
    until_one_holds_and_waiting(&t, 5).await;
    let before = t.actions().len();
    let resumed = t.restart().await;
    assert_eq!(resumed.len(), 6);
    // Its step is lost in the restart (the fake keeps nothing), so it ends; its state said
    // it held the mutex, so nobody was admitted before that end, and then the waiters run
    // one at a time in their submission order.
    let _ = t.await_completion(&blocker).await;
    for name in &waiters {
        assert_eq!(t.await_completion(name).await.phase(), Phase::Succeeded);
    }
    let after = t.actions().split_off(before);
    let blocker_end = after
        .iter()
        .position(|r| matches!(r.action, Action::Finished) && r.run == blocker)
        .expect("the holder ended");
    let launches: Vec<(usize, String)> = after
        .into_iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.action, Action::Launch(_)) && r.run.starts_with('w'))
        .map(|(i, r)| (i, r.run))
        .collect();
    assert!(
        launches.iter().all(|(i, _)| *i > blocker_end),
        "{launches:?}"
    );
    let launched: Vec<String> = launches.into_iter().map(|(_, run)| run).collect();
    assert_eq!(launched, waiters);
}

/// A workflow whose `work` step holds the mutex `one` (a template-level lock).
fn step_mutex_workflow(name: &str, priority: i32, template: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: {name}}}\nspec:\n  entrypoint: {template}\n  priority: {priority}\n  templates:\n  - name: {template}\n    synchronization:\n      mutexes: [{{name: one}}]\n    container: {{image: busybox, command: ['true']}}\n"
    )
}

/// A holder of the mutex `one` (a `block` step that hangs), then three waiters submitted
/// lowest priority first; the holder's record is gone when the engine restarts (as if the
/// crash came between its end and the next grant), so the mutex is free: the waiters must
/// run highest priority first, whatever order they resume in. `Launch` order of the three.
async fn launches_after_a_restart_with_the_mutex_free(
    workflow: fn(&str, i32, &str) -> String,
) -> Vec<String> {
    let mut t = SchedulerTest::new();
    t.executor
        .script(Match::Template("block".into()), Scripted::hang());
    let blocker = t.submit(&workflow("holder", 0, "block")).await;
    let mut waiters = Vec::new();
    for (name, priority) in [("low", 0), ("mid", 2), ("high", 5)] {
        waiters.push(t.submit(&workflow(name, priority, "work")).await);
    }
    until_one_holds_and_waiting(&t, 3).await;
    let resumed = t
        .restart_after(|store| {
            assert!(store.delete_run(&blocker).expect("delete the holder"));
        })
        .await;
    assert_eq!(resumed, waiters, "resumed in submission order");
    for name in &waiters {
        assert_eq!(t.await_completion(name).await.phase(), Phase::Succeeded);
    }
    t.actions()
        .into_iter()
        .filter(|r| matches!(r.action, Action::Launch(_)) && waiters.contains(&r.run))
        .map(|r| r.run)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_lock_free_after_a_restart_goes_by_priority_not_resume_order() {
    let launches = launches_after_a_restart_with_the_mutex_free(mutex_workflow).await;
    assert_eq!(launches, ["high", "mid", "low"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_lock_free_after_a_restart_goes_by_priority_not_resume_order() {
    let launches = launches_after_a_restart_with_the_mutex_free(step_mutex_workflow).await;
    assert_eq!(launches, ["high", "mid", "low"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_expires_releases_the_lock() {
    let h = Harness::new();
    h.executor
        .script(Match::Template("block".into()), Scripted::hang());
    let late = mutex_workflow("late", 0, "block").replace(
        "  priority: 0\n",
        "  priority: 0\n  activeDeadlineSeconds: 1\n",
    );
    let late = h.submit(&late).await;
    h.until("the late run to hold the mutex", |s| {
        lock(s, "default/Mutex/one").is_some_and(|l| l.holders.len() == 1)
    })
    .await;
    let next = h.submit(&mutex_workflow("next", 0, "work")).await;
    let expired = h.finish(&late).await;
    assert_eq!(expired.phase(), Phase::Failed);
    assert_eq!(h.finish(&next).await.phase(), Phase::Succeeded);
    let status = h.engine.sync_status(None).await.expect("status");
    let one = lock(&status, "default/Mutex/one").expect("the mutex");
    assert!(one.holders.is_empty() && one.waiters.is_empty(), "{one:?}");
    h.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_run_queues_for_its_lock_again() {
    let h = Harness::new();
    h.executor.script(
        Match::Template("flaky".into()),
        Scripted::now(cox_scheduler::testsuite::failed(1)),
    );
    h.executor.script(
        Match::Template("flaky".into()),
        Scripted::now(succeeded(None)),
    );
    h.executor
        .script(Match::Template("block".into()), Scripted::hang());
    let flaky = h.submit(&mutex_workflow("flaky", 0, "flaky")).await;
    assert_eq!(h.finish(&flaky).await.phase(), Phase::Failed);
    let holder = h.submit(&mutex_workflow("holder", 0, "block")).await;
    h.until("the holder to hold the mutex", |s| {
        lock(s, "default/Mutex/one").is_some_and(|l| l.holders.len() == 1)
    })
    .await;
    h.engine
        .retry(&flaky, &cox_scheduler::machine::RetryOptions::default())
        .await
        .expect("retry");
    let status = h
        .until("the retried run to wait", |s| {
            lock(s, "default/Mutex/one").is_some_and(|l| l.waiters.len() == 1)
        })
        .await;
    let one = lock(&status, "default/Mutex/one").expect("the mutex");
    assert_eq!(one.holders[0].run, holder);
    assert_eq!(one.waiters[0].run, flaky);
    assert_eq!(
        h.engine.snapshot(&flaky).await.expect("snapshot").phase(),
        Phase::Pending
    );
    h.engine.stop(&holder, true).expect("terminate");
    assert_eq!(h.finish(&flaky).await.phase(), Phase::Succeeded);
    h.engine.shutdown().await;
}
