//! `cox server` over real HTTP: access (the auth walk over every route), the body limit
//! on every route, step logs and the watch stream (checked against Argo's swagger), and
//! `/metrics`.

mod common;

use std::time::Duration;

use common::*;
use cox_scheduler::server::ServerConfig;
use cox_scheduler::server::auth::Auth;
use cox_scheduler::testsuite::{Match, Scripted};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "s3cr3t-token";

/// Every path of Argo's API (placeholders filled), and the routes of ours outside it.
fn every_path() -> Vec<String> {
    let mut paths = vec![
        "/metrics".to_string(),
        "/api/v1/userinfo".to_string(),
        "/api/v1/workflows/argo/hello/log".to_string(),
        "/no/such/route".to_string(),
        // Kubernetes' paths: ConfigMaps and Secrets (whose values GET returns).
        "/api/v1/namespaces/argo/configmaps".to_string(),
        "/api/v1/namespaces/argo/configmaps/x".to_string(),
        "/api/v1/namespaces/argo/secrets".to_string(),
        "/api/v1/namespaces/argo/secrets/x".to_string(),
    ];
    if let Some(swagger) = Swagger::load() {
        let filled = swagger.0["paths"]
            .as_object()
            .expect("swagger paths")
            .keys()
            .map(|path| {
                let mut filled = String::new();
                let mut rest = path.as_str();
                while let Some(start) = rest.find('{') {
                    filled.push_str(&rest[..start]);
                    filled.push('x');
                    rest = rest[start..].split_once('}').map_or("", |(_, r)| r);
                }
                filled.push_str(rest);
                filled
            });
        paths.extend(filled);
    } else {
        paths.extend(
            [
                "/api/v1/info",
                "/api/v1/version",
                "/api/v1/workflows/x",
                "/api/v1/workflows/x/lint",
                "/api/v1/workflows/x/x",
                "/api/v1/workflows/x/x/x/log",
                "/api/v1/workflow-events/x",
            ]
            .map(String::from),
        );
    }
    paths
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn token_config() -> ServerConfig {
    ServerConfig {
        auth: Auth::from_token_text("tokens", &format!("ci {TOKEN}\n")).expect("tokens"),
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn with_tokens_no_route_answers_without_one() {
    let server =
        TestServer::start_with(token_config(), tempfile::tempdir().expect("tempdir")).await;
    let paths = every_path();
    assert!(
        paths.len() > 40,
        "the walk covers Argo's whole API: {paths:?}"
    );
    let mut answered_with_token = 0;
    for path in &paths {
        for method in METHODS {
            for (headers, what) in [
                (String::new(), "no token"),
                (
                    "Authorization: Bearer wrong\r\n".to_string(),
                    "a wrong token",
                ),
                (
                    format!("Authorization: Basic {TOKEN}\r\n"),
                    "another scheme",
                ),
            ] {
                let (status, error) =
                    call_with(server.addr, method, path, &headers, Some("{}")).await;
                assert_eq!(status, 401, "{method} {path} with {what}: {error}");
                assert_error(&error, 16);
            }
            let with_token = format!("Authorization: Bearer {TOKEN}\r\n");
            let (status, answer) = call_with(server.addr, method, path, &with_token, None).await;
            assert_ne!(status, 401, "{method} {path} with the token");
            if status != 405 && answer["message"] != "no such route" {
                answered_with_token += 1;
            }
        }
    }
    assert!(answered_with_token >= 8, "the walk reached real routes");
    let (status, user) = call_with(
        server.addr,
        "GET",
        "/api/v1/userinfo",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_shape("GetUserInfoResponse", &user);
    assert_eq!(user["subject"], "ci");
    server.stop().await;
}

#[tokio::test]
async fn without_tokens_userinfo_is_anonymous() {
    let server = TestServer::start().await;
    let (status, user) = server.call("GET", "/api/v1/userinfo", None).await;
    assert_eq!((status, &user), (200, &json!({})));
    assert_shape("GetUserInfoResponse", &user);
    server.stop().await;
}

const TWO_GIB: u64 = 2 << 30;

#[tokio::test]
async fn a_declared_2_gib_body_is_refused_on_every_route_before_it_is_read() {
    for config in [ServerConfig::default(), token_config()] {
        let with_token = config.auth.is_required();
        let server = TestServer::start_with(config, tempfile::tempdir().expect("tempdir")).await;
        for path in every_path() {
            for method in METHODS {
                let mut stream = TcpStream::connect(server.addr).await.expect("connect");
                let auth = if with_token {
                    format!("Authorization: Bearer {TOKEN}\r\n")
                } else {
                    String::new()
                };
                // Only the head is sent: the answer cannot wait for the body.
                let head = format!(
                    "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\
                     Content-Type: application/json\r\nContent-Length: {TWO_GIB}\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).await.expect("send head");
                let (status, error) = read_response(&mut stream).await;
                assert_eq!(status, 413, "{method} {path}: {error}");
                assert_error(&error, 8);
            }
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn a_streamed_2_gib_body_is_cut_at_the_limit_on_every_route() {
    let limit = 64 * 1024;
    let config = ServerConfig {
        max_body_bytes: limit,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, tempfile::tempdir().expect("tempdir")).await;
    for path in every_path() {
        for method in METHODS {
            let stream = TcpStream::connect(server.addr).await.expect("connect");
            let (mut reader, mut writer) = stream.into_split();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: localhost\r\n\
                 Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let sending = tokio::spawn(async move {
                writer.write_all(head.as_bytes()).await.expect("send head");
                let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
                let mut sent: u64 = 0;
                // Stops when the server stops reading (the connection closed) or at 2 GiB.
                while sent < TWO_GIB {
                    if writer.write_all(chunk.as_bytes()).await.is_err() {
                        break;
                    }
                    sent += 16 * 1024;
                }
                sent
            });
            let mut raw = Vec::new();
            let mut buffer = [0u8; 4096];
            let head = loop {
                let n = tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buffer))
                    .await
                    .expect("an answer within 10 s")
                    .expect("read");
                assert!(n > 0, "{method} {path}: closed without an answer");
                raw.extend_from_slice(&buffer[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break String::from_utf8_lossy(&raw[..end]).to_string();
                }
            };
            assert!(head.starts_with("HTTP/1.1 413"), "{method} {path}: {head}");
            drop(reader);
            // The server closes the connection: the sender stops long before 2 GiB.
            let sent = tokio::time::timeout(Duration::from_secs(30), sending)
                .await
                .unwrap_or_else(|_| panic!("{method} {path}: the server kept reading"))
                .expect("sender");
            assert!(sent < TWO_GIB, "{method} {path}: the whole body was taken");
            // At most the limit plus what the sockets' buffers held when it closed.
            assert!(sent < 64 << 20, "{method} {path}: {sent} bytes taken");
        }
    }
    server.stop().await;
}

/// A streamed answer's lines (its chunked body decoded), read as they come.
struct Lines {
    stream: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    ended: bool,
}

impl Lines {
    /// `GET path`; the status, and the body's lines to read.
    async fn open(addr: std::net::SocketAddr, path: &str, headers: &str) -> (u16, String, Lines) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut lines = Lines {
            stream,
            raw: Vec::new(),
            body: Vec::new(),
            ended: false,
        };
        let head = loop {
            if let Some(end) = lines.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&lines.raw[..end]).to_string();
                lines.raw.drain(..end + 4);
                break head;
            }
            assert!(lines.read().await, "closed before the head");
        };
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        if !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            // A plain (error) answer: its body is all of the rest.
            while lines.read().await {}
            lines.body = std::mem::take(&mut lines.raw);
            lines.ended = true;
        }
        (status, head, lines)
    }

    async fn read(&mut self) -> bool {
        let mut buffer = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buffer))
            .await
            .expect("more of the stream within 10 s")
            .expect("read");
        self.raw.extend_from_slice(&buffer[..n]);
        n > 0
    }

    /// Move whole chunks from `raw` to `body`.
    fn dechunk(&mut self) {
        while !self.ended {
            let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size = usize::from_str_radix(String::from_utf8_lossy(&self.raw[..end]).trim(), 16)
                .expect("chunk size");
            if size == 0 {
                self.ended = true;
                return;
            }
            if self.raw.len() < end + 2 + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[end + 2..end + 2 + size]);
            self.raw.drain(..end + 2 + size + 2);
        }
    }

    /// The next line, or None at the end of the stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            self.dechunk();
            if let Some(end) = self.body.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.body[..end]).to_string();
                self.body.drain(..=end);
                return Some(line);
            }
            if self.ended {
                return None;
            }
            if !self.read().await {
                self.dechunk();
                return None;
            }
        }
    }

    /// The next line as a stream message, checked against Argo's definition of its result.
    async fn next_result(&mut self, definition: &str) -> Option<Value> {
        let line = self.next().await?;
        let message: Value = serde_json::from_str(&line).expect("a JSON line");
        let result = message["result"].clone();
        assert!(result.is_object(), "not a result: {line}");
        assert_shape(definition, &result);
        Some(result)
    }

    /// Every remaining line's result.
    async fn rest(&mut self, definition: &str) -> Vec<Value> {
        let mut results = Vec::new();
        while let Some(result) = self.next_result(definition).await {
            results.push(result);
        }
        results
    }
}

fn contents(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["content"].as_str().expect("content").to_string())
        .collect()
}

const TWO_STEPS: &str = r#"{
  "apiVersion": "argoproj.io/v1alpha1",
  "kind": "Workflow",
  "metadata": {"name": "two-steps"},
  "spec": {
    "entrypoint": "main",
    "templates": [
      {"name": "main", "steps": [[{"name": "first", "template": "first"}], [{"name": "second", "template": "second"}]]},
      {"name": "first", "container": {"image": "alpine", "command": ["sh", "-c"], "args": ["echo alpha; echo beta; echo gamma"]}},
      {"name": "second", "container": {"image": "alpine", "command": ["sh", "-c"], "args": ["echo delta; echo epsilon >&2"]}}
    ]
  }
}"#;

#[tokio::test]
async fn logs_of_a_finished_run_with_argo_options() {
    let server = TestServer::start_with_processes(ServerConfig::default()).await;
    server.create("argo", TWO_STEPS).await;
    let finished = server.await_phase("argo", "two-steps", "Succeeded").await;
    let pod_of = |display: &str| {
        finished["status"]["nodes"]
            .as_object()
            .expect("nodes")
            .values()
            .find(|n| n["displayName"] == display)
            .and_then(|n| n["id"].as_str())
            .expect("node")
            .to_string()
    };
    let (first, second) = (pod_of("first"), pod_of("second"));

    let path = "/api/v1/workflows/argo/two-steps/log";
    let (status, head, mut lines) = Lines::open(server.addr, path, "").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/json"), "{head}");
    let entries = lines.rest("LogEntry").await;
    assert_eq!(
        contents(&entries),
        ["alpha", "beta", "gamma", "delta", "epsilon"]
    );
    assert_eq!(entries[0]["podName"], first.as_str());
    assert_eq!(entries[4]["podName"], second.as_str());

    for (query, want) in [
        ("?podName=first", vec!["alpha", "beta", "gamma"]),
        (&format!("?podName={second}"), vec!["delta", "epsilon"]),
        ("?grep=a%24", vec!["alpha", "beta", "gamma", "delta"]),
        ("?grep=^e", vec!["epsilon"]),
        ("?logOptions.tailLines=1", vec!["gamma", "epsilon"]),
        // Per step: "alpha\n" fits in 8 bytes, "beta" is cut to the 2 left.
        (
            "?logOptions.limitBytes=8",
            vec!["alpha", "be", "delta", "ep"],
        ),
        (
            "?podName=first&logOptions.follow=true&logOptions.limitBytes=8",
            vec!["alpha", "be"],
        ),
        (
            "?logOptions.container=main",
            vec!["alpha", "beta", "gamma", "delta", "epsilon"],
        ),
        ("?logOptions.container=wait", vec![]),
        ("?logOptions.sinceTime.seconds=4000000000", vec![]),
        (
            "?logOptions.sinceTime.seconds=0",
            vec!["alpha", "beta", "gamma", "delta", "epsilon"],
        ),
        (
            "?logOptions.sinceSeconds=3600",
            vec!["alpha", "beta", "gamma", "delta", "epsilon"],
        ),
        (
            "?logOptions.follow=true",
            vec!["alpha", "beta", "gamma", "delta", "epsilon"],
        ),
        (
            "?logOptions.follow=True&logOptions.timestamps=F",
            vec!["alpha", "beta", "gamma", "delta", "epsilon"],
        ),
    ] {
        let (status, _, mut lines) = Lines::open(server.addr, &format!("{path}{query}"), "").await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(contents(&lines.rest("LogEntry").await), want, "{query}");
    }
    let pod_path = format!("/api/v1/workflows/argo/two-steps/{second}/log");
    let (_, _, mut lines) = Lines::open(server.addr, &pod_path, "").await;
    assert_eq!(
        contents(&lines.rest("LogEntry").await),
        ["delta", "epsilon"]
    );
    let (_, _, mut lines) = Lines::open(
        server.addr,
        &format!("{path}?logOptions.timestamps=true"),
        "",
    )
    .await;
    let stamped = contents(&lines.rest("LogEntry").await);
    assert!(
        stamped[0].ends_with(" alpha") && stamped[0].contains('T'),
        "{stamped:?}"
    );

    // Server-sent events, as Argo's UI asks for them.
    let (status, head, mut events) = Lines::open(
        server.addr,
        &format!("{path}?podName=first"),
        "Accept: text/event-stream\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.contains("text/event-stream"), "{head}");
    let first_event = events.next().await.expect("an event");
    let data: Value = serde_json::from_str(first_event.strip_prefix("data: ").expect("data: line"))
        .expect("JSON");
    assert_eq!(data["result"]["content"], "alpha");

    for (query, message) in [
        ("?grep=(", "grep: "),
        ("?logOptions.tailLines=x", "logOptions.tailLines"),
        ("?logOptions.limitBytes=-5", "logOptions.limitBytes"),
        ("?logOptions.follow=maybe", "logOptions.follow"),
    ] {
        let (status, error) = server.call("GET", &format!("{path}{query}"), None).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_error(&error, 3);
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "{error}"
        );
    }
    let (status, error) = server
        .call("GET", "/api/v1/workflows/argo/nope/log", None)
        .await;
    assert_eq!(status, 404);
    assert_error(&error, 5);
    let (status, _) = server
        .call("GET", "/api/v1/workflows/other/two-steps/log", None)
        .await;
    assert_eq!(status, 404);

    // Logs outlive the server that ran the steps.
    let home = server.stop().await;
    let steps = std::sync::Arc::new(ProcessExecutor {
        dir: home.path().join("steps"),
    });
    let server = TestServer::start_on(ServerConfig::default(), home, Some(steps)).await;
    let (status, _, mut lines) = Lines::open(server.addr, path, "").await;
    assert_eq!(status, 200);
    assert_eq!(contents(&lines.rest("LogEntry").await).len(), 5);
    server.stop().await;
}

#[tokio::test]
async fn follow_streams_lines_as_they_are_written_until_the_run_ends() {
    let server = TestServer::start_with_processes(ServerConfig::default()).await;
    let gate = tempfile::tempdir().expect("tempdir");
    let release = gate.path().join("release");
    let workflow = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "slow"},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {
                "image": "alpine",
                "command": ["sh", "-c"],
                "args": [format!(
                    "echo before; while [ ! -e {} ]; do sleep 0.05; done; echo after",
                    release.display()
                )]
            }}]
        }
    });
    server.create("argo", &workflow.to_string()).await;
    let (status, _, mut lines) = Lines::open(
        server.addr,
        "/api/v1/workflows/argo/slow/log?logOptions.follow=true",
        "",
    )
    .await;
    assert_eq!(status, 200);
    // "before" arrives while the step still runs: it waits for the release file.
    let before = lines.next_result("LogEntry").await.expect("first line");
    assert_eq!(before["content"], "before");
    let (_, running) = server
        .call("GET", "/api/v1/workflows/argo/slow", None)
        .await;
    assert_eq!(running["status"]["phase"], "Running");
    std::fs::write(&release, "").expect("release the step");
    let after = lines.next_result("LogEntry").await.expect("second line");
    assert_eq!(after["content"], "after");
    // The stream ends with the run.
    assert_eq!(lines.next().await, None);
    server.await_phase("argo", "slow", "Succeeded").await;
    server.stop().await;
}

/// Events until one satisfies `done` (each checked against Argo's `WorkflowWatchEvent`).
async fn events_until(lines: &mut Lines, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = lines
            .next_result("WorkflowWatchEvent")
            .await
            .expect("the watch stream goes on");
        let found = done(&event);
        events.push(event);
        if found {
            return events;
        }
    }
}

fn is(kind: &str, name: &str, phase: Option<&str>) -> impl Fn(&Value) -> bool {
    move |event: &Value| {
        event["type"] == kind
            && event["object"]["metadata"]["name"] == name
            && phase.is_none_or(|phase| event["object"]["status"]["phase"] == phase)
    }
}

#[tokio::test]
async fn watch_sends_stored_runs_then_each_change_until_deleted() {
    let server = TestServer::start().await;
    server.create("argo", &named("earlier")).await;
    server.await_phase("argo", "earlier", "Succeeded").await;
    server.create("other", &named("elsewhere")).await;

    let (status, head, mut all) =
        Lines::open(server.addr, "/api/v1/workflow-events/argo", "").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/json"), "{head}");
    let (_, _, mut one) = Lines::open(
        server.addr,
        "/api/v1/workflow-events/argo?listOptions.fieldSelector=metadata.name%3Dlive",
        "",
    )
    .await;
    // A stored run opens the stream, as a Kubernetes watch's initial ADDED events.
    let first = all.next_result("WorkflowWatchEvent").await.expect("event");
    assert!(is("ADDED", "earlier", Some("Succeeded"))(&first), "{first}");
    assert_shape("Workflow", &first["object"]);

    // A run that finishes at once is followed to its end.
    server.create("argo", &named("quick")).await;
    let quick = events_until(&mut all, is("MODIFIED", "quick", Some("Succeeded"))).await;
    assert!(is("ADDED", "quick", None)(&quick[0]), "{:#?}", quick[0]);

    server
        .executor
        .script(Match::Template("main".into()), Scripted::hang());
    server.create("argo", &named("live")).await;
    for lines in [&mut all, &mut one] {
        // The run may be running already when it is first sent.
        let events = events_until(lines, |e| {
            e["object"]["metadata"]["name"] == "live" && e["object"]["status"]["phase"] == "Running"
        })
        .await;
        assert!(is("ADDED", "live", None)(&events[0]), "{:#?}", events[0]);
        for event in &events {
            assert_shape("Workflow", &event["object"]);
            assert_eq!(event["object"]["metadata"]["namespace"], "argo");
        }
    }
    let (status, _) = server
        .call("DELETE", "/api/v1/workflows/argo/live", None)
        .await;
    assert_eq!(status, 200);
    let deleted = events_until(&mut all, is("DELETED", "live", None)).await;
    let deleted = deleted.last().expect("event");
    assert_eq!(deleted["object"]["metadata"]["namespace"], "argo");
    assert!(
        deleted["object"]["metadata"]["uid"].is_string(),
        "{deleted}"
    );
    events_until(&mut one, is("DELETED", "live", None)).await;

    // The name filter let nothing else through; no event named another namespace's run.
    let (status, error) = server
        .call(
            "GET",
            "/api/v1/workflow-events/argo?listOptions.fieldSelector=status.phase%3DRunning",
            None,
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_error(&error, 3);
    drop(all);
    drop(one);
    server.stop().await;
}

#[tokio::test]
async fn watch_filters_by_name_and_labels() {
    let server = TestServer::start().await;
    for name in ["a", "b"] {
        server.create("argo", &named(name)).await;
        server.await_phase("argo", name, "Succeeded").await;
    }
    let (_, _, mut by_name) = Lines::open(
        server.addr,
        "/api/v1/workflow-events/argo?listOptions.fieldSelector=metadata.name%3Db",
        "",
    )
    .await;
    let event = by_name
        .next_result("WorkflowWatchEvent")
        .await
        .expect("event");
    assert!(is("ADDED", "b", Some("Succeeded"))(&event), "{event}");
    let (_, _, mut by_label) = Lines::open(
        server.addr,
        "/api/v1/workflow-events/argo?listOptions.labelSelector=team%3Dnobody",
        "",
    )
    .await;
    // Nothing matches the label: the next event is the new labelled run's.
    let labelled = named("c").replace(r#""team": "data""#, r#""team": "nobody""#);
    server.create("argo", &labelled).await;
    let event = by_label
        .next_result("WorkflowWatchEvent")
        .await
        .expect("event");
    assert!(is("ADDED", "c", None)(&event), "{event}");
    // And the name watch saw nothing of it: its next event is b's deletion.
    let (status, _) = server
        .call("DELETE", "/api/v1/workflows/argo/b", None)
        .await;
    assert_eq!(status, 200);
    let event = by_name
        .next_result("WorkflowWatchEvent")
        .await
        .expect("event");
    assert!(is("DELETED", "b", None)(&event), "{event}");
    server.stop().await;
}

/// `GET path` as text: the status and the body.
async fn get_text(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let (status, head, mut lines) = Lines::open(addr, path, "").await;
    let mut text = String::new();
    while let Some(line) = lines.next().await {
        text.push_str(&line);
        text.push('\n');
    }
    (status, head, text)
}

/// The value of the sample `name{labels}` (labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn metrics_use_argo_names_and_labels() {
    let server = TestServer::start().await;
    server.create("argo", &named("done")).await;
    server.await_phase("argo", "done", "Succeeded").await;
    server
        .executor
        .script(Match::Template("main".into()), Scripted::hang());
    server.create("argo", &named("busy")).await;
    server.await_phase("argo", "busy", "Running").await;

    let (status, head, text) = get_text(server.addr, "/metrics").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/plain"), "{head}");
    // Every line is a comment or a sample in Prometheus' text format.
    let sample_line = regex::Regex::new(
        r#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? [-+0-9.eEInfa]+$"#,
    )
    .expect("regex");
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(sample_line.is_match(line), "not a sample: {line}");
    }
    for (series, want) in [
        (r#"argo_workflows_gauge{phase="Succeeded"}"#, 1.0),
        (r#"argo_workflows_gauge{phase="Running"}"#, 1.0),
        (r#"argo_workflows_gauge{phase="Failed"}"#, 0.0),
        (r#"argo_workflows_count{status="Running"}"#, 1.0),
        (r#"argo_workflows_pods_gauge{phase="Running"}"#, 1.0),
        (r#"argo_workflows_pods_gauge{phase="Pending"}"#, 0.0),
        (
            r#"argo_workflows_queue_depth_gauge{queue_name="workflow_queue"}"#,
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(want), "{series}\n{text}");
    }
    assert!(text.contains("# TYPE argo_workflows_gauge gauge"), "{text}");
    assert!(
        text.contains("# TYPE argo_workflows_operation_duration_seconds histogram"),
        "{text}"
    );
    let operations = sample(&text, "argo_workflows_operation_duration_seconds_count")
        .expect("operations counted");
    assert!(operations >= 2.0, "{text}");
    for phase in ["Running", "Succeeded"] {
        let series = format!(r#"argo_workflows_total_count{{phase="{phase}",namespace="argo"}}"#);
        assert!(
            sample(&text, &series).is_some_and(|n| n >= 1.0),
            "{series}\n{text}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_full_write_queue_refuses_with_503_and_loses_nothing() {
    let config = ServerConfig {
        max_concurrent_writes: 1,
        max_queued_writes: 4,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, tempfile::tempdir().expect("tempdir")).await;
    // Five creates whose bodies are held back: one holds the only permit, four wait.
    let mut held = Vec::new();
    for i in 0..5 {
        let body = create_body(&named(&format!("held-{i}")));
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let head = request_head("POST", "/api/v1/workflows/argo", "", body.len());
        stream.write_all(head.as_bytes()).await.expect("send head");
        held.push((stream, body));
    }
    let queue = r#"argo_workflows_queue_depth_gauge{queue_name="workflow_queue"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, text) = get_text(server.addr, "/metrics").await;
        if sample(&text, queue) == Some(4.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never 4 waiting:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The sixth is refused at once, asked to retry, and stores nothing.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let body = create_body(&named("refused"));
    let head = request_head("POST", "/api/v1/workflows/argo", "", body.len());
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body.as_bytes()).await.expect("send body");
    let (status, head, error) = read_response_head(&mut stream).await;
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert_error(&error, 14);
    // Reads are not queued.
    let (status, _) = server.call("GET", "/api/v1/workflows/argo", None).await;
    assert_eq!(status, 200);
    // The held ones are each answered once their bodies arrive, and stored.
    for (stream, body) in &mut held {
        stream.write_all(body.as_bytes()).await.expect("send body");
    }
    for (stream, _) in &mut held {
        let (status, created) = read_response(stream).await;
        assert_eq!(status, 200, "{created}");
    }
    let (_, list) = server.call("GET", "/api/v1/workflows/argo", None).await;
    assert_eq!(
        sorted_names(&list),
        ["held-0", "held-1", "held-2", "held-3", "held-4"]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_thousand_concurrent_creates_are_each_stored_or_refused() {
    let server = TestServer::start().await;
    let addr = server.addr;
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..1000 {
        creates.spawn(async move {
            let name = format!("many-{i}");
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let body = create_body(&named(&name));
            let head = request_head("POST", "/api/v1/workflows/argo", "", body.len());
            stream.write_all(head.as_bytes()).await.expect("send head");
            stream.write_all(body.as_bytes()).await.expect("send body");
            let (status, head, answer) = read_response_head(&mut stream).await;
            (name, status, head, answer)
        });
    }
    let mut acknowledged = std::collections::BTreeSet::new();
    while let Some(result) = creates.join_next().await {
        let (name, status, head, answer) = result.expect("client task");
        match status {
            200 => {
                assert_eq!(answer["metadata"]["name"], name.as_str());
                acknowledged.insert(name);
            }
            503 | 429 => {
                assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
            }
            other => panic!("{name}: {other} {answer}"),
        }
    }
    let stored: std::collections::BTreeSet<String> = server
        .engine
        .list()
        .expect("list")
        .into_iter()
        .map(|summary| summary.name)
        .collect();
    // Every acknowledged create is stored, and nothing refused was.
    assert_eq!(stored, acknowledged);
    server.stop().await;
}

/// The names of a WorkflowList's items, sorted.
fn sorted_names(list: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|w| w["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    names
}

/// `PUT /api/v1/workflows/conf/{name}/{verb}`: a 200 whose body is a `Workflow`.
async fn put(server: &TestServer, name: &str, verb: &str, body: &str) -> Value {
    let path = format!("/api/v1/workflows/conf/{name}/{verb}");
    let (status, answer) = server.call("PUT", &path, Some(body)).await;
    assert_eq!(status, 200, "{verb} {name}: {answer}");
    assert_shape("Workflow", &answer);
    answer
}

/// The issue's conformance flow, over real HTTP in one go: submit, list, get, watch,
/// suspend, resume, stop, terminate and delete, each answer checked against the
/// definition swagger.json gives for its route (Workflow, WorkflowList,
/// WorkflowWatchEvent, WorkflowDeleteResponse; errors as grpc-gateway's Error).
#[tokio::test]
async fn conformance_submit_list_get_watch_suspend_resume_stop_terminate_delete() {
    let server = TestServer::start().await;
    server
        .executor
        .script(Match::Template("work".into()), Scripted::hang());
    let workflow = |name: &str| {
        format!(
            r#"{{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
      "metadata": {{"name": "{name}", "labels": {{"suite": "conformance"}}}},
      "spec": {{"entrypoint": "main", "onExit": "cleanup", "templates": [
        {{"name": "main", "steps": [[{{"name": "long", "template": "work"}}]]}},
        {{"name": "work", "container": {{"image": "alpine", "command": ["sleep", "3600"]}}}},
        {{"name": "cleanup", "container": {{"image": "alpine", "command": ["echo", "cleanup"]}}}}]}}}}"#
        )
    };
    // Watch: the stream is open before anything is submitted.
    let (status, head, mut watch) =
        Lines::open(server.addr, "/api/v1/workflow-events/conf", "").await;
    assert_eq!(status, 200, "{head}");

    // Submit.
    for name in ["stopped", "terminated"] {
        let created = server.create("conf", &workflow(name)).await;
        assert_shape("Workflow", &created);
        assert_eq!(created["metadata"]["name"], name);
        assert_eq!(created["metadata"]["namespace"], "conf");
        server.await_phase("conf", name, "Running").await;
    }
    let watched = events_until(&mut watch, is("ADDED", "terminated", None)).await;
    assert!(
        watched.iter().any(is("ADDED", "stopped", None)),
        "{watched:#?}"
    );

    // List (with a label selector) and get.
    let (status, list) = server
        .call(
            "GET",
            "/api/v1/workflows/conf?listOptions.labelSelector=suite%3Dconformance",
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    assert_shape("WorkflowList", &list);
    assert_eq!(sorted_names(&list), ["stopped", "terminated"]);
    let (status, got) = server
        .call("GET", "/api/v1/workflows/conf/stopped", None)
        .await;
    assert_eq!(status, 200, "{got}");
    assert_shape("Workflow", &got);
    assert_eq!(got["status"]["phase"], "Running");

    // Suspend, then resume.
    let suspended = put(&server, "stopped", "suspend", "{}").await;
    assert_eq!(suspended["spec"]["suspend"], true);
    let watched = events_until(&mut watch, |e| {
        e["type"] == "MODIFIED"
            && e["object"]["metadata"]["name"] == "stopped"
            && e["object"]["spec"]["suspend"] == true
    })
    .await;
    assert!(!watched.is_empty());
    let resumed = put(&server, "stopped", "resume", "{}").await;
    assert!(resumed["spec"].get("suspend").is_none(), "{resumed}");

    // Stop: the exit handler runs. Terminate: it does not.
    let stopped = put(&server, "stopped", "stop", r#"{"message": "conformance"}"#).await;
    assert_eq!(stopped["spec"]["shutdown"], "Stop");
    let terminated = put(&server, "terminated", "terminate", "{}").await;
    assert_eq!(terminated["spec"]["shutdown"], "Terminate");
    for (name, strategy, exit_handler_ran) in [
        ("stopped", "Stop", true),
        ("terminated", "Terminate", false),
    ] {
        let finished = server.await_phase("conf", name, "Failed").await;
        assert_shape("Workflow", &finished);
        assert_eq!(
            finished["status"]["message"],
            format!("Stopped with strategy '{strategy}'")
        );
        let exit_node = finished["status"]["nodes"]
            .as_object()
            .expect("nodes")
            .values()
            .any(|n| n["name"] == format!("{name}.onExit"));
        assert_eq!(exit_node, exit_handler_ran, "{name}: {finished:#}");
        events_until(&mut watch, is("MODIFIED", name, Some("Failed"))).await;
    }
    let (status, refused) = server
        .call("PUT", "/api/v1/workflows/conf/stopped/suspend", Some("{}"))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_error(&refused, 9);

    // Delete: answered with Argo's empty WorkflowDeleteResponse, seen by the watch.
    for name in ["stopped", "terminated"] {
        let (status, deleted) = server
            .call("DELETE", &format!("/api/v1/workflows/conf/{name}"), None)
            .await;
        assert_eq!(status, 200, "{deleted}");
        if let Some(swagger) = Swagger::load() {
            let problems = swagger.problems(
                "io.argoproj.workflow.v1alpha1.WorkflowDeleteResponse",
                &deleted,
            );
            assert!(problems.is_empty(), "{problems:?}");
        }
        assert_eq!(deleted, json!({}));
        events_until(&mut watch, is("DELETED", name, None)).await;
        let (status, gone) = server
            .call("GET", &format!("/api/v1/workflows/conf/{name}"), None)
            .await;
        assert_eq!(status, 404, "{gone}");
        assert_error(&gone, 5);
    }
    let (status, list) = server.call("GET", "/api/v1/workflows/conf", None).await;
    assert_eq!(status, 200, "{list}");
    assert_shape("WorkflowList", &list);
    assert!(list["items"].as_array().is_none_or(Vec::is_empty), "{list}");
    drop(watch);
    server.stop().await;
}
