//! `cox server`'s artifact routes over real HTTP: a run's output artifacts, saved in the
//! home's local repository by `cox run`, downloaded as stored with Argo's attachment and
//! sandboxing headers; 404s naming what is missing; a stored object changed since it was
//! saved ends in a failed transfer; a token server refuses a caller without its token.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{Server, cox_at, http_get as get};

const WORKFLOW: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: reports}
spec:
  entrypoint: make
  templates:
  - name: make
    container:
      image: busybox
      command: [sh, -c, "printf '<html><script>alert(1)</script></html>' > OUT/report.html && printf packed > OUT/data.txt"]
    outputs:
      artifacts:
      - name: report
        path: OUT/report.html
        archive: {none: {}}
      - name: packed
        path: OUT/data.txt
"#;

/// The run `reports`, done by `cox run` in `home`: its Workflow object.
/// Runs [`WORKFLOW`] without the sandbox, its files (`OUT`) in `home`: the host's `/tmp`
/// would be shared with the other tests running at the same time.
fn run_reports(home: &Path) -> Value {
    let file = home.join("reports.yaml");
    let out = home.to_str().expect("utf-8 home");
    std::fs::write(&file, WORKFLOW.replace("OUT", out)).expect("write");
    let output = cox_at(
        home,
        None,
        &[
            "run",
            "--no-sandbox",
            "-o",
            "json",
            file.to_str().expect("utf-8"),
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("workflow")
}

/// The node `reports` (the only pod) and the stored keys of its artifacts by name.
fn node_and_key(workflow: &Value, artifact: &str) -> (String, String) {
    let nodes = workflow["status"]["nodes"].as_object().expect("nodes");
    let node = nodes
        .values()
        .find(|n| n["type"] == "Pod")
        .expect("the pod node");
    let key = node["outputs"]["artifacts"]
        .as_array()
        .and_then(|l| l.iter().find(|a| a["name"] == artifact))
        .and_then(|a| a["s3"]["key"].as_str())
        .expect("key");
    (
        node["id"].as_str().expect("id").to_string(),
        key.to_string(),
    )
}

#[test]
fn output_artifacts_are_served_as_stored_attachments() {
    let home = tempfile::tempdir().expect("home");
    let workflow = run_reports(home.path());
    assert_eq!(workflow["status"]["phase"], "Succeeded");
    let (node, report_key) = node_and_key(&workflow, "report");
    let (_, packed_key) = node_and_key(&workflow, "packed");
    let repository = home.path().join("artifacts");
    let server = Server::start(home.path());

    // An unarchived file, as stored, as an attachment under Argo's sandboxing headers.
    let answer = get(
        &server.url,
        &format!("/artifacts/default/reports/{node}/report"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let stored = std::fs::read(repository.join(&report_key)).expect("stored report");
    assert_eq!(answer.body, stored);
    assert_eq!(
        answer.header("content-length"),
        Some(stored.len().to_string().as_str())
    );
    let base = report_key.rsplit('/').next().expect("base name");
    assert_eq!(
        answer.header("content-disposition"),
        Some(format!("attachment; filename=\"{base}\"").as_str())
    );
    // The type comes from the key's extension, as Argo's does; the default key has none,
    // so an HTML file is not announced as HTML.
    assert_eq!(base, "report", "{report_key}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        answer.header("content-security-policy"),
        Some(
            "sandbox; base-uri 'none'; default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'"
        )
    );
    assert_eq!(answer.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));

    // An archived one: the .tgz as stored, on the artifact-files route.
    let answer = get(
        &server.url,
        &format!("/artifact-files/default/workflows/reports/{node}/outputs/packed"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.body,
        std::fs::read(repository.join(&packed_key)).expect("stored tgz")
    );
    assert!(packed_key.ends_with(".tgz"), "{packed_key}");
    assert_eq!(answer.header("content-type"), Some("application/gzip"));

    // What is missing is named.
    for (path, named) in [
        (
            format!("/artifacts/default/reports/{node}/nothing"),
            "output artifact nothing not found",
        ),
        (
            "/artifacts/default/reports/no-such-node/report".to_string(),
            "node no-such-node not found",
        ),
        (
            format!("/artifacts/default/elsewhere/{node}/report"),
            "\"elsewhere\" not found",
        ),
        (
            format!("/artifacts/other/reports/{node}/report"),
            "\"reports\" not found",
        ),
        (
            format!("/input-artifacts/default/reports/{node}/report"),
            "input artifact report not found",
        ),
        (
            format!("/artifact-files/default/archived-workflows/reports/{node}/outputs/report"),
            "no workflow archive",
        ),
    ] {
        let answer = get(&server.url, &path, None);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        let error: Value = serde_json::from_slice(&answer.body).expect("an Argo error");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{path}: {message}");
    }

    // Changed on disk since it was saved (same size, other bytes; then longer): the
    // transfer fails (cut before its head, or short of its announced length), never
    // delivering the changed file whole.
    let mut tampered = stored.clone();
    tampered[0] ^= 0x20;
    let mut longer = stored.clone();
    longer.extend_from_slice(b"<!-- more -->");
    for changed in [tampered, longer] {
        std::fs::write(repository.join(&report_key), &changed).expect("tamper");
        let answer = get(
            &server.url,
            &format!("/artifacts/default/reports/{node}/report"),
            None,
        );
        assert!(
            answer.failed(),
            "delivered: {} {}",
            answer.status,
            answer.text()
        );
        assert_ne!(answer.body, changed);
    }
    // The server says which artifact and why.
    for reason in ["sha256 mismatch", "size mismatch"] {
        let line = server.logged(&["artifact transfer aborted", "report", reason]);
        assert!(line.is_some(), "no '{reason}' in the server's log");
    }
    // The server is still there for the next request.
    let answer = get(
        &server.url,
        &format!("/artifact-files/default/workflows/reports/{node}/outputs/packed"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[test]
fn a_token_server_serves_artifacts_only_with_a_token() {
    let home = tempfile::tempdir().expect("home");
    let workflow = run_reports(home.path());
    let (node, report_key) = node_and_key(&workflow, "report");
    let tokens = home.path().join("tokens");
    std::fs::write(&tokens, "reader s3cret-artifact-token\n").expect("tokens");
    let server = Server::start_with(
        home.path(),
        &[
            "--auth-mode",
            "token",
            "--token-file",
            tokens.to_str().expect("utf-8"),
        ],
    );
    let path = format!("/artifacts/default/reports/{node}/report");
    let refused = get(&server.url, &path, None);
    assert_eq!(refused.status, 401, "{}", refused.text());
    let wrong = get(&server.url, &path, Some("not-the-token"));
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    // A browser following a link sends the `authorization` cookie instead, as Argo's UI
    // sets it; only the link routes take it.
    let by_cookie = support::http_request_with(
        &server.url,
        "GET",
        &path,
        &["Cookie: theme=dark; authorization=Bearer%20s3cret-artifact-token"],
    );
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.text());
    let wrong_cookie = support::http_request_with(
        &server.url,
        "GET",
        &path,
        &["Cookie: authorization=Bearer%20not-the-token"],
    );
    assert_eq!(wrong_cookie.status, 401, "{}", wrong_cookie.text());
    let elsewhere = support::http_request_with(
        &server.url,
        "GET",
        "/api/v1/workflows/default",
        &["Cookie: authorization=Bearer%20s3cret-artifact-token"],
    );
    assert_eq!(elsewhere.status, 401, "{}", elsewhere.text());
    let served = get(&server.url, &path, Some("s3cret-artifact-token"));
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(
        served.body,
        std::fs::read(home.path().join("artifacts").join(&report_key)).expect("stored")
    );
}
