//! Typed data model of Argo Workflows manifests (`argoproj.io/v1alpha1`).
//!
//! Shapes and JSON names follow Argo's JSON Schema (v4): `Workflow`, `WorkflowTemplate`,
//! `ClusterWorkflowTemplate`, `CronWorkflow` and `WorkflowEventBinding`. Every struct rejects
//! unknown fields; free-form Kubernetes objects are kept as [`serde_json::Value`].

pub mod common;
pub mod io;
pub mod k8s;
pub mod template;
pub mod workflow;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

pub use common::*;
pub use io::*;
pub use k8s::{
    Container, EnvFromSource, EnvSourceRef, EnvVar, ResourceClaim, ResourceRequirements,
    UserContainer, VolumeMount,
};
pub use template::*;
pub use workflow::*;

/// The Argo API version of all kinds in this model.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Kubernetes `ObjectMeta`: name, namespace, labels, annotations and server-set fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prefix for a generated name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Server-assigned unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Server-assigned version for optimistic concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Generation of the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Deletion time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    /// Grace period before deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// Finalizers.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub finalizers: Vec<String>,
    /// Owner references (Kubernetes `OwnerReference`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub owner_references: Vec<Value>,
    /// Managed fields (Kubernetes `ManagedFieldsEntry`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub managed_fields: Vec<Value>,
    /// Deprecated self link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<String>,
}

impl ObjectMeta {
    /// The name, or the generateName prefix when no name is set.
    pub fn name_or_generate_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.generate_name.as_deref())
    }
}

/// Argo `Workflow`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workflow {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `Workflow`.
    pub kind: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// Workflow spec.
    pub spec: WorkflowSpec,
    /// Status written by a controller (kept verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// Argo `WorkflowTemplate`: a namespaced, reusable workflow spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowTemplate {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `WorkflowTemplate`.
    pub kind: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// Template spec (a workflow spec).
    pub spec: WorkflowSpec,
    /// Status (kept verbatim; Argo has none for this kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// Argo `ClusterWorkflowTemplate`: a cluster-scoped, reusable workflow spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterWorkflowTemplate {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `ClusterWorkflowTemplate`.
    pub kind: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// Template spec (a workflow spec).
    pub spec: WorkflowSpec,
    /// Status (kept verbatim; Argo has none for this kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// Argo `CronWorkflow`: a workflow run on a schedule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronWorkflow {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `CronWorkflow`.
    pub kind: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// Cron spec.
    pub spec: CronWorkflowSpec,
    /// Status written by a controller (kept verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// Argo `WorkflowEventBinding`: submits a workflow template when an event arrives.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowEventBinding {
    /// `argoproj.io/v1alpha1`.
    pub api_version: String,
    /// `WorkflowEventBinding`.
    pub kind: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// Binding spec.
    pub spec: WorkflowEventBindingSpec,
    /// Status (kept verbatim; Argo has none for this kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// Any of the four workflow-bearing kinds; the caller dispatches on `kind` when reading.
///
/// Serialises as the inner object (no wrapper).
// Variants are kept unboxed for pattern-matching convenience; all are large and similar in size.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// A `Workflow`.
    Workflow(Workflow),
    /// A `WorkflowTemplate`.
    WorkflowTemplate(WorkflowTemplate),
    /// A `ClusterWorkflowTemplate`.
    ClusterWorkflowTemplate(ClusterWorkflowTemplate),
    /// A `CronWorkflow`.
    CronWorkflow(CronWorkflow),
}

impl Manifest {
    /// The kinds a `Manifest` can hold.
    pub const KINDS: [&'static str; 4] = [
        "Workflow",
        "WorkflowTemplate",
        "ClusterWorkflowTemplate",
        "CronWorkflow",
    ];

    /// The Argo kind name (`Workflow`, `WorkflowTemplate`, ...), from the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Workflow(_) => "Workflow",
            Manifest::WorkflowTemplate(_) => "WorkflowTemplate",
            Manifest::ClusterWorkflowTemplate(_) => "ClusterWorkflowTemplate",
            Manifest::CronWorkflow(_) => "CronWorkflow",
        }
    }

    /// The object metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Manifest::Workflow(x) => &x.metadata,
            Manifest::WorkflowTemplate(x) => &x.metadata,
            Manifest::ClusterWorkflowTemplate(x) => &x.metadata,
            Manifest::CronWorkflow(x) => &x.metadata,
        }
    }

    /// The workflow spec (for a CronWorkflow, its `workflowSpec`).
    pub fn workflow_spec(&self) -> &WorkflowSpec {
        match self {
            Manifest::Workflow(x) => &x.spec,
            Manifest::WorkflowTemplate(x) => &x.spec,
            Manifest::ClusterWorkflowTemplate(x) => &x.spec,
            Manifest::CronWorkflow(x) => &x.spec.workflow_spec,
        }
    }
}

impl Serialize for Manifest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Manifest::Workflow(x) => x.serialize(s),
            Manifest::WorkflowTemplate(x) => x.serialize(s),
            Manifest::ClusterWorkflowTemplate(x) => x.serialize(s),
            Manifest::CronWorkflow(x) => x.serialize(s),
        }
    }
}

impl From<Workflow> for Manifest {
    fn from(v: Workflow) -> Self {
        Manifest::Workflow(v)
    }
}

impl From<WorkflowTemplate> for Manifest {
    fn from(v: WorkflowTemplate) -> Self {
        Manifest::WorkflowTemplate(v)
    }
}

impl From<ClusterWorkflowTemplate> for Manifest {
    fn from(v: ClusterWorkflowTemplate) -> Self {
        Manifest::ClusterWorkflowTemplate(v)
    }
}

impl From<CronWorkflow> for Manifest {
    fn from(v: CronWorkflow) -> Self {
        Manifest::CronWorkflow(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wf(spec: Value) -> Workflow {
        serde_json::from_value(json!({
            "apiVersion": API_VERSION,
            "kind": "Workflow",
            "metadata": {"generateName": "t-"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn container_rejects_unknown_field() {
        let r: Result<Container, _> =
            serde_json::from_value(json!({"image": "busybox", "someExtraField": 1}));
        assert!(r.unwrap_err().to_string().contains("someExtraField"));
    }

    #[test]
    fn any_string_accepts_scalars_and_serialises_strings() {
        let p: Parameter = serde_json::from_value(
            json!({"name": "n", "value": 3, "default": true, "enum": [1.5, "x", false]}),
        )
        .unwrap();
        assert_eq!(p.value_str(), Some("3"));
        assert_eq!(p.default_str(), Some("true"));
        assert_eq!(p.enum_strs(), ["1.5", "x", "false"]);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"name": "n", "value": "3", "default": "true", "enum": ["1.5", "x", "false"]})
        );
        assert!(serde_json::from_value::<Parameter>(json!({"name": "n", "value": [1]})).is_err());
    }

    #[test]
    fn int_or_string_keeps_its_form() {
        let r: RetryStrategy =
            serde_json::from_value(json!({"limit": 3, "backoff": {"factor": "2"}})).unwrap();
        assert_eq!(r.limit, Some(IntOrString::Int(3)));
        assert_eq!(
            r.backoff
                .as_ref()
                .unwrap()
                .factor
                .as_ref()
                .unwrap()
                .as_i64(),
            Some(2)
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"limit": 3, "backoff": {"factor": "2"}})
        );
    }

    #[test]
    fn null_lists_read_as_empty() {
        let a: Arguments = serde_json::from_value(json!({"parameters": null})).unwrap();
        assert!(a.parameters.is_empty());
    }

    #[test]
    fn template_kinds_and_dependencies() {
        let w = wf(json!({
            "entrypoint": "main",
            "templates": [
                {"name": "main", "dag": {"tasks": [
                    {"name": "a", "template": "c"},
                    {"name": "b", "template": "c", "depends": "a.Succeeded || (a.Failed && !x)"},
                    {"name": "d", "template": "c", "dependencies": ["a", "b"]},
                ]}},
                {"name": "c", "container": {"image": "busybox"}, "suspend": {}},
                {"name": "s", "steps": [[{"name": "one", "template": "c"}]]},
            ],
        }));
        let m = Manifest::from(w);
        assert_eq!(m.kind(), "Workflow");
        assert_eq!(m.metadata().name_or_generate_name(), Some("t-"));
        let spec = m.workflow_spec();
        let main = spec.entrypoint_template().unwrap();
        assert_eq!(main.kind(), Some(TemplateKind::Dag));
        let tasks = &main.dag.as_ref().unwrap().tasks;
        assert_eq!(tasks[1].dependencies_list(), ["a", "x"]);
        assert_eq!(tasks[2].dependencies_list(), ["a", "b"]);
        let c = spec.template("c").unwrap();
        assert_eq!(c.kind(), None);
        assert_eq!(c.template_types(), ["container", "suspend"]);
        assert_eq!(spec.template("s").unwrap().template_types(), ["steps"]);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["kind"], "Workflow");
        assert_eq!(v["spec"]["templates"][2]["steps"][0][0]["name"], "one");
    }

    #[test]
    fn cron_workflow_spec_and_legacy_schedule() {
        let c: CronWorkflow = serde_json::from_value(json!({
            "apiVersion": API_VERSION, "kind": "CronWorkflow", "metadata": {"name": "c"},
            "spec": {"schedule": "0 * * * *", "schedules": ["*/5 * * * *"],
                     "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 0,
                     "workflowSpec": {"entrypoint": "main"}},
        }))
        .unwrap();
        assert_eq!(c.spec.all_schedules(), ["0 * * * *", "*/5 * * * *"]);
        let m = Manifest::CronWorkflow(c);
        assert_eq!(m.workflow_spec().entrypoint.as_deref(), Some("main"));
    }
}
