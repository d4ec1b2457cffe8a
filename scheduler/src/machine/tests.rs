//! The machine driven by scripted step outcomes: no processes, no clock, no I/O.

use super::*;
use chrono::{Duration, TimeZone};
use cox_config::load::load;
use cox_config::model::{Manifest, Workflow};
use cox_worker::step::{StepOutcome, StepPhase};

fn workflow(yaml: &str) -> Workflow {
    let loaded = load("test.yaml", yaml);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    match loaded.documents.into_iter().next().map(|d| d.manifest) {
        Some(Manifest::Workflow(mut wf)) => {
            wf.metadata.name = Some("wf".into());
            wf
        }
        other => panic!("not a workflow: {other:?}"),
    }
}

fn ok(result: &str) -> StepOutcome {
    StepOutcome {
        phase: StepPhase::Succeeded,
        exit_code: Some(0),
        message: String::new(),
        result: Some(result.into()),
        parameters: Vec::new(),
        artifacts: Vec::new(),
        started_at: None,
        finished_at: None,
        cache_hit: false,
    }
}

fn failed(code: i32) -> StepOutcome {
    StepOutcome {
        phase: StepPhase::Failed,
        exit_code: Some(code),
        message: format!("Error (exit code {code})"),
        result: Some(String::new()),
        parameters: Vec::new(),
        artifacts: Vec::new(),
        started_at: None,
        finished_at: None,
        cache_hit: false,
    }
}

/// Run to the end, answering each launch with `answer(spec)`; returns the launch order
/// (the first argument of each step, or its node name).
fn drive(
    state: &mut RunState,
    mut answer: impl FnMut(&cox_worker::step::StepSpec) -> StepOutcome,
) -> Vec<String> {
    let mut now = chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let mut queue: Vec<cox_worker::step::StepSpec> = Vec::new();
    let mut launched = Vec::new();
    let mut actions = state.apply(Event::Start { now });
    for _ in 0..10_000 {
        let mut wake = None;
        let mut granted = Vec::new();
        for action in actions.drain(..) {
            match action {
                Action::Launch(spec) => {
                    launched.push(
                        spec.args
                            .first()
                            .cloned()
                            .unwrap_or_else(|| spec.node_id.clone()),
                    );
                    queue.push(*spec);
                }
                Action::WakeAt { at } => wake = Some(at),
                Action::DeleteArtifacts { keys, .. } => {
                    launched.extend(keys.into_iter().map(|k| format!("gc:{k}")))
                }
                Action::Finished => return launched,
                Action::Cancel { .. } => {}
                // Nothing else holds locks here: admitted at once.
                Action::Acquire { node_id, .. } => granted.push(node_id),
            }
        }
        if !granted.is_empty() {
            for node_id in granted {
                actions.extend(state.apply(Event::LockGranted { node_id, now }));
            }
            continue;
        }
        now += Duration::seconds(1);
        if !queue.is_empty() {
            let spec = queue.remove(0);
            let outcome = answer(&spec);
            actions = state.apply(Event::StepFinished {
                node_id: spec.node_id.clone(),
                outcome,
                now,
            });
        } else if let Some(at) = wake {
            now = now.max(at);
            actions = state.apply(Event::Timer { now });
        } else {
            panic!(
                "stuck: nothing running, nothing to wait for: {:#?}",
                state.workflow_json()["status"]
            );
        }
    }
    panic!("did not finish");
}

fn node_phase(state: &RunState, display: &str) -> Option<&'static str> {
    state
        .nodes
        .values()
        .find(|n| n.display_name == display)
        .map(|n| n.phase.as_str())
}

const ECHO: &str = "  - name: echo\n    inputs: {parameters: [{name: m}]}\n    container: {image: busybox, command: [echo], args: [\"{{inputs.parameters.m}}\"]}\n";

#[test]
fn a_single_container_runs_and_the_workflow_succeeds() {
    let mut state = RunState::new(workflow("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: x-}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    container: {image: busybox, command: [echo], args: [hi]}\n"), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |_| ok("hi"));
    assert_eq!(launched, ["hi"]);
    assert_eq!(state.phase(), Phase::Succeeded);
    let json = state.workflow_json();
    assert_eq!(json["status"]["phase"], "Succeeded");
    assert_eq!(json["status"]["nodes"]["wf"]["outputs"]["result"], "hi");
}

#[test]
fn steps_run_group_after_group_and_pass_outputs() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {{name: a, template: echo, arguments: {{parameters: [{{name: m, value: one}}]}}}}\n    - - {{name: b, template: echo, arguments: {{parameters: [{{name: m, value: \"got {{{{steps.a.outputs.result}}}}\"}}]}}}}\n      - {{name: c, template: echo, arguments: {{parameters: [{{name: m, value: three}}]}}}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| ok(&spec.args[0]));
    assert_eq!(launched, ["one", "got one", "three"]);
    assert_eq!(state.phase(), Phase::Succeeded);
    assert_eq!(node_phase(&state, "[1]"), Some("Succeeded"));
}

#[test]
fn a_dag_diamond_respects_dependencies_and_a_failure_fails_it() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    dag:\n      tasks:\n      - {{name: A, template: echo, arguments: {{parameters: [{{name: m, value: A}}]}}}}\n      - {{name: B, depends: A, template: echo, arguments: {{parameters: [{{name: m, value: B}}]}}}}\n      - {{name: C, depends: A, template: echo, arguments: {{parameters: [{{name: m, value: C}}]}}}}\n      - {{name: D, depends: B && C, template: echo, arguments: {{parameters: [{{name: m, value: D}}]}}}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| ok(&spec.args[0]));
    assert_eq!(launched, ["A", "B", "C", "D"]);
    assert_eq!(state.phase(), Phase::Succeeded);

    let mut state = RunState::new(workflow(&yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| {
        if spec.args[0] == "B" {
            failed(1)
        } else {
            ok("")
        }
    });
    assert_eq!(launched, ["A", "B", "C"], "D never starts after B failed");
    assert_eq!(state.phase(), Phase::Failed);
    assert_eq!(node_phase(&state, "D"), Some("Omitted"));
    assert!(state.message.starts_with("child '"), "{}", state.message);
}

#[test]
fn when_false_skips_with_argos_message() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {{name: flip, template: echo, arguments: {{parameters: [{{name: m, value: tails}}]}}}}\n    - - {{name: heads, template: echo, when: \"{{{{steps.flip.outputs.result}}}} == heads\", arguments: {{parameters: [{{name: m, value: H}}]}}}}\n      - {{name: tails, template: echo, when: \"{{{{steps.flip.outputs.result}}}} == tails\", arguments: {{parameters: [{{name: m, value: T}}]}}}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| ok(&spec.args[0]));
    assert_eq!(launched, ["tails", "T"]);
    let heads = state
        .nodes
        .values()
        .find(|n| n.display_name == "heads")
        .expect("heads node");
    assert_eq!(heads.phase, Phase::Skipped);
    assert_eq!(heads.message, "when 'tails == heads' evaluated false");
}

#[test]
fn retries_until_success_then_no_more_retries_left() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    retryStrategy: {limit: 2}\n    container: {image: busybox, command: [sh], args: [\"attempt {{retries}}\"]}\n";
    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| {
        if spec.attempt < 2 { failed(1) } else { ok("") }
    });
    assert_eq!(launched, ["attempt 0", "attempt 1", "attempt 2"]);
    assert_eq!(state.phase(), Phase::Succeeded);

    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |_| failed(1));
    assert_eq!(launched.len(), 3);
    assert_eq!(state.phase(), Phase::Failed);
    let retry = &state.nodes["wf"];
    assert_eq!(retry.node_type, NodeType::Retry);
    assert_eq!(retry.message, "No more retries left");
}

#[test]
fn loops_expand_items_and_aggregate_outputs() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {{name: each, template: echo, arguments: {{parameters: [{{name: m, value: \"{{{{item.n}}}}\"}}]}}, withItems: [{{n: 1}}, {{n: 2}}, {{n: 3}}]}}\n    - - {{name: sum, template: echo, arguments: {{parameters: [{{name: m, value: \"{{{{steps.each.outputs.result}}}}\"}}]}}}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| ok(&spec.args[0]));
    assert_eq!(launched, ["1", "2", "3", "[1,2,3]"]);
    assert!(
        state
            .nodes
            .values()
            .any(|n| n.display_name == "each(1:{\"n\":2})")
    );
}

#[test]
fn values_with_braces_and_shell_syntax_pass_unchanged() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {{name: a, template: echo, arguments: {{parameters: [{{name: m, value: one}}]}}}}\n    - - {{name: b, template: echo, arguments: {{parameters: [{{name: m, value: \"{{{{steps.a.outputs.result}}}}\"}}]}}}}\n{ECHO}"
    );
    let tricky = "{{workflow.name}} $(rm -rf /) 'q' \"d\"";
    let mut state = RunState::new(workflow(&yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| {
        if spec.args[0] == "one" {
            ok(tricky)
        } else {
            ok("")
        }
    });
    assert_eq!(launched, ["one", tricky]);
}

#[test]
fn the_exit_handler_sees_the_workflow_status() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  onExit: bye\n  templates:\n  - name: main\n    container: {image: busybox, command: [sh], args: [main]}\n  - name: bye\n    container: {image: busybox, command: [sh], args: [\"status {{workflow.status}}\"]}\n";
    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| {
        if spec.args[0] == "main" {
            failed(2)
        } else {
            ok("")
        }
    });
    assert_eq!(launched, ["main", "status Failed"]);
    assert_eq!(state.phase(), Phase::Failed);
}

#[test]
fn workflow_parallelism_limits_running_steps() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  parallelism: 2\n  templates:\n  - name: main\n    steps:\n    - - {{name: each, template: echo, arguments: {{parameters: [{{name: m, value: \"{{{{item}}}}\"}}]}}, withItems: [a, b, c, d, e]}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&yaml), chrono::Utc::now()).expect("state");
    let now = chrono::Utc::now();
    let launches = |actions: &[Action]| -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| {
                if let Action::Launch(s) = a {
                    Some(s.node_id.clone())
                } else {
                    None
                }
            })
            .collect()
    };
    let mut running = launches(&state.apply(Event::Start { now }));
    assert_eq!(running.len(), 2);
    let mut total = running.len();
    while let Some(done) = running.pop() {
        let more = launches(&state.apply(Event::StepFinished {
            node_id: done,
            outcome: ok(""),
            now,
        }));
        assert!(more.len() <= 1, "a finished step frees one slot");
        total += more.len();
        running.extend(more);
        assert!(running.len() <= 2);
    }
    assert_eq!(total, 5);
    assert_eq!(state.phase(), Phase::Succeeded);
}

#[test]
fn a_skipped_producer_leaves_the_consumer_its_input_default() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    dag:\n      tasks:\n      - {name: producer, template: produce, when: \"false\"}\n      - {name: consumer, template: consume, depends: producer.Succeeded || producer.Skipped, arguments: {parameters: [{name: in, value: \"{{tasks.producer.outputs.parameters.msg}}\"}]}}\n  - name: produce\n    outputs: {parameters: [{name: msg, valueFrom: {path: /tmp/out.txt}}]}\n    container: {image: busybox, command: [echo], args: [real]}\n  - name: consume\n    inputs: {parameters: [{name: in, default: fallback}]}\n    container: {image: busybox, command: [echo], args: [\"got {{inputs.parameters.in}}\"]}\n";
    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    assert_eq!(drive(&mut state, |_| ok("")), ["got fallback"]);
    let with_default = yaml.replace(
        "valueFrom: {path: /tmp/out.txt}",
        "valueFrom: {path: /tmp/out.txt, default: from-producer}",
    );
    let mut state = RunState::new(workflow(&with_default), chrono::Utc::now()).expect("state");
    assert_eq!(drive(&mut state, |_| ok("")), ["got from-producer"]);
    assert_eq!(state.phase(), Phase::Succeeded);
}

#[test]
fn a_container_set_runs_its_graph_and_takes_mains_outputs() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    containerSet:\n      containers:\n      - {name: a, image: busybox, command: [echo], args: [a]}\n      - {name: b, image: busybox, command: [echo], args: [b], dependencies: [a]}\n      - {name: main, image: busybox, command: [echo], args: [main], dependencies: [a]}\n";
    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| ok(&spec.args[0]));
    assert_eq!(launched, ["a", "b", "main"]);
    assert_eq!(state.phase(), Phase::Succeeded);
    assert_eq!(state.nodes["wf"].outputs.result.as_deref(), Some("main"));
}

#[test]
fn a_container_sets_outputs_are_collected_after_every_container_ended() {
    // `a` writes the output and may end after `main`: the outputs are read by a step of
    // the set's own node, launched only once both ended.
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    volumes: [{name: ws, emptyDir: {}}]\n    containerSet:\n      volumeMounts: [{name: ws, mountPath: /ws}]\n      containers:\n      - {name: a, image: busybox, command: [sh, -c], args: [a]}\n      - {name: main, image: busybox, command: [echo], args: [main]}\n    outputs:\n      parameters: [{name: p, valueFrom: {path: /ws/out}}]\n      artifacts: [{name: art, path: /ws/out}]\n";
    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    let mut specs = Vec::new();
    let launched = drive(&mut state, |spec| {
        specs.push(spec.clone());
        if spec.command == ["true"] {
            let mut o = ok("");
            o.parameters.push(("p".into(), "hi".into()));
            o.artifacts.push(cox_worker::step::SavedArtifact {
                name: "art".into(),
                path: "/ws/out".into(),
                key: "x/x/art.tgz".into(),
                archive: cox_worker::step::ArchiveKind::TarGz,
                size: 3,
                sha256: "00".into(),
                store: None,
            });
            o
        } else {
            ok(&spec.args[0])
        }
    });
    assert_eq!(launched.len(), 3, "{launched:?}");
    let collect = specs.last().expect("collecting step");
    assert_eq!(collect.node_id, "wf");
    assert_eq!(collect.output_artifacts.len(), 1);
    assert_eq!(collect.output_parameters.len(), 1);
    assert_eq!(collect.volumes.len(), 1, "the set's volumes");
    assert!(
        specs[..2]
            .iter()
            .all(|s| s.output_artifacts.is_empty() && s.output_parameters.is_empty()),
        "the containers collect nothing themselves"
    );
    assert_eq!(state.phase(), Phase::Succeeded);
    let set = &state.nodes["wf"];
    assert_eq!(set.outputs.parameter("p"), Some("hi"));
    assert_eq!(set.outputs.artifacts[0].key, "x/x/art.tgz");
    assert_eq!(set.outputs.result.as_deref(), Some("main"), "main's result");
}

#[test]
fn artifact_gc_strategies_pick_the_keys_to_delete() {
    // The workflow's strategy applies unless an artifact has its own.
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  artifactGC: {strategy: OnWorkflowDeletion}\n  templates:\n  - name: main\n    container: {image: busybox, command: [echo], args: [x]}\n    outputs:\n      artifacts:\n      - {name: done, path: /tmp/a, artifactGC: {strategy: OnWorkflowCompletion}}\n      - {name: kept, path: /tmp/b}\n      - {name: never, path: /tmp/c, artifactGC: {strategy: Never}}\n      - {name: own, path: /tmp/d, s3: {endpoint: 'h:1', bucket: own}}\n";
    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    let own = cox_worker::repo_config::RepositoryLocation::S3 {
        endpoint: Some("h:1".into()),
        bucket: "own".into(),
        region: "us-east-1".into(),
        insecure: false,
        key_prefix: String::new(),
        secrets: Default::default(),
    };
    let saved = |name: &str| cox_worker::step::SavedArtifact {
        name: name.into(),
        path: format!("/tmp/{name}"),
        key: format!("k/{name}"),
        archive: cox_worker::step::ArchiveKind::TarGz,
        size: 1,
        sha256: "00".into(),
        store: (name == "own").then(|| own.clone()),
    };
    let launched = drive(&mut state, |_| {
        let mut o = ok("x");
        o.artifacts = vec![saved("done"), saved("kept"), saved("never"), saved("own")];
        o
    });
    assert_eq!(
        launched,
        ["x", "gc:k/done"],
        "deleted when the run completes"
    );
    let wf = state.workflow().expect("workflow").clone();
    let keys = |strategy| -> Vec<(Option<_>, Vec<String>)> { state.artifact_gc(&wf, strategy) };
    // The artifact saved to its own bucket is deleted there (the same key in the run's
    // repository may be another object).
    assert_eq!(
        keys(GC_ON_DELETION),
        [
            (None, vec!["k/kept".to_string()]),
            (Some(own.clone()), vec!["k/own".to_string()])
        ]
    );
    let status = state.workflow_json();
    let nodes = status["status"]["nodes"].as_object().expect("nodes");
    let node = &nodes.values().next().expect("a node")["outputs"]["artifacts"][3];
    assert_eq!(
        node["s3"],
        serde_json::json!({"endpoint": "h:1", "bucket": "own", "region": "us-east-1", "key": "k/own"})
    );
    assert_eq!(keys(GC_ON_COMPLETION), [(None, vec!["k/done".to_string()])]);
}

#[test]
fn stop_cancels_running_steps_and_runs_exit_handlers_terminate_does_not() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  onExit: bye\n  templates:\n  - name: main\n    steps:\n    - - {name: long, template: work}\n    - - {name: never, template: work}\n  - name: work\n    container: {image: busybox, command: [sleep], args: [\"60\"]}\n  - name: bye\n    container: {image: busybox, command: [echo], args: [\"bye {{workflow.status}}\"]}\n";
    for terminate in [false, true] {
        let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
        let now = chrono::Utc::now();
        let launched: Vec<String> = state
            .apply(Event::Start { now })
            .into_iter()
            .filter_map(|a| {
                if let Action::Launch(s) = a {
                    Some(s.node_id)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(launched.len(), 1);
        let actions = state.apply(Event::Stop { now, terminate });
        assert!(
            actions.contains(&Action::Cancel {
                node_id: launched[0].clone()
            }),
            "{actions:?}"
        );
        assert!(
            !actions.contains(&Action::Finished),
            "the stopped step has not ended yet"
        );
        let stopped = StepOutcome {
            phase: StepPhase::Failed,
            exit_code: Some(143),
            message: "Stopped".into(),
            result: None,
            parameters: Vec::new(),
            artifacts: Vec::new(),
            started_at: None,
            finished_at: None,
            cache_hit: false,
        };
        let actions = state.apply(Event::StepFinished {
            node_id: launched[0].clone(),
            outcome: stopped,
            now,
        });
        let strategy = if terminate { "Terminate" } else { "Stop" };
        let message = format!("Stopped with strategy '{strategy}'");
        assert_eq!(state.nodes[&launched[0]].message, message);
        assert!(
            state.nodes.values().all(|n| n.display_name != "never"),
            "nothing new starts"
        );
        let exit_launches: Vec<String> = actions
            .iter()
            .filter_map(|a| {
                if let Action::Launch(s) = a {
                    Some(s.args[0].clone())
                } else {
                    None
                }
            })
            .collect();
        if terminate {
            assert!(exit_launches.is_empty());
            assert!(actions.contains(&Action::Finished));
        } else {
            assert_eq!(exit_launches, ["bye Failed"]);
            let exit_id = state
                .nodes
                .values()
                .find(|n| n.name == "wf.onExit")
                .expect("exit node")
                .id
                .clone();
            state.apply(Event::StepFinished {
                node_id: exit_id,
                outcome: ok(""),
                now,
            });
        }
        assert_eq!(state.phase(), Phase::Failed);
        assert_eq!(state.message, message);
    }
}

fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
}

fn launches(actions: &[Action]) -> Vec<cox_worker::step::StepSpec> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Launch(spec) => Some((**spec).clone()),
            _ => None,
        })
        .collect()
}

fn resume(selector: Option<&str>) -> Request {
    Request::Resume {
        node_field_selector: selector.map(str::to_string),
    }
}

const APPROVAL: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: approve, template: approve}\n    - - {name: release, template: echo, arguments: {parameters: [{name: m, value: \"{{steps.approve.outputs.parameters.message}}\"}]}}\n  - name: approve\n    suspend: {}\n    outputs:\n      parameters:\n      - name: message\n        valueFrom: {supplied: {}}\n      - name: level\n        valueFrom: {supplied: {}, default: low}\n";

#[test]
fn a_suspend_template_waits_for_a_resume_with_its_supplied_outputs() {
    let yaml = format!("{APPROVAL}{ECHO}");
    let mut state = RunState::new(workflow(&yaml), t0()).expect("state");
    let actions = state.apply(Event::Start { now: t0() });
    assert!(launches(&actions).is_empty(), "{actions:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::WakeAt { .. })));
    assert_eq!(node_phase(&state, "approve"), Some("Running"));

    // Nothing supplied and no default: the resume is refused and changes nothing.
    let err = state.check(&resume(None)).unwrap_err();
    assert_eq!(
        err,
        "raw output parameter 'message' has not been set and does not have a default value"
    );
    let set = |selector: &str, outputs: &[(&str, &str)]| Request::Set {
        node_field_selector: selector.into(),
        phase: None,
        message: None,
        output_parameters: outputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    assert_eq!(
        state
            .check(&set("displayName=approve", &[("other", "x")]))
            .unwrap_err(),
        "node 'wf[0].approve' does not have an output parameter 'other'"
    );
    assert_eq!(
        state.check(&set("displayName=nope", &[])).unwrap_err(),
        "currently, set only targets suspend nodes: no suspend nodes matching nodeFieldSelector: displayName=nope"
    );
    assert!(state.check(&set("bogus=1", &[])).is_err());

    let request = set("displayName=approve", &[("message", "ship it")]);
    state.check(&request).expect("set is accepted");
    let actions = state.apply(Event::Lifecycle { now: t0(), request });
    assert!(launches(&actions).is_empty());
    assert_eq!(node_phase(&state, "approve"), Some("Running"));

    state.check(&resume(None)).expect("resume is accepted");
    let now = t0() + Duration::seconds(5);
    let actions = state.apply(Event::Lifecycle {
        now,
        request: resume(None),
    });
    let launched = launches(&actions);
    assert_eq!(launched.len(), 1, "{actions:?}");
    assert_eq!(launched[0].args, ["ship it"]);
    let approve = state.workflow_json()["status"]["nodes"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["displayName"] == "approve")
        .cloned()
        .unwrap();
    assert_eq!(approve["phase"], "Succeeded");
    assert_eq!(
        approve["outputs"]["parameters"],
        serde_json::json!([{"name": "message", "value": "ship it"}, {"name": "level", "value": "low"}])
    );
    let actions = state.apply(Event::StepFinished {
        node_id: launched[0].node_id.clone(),
        outcome: ok("ship it"),
        now,
    });
    assert!(actions.contains(&Action::Finished));
    assert_eq!(state.phase(), Phase::Succeeded);
    assert_eq!(
        state.check(&Request::Suspend).unwrap_err(),
        "cannot suspend a completed workflow"
    );
}

#[test]
fn a_suspended_workflow_lets_running_steps_finish_and_starts_nothing_until_resumed() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {{name: a, template: echo, arguments: {{parameters: [{{name: m, value: one}}]}}}}\n    - - {{name: b, template: echo, arguments: {{parameters: [{{name: m, value: two}}]}}}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&yaml), t0()).expect("state");
    let first = launches(&state.apply(Event::Start { now: t0() }));
    assert_eq!(first.len(), 1);
    state.check(&Request::Suspend).expect("suspend");
    let actions = state.apply(Event::Lifecycle {
        now: t0(),
        request: Request::Suspend,
    });
    assert!(actions.is_empty(), "{actions:?}");
    assert!(state.is_suspended());
    assert_eq!(state.workflow_json()["spec"]["suspend"], true);
    // The running step is not cancelled; when it ends, the next one does not start.
    let actions = state.apply(Event::StepFinished {
        node_id: first[0].node_id.clone(),
        outcome: ok("one"),
        now: t0(),
    });
    assert!(launches(&actions).is_empty(), "{actions:?}");
    assert_eq!(node_phase(&state, "a"), Some("Succeeded"));
    assert_eq!(state.phase(), Phase::Running);
    // The suspension survives a reload from the store's JSON.
    let mut reloaded = state.header();
    reloaded.nodes = state.nodes.clone();
    assert!(reloaded.is_suspended());
    let actions = reloaded.apply(Event::Lifecycle {
        now: t0(),
        request: resume(None),
    });
    let second = launches(&actions);
    assert_eq!(second.len(), 1, "{actions:?}");
    assert_eq!(second[0].args, ["two"]);
    assert!(!reloaded.is_suspended());
    assert!(reloaded.workflow_json()["spec"].get("suspend").is_none());
}

#[test]
fn resume_with_a_selector_resumes_only_the_matching_suspend_nodes() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - {name: one, template: wait}\n      - {name: two, template: wait}\n  - name: wait\n    suspend: {}\n";
    let mut state = RunState::new(workflow(yaml), t0()).expect("state");
    state.apply(Event::Start { now: t0() });
    assert!(state.check(&resume(Some("displayName=three"))).is_err());
    state.apply(Event::Lifecycle {
        now: t0(),
        request: resume(Some("displayName=one")),
    });
    assert_eq!(node_phase(&state, "one"), Some("Succeeded"));
    assert_eq!(node_phase(&state, "two"), Some("Running"));
    let actions = state.apply(Event::Lifecycle {
        now: t0(),
        request: Request::Set {
            node_field_selector: "displayName=two".into(),
            phase: Some(Phase::Failed),
            message: Some("rejected".into()),
            output_parameters: Vec::new(),
        },
    });
    assert!(actions.contains(&Action::Finished), "{actions:?}");
    assert_eq!(state.phase(), Phase::Failed);
    let two = state
        .nodes
        .values()
        .find(|n| n.display_name == "two")
        .unwrap();
    assert_eq!(two.message, "rejected");
}

#[test]
fn node_field_selectors_match_like_argo() {
    let selector = NodeFieldSelector::parse("displayName=approve,phase!=Failed").unwrap();
    let mut node = Node {
        template_name: Some("namespaced/lib/approve".into()),
        phase: Phase::Running,
        inputs: vec![("who".into(), "me".into())],
        ..Node::new(
            "x-1".into(),
            "x[0].approve".into(),
            "approve".into(),
            NodeType::Suspend,
        )
    };
    assert!(selector.matches(&node));
    assert!(
        NodeFieldSelector::parse(
            "templateRef.name=lib,templateName=approve,inputs.parameters.who.value=me"
        )
        .unwrap()
        .matches(&node)
    );
    node.phase = Phase::Failed;
    assert!(!selector.matches(&node));
    assert_eq!(
        NodeFieldSelector::parse("color=red").unwrap_err(),
        "nodeFieldSelector: unknown field 'color'"
    );
}

#[test]
fn stopping_a_suspended_workflow_fails_its_suspend_nodes_and_runs_the_exit_handler() {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  onExit: bye\n  templates:\n  - name: main\n    steps:\n    - - {{name: hold, template: hold}}\n  - name: hold\n    suspend: {{}}\n  - name: bye\n    container: {{image: busybox, command: [echo, bye]}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&yaml), t0()).expect("state");
    state.apply(Event::Start { now: t0() });
    state.apply(Event::Lifecycle {
        now: t0(),
        request: Request::Suspend,
    });
    let stop = Request::Stop {
        terminate: false,
        message: Some("not today".into()),
        node_field_selector: None,
    };
    state.check(&stop).expect("stop is accepted");
    let actions = state.apply(Event::Lifecycle {
        now: t0(),
        request: stop,
    });
    let launched = launches(&actions);
    assert_eq!(launched.len(), 1, "the exit handler runs: {actions:?}");
    assert_eq!(launched[0].command, ["echo", "bye"]);
    assert!(!state.is_suspended());
    let hold = state
        .nodes
        .values()
        .find(|n| n.display_name == "hold")
        .unwrap();
    assert_eq!(
        (hold.phase, hold.message.as_str()),
        (Phase::Failed, "not today")
    );
    let actions = state.apply(Event::StepFinished {
        node_id: launched[0].node_id.clone(),
        outcome: ok("bye"),
        now: t0(),
    });
    assert!(actions.contains(&Action::Finished));
    assert_eq!(state.phase(), Phase::Failed);
    assert_eq!(state.message, "Stopped with strategy 'Stop'");
}

#[test]
fn the_workflow_deadline_fails_the_run_and_still_runs_the_exit_handler() {
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  entrypoint: main\n  activeDeadlineSeconds: 10\n  onExit: bye\n  templates:\n  - name: main\n    steps:\n    - - {name: long, template: work}\n    - - {name: never, template: work}\n  - name: work\n    container: {image: busybox, command: [sleep], args: [\"60\"]}\n  - name: bye\n    container: {image: busybox, command: [echo], args: [\"bye {{workflow.status}}\"]}\n";
    let launches = |actions: &[Action]| -> Vec<(String, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Launch(s) => Some((s.node_id.clone(), s.args[0].clone())),
                _ => None,
            })
            .collect()
    };
    let mut state = RunState::new(workflow(yaml), t0()).expect("state");
    let actions = state.apply(Event::Start { now: t0() });
    let long = launches(&actions);
    assert_eq!(long.len(), 1);
    assert!(
        actions.contains(&Action::WakeAt {
            at: t0() + Duration::seconds(10)
        }),
        "the deadline is a timer: {actions:?}"
    );
    // The deadline passes: the running step is cancelled, nothing new starts.
    let actions = state.apply(Event::Timer {
        now: t0() + Duration::seconds(10),
    });
    assert!(
        actions.contains(&Action::Cancel {
            node_id: long[0].0.clone()
        }),
        "{actions:?}"
    );
    let actions = state.apply(Event::StepFinished {
        node_id: long[0].0.clone(),
        outcome: failed(143),
        now: t0() + Duration::seconds(11),
    });
    assert!(state.nodes.values().all(|n| n.display_name != "never"));
    // The exit handler runs, seeing the failure, and then the run ends Failed.
    let exit = launches(&actions);
    assert_eq!(
        exit.iter().map(|(_, arg)| arg.as_str()).collect::<Vec<_>>(),
        ["bye Failed"]
    );
    assert!(!actions.contains(&Action::Finished));
    let actions = state.apply(Event::StepFinished {
        node_id: exit[0].0.clone(),
        outcome: ok(""),
        now: t0() + Duration::seconds(12),
    });
    assert!(actions.contains(&Action::Finished), "{actions:?}");
    assert_eq!(state.phase(), Phase::Failed);
    // Argo's message for a pod stopped by the workflow deadline; the workflow's message is
    // its entry node's, as Argo's.
    assert_eq!(
        state.nodes[&long[0].0].message,
        "Step exceeded its deadline"
    );
    assert_eq!(state.nodes[&long[0].0].phase, Phase::Failed);
    let root = state
        .nodes
        .values()
        .find(|n| n.name == "wf")
        .expect("entry node");
    assert_eq!(root.phase, Phase::Failed);
    assert_eq!(state.message, root.message);
    assert_eq!(
        state
            .nodes
            .values()
            .find(|n| n.name == "wf.onExit")
            .map(|n| n.phase.as_str()),
        Some("Succeeded")
    );
}

/// A task reads the outputs of a task it depends on only through another, and a step those
/// of a group two groups back; the DAG's and the steps template's outputs read any of them.
#[test]
fn outputs_of_indirect_ancestors_and_earlier_groups_are_in_scope() {
    let dag = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    outputs: {{parameters: [{{name: first, valueFrom: {{parameter: \"{{{{tasks.a.outputs.result}}}}\"}}}}]}}\n    dag:\n      tasks:\n      - {{name: a, template: echo, arguments: {{parameters: [{{name: m, value: one}}]}}}}\n      - {{name: b, template: echo, dependencies: [a], arguments: {{parameters: [{{name: m, value: two}}]}}}}\n      - {{name: c, template: echo, dependencies: [b], arguments: {{parameters: [{{name: m, value: \"{{{{tasks.a.outputs.result}}}}+{{{{tasks.b.outputs.result}}}}\"}}]}}}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&dag), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| ok(&spec.args[0]));
    assert_eq!(launched, ["one", "two", "one+two"]);
    assert_eq!(state.phase(), Phase::Succeeded);
    assert_eq!(
        state.workflow_json()["status"]["nodes"]["wf"]["outputs"]["parameters"][0]["value"],
        "one"
    );

    let steps = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {{name: x}}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    outputs: {{parameters: [{{name: second, valueFrom: {{parameter: \"{{{{steps.b.outputs.result}}}}\"}}}}]}}\n    steps:\n    - - {{name: a, template: echo, arguments: {{parameters: [{{name: m, value: one}}]}}}}\n    - - {{name: b, template: echo, arguments: {{parameters: [{{name: m, value: two}}]}}}}\n    - - {{name: c, template: echo, arguments: {{parameters: [{{name: m, value: \"{{{{steps.a.outputs.result}}}}\"}}]}}}}\n{ECHO}"
    );
    let mut state = RunState::new(workflow(&steps), chrono::Utc::now()).expect("state");
    let launched = drive(&mut state, |spec| ok(&spec.args[0]));
    assert_eq!(launched, ["one", "two", "one"]);
    assert_eq!(state.phase(), Phase::Succeeded);
    assert_eq!(
        state.workflow_json()["status"]["nodes"]["wf"]["outputs"]["parameters"][0]["value"],
        "two"
    );
}

#[test]
fn consumers_of_an_output_in_its_own_bucket_read_it_there() {
    // By `{{tasks...}}`, through a global output, and through a DAG's own output (`from:`).
    let yaml = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: x}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: produce}
      - name: b
        template: consume
        dependencies: [a]
        arguments: {artifacts: [{name: in, from: "{{tasks.a.outputs.artifacts.out}}"}]}
      - name: c
        template: consume
        dependencies: [a]
        arguments: {artifacts: [{name: in, from: "{{workflow.outputs.artifacts.g}}"}]}
      - name: d
        template: inner
  - name: inner
    dag:
      tasks:
      - {name: p, template: produce}
    outputs:
      artifacts: [{name: passed, from: "{{tasks.p.outputs.artifacts.out}}"}]
  - name: produce
    container: {image: busybox, command: [echo], args: [produce]}
    outputs:
      artifacts:
      - name: out
        path: /tmp/out
        globalName: g
        s3: {endpoint: 'h:1', bucket: own, accessKeySecret: {name: s, key: a}, secretKeySecret: {name: s, key: b}}
  - name: consume
    inputs: {artifacts: [{name: in, path: /tmp/in}]}
    container: {image: busybox, command: [echo], args: [consume]}
"#;
    let mut state = RunState::new(workflow(yaml), chrono::Utc::now()).expect("state");
    let mut consumers = Vec::new();
    drive(&mut state, |spec| {
        let mut o = ok("x");
        for a in &spec.output_artifacts {
            o.artifacts.push(cox_worker::step::SavedArtifact {
                name: a.name.clone(),
                path: a.path.clone(),
                key: a.key.clone(),
                archive: a.archive,
                size: 1,
                sha256: "00".into(),
                store: a.store.clone(),
            });
        }
        if !spec.input_artifacts.is_empty() {
            consumers.push(spec.input_artifacts[0].clone());
        }
        o
    });
    assert_eq!(state.phase(), Phase::Succeeded);
    assert_eq!(consumers.len(), 2);
    let Some(cox_worker::repo_config::RepositoryLocation::S3 {
        bucket, secrets, ..
    }) = &consumers[0].store
    else {
        panic!("no bucket: {:?}", consumers[0]);
    };
    assert_eq!(bucket, "own");
    let access = secrets.access_key_secret.as_ref().expect("secret");
    assert_eq!((access.name.as_str(), access.key.as_str()), ("s", "a"));
    assert_eq!(consumers[1].store, consumers[0].store, "the global output");
    assert!(matches!(
        consumers[0].source,
        cox_worker::step::ArtifactSource::Stored { .. }
    ));
    // The DAG's output taken `from:` its task keeps the bucket.
    let passed = state
        .nodes
        .values()
        .find(|n| n.template_name.as_deref() == Some("inner"))
        .and_then(|n| n.outputs.artifacts.first())
        .expect("the inner DAG's output");
    assert_eq!(passed.store, consumers[0].store);
}
