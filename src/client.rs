//! The HTTP client of `cox` against a server (`--server URL` or `COX_SERVER`): Argo Server's
//! REST paths and JSON, so it talks to `cox server` and to Argo Server alike. A bearer token
//! is sent when `COX_TOKEN` (or `ARGO_TOKEN`) is set. Errors carry the server's message.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server to talk to, and the namespace commands use.
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// The namespace of workflows, WorkflowTemplates and ConfigMaps.
    pub namespace: String,
}

impl Client {
    /// A client for `server` (`http://host:port`, or `host:port`).
    pub fn new(server: &str, namespace: Option<&str>) -> Result<Client> {
        let base = if server.contains("://") {
            server.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", server.trim_end_matches('/'))
        };
        let token = ["COX_TOKEN", "ARGO_TOKEN"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|t| !t.is_empty()))
            .map(|t| t.trim_start_matches("Bearer ").to_string());
        Ok(Client {
            base,
            http: reqwest::Client::builder()
                .build()
                .context("cannot start the HTTP client")?,
            token,
            namespace: namespace
                .unwrap_or(cox_scheduler::resolve::DEFAULT_NAMESPACE)
                .to_string(),
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// One call; the HTTP status and the JSON answer (Null when empty).
    pub async fn call_status(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{}: cannot reach the server", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}: cannot read the answer"))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// One call; the JSON answer, or the server's error message.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, value) = self.call_status(method, path, body).await?;
        if !status.is_success() {
            return Err(server_error(status, &value));
        }
        Ok(value)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// Lines of a streamed answer (newline-delimited JSON), each parsed and given to `each`
    /// until it returns false or the stream ends.
    pub async fn stream(&self, path: &str, mut each: impl FnMut(Value) -> bool) -> Result<()> {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .with_context(|| format!("{}: cannot reach the server", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let value = response.json::<Value>().await.unwrap_or(Value::Null);
            return Err(server_error(status, &value));
        }
        let mut body = response.bytes_stream();
        let mut pending = Vec::new();
        while let Some(chunk) = body.next().await {
            pending.extend_from_slice(&chunk.context("stream broken")?);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                // Server-sent events put the JSON after `data:`; plain streams do not.
                let line = line.trim().trim_start_matches("data:").trim();
                if line.is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(line)
                    .with_context(|| format!("stream: not JSON: {line}"))?;
                if let Some(error) = value.get("error") {
                    bail!(
                        "server: {}",
                        error["message"].as_str().unwrap_or("stream error")
                    );
                }
                if !each(value) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The path of this namespace's workflows (and one of them).
    pub fn workflows(&self, name: Option<&str>) -> String {
        match name {
            Some(name) => format!("/api/v1/workflows/{}/{name}", self.namespace),
            None => format!("/api/v1/workflows/{}", self.namespace),
        }
    }

    /// Wait until the workflow has finished, calling `each` with every new version of it:
    /// through the watch stream, or by reading it again each second when the server has no
    /// stream. The finished Workflow.
    pub async fn follow(&self, name: &str, mut each: impl FnMut(&Value)) -> Result<Value> {
        let path = format!(
            "/api/v1/workflow-events/{}?listOptions.fieldSelector=metadata.name%3D{name}",
            self.namespace
        );
        // The current state first: the stream only reports changes.
        let current = self.get(&self.workflows(Some(name))).await?;
        each(&current);
        if is_finished(&current) {
            return Ok(current);
        }
        let mut last = None;
        let streamed = self
            .stream(&path, |event| {
                let object = event
                    .pointer("/result/object")
                    .cloned()
                    .unwrap_or(Value::Null);
                if object.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
                    return true;
                }
                each(&object);
                let done = is_finished(&object);
                last = Some(object);
                !done
            })
            .await;
        if let Some(last) = last.filter(is_finished) {
            return Ok(last);
        }
        if let Err(e) = streamed
            && !e.to_string().contains("(HTTP 404)")
        {
            return Err(e);
        }
        // No stream here (or it ended early): read the workflow until it has finished.
        loop {
            let workflow = self.get(&self.workflows(Some(name))).await?;
            each(&workflow);
            if is_finished(&workflow) {
                return Ok(workflow);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// `PUT .../{name}/{verb}` with `body`: the Workflow.
    pub async fn lifecycle(&self, name: &str, verb: &str, mut body: Value) -> Result<Value> {
        if let Value::Object(map) = &mut body {
            map.insert("name".into(), json!(name));
            map.insert("namespace".into(), json!(self.namespace));
        }
        let path = format!("{}/{verb}", self.workflows(Some(name)));
        self.call(Method::PUT, &path, Some(&body)).await
    }
}

/// Whether a Workflow object has finished.
pub fn is_finished(workflow: &Value) -> bool {
    matches!(
        workflow.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed" | "Error")
    )
}

fn server_error(status: StatusCode, value: &Value) -> anyhow::Error {
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    anyhow!("server: {message} (HTTP {})", status.as_u16())
}
