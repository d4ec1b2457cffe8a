//! The `cox` command line against a real `cox server` (`COX_SERVER`): objects applied and
//! read back, workflows submitted from a template and from files, suspended, stopped,
//! waited for and deleted; and the lifecycle commands refused without a server.

mod support;

use std::path::Path;

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
