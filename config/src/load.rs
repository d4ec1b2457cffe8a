//! Reading a source (a file's text, a request body) into typed Argo manifests.
//!
//! Every document is first read into the located tree, then typed by its `kind`. Documents of
//! kinds Coxswain does not run (a ConfigMap next to a workflow, say) are kept aside, not refused.

use crate::de::{self, did_you_mean};
use crate::diag::Diagnostic;
use crate::location::{FieldPath, Location};
use crate::model::{ClusterWorkflowTemplate, CronWorkflow, Manifest, Workflow, WorkflowTemplate};
use crate::node::{self, Limits, Node};

/// The API group and version every Argo kind is declared with.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// The Argo kinds Coxswain reads.
pub const KINDS: [&str; 4] = [
    "Workflow",
    "WorkflowTemplate",
    "ClusterWorkflowTemplate",
    "CronWorkflow",
];

/// One typed document with the tree it came from (for locating later diagnostics).
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based position of the document in its source.
    pub index: usize,
    /// The located tree, kept to point validation errors at lines and columns.
    pub node: Node,
    /// The typed manifest.
    pub manifest: Manifest,
}

impl Document {
    /// Where a field path points in the source (the key when the path ends with a field).
    pub fn location(&self, path: &FieldPath) -> Location {
        self.node.key_location(path)
    }
}

/// A document of a kind Coxswain does not run, kept aside (for example a ConfigMap).
#[derive(Debug, Clone)]
pub struct Other {
    /// 0-based position of the document in its source.
    pub index: usize,
    /// `apiVersion`, when given.
    pub api_version: Option<String>,
    /// `kind`, when given.
    pub kind: String,
    /// The whole document as JSON.
    pub value: serde_json::Value,
}

/// Everything read from one source.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The source's name, used in diagnostics.
    pub source: String,
    /// The Argo documents that typed cleanly.
    pub documents: Vec<Document>,
    /// Documents of other kinds.
    pub others: Vec<Other>,
    /// Problems found while reading and typing.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Read every document of a source with the default limits.
pub fn load(source: &str, text: &str) -> Loaded {
    load_with_limits(source, text, &Limits::default())
}

/// Read every document of a source with explicit limits.
pub fn load_with_limits(source: &str, text: &str, limits: &Limits) -> Loaded {
    let mut loaded = Loaded {
        source: source.to_string(),
        ..Loaded::default()
    };
    let nodes = match node::parse_documents(text, limits) {
        Ok(nodes) => nodes,
        Err(e) => {
            loaded.diagnostics.push(Diagnostic::error(
                source,
                e.location,
                FieldPath::root(),
                e.message,
            ));
            return loaded;
        }
    };
    for (index, node) in nodes.into_iter().enumerate() {
        match type_document(source, index, node) {
            Ok(Typed::Argo(doc)) => loaded.documents.push(*doc),
            Ok(Typed::Other(other)) => {
                if other.kind.is_empty() {
                    let mut note = Diagnostic::error(
                        source,
                        Location::UNKNOWN,
                        FieldPath::root(),
                        "not a Kubernetes manifest (no apiVersion or kind); skipped",
                    );
                    note.severity = crate::diag::Severity::Warning;
                    loaded.diagnostics.push(note);
                }
                loaded.others.push(other)
            }
            Err(diagnostics) => loaded.diagnostics.extend(diagnostics),
        }
    }
    loaded
}

enum Typed {
    Argo(Box<Document>),
    Other(Other),
}

fn type_document(source: &str, index: usize, node: Node) -> Result<Typed, Vec<Diagnostic>> {
    let root = FieldPath::root();
    let error = |location: Location, path: FieldPath, message: String| {
        vec![Diagnostic::error(source, location, path, message)]
    };
    if !matches!(node.value, node::Value::Map(_)) {
        return Err(error(
            node.location,
            root,
            format!(
                "expected a mapping with apiVersion and kind, found {}",
                node.value.describe()
            ),
        ));
    }
    let api_version = node
        .get("apiVersion")
        .and_then(Node::as_str)
        .map(str::to_string);
    if api_version.is_none() && node.get("kind").is_none() {
        // Some other JSON or YAML file (a dashboard, a values file): not a manifest at all.
        return Ok(Typed::Other(Other {
            index,
            api_version,
            kind: String::new(),
            value: node.to_json(),
        }));
    }
    let Some(kind_node) = node.get("kind") else {
        return Err(error(
            node.location,
            root,
            "missing required field 'kind'".to_string(),
        ));
    };
    let Some(kind) = kind_node.as_str().map(str::to_string) else {
        return Err(error(
            kind_node.location,
            root.field("kind"),
            format!("expected a string, found {}", kind_node.value.describe()),
        ));
    };
    let is_argo_api = api_version
        .as_deref()
        .is_some_and(|v| v.starts_with("argoproj.io/"));
    if !KINDS.contains(&kind.as_str()) {
        if is_argo_api && let Some(near) = did_you_mean(&kind, KINDS) {
            return Err(error(
                kind_node.location,
                root.field("kind"),
                format!("unknown kind '{kind}'"),
            )
            .map_hint(format!("did you mean '{near}'?")));
        }
        return Ok(Typed::Other(Other {
            index,
            api_version,
            kind,
            value: node.to_json(),
        }));
    }
    match api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => {
            let at = node.key_location(&root.field("apiVersion"));
            return Err(error(
                at,
                root.field("apiVersion"),
                format!(
                    "apiVersion '{other}' is not supported for kind {kind}; use '{API_VERSION}'"
                ),
            ));
        }
        None => {
            return Err(error(
                node.location,
                root,
                "missing required field 'apiVersion'".to_string(),
            ));
        }
    }
    let typed = match kind.as_str() {
        "Workflow" => de::from_node_all::<Workflow>(&node, &root).map(Manifest::Workflow),
        "WorkflowTemplate" => {
            de::from_node_all::<WorkflowTemplate>(&node, &root).map(Manifest::WorkflowTemplate)
        }
        "ClusterWorkflowTemplate" => de::from_node_all::<ClusterWorkflowTemplate>(&node, &root)
            .map(Manifest::ClusterWorkflowTemplate),
        _ => de::from_node_all::<CronWorkflow>(&node, &root).map(Manifest::CronWorkflow),
    };
    match typed {
        Ok(manifest) => Ok(Typed::Argo(Box::new(Document {
            index,
            node,
            manifest,
        }))),
        Err(errors) => Err(errors
            .into_iter()
            .map(|e| {
                let mut d =
                    Diagnostic::error(source, e.location, e.path, e.message).with_hint(e.hint);
                d.object = Some(object_label(&kind, &node));
                d
            })
            .collect()),
    }
}

trait MapHint {
    fn map_hint(self, hint: String) -> Self;
}

impl MapHint for Vec<Diagnostic> {
    fn map_hint(mut self, hint: String) -> Self {
        for d in &mut self {
            d.hint = Some(hint.clone());
        }
        self
    }
}

/// `Workflow hello-world-` style label from a raw tree (name, else generateName).
pub fn object_label(kind: &str, node: &Node) -> String {
    let meta = node.get("metadata");
    let name = meta
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Node::as_str)
        .unwrap_or("");
    if name.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  generateName: hello-\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    container:\n      image: busybox\n      command: [echo, hi]\n";

    #[test]
    fn loads_a_workflow() {
        let loaded = load("hello.yaml", HELLO);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.documents.len(), 1);
        assert_eq!(loaded.documents[0].manifest.kind(), "Workflow");
    }

    #[test]
    fn other_kinds_are_kept_aside() {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata: {{a: b}}\n---\n{HELLO}"
        );
        let loaded = load("mixed.yaml", &text);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.others.len(), 1);
        assert_eq!(loaded.others[0].kind, "ConfigMap");
        assert_eq!(loaded.documents[0].index, 1);
    }

    #[test]
    fn unknown_container_field_is_located() {
        let text = HELLO.replace(
            "      command: [echo, hi]\n",
            "      command: [echo, hi]\n      someExtraField: foo\n",
        );
        let loaded = load("x.yaml", &text);
        let d = &loaded.diagnostics[0];
        assert_eq!(
            d.to_string(),
            "x.yaml:12:7: spec.templates[0].container.someExtraField: unknown field 'someExtraField'"
        );
    }

    #[test]
    fn misspelt_kind_and_wrong_api_version() {
        let loaded = load("k.yaml", &HELLO.replace("kind: Workflow", "kind: Workflw"));
        assert_eq!(
            loaded.diagnostics[0].hint.as_deref(),
            Some("did you mean 'Workflow'?")
        );
        let loaded = load("v.yaml", &HELLO.replace("v1alpha1", "v1"));
        assert_eq!(
            loaded.diagnostics[0].message,
            "apiVersion 'argoproj.io/v1' is not supported for kind Workflow; use 'argoproj.io/v1alpha1'"
        );
        assert_eq!(
            loaded.diagnostics[0].location,
            Location { line: 1, column: 1 }
        );
    }

    #[test]
    fn entrypoint_as_list_is_a_type_error() {
        let loaded = load(
            "m.yaml",
            &HELLO.replace("entrypoint: main", "entrypoint: [main]"),
        );
        let d = &loaded.diagnostics[0];
        assert_eq!(
            d.to_string(),
            "m.yaml:6:15: spec.entrypoint: expected a string, found a list"
        );
    }
}
