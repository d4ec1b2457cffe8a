//! Retry and resubmit through the engine (Argo's `retry` and `resubmit --memoized`), with a
//! fake executor that counts launches and a real store.

use cox_scheduler::machine::{NodeFieldSelector, Phase, RESUBMITTED_FROM, RetryOptions, RunState};
use cox_scheduler::testsuite::{Match, SchedulerTest, Scripted, failed, succeeded};
use serde_json::Value;

/// A -> B -> C -> D, each task its own template so launches can be counted per task.
const CHAIN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: chain-
spec:
  entrypoint: main
  arguments:
    parameters: [{name: greeting, value: hello}]
  templates:
    - name: main
      dag:
        tasks:
          - {name: A, template: a}
          - {name: B, template: b, dependencies: [A],
             arguments: {parameters: [{name: from-a, value: "{{tasks.A.outputs.result}}"}]}}
          - {name: C, template: c, dependencies: [B]}
          - {name: D, template: d, dependencies: [C]}
    - {name: a, container: {image: alpine, command: [echo, a]}}
    - name: b
      inputs: {parameters: [{name: from-a}]}
      container: {image: alpine, command: [echo, "{{inputs.parameters.from-a}}"]}
    - {name: c, container: {image: alpine, command: [echo, c]}}
    - {name: d, container: {image: alpine, command: [echo, d]}}
"#;

fn status_nodes(state: &RunState) -> Vec<Value> {
    let wf = state.workflow_json();
    wf["status"]["nodes"]
        .as_object()
        .expect("nodes")
        .values()
        .cloned()
        .collect()
}

fn node(state: &RunState, display: &str) -> Value {
    status_nodes(state)
        .into_iter()
        .find(|n| n["displayName"] == display)
        .unwrap_or_else(|| panic!("no node {display}"))
}

/// The chain, run once with B failing (B's second launch succeeds).
async fn failed_chain(test: &SchedulerTest) -> RunState {
    test.executor
        .on_template("a", succeeded(Some("from the first run")));
    test.executor
        .script(Match::Template("b".into()), Scripted::now(failed(1)));
    test.executor
        .script(Match::Template("b".into()), Scripted::now(succeeded(None)));
    let name = test.submit(CHAIN).await;
    let state = test.await_completion(&name).await;
    assert_eq!(state.phase(), Phase::Failed, "{}", state.message);
    assert_eq!(test.executor.launch_count_of("c"), 0);
    state
}

#[tokio::test]
async fn memoized_resubmit_reuses_a_and_runs_b_again() {
    let test = SchedulerTest::new();
    let old = failed_chain(&test).await;
    let old_a = node(&old, "A");

    let name = test
        .engine()
        .resubmit(&old.name, true, &[])
        .await
        .expect("resubmit");
    assert_ne!(name, old.name);
    assert!(name.starts_with("chain-"), "{name}");
    let new = test.await_completion(&name).await;
    assert_eq!(
        new.phase(),
        Phase::Succeeded,
        "{}: {:#?}",
        new.message,
        status_nodes(&new)
    );

    // A was not run again; it shows as Argo shows it, with its outputs.
    assert_eq!(test.executor.launch_count_of("a"), 1);
    let a = node(&new, "A");
    assert_eq!(a["type"], "Skipped");
    assert_eq!(a["phase"], "Skipped");
    assert_eq!(
        a["message"],
        format!("original pod: {}", old_a["id"].as_str().expect("id"))
    );
    assert_eq!(a["outputs"]["result"], "from the first run");
    assert!(a["id"].as_str().expect("id").starts_with(&name));
    // B ran again, with A's output, then C and D, in order.
    assert_eq!(test.executor.launch_count_of("b"), 2);
    let b_spec = test
        .executor
        .launches()
        .into_iter()
        .rev()
        .find(|l| l.spec.node_id == node(&new, "B")["id"])
        .expect("B launched in the new run");
    assert_eq!(b_spec.spec.command, ["echo", "from the first run"]);
    assert_eq!(test.executor.launch_count_of("c"), 1);
    assert_eq!(test.executor.launch_count_of("d"), 1);
    let wf = new.workflow_json();
    assert_eq!(
        wf["metadata"]["labels"][RESUBMITTED_FROM],
        old.name.as_str()
    );

    // The old run is untouched.
    let again = test.engine().get(&old.name).expect("get").expect("stored");
    assert_eq!(again.phase(), Phase::Failed);
}

#[tokio::test]
async fn plain_resubmit_runs_everything_with_new_parameters() {
    let test = SchedulerTest::new();
    let old = failed_chain(&test).await;
    let name = test
        .engine()
        .resubmit(&old.name, false, &[("greeting".into(), "hi".into())])
        .await
        .expect("resubmit");
    let new = test.await_completion(&name).await;
    assert_eq!(new.phase(), Phase::Succeeded, "{}", new.message);
    assert_eq!(test.executor.launch_count_of("a"), 2);
    let wf = new.workflow_json();
    assert_eq!(wf["spec"]["arguments"]["parameters"][0]["value"], "hi");
}

#[tokio::test]
async fn memoized_resubmit_needs_a_failed_run() {
    let test = SchedulerTest::new();
    test.executor.on_template("a", succeeded(Some("x")));
    let name = test.submit(CHAIN).await;
    assert_eq!(test.await_completion(&name).await.phase(), Phase::Succeeded);
    let err = test
        .engine()
        .resubmit(&name, true, &[])
        .await
        .expect_err("a succeeded run");
    assert!(
        err.to_string()
            .contains("workflow must be Failed/Error to resubmit in memoized mode"),
        "{err}"
    );
    let err = test
        .engine()
        .retry(&name, &RetryOptions::default())
        .await
        .expect_err("a succeeded run");
    assert!(
        err.to_string().contains("must be Failed/Error to retry"),
        "{err}"
    );
}

#[tokio::test]
async fn retry_in_place_runs_what_failed_and_ends_succeeded() {
    let test = SchedulerTest::new();
    let old = failed_chain(&test).await;
    test.engine()
        .retry(&old.name, &RetryOptions::default())
        .await
        .expect("retry");
    let state = test.await_completion(&old.name).await;
    assert_eq!(state.phase(), Phase::Succeeded, "{}", state.message);
    assert_eq!(test.executor.launch_count_of("a"), 1, "A succeeded: kept");
    assert_eq!(test.executor.launch_count_of("b"), 2);
    assert_eq!(test.executor.launch_count_of("d"), 1);
    assert_eq!(node(&state, "A")["type"], "Pod");
    assert_eq!(node(&state, "B")["phase"], "Succeeded");
    // The store holds the retried run, and no node of the failed attempt.
    let stored = test.engine().get(&old.name).expect("get").expect("stored");
    assert_eq!(stored.phase(), Phase::Succeeded);
    assert_eq!(
        stored.nodes.len(),
        5,
        "{:?}",
        stored.nodes.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn retry_restarts_selected_successful_nodes() {
    let test = SchedulerTest::new();
    let old = failed_chain(&test).await;
    let options = RetryOptions {
        restart_successful: true,
        node_selector: Some(NodeFieldSelector::parse("displayName=A").expect("selector")),
        parameters: Vec::new(),
    };
    test.engine()
        .retry(&old.name, &options)
        .await
        .expect("retry");
    let state = test.await_completion(&old.name).await;
    assert_eq!(state.phase(), Phase::Succeeded, "{}", state.message);
    assert_eq!(test.executor.launch_count_of("a"), 2, "A was selected");
    assert!(NodeFieldSelector::parse("color=red").is_err());
    assert!(NodeFieldSelector::parse("displayName").is_err());
}

#[tokio::test]
async fn memoized_resubmit_of_steps_with_a_loop_reruns_only_the_failed_item() {
    let test = SchedulerTest::new();
    test.executor
        .script(Match::Node("work(1:b)".into()), Scripted::now(failed(2)));
    test.executor.script(
        Match::Node("work(1:b)".into()),
        Scripted::now(succeeded(Some("b"))),
    );
    let name = test
        .submit(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: loop-
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - {name: prep, template: t}
        - - {name: work, template: t, withItems: [a, b, c]}
        - - {name: final, template: t}
    - {name: t, container: {image: alpine, command: [echo, x]}}
"#,
        )
        .await;
    let old = test.await_completion(&name).await;
    assert_eq!(old.phase(), Phase::Failed, "{}", old.message);
    let launched = test.executor.launch_count();
    assert_eq!(launched, 4, "prep and three items");

    let name = test
        .engine()
        .resubmit(&old.name, true, &[])
        .await
        .expect("resubmit");
    let new = test.await_completion(&name).await;
    assert_eq!(new.phase(), Phase::Succeeded, "{}", new.message);
    // Only the failed item and the last step ran.
    assert_eq!(
        test.executor.launch_count(),
        launched + 2,
        "{:#?}",
        status_nodes(&new)
    );
    for reused in ["prep", "work(0:a)", "work(2:c)"] {
        assert_eq!(node(&new, reused)["phase"], "Skipped", "{reused}");
    }
    assert_eq!(node(&new, "work(1:b)")["phase"], "Succeeded");
    assert_eq!(node(&new, "final")["phase"], "Succeeded");
}
