//! The `cox` command line against a real `cox server` (`COX_SERVER`): objects applied and
//! read back, workflows submitted from a template and from files, suspended, stopped,
//! waited for and deleted; the lifecycle commands refused without a server; and
//! `cox logs [-f]`, `cox watch` and `cox wait` following a run through the server's log
//! route and watch stream.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, cox_at};

const OBJECTS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: greetings}
data: {greeting: hello from a configmap}
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: greeter}
spec:
  entrypoint: greet
  arguments:
    parameters:
    - name: greeting
      valueFrom: {configMapKeyRef: {name: greetings, key: greeting}}
    - {name: suffix, value: "!"}
  templates:
  - name: greet
    container:
      image: busybox
      command: [sh, -c]
      args: ["echo '{{workflow.parameters.greeting}}{{workflow.parameters.suffix}}'"]
"#;

const HELD: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: held}
spec:
  entrypoint: main
  onExit: cleanup
  templates:
  - name: main
    steps:
    - - {name: wait, template: wait}
  - name: wait
    suspend: {}
  - name: cleanup
    container: {image: busybox, command: [echo, cleanup]}
"#;

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(home: &Path, server: &str, args: &[&str]) -> Value {
    let output = cox_at(home, Some(server), args);
    assert!(output.status.success(), "cox {args:?}: {}", text(&output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn cli_commands_talk_to_the_server() {
    let home = tempfile::tempdir().expect("home");
    let files = tempfile::tempdir().expect("files");
    let objects = files.path().join("objects.yaml");
    std::fs::write(&objects, OBJECTS).expect("write");
    let held = files.path().join("held.yaml");
    std::fs::write(&held, HELD).expect("write");
    let server = Server::start(home.path());
    let url = Some(server.url.as_str());
    let cox = |args: &[&str]| cox_at(home.path(), url, args);
    let objects = objects.display().to_string();

    let applied = cox(&["apply", "-f", &objects]);
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(
        String::from_utf8_lossy(&applied.stdout),
        "configmaps/greetings created\nworkflowtemplates.argoproj.io/greeter created\n"
    );
    let again = cox(&["apply", "-f", &objects]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("greeter configured"));
    let listed = cox(&["template", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "greeter\n");
    let template = json(
        home.path(),
        &server.url,
        &["template", "get", "greeter", "-o", "json"],
    );
    assert_eq!(template["metadata"]["namespace"], "default");
    let other = cox(&["-n", "other", "template", "list"]);
    assert_eq!(String::from_utf8_lossy(&other.stdout), "");

    // Submitted from the template, parameters overridden, waited for.
    let submitted = cox(&[
        "submit",
        "--from",
        "workflowtemplate/greeter",
        "-p",
        "suffix=?",
        "--wait",
        "-o",
        "json",
    ]);
    assert!(submitted.status.success(), "{}", text(&submitted));
    let finished: Value = serde_json::from_slice(&submitted.stdout).expect("workflow");
    assert_eq!(finished["status"]["phase"], "Succeeded");
    let name = finished["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("greeter-"), "{name}");
    let stored_args = &finished["status"]["storedWorkflowTemplateSpec"]["arguments"]["parameters"];
    assert_eq!(stored_args[0]["value"], "hello from a configmap");
    assert_eq!(stored_args[1]["value"], "?");
    let list = cox(&["list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&name),
        "{}",
        text(&list)
    );
    // `--status` asks the server for the phase label, as `argo list --status` does.
    for (phases, listed) in [("Succeeded,Error", true), ("Running,Failed", false)] {
        let list = cox(&["list", "--status", phases]);
        assert!(list.status.success(), "{}", text(&list));
        let shown = String::from_utf8_lossy(&list.stdout).contains(&name);
        assert_eq!(shown, listed, "--status {phases}: {}", text(&list));
    }

    // A workflow waiting at a suspend node: suspended, then stopped with a message.
    let submitted = cox(&["submit", &held.display().to_string()]);
    assert!(submitted.status.success(), "{}", text(&submitted));
    assert_eq!(String::from_utf8_lossy(&submitted.stdout), "held\n");
    let suspended = cox(&["suspend", "held"]);
    assert!(suspended.status.success(), "{}", text(&suspended));
    let workflow = json(home.path(), &server.url, &["get", "held", "-o", "json"]);
    assert_eq!(workflow["spec"]["suspend"], true);
    let stopped = cox(&["stop", "held", "--message", "not today"]);
    assert!(stopped.status.success(), "{}", text(&stopped));
    let waited = cox(&["wait", "held"]);
    assert!(
        !waited.status.success(),
        "a failed workflow: {}",
        text(&waited)
    );
    assert_eq!(String::from_utf8_lossy(&waited.stdout), "held Failed\n");
    let workflow = json(home.path(), &server.url, &["get", "held", "-o", "json"]);
    assert_eq!(
        workflow["status"]["message"],
        "Stopped with strategy 'Stop'"
    );
    let refused = cox(&["resume", "held"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("cannot resume a completed workflow"),
        "{}",
        text(&refused)
    );

    let deleted = cox(&["delete", "held"]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    let gone = cox(&["get", "held"]);
    assert!(!gone.status.success());
    assert!(
        text(&gone).contains("\"held\" not found"),
        "{}",
        text(&gone)
    );
    let deleted = cox(&["template", "delete", "greeter"]);
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert_eq!(
        String::from_utf8_lossy(&cox(&["template", "list"]).stdout),
        ""
    );

    // Without a server, the lifecycle commands say what they need.
    let local = tempfile::tempdir().expect("home");
    let refused = cox_at(local.path(), None, &["suspend", "anything"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--server"), "{}", text(&refused));
}

const TALKY: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: talky}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: before, template: say, arguments: {parameters: [{name: m, value: said before the pause}]}}
    - - {name: pause, template: pause}
    - - {name: after, template: say, arguments: {parameters: [{name: m, value: said after the pause}]}}
  - name: say
    inputs: {parameters: [{name: m}]}
    container: {image: busybox, command: [echo, "{{inputs.parameters.m}}"]}
  - name: pause
    suspend: {}
"#;

/// `cox ARGS` against `server`, started and left running, its stdout and stderr piped.
fn spawn_cox(home: &Path, server: &str, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_cox"))
        .env("COX_HOME", home)
        .env("COX_SERVER", server)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cox")
}

#[test]
fn logs_watch_and_wait_follow_a_run_through_the_server() {
    let home = tempfile::tempdir().expect("home");
    let server = Server::start(home.path());
    let cox = |args: &[&str]| cox_at(home.path(), Some(&server.url), args);
    let file = home.path().join("talky.yaml");
    std::fs::write(&file, TALKY).expect("write workflow");
    let submitted = cox(&["submit", &file.display().to_string()]);
    assert!(submitted.status.success(), "{}", text(&submitted));

    // The run waits at its suspend node (after `before` has logged) until resumed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let workflow = json(home.path(), &server.url, &["get", "talky", "-o", "json"]);
        let waiting = workflow["status"]["nodes"]
            .as_object()
            .into_iter()
            .flat_map(|nodes| nodes.values())
            .any(|n| n["displayName"] == "pause" && n["phase"] == "Running");
        if waiting {
            break;
        }
        assert!(Instant::now() < deadline, "never paused: {workflow:#}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Followers started while the run is suspended: each is attached before the resume.
    let mut logs = spawn_cox(home.path(), &server.url, &["logs", "-f", "talky"]);
    let mut log_lines = BufReader::new(logs.stdout.take().expect("stdout")).lines();
    let first = log_lines.next().expect("a log line").expect("read");
    assert!(first.ends_with(": said before the pause"), "{first}");
    let mut watch = spawn_cox(home.path(), &server.url, &["watch", "talky"]);
    let mut changes = BufReader::new(watch.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("pause: Running"))
    {
        seen.push(changes.next().expect("a change").expect("read"));
    }
    let wait = spawn_cox(home.path(), &server.url, &["wait", "talky"]);
    assert!(
        logs.try_wait().expect("logs").is_none(),
        "cox logs -f ended while the run is suspended"
    );

    let resumed = cox(&["resume", "talky"]);
    assert!(resumed.status.success(), "{}", text(&resumed));

    // `logs -f` ends with the run, having followed the step that ran after the resume.
    let rest: Vec<String> = log_lines.map(|l| l.expect("read")).collect();
    assert!(logs.wait().expect("logs").success());
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert!(rest[0].ends_with(": said after the pause"), "{rest:?}");
    // `watch` printed each change through the stream, then the final phase.
    seen.extend(changes.map(|l| l.expect("read")));
    let watched = watch.wait_with_output().expect("watch");
    assert!(watched.status.success(), "{seen:?}");
    assert_eq!(
        String::from_utf8_lossy(&watched.stdout),
        "talky Succeeded\n"
    );
    for change in ["pause: Succeeded", "after: Succeeded"] {
        assert!(
            seen.iter().any(|l| l.starts_with(change)),
            "{change}: {seen:?}"
        );
    }
    let waited = wait.wait_with_output().expect("wait");
    assert!(waited.status.success(), "{}", text(&waited));
    assert_eq!(String::from_utf8_lossy(&waited.stdout), "talky Succeeded\n");

    // The logs outlive the steps: the finished run's whole log, and one node's.
    let whole = cox(&["logs", "talky"]);
    assert!(whole.status.success(), "{}", text(&whole));
    let whole = String::from_utf8_lossy(&whole.stdout).to_string();
    let contents: Vec<&str> = whole
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, c)| c))
        .collect();
    assert_eq!(
        contents,
        ["said before the pause", "said after the pause"],
        "{whole}"
    );
    let one = cox(&["logs", "talky", "after"]);
    assert!(one.status.success(), "{}", text(&one));
    assert!(
        String::from_utf8_lossy(&one.stdout).ends_with(": said after the pause\n"),
        "{}",
        text(&one)
    );
}
