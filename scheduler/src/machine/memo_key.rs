//! The automatic memoization key, a Coxswain extension: a template whose `metadata` (or whose
//! workflow's `metadata`) has the annotation `coxswain.io/memoize-key: auto` is cached under
//! a digest of what decides its outcome instead of its hand-written `memoize.key` alone:
//! - the hand-written key, substituted (so a key the user varies on purpose still counts);
//! - the resolved template (after substitution: command, args, image, env, script, ...)
//!   and the outputs it declares;
//! - its input parameters' values;
//! - each input artifact's content digest: the SHA-256 recorded when it was saved; an
//!   artifact known only by its key or URL counts by that key or URL.
//!
//! The key is `auto:` and the hex SHA-256 of a canonical JSON of those; it is what
//! `memoizationStatus.key` shows and `cox cache` lists.

use cox_config::model::Template;
use cox_worker::step::{ArtifactSource, InputArtifact};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The annotation that asks for the automatic key.
pub const ANNOTATION: &str = "coxswain.io/memoize-key";
/// Its one value.
pub const AUTO: &str = "auto";

/// Whether `template` (or, failing an annotation of its own, its workflow's `metadata`
/// annotations) asks for the automatic key.
pub fn wanted(
    template: &Template,
    workflow_annotations: &std::collections::BTreeMap<String, String>,
) -> bool {
    template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.get(ANNOTATION))
        .or_else(|| workflow_annotations.get(ANNOTATION))
        .is_some_and(|v| v == AUTO)
}

/// The automatic key of a step of `template` running as `resolved` (substituted) with the
/// input `parameters` (name, value) and `input_artifacts`; `key` is the substituted
/// `memoize.key`.
pub fn key(
    key: &str,
    template: &Template,
    resolved: &Template,
    parameters: &[(String, String)],
    input_artifacts: &[InputArtifact],
) -> String {
    let mut resolved = serde_json::to_value(resolved).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut resolved {
        // Annotations and the memoize block itself do not change what the step computes.
        map.remove("memoize");
        map.remove("metadata");
        // The outputs it declares do (a cached outcome must have them): as written, since
        // they are resolved only once the step ends.
        if let Some(outputs) = &template.outputs {
            map.insert(
                "outputs".into(),
                serde_json::to_value(outputs).unwrap_or(Value::Null),
            );
        }
    }
    let template = resolved;
    let artifacts: Vec<Value> = input_artifacts
        .iter()
        .map(|a| {
            let content = match &a.source {
                ArtifactSource::Stored {
                    sha256: Some(digest),
                    ..
                } => json!({"sha256": digest}),
                ArtifactSource::Stored { key, size, .. } => json!({"key": key, "size": size}),
                ArtifactSource::Raw(text) => json!({"raw": text}),
                ArtifactSource::Key(key) => json!({"key": key}),
                ArtifactSource::Http(url) => json!({"url": url}),
                ArtifactSource::Absent => json!("absent"),
            };
            json!([a.name, a.path, a.sub_path, content])
        })
        .collect();
    // Struct fields serialize in a fixed order and maps keep their written order, so the
    // same template gives the same text (keys written in another order only miss).
    let canonical = json!({
        "key": key,
        "template": template,
        "parameters": parameters,
        "artifacts": artifacts,
    })
    .to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    format!("auto:{}", cox_artifacts::to_hex(&digest))
}
