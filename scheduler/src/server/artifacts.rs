//! Argo Server's artifact downloads (`server/artifacts/artifact_server.go`): a node's saved
//! artifact, streamed as it is stored (the `.tgz` of an archived one), as an attachment under
//! a sandboxing Content-Security-Policy, so a served HTML file cannot run in the API's origin.
//!
//! - `GET /artifacts/{namespace}/{name}/{nodeId}/{artifactName}`: an output artifact.
//! - `GET /input-artifacts/{namespace}/{name}/{nodeId}/{artifactName}`: an input artifact;
//!   runs record no input artifacts (only their outputs are saved), so this answers 404.
//! - `GET /artifact-files/{namespace}/workflows/{name}/{nodeId}/{outputs|inputs}/{artifactName}`:
//!   the same object. `archived-workflows` answers 404: Coxswain keeps no workflow archive.
//!
//! The artifact is read from where the step saved it: the run's repository (its
//! `artifactRepositoryRef`, else the configured one) or its own bucket, under the same
//! policy as the steps ([`ArtifactSources`]). Its recorded size and SHA-256 are checked as
//! it streams; on a mismatch the body ends in an error before its last bytes, so the
//! connection is cut and the client sees a failed transfer, never a wrong file.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cox_artifacts::Expected;
use futures_util::StreamExt;
use tracing::warn;

use super::AppState;
use super::error::{ApiError, ApiResult, GrpcCode};
use super::workflow::namespace_of;

/// Argo's Content-Security-Policy for served artifacts: no script, no plugin, no framing
/// of other origins, even when the file is opened rather than saved.
const CONTENT_SECURITY_POLICY: &str = "sandbox; base-uri 'none'; default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'";

/// Which of a node's artifacts a route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Inputs,
    Outputs,
}

/// `GET /artifacts/{namespace}/{name}/{nodeId}/{artifactName}` (`INPUTS` false), and
/// `GET /input-artifacts/...` (`INPUTS` true).
pub async fn node_artifact<const INPUTS: bool>(
    State(state): State<AppState>,
    Path((namespace, name, node_id, artifact)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let direction = if INPUTS {
        Direction::Inputs
    } else {
        Direction::Outputs
    };
    serve(&state, &namespace, &name, &node_id, direction, &artifact).await
}

/// `GET /artifact-files/{namespace}/{workflows|archived-workflows}/{name}/{nodeId}/{outputs|inputs}/{artifactName}`.
pub async fn artifact_file(
    State(state): State<AppState>,
    Path((namespace, kind, name, node_id, direction, artifact)): Path<(
        String,
        String,
        String,
        String,
        String,
        String,
    )>,
) -> ApiResult<Response> {
    match kind.as_str() {
        "workflows" => {}
        "archived-workflows" => {
            return Err(not_found(format!(
                "archived workflow {name}: this server keeps no workflow archive"
            )));
        }
        other => {
            return Err(ApiError::invalid(format!(
                "artifact-files: '{other}' is neither workflows nor archived-workflows"
            )));
        }
    }
    let direction = match direction.as_str() {
        "outputs" => Direction::Outputs,
        "inputs" => Direction::Inputs,
        other => {
            return Err(ApiError::invalid(format!(
                "artifact-files: '{other}' is neither outputs nor inputs"
            )));
        }
    };
    serve(&state, &namespace, &name, &node_id, direction, &artifact).await
}

fn not_found(message: String) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: GrpcCode::NotFound,
        message,
    }
}

/// The store holding the artifact failed or could not be reached: 502, the message without
/// keys (neither the policy's nor object_store's messages carry them).
fn bad_gateway(message: String) -> ApiError {
    warn!(error = %message, "artifact not served");
    ApiError {
        status: StatusCode::BAD_GATEWAY,
        code: GrpcCode::Unavailable,
        message,
    }
}

async fn serve(
    state: &AppState,
    namespace: &str,
    name: &str,
    node_id: &str,
    direction: Direction,
    artifact_name: &str,
) -> ApiResult<Response> {
    let run = state
        .engine
        .get(name)?
        .filter(|run| namespace_of(run) == namespace)
        .ok_or_else(|| ApiError::workflow_not_found(name))?;
    let node = run
        .nodes
        .get(node_id)
        .ok_or_else(|| not_found(format!("workflow {name}: node {node_id} not found")))?;
    if direction == Direction::Inputs {
        return Err(not_found(format!(
            "workflow {name}: node {node_id}: input artifact {artifact_name} not found (runs record only their output artifacts)"
        )));
    }
    let artifact = node
        .outputs
        .artifacts
        .iter()
        .find(|a| a.name == artifact_name)
        .ok_or_else(|| {
            not_found(format!(
                "workflow {name}: node {node_id}: output artifact {artifact_name} not found"
            ))
        })?;
    let what = format!("workflow {name}: node {node_id}: artifact {artifact_name}");
    let sources = state.artifacts.as_deref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: GrpcCode::Unavailable,
        message: format!("{what}: this server has no artifact repository configured"),
    })?;
    let repository = sources
        .for_artifact(
            &run.workflow_json(),
            artifact.store.as_ref(),
            state.engine.store(),
        )
        .map_err(|e| bad_gateway(format!("{what}: {e}")))?
        .open()
        .map_err(|e| bad_gateway(format!("{what}: cannot open its repository: {e}")))?;
    let chunks = repository
        .stream_verified(
            &artifact.key,
            Expected::new(artifact.size, artifact.sha256.clone()),
        )
        .await
        .map_err(|e| match e {
            cox_artifacts::Error::NotFound { .. } if artifact.archive == "none" => not_found(format!(
                "{what}: no object at its key (a directory saved with archive: none is not served here; `cox cp` copies it)"
            )),
            cox_artifacts::Error::NotFound { .. } => {
                not_found(format!("{what}: no object at its key in its repository"))
            }
            other => bad_gateway(format!("{what}: {other}")),
        })?;
    let (run_name, node_id, artifact_name) = (
        name.to_string(),
        node_id.to_string(),
        artifact_name.to_string(),
    );
    let chunks = chunks.map(move |chunk| {
        chunk.inspect_err(|e| {
            warn!(run = %run_name, node = %node_id, artifact = %artifact_name, error = %e, "artifact transfer aborted");
        })
    });
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    let file_name = artifact.key.rsplit('/').next().unwrap_or(&artifact.key);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(artifact.size));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file_name)),
    );
    headers.insert(header::CONTENT_DISPOSITION, attachment(file_name));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// `attachment; filename="NAME"`, the name's quotes and backslashes escaped and its control
/// characters replaced, so the header cannot be split or ended early.
fn attachment(file_name: &str) -> HeaderValue {
    let mut value = String::from("attachment; filename=\"");
    for c in file_name.chars() {
        match c {
            '"' | '\\' => {
                value.push('\\');
                value.push(c);
            }
            c if c.is_control() => value.push('_'),
            c => value.push(c),
        }
    }
    value.push('"');
    HeaderValue::from_bytes(value.as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The media type of a file by its extension (Go's `mime.TypeByExtension` for the common
/// ones), else `application/octet-stream`.
fn content_type(file_name: &str) -> &'static str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "tgz" | "gz" => "application/gzip",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "txt" | "log" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "text/xml; charset=utf-8",
        "yaml" | "yml" => "application/yaml",
        "md" => "text/markdown; charset=utf-8",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_quoted_and_escaped() {
        assert_eq!(
            attachment("result.tgz").to_str().ok(),
            Some("attachment; filename=\"result.tgz\"")
        );
        assert_eq!(
            attachment("a\"b\\c\r\nX-Evil: 1").to_str().ok(),
            Some("attachment; filename=\"a\\\"b\\\\c__X-Evil: 1\"")
        );
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("out.tgz"), "application/gzip");
        assert_eq!(content_type("page.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type("no-extension"), "application/octet-stream");
        assert_eq!(content_type("data.bin"), "application/octet-stream");
    }
}
