//! `cox run` end to end: every workflow in `tests/fixtures/run/` run through the real binary with
//! a fresh `COX_HOME`, asserting Argo's semantics on the final Workflow object (`-o json`): phases,
//! messages, outputs, logs and files the steps wrote. Steps run in the bubblewrap sandbox unless a
//! test says `--no-sandbox`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

#[path = "../artifacts/tests/support/http.rs"]
mod http_support;

const DIR: &str = "tests/fixtures/run";

/// A fresh `COX_HOME` (`<tmp>/home`) and a data directory for hostPath volumes (`<tmp>/data`).
struct Home {
    tmp: TempDir,
}

/// One finished `cox run -o json`.
struct Run {
    wf: Value,
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

impl Home {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(tmp.path().join("data")).expect("data dir");
        Home { tmp }
    }

    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn data_file(&self, name: &str) -> String {
        let path = self.data().join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Run `cox ARGS` from the package root with this home.
    fn cox(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cox"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("COX_HOME", self.home())
            .env_remove("XDG_DATA_HOME")
            .env_remove("COX_SERVER")
            .args(args)
            .output()
            .expect("run cox")
    }

    /// `cox run FILE -o json EXTRA...`, the final Workflow parsed from stdout.
    fn run_file(&self, file: &str, extra: &[&str]) -> Run {
        let mut args = vec!["run", file, "-o", "json"];
        args.extend_from_slice(extra);
        let start = Instant::now();
        let out = self.cox(&args);
        let elapsed = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let wf: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("cox run {file}: stdout is not a Workflow ({e}):\n{stdout}\nstderr:\n{stderr}")
        });
        let run = Run {
            wf,
            code: out.status.code(),
            stderr,
            elapsed,
        };
        // Exit 0 exactly when the workflow Succeeded.
        assert_eq!(
            run.code == Some(0),
            run.phase() == "Succeeded",
            "exit code {:?} for phase {}",
            run.code,
            run.phase()
        );
        run
    }

    /// Run a fixture as it is.
    fn run(&self, fixture: &str, extra: &[&str]) -> Run {
        self.run_file(&fixture_path(fixture), extra)
    }

    /// Run a fixture whose hostPath volume reads `{{workflow.parameters.dir}}`: a copy with the
    /// data directory written in (hostPath paths from parameters are covered, on their own, by
    /// `hostpath_from_parameter`), and `-p dir=` passed as well.
    fn run_with_data(&self, fixture: &str, extra: &[&str]) -> Run {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture_path(fixture)),
        )
        .expect("read fixture");
        let data = self.data().display().to_string();
        let text = text.replace(
            "path: \"{{workflow.parameters.dir}}\"",
            &format!("path: \"{data}\""),
        );
        let copy = self.tmp.path().join(fixture);
        std::fs::write(&copy, text).expect("write fixture copy");
        let dir_arg = format!("dir={data}");
        let mut args = vec!["-p", dir_arg.as_str()];
        args.extend_from_slice(extra);
        self.run_file(copy.to_str().expect("utf-8 path"), &args)
    }
}

fn fixture_path(name: &str) -> String {
    let path = format!("{DIR}/{name}");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(&path).exists(),
        "missing fixture {path}"
    );
    path
}

impl Run {
    fn status(&self) -> &Value {
        &self.wf["status"]
    }

    fn phase(&self) -> &str {
        self.status()["phase"].as_str().unwrap_or("")
    }

    fn name(&self) -> String {
        self.wf["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_string()
    }

    fn nodes(&self) -> Vec<&Value> {
        self.status()["nodes"]
            .as_object()
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }

    fn nodes_named(&self, display: &str) -> Vec<&Value> {
        self.nodes()
            .into_iter()
            .filter(|n| n["displayName"] == display)
            .collect()
    }

    fn has(&self, display: &str) -> bool {
        !self.nodes_named(display).is_empty()
    }

    /// The only node with this display name.
    fn node(&self, display: &str) -> &Value {
        let found = self.nodes_named(display);
        assert_eq!(
            found.len(),
            1,
            "nodes named {display:?} in {}",
            self.describe()
        );
        found[0]
    }

    fn node_by_id(&self, id: &str) -> &Value {
        &self.status()["nodes"][id]
    }

    fn node_phase(&self, display: &str) -> &str {
        self.node(display)["phase"].as_str().unwrap_or("")
    }

    fn message(&self, display: &str) -> &str {
        self.node(display)["message"].as_str().unwrap_or("")
    }

    fn result(&self, display: &str) -> &str {
        self.node(display)["outputs"]["result"]
            .as_str()
            .unwrap_or_else(|| panic!("no result on {display}: {}", self.describe()))
    }

    fn output(&self, display: &str, name: &str) -> String {
        named_value(&self.node(display)["outputs"]["parameters"], name)
            .unwrap_or_else(|| panic!("no output {name} on {display}: {}", self.describe()))
    }

    /// Display names of a node's children, in order.
    fn children(&self, display: &str) -> Vec<String> {
        self.node(display)["children"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .map(|id| {
                        self.node_by_id(id.as_str().unwrap_or(""))["displayName"]
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Phase of each node by display name (the last one wins for repeated names such as `[0]`).
    #[allow(dead_code)]
    fn phases(&self) -> BTreeMap<String, String> {
        self.nodes()
            .into_iter()
            .map(|n| {
                (
                    n["displayName"].as_str().unwrap_or("").to_string(),
                    n["phase"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn describe(&self) -> String {
        let mut out = format!(
            "workflow {} {:?}\n",
            self.phase(),
            self.status()["message"].as_str().unwrap_or("")
        );
        for n in self.nodes() {
            out.push_str(&format!(
                "  {} {} {} {:?} {}\n",
                n["displayName"].as_str().unwrap_or(""),
                n["type"].as_str().unwrap_or(""),
                n["phase"].as_str().unwrap_or(""),
                n["message"].as_str().unwrap_or(""),
                n["outputs"]
            ));
        }
        out.push_str(&format!("stderr:\n{}", self.stderr));
        out
    }

    fn expect_phase(&self, phase: &str) {
        assert_eq!(self.phase(), phase, "{}", self.describe());
    }
}

fn named_value(list: &Value, name: &str) -> Option<String> {
    list.as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .map(str::to_string)
}

/// Runs a test body with the sandbox only (hostPath mounts outside the step's working
/// directory are refused with `--no-sandbox`).
fn sandbox_only(check: impl Fn(&[&str])) {
    check(&[]);
}

/// Runs a test body with the sandbox, then with `--no-sandbox`.
fn both_modes(check: impl Fn(&[&str])) {
    check(&[]);
    check(&["--no-sandbox"]);
}

// ---------------------------------------------------------------- the main job

/// The README's main job, `examples/etl-pipeline.yaml`: two extracts in parallel, a join, a
/// model trained in Python and a report, files passed as artifacts through the default
/// local repository. The data is generated with spend = 5 + 0.3 age + 0.8 tenure + noise:
/// the model must find it again, and the report must show the model the train step saved.
#[test]
fn the_main_job_extracts_joins_trains_and_reports() {
    both_modes(|extra| {
        let home = Home::new();
        let run = home.run_file("examples/etl-pipeline.yaml", extra);
        run.expect_phase("Succeeded");
        assert_eq!(run.output("transform", "rows"), "300");
        let r2: f64 = run.output("train", "r2").parse().expect("r2 is a number");
        assert!(r2 > 0.9, "r2 {r2}");
        let model: Value = serde_json::from_str(run.result("train")).expect("model JSON");
        for (name, truth, tolerance) in [
            ("intercept", 5.0, 2.0),
            ("age", 0.3, 0.05),
            ("tenure_months", 0.8, 0.05),
        ] {
            let fitted = model[name].as_f64().expect("coefficient");
            assert!(
                (fitted - truth).abs() < tolerance,
                "{name}: {fitted} (true {truth})"
            );
        }
        let logs = home.cox(&["logs", &run.name(), "report"]);
        let text = String::from_utf8_lossy(&logs.stdout);
        assert!(
            text.contains(&format!(
                "report: trained on 300 customers, r2 {}",
                run.output("train", "r2")
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "report:   \"tenure_months\": {}",
                model["tenure_months"]
            )),
            "{text}"
        );
    });
}

// ---------------------------------------------------------------- templates and exit codes

#[test]
fn container_and_script_templates() {
    both_modes(|extra| {
        let home = Home::new();
        let run = home.run("templates.yaml", extra);
        run.expect_phase("Succeeded");
        assert_eq!(run.result("container"), "container-says-hi");
        assert_eq!(run.result("bash"), "bash 3 three");
        // Standard error is not part of the result.
        assert_eq!(run.result("python"), "45");
        assert_eq!(run.node_phase("fails"), "Failed");
        assert_eq!(run.message("fails"), "Error (exit code 3)");
        assert_eq!(run.node("fails")["outputs"]["exitCode"], "3");
        assert_eq!(run.result("fails"), "about-to-fail");
        // `{{steps.fails.exitCode}}` and a python result passed on as arguments.
        assert_eq!(run.result("report"), "code=3 py=45");
        assert_eq!(run.node("report")["outputs"]["exitCode"], "0");
    });
}

#[test]
fn failing_step_fails_the_run() {
    let home = Home::new();
    let run = home.run("exit-code.yaml", &[]);
    run.expect_phase("Failed");
    assert_ne!(run.code, Some(0));
    assert_eq!(run.node_phase("boom"), "Failed");
    assert_eq!(run.message("boom"), "Error (exit code 5)");
    assert_eq!(run.node("boom")["outputs"]["exitCode"], "5");
    // The next group never starts.
    assert!(!run.has("never"), "{}", run.describe());
}

// ---------------------------------------------------------------- steps and DAGs

#[test]
fn step_groups_run_in_order_and_steps_of_a_group_in_parallel() {
    let home = Home::new();
    let run = home.run_with_data("steps-order.yaml", &[]);
    run.expect_phase("Succeeded");
    let log = home.data_file("log");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 8, "{log}");
    assert_eq!(&lines[..2], ["start-first", "end-first"], "{log}");
    // Both parallel steps start before either ends.
    let mut starts: Vec<&str> = lines[2..4].to_vec();
    starts.sort();
    assert_eq!(starts, ["start-par-a", "start-par-b"], "{log}");
    let mut ends: Vec<&str> = lines[4..6].to_vec();
    ends.sort();
    assert_eq!(ends, ["end-par-a", "end-par-b"], "{log}");
    assert_eq!(&lines[6..], ["start-last", "end-last"], "{log}");
}

#[test]
fn dag_dependencies_and_enhanced_depends() {
    both_modes(|extra| {
        let home = Home::new();
        let run = home.run("dag-depends.yaml", extra);
        // B's failure is handled by C (`B.Failed`); L and M by their dependents.
        run.expect_phase("Succeeded");
        assert_eq!(run.node_phase("A"), "Succeeded");
        assert_eq!(run.node_phase("B"), "Failed");
        assert_eq!(run.message("B"), "Error (exit code 1)");
        assert_eq!(run.node_phase("C"), "Succeeded");
        assert_eq!(run.node_phase("D"), "Omitted");
        assert_eq!(run.message("D"), "omitted: depends condition not met");
        assert_eq!(run.node_phase("E"), "Succeeded");
        assert_eq!(run.node_phase("L"), "Failed");
        assert_eq!(run.node_phase("L(0:0)"), "Succeeded");
        assert_eq!(run.node_phase("L(1:1)"), "Failed");
        assert_eq!(run.node_phase("any"), "Succeeded");
        assert_eq!(run.node_phase("all-failed-l"), "Omitted");
        assert_eq!(run.node_phase("M"), "Failed");
        assert_eq!(run.node_phase("all-failed-m"), "Succeeded");
    });
}

#[test]
fn dag_target_runs_only_what_the_target_needs() {
    let home = Home::new();
    let run = home.run("dag-target.yaml", &[]);
    run.expect_phase("Succeeded");
    assert_eq!(run.node_phase("A"), "Succeeded");
    assert_eq!(run.node_phase("B"), "Succeeded");
    assert!(!run.has("C"), "{}", run.describe());
    assert!(!run.has("D"), "{}", run.describe());
}

#[test]
fn when_and_continue_on_failed() {
    let home = Home::new();
    let run = home.run("when-continue.yaml", &[]);
    run.expect_phase("Succeeded");
    assert_eq!(run.result("heads"), "got-heads");
    assert_eq!(run.node_phase("tails"), "Skipped");
    assert_eq!(
        run.message("tails"),
        "when 'heads == tails' evaluated false"
    );
    assert_eq!(run.node_phase("flaky"), "Failed");
    assert_eq!(run.message("flaky"), "Error (exit code 1)");
    assert_eq!(run.result("after"), "after Failed");
}

// ---------------------------------------------------------------- loops

#[test]
fn loops_items_params_sequences_and_aggregates() {
    both_modes(|extra| {
        let home = Home::new();
        let run = home.run("loops.yaml", extra);
        run.expect_phase("Succeeded");
        assert_eq!(run.result("strings(0:a)"), "s-a");
        assert_eq!(run.result("strings(1:b)"), "s-b");
        assert_eq!(run.result("strings(2:c)"), "s-c");
        // Maps: one node per item, fields substituted.
        let mut maps: Vec<String> = run
            .nodes()
            .into_iter()
            .filter(|n| n["displayName"].as_str().unwrap_or("").starts_with("maps("))
            .map(|n| n["outputs"]["result"].as_str().unwrap_or("").to_string())
            .collect();
        maps.sort();
        assert_eq!(maps, ["debian-9", "ubuntu-22"], "{}", run.describe());
        // withSequence count and start/end/format.
        assert_eq!(run.result("count(0:0)"), "n0");
        assert_eq!(run.result("count(2:2)"), "n2");
        assert!(!run.has("count(3:3)"));
        assert_eq!(run.result("range(0:f02)"), "f02");
        assert_eq!(run.result("range(1:f03)"), "f03");
        assert_eq!(run.result("range(2:f04)"), "f04");
        // withParam from a previous step's JSON output.
        let fan: Vec<&Value> = run
            .nodes()
            .into_iter()
            .filter(|n| n["displayName"].as_str().unwrap_or("").starts_with("fan("))
            .collect();
        assert_eq!(fan.len(), 3, "{}", run.describe());
        // Aggregated outputs, in item order.
        let results: Value = serde_json::from_str(run.result("results")).expect("json list");
        assert_eq!(results, serde_json::json!(["s-a", "s-b", "s-c"]));
        let params: Value = serde_json::from_str(run.result("params")).expect("json list");
        assert_eq!(
            params,
            serde_json::json!([{"p": "out-x"}, {"p": "out-y"}, {"p": "out-z"}])
        );
    });
    // Without the sandbox the fan-out steps wrote to the host's /tmp.
    for v in ["x", "y", "z"] {
        let _ = std::fs::remove_file(format!("/tmp/cox-e2e-loop-{v}"));
    }
}

// ---------------------------------------------------------------- failFast and retries

#[test]
fn fail_fast_template_stops_new_tasks() {
    let home = Home::new();
    let run = home.run("fail-fast.yaml", &[]);
    run.expect_phase("Failed");
    assert_eq!(run.node_phase("bad"), "Failed");
    // Already running when `bad` failed: allowed to finish.
    assert_eq!(run.node_phase("slow"), "Succeeded");
    // Never started after the failure.
    assert!(!run.has("next"), "{}", run.describe());
    assert_eq!(
        run.message(&run.name()),
        "template has failed or errored children and failFast enabled"
    );
}

#[test]
fn dag_without_fail_fast_template_runs_other_branches() {
    let home = Home::new();
    let run = home.run("fail-fast.yaml", &["--entrypoint", "plain"]);
    run.expect_phase("Failed");
    assert_eq!(run.node_phase("bad"), "Failed");
    assert_eq!(run.node_phase("slow"), "Succeeded");
    assert_eq!(run.result("next"), "ok");
}

#[test]
fn retry_until_success_and_until_exhausted() {
    // hostPath mounts outside the working directory need the sandbox.
    sandbox_only(|extra| {
        let home = Home::new();
        let run = home.run_with_data("retry.yaml", extra);
        run.expect_phase("Succeeded");
        // Failed twice, passed on the third attempt: three Retry children.
        assert_eq!(run.node("flaky")["type"], "Retry");
        assert_eq!(run.node_phase("flaky"), "Succeeded");
        assert_eq!(
            run.children("flaky"),
            ["flaky(0)", "flaky(1)", "flaky(2)"],
            "{}",
            run.describe()
        );
        assert_eq!(run.node_phase("flaky(0)"), "Failed");
        assert_eq!(run.node_phase("flaky(1)"), "Failed");
        assert_eq!(run.node_phase("flaky(2)"), "Succeeded");
        assert_eq!(run.result("flaky(2)"), "attempt 3");
        assert_eq!(home.data_file("count").trim(), "3");
        // limit 1: two attempts, then Argo's message.
        assert_eq!(run.node("hopeless")["type"], "Retry");
        assert_eq!(run.node_phase("hopeless"), "Failed");
        assert_eq!(run.message("hopeless"), "No more retries left");
        assert_eq!(run.children("hopeless"), ["hopeless(0)", "hopeless(1)"]);
        assert_eq!(run.message("hopeless(1)"), "Error (exit code 4)");
        // Two backoffs of 1 s between flaky's attempts.
        assert!(run.elapsed >= Duration::from_secs(2), "{:?}", run.elapsed);
    });
}

// ---------------------------------------------------------------- deadlines

/// A number unique to this call, used inside a `sleep` command line (`sleep 60 MARKER` sleeps 60 s
/// plus a negligible fraction) so the test can look for the process afterwards.
fn marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!("0.0000{}{:09}", std::process::id(), nanos)
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
    }
    found
}

fn assert_no_process_left(marker: &str) {
    // The run has ended; give a killed process's exit a moment to be reaped.
    for _ in 0..20 {
        if processes_with(marker).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = processes_with(marker);
    // Do not leave them running after the test: they are this test's own steps.
    for p in &left {
        let pid = p.split(':').next().unwrap_or("");
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    panic!("processes left behind: {left:?}");
}

fn check_workflow_deadline(extra: &[&str]) {
    {
        let home = Home::new();
        let marker = marker();
        let param = format!("marker={marker}");
        let mut args = vec!["-p", param.as_str()];
        args.extend_from_slice(extra);
        let run = home.run("wf-deadline.yaml", &args);
        run.expect_phase("Failed");
        assert_eq!(run.node_phase("stubborn"), "Failed");
        assert!(!run.message("stubborn").is_empty(), "{}", run.describe());
        assert!(
            run.elapsed < Duration::from_secs(30),
            "took {:?}",
            run.elapsed
        );
        assert_no_process_left(&marker);
    }
}

#[test]
fn workflow_deadline_kills_a_step_that_ignores_sigterm() {
    check_workflow_deadline(&[]);
}

#[test]
fn workflow_deadline_kills_a_step_that_ignores_sigterm_without_sandbox() {
    check_workflow_deadline(&["--no-sandbox"]);
}

#[test]
fn template_timeout_and_deadline_fail_the_step() {
    both_modes(check_template_deadlines);
}

fn check_template_deadlines(extra: &[&str]) {
    let home = Home::new();
    let marker = marker();
    let param = format!("marker={marker}");
    let mut args = vec!["-p", param.as_str()];
    args.extend_from_slice(extra);
    let run = home.run("tmpl-deadline.yaml", &args);
    run.expect_phase("Failed");
    assert_eq!(run.node_phase("timeout"), "Failed");
    assert_eq!(run.node_phase("deadline"), "Failed");
    assert_eq!(run.message("timeout"), "Step exceeded its deadline");
    assert_eq!(run.message("deadline"), "Step exceeded its deadline");
    assert!(
        run.elapsed < Duration::from_secs(30),
        "took {:?}",
        run.elapsed
    );
    assert_no_process_left(&marker);
}

// ---------------------------------------------------------------- parallelism

/// The most intervals open at once, from `start ID NANOS` / `end ID NANOS` lines.
fn max_overlap(times: &str) -> usize {
    let mut events: Vec<(u128, i32)> = times
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(parts.len(), 3, "bad line {l:?}");
            let t: u128 = parts[2].parse().expect("nanoseconds");
            (t, if parts[0] == "start" { 1 } else { -1 })
        })
        .collect();
    // Ends before starts at the same instant.
    events.sort();
    let (mut open, mut most) = (0i32, 0i32);
    for (_, delta) in events {
        open += delta;
        most = most.max(open);
    }
    most as usize
}

#[test]
fn workflow_parallelism_limits_running_steps() {
    let home = Home::new();
    let run = home.run_with_data("parallelism-workflow.yaml", &[]);
    run.expect_phase("Succeeded");
    let times = home.data_file("times");
    assert_eq!(times.lines().count(), 10, "{times}");
    assert_eq!(max_overlap(&times), 2, "{times}");
}

#[test]
fn template_parallelism_limits_its_children() {
    let home = Home::new();
    let run = home.run_with_data("parallelism-template.yaml", &[]);
    run.expect_phase("Succeeded");
    let times = home.data_file("times");
    assert_eq!(times.lines().count(), 6, "{times}");
    assert_eq!(max_overlap(&times), 1, "{times}");
}

// ---------------------------------------------------------------- exit handlers

#[test]
fn exit_handlers_see_status_and_outputs() {
    let home = Home::new();
    let run = home.run("exit-handlers.yaml", &[]);
    run.expect_phase("Succeeded");
    let exit = format!("{}.onExit", run.name());
    assert_eq!(run.result(&exit), "status=Succeeded");
    assert_eq!(run.result("produce.onExit"), "hook got bird");
    assert_eq!(run.result("old-style.onExit"), "plain exit ran");

    let failed = home.run("exit-handlers.yaml", &["-p", "code=1"]);
    failed.expect_phase("Failed");
    let exit = format!("{}.onExit", failed.name());
    assert_eq!(failed.node_phase(&exit), "Succeeded");
    assert_eq!(failed.result(&exit), "status=Failed");
}

// ---------------------------------------------------------------- parameters

#[test]
fn parameters_defaults_and_outputs() {
    let home = Home::new();
    let run = home.run("params.yaml", &[]);
    run.expect_phase("Succeeded");
    assert_eq!(run.result("greet"), "hello-red");
    // Input default when no argument is given.
    assert_eq!(run.result("defaulted"), "nobody");
    assert_eq!(run.output("outputs", "from-file"), "from a file");
    assert_eq!(run.output("outputs", "missing"), "the-default");
    // valueFrom.expression and valueFrom.parameter on a steps template.
    let root = run.name();
    assert_eq!(run.output(&root, "verdict"), "default");
    assert_eq!(run.output(&root, "from-step"), "from a file");
}

#[test]
fn global_output_appears_in_status_outputs() {
    let home = Home::new();
    let run = home.run("params.yaml", &[]);
    run.expect_phase("Succeeded");
    assert_eq!(
        named_value(&run.status()["outputs"]["parameters"], "shared-global").as_deref(),
        Some("from a file"),
        "{}",
        run.describe()
    );
}

#[test]
fn parameters_from_command_line_file_and_entrypoint() {
    let home = Home::new();
    let run = home.run("params.yaml", &["-p", "greeting=hi", "-p", "color=blue"]);
    run.expect_phase("Succeeded");
    assert_eq!(run.result("greet"), "hi-blue");
    assert_eq!(run.output(&run.name(), "verdict"), "custom");

    let file = fixture_path("params-file.yaml");
    let run = home.run("params.yaml", &["--parameter-file", &file]);
    assert_eq!(run.result("greet"), "howdy-green");
    // -p wins over the file.
    let run = home.run(
        "params.yaml",
        &["--parameter-file", &file, "-p", "color=blue"],
    );
    assert_eq!(run.result("greet"), "howdy-blue");

    let run = home.run("params.yaml", &["--entrypoint", "other"]);
    run.expect_phase("Succeeded");
    assert_eq!(run.result(&run.name()), "other entrypoint red");
    assert!(!run.has("greet"));
}

#[test]
fn parameter_outside_its_enum_is_refused() {
    let home = Home::new();
    let out = home.cox(&[
        "run",
        &fixture_path("params.yaml"),
        "-p",
        "color=purple",
        "-o",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "stderr: {stderr}");
    // Argo: `spec.arguments.color.value should be present in spec.arguments.color.enum list`.
    assert!(
        stderr.contains("color") && stderr.contains("enum"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("Succeeded"), "stderr: {stderr}");
}

// ---------------------------------------------------------------- artifacts

#[test]
fn artifacts_between_steps() {
    // Input artifacts at /in need the sandbox's private root.
    sandbox_only(|extra| {
        let home = Home::new();
        let run = home.run("artifacts.yaml", extra);
        run.expect_phase("Succeeded");
        // File, directory (nested), archive none, raw.
        assert_eq!(run.result("use"), "onetwothreefour\nraw data");
        let arts = run.node("make")["outputs"]["artifacts"]
            .as_array()
            .expect("artifacts")
            .clone();
        let by_name = |n: &str| arts.iter().find(|a| a["name"] == n).cloned();
        // The optional artifact that was not made is simply absent.
        assert!(by_name("maybe").is_none(), "{arts:?}");
        let key = |n: &str| {
            by_name(n).expect(n)["s3"]["key"]
                .as_str()
                .expect("key")
                .to_string()
        };
        let stored = |k: &str| std::fs::read(home.home().join("artifacts").join(k)).expect(k);
        for tgz in ["file", "dir"] {
            let k = key(tgz);
            assert!(k.ends_with(".tgz"), "{k}");
            assert_eq!(&stored(&k)[..2], [0x1f, 0x8b], "{k} is gzip");
        }
        let plain = key("plain");
        assert!(!plain.ends_with(".tgz"), "{plain}");
        assert_eq!(stored(&plain), b"four");
    });
}

#[test]
fn explicit_keys_sub_paths_root_paths_expressions_and_global_artifacts() {
    let home = Home::new();
    let run = home.run("artifact-locations.yaml", &[]);
    run.expect_phase("Succeeded");
    // The input keyed by s3.key, subPath a/b.txt of the directory, /result.txt written
    // relative to the root working directory.
    assert_eq!(run.result("consume"), "keyed\nbee\nroot");
    assert_eq!(run.result("global"), "sea");
    let name = run.name();
    let key = format!("{name}/custom/keyed");
    let keyed = run.node("produce")["outputs"]["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["name"] == "keyed")
        .expect("keyed")
        .clone();
    assert_eq!(keyed["s3"]["key"], key.as_str());
    assert!(home.home().join("artifacts").join(&key).is_file());
    // fromExpression took the root artifact.
    let root_key = |node: &Value, art: &str| {
        node["outputs"]["artifacts"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["name"] == art))
            .map(|a| a["s3"]["key"].clone())
    };
    assert_eq!(
        root_key(run.node(&name), "chosen"),
        root_key(run.node("produce"), "root"),
        "{}",
        run.describe()
    );
    // The global artifact is in the workflow's outputs.
    let globals = run.status()["outputs"]["artifacts"]
        .as_array()
        .expect("global artifacts");
    assert_eq!(globals.len(), 1);
    assert_eq!(globals[0]["name"], "shared-dir");
    assert_eq!(
        globals[0]["s3"]["key"],
        root_key(run.node("produce"), "dir").expect("dir")
    );
    // The saved /tmp holds the step's files only.
    let tmp_key = root_key(run.node("produce"), "tmp").expect("tmp");
    let tmp = home
        .home()
        .join("artifacts")
        .join(tmp_key.as_str().expect("key"));
    assert_eq!(
        std::fs::read_to_string(tmp.join("k.txt")).expect("k.txt"),
        "keyed\n"
    );
    assert!(tmp.join("dir/a/b.txt").is_file());
    assert!(!tmp.join(".cox").exists(), "the wrapper's files were saved");
    // Nor the repository, mounted at its host path (under /tmp when the home is).
    let repo_dir = home.home().join("artifacts");
    if let Ok(rel) = repo_dir.strip_prefix("/tmp") {
        assert!(
            !tmp.join(rel).exists(),
            "the repository was saved into itself"
        );
    }
}

/// A file server on loopback serving `dir`; returns its base URL.
fn serve_http(dir: PathBuf) -> String {
    http_support::serve(move |target| {
        let path = target.split('?').next().unwrap_or("");
        if path.contains("..") {
            return None;
        }
        std::fs::read(dir.join(path.trim_start_matches('/'))).ok()
    })
}

#[test]
fn cox_cp_copies_checked_artifacts_out() {
    let home = Home::new();
    let run = home.run("artifacts.yaml", &[]);
    run.expect_phase("Succeeded");
    let name = run.name();
    let out = home.data().join("cp");
    let cp = |args: &[&str]| {
        let mut all = vec!["cp", name.as_str(), out.to_str().expect("utf-8")];
        all.extend_from_slice(args);
        home.cox(&all)
    };
    let o = cp(&["--path", "{templateName}/{artifactName}"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A file (tar.gz), a directory (tar.gz) and a plain object, unpacked to their paths.
    let make = run.node("make")["templateName"]
        .as_str()
        .expect("template")
        .to_string();
    let dir = out.join(&make);
    assert_eq!(
        std::fs::read_to_string(dir.join("plain")).expect("plain"),
        "four"
    );
    assert!(
        dir.join("file").is_file(),
        "{:?}",
        std::fs::read_dir(&dir).map(|d| d.count())
    );
    assert!(dir.join("dir").is_dir());
    // Argo's default layout, one artifact.
    let o = cp(&["--artifact-name", "plain"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = run.node("make")["id"].as_str().expect("id").to_string();
    assert!(
        out.join(format!("default/{name}/{id}/outputs/plain"))
            .is_file()
    );
    // A stored object changed since it was saved: refused, naming the artifact.
    let key = run.node("make")["outputs"]["artifacts"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["name"] == "plain"))
        .and_then(|a| a["s3"]["key"].as_str())
        .expect("key")
        .to_string();
    std::fs::write(home.home().join("artifacts").join(&key), "tampered").expect("tamper");
    let o = cp(&["--artifact-name", "plain", "--path", "again/{artifactName}"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr.contains("artifact plain"), "{stderr}");
    assert!(!out.join("again/plain").exists());
    // A path that leaves the output directory is refused.
    let o = cp(&["--path", "../{artifactName}"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("leaves the output directory"));
}

#[test]
fn artifact_gc_deletes_on_completion_and_on_deletion() {
    let home = Home::new();
    let run = home.run("artifact-gc.yaml", &[]);
    run.expect_phase("Succeeded");
    let name = run.name();
    let repo = home.home().join("artifacts");
    let key = |art: &str| {
        run.node(&name)["outputs"]["artifacts"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["name"] == art))
            .and_then(|a| a["s3"]["key"].as_str())
            .map(|k| repo.join(k))
            .unwrap_or_else(|| panic!("{art}: {}", run.describe()))
    };
    assert!(
        !key("on-completion").exists(),
        "deleted when the run completed"
    );
    assert!(key("on-deletion").is_file());
    assert!(key("dir-on-deletion").join("x").is_file());
    let out = home.cox(&["delete", &name]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!key("on-deletion").exists(), "deleted with the run");
    assert!(
        !key("dir-on-deletion").join("x").exists(),
        "a directory's objects too"
    );
}

#[test]
fn http_input_artifacts_are_downloaded_and_unpacked() {
    let home = Home::new();
    let site = home.data().join("site");
    std::fs::create_dir_all(site.join("files/src")).expect("mkdir");
    std::fs::write(site.join("files/plain.txt"), "plain over http\n").expect("write");
    std::fs::write(site.join("files/src/inner.txt"), "inside the tarball\n").expect("write");
    let tar = Command::new("tar")
        .args(["czf", "files/bundle.tgz", "-C", "files", "src"])
        .current_dir(&site)
        .status()
        .expect("tar");
    assert!(tar.success());
    let base = serve_http(site);
    let run = home.run("artifact-http.yaml", &["-p", &format!("base={base}")]);
    run.expect_phase("Succeeded");
    assert_eq!(
        run.result(&run.name()),
        "plain over http\ninside the tarball\n600"
    );
    // A missing file is an error naming the URL.
    let run = home.run(
        "artifact-http.yaml",
        &["-p", &format!("base={base}/nothing")],
    );
    run.expect_phase("Error");
    assert!(
        run.message(&run.name())
            .contains("/nothing/files/plain.txt"),
        "{}",
        run.describe()
    );
}

#[test]
fn archive_logs_saves_the_step_log_as_main_logs() {
    let home = Home::new();
    let run = home.run("archive-logs.yaml", &[]);
    run.expect_phase("Succeeded");
    let logs = run.node("logged")["outputs"]["artifacts"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["name"] == "main-logs"))
        .cloned()
        .unwrap_or_else(|| panic!("no main-logs: {}", run.describe()));
    let key = logs["s3"]["key"].as_str().expect("key");
    assert!(key.ends_with("/main.log"), "{key}");
    let text = std::fs::read_to_string(home.home().join("artifacts").join(key)).expect("log");
    // Both streams, in the order read (the two pipes race); the line without a newline is
    // kept as it is when it is last, and ended where the other stream interrupts it.
    assert!(text.contains("out line\n"), "{text:?}");
    assert!(text.contains("err line\n"), "{text:?}");
    assert!(
        text.ends_with("no newline") || text.contains("no newline\nerr line\n"),
        "{text:?}"
    );
    assert_eq!(
        logs["archive"],
        serde_json::json!({"none": {}}),
        "kept as text"
    );
    assert!(
        run.node("quiet")["outputs"]["artifacts"].is_null(),
        "{}",
        run.describe()
    );
}

#[test]
fn repository_archive_logs_archives_every_step_log() {
    // Argo: the repository's `archiveLogs: true` wins over a template's `false`.
    let home = Home::new();
    let config = home.data().join("config.yaml");
    std::fs::write(
        &config,
        "artifactRepository:\n  archiveLogs: true\n  local:\n    path: arts\n",
    )
    .expect("write config");
    let config = config.display().to_string();
    let run = home.run("archive-logs.yaml", &["--config", &config]);
    run.expect_phase("Succeeded");
    for node in ["logged", "quiet"] {
        let logs = run.node(node)["outputs"]["artifacts"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["name"] == "main-logs"))
            .cloned()
            .unwrap_or_else(|| panic!("{node}: no main-logs: {}", run.describe()));
        let key = logs["s3"]["key"].as_str().expect("key");
        assert!(home.data().join("arts").join(key).is_file(), "{key}");
    }
    let quiet = std::fs::read_to_string(home.data().join("arts").join(format!(
        "{}/{}/main.log",
        run.name(),
        run.node("quiet")["id"].as_str().expect("id")
    )))
    .expect("quiet log");
    assert_eq!(quiet, "quiet\n");
}

#[test]
fn input_artifact_in_an_existing_host_directory() {
    let home = Home::new();
    let run = home.run("artifact-host-dir.yaml", &[]);
    run.expect_phase("Succeeded");
    assert_eq!(run.result(&run.name()), "setting=1");
}

// ---------------------------------------------------------------- isolation and values

#[test]
fn parallel_sandboxed_steps_have_their_own_tmp() {
    let home = Home::new();
    let run = home.run("same-path.yaml", &[]);
    run.expect_phase("Succeeded");
    for (i, v) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        let node = format!("write({i}:{v})");
        assert_eq!(run.output(&node, "out"), *v, "{}", run.describe());
        assert_eq!(run.result(&node), *v);
    }
}

const AWKWARD: &str =
    "a {{workflow.name}} $(echo pwned) `echo tick` \"dq\" 'sq' \\ back\nline2\n\ttab ✓ end";

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn awkward_values_pass_between_steps_unchanged() {
    sandbox_only(|extra| {
        let home = Home::new();
        let hex_arg = format!("hex={}", hex(AWKWARD));
        let mut args = vec!["-p", hex_arg.as_str()];
        args.extend_from_slice(extra);
        let run = home.run_with_data("special-values.yaml", &args);
        run.expect_phase("Succeeded");
        assert_eq!(run.output("produce", "v"), AWKWARD);
        assert_eq!(
            std::fs::read(home.data().join("produced.txt")).expect("produced.txt"),
            AWKWARD.as_bytes()
        );
    });
}

#[test]
fn awkward_command_line_parameter_passes_unchanged() {
    let home = Home::new();
    let hex_arg = format!("hex={}", hex("x"));
    let given = format!("given={AWKWARD}");
    let run = home.run_with_data("special-values.yaml", &["-p", &hex_arg, "-p", &given]);
    run.expect_phase("Succeeded");
    assert_eq!(
        std::fs::read(home.data().join("given.txt")).expect("given.txt"),
        AWKWARD.as_bytes()
    );
}

// ---------------------------------------------------------------- volumes, container sets, suspend

#[test]
fn host_path_and_container_set_with_empty_dir() {
    sandbox_only(|extra| {
        let home = Home::new();
        let run = home.run_with_data("volumes.yaml", extra);
        run.expect_phase("Succeeded");
        assert_eq!(home.data_file("host.txt"), "written through hostPath");
        for c in ["first", "second", "main"] {
            assert_eq!(run.node(c)["type"], "Container", "{}", run.describe());
            assert_eq!(run.node_phase(c), "Succeeded");
        }
        assert_eq!(run.output("set", "combined"), "from-first and-second");
        assert_eq!(run.result("set"), "from-first and-second");
    });
}

#[test]
fn hostpath_from_parameter() {
    let home = Home::new();
    let data = format!("dir={}", home.data().display());
    let run = home.run("volumes.yaml", &["-p", &data]);
    run.expect_phase("Succeeded");
    assert_eq!(home.data_file("host.txt"), "written through hostPath");
}

#[test]
fn suspend_with_duration_resumes() {
    let home = Home::new();
    let run = home.run("suspend.yaml", &[]);
    run.expect_phase("Succeeded");
    assert_eq!(run.node("wait")["type"], "Suspend");
    assert_eq!(run.node_phase("wait"), "Succeeded");
    assert_eq!(run.result("after"), "resumed");
    let wait = run.node("wait");
    let at =
        |k: &str| chrono_free_seconds(wait[k].as_str().unwrap_or_else(|| panic!("{k} on wait")));
    assert!(
        at("finishedAt") - at("startedAt") >= 1,
        "{}",
        run.describe()
    );
}

/// Seconds since midnight of an RFC 3339 time (`2026-01-02T03:04:05Z`, fractions ignored):
/// enough to compare two times of one short run.
fn chrono_free_seconds(t: &str) -> i64 {
    let time = t.split('T').nth(1).unwrap_or_else(|| panic!("time {t}"));
    let hms: Vec<i64> = time[..8]
        .split(':')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("time {t}")))
        .collect();
    hms[0] * 3600 + hms[1] * 60 + hms[2]
}

// ---------------------------------------------------------------- get, list, logs, delete

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn get_list_logs_and_delete() {
    let home = Home::new();
    let run = home.run("cli.yaml", &[]);
    run.expect_phase("Succeeded");
    let name = run.name();

    let got = home.cox(&["get", &name, "-o", "json"]);
    assert_eq!(got.status.code(), Some(0));
    let wf: Value = serde_json::from_str(&text(&got)).expect("json");
    assert_eq!(wf["status"]["phase"], "Succeeded");
    assert_eq!(wf["status"]["nodes"], run.status()["nodes"]);

    let got = text(&home.cox(&["get", &name]));
    assert!(got.contains(&name), "{got}");
    assert!(got.contains("Succeeded"), "{got}");
    assert!(got.contains("one") && got.contains("two"), "{got}");

    let list = text(&home.cox(&["list"]));
    let row = list
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{name} not listed:\n{list}"));
    assert!(row.contains("Succeeded"), "{row}");
    // `--status` keeps only the runs in the given phases (Argo's names, any case).
    let failed = text(&home.cox(&["list", "--status", "Failed"]));
    assert!(!failed.contains(&name), "{failed}");
    let both = text(&home.cox(&["list", "--status", "Failed,succeeded"]));
    assert!(both.contains(&name), "{both}");
    let again = text(&home.cox(&["list", "--status", "Error", "--status", "Succeeded"]));
    assert!(again.contains(&name), "{again}");
    let bad = home.cox(&["list", "--status", "Done"]);
    assert_ne!(bad.status.code(), Some(0));
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(why.contains("unknown workflow phase 'Done'"), "{why}");

    let logs = home.cox(&["logs", &name]);
    assert_eq!(logs.status.code(), Some(0));
    assert_eq!(
        text(&logs).lines().collect::<Vec<_>>(),
        [
            "one: first-line",
            "one: first-line-again",
            "two: second-line",
            "two: second-line-again"
        ]
    );
    let logs = home.cox(&["logs", &name, "two"]);
    assert_eq!(
        text(&logs).lines().collect::<Vec<_>>(),
        ["two: second-line", "two: second-line-again"]
    );
    let missing = home.cox(&["logs", &name, "three"]);
    assert_ne!(missing.status.code(), Some(0));

    let deleted = home.cox(&["delete", &name]);
    assert_eq!(deleted.status.code(), Some(0));
    assert_eq!(text(&deleted).trim(), format!("Workflow '{name}' deleted"));
    let gone = home.cox(&["get", &name]);
    assert_ne!(gone.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));
    assert!(!text(&home.cox(&["list"])).contains(&name));
    let again = home.cox(&["delete", &name]);
    assert_ne!(again.status.code(), Some(0));
}

/// `cox list | head -0`: output into a pipe nobody reads ends quietly, with no panic.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let home = Home::new();
    let run = home.run("cli.yaml", &[]);
    run.expect_phase("Succeeded");
    let name = run.name();
    for args in [
        vec!["list"],
        vec!["get", &name],
        vec!["get", &name, "-o", "json"],
        vec!["logs", &name],
        vec!["template", "list"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_cox"))
            .env("COX_HOME", home.home())
            .env_remove("COX_SERVER")
            .args(&args)
            .stdout(writer)
            .output()
            .expect("run cox");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "cox {args:?}: {stderr}");
        assert!(stderr.is_empty(), "cox {args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------- refused runs

#[test]
fn lint_error_is_refused_and_nothing_is_stored() {
    let home = Home::new();
    let file = fixture_path("lint-error.yaml");
    let out = home.cox(&["run", &file, "-o", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out));
    assert!(
        stderr.contains(&format!(
            "{file}:16:13: spec.templates[0].dag.tasks[1].dependancies: unknown field 'dependancies' (did you mean 'dependencies'?)"
        )),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}: not run: 1 linting error(s)")),
        "stderr: {stderr}"
    );
    let stored = std::fs::read_dir(home.home())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "the home was written to");
}

#[test]
fn unknown_image_without_command_names_the_image_and_the_table() {
    let home = Home::new();
    let run = home.run("unknown-image.yaml", &[]);
    assert!(
        matches!(run.phase(), "Failed" | "Error"),
        "{}",
        run.describe()
    );
    assert_ne!(run.code, Some(0));
    let root = run.name();
    assert_eq!(run.node_phase(&root), "Error");
    let message = run.message(&root);
    assert!(
        message.contains("example.com/acme/mystery:1.2"),
        "{message}"
    );
    assert!(
        message.contains("images.yaml") || message.contains("images.md"),
        "{message}"
    );
}

// ---------------------------------------------------------------- Ctrl-C

#[test]
fn ctrl_c_stops_the_run_and_the_exit_handler_still_runs() {
    let home = tempfile::TempDir::new().expect("home");
    let out = tempfile::TempDir::new().expect("out dir");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run/stop.yaml");
    let started_at = std::time::Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cox"))
        .arg("run")
        .arg(&fixture)
        .args(["-o", "json", "-p"])
        .arg(format!("dir={}", out.path().display()))
        .env("COX_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cox runs");
    // Wait until the first step is really running (it leaves a file), then interrupt cox.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let started = || {
        std::fs::read_dir(out.path())
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("started-"))
            })
            .unwrap_or(false)
    };
    while !started() {
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("cox ends");
    assert!(
        started_at.elapsed() < std::time::Duration::from_secs(45),
        "the stopped step was not cut short"
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let workflow: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("final workflow as JSON");
    assert_eq!(workflow["status"]["phase"], "Failed");
    assert_eq!(
        workflow["status"]["message"],
        "Stopped with strategy 'Stop'"
    );
    let nodes = workflow["status"]["nodes"].as_object().expect("nodes");
    assert!(
        nodes.values().all(|n| n["displayName"] != "never"),
        "nothing new starts after a stop"
    );
    let exit =
        std::fs::read_to_string(out.path().join("exit-handler")).expect("the exit handler ran");
    assert_eq!(exit.trim(), "Failed");
    assert_eq!(
        std::fs::read_dir(out.path())
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("started-"))
            .count(),
        1
    );
}
