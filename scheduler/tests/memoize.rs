//! Template `memoize`: the step cache in the store, through the engine, with a fake
//! executor that counts launches.

use std::sync::Arc;
use std::time::Duration;

use cox_scheduler::cache::EntryKey;
use cox_scheduler::machine::{Phase, RunState};
use cox_scheduler::testsuite::{Match, SchedulerTest, Scripted, failed, succeeded};
use cox_worker::repo_config::RepositoryLocation;
use serde_json::Value;

/// One memoized step whose key comes from a parameter.
fn memoized(key: &str, max_age: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: memo-
spec:
  entrypoint: main
  arguments:
    parameters: [{{name: key, value: "{key}"}}]
  templates:
    - name: main
      inputs:
        parameters: [{{name: key}}]
      memoize:
        key: "k-{{{{inputs.parameters.key}}}}"
        maxAge: "{max_age}"
        cache:
          configMap:
            name: my-cache
      container:
        image: alpine
        command: [echo, hi]
"#
    )
}

/// The status node of the run's only step (the root here), as Argo's JSON.
fn root_status(state: &RunState) -> Value {
    let wf = state.workflow_json();
    wf["status"]["nodes"][&state.name].clone()
}

#[tokio::test]
async fn a_memoized_step_runs_once_then_hits_with_the_same_outputs() {
    let test = SchedulerTest::new();
    test.executor
        .on_template("main", succeeded(Some("computed once")));

    let first = test.submit(&memoized("a", "1h")).await;
    let first = test.await_completion(&first).await;
    assert_eq!(first.phase(), Phase::Succeeded, "{}", first.message);
    let node = root_status(&first);
    assert_eq!(
        node["memoizationStatus"],
        serde_json::json!({"hit": false, "key": "k-a", "cacheName": "my-cache"})
    );
    assert_eq!(test.executor.launch_count(), 1);

    let second = test.submit(&memoized("a", "1h")).await;
    let second = test.await_completion(&second).await;
    assert_eq!(second.phase(), Phase::Succeeded, "{}", second.message);
    let node = root_status(&second);
    assert_eq!(node["memoizationStatus"]["hit"], true, "{node:#}");
    assert_eq!(node["outputs"]["result"], "computed once", "{node:#}");
    assert_eq!(test.executor.launch_count(), 1, "a hit does not launch");

    // Another key is another entry.
    let third = test.submit(&memoized("b", "1h")).await;
    let third = test.await_completion(&third).await;
    assert_eq!(root_status(&third)["memoizationStatus"]["hit"], false);
    assert_eq!(test.executor.launch_count(), 2);

    let entries = test.engine().cache().list().expect("list");
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.key.as_str()).collect();
    assert_eq!(keys, ["k-a", "k-b"]);
    assert_eq!(entries[0].0.cache, "my-cache");
    assert!(entries[0].1.last_hit_at.is_some(), "the hit is recorded");
}

#[tokio::test]
async fn failed_outcomes_are_never_cached() {
    let test = SchedulerTest::new();
    // The first launch fails, the next one succeeds.
    test.executor.on_template("main", failed(3));
    test.executor
        .on_template("main", succeeded(Some("now fine")));
    let name = test.submit(&memoized("f", "1h")).await;
    assert_eq!(test.await_completion(&name).await.phase(), Phase::Failed);
    assert!(test.engine().cache().list().expect("list").is_empty());

    // The next run computes again.
    test.executor
        .on_template("main", succeeded(Some("now fine")));
    let name = test.submit(&memoized("f", "1h")).await;
    let state = test.await_completion(&name).await;
    assert_eq!(state.phase(), Phase::Succeeded);
    assert_eq!(root_status(&state)["memoizationStatus"]["hit"], false);
    assert_eq!(test.executor.launch_count(), 2);
}

#[tokio::test]
async fn an_entry_older_than_max_age_is_recomputed() {
    let test = SchedulerTest::new();
    let name = test.submit(&memoized("old", "1h")).await;
    test.await_completion(&name).await;
    // Age the entry by hand: created two hours ago.
    let cache = test.engine().cache();
    let key = EntryKey {
        namespace: "default".into(),
        cache: "my-cache".into(),
        key: "k-old".into(),
    };
    let mut entry = cache.get(&key).expect("get").expect("stored");
    entry.created_at = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    cache.put(&key, &entry).expect("put");

    let name = test.submit(&memoized("old", "1h")).await;
    let state = test.await_completion(&name).await;
    assert_eq!(root_status(&state)["memoizationStatus"]["hit"], false);
    assert_eq!(test.executor.launch_count(), 2);
    // Without maxAge any age will do.
    let name = test.submit(&memoized("old", "")).await;
    let state = test.await_completion(&name).await;
    assert_eq!(root_status(&state)["memoizationStatus"]["hit"], true);
    assert_eq!(test.executor.launch_count(), 2);
}

#[tokio::test]
async fn identical_steps_in_flight_run_once() {
    let test = SchedulerTest::new();
    test.executor.script(
        Match::Template("work".into()),
        Scripted::after(succeeded(Some("shared")), Duration::from_millis(300)),
    );
    let name = test
        .submit(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: twins-
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {name: a, template: work}
          - {name: b, template: work}
    - name: work
      memoize:
        key: same
        cache:
          configMap:
            name: c
      container:
        image: alpine
        command: [echo, hi]
"#,
        )
        .await;
    let state = test.await_completion(&name).await;
    assert_eq!(state.phase(), Phase::Succeeded, "{}", state.message);
    assert_eq!(
        test.executor.launch_count(),
        1,
        "the twin waited for the first"
    );
    let wf = state.workflow_json();
    let hits: Vec<bool> = wf["status"]["nodes"]
        .as_object()
        .expect("nodes")
        .values()
        .filter(|n| n["type"] == "Pod")
        .map(|n| n["memoizationStatus"]["hit"].as_bool().expect("memoized"))
        .collect();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits.iter().filter(|h| **h).count(), 1, "{hits:?}");
    for n in wf["status"]["nodes"].as_object().expect("nodes").values() {
        if n["type"] == "Pod" {
            assert_eq!(n["outputs"]["result"], "shared");
        }
    }
}

/// A producer step saves an artifact; a consumer with the automatic memoization key
/// (`coxswain.io/memoize-key: auto`) takes it and a parameter.
fn auto_keyed(parameter: &str) -> String {
    format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: auto-
spec:
  entrypoint: main
  arguments:
    parameters: [{{name: p, value: "{parameter}"}}]
  templates:
    - name: main
      steps:
        - - name: produce
            template: produce
        - - name: consume
            template: consume
            arguments:
              parameters: [{{name: p, value: "{{{{workflow.parameters.p}}}}"}}]
              artifacts: [{{name: data, from: "{{{{steps.produce.outputs.artifacts.data}}}}"}}]
    - name: produce
      container: {{image: alpine, command: [sh, -c, "echo data > /tmp/data"]}}
      outputs:
        artifacts: [{{name: data, path: /tmp/data}}]
    - name: consume
      metadata:
        annotations: {{coxswain.io/memoize-key: auto}}
      inputs:
        parameters: [{{name: p}}]
        artifacts: [{{name: data, path: /tmp/in}}]
      memoize:
        key: "consume"
        cache: {{configMap: {{name: auto-cache}}}}
      container: {{image: alpine, command: [cat, /tmp/in]}}
"#
    )
}

/// The producer's outcome: an artifact whose content has this digest.
fn produced(sha256: &str) -> cox_worker::step::StepOutcome {
    let mut outcome = succeeded(None);
    outcome.artifacts.push(cox_worker::step::SavedArtifact {
        name: "data".into(),
        path: "/tmp/data".into(),
        key: "somewhere/data.tgz".into(),
        archive: cox_worker::step::ArchiveKind::TarGz,
        size: 10,
        sha256: sha256.into(),
        store: None,
    });
    outcome
}

#[tokio::test]
async fn the_automatic_key_hits_on_the_same_inputs_and_misses_on_changed_ones() {
    let test = SchedulerTest::new();
    let digest_a = "a".repeat(64);
    let digest_b = "b".repeat(64);
    // The producer's content: a, a, b (with the same parameter), then a again.
    for digest in [&digest_a, &digest_a, &digest_b, &digest_a, &digest_a] {
        test.executor.script(
            Match::Template("produce".into()),
            Scripted::now(produced(digest)),
        );
    }
    let consume_key = |state: &RunState| {
        let node = state
            .nodes
            .values()
            .find(|n| n.display_name == "consume")
            .expect("consume node");
        let memo = node.memoization.clone().expect("memoization status");
        (memo.hit, memo.key)
    };
    let mut keys = Vec::new();
    for (parameter, expect_hit, launches) in [
        ("x", false, 1), // first time: computed
        ("x", true, 1),  // same template, parameter and artifact content: a hit
        ("x", false, 2), // the artifact's content changed: a miss
        ("y", false, 3), // the parameter changed: a miss
        ("y", true, 3),  // and that is cached too
    ] {
        let name = test.submit(&auto_keyed(parameter)).await;
        let state = test.await_completion(&name).await;
        assert_eq!(state.phase(), Phase::Succeeded, "{}", state.message);
        let (hit, key) = consume_key(&state);
        assert_eq!(hit, expect_hit, "parameter {parameter}, key {key}");
        assert_eq!(test.executor.launch_count_of("consume"), launches);
        assert!(
            key.starts_with("auto:") && key.len() == 5 + 64,
            "an automatic key: {key}"
        );
        keys.push(key);
    }
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[1], keys[2]);
    assert_ne!(keys[0], keys[3]);
    assert_eq!(keys[3], keys[4]);
    let cached: Vec<String> = test
        .engine()
        .cache()
        .list()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.key)
        .collect();
    assert_eq!(cached.len(), 3, "{cached:?}");
}

#[tokio::test]
async fn a_memoized_step_adopted_after_a_restart_is_cached_like_any_completion() {
    let mut test = SchedulerTest::new();
    test.executor
        .script(Match::Template("main".into()), Scripted::hang());
    let first = test.submit(&memoized("adopted", "1h")).await;
    let mut progress = test.engine().watch(&first).unwrap();
    progress
        .wait_for(|s| !s.running_steps().is_empty())
        .await
        .unwrap();
    // The scheduler goes away while the step runs; the step ends meanwhile and is adopted
    // with its outcome when the scheduler is back.
    test.executor
        .on_adopt(succeeded(Some("finished while nobody watched")));
    assert_eq!(test.restart().await, std::slice::from_ref(&first));
    let first = test.await_completion(&first).await;
    assert_eq!(first.phase(), Phase::Succeeded, "{}", first.message);
    assert_eq!(test.executor.launch_count(), 1);

    let entries = test.engine().cache().list().unwrap();
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.key.as_str()).collect();
    assert_eq!(keys, ["k-adopted"]);
    // The next identical step hits it.
    let second = test.submit(&memoized("adopted", "1h")).await;
    let second = test.await_completion(&second).await;
    let node = root_status(&second);
    assert_eq!(node["memoizationStatus"]["hit"], true, "{node:#}");
    assert_eq!(node["outputs"]["result"], "finished while nobody watched");
    assert_eq!(test.executor.launch_count(), 1, "a hit does not launch");
}

#[tokio::test]
async fn a_hit_whose_artifacts_were_deleted_is_a_miss_and_the_entry_is_evicted() {
    let test = SchedulerTest::new();
    let mut outcome = succeeded(Some("with an artifact"));
    outcome.artifacts.push(cox_worker::step::SavedArtifact {
        name: "out".into(),
        path: "/tmp/out".into(),
        key: "memo-runs/out.tgz".into(),
        archive: cox_worker::step::ArchiveKind::TarGz,
        size: 10,
        sha256: "c".repeat(64),
        store: None,
    });
    test.executor.on_template("main", outcome);
    let first = test.submit(&memoized("gc", "1h")).await;
    test.await_completion(&first).await;
    let second = test.submit(&memoized("gc", "1h")).await;
    let second = test.await_completion(&second).await;
    assert_eq!(root_status(&second)["memoizationStatus"]["hit"], true);
    assert_eq!(test.executor.launch_count(), 1);

    // artifactGC deletes the artifact the entry points at.
    use cox_worker::step::Executor;
    test.executor
        .delete_artifacts(None, vec!["memo-runs/out.tgz".into()])
        .await
        .unwrap();
    let third = test.submit(&memoized("gc", "1h")).await;
    let third_state = test.await_completion(&third).await;
    assert_eq!(third_state.phase(), Phase::Succeeded);
    assert_eq!(root_status(&third_state)["memoizationStatus"]["hit"], false);
    assert_eq!(test.executor.launch_count(), 2, "computed again");
    // The old entry went; the new outcome took its place.
    let entries = test.engine().cache().list().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].1.run, third);
}

/// An executor whose every step saves the same artifacts, and that records which
/// repository each existence check of [`Executor::missing_artifacts`] went to.
struct SavesArtifacts {
    outcome: cox_worker::step::StepOutcome,
    checked: std::sync::Mutex<Vec<(Option<RepositoryLocation>, Vec<String>)>>,
}

impl cox_worker::step::Executor for SavesArtifacts {
    fn run(
        &self,
        _spec: cox_worker::step::StepSpec,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> cox_worker::step::BoxFuture<'_, cox_worker::step::StepOutcome> {
        let outcome = self.outcome.clone();
        Box::pin(async move { outcome })
    }

    fn log_path(&self, _run: &str, _node_id: &str, _attempt: u32) -> Option<std::path::PathBuf> {
        None
    }

    fn missing_artifacts(
        &self,
        repository: Option<RepositoryLocation>,
        keys: Vec<String>,
    ) -> cox_worker::step::BoxFuture<'_, Result<Vec<String>, String>> {
        self.checked.lock().unwrap().push((repository, keys));
        Box::pin(async { Ok(Vec::new()) })
    }
}

fn memoized_spec(run: &str, repository: Option<RepositoryLocation>) -> cox_worker::step::StepSpec {
    cox_worker::step::StepSpec {
        run: run.into(),
        node_id: format!("{run}-1"),
        attempt: 0,
        image: "alpine".into(),
        command: vec!["true".into()],
        args: Vec::new(),
        script: None,
        env: Vec::new(),
        working_dir: None,
        input_artifacts: Vec::new(),
        output_parameters: Vec::new(),
        output_artifacts: Vec::new(),
        volumes: Vec::new(),
        deadline_seconds: None,
        capture_result: false,
        archive_logs: false,
        memoize: Some(cox_worker::step::Memoize {
            namespace: "default".into(),
            cache: "where".into(),
            key: "k".into(),
            max_age_seconds: None,
        }),
        repository,
    }
}

/// A [`MemoizingExecutor`] over a new store's cache, whose steps save `artifacts`.
///
/// [`MemoizingExecutor`]: cox_scheduler::cache::MemoizingExecutor
struct Memoizing {
    _home: tempfile::TempDir,
    cache: cox_scheduler::cache::StepCache,
    inner: Arc<SavesArtifacts>,
    executor: cox_scheduler::cache::MemoizingExecutor,
}

impl Memoizing {
    fn saving(artifacts: Vec<cox_worker::step::SavedArtifact>) -> Memoizing {
        let home = tempfile::tempdir().unwrap();
        let store = cox_scheduler::store::Store::open(&home.path().join("store")).unwrap();
        let cache = cox_scheduler::cache::StepCache::new(store);
        let mut outcome = succeeded(None);
        outcome.artifacts = artifacts;
        let inner = Arc::new(SavesArtifacts {
            outcome,
            checked: Default::default(),
        });
        let executor = cox_scheduler::cache::MemoizingExecutor::new(
            inner.clone(),
            cache.clone(),
            Arc::new(cox_scheduler::actor::SystemClock),
        );
        Memoizing {
            _home: home,
            cache,
            inner,
            executor,
        }
    }

    async fn run(
        &self,
        run: &str,
        repository: Option<RepositoryLocation>,
    ) -> cox_worker::step::StepOutcome {
        use cox_worker::step::Executor;
        let cancel = tokio_util::sync::CancellationToken::new();
        self.executor
            .run(memoized_spec(run, repository), cancel)
            .await
    }
}

/// A saved artifact named `name` of run `first`, in `store`.
fn saved_artifact(
    name: &str,
    store: Option<RepositoryLocation>,
) -> cox_worker::step::SavedArtifact {
    cox_worker::step::SavedArtifact {
        name: name.into(),
        path: format!("/tmp/{name}"),
        key: format!("first/{name}.tgz"),
        archive: cox_worker::step::ArchiveKind::TarGz,
        size: 1,
        sha256: "0".repeat(64),
        store,
    }
}

#[tokio::test]
async fn a_hit_reads_artifacts_where_they_were_saved_whatever_the_hitting_runs_repository() {
    let own = RepositoryLocation::S3 {
        endpoint: Some("127.0.0.1:9000".into()),
        bucket: "own".into(),
        region: "us-east-1".into(),
        insecure: true,
        key_prefix: String::new(),
        secrets: Default::default(),
    };
    let memoizing = Memoizing::saving(vec![
        saved_artifact("in-run", None),
        saved_artifact("own", Some(own.clone())),
    ]);
    let repo_a = RepositoryLocation::S3 {
        endpoint: Some("127.0.0.1:9000".into()),
        bucket: "run-a".into(),
        region: "us-east-1".into(),
        insecure: true,
        key_prefix: "a/".into(),
        secrets: Default::default(),
    };

    // Computed in a run with its own repository: the entry records it for the output
    // saved there, and keeps the other's own bucket.
    let first = memoizing.run("first", Some(repo_a.clone())).await;
    assert!(!first.cache_hit);
    assert_eq!(first.artifacts[0].store, None, "the run's own outcome");
    let entries = memoizing.cache.list().unwrap();
    let stores: Vec<_> = (entries[0].1.outcome.artifacts.iter())
        .map(|a| a.store.clone())
        .collect();
    assert_eq!(stores, [Some(repo_a.clone()), Some(own.clone())]);

    // A hit in a run of the same repository: its output is in the run's repository.
    let same = memoizing.run("same", Some(repo_a.clone())).await;
    assert!(same.cache_hit);
    let stores: Vec<_> = same.artifacts.iter().map(|a| a.store.clone()).collect();
    assert_eq!(stores, [None, Some(own.clone())]);

    // A hit in a run of another repository: read where they are.
    let other = memoizing.run("other", None).await;
    assert!(other.cache_hit);
    let stores: Vec<_> = other.artifacts.iter().map(|a| a.store.clone()).collect();
    assert_eq!(stores, [Some(repo_a.clone()), Some(own.clone())]);

    // Each hit checked each artifact in its own place.
    let checked = memoizing.inner.checked.lock().unwrap().clone();
    let expected = vec![
        (Some(repo_a.clone()), vec!["first/in-run.tgz".to_string()]),
        (Some(own.clone()), vec!["first/own.tgz".to_string()]),
    ];
    assert_eq!(checked, [expected.clone(), expected].concat());
}

#[tokio::test]
async fn a_hit_from_another_runs_local_repository_is_computed_again() {
    let memoizing = Memoizing::saving(vec![saved_artifact("out", None)]);
    let local = RepositoryLocation::Local {
        path: "/repos/a".into(),
    };
    let first = memoizing.run("first", Some(local.clone())).await;
    assert!(!first.cache_hit);
    // A run of that directory hits.
    let same = memoizing.run("same", Some(local)).await;
    assert!(same.cache_hit);
    assert_eq!(same.artifacts[0].store, None);
    // Another run's steps could not read that directory: computed again.
    let other = memoizing.run("other", None).await;
    assert!(!other.cache_hit);
    assert_eq!(memoizing.cache.list().unwrap()[0].1.run, "other");
}
