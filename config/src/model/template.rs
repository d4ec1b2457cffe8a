//! Templates: the `Template` type with every template kind (container, script, DAG, steps,
//! suspend, resource, containerSet, HTTP, data, plugin), DAG tasks and workflow steps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{
    ExecutorConfig, IntOrString, LifecycleHook, Memoize, Metadata, Metrics, RetryStrategy,
    SecretKeySelector, Synchronization, TemplateRef,
};
use super::io::{Arguments, Artifact, ArtifactLocation, ArtifactPaths, Inputs, Outputs};
use super::k8s::{Container, ResourceRequirements, UserContainer, VolumeMount, container_struct};

/// Argo `Template`: a reusable unit of work; exactly one template type field should be set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Template {
    /// Template name (unique within the workflow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Inputs (parameters and artifacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Inputs>,
    /// Outputs (parameters and artifacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    /// Node selector for the pod.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub node_selector: BTreeMap<String, String>,
    /// Pod affinity (Kubernetes `Affinity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Value>,
    /// Pod labels and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Run as a daemon (kept running while its scope is active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<bool>,
    /// Steps template: sequential groups of parallel steps.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub steps: Vec<ParallelSteps>,
    /// Container template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Container set template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_set: Option<ContainerSetTemplate>,
    /// Script template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<ScriptTemplate>,
    /// Resource template (create/apply/delete a Kubernetes object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceTemplate>,
    /// DAG template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag: Option<DagTemplate>,
    /// Suspend template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<SuspendTemplate>,
    /// Data template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Data>,
    /// HTTP template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTemplate>,
    /// Executor plugin template (an object with exactly one key, the plugin name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Value>,
    /// Volumes (Kubernetes `Volume`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volumes: Vec<Value>,
    /// Init containers.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub init_containers: Vec<UserContainer>,
    /// Sidecar containers.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sidecars: Vec<UserContainer>,
    /// Where output artifacts are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_location: Option<ArtifactLocation>,
    /// Deadline in seconds for the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<IntOrString>,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    /// Maximum parallel children (steps/DAG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i64>,
    /// Stop scheduling new steps/tasks after a failure (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
    /// Tolerations (Kubernetes `Toleration`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Value>,
    /// Kubernetes scheduler name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// Priority class of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Service account of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Mount the service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Executor settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorConfig>,
    /// Host aliases (Kubernetes `HostAlias`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub host_aliases: Vec<Value>,
    /// Pod security context (Kubernetes `PodSecurityContext`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<Value>,
    /// Strategic merge patch applied to the pod spec (JSON or YAML string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec_patch: Option<String>,
    /// Metrics emitted by this template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Mutexes and semaphores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization: Option<Synchronization>,
    /// Memoization (output caching).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memoize: Option<Memoize>,
    /// Timeout of the node (duration string, suspend/leaf templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// How long the pod may stay Pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_timeout: Option<String>,
    /// Annotations on the node.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Pod-level resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_resources: Option<ResourceRequirements>,
    /// Pod resource claims (Kubernetes `PodResourceClaim`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_claims: Vec<Value>,
}

/// Argo `ParallelSteps`: one group of steps that run in parallel.
pub type ParallelSteps = Vec<WorkflowStep>;

/// The type of a template, by which template field is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// `container`
    Container,
    /// `containerSet`
    ContainerSet,
    /// `script`
    Script,
    /// `resource`
    Resource,
    /// `dag`
    Dag,
    /// `steps`
    Steps,
    /// `suspend`
    Suspend,
    /// `data`
    Data,
    /// `http`
    Http,
    /// `plugin`
    Plugin,
}

impl TemplateKind {
    /// The Argo field name of this template type.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Container => "container",
            TemplateKind::ContainerSet => "containerSet",
            TemplateKind::Script => "script",
            TemplateKind::Resource => "resource",
            TemplateKind::Dag => "dag",
            TemplateKind::Steps => "steps",
            TemplateKind::Suspend => "suspend",
            TemplateKind::Data => "data",
            TemplateKind::Http => "http",
            TemplateKind::Plugin => "plugin",
        }
    }
}

impl Template {
    /// All template types that are set, in Argo's order.
    pub fn kinds(&self) -> Vec<TemplateKind> {
        let set = [
            (TemplateKind::Container, self.container.is_some()),
            (TemplateKind::ContainerSet, self.container_set.is_some()),
            (TemplateKind::Steps, !self.steps.is_empty()),
            (TemplateKind::Dag, self.dag.is_some()),
            (TemplateKind::Script, self.script.is_some()),
            (TemplateKind::Resource, self.resource.is_some()),
            (TemplateKind::Data, self.data.is_some()),
            (TemplateKind::Http, self.http.is_some()),
            (TemplateKind::Plugin, self.plugin.is_some()),
            (TemplateKind::Suspend, self.suspend.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| k)
            .collect()
    }

    /// The template type, if exactly one is set.
    pub fn kind(&self) -> Option<TemplateKind> {
        match self.kinds().as_slice() {
            [k] => Some(*k),
            _ => None,
        }
    }

    /// Argo names of the template types that are set (e.g. `["container"]`).
    pub fn template_types(&self) -> Vec<&'static str> {
        self.kinds().into_iter().map(TemplateKind::as_str).collect()
    }

    /// Whether this template runs in a pod (container, containerSet, script).
    pub fn is_pod(&self) -> bool {
        matches!(
            self.kind(),
            Some(TemplateKind::Container | TemplateKind::ContainerSet | TemplateKind::Script)
        )
    }
}

/// Argo `WorkflowStep`: one step of a steps template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowStep {
    /// Step name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Template to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Inline template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<Box<Template>>,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Template in a WorkflowTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateRef>,
    /// Loop over these items.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub with_items: Vec<Value>,
    /// Loop over a JSON list given as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_param: Option<String>,
    /// Loop over a numeric sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_sequence: Option<Sequence>,
    /// Run only when this expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Continue the workflow when this step fails or errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on: Option<ContinueOn>,
    /// Exit handler template (deprecated, use hooks.exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    /// Lifecycle hooks by event name (`exit`) or hook name.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub hooks: BTreeMap<String, LifecycleHook>,
}

/// Argo `DAGTemplate`: a set of tasks with dependencies.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DagTemplate {
    /// Target task names (space separated); default: all tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The tasks.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tasks: Vec<DagTask>,
    /// Stop scheduling new tasks after a failure (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
}

/// Argo `DAGTask`: one node of a DAG template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DagTask {
    /// Task name.
    #[serde(default)]
    pub name: String,
    /// Template to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Inline template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<Box<Template>>,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Template in a WorkflowTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateRef>,
    /// Names of tasks this one depends on.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dependencies: Vec<String>,
    /// Loop over these items.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub with_items: Vec<Value>,
    /// Loop over a JSON list given as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_param: Option<String>,
    /// Loop over a numeric sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_sequence: Option<Sequence>,
    /// Run only when this expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Continue the DAG when this task fails or errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on: Option<ContinueOn>,
    /// Exit handler template (deprecated, use hooks.exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    /// Dependency expression (`A && (B.Failed || C)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends: Option<String>,
    /// Lifecycle hooks by event name (`exit`) or hook name.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub hooks: BTreeMap<String, LifecycleHook>,
}

/// Task result suffixes allowed in a `depends` expression.
const DEPENDS_RESULTS: &[&str] = &[
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
];

impl DagTask {
    /// Names of the tasks this task depends on: `dependencies`, or the task names in `depends`
    /// (result suffixes such as `.Succeeded` removed), without duplicates, in order.
    pub fn dependencies_list(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if let Some(expr) = self.depends.as_deref() {
            for tok in expr.split(|c: char| c.is_whitespace() || "&|!()".contains(c)) {
                if tok.is_empty() {
                    continue;
                }
                let name = match tok.rsplit_once('.') {
                    Some((n, r)) if DEPENDS_RESULTS.contains(&r) => n,
                    _ => tok,
                };
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        for d in &self.dependencies {
            if !out.contains(&d.as_str()) {
                out.push(d);
            }
        }
        out
    }
}

/// Argo `ContinueOn`: which failures a step or task tolerates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContinueOn {
    /// Continue on error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
    /// Continue on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<bool>,
}

/// Argo `Sequence`: a numeric loop (`count`, or `start`..`end`) with printf `format`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sequence {
    /// Number of elements (from `start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// First number (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<IntOrString>,
    /// Last number (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<IntOrString>,
    /// printf format of each element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

container_struct! {
    /// Argo `ScriptTemplate`: a container whose `source` is written to a file and run.
    pub struct ScriptTemplate {
        /// Container name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Script source code.
        #[serde(default)]
        pub source: String,
    }
}

container_struct! {
    /// Argo `ContainerNode`: a container of a container set, with dependencies.
    pub struct ContainerNode {
        /// Container name.
        #[serde(default)]
        pub name: String,
        /// Names of containers that must finish first.
        #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
        pub dependencies: Vec<String>,
    }
}

/// Argo `ContainerSetTemplate`: several containers in one pod.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSetTemplate {
    /// The containers.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub containers: Vec<ContainerNode>,
    /// Volume mounts added to every container.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volume_mounts: Vec<VolumeMount>,
    /// Retries of the containers inside the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<ContainerSetRetryStrategy>,
}

/// Argo `ContainerSetRetryStrategy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSetRetryStrategy {
    /// Delay between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Number of retries.
    #[serde(default)]
    pub retries: IntOrString,
}

/// Argo `ResourceTemplate`: manipulates a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceTemplate {
    /// `get`, `create`, `apply`, `delete`, `replace` or `patch`.
    #[serde(default)]
    pub action: String,
    /// Patch merge strategy (`strategic`, `merge`, `json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_strategy: Option<String>,
    /// The object manifest (YAML/JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Read the manifest from an artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_from: Option<ManifestFrom>,
    /// Set the workflow as owner of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_owner_reference: Option<bool>,
    /// Label-selector style success condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// Label-selector style failure condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Extra kubectl flags.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<String>,
}

/// Argo `ManifestFrom`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestFrom {
    /// Artifact holding the manifest.
    #[serde(default)]
    pub artifact: Artifact,
}

/// Argo `SuspendTemplate`: pause until resumed or for a duration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuspendTemplate {
    /// How long to wait (`"20s"`, `"5"` = seconds); empty waits for a resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// Argo `HTTP` template: performs an HTTP request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTemplate {
    /// HTTP method (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// URL.
    #[serde(default)]
    pub url: String,
    /// Request headers.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<HttpHeader>,
    /// Request timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// Expression deciding success (default: status < 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Request body from bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_from: Option<HttpBodySource>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

/// Argo `HTTPHeader`: a header of an HTTP template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    /// Header name.
    #[serde(default)]
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value from a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<HttpHeaderSource>,
}

/// Argo `HTTPHeaderSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeaderSource {
    /// Secret key holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// Argo `HTTPBodySource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBodySource {
    /// Body bytes (base64 in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<String>,
}

/// Argo `Data` template: transforms data from a source.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Data {
    /// Data source.
    #[serde(default)]
    pub source: DataSource,
    /// Transformation steps applied in order.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub transformation: Vec<TransformationStep>,
}

/// Argo `DataSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataSource {
    /// List artifact paths of an artifact location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_paths: Option<ArtifactPaths>,
}

/// Argo `TransformationStep`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransformationStep {
    /// Expression applied to the data.
    #[serde(default)]
    pub expression: String,
}
