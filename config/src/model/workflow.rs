//! Workflow-level specs: `WorkflowSpec` (shared by Workflow, WorkflowTemplate and
//! ClusterWorkflowTemplate), `CronWorkflowSpec`, `WorkflowEventBindingSpec` and their parts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ObjectMeta;
use super::common::{
    ExecutorConfig, LifecycleHook, Metadata, Metrics, RetryStrategy, Synchronization,
};
use super::io::{Arguments, ArtifactRepositoryRef};
use super::k8s::{Container, ResourceRequirements};
use super::template::Template;

/// Argo `WorkflowSpec`: the specification of a workflow (or workflow template).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowSpec {
    /// Templates of the workflow.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub templates: Vec<Template>,
    /// Name of the template to start with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// Workflow arguments (global parameters and artifacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Service account of the workflow pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Mount the service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// Executor settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorConfig>,
    /// Pod volumes (Kubernetes `Volume`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volumes: Vec<Value>,
    /// PVCs created for the workflow (Kubernetes `PersistentVolumeClaim`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub volume_claim_templates: Vec<Value>,
    /// Maximum number of pods running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i64>,
    /// Artifact repository to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_repository_ref: Option<ArtifactRepositoryRef>,
    /// Suspend the workflow at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Node selector for all pods.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub node_selector: BTreeMap<String, String>,
    /// Affinity for all pods (Kubernetes `Affinity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Value>,
    /// Tolerations for all pods (Kubernetes `Toleration`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tolerations: Vec<Value>,
    /// Image pull secrets (Kubernetes `LocalObjectReference`).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub image_pull_secrets: Vec<Value>,
    /// Use the host network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<bool>,
    /// DNS policy of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<String>,
    /// DNS config of the pods (Kubernetes `PodDNSConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<Value>,
    /// Exit handler template name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    /// Time to live after completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
    /// Deadline of the whole workflow in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Workflow priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Kubernetes scheduler name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// Pod garbage collection.
    #[serde(default, rename = "podGC", skip_serializing_if = "Option::is_none")]
    pub pod_gc: Option<PodGc>,
    /// Priority class of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_priority_class_name: Option<String>,
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
    /// Strategic merge patch applied to every pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec_patch: Option<String>,
    /// PodDisruptionBudget spec for the workflow pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<Value>,
    /// Workflow-level metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// `Terminate` or `Stop` to shut the workflow down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
    /// Reference to a WorkflowTemplate supplying the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_template_ref: Option<WorkflowTemplateRef>,
    /// Workflow-level mutexes and semaphores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization: Option<Synchronization>,
    /// PVC garbage collection.
    #[serde(
        default,
        rename = "volumeClaimGC",
        skip_serializing_if = "Option::is_none"
    )]
    pub volume_claim_gc: Option<VolumeClaimGc>,
    /// Retry strategy applied to every template without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    /// Metadata added to every pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<Metadata>,
    /// Defaults merged into every template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_defaults: Option<Box<Template>>,
    /// Archive the logs of all containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_logs: Option<bool>,
    /// Workflow lifecycle hooks (`exit` or named hooks with expressions).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub hooks: BTreeMap<String, LifecycleHook>,
    /// Labels/annotations added to the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_metadata: Option<WorkflowMetadata>,
    /// Workflow-level artifact garbage collection.
    #[serde(
        default,
        rename = "artifactGC",
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_gc: Option<WorkflowLevelArtifactGc>,
    /// Executor plugins (sidecars) enabled for this workflow.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub executor_plugins: Vec<ExecutorPlugin>,
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

impl WorkflowSpec {
    /// The template with the given name.
    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
    }

    /// The entrypoint template, if the entrypoint is set and exists.
    pub fn entrypoint_template(&self) -> Option<&Template> {
        self.entrypoint.as_deref().and_then(|n| self.template(n))
    }
}

/// Argo `TTLStrategy`: when to delete a completed workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TtlStrategy {
    /// Seconds after completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    /// Seconds after success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
    /// Seconds after failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
}

/// Argo `PodGC`: when to delete completed pods.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodGc {
    /// `OnPodCompletion`, `OnPodSuccess`, `OnWorkflowCompletion`, `OnWorkflowSuccess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Only pods matching this selector (Kubernetes `LabelSelector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<Value>,
    /// Delay before deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_delay_duration: Option<String>,
}

/// Argo `VolumeClaimGC`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeClaimGc {
    /// `OnWorkflowCompletion` or `OnWorkflowSuccess`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// Argo `WorkflowTemplateRef`: a (Cluster)WorkflowTemplate supplying a workflow's spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowTemplateRef {
    /// Template name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Refer to a ClusterWorkflowTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
}

/// Argo `WorkflowMetadata`: labels and annotations added to the workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowMetadata {
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
    /// Labels computed from expressions.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels_from: BTreeMap<String, LabelValueFrom>,
}

/// Argo `LabelValueFrom`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelValueFrom {
    /// Expression giving the label value.
    #[serde(default)]
    pub expression: String,
}

/// Argo `WorkflowLevelArtifactGC`: artifact GC defaults for the workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowLevelArtifactGc {
    /// `OnWorkflowCompletion`, `OnWorkflowDeletion`, `Never` or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Metadata of the GC pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<Metadata>,
    /// Service account of the GC pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Remove the finalizer even if GC failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_finalizer_removal: Option<bool>,
    /// Pod spec patch of the GC pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_spec_patch: Option<String>,
}

/// Argo `ExecutorPlugin`: an executor plugin sidecar definition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorPlugin {
    /// Plugin metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Plugin spec.
    #[serde(default)]
    pub spec: ExecutorPluginSpec,
}

/// Argo `ExecutorPluginSpec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorPluginSpec {
    /// The plugin sidecar.
    #[serde(default)]
    pub sidecar: ExecutorPluginSidecar,
}

/// Argo `ExecutorPluginSidecar`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorPluginSidecar {
    /// Mount the service account token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    /// The sidecar container.
    #[serde(default)]
    pub container: Container,
}

/// Argo `CronWorkflowSpec`: a workflow spec run on a schedule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronWorkflowSpec {
    /// The workflow to run.
    #[serde(default)]
    pub workflow_spec: WorkflowSpec,
    /// Cron schedules.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub schedules: Vec<String>,
    /// Legacy single schedule (pre-v3.6; not in the v4 schema, kept for `argo convert` inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// `Allow`, `Forbid` or `Replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<String>,
    /// Do not schedule new runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Deadline for starting a missed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    /// Successful workflows to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i32>,
    /// Failed workflows to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i32>,
    /// IANA time zone of the schedules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Metadata of created workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_metadata: Option<ObjectMeta>,
    /// Stop scheduling when this expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_strategy: Option<StopStrategy>,
    /// Only schedule when this expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl CronWorkflowSpec {
    /// Every schedule: the legacy `schedule` (if set) followed by `schedules`.
    pub fn all_schedules(&self) -> Vec<&str> {
        self.schedule
            .iter()
            .chain(self.schedules.iter())
            .map(String::as_str)
            .collect()
    }
}

/// Argo `StopStrategy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopStrategy {
    /// Expression that stops the CronWorkflow when true.
    #[serde(default)]
    pub expression: String,
}

/// Argo `WorkflowEventBindingSpec`: submit a workflow when an event matches.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowEventBindingSpec {
    /// Event selector.
    #[serde(default)]
    pub event: Event,
    /// What to submit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submit: Option<Submit>,
}

/// Argo `Event`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    /// Expression over the event payload.
    #[serde(default)]
    pub selector: String,
}

/// Argo `Submit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Submit {
    /// Template to submit.
    #[serde(default)]
    pub workflow_template_ref: WorkflowTemplateRef,
    /// Metadata of the submitted workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// Arguments (values may use `valueFrom.event`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
}
