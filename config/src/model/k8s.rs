//! Kubernetes `core/v1` shapes used by Argo templates: `Container` and the types it is made of.
//!
//! Simple container fields are typed; deep Kubernetes objects (probes, lifecycle, security
//! context, ports, ...) are kept verbatim as [`serde_json::Value`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Defines a struct with every Kubernetes `Container` field (except `name`) plus the given extra fields.
///
/// Argo has several container-shaped types (`Container`, `UserContainer`, `ScriptTemplate`,
/// `ContainerNode`); this macro keeps their common fields identical without `#[serde(flatten)]`.
macro_rules! container_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($extra)*
            /// Container image name.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub image: Option<String>,
            /// Entrypoint array (replaces the image's ENTRYPOINT).
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub command: Vec<String>,
            /// Arguments to the entrypoint (replace the image's CMD).
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub args: Vec<String>,
            /// Working directory.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub working_dir: Option<String>,
            /// Environment variables.
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub env: Vec<$crate::model::k8s::EnvVar>,
            /// Sources of environment variables (ConfigMaps, Secrets).
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub env_from: Vec<$crate::model::k8s::EnvFromSource>,
            /// Volumes mounted into the container.
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub volume_mounts: Vec<$crate::model::k8s::VolumeMount>,
            /// Raw block devices (Kubernetes `VolumeDevice`).
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub volume_devices: Vec<::serde_json::Value>,
            /// `Always`, `Never` or `IfNotPresent`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub image_pull_policy: Option<String>,
            /// Compute resources.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub resources: Option<$crate::model::k8s::ResourceRequirements>,
            /// Resize policies (Kubernetes `ContainerResizePolicy`).
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub resize_policy: Vec<::serde_json::Value>,
            /// Container restart policy (init/sidecar containers).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub restart_policy: Option<String>,
            /// Container restart rules (Kubernetes `ContainerRestartRule`).
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub restart_policy_rules: Vec<::serde_json::Value>,
            /// Exposed ports (Kubernetes `ContainerPort`).
            #[serde(default, deserialize_with = "crate::model::common::null_as_default", skip_serializing_if = "Vec::is_empty")]
            pub ports: Vec<::serde_json::Value>,
            /// Lifecycle hooks (Kubernetes `Lifecycle`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub lifecycle: Option<::serde_json::Value>,
            /// Liveness probe (Kubernetes `Probe`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub liveness_probe: Option<::serde_json::Value>,
            /// Readiness probe (Kubernetes `Probe`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub readiness_probe: Option<::serde_json::Value>,
            /// Startup probe (Kubernetes `Probe`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub startup_probe: Option<::serde_json::Value>,
            /// Container security context (Kubernetes `SecurityContext`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub security_context: Option<::serde_json::Value>,
            /// Allocate a buffer for stdin.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stdin: Option<bool>,
            /// Close stdin after the first attach.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stdin_once: Option<bool>,
            /// Allocate a TTY.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub tty: Option<bool>,
            /// Path of the termination message file.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub termination_message_path: Option<String>,
            /// `File` or `FallbackToLogsOnError`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub termination_message_policy: Option<String>,
        }
    };
}
pub(crate) use container_struct;

container_struct! {
    /// Kubernetes `core/v1.Container` (Argo's `container` template and plugin sidecars).
    pub struct Container {
        /// Container name (optional in a template's `container`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
    }
}

container_struct! {
    /// Argo `UserContainer`: a Kubernetes container used as a sidecar or init container.
    pub struct UserContainer {
        /// Container name.
        #[serde(default)]
        pub name: String,
        /// Mount the template's input/output volumes into this container too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mirror_volume_mounts: Option<bool>,
    }
}

/// Kubernetes `EnvVar`: one environment variable.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    #[serde(default)]
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Source of the value (Kubernetes `EnvVarSource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<Value>,
}

/// Kubernetes `EnvFromSource`: import all keys of a ConfigMap or Secret as variables.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFromSource {
    /// Prefix prepended to every key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// ConfigMap to import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<EnvSourceRef>,
    /// Secret to import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<EnvSourceRef>,
}

/// Kubernetes `ConfigMapEnvSource` / `SecretEnvSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvSourceRef {
    /// Name of the ConfigMap or Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the object may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Kubernetes `VolumeMount`: mounts a pod volume into a container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    /// Name of the volume.
    #[serde(default)]
    pub name: String,
    /// Path inside the container.
    #[serde(default)]
    pub mount_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Recursive read-only mode (`Disabled`, `IfPossible`, `Enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive_read_only: Option<String>,
    /// Path within the volume to mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// Like `subPath` with `$(VAR)` expansion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path_expr: Option<String>,
    /// Mount propagation mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_propagation: Option<String>,
}

/// Kubernetes `ResourceRequirements`: limits and requests (quantities kept verbatim).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRequirements {
    /// Maximum resources (`cpu: 100m`, `memory: 1Gi`, ...).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub limits: BTreeMap<String, Value>,
    /// Requested resources.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub requests: BTreeMap<String, Value>,
    /// Dynamic resource claims used by the container.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub claims: Vec<ResourceClaim>,
}

/// Kubernetes `ResourceClaim` reference inside `ResourceRequirements`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceClaim {
    /// Name of a pod resource claim.
    #[serde(default)]
    pub name: String,
    /// Request within the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}
