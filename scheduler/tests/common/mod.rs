//! What the server tests share: a server over real HTTP on 127.0.0.1 (an ephemeral port)
//! with a fake executor, raw HTTP/1.1 calls, and Argo's swagger definitions to check answers
//! against (when `/work/shared/argo/api/swagger.json`, or `$ARGO_SWAGGER`, is present).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cox_scheduler::server::{self, ServerConfig};
use cox_scheduler::testsuite::FakeExecutor;
use cox_scheduler::{Engine, EngineConfig};
use cox_worker::step::{BoxFuture, Executor, StepOutcome, StepPhase, StepSpec};
use cox_worker::{LocalProcess, ProcessSpec};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const HELLO: &str = r#"{
  "apiVersion": "argoproj.io/v1alpha1",
  "kind": "Workflow",
  "metadata": {"generateName": "hello-", "labels": {"team": "data"}},
  "spec": {
    "entrypoint": "main",
    "templates": [{"name": "main", "container": {"image": "alpine", "command": ["echo", "hi"]}}]
  }
}"#;

pub fn named(name: &str) -> String {
    HELLO.replace(
        r#""generateName": "hello-""#,
        &format!(r#""name": "{name}""#),
    )
}

pub fn create_body(workflow: &str) -> String {
    format!("{{\n\"workflow\": {workflow}\n}}")
}

/// A server on an ephemeral port over an engine on a temporary home.
pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub executor: Arc<FakeExecutor>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
    home: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(
            ServerConfig::default(),
            tempfile::tempdir().expect("tempdir"),
        )
        .await
    }

    pub async fn start_with(config: ServerConfig, home: tempfile::TempDir) -> TestServer {
        TestServer::start_on(config, home, None).await
    }

    /// A server whose steps run as real host processes ([`ProcessExecutor`]).
    pub async fn start_with_processes(config: ServerConfig) -> TestServer {
        let home = tempfile::tempdir().expect("tempdir");
        let processes = Arc::new(ProcessExecutor {
            dir: home.path().join("steps"),
        });
        TestServer::start_on(config, home, Some(processes)).await
    }

    /// A server with `steps` running the steps, or the fake executor.
    pub async fn start_on(
        config: ServerConfig,
        home: tempfile::TempDir,
        steps: Option<Arc<dyn Executor>>,
    ) -> TestServer {
        let executor = FakeExecutor::new();
        let steps = steps.unwrap_or_else(|| Arc::clone(&executor) as Arc<dyn Executor>);
        let mut engine_config = EngineConfig::new(home.path(), steps);
        // sled may hold a previous engine's lock for a moment.
        engine_config.lock_wait = Duration::from_secs(5);
        let engine = Arc::new(Engine::open(engine_config).expect("open engine"));
        executor.attach_store(engine.store().clone());
        server::resume(&engine).await.expect("resume");
        let listener = server::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(server::serve(
            listener,
            Arc::clone(&engine),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            engine,
            executor,
            stop: Some(stop),
            served: Some(served),
            home,
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        call(self.addr, method, path, body).await
    }

    /// Create `workflow` (JSON) in `namespace`; the created `Workflow`.
    pub async fn create(&self, namespace: &str, workflow: &str) -> Value {
        let (status, created) = self
            .call(
                "POST",
                &format!("/api/v1/workflows/{namespace}"),
                Some(&create_body(workflow)),
            )
            .await;
        assert_eq!(status, 200, "{created}");
        created
    }

    /// Poll the run until its phase is `phase` (10 s at most).
    pub async fn await_phase(&self, namespace: &str, name: &str, phase: &str) -> Value {
        self.await_until(namespace, name, phase, |w| w["status"]["phase"] == phase)
            .await
    }

    /// Poll the run until `done` holds (10 s at most); `what` names it in the failure.
    pub async fn await_until(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, workflow) = self
                .call(
                    "GET",
                    &format!("/api/v1/workflows/{namespace}/{name}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{workflow}");
            if done(&workflow) {
                return workflow;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never reached {what}: {workflow}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shut down as on SIGTERM; the home, to start again on it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(10), served)
                .await
                .expect("server stops within 10 s")
                .expect("server task")
                .expect("serve");
        }
        self.executor.detach_store();
        drop(self.engine);
        self.home
    }
}

/// One request on its own connection; the status and the JSON body (Null when empty).
pub async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    call_with(addr, method, path, "", body).await
}

/// [`call`] with more header lines (each ending in `\r\n`).
pub async fn call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    stream
        .write_all(request_head(method, path, headers, body.len()).as_bytes())
        .await
        .expect("send head");
    stream.write_all(body.as_bytes()).await.expect("send body");
    read_response(&mut stream).await
}

/// A request's head, for a body of `length` bytes sent after it.
pub fn request_head(method: &str, path: &str, headers: &str, length: usize) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\n{headers}Content-Length: {length}\r\n\r\n"
    )
}

/// Runs each step's `command` and `args` (or `script` through `sh -c`) as a real host
/// process without the sandbox, through the worker's own launcher, so its log is a real
/// log file. (The full executor runs steps through the `cox` binary, which the library's
/// tests do not have.)
pub struct ProcessExecutor {
    pub dir: PathBuf,
}

impl ProcessExecutor {
    fn step_dir(&self, run: &str, node_id: &str, attempt: u32) -> PathBuf {
        self.dir.join(run).join(format!("{node_id}-{attempt}"))
    }
}

impl Executor for ProcessExecutor {
    fn run(
        &self,
        spec: StepSpec,
        cancel: tokio_util::sync::CancellationToken,
    ) -> BoxFuture<'_, StepOutcome> {
        Box::pin(async move {
            let mut argv = spec.command.clone();
            match &spec.script {
                Some(script) => argv.extend(["-c".to_string(), script.clone()]),
                None => argv.extend(spec.args.iter().cloned()),
            }
            let step_dir = self.step_dir(&spec.run, &spec.node_id, spec.attempt);
            let process = ProcessSpec::new(argv, step_dir).sandbox(false);
            let running = match LocalProcess::spawn(process).await {
                Ok(running) => running,
                Err(e) => return StepOutcome::error(format!("cannot start: {e}")),
            };
            let canceller = running.canceller();
            let stop = async move {
                cancel.cancelled().await;
                let _ = canceller.cancel(Duration::from_secs(1)).await;
                std::future::pending::<()>().await
            };
            let exit = tokio::select! {
                exit = running.wait() => exit,
                () = stop => unreachable!("never completes"),
            };
            match exit {
                Ok(exit) if exit.status.success() => StepOutcome {
                    phase: StepPhase::Succeeded,
                    exit_code: Some(0),
                    message: String::new(),
                    result: Some(exit.result),
                    ..StepOutcome::error("")
                },
                Ok(exit) => StepOutcome {
                    phase: StepPhase::Failed,
                    exit_code: Some(exit.status.container_code()),
                    message: format!("Error (exit code {})", exit.status.container_code()),
                    ..StepOutcome::error("")
                },
                Err(e) => StepOutcome::error(format!("step failed: {e}")),
            }
        })
    }

    fn log_path(&self, run: &str, node_id: &str, attempt: u32) -> Option<PathBuf> {
        Some(self.step_dir(run, node_id, attempt).join("log.jsonl"))
    }
}

/// Read one response (headers, then `Content-Length` bytes of body); a JSON body parsed,
/// any other as a string.
pub async fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let (status, _, body) = read_response_head(stream).await;
    (status, body)
}

/// [`read_response`], with the head's text too.
pub async fn read_response_head(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    let read = async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    let status = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .expect("status code");
                    let body = &raw[end + 4..end + 4 + length];
                    let json = head
                        .to_ascii_lowercase()
                        .contains("content-type: application/json");
                    let value = if body.is_empty() {
                        Value::Null
                    } else if !json {
                        // Not JSON (`/metrics`): the text.
                        Value::String(String::from_utf8_lossy(body).into_owned())
                    } else {
                        serde_json::from_slice(body).unwrap_or_else(|e| {
                            panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(body))
                        })
                    };
                    return (status, head, value);
                }
            }
            let n = stream.read(&mut buffer).await.expect("read");
            assert!(
                n > 0,
                "connection closed mid-response: {:?}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

/// Argo's swagger definitions, to check answers against (None: not available here).
pub struct Swagger(pub Value);

impl Swagger {
    pub fn load() -> Option<Swagger> {
        let path = std::env::var_os("ARGO_SWAGGER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/work/shared/argo/api/swagger.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("{}: not found; schema checks skipped", path.display());
            return None;
        };
        Some(Swagger(
            serde_json::from_str(&text).expect("swagger.json is JSON"),
        ))
    }

    /// Problems of `value` as an instance of `definition`: missing required fields and wrong types.
    pub fn problems(&self, definition: &str, value: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let schema = json!({ "$ref": format!("#/definitions/{definition}") });
        self.check(&schema, value, "$", &mut problems, 0);
        problems
    }

    fn check(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        problems: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 64 {
            return;
        }
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/definitions/");
            let Some(target) = self.0["definitions"].get(name) else {
                problems.push(format!("{at}: unknown definition {name}"));
                return;
            };
            return self.check(target, value, at, problems, depth + 1);
        }
        let format = schema["format"].as_str().unwrap_or_default();
        let type_ok = match schema["type"].as_str() {
            None => true,
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") if format == "int-or-string" => value.is_string() || value.is_i64(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some(other) => {
                problems.push(format!("{at}: schema type {other} not checked"));
                true
            }
        };
        if !type_ok {
            problems.push(format!("{at}: expected {}, got {value}", schema["type"]));
            return;
        }
        if let Some(object) = value.as_object() {
            for required in schema["required"].as_array().into_iter().flatten() {
                let key = required.as_str().unwrap_or_default();
                if !object.contains_key(key) {
                    problems.push(format!("{at}: required field {key} missing"));
                }
            }
            for (key, field) in object {
                if let Some(property) = schema["properties"].get(key) {
                    self.check(property, field, &format!("{at}.{key}"), problems, depth + 1);
                } else if schema["additionalProperties"].is_object() {
                    let additional = &schema["additionalProperties"];
                    self.check(
                        additional,
                        field,
                        &format!("{at}.{key}"),
                        problems,
                        depth + 1,
                    );
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                self.check(items, item, &format!("{at}[{i}]"), problems, depth + 1);
            }
        }
    }
}

/// Assert `value` is a valid `definition` (when the swagger is available).
pub fn assert_shape(definition: &str, value: &Value) {
    let Some(swagger) = Swagger::load() else {
        return;
    };
    let problems = swagger.problems(
        &format!("io.argoproj.workflow.v1alpha1.{definition}"),
        value,
    );
    assert!(
        problems.is_empty(),
        "not a {definition}: {problems:#?}\n{value:#}"
    );
}

pub fn assert_error(value: &Value, code: i64) {
    if let Some(swagger) = Swagger::load() {
        let problems = swagger.problems("grpc.gateway.runtime.Error", value);
        assert!(
            problems.is_empty(),
            "not an Error: {problems:#?}\n{value:#}"
        );
    }
    assert_eq!(value["code"], code, "{value}");
    assert!(
        value["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{value}"
    );
    assert_eq!(value["details"], json!([]), "{value}");
}
