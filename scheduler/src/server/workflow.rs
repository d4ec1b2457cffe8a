//! Workflow objects on the wire: reading one from a request (linted, located), rendering a
//! run as Argo's `Workflow` (metadata filled, status from the run), and label selectors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};

use cox_config::lint::lint_loaded;
use cox_config::location::Location;
use cox_config::model::{Manifest, Workflow};
use cox_config::validate::Registry;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use crate::machine::RunState;

/// The namespace of runs submitted without one (`cox run`).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The label Argo sets to `true` once a workflow has finished.
pub const COMPLETED_LABEL: &str = "workflows.argoproj.io/completed";

/// The label Argo keeps equal to the workflow's phase (what `argo list --status` selects).
pub const PHASE_LABEL: &str = "workflows.argoproj.io/phase";

/// Source name given to the linter; never shown (messages carry no file name).
const SOURCE: &str = "workflow";

/// The request's `workflow` field, typed and linted against `stored` templates (the
/// server's, so a reference to a template it does not have is an error). Errors carry each
/// problem's field path and its `line:column` in the request body.
pub fn parse_workflow(
    body: &str,
    raw: Option<&RawValue>,
    stored: &[Manifest],
) -> ApiResult<Workflow> {
    match parse_manifest(body, raw, "workflow", stored)? {
        Manifest::Workflow(w) => Ok(w),
        _ => Err(ApiError::invalid("workflow.kind: must be Workflow")),
    }
}

/// A request's object field (`workflow`, `template`), typed and linted as
/// [`parse_workflow`] does.
pub fn parse_manifest(
    body: &str,
    raw: Option<&RawValue>,
    field: &str,
    stored: &[Manifest],
) -> ApiResult<Manifest> {
    let raw = raw.ok_or_else(|| ApiError::invalid(format!("{field}: required")))?;
    let text = raw.get();
    // The raw value borrows from the body, so its offset places it in the request.
    let offset = (text.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let start = position(body, offset.min(body.len()));
    let loaded = cox_config::load::load(SOURCE, text);
    let mut registry = Registry::default();
    registry.complete = true;
    for manifest in stored {
        registry.add(manifest);
    }
    for document in &loaded.documents {
        registry.add(&document.manifest);
    }
    let report = lint_loaded(std::slice::from_ref(&loaded), &registry);
    let mut message = String::new();
    for d in report.diagnostics.iter().filter(|d| d.is_error()) {
        if !message.is_empty() {
            message.push_str("; ");
        }
        let at = shift(d.location, start);
        if at.is_known() {
            let _ = write!(message, "{at}: ");
        }
        if !d.path.0.is_empty() {
            let _ = write!(message, "{}: ", d.path);
        }
        message.push_str(&d.message);
        if let Some(hint) = &d.hint {
            let _ = write!(message, " ({hint})");
        }
    }
    if !message.is_empty() {
        return Err(ApiError::invalid(message));
    }
    drop(registry);
    loaded
        .documents
        .into_iter()
        .next()
        .map(|d| d.manifest)
        .ok_or_else(|| ApiError::invalid(format!("{field}: not an Argo object")))
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Location {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    }
}

/// A location in the workflow's text moved to where that text starts in the body.
fn shift(location: Location, start: Location) -> Location {
    if !location.is_known() {
        return location;
    }
    if location.line == 1 {
        Location {
            line: start.line,
            column: location.column + start.column - 1,
        }
    } else {
        Location {
            line: location.line + start.line - 1,
            column: location.column,
        }
    }
}

/// A new object uid, shaped like Kubernetes' (a version 4 UUID).
pub fn new_uid() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let state = std::collections::hash_map::RandomState::new();
    let mut bits = [0u64; 2];
    for (i, word) in bits.iter_mut().enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_u128(nanos);
        hasher.write_usize(i);
        *word = hasher.finish();
    }
    uuid_text(bits)
}

/// A stable uid for a run stored without one (submitted by `cox run`).
fn derived_uid(name: &str, created: &str) -> String {
    // FNV-1a: stable across processes, unlike the standard hasher's random keys.
    let fnv = |seed: u64| {
        let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
        for byte in name.bytes().chain([0]).chain(created.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    };
    uuid_text([fnv(1), fnv(2)])
}

fn uuid_text([high, low]: [u64; 2]) -> String {
    let high = (high & !0xf000) | 0x4000;
    let low = (low & !(0xc << 60)) | (0x8 << 60);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// A stored run's namespace (`default` when it was submitted without one).
pub fn namespace_of(state: &RunState) -> String {
    metadata_of(state)
        .and_then(|m| {
            m.get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

fn metadata_of(state: &RunState) -> Option<Map<String, Value>> {
    let value: Value = serde_json::from_str(&state.workflow_json).ok()?;
    match value {
        Value::Object(mut object) => match object.remove("metadata") {
            Some(Value::Object(metadata)) => Some(metadata),
            _ => None,
        },
        _ => None,
    }
}

/// The run as Argo's `Workflow`: the submitted object, `status` from the run, and the
/// server-set metadata (`namespace`, `name`, `uid`, `creationTimestamp`).
pub fn workflow_object(state: &RunState) -> Value {
    let mut workflow = state.workflow_json();
    if !workflow.is_object() {
        workflow = json!({});
    }
    let namespace = namespace_of(state);
    let Value::Object(object) = &mut workflow else {
        return workflow;
    };
    object
        .entry("apiVersion")
        .or_insert_with(|| json!(cox_config::load::API_VERSION));
    object.entry("kind").or_insert_with(|| json!("Workflow"));
    object.entry("spec").or_insert_with(|| json!({}));
    let metadata = object.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    if let Value::Object(metadata) = metadata {
        metadata.insert("name".into(), json!(state.name));
        metadata.insert("namespace".into(), json!(namespace));
        let created = metadata
            .get("creationTimestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !metadata.get("uid").is_some_and(Value::is_string) {
            metadata.insert("uid".into(), json!(derived_uid(&state.name, &created)));
        }
        // Argo's controller keeps this label; `argo list --completed/--running` select on it.
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if let Value::Object(labels) = labels {
            labels.insert(
                COMPLETED_LABEL.into(),
                json!(if state.is_finished() { "true" } else { "false" }),
            );
            labels.insert(PHASE_LABEL.into(), json!(state.phase().as_str()));
        }
    }
    workflow
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key`: the label is set.
    Exists(String),
    /// `!key`: the label is not set.
    Absent(String),
    /// `key in (a, b)`: the label is one of the values.
    In(String, Vec<String>),
    /// `key notin (a, b)`: the label is none of them (also true when it is absent).
    NotIn(String, Vec<String>),
}

/// The selector's requirements: split at the commas outside parentheses.
fn requirement_texts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// `key in (a, b)` or `key notin (a, b)`; None if `part` is not set-based.
fn set_requirement(part: &str) -> Option<Result<Requirement, String>> {
    let (head, values) = part.split_once('(')?;
    let Some(values) = values.trim_end().strip_suffix(')') else {
        return Some(Err(format!("'{part}': missing ')'")));
    };
    let values: Vec<String> = values
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let mut words = head.split_whitespace();
    let requirement = match (words.next(), words.next(), words.next()) {
        (Some(key), Some("in"), None) => Requirement::In(key.into(), values),
        (Some(key), Some("notin"), None) => Requirement::NotIn(key.into(), values),
        _ => {
            return Some(Err(format!(
                "'{part}': expected 'key in (...)' or 'key notin (...)'"
            )));
        }
    };
    Some(Ok(requirement))
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parse Kubernetes' selector syntax: `a=b,c!=d,e,!f`, and set-based `g in (x, y)`,
    /// `h notin (z)` (as `argo list --status` sends for the phase label).
    pub fn parse(text: &str) -> ApiResult<LabelSelector> {
        let invalid =
            |why: &str| ApiError::invalid(format!("listOptions.labelSelector: '{text}': {why}"));
        let mut requirements = Vec::new();
        for part in requirement_texts(text) {
            let requirement = if let Some(set) = set_requirement(part) {
                set.map_err(|why| invalid(&why))?
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once("==") {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once('=') {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some(key) = part.strip_prefix('!') {
                Requirement::Absent(key.trim().into())
            } else {
                Requirement::Exists(part.into())
            };
            let key = match &requirement {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::Exists(k)
                | Requirement::Absent(k)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _) => k,
            };
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(invalid(&format!(
                    "'{part}': expected key, key=value or key!=value"
                )));
            }
            requirements.push(requirement);
        }
        Ok(LabelSelector(requirements))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches_object(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        self.matches(&labels)
    }

    /// Whether labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
            Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_equality_and_existence() {
        let selector = LabelSelector::parse("team=data, env!=prod,owner,!paused").unwrap();
        assert!(selector.matches(&labels(&[("team", "data"), ("owner", "x")])));
        assert!(!selector.matches(&labels(&[("team", "data")])));
        assert!(!selector.matches(&labels(&[
            ("team", "data"),
            ("owner", "x"),
            ("env", "prod")
        ])));
        assert!(!selector.matches(&labels(&[
            ("team", "data"),
            ("owner", "x"),
            ("paused", "1")
        ])));
        assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn set_based_selectors_as_argo_list_status_sends() {
        let selector = LabelSelector::parse(
            "workflows.argoproj.io/phase in (Running, Pending),team notin (ops)",
        )
        .unwrap();
        let phase = |p| labels(&[("workflows.argoproj.io/phase", p)]);
        assert!(selector.matches(&phase("Running")));
        assert!(selector.matches(&phase("Pending")));
        assert!(!selector.matches(&phase("Failed")));
        assert!(!selector.matches(&labels(&[])), "in needs the label");
        assert!(!selector.matches(&labels(&[
            ("workflows.argoproj.io/phase", "Running"),
            ("team", "ops")
        ])));
        for bad in ["env in (a,b", "env within (a)", "in (a)"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let body = "{\n  \"workflow\": {\"a\": 1}}";
        let at = body.find("{\"a\"").unwrap();
        assert_eq!(
            position(body, at),
            Location {
                line: 2,
                column: 15
            }
        );
        let start = Location {
            line: 2,
            column: 15,
        };
        assert_eq!(
            shift(Location { line: 1, column: 2 }, start),
            Location {
                line: 2,
                column: 16
            }
        );
        assert_eq!(
            shift(Location { line: 3, column: 4 }, start),
            Location { line: 4, column: 4 }
        );
    }

    #[test]
    fn uids_look_like_uuids_and_derived_ones_are_stable() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(new_uid(), uid);
        assert_eq!(derived_uid("a", "t"), derived_uid("a", "t"));
        assert_ne!(derived_uid("a", "t"), derived_uid("b", "t"));
    }
}
