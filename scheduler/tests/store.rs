//! The store on a real sled database in a temporary directory.

use chrono::{DateTime, Utc};
use cox_scheduler::Error;
use cox_scheduler::codec::{self, FORMAT_VERSION};
use cox_scheduler::machine::{Event, Phase, RunState};
use cox_scheduler::store::Store;
use cox_scheduler::testsuite::{raw_sled, workflow_from_yaml};

const HELLO: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: hello
spec:
  entrypoint: main
  templates:
    - name: main
      container:
        image: alpine
        command: [echo, hi]
"#;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn run_named(name: &str) -> RunState {
    let mut workflow = workflow_from_yaml(HELLO);
    workflow.metadata.name = Some(name.to_string());
    RunState::new(workflow, at(0)).unwrap()
}

/// Reopen after a drop: sled's background thread may hold the lock a moment longer.
fn reopen(path: &std::path::Path) -> Store {
    Store::open_waiting(path, std::time::Duration::from_secs(10)).unwrap()
}

fn encoded(state: &RunState) -> Vec<u8> {
    codec::encode("run", state).unwrap()
}

#[test]
fn runs_round_trip_through_the_store_and_list_in_creation_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (i, name) in ["b-run", "a-run", "c-run"].iter().enumerate() {
        store.create_run(&run_named(name), at(i as i64)).unwrap();
    }
    let names: Vec<String> = store
        .list_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["b-run", "a-run", "c-run"]);
    assert_eq!(store.list_runs().unwrap()[1].created_at, at(1));

    let mut state = run_named("a-run");
    state.apply(Event::Start { now: at(5) });
    store.put_run(&state).unwrap();
    let back = store.get_run("a-run").unwrap().unwrap();
    assert_eq!(encoded(&back), encoded(&state));
    assert!(store.get_run("nope").unwrap().is_none());
}

#[test]
fn a_taken_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_run(&run_named("same"), at(0)).unwrap();
    let err = store.create_run(&run_named("same"), at(1)).unwrap_err();
    assert_eq!(err.to_string(), "run same: already exists");
    assert_eq!(store.list_runs().unwrap().len(), 1);
}

#[test]
fn delete_removes_the_run_and_its_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_run(&run_named("one"), at(0)).unwrap();
    store.create_run(&run_named("two"), at(1)).unwrap();
    assert!(store.delete_run("one").unwrap());
    assert!(!store.delete_run("one").unwrap());
    let names: Vec<String> = store
        .list_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["two"]);
}

#[test]
fn a_reopened_store_has_what_was_flushed_and_the_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = run_named("survivor");
    let actions = state.apply(Event::Start { now: at(1) });
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_run(&state, at(0)).unwrap();
        store.put_run(&state).unwrap();
    }
    let store = reopen(dir.path());
    let mut loaded = store.get_run("survivor").unwrap().unwrap();
    assert_eq!(encoded(&loaded), encoded(&state));
    assert_eq!(store.unfinished_runs().unwrap(), ["survivor"]);
    // The loaded state is a working machine: it re-parses its workflow and goes on.
    let mut original = state.clone();
    let again = loaded.apply(Event::Start { now: at(2) });
    assert_eq!(again, original.apply(Event::Start { now: at(2) }));
    assert_eq!(loaded.phase(), Phase::Running);
    assert!(
        !actions.is_empty(),
        "the machine launches the first step on Start"
    );
}

#[test]
fn the_store_epoch_grows_on_every_opening() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap().epoch();
    assert_eq!(first, 1, "a new store starts at epoch 1");
    let mut last = first;
    for _ in 0..3 {
        let epoch = reopen(dir.path()).epoch();
        assert_eq!(epoch, last + 1);
        last = epoch;
    }
}

#[test]
fn a_second_store_on_one_directory_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(
        err.to_string(),
        format!(
            "another cox process is using {}; wait for it to finish, or set COX_HOME to another directory",
            dir.path().display()
        )
    );
    // Waiting does not help while the holder stays.
    let started = std::time::Instant::now();
    let err = Store::open_waiting(dir.path(), std::time::Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }));
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[test]
fn the_lock_is_released_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    reopen(dir.path());
}

#[test]
fn a_record_of_another_format_version_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    {
        let store = Store::open(&path).unwrap();
        store.create_run(&run_named("future"), at(0)).unwrap();
    }
    // Rewrite the record as a future cox would, with a newer version byte.
    {
        let db = raw_sled(&path);
        let runs = db.open_tree("runs").unwrap();
        let mut bytes = runs.get("future").unwrap().unwrap().to_vec();
        bytes[0] = FORMAT_VERSION + 1;
        runs.insert("future", bytes).unwrap();
        db.flush().unwrap();
    }
    let store = reopen(&path);
    let err = store.get_run("future").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "store record runs/future: cannot decode run state: stored format version {}, this cox reads version {FORMAT_VERSION}",
            FORMAT_VERSION + 1
        )
    );
}

#[test]
fn a_run_state_with_nodes_round_trips_through_the_codec() {
    let mut state = run_named("codec");
    state.apply(Event::Start { now: at(1) });
    assert!(!state.nodes.is_empty());
    let bytes = encoded(&state);
    let back: RunState = codec::decode("run", &bytes).unwrap();
    assert_eq!(encoded(&back), bytes);
    assert_eq!(back.nodes, state.nodes);
}

const LOOP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: many
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: each
            template: one
            withSequence: {count: "40"}
    - name: one
      container:
        image: alpine
        command: [echo, "{{item}}"]
"#;

#[test]
fn incremental_writes_keep_the_exact_state_through_every_transition_and_a_reopen() {
    use cox_scheduler::machine::Action;
    let dir = tempfile::tempdir().unwrap();
    let mut workflow = workflow_from_yaml(LOOP);
    workflow.metadata.name = Some("many".into());
    let mut state = RunState::new(workflow, at(0)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_run(&state, at(0)).unwrap();
    let mut launched: Vec<String> = Vec::new();
    let mut actions = state.apply(Event::Start { now: at(1) });
    let mut t = 2;
    loop {
        store.put_run(&state).unwrap();
        let stored = store.get_run("many").unwrap().unwrap();
        assert_eq!(
            encoded(&stored),
            encoded(&state),
            "stored state differs after {} launches",
            launched.len()
        );
        for a in actions.drain(..) {
            if let Action::Launch(spec) = a {
                launched.push(spec.node_id.clone());
            }
        }
        let Some(node_id) = launched.pop() else { break };
        let outcome = cox_worker::step::StepOutcome {
            phase: cox_worker::step::StepPhase::Succeeded,
            exit_code: Some(0),
            message: String::new(),
            result: Some(node_id.clone()),
            parameters: Vec::new(),
            artifacts: Vec::new(),
            started_at: None,
            finished_at: None,
            cache_hit: false,
        };
        actions = state.apply(Event::StepFinished {
            node_id,
            outcome,
            now: at(t),
        });
        t += 1;
    }
    assert_eq!(state.phase(), Phase::Succeeded);
    drop(store);
    let reopened = reopen(dir.path());
    assert_eq!(
        encoded(&reopened.get_run("many").unwrap().unwrap()),
        encoded(&state)
    );
    assert!(reopened.delete_run("many").unwrap());
    assert!(reopened.get_run("many").unwrap().is_none());
}

#[test]
fn a_run_with_an_unreadable_record_is_quarantined_and_the_others_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_run(&run_named("good"), at(0)).unwrap();
        store.create_run(&run_named("bad"), at(1)).unwrap();
    }
    // Damage bad's record behind the store's back.
    let db = raw_sled(dir.path());
    db.open_tree("runs")
        .unwrap()
        .insert("bad", &b"\xffnot a run"[..])
        .unwrap();
    db.flush().unwrap();
    drop(db);

    let store = reopen(dir.path());
    let runs = store.list_runs().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["good", "bad"]);
    assert_eq!(runs[1].phase, Phase::Error);
    assert!(
        runs[1]
            .message
            .starts_with(cox_scheduler::store::QUARANTINED)
            && runs[1].message.contains("runs/bad"),
        "{}",
        runs[1].message
    );
    assert_eq!(store.unfinished_runs().unwrap(), ["good"]);
    let err = store.get_run("bad").unwrap_err().to_string();
    assert!(err.contains("runs/bad"), "{err}");
}
