//! `cox server`'s API over real HTTP on 127.0.0.1 (an ephemeral port), with a fake executor.
//! Each answer is checked against Argo's swagger definition of its type when
//! `/work/shared/argo/api/swagger.json` (or `$ARGO_SWAGGER`) is present (see `common`).

use cox_scheduler::server::{self, ServerConfig};
use cox_scheduler::testsuite::{Match, Scripted};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod common;

use common::*;

#[tokio::test]
async fn create_get_list_delete_round_trip() {
    let server = TestServer::start().await;
    let (status, created) = server
        .call("POST", "/api/v1/workflows/argo", Some(&create_body(HELLO)))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_shape("Workflow", &created);
    let name = created["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    assert!(
        name.starts_with("hello-") && name.len() == "hello-".len() + 5,
        "{name}"
    );
    assert_eq!(created["metadata"]["namespace"], "argo");
    assert_eq!(created["metadata"]["uid"].as_str().map(str::len), Some(36));
    assert!(
        created["metadata"]["creationTimestamp"].is_string(),
        "{created}"
    );
    assert_eq!(created["metadata"]["labels"]["team"], "data");

    let finished = server.await_phase("argo", &name, "Succeeded").await;
    assert_shape("Workflow", &finished);
    assert_eq!(finished["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(
        finished["metadata"]["labels"]["workflows.argoproj.io/completed"],
        "true"
    );
    assert!(finished["status"]["nodes"].is_object(), "{finished}");

    let (status, list) = server.call("GET", "/api/v1/workflows/argo", None).await;
    assert_eq!(status, 200, "{list}");
    assert_shape("WorkflowList", &list);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["items"][0]["metadata"]["name"], name.as_str());
    assert_eq!(list["items"][0]["status"]["phase"], "Succeeded");

    for (selector, count) in [
        ("team%3Ddata", 1),
        ("team%3Dother", 0),
        ("team%21%3Ddata", 0),
        ("workflows.argoproj.io%2Fcompleted%3Dtrue", 1),
        ("team", 1),
        ("%21team", 0),
    ] {
        let (status, list) = server
            .call(
                "GET",
                &format!("/api/v1/workflows/argo?listOptions.labelSelector={selector}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        assert_shape("WorkflowList", &list);
        assert_eq!(
            list["items"].as_array().map(Vec::len),
            Some(count),
            "{selector}: {list}"
        );
    }
    let (status, other) = server.call("GET", "/api/v1/workflows/other", None).await;
    assert_eq!((status, other["items"].clone()), (200, json!([])));
    let (status, wrong_namespace) = server
        .call("GET", &format!("/api/v1/workflows/other/{name}"), None)
        .await;
    assert_eq!(status, 404);
    assert_error(&wrong_namespace, 5);

    let (status, deleted) = server
        .call("DELETE", &format!("/api/v1/workflows/argo/{name}"), None)
        .await;
    assert_eq!((status, deleted), (200, json!({})));
    let (status, gone) = server
        .call("GET", &format!("/api/v1/workflows/argo/{name}"), None)
        .await;
    assert_eq!(status, 404);
    assert_error(&gone, 5);
    assert_eq!(
        gone["message"],
        format!("workflows.argoproj.io \"{name}\" not found")
    );
    let (status, list) = server.call("GET", "/api/v1/workflows/argo", None).await;
    assert_eq!((status, list["items"].clone()), (200, json!([])));
    server.stop().await;
}

#[tokio::test]
async fn invalid_spec_is_400_with_field_path_and_position() {
    let server = TestServer::start().await;
    let workflow = HELLO.replace(r#""container": {"#, r#""contianer": {"#);
    let body = create_body(&workflow);
    let (status, error) = server
        .call("POST", "/api/v1/workflows/argo", Some(&body))
        .await;
    assert_eq!(status, 400, "{error}");
    assert_error(&error, 3);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.templates[0].contianer"), "{message}");
    let line = body
        .lines()
        .position(|l| l.contains("contianer"))
        .expect("line")
        + 1;
    let column = body
        .lines()
        .nth(line - 1)
        .and_then(|l| l.find("\"contianer"))
        .expect("column")
        + 1;
    assert!(
        message.starts_with(&format!("{line}:{column}: ")),
        "expected {line}:{column}: {message}"
    );
    assert!(!message.contains("workflow:"), "no file name: {message}");

    let (status, error) = server
        .call("POST", "/api/v1/workflows/argo", Some("{\"workflow\": "))
        .await;
    assert_eq!(status, 400, "{error}");
    assert_error(&error, 3);
    let (status, error) = server
        .call("POST", "/api/v1/workflows/argo", Some("{}"))
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["message"], "workflow: required");
    let (status, list) = server.call("GET", "/api/v1/workflows/argo", None).await;
    assert_eq!((status, list["items"].clone()), (200, json!([])));
    server.stop().await;
}

#[tokio::test]
async fn unknown_workflow_and_route_are_404() {
    let server = TestServer::start().await;
    for (method, path) in [
        ("GET", "/api/v1/workflows/argo/nope"),
        ("DELETE", "/api/v1/workflows/argo/nope"),
        ("GET", "/api/v1/nothing-here"),
    ] {
        let (status, error) = server.call(method, path, None).await;
        assert_eq!(status, 404, "{method} {path}: {error}");
        assert_error(&error, 5);
    }
    let (status, error) = server
        .call("PUT", "/api/v1/workflows/argo", Some("{}"))
        .await;
    assert_eq!(status, 405, "{error}");
    assert_error(&error, 12);
    server.stop().await;
}

#[tokio::test]
async fn duplicate_name_is_409() {
    let server = TestServer::start().await;
    let body = create_body(&named("only-once"));
    let (status, created) = server
        .call("POST", "/api/v1/workflows/argo", Some(&body))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["metadata"]["name"], "only-once");
    let (status, error) = server
        .call("POST", "/api/v1/workflows/argo", Some(&body))
        .await;
    assert_eq!(status, 409, "{error}");
    assert_error(&error, 6);
    assert_eq!(
        error["message"],
        "workflows.argoproj.io \"only-once\" already exists"
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_before_it_is_read() {
    let server = TestServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    // Announce 40 MiB (over the 32 MiB default), send 64 KiB, and expect the answer anyway.
    let announced = 40 * 1024 * 1024;
    let head = format!(
        "POST /api/v1/workflows/argo HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {announced}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
        .write_all(&vec![b' '; 64 * 1024])
        .await
        .expect("send part");
    let (status, error) = read_response(&mut stream).await;
    assert_eq!(status, 413, "{error}");
    assert_error(&error, 8);
    server.stop().await;
}

#[tokio::test]
async fn streamed_body_over_the_limit_is_413() {
    let config = ServerConfig {
        max_body_bytes: 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, tempfile::tempdir().expect("tempdir")).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let chunk = " ".repeat(4096);
    let request = format!(
        "POST /api/v1/workflows/argo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let (status, error) = read_response(&mut stream).await;
    assert_eq!(status, 413, "{error}");
    assert_error(&error, 8);
    assert_eq!(error["message"], "request body larger than 1024 bytes");
    // A body under the limit is read and answered as usual.
    let (status, _) = server
        .call("POST", "/api/v1/workflows/argo/lint", Some("{}"))
        .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn lint_answers_the_workflow_or_400() {
    let server = TestServer::start().await;
    let (status, linted) = server
        .call(
            "POST",
            "/api/v1/workflows/argo/lint",
            Some(&create_body(HELLO)),
        )
        .await;
    assert_eq!(status, 200, "{linted}");
    assert_shape("Workflow", &linted);
    assert_eq!(linted["metadata"]["generateName"], "hello-");
    assert_eq!(linted["metadata"]["namespace"], "argo");
    let broken = HELLO.replace(r#""entrypoint": "main""#, r#""entrypoint": "mian""#);
    let (status, error) = server
        .call(
            "POST",
            "/api/v1/workflows/argo/lint",
            Some(&create_body(&broken)),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_error(&error, 3);
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.entrypoint"),
        "{error}"
    );
    // Linting submits nothing.
    let (_, list) = server.call("GET", "/api/v1/workflows/argo", None).await;
    assert_eq!(list["items"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn server_dry_run_submits_nothing() {
    let server = TestServer::start().await;
    let body = format!("{{\"serverDryRun\": true, \"workflow\": {}}}", named("dry"));
    let (status, workflow) = server
        .call("POST", "/api/v1/workflows/argo", Some(&body))
        .await;
    assert_eq!(status, 200, "{workflow}");
    assert_shape("Workflow", &workflow);
    assert_eq!(workflow["metadata"]["name"], "dry");
    let (status, _) = server.call("GET", "/api/v1/workflows/argo/dry", None).await;
    assert_eq!(status, 404);
    assert_eq!(server.executor.launch_count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn info_and_version() {
    let server = TestServer::start().await;
    let (status, info) = server.call("GET", "/api/v1/info", None).await;
    assert_eq!(status, 200, "{info}");
    assert_shape("InfoResponse", &info);
    let (status, version) = server.call("GET", "/api/v1/version", None).await;
    assert_eq!(status, 200, "{version}");
    assert_shape("Version", &version);
    assert!(
        version["version"]
            .as_str()
            .is_some_and(|v| v.starts_with('v')),
        "{version}"
    );
    server.stop().await;
}

#[tokio::test]
async fn delete_stops_a_running_workflow() {
    let server = TestServer::start().await;
    server
        .executor
        .script(Match::Template("main".into()), Scripted::hang());
    let (status, created) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(&named("long"))),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    server.await_phase("argo", "long", "Running").await;
    let (status, _) = server
        .call("DELETE", "/api/v1/workflows/argo/long", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .call("GET", "/api/v1/workflows/argo/long", None)
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_keeps_unfinished_runs_and_a_restart_resumes_them() {
    let server = TestServer::start().await;
    server
        .executor
        .script(Match::Template("main".into()), Scripted::hang());
    let (status, _) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(&named("survivor"))),
        )
        .await;
    assert_eq!(status, 200);
    server.await_phase("argo", "survivor", "Running").await;
    let home = server.stop().await;

    // The store lock is released: a new server opens the same home and resumes the run,
    // which the machine then ends (how a lost local step ends is the machine's decision).
    let server = TestServer::start_with(ServerConfig::default(), home).await;
    let finished = server
        .await_until("argo", "survivor", "completed", |w| {
            w["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"
        })
        .await;
    assert_eq!(finished["metadata"]["namespace"], "argo");
    assert_shape("Workflow", &finished);
    server.stop().await;
}

#[test]
fn only_loopback_addresses_are_allowed() {
    let allowed = |a: &str| server::is_loopback(&a.parse().expect("address"));
    assert!(allowed("127.0.0.1:2746"));
    assert!(allowed("[::1]:2746"));
    assert!(!allowed("0.0.0.0:2746"));
    assert!(!allowed("192.168.1.10:2746"));
}

#[test]
fn the_swagger_checker_finds_missing_and_mistyped_fields() {
    let Some(swagger) = Swagger::load() else {
        return;
    };
    let problems = swagger.problems(
        "io.argoproj.workflow.v1alpha1.Workflow",
        &json!({"metadata": {"name": 7}, "status": {"nodes": {"a": {"phase": 1}}}}),
    );
    assert!(
        problems.iter().any(|p| p.contains("required field spec")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("$.metadata.name")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("required field id")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("$.status.nodes.a.phase")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn retry_and_resubmit_a_failed_workflow() {
    let server = TestServer::start().await;
    // The step fails once, then passes.
    server.executor.script(
        Match::Template("main".into()),
        Scripted::now(cox_scheduler::testsuite::failed(1)),
    );
    server.executor.script(
        Match::Template("main".into()),
        Scripted::now(cox_scheduler::testsuite::succeeded(None)),
    );
    let (status, _) = server
        .call(
            "POST",
            "/api/v1/workflows/default",
            Some(&create_body(&named("flaky"))),
        )
        .await;
    assert_eq!(status, 200);
    server.await_phase("default", "flaky", "Failed").await;

    // Resubmitting a failed run memoized: a new run (nothing succeeded to reuse here).
    let (status, body) = server
        .call(
            "PUT",
            "/api/v1/workflows/default/flaky/resubmit",
            Some(r#"{"memoized": true}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_shape("Workflow", &body);
    let new = body["metadata"]["name"].as_str().expect("name").to_string();
    assert!(new.starts_with("flaky-"), "{new}");
    assert_eq!(
        body["metadata"]["labels"]["workflows.argoproj.io/resubmitted-from-workflow"],
        "flaky"
    );
    server.await_phase("default", &new, "Succeeded").await;

    // Retry in place: the failed step runs again and passes.
    let (status, body) = server
        .call("PUT", "/api/v1/workflows/default/flaky/retry", Some("{}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_shape("Workflow", &body);
    assert_eq!(body["metadata"]["name"], "flaky");
    server.await_phase("default", "flaky", "Succeeded").await;

    // A succeeded run cannot be retried; bad requests are 400, unknown runs 404.
    let (status, body) = server
        .call("PUT", "/api/v1/workflows/default/flaky/retry", None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_error(&body, 3);
    let (status, body) = server
        .call(
            "PUT",
            "/api/v1/workflows/default/flaky/retry",
            Some(r#"{"restartSuccessful": true, "nodeFieldSelector": "colour=red"}"#),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field 'colour'"),
        "{body}"
    );
    let (status, _) = server
        .call("PUT", "/api/v1/workflows/default/nope/resubmit", Some("{}"))
        .await;
    assert_eq!(status, 404);
    server.stop().await;
}

const LIBRARY: &str = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
  "metadata": {"name": "library", "labels": {"team": "data"}},
  "spec": {"templates": [
    {"name": "outer", "inputs": {"parameters": [{"name": "message"}]},
     "steps": [[{"name": "inner", "template": "say",
                 "arguments": {"parameters": [{"name": "message", "value": "{{inputs.parameters.message}}"}]}}]]},
    {"name": "say", "inputs": {"parameters": [{"name": "message"}]},
     "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.message}}"]}}
  ]}}"#;

const CLUSTER_LIBRARY: &str = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "ClusterWorkflowTemplate",
  "metadata": {"name": "shared"},
  "spec": {"entrypoint": "hello", "arguments": {"parameters": [{"name": "who", "value": "world"}]},
    "templates": [{"name": "hello", "container": {"image": "alpine", "command": ["echo", "{{workflow.parameters.who}}"]}}]}}"#;

#[tokio::test]
async fn templates_and_config_maps_are_stored_and_resolved_at_submission() {
    let server = TestServer::start().await;
    // ConfigMaps, on Kubernetes' paths.
    let config_map = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"greeting": "hello from a configmap"}}"#;
    let (status, created) = server
        .call(
            "POST",
            "/api/v1/namespaces/argo/configmaps",
            Some(config_map),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["metadata"]["namespace"], "argo");
    let (status, again) = server
        .call(
            "POST",
            "/api/v1/namespaces/argo/configmaps",
            Some(config_map),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    assert_error(&again, 6);
    let (status, list) = server
        .call("GET", "/api/v1/namespaces/argo/configmaps", None)
        .await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, bad) = server
        .call(
            "POST",
            "/api/v1/namespaces/argo/configmaps",
            Some(r#"{"metadata": {"name": "x"}, "data": {"n": 1}}"#),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["message"], "data.n: must be a string");

    // WorkflowTemplates: create, lint, get, list, update; a bad one is refused with its place.
    let (status, template) = server
        .call(
            "POST",
            "/api/v1/workflow-templates/argo",
            Some(&format!("{{\"template\": {LIBRARY}}}")),
        )
        .await;
    assert_eq!(status, 200, "{template}");
    assert_shape("WorkflowTemplate", &template);
    assert_eq!(template["metadata"]["namespace"], "argo");
    let (status, list) = server
        .call(
            "GET",
            "/api/v1/workflow-templates/argo?listOptions.labelSelector=team%3Ddata",
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_shape("WorkflowTemplateList", &list);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (status, list) = server
        .call("GET", "/api/v1/workflow-templates/other", None)
        .await;
    assert_eq!((status, list["items"].clone()), (200, json!([])));
    let broken = LIBRARY.replace("\"steps\"", "\"stepz\"");
    let (status, bad) = server
        .call(
            "POST",
            "/api/v1/workflow-templates/argo/lint",
            Some(&format!("{{\"template\": {broken}}}")),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_error(&bad, 3);
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("unknown field 'stepz'"),
        "{bad}"
    );
    let (status, cluster) = server
        .call(
            "POST",
            "/api/v1/cluster-workflow-templates",
            Some(&format!("{{\"template\": {CLUSTER_LIBRARY}}}")),
        )
        .await;
    assert_eq!(status, 200, "{cluster}");
    assert_shape("ClusterWorkflowTemplate", &cluster);
    assert!(cluster["metadata"].get("namespace").is_none(), "{cluster}");

    // A workflow calling the library by templateRef, with a ConfigMap parameter.
    let workflow = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
      "metadata": {"name": "uses-library"},
      "spec": {"entrypoint": "main",
        "arguments": {"parameters": [{"name": "greeting", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}]},
        "templates": [{"name": "main", "steps": [[{"name": "call", "templateRef": {"name": "library", "template": "outer"},
          "arguments": {"parameters": [{"name": "message", "value": "{{workflow.parameters.greeting}}"}]}}]]}]}}"#;
    let (status, created) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(workflow)),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let finished = server
        .await_phase("argo", "uses-library", "Succeeded")
        .await;
    assert_shape("Workflow", &finished);
    let stored = &finished["status"]["storedTemplates"];
    assert!(stored["namespaced/library/outer"].is_object(), "{finished}");
    assert!(stored["namespaced/library/say"].is_object(), "{finished}");
    let launches = server.executor.launches();
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0].spec.command, ["echo", "hello from a configmap"]);
    let node = finished["status"]["nodes"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["displayName"] == "inner")
        .expect("inner node");
    assert_eq!(
        node["templateRef"],
        json!({"name": "library", "template": "say"})
    );
    assert_eq!(node["templateScope"], "namespaced/library");

    // Submitting from the cluster template; its parameter overridden.
    let (status, submitted) = server
        .call(
            "POST",
            "/api/v1/workflows/argo/submit",
            Some(r#"{"resourceKind": "ClusterWorkflowTemplate", "resourceName": "shared", "submitOptions": {"parameters": ["who=cox"]}}"#),
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    let name = submitted["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("shared-"), "{name}");
    assert_eq!(
        submitted["metadata"]["labels"]["workflows.argoproj.io/cluster-workflow-template"],
        "shared"
    );
    let finished = server.await_phase("argo", &name, "Succeeded").await;
    assert_eq!(
        finished["status"]["storedWorkflowTemplateSpec"]["arguments"]["parameters"][0]["value"],
        "cox"
    );
    let (status, missing) = server
        .call(
            "POST",
            "/api/v1/workflows/argo/submit",
            Some(r#"{"resourceKind": "WorkflowTemplate", "resourceName": "nope"}"#),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(
        missing["message"],
        "workflowtemplates.argoproj.io \"nope\" not found"
    );

    // A reference to a template the server does not have is refused at creation.
    let dangling = workflow
        .replace("uses-library", "dangling")
        .replace("\"library\"", "\"absent\"");
    let (status, refused) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(&dangling)),
        )
        .await;
    assert_eq!(status, 400, "{refused}");

    // Updating the template does not change what a finished run stored; deleting works.
    let updated = LIBRARY.replace("\"echo\"", "\"printf\"");
    let (status, body) = server
        .call(
            "PUT",
            "/api/v1/workflow-templates/argo/library",
            Some(&format!("{{\"template\": {updated}}}")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["uid"], template["metadata"]["uid"]);
    let (_, run) = server
        .call("GET", "/api/v1/workflows/argo/uses-library", None)
        .await;
    assert_eq!(
        run["status"]["storedTemplates"]["namespaced/library/say"]["container"]["command"][0],
        "echo"
    );
    for path in [
        "/api/v1/workflow-templates/argo/library",
        "/api/v1/cluster-workflow-templates/shared",
        "/api/v1/namespaces/argo/configmaps/settings",
    ] {
        let (status, body) = server.call("DELETE", path, None).await;
        assert_eq!((status, body), (200, json!({})), "{path}");
        let (status, body) = server.call("GET", path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_error(&body, 5);
    }
    server.stop().await;
}

/// Create `workflow` (named `name`) in `argo` and wait until its node `node` is Running.
async fn create_and_await_running(server: &TestServer, workflow: &str, name: &str, node: &str) {
    let (status, created) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(workflow)),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    server
        .await_until("argo", name, "node running", |w| {
            node_named(w, node).is_some_and(|n| n["phase"] == "Running")
        })
        .await;
}

/// The node of a Workflow object with this display name.
fn node_named<'a>(workflow: &'a Value, display: &str) -> Option<&'a Value> {
    workflow["status"]["nodes"]
        .as_object()?
        .values()
        .find(|n| n["displayName"] == display)
}

#[tokio::test]
async fn suspend_templates_wait_for_set_and_resume() {
    let server = TestServer::start().await;
    let workflow = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
      "metadata": {"name": "approval"},
      "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "steps": [[{"name": "approve", "template": "approve"}],
          [{"name": "release", "template": "say", "arguments": {"parameters": [{"name": "m", "value": "{{steps.approve.outputs.parameters.answer}}"}]}}]]},
        {"name": "approve", "suspend": {}, "outputs": {"parameters": [{"name": "answer", "valueFrom": {"supplied": {}}}]}},
        {"name": "say", "inputs": {"parameters": [{"name": "m"}]}, "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.m}}"]}}]}}"#;
    create_and_await_running(&server, workflow, "approval", "approve").await;
    let path = "/api/v1/workflows/argo/approval";
    let (status, refused) = server
        .call("PUT", &format!("{path}/resume"), Some("{}"))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_error(&refused, 9);
    assert_eq!(
        refused["message"],
        "raw output parameter 'answer' has not been set and does not have a default value"
    );
    let (status, refused) = server
        .call(
            "PUT",
            &format!("{path}/set"),
            Some(r#"{"nodeFieldSelector": "displayName=approve", "outputParameters": "{\"other\": \"x\"}"}"#),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    let (status, set) = server
        .call(
            "PUT",
            &format!("{path}/set"),
            Some(r#"{"nodeFieldSelector": "displayName=approve", "outputParameters": "{\"answer\": \"ship it\"}", "message": "approved by test"}"#),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_shape("Workflow", &set);
    let approve = node_named(&set, "approve").expect("approve node");
    assert_eq!(approve["phase"], "Running");
    assert_eq!(approve["message"], "approved by test");
    let (status, resumed) = server
        .call("PUT", &format!("{path}/resume"), Some("{}"))
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_shape("Workflow", &resumed);
    let finished = server.await_phase("argo", "approval", "Succeeded").await;
    assert_eq!(
        node_named(&finished, "approve").unwrap()["outputs"]["parameters"][0]["value"],
        "ship it"
    );
    let launches = server.executor.launches();
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0].spec.command, ["echo", "ship it"]);
    let (status, completed) = server
        .call("PUT", &format!("{path}/suspend"), Some("{}"))
        .await;
    assert_eq!(status, 400, "{completed}");
    assert_eq!(completed["message"], "cannot suspend a completed workflow");
    let (status, missing) = server
        .call("PUT", "/api/v1/workflows/argo/nope/resume", Some("{}"))
        .await;
    assert_eq!(status, 404, "{missing}");
    server.stop().await;
}

#[tokio::test]
async fn a_suspended_workflow_starts_nothing_until_resumed() {
    let server = TestServer::start().await;
    let workflow = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
      "metadata": {"name": "paused"},
      "spec": {"entrypoint": "main", "templates": [
        {"name": "main", "steps": [[{"name": "hold", "template": "hold"}], [{"name": "after", "template": "say"}]]},
        {"name": "hold", "suspend": {}},
        {"name": "say", "container": {"image": "alpine", "command": ["echo", "after"]}}]}}"#;
    create_and_await_running(&server, workflow, "paused", "hold").await;
    let path = "/api/v1/workflows/argo/paused";
    let (status, suspended) = server.call("PUT", &format!("{path}/suspend"), None).await;
    assert_eq!(status, 200, "{suspended}");
    assert_eq!(suspended["spec"]["suspend"], true);
    // Resuming only the suspend node leaves the workflow suspended: the next step waits.
    let (status, resumed) = server
        .call(
            "PUT",
            &format!("{path}/resume"),
            Some(r#"{"nodeFieldSelector": "displayName=hold"}"#),
        )
        .await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(node_named(&resumed, "hold").unwrap()["phase"], "Succeeded");
    assert_eq!(resumed["spec"]["suspend"], true);
    assert_eq!(resumed["status"]["phase"], "Running");
    assert!(
        node_named(&resumed, "after").is_none_or(|n| n["phase"] == "Pending"),
        "{resumed}"
    );
    assert_eq!(server.executor.launch_count(), 0);
    let (status, resumed) = server.call("PUT", &format!("{path}/resume"), None).await;
    assert_eq!(status, 200, "{resumed}");
    assert!(resumed["spec"].get("suspend").is_none(), "{resumed}");
    server.await_phase("argo", "paused", "Succeeded").await;
    assert_eq!(server.executor.launch_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn stop_runs_exit_handlers_and_terminate_does_not() {
    let server = TestServer::start().await;
    let workflow = |name: &str| {
        format!(
            r#"{{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
      "metadata": {{"name": "{name}"}},
      "spec": {{"entrypoint": "main", "onExit": "cleanup", "templates": [
        {{"name": "main", "steps": [[{{"name": "hold", "template": "hold"}}]]}},
        {{"name": "hold", "suspend": {{}}}},
        {{"name": "cleanup", "container": {{"image": "alpine", "command": ["echo", "cleanup"]}}}}]}}}}"#
        )
    };
    for (name, verb, body, cleanups) in [
        ("stopped", "stop", r#"{"message": "not today"}"#, 1),
        ("terminated", "terminate", "{}", 0),
    ] {
        create_and_await_running(&server, &workflow(name), name, "hold").await;
        let (status, answered) = server
            .call(
                "PUT",
                &format!("/api/v1/workflows/argo/{name}/{verb}"),
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{answered}");
        assert_shape("Workflow", &answered);
        let strategy = if verb == "stop" { "Stop" } else { "Terminate" };
        assert_eq!(answered["spec"]["shutdown"], strategy);
        let finished = server.await_phase("argo", name, "Failed").await;
        assert_eq!(
            finished["status"]["message"],
            format!("Stopped with strategy '{strategy}'")
        );
        if verb == "stop" {
            assert_eq!(
                node_named(&finished, "hold").unwrap()["message"],
                "not today"
            );
        }
        let ran = server
            .executor
            .launches()
            .iter()
            .filter(|l| l.spec.run == name)
            .count();
        assert_eq!(ran, cleanups, "{name}: exit handler launches");
    }
    let (status, done) = server
        .call(
            "PUT",
            "/api/v1/workflows/argo/stopped/terminate",
            Some("{}"),
        )
        .await;
    assert_eq!(status, 400, "{done}");
    assert_eq!(done["message"], "cannot terminate a completed workflow");
    server.stop().await;
}

/// A one-step workflow named `name` with `ttlStrategy` `ttl` (JSON).
fn with_ttl(name: &str, ttl: &str) -> String {
    named(name).replace(
        r#""entrypoint": "main","#,
        &format!(r#""entrypoint": "main", "ttlStrategy": {ttl},"#),
    )
}

/// Poll until the run is gone (404), 10 s at most.
async fn await_deleted(server: &TestServer, name: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, answer) = server
            .call("GET", &format!("/api/v1/workflows/argo/{name}"), None)
            .await;
        if status == 404 {
            return;
        }
        assert_eq!(status, 200, "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} was never deleted: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ttl_strategy_deletes_finished_workflows() {
    let server = TestServer::start().await;
    // Succeeded with only a failure TTL: kept. Finished before `expired` below, so the
    // sweep that deletes `expired` has looked at it too.
    server
        .create("argo", &with_ttl("kept", r#"{"secondsAfterFailure": 0}"#))
        .await;
    server.await_phase("argo", "kept", "Succeeded").await;
    server
        .create(
            "argo",
            &with_ttl(
                "expired",
                r#"{"secondsAfterSuccess": 0, "secondsAfterCompletion": 86400}"#,
            ),
        )
        .await;
    await_deleted(&server, "expired").await;
    let (status, kept) = server
        .call("GET", "/api/v1/workflows/argo/kept", None)
        .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["spec"]["ttlStrategy"]["secondsAfterFailure"], 0);
    server.stop().await;
}

#[tokio::test]
async fn a_run_whose_ttl_passed_while_no_server_ran_is_deleted_at_startup() {
    use cox_scheduler::testsuite::FakeExecutor;
    use cox_scheduler::{Engine, EngineConfig};
    // `cox run` (no server) finishes a run whose TTL is already over.
    let home = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(EngineConfig::new(home.path(), FakeExecutor::new())).expect("engine");
    let in_argo = |workflow: String| {
        workflow.replace(r#""metadata": {"#, r#""metadata": {"namespace": "argo", "#)
    };
    for (name, ttl) in [
        ("offline", r#"{"secondsAfterCompletion": 0}"#),
        ("lasting", r#"{"secondsAfterCompletion": 86400}"#),
    ] {
        let workflow = serde_json::from_str(&in_argo(with_ttl(name, ttl))).expect("workflow");
        let run = engine.run_to_completion(workflow).await.expect("run");
        assert_eq!(run.phase().as_str(), "Succeeded");
    }
    drop(engine);
    let server = TestServer::start_with(ServerConfig::default(), home).await;
    await_deleted(&server, "offline").await;
    let (status, lasting) = server
        .call("GET", "/api/v1/workflows/argo/lasting", None)
        .await;
    assert_eq!(status, 200, "{lasting}");
    server.stop().await;
}

/// The names of a list answer's items, in order.
fn item_names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|w| w["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn list_pages_and_filters_by_phase_and_fields() {
    let server = TestServer::start().await;
    for i in 0..5 {
        server.create("argo", &named(&format!("p{i}"))).await;
        server
            .await_phase("argo", &format!("p{i}"), "Succeeded")
            .await;
    }
    server
        .executor
        .script(Match::Template("main".into()), Scripted::hang());
    server.create("argo", &named("p5")).await;
    server.await_phase("argo", "p5", "Running").await;

    // Pages of two, newest first; a run created between two pages does not shift them.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for page in 0.. {
        let mut path = "/api/v1/workflows/argo?listOptions.limit=2".to_string();
        if let Some(token) = &token {
            path.push_str(&format!("&listOptions.continue={token}"));
        }
        let (status, list) = server.call("GET", &path, None).await;
        assert_eq!(status, 200, "{list}");
        assert_shape("WorkflowList", &list);
        seen.extend(item_names(&list));
        if page == 0 {
            server.create("argo", &named("newer")).await;
        }
        match list["metadata"]["continue"].as_str() {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["p5", "p4", "p3", "p2", "p1", "p0"]);

    // The phase, as `argo list --status` asks for it, and field selectors.
    for (query, want) in [
        (
            "listOptions.labelSelector=workflows.argoproj.io/phase%20in%20(Running,Pending)",
            vec!["newer", "p5"],
        ),
        (
            "listOptions.labelSelector=workflows.argoproj.io/phase%20notin%20(Running)&listOptions.limit=1",
            vec!["p4"],
        ),
        ("listOptions.fieldSelector=metadata.name%3Dp2", vec!["p2"]),
        (
            "listOptions.fieldSelector=metadata.name!%3Dp2,metadata.namespace%3Dargo&listOptions.labelSelector=workflows.argoproj.io/phase%3DSucceeded",
            vec!["p4", "p3", "p1", "p0"],
        ),
    ] {
        let (status, list) = server
            .call("GET", &format!("/api/v1/workflows/argo?{query}"), None)
            .await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(item_names(&list), want, "{query}");
    }
    for bad in [
        "listOptions.limit=-1",
        "listOptions.continue=nonsense",
        "listOptions.fieldSelector=status.phase%3DRunning",
        "listOptions.labelSelector=phase%20in%20(Running",
    ] {
        let (status, error) = server
            .call("GET", &format!("/api/v1/workflows/argo?{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_error(&error, 3);
    }
    server.stop().await;
}

#[tokio::test]
async fn secrets_are_stored_on_kubernetes_paths_and_runs_keep_only_references() {
    let server = TestServer::start().await;
    let secret = r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "my-s3"},
      "stringData": {"accessKey": "AKIA-SERVER", "secretKey": "SERVER-SECRET"}}"#;
    let (status, created) = server
        .call("POST", "/api/v1/namespaces/argo/secrets", Some(secret))
        .await;
    assert_eq!(status, 200, "{created}");
    // As Kubernetes: stringData stored as base64 data.
    assert_eq!(created["data"]["secretKey"], "U0VSVkVSLVNFQ1JFVA==");
    assert!(created.get("stringData").is_none());
    let (status, got) = server
        .call("GET", "/api/v1/namespaces/argo/secrets/my-s3", None)
        .await;
    assert_eq!((status, &got["data"]), (200, &created["data"]));
    let (status, list) = server
        .call("GET", "/api/v1/namespaces/argo/secrets", None)
        .await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, bad) = server
        .call(
            "PUT",
            "/api/v1/namespaces/argo/secrets/my-s3",
            Some(r#"{"metadata": {"name": "my-s3"}, "data": {"k": "not-base64!"}}"#),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["message"], "data.k: must be base64");

    let config_map = r#"{"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "artifact-repositories"},
      "data": {"bucket": "s3:\n  endpoint: s3.example.com\n  bucket: b\n  accessKeySecret: {name: my-s3, key: accessKey}\n  secretKeySecret: {name: my-s3, key: secretKey}\n"}}"#;
    let (status, _) = server
        .call(
            "POST",
            "/api/v1/namespaces/argo/configmaps",
            Some(config_map),
        )
        .await;
    assert_eq!(status, 200);
    let workflow = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "keyed"},
      "spec": {"entrypoint": "main", "artifactRepositoryRef": {"key": "bucket"},
        "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}]}}"#;
    let (status, created) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(workflow)),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let finished = server.await_phase("argo", "keyed", "Succeeded").await;
    let text = finished.to_string();
    assert!(!text.contains("SERVER-SECRET") && !text.contains("AKIA-SERVER"));
    assert_eq!(
        finished["status"]["artifactRepositoryRef"]["artifactRepository"]["s3"]["secretKeySecret"],
        json!({"namespace": "argo", "name": "my-s3", "key": "secretKey"})
    );
    let launched = serde_json::to_string(&server.executor.launches()[0].spec).unwrap();
    assert!(!launched.contains("SERVER-SECRET"), "{launched}");
}

#[tokio::test]
async fn artifact_repository_ref_is_resolved_from_a_config_map_or_400() {
    let server = TestServer::start().await;
    let config_map = r#"{"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "artifact-repositories"},
      "data": {"shared": "local:\n  path: /srv/shared-artifacts\n"}}"#;
    let (status, created) = server
        .call(
            "POST",
            "/api/v1/namespaces/argo/configmaps",
            Some(config_map),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let workflow = |name: &str, key: &str| {
        format!(
            r#"{{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {{"name": "{name}"}},
              "spec": {{"entrypoint": "main", "artifactRepositoryRef": {{"key": "{key}"}},
                "templates": [{{"name": "main", "container": {{"image": "busybox", "command": ["true"]}}}}]}}}}"#
        )
    };
    let (status, refused) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(&workflow("missing-key", "nope"))),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["message"],
        "spec.artifactRepositoryRef: key 'nope' not found in ConfigMap 'artifact-repositories'"
    );

    let (status, created) = server
        .call(
            "POST",
            "/api/v1/workflows/argo",
            Some(&create_body(&workflow("uses-shared", "shared"))),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let finished = server.await_phase("argo", "uses-shared", "Succeeded").await;
    assert_shape("Workflow", &finished);
    assert_eq!(
        finished["status"]["artifactRepositoryRef"],
        json!({"configMap": "artifact-repositories", "key": "shared", "namespace": "argo",
            "artifactRepository": {"local": {"path": "/srv/shared-artifacts"}}})
    );
    let launches = server.executor.launches();
    assert_eq!(
        launches[0].spec.repository,
        Some(cox_worker::repo_config::RepositoryLocation::Local {
            path: "/srv/shared-artifacts".into()
        })
    );
}
