//! Durability of the store: quarantine of damaged runs, migration of older stores after a
//! backup, and a full disk (a real ENOSPC on a small tmpfs in a user namespace).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cox_scheduler::cache::{CacheEntry, EntryKey, StepCache};
use cox_scheduler::codec::{self, FORMAT_VERSION};
use cox_scheduler::machine::{ArtifactRef, Event, Node, Phase, RunState};
use cox_scheduler::store::{QUARANTINED, Store};
use cox_scheduler::testsuite::{
    FakeExecutor, Match, Scripted, raw_sled, succeeded, workflow_from_yaml,
};
use cox_scheduler::{Engine, EngineConfig, Error};
use cox_worker::step::{ArchiveKind, SavedArtifact};

const TWO_STEPS: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: two
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: a
            template: first
        - - name: b
            template: second
    - name: first
      container: {image: alpine, command: [echo, a]}
    - name: second
      container: {image: alpine, command: [echo, b]}
"#;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn run_named(name: &str) -> RunState {
    let mut workflow = workflow_from_yaml(TWO_STEPS);
    workflow.metadata.name = Some(name.to_string());
    RunState::new(workflow, at(0)).unwrap()
}

fn reopen(path: &Path) -> Store {
    Store::open_waiting(path, Duration::from_secs(10)).unwrap()
}

fn open_engine(home: &Path, executor: &Arc<FakeExecutor>) -> Engine {
    let mut config = EngineConfig::new(home, Arc::clone(executor) as _);
    // sled's background threads may hold the previous opening's lock for a moment.
    config.lock_wait = Duration::from_secs(10);
    let engine = Engine::open(config).unwrap();
    executor.attach_store(engine.store().clone());
    engine
}

#[tokio::test]
async fn a_run_with_damaged_records_is_quarantined_for_good_and_the_others_go_on() {
    let home = tempfile::tempdir().unwrap();
    let store_dir = home.path().join("store");
    {
        let store = Store::open(&store_dir).unwrap();
        for (i, name) in ["good", "bad-header", "bad-node"].into_iter().enumerate() {
            let mut state = run_named(name);
            store.create_run(&state, at(i as i64)).unwrap();
            if name == "bad-node" {
                state.apply(Event::Start { now: at(5) });
                store.put_run(&state).unwrap();
            }
        }
    }
    // Damage two runs' records behind the store's back.
    let header_bytes = b"\x02\xffnot a run".to_vec();
    let node_bytes = b"\x02\x00\x01garbage".to_vec();
    let node_key = {
        let db = raw_sled(&store_dir);
        let runs = db.open_tree("runs").unwrap();
        runs.insert("bad-header", header_bytes.clone()).unwrap();
        let nodes = db.open_tree("nodes").unwrap();
        let keys: Vec<_> = nodes
            .scan_prefix(b"bad-node\0")
            .map(|e| e.unwrap().0)
            .collect();
        assert!(keys.len() >= 2, "the started run has nodes: {keys:?}");
        nodes.insert(&keys[0], node_bytes.clone()).unwrap();
        db.flush().unwrap();
        keys[0].to_vec()
    };

    // Starting quarantines both, resumes the good one, and does not fail.
    let executor = FakeExecutor::new();
    let engine = open_engine(home.path(), &executor);
    let resumed = engine.resume_unfinished().await.unwrap();
    assert_eq!(resumed, ["good"]);
    for (name, what) in [
        ("bad-header", "runs/bad-header"),
        ("bad-node", "nodes/bad-node/"),
    ] {
        let run = engine.get(name).unwrap().unwrap();
        assert_eq!(run.phase, Phase::Error, "{name}");
        assert!(run.finished_at.is_some(), "{name}");
        assert!(
            run.message.starts_with(QUARANTINED) && run.message.contains(what),
            "{name}: {}",
            run.message
        );
    }
    // The damaged bytes are kept, byte for byte; the readable nodes stay.
    let store = engine.store();
    assert_eq!(
        store.quarantined_records("bad-header").unwrap(),
        [("runs/bad-header".to_string(), header_bytes)]
    );
    let expected_key = format!(
        "nodes/{}",
        String::from_utf8_lossy(&node_key).replace('\0', "/")
    );
    assert_eq!(
        store.quarantined_records("bad-node").unwrap(),
        [(expected_key, node_bytes)]
    );
    assert!(!engine.get("bad-node").unwrap().unwrap().nodes.is_empty());
    let good = engine.await_completion("good").await.unwrap();
    assert_eq!(good.phase(), Phase::Succeeded);
    engine.shutdown().await;
    executor.detach_store();
    drop(engine);

    // Quarantine is durable: the next start resumes nothing and fails nothing.
    let engine = open_engine(home.path(), &executor);
    assert!(engine.resume_unfinished().await.unwrap().is_empty());
    let listed = engine.list().unwrap();
    let phases: Vec<(&str, Phase)> = listed.iter().map(|r| (r.name.as_str(), r.phase)).collect();
    assert_eq!(
        phases,
        [
            ("good", Phase::Succeeded),
            ("bad-header", Phase::Error),
            ("bad-node", Phase::Error)
        ]
    );
    // Deleting a quarantined run deletes its damaged records too; the other's stay.
    assert!(engine.delete("bad-node").await.unwrap());
    let store = engine.store();
    assert!(store.quarantined_records("bad-node").unwrap().is_empty());
    assert_eq!(store.quarantined_records("bad-header").unwrap().len(), 1);
}

/// Writes `state` (a started run with nodes) and `cache` (step cache entries) as cox of
/// format `version` (1 or 2) did, with its shapes of the records, into a new store at
/// `path`; a version 1 store has no format marker.
fn write_old_store(path: &Path, version: u8, state: &RunState, cache: &[(EntryKey, CacheEntry)]) {
    {
        let store = Store::open(path).unwrap();
        store.create_run(state, at(0)).unwrap();
        store.put_run(state).unwrap();
        let steps = StepCache::new(store.clone());
        for (key, entry) in cache {
            steps.put(key, entry).unwrap();
        }
    }
    let db = raw_sled(path);
    let runs = db.open_tree("runs").unwrap();
    // The header's shape is the same in versions 1 and 2.
    let header = codec::encode_as(version, "run", &codec::v2::RunStateV2::from(state)).unwrap();
    runs.insert(state.name.as_bytes(), header).unwrap();
    let nodes = db.open_tree("nodes").unwrap();
    for entry in nodes.iter() {
        let (key, bytes) = entry.unwrap();
        let node: Node = codec::decode("node", &bytes).unwrap();
        let old = match version {
            1 => codec::encode_as(1, "node", &codec::v1::NodeV1::from(&node)),
            _ => codec::encode_as(version, "node", &codec::v2::NodeV2::from(&node)),
        };
        nodes.insert(key, old.unwrap()).unwrap();
    }
    let entries = db.open_tree("step_cache").unwrap();
    for entry in entries.iter() {
        let (key, bytes) = entry.unwrap();
        let cached: CacheEntry = codec::decode("entry", &bytes).unwrap();
        let old = codec::encode_as(version, "entry", &codec::v2::CacheEntryV2::from(&cached));
        entries.insert(key, old.unwrap()).unwrap();
    }
    match version {
        1 => db.remove("format_version").map(drop).unwrap(),
        _ => db.insert("format_version", &[version]).map(drop).unwrap(),
    }
    db.flush().unwrap();
}

/// The one backup in `home`, of a store of format `version`.
fn the_backup(home: &Path, version: u8) -> std::path::PathBuf {
    let backups: Vec<_> = std::fs::read_dir(home.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [backup] = backups.as_slice() else {
        panic!("one backup expected, got {backups:?}");
    };
    let backup_name = backup.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        backup_name.starts_with(&format!("store-v{version}-")),
        "{backup_name}"
    );
    backup.clone()
}

/// The records of `tree` of the store at `path`, as stored.
fn records(path: &Path, tree: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = raw_sled(path);
    let tree = db.open_tree(tree).unwrap();
    tree.iter()
        .map(|e| e.unwrap())
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

#[test]
fn an_older_store_is_backed_up_then_migrated() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("store");
    let mut state = run_named("old");
    state.apply(Event::Start { now: at(1) });
    assert!(!state.nodes.is_empty());
    write_old_store(&path, 1, &state, &[]);
    let v1_nodes = records(&path, "nodes");
    assert!(v1_nodes.iter().all(|(_, v)| v[0] == 1));

    let store = reopen(&path);
    let back = store.get_run("old").unwrap().unwrap();
    assert_eq!(back.nodes, state.nodes);
    assert_eq!(back.phase, state.phase);
    drop(store);

    // The backup is the version 1 store, as it was, and sled opens it.
    let backup = the_backup(home.path(), 1);
    {
        let db = sled::open(&backup).unwrap();
        let nodes = db.open_tree("nodes").unwrap();
        let copied: Vec<(Vec<u8>, Vec<u8>)> = nodes
            .iter()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(copied, v1_nodes);
        assert_eq!(
            db.open_tree("runs").unwrap().get("old").unwrap().unwrap()[0],
            1
        );
    }

    // Every record is now of this version; a second opening neither migrates nor backs up.
    {
        let db = raw_sled(&path);
        for tree in ["runs", "nodes"] {
            for entry in db.open_tree(tree).unwrap().iter() {
                assert_eq!(entry.unwrap().1[0], FORMAT_VERSION, "{tree}");
            }
        }
        assert_eq!(
            db.get("format_version").unwrap().unwrap().as_ref(),
            [FORMAT_VERSION]
        );
    }
    let store = reopen(&path);
    assert_eq!(store.get_run("old").unwrap().unwrap().nodes, state.nodes);
    assert_eq!(
        std::fs::read_dir(home.path().join("backups"))
            .unwrap()
            .count(),
        1
    );
}

/// A store of format version 2: node outputs, global outputs and step cache entries with
/// saved artifacts (whose shape version 3 changed) are backed up, then read with their
/// artifacts in the run's repository, as version 2 recorded them.
#[test]
fn a_version_2_store_with_saved_artifacts_is_backed_up_then_migrated() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("store");
    let mut state = run_named("v2");
    state.apply(Event::Start { now: at(1) });
    let artifact = |name: &str| ArtifactRef {
        name: name.into(),
        key: format!("v2/{name}.tgz"),
        path: format!("/tmp/{name}"),
        archive: "tgz".into(),
        size: 42,
        sha256: "ab".repeat(32),
        store: None,
    };
    let id = state.nodes.keys().next().unwrap().clone();
    state.nodes.get_mut(&id).unwrap().outputs.artifacts = vec![artifact("out"), artifact("log")];
    state.global_artifacts = vec![artifact("global")];
    let mut outcome = succeeded(Some("done"));
    outcome.artifacts.push(SavedArtifact {
        name: "out".into(),
        path: "/tmp/out".into(),
        key: "v2/out.tgz".into(),
        archive: ArchiveKind::TarGz,
        size: 42,
        sha256: "ab".repeat(32),
        store: None,
    });
    let key = EntryKey {
        namespace: "default".into(),
        cache: "c".into(),
        key: "k".into(),
    };
    let entry = CacheEntry {
        node_id: id.clone(),
        run: "v2".into(),
        outcome,
        created_at: at(2).to_rfc3339(),
        last_hit_at: None,
    };
    write_old_store(&path, 2, &state, &[(key.clone(), entry.clone())]);
    let v2_records: Vec<_> = ["runs", "nodes", "step_cache"]
        .map(|tree| records(&path, tree))
        .concat();
    assert!(v2_records.iter().all(|(_, v)| v[0] == 2));
    // Version 2's records are not this version's: they cannot be read as such.
    let (_, node_bytes) = &records(&path, "nodes")[0];
    assert!(codec::decode::<Node>("node", node_bytes).is_err());

    let store = reopen(&path);
    let back = store.get_run("v2").unwrap().unwrap();
    assert_eq!(back.nodes, state.nodes);
    assert_eq!(back.global_artifacts, state.global_artifacts);
    assert_eq!(
        StepCache::new(store.clone()).get(&key).unwrap(),
        Some(entry)
    );
    drop(store);

    let backup = the_backup(home.path(), 2);
    let copied: Vec<_> = ["runs", "nodes", "step_cache"]
        .map(|tree| records(&backup, tree))
        .concat();
    assert_eq!(copied, v2_records, "the backup is the version 2 store");
    for tree in ["runs", "nodes", "step_cache"] {
        for (_, bytes) in records(&path, tree) {
            assert_eq!(bytes[0], FORMAT_VERSION, "{tree}");
        }
    }
}

#[test]
fn a_store_of_a_newer_version_is_refused_untouched() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("store");
    {
        let store = Store::open(&path).unwrap();
        store.create_run(&run_named("future"), at(0)).unwrap();
    }
    {
        let db = raw_sled(&path);
        db.insert("format_version", &[FORMAT_VERSION + 1]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open_waiting(&path, Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err, Error::UnsupportedStore { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "store {}: written in format version {}, this cox reads version {FORMAT_VERSION} and older; use a newer cox",
            path.display(),
            FORMAT_VERSION + 1
        )
    );
    assert!(!home.path().join("backups").exists());
    // Without a marker, a record of a newer version says the same.
    {
        let db = raw_sled(&path);
        db.remove("format_version").unwrap();
        let runs = db.open_tree("runs").unwrap();
        let mut bytes = runs.get("future").unwrap().unwrap().to_vec();
        bytes[0] = FORMAT_VERSION + 1;
        runs.insert("future", bytes).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open_waiting(&path, Duration::from_secs(10)).unwrap_err();
    assert!(matches!(err, Error::UnsupportedStore { .. }), "{err:?}");
}

/// Set (to the mounted tmpfs) when the test below runs itself inside a user namespace.
const DISK_FULL_DIR: &str = "COX_TEST_DISK_FULL_DIR";

/// A real full disk: a 64 MiB tmpfs, mounted in a user and mount namespace of our own
/// (`unshare -rm`, no root needed), where [`disk_full_inside_a_small_tmpfs`] runs.
#[test]
fn a_full_disk_is_a_clear_error_loses_nothing_and_progress_resumes_with_space() {
    let usable = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=1m t /mnt"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        eprintln!("skipped: unshare -rm with a tmpfs mount is not allowed here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=64m cox-disk-full "$0" && exec "$1" --exact disk_full_inside_a_small_tmpfs --ignored --nocapture"#,
        ])
        .arg(dir.path())
        .arg(&exe)
        .env(DISK_FULL_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// Fills the disk up with a file while a run's step is running.
fn fill(dir: &Path) -> std::fs::File {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // The last bytes a partial chunk could not take.
    while file.write_all(&[0u8; 512]).is_ok() {}
    file
}

#[tokio::test]
#[ignore = "run inside a small tmpfs by a_full_disk_is_a_clear_error_loses_nothing_and_progress_resumes_with_space"]
async fn disk_full_inside_a_small_tmpfs() {
    let Some(dir) = std::env::var_os(DISK_FULL_DIR).map(std::path::PathBuf::from) else {
        return;
    };
    let home = dir.join("home");
    let store_dir = home.join("store");
    let gate = Arc::new(tokio::sync::Notify::new());
    let executor = FakeExecutor::new();
    executor.script(
        Match::Template("first".into()),
        Scripted::gated(succeeded(Some("from a")), Arc::clone(&gate)),
    );
    // Each action is checked against the store: it must already hold the state that
    // produced the action (sled may free some space when it is reopened, so the run can
    // move on a little while the disk is "full"; never ahead of the store).
    let store_slot: Arc<std::sync::OnceLock<Store>> = Default::default();
    let not_stored_first: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let mut config = EngineConfig::new(&home, Arc::clone(&executor) as _);
    let (slot, seen) = (Arc::clone(&store_slot), Arc::clone(&not_stored_first));
    config.on_action = Some(Arc::new(move |action, state: &RunState| {
        let stored = slot.get().map(|store| store.get_run(&state.name));
        let same = matches!(&stored, Some(Ok(Some(stored)))
            if codec::encode("run", stored).ok() == codec::encode("run", state).ok());
        if !same {
            seen.lock().unwrap().push(format!("{action:?}: {stored:?}"));
        }
    }));
    let engine = Engine::open(config).unwrap();
    let _ = store_slot.set(engine.store().clone());
    executor.attach_store(engine.store().clone());
    let name = engine.submit(workflow_from_yaml(TWO_STEPS)).await.unwrap();
    let mut progress = engine.watch(&name).unwrap();
    progress
        .wait_for(|s| !s.running_steps().is_empty())
        .await
        .unwrap();
    assert_eq!(executor.launch_count(), 1);

    // The disk fills up; step a ends: its outcome cannot be stored.
    let filler = fill(&dir);
    gate.notify_one();
    let failing = progress
        .wait_for(|s| s.store_error.is_some())
        .await
        .unwrap()
        .clone();
    let error = failing.store_error.clone().unwrap();
    assert!(
        error.contains("no space left on device")
            && error.contains(&store_dir.display().to_string()),
        "{error}"
    );
    // The API shows it: the run's status message says so while it lasts.
    assert_eq!(
        failing.workflow_json()["status"]["message"].as_str(),
        Some(error.as_str())
    );
    // Reading the store while the disk is full gives the stored state, which did not move
    // on, with the error; or, when the store could not be opened again yet, the same error.
    match engine.get(&name) {
        Ok(Some(shown)) => {
            assert_eq!(shown.store_error.as_deref(), Some(error.as_str()));
            assert_eq!(
                shown.running_steps().len(),
                1,
                "the stored state is as before"
            );
        }
        Err(e @ Error::NoSpace { .. }) => assert_eq!(e.to_string(), error),
        other => panic!("{other:?}"),
    }
    // A new run is refused with the same clear error.
    let refused = engine
        .submit(workflow_from_yaml(
            &TWO_STEPS.replace("name: two", "name: three"),
        ))
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::NoSpace { .. }), "{refused:?}");
    // No step is failed for it.
    assert!(
        !failing
            .nodes
            .values()
            .any(|n| matches!(n.phase, Phase::Failed | Phase::Error))
    );

    // Space returns: the run is stored, goes on, and ends.
    drop(filler);
    std::fs::remove_file(dir.join("filler")).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), engine.await_completion(&name))
        .await
        .expect("the run ends once there is space")
        .unwrap();
    assert_eq!(done.phase(), Phase::Succeeded);
    assert!(done.store_error.is_none());
    assert_eq!(executor.launch_count(), 2);
    assert!(
        not_stored_first.lock().unwrap().is_empty(),
        "actions performed before their state was stored: {:?}",
        not_stored_first.lock().unwrap()
    );
    engine.shutdown().await;
    executor.detach_store();
    drop((engine, store_slot));

    // Nothing was lost or damaged: the reopened store has the finished run, whole.
    let store = reopen(&store_dir);
    let stored = store.get_run(&name).unwrap().unwrap();
    assert_eq!(stored.phase(), Phase::Succeeded);
    assert_eq!(stored.nodes, done.nodes);
    assert!(store.unreadable_runs().unwrap().is_empty());
}
