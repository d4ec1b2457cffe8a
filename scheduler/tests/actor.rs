//! Run actors driving the real machine, with a fake executor and a real store.
//!
//! Every test here needs the machine's `apply` (Argo's semantics); they are in one file so
//! they are easy to skip (`--skip actor::`) while the machine is being changed.

use std::time::Duration;

use cox_scheduler::actor::LOST_STEP_MESSAGE;
use cox_scheduler::machine::{Action, Phase};
use cox_scheduler::testsuite::{Match, SchedulerTest, Scripted, failed, succeeded};

const STEPS: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: steps-
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: first
            template: say
        - - name: second
            template: say
          - name: third
            template: shout
    - name: say
      container:
        image: alpine
        command: [echo, hi]
    - name: shout
      container:
        image: alpine
        command: [echo, HI]
"#;

/// Poll until `done` (the fake's counters change from other tasks), at most 10 s.
async fn eventually(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within 10 s"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_steps_workflow_runs_to_completion() {
    let test = SchedulerTest::new();
    let name = test.submit(STEPS).await;
    assert!(
        name.starts_with("steps-") && name.len() == "steps-".len() + 5,
        "{name}"
    );
    let state = test.await_completion(&name).await;
    assert_eq!(state.phase(), Phase::Succeeded, "{}", state.message);
    assert_eq!(test.executor.launch_count(), 3);
    assert_eq!(test.executor.launch_count_of("say"), 2);
    assert_eq!(test.executor.launch_count_of("shout"), 1);
    // The stored final state is the one returned, and it says Succeeded in Argo's JSON.
    let stored = test.engine().get(&name).unwrap().unwrap();
    assert_eq!(stored.phase(), Phase::Succeeded);
    assert_eq!(stored.workflow_json()["status"]["phase"], "Succeeded");
    assert!(stored.running_steps().is_empty());
}

#[tokio::test]
async fn every_action_is_performed_after_its_state_is_persisted() {
    let test = SchedulerTest::new();
    let name = test.submit(STEPS).await;
    test.await_completion(&name).await;
    let actions = test.actions();
    assert!(
        actions
            .iter()
            .any(|a| matches!(a.action, Action::Launch(_)))
    );
    assert!(matches!(
        actions.last().map(|a| &a.action),
        Some(Action::Finished)
    ));
    for record in &actions {
        assert!(
            record.persisted_first,
            "not persisted before {:?}",
            record.action
        );
    }
    // Each launched node was already in the store, marked launched, when the executor saw it.
    for launch in test.executor.launches() {
        let node = launch
            .stored_node
            .unwrap_or_else(|| panic!("node {} not stored at launch", launch.spec.node_id));
        assert!(node.launched, "node {} not marked launched", node.id);
    }
}

#[tokio::test]
async fn a_failing_step_fails_the_run() {
    let test = SchedulerTest::new();
    test.executor.on_template("shout", failed(3));
    let name = test.submit(STEPS).await;
    let state = test.await_completion(&name).await;
    assert_eq!(state.phase(), Phase::Failed);
    let third = state
        .nodes
        .values()
        .find(|n| n.display_name == "third")
        .unwrap();
    assert_eq!(third.phase, Phase::Failed);
    assert_eq!(third.message, "Error (exit code 3)");
}

#[tokio::test]
async fn an_injected_launch_failure_ends_the_run_in_error() {
    let test = SchedulerTest::new();
    test.fail_next_launch();
    let name = test.submit(STEPS).await;
    let state = test.await_completion(&name).await;
    assert!(state.phase().is_failure(), "{:?}", state.phase());
    assert_eq!(test.executor.launch_count(), 1);
    let first = state
        .nodes
        .values()
        .find(|n| n.display_name == "first")
        .unwrap();
    assert_eq!(first.phase, Phase::Error);
    assert_eq!(first.message, "injected launch failure");
}

#[tokio::test]
async fn progress_is_published_for_each_new_state() {
    let test = SchedulerTest::new();
    test.executor.script(
        Match::Template("say".into()),
        Scripted::after(succeeded(None), Duration::from_millis(20)),
    );
    let name = test.submit(STEPS).await;
    let mut progress = test.engine().watch(&name).expect("live run");
    let mut phases = Vec::new();
    loop {
        let phase = progress.borrow_and_update().phase();
        phases.push(phase);
        if phase.is_done() || progress.changed().await.is_err() {
            break;
        }
    }
    assert_eq!(phases.last(), Some(&Phase::Succeeded), "{phases:?}");
    assert!(phases.contains(&Phase::Running), "{phases:?}");
    test.await_completion(&name).await;
}

#[tokio::test]
async fn after_a_restart_lost_steps_are_errors_and_retries_run_them_again() {
    let mut test = SchedulerTest::new();
    let retried = STEPS.replace(
        "    - name: say\n",
        "    - name: say\n      retryStrategy: {limit: 1, retryPolicy: Always}\n",
    );
    // The first attempt of `say` never ends; the engine goes away while it runs.
    test.executor
        .script(Match::Template("say".into()), Scripted::hang());
    test.executor.script(
        Match::Template("say".into()),
        Scripted::now(succeeded(None)),
    );
    let name = test.submit(&retried).await;
    eventually(|| test.executor.launch_count() == 1).await;

    let resumed = test.restart().await;
    assert_eq!(resumed.as_slice(), std::slice::from_ref(&name));
    // The shutdown stopped the attempt that was running.
    eventually(|| test.executor.launches()[0].cancelled).await;

    let state = test.await_completion(&name).await;
    assert_eq!(state.phase(), Phase::Succeeded, "{}", state.message);
    let lost = state
        .nodes
        .values()
        .find(|n| n.id == test.executor.launches()[0].spec.node_id)
        .unwrap();
    assert_eq!(lost.phase, Phase::Error);
    assert_eq!(lost.message, LOST_STEP_MESSAGE);
    // `first` ran again as its retry, then the other two.
    assert_eq!(test.executor.launch_count(), 4);
}

#[tokio::test]
async fn after_a_restart_a_lost_step_without_retries_fails_the_run() {
    let mut test = SchedulerTest::new();
    test.executor
        .script(Match::Node("first".into()), Scripted::hang());
    let name = test.submit(STEPS).await;
    eventually(|| test.executor.launch_count() == 1).await;
    test.restart().await;
    let state = test.await_completion(&name).await;
    assert!(state.phase().is_failure(), "{:?}", state.phase());
    assert_eq!(test.executor.launch_count(), 1);
}

#[tokio::test]
async fn deleting_a_running_run_stops_its_steps_and_removes_it() {
    let test = SchedulerTest::new();
    test.executor
        .script(Match::Node("first".into()), Scripted::hang());
    let name = test.submit(STEPS).await;
    eventually(|| test.executor.launch_count() == 1).await;
    assert!(test.engine().delete(&name).await.unwrap());
    eventually(|| test.executor.launches()[0].cancelled).await;
    assert!(test.engine().get(&name).unwrap().is_none());
    assert!(test.engine().list().unwrap().is_empty());
}

#[tokio::test]
async fn a_fixed_name_that_is_taken_is_refused() {
    let test = SchedulerTest::new();
    let fixed = STEPS.replace("generateName: steps-", "name: fixed");
    let name = test.submit(&fixed).await;
    assert_eq!(name, "fixed");
    test.await_completion(&name).await;
    let err = test
        .engine()
        .submit(cox_scheduler::testsuite::workflow_from_yaml(&fixed))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "run fixed: already exists");
}
