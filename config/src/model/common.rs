//! Scalar helper types shared by the Argo model: Kubernetes `IntOrString` and Argo's `AnyString`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Kubernetes `intstr.IntOrString`: an integer or a string, serialised back in the form it was read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    /// An integer value (`limit: 3`).
    Int(i64),
    /// A string value (`limit: "3"`, `limit: "{{inputs.parameters.n}}"`).
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

impl IntOrString {
    /// The integer value if this is an `Int`, or a string that parses as an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            IntOrString::Int(i) => Some(*i),
            IntOrString::String(s) => s.trim().parse().ok(),
        }
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for IntOrString {
    fn from(v: i64) -> Self {
        IntOrString::Int(v)
    }
}

impl From<&str> for IntOrString {
    fn from(v: &str) -> Self {
        IntOrString::String(v.to_owned())
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => s.serialize_i64(*i),
            IntOrString::String(v) => s.serialize_str(v),
        }
    }
}

struct IntOrStringVisitor;

impl<'de> Visitor<'de> for IntOrStringVisitor {
    type Value = IntOrString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(IntOrString::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(IntOrString::Int)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(IntOrString::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(IntOrString::String(v))
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStringVisitor)
    }
}

/// Argo's `AnyString`: a string that may be written in YAML as a string, number or boolean.
///
/// Non-string scalars are kept as their textual form and always serialised as a string, as Argo does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct AnyString(pub String);

impl AnyString {
    /// The text of the value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AnyString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AnyString {
    fn from(v: &str) -> Self {
        AnyString(v.to_owned())
    }
}

impl From<String> for AnyString {
    fn from(v: String) -> Self {
        AnyString(v)
    }
}

impl Serialize for AnyString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

struct AnyStringVisitor;

impl<'de> Visitor<'de> for AnyStringVisitor {
    type Value = AnyString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(AnyString(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(AnyString(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(AnyString(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
        Ok(AnyString(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
        Ok(AnyString(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // Go formats float64 with the shortest representation; Rust's Display does the same
        // for finite values (`1.5`, `0.1`, `1` for 1.0).
        Ok(AnyString(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(AnyString(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(AnyString(v))
    }
}

impl<'de> Deserialize<'de> for AnyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyStringVisitor)
    }
}

/// Kubernetes `ConfigMapKeySelector`: selects a key of a ConfigMap.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapKeySelector {
    /// Name of the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Key within the ConfigMap.
    #[serde(default)]
    pub key: String,
    /// Whether the ConfigMap or key may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Kubernetes `SecretKeySelector`: selects a key of a Secret.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Key within the Secret.
    #[serde(default)]
    pub key: String,
    /// Whether the Secret or key may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Kubernetes `LocalObjectReference`: a reference by name within the same namespace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    /// Name of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Argo `Metadata`: labels and annotations applied to pods or other objects.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Annotations to add.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Labels to add.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
}

/// Argo `TemplateRef`: a template inside a (Cluster)WorkflowTemplate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRef {
    /// Name of the WorkflowTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Name of the template within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Refer to a ClusterWorkflowTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_scope: Option<bool>,
}

/// Argo `LifecycleHook`: a template run on an event or when an expression becomes true.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleHook {
    /// Template to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Arguments for the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<crate::model::io::Arguments>,
    /// Template in a WorkflowTemplate to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_ref: Option<TemplateRef>,
    /// Condition that triggers the hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// Argo `RetryStrategy`: how and how often to retry a failed node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryStrategy {
    /// Maximum number of retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<IntOrString>,
    /// `Always`, `OnFailure`, `OnError` or `OnTransientError`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<String>,
    /// Delay between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Node anti-affinity for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<RetryAffinity>,
    /// Expression deciding whether to retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// Argo `Backoff`: retry delay parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backoff {
    /// Initial delay (`"1"` = seconds, or `"2m"`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Multiplier applied after each retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<IntOrString>,
    /// Maximum total retry time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Maximum single delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
}

/// Argo `RetryAffinity`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryAffinity {
    /// Avoid the nodes of previous attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_anti_affinity: Option<RetryNodeAntiAffinity>,
}

/// Argo `RetryNodeAntiAffinity`: empty marker.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryNodeAntiAffinity {}

/// Argo `Memoize`: cache a template's outputs by key.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Memoize {
    /// Cache key.
    #[serde(default)]
    pub key: String,
    /// Where the cache lives.
    #[serde(default)]
    pub cache: Cache,
    /// Maximum age of a usable entry (e.g. `"1h"`).
    #[serde(default)]
    pub max_age: String,
}

/// Argo `Cache`: memoization cache storage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cache {
    /// ConfigMap holding the cache.
    #[serde(default)]
    pub config_map: LocalObjectReference,
}

/// Argo `Synchronization`: mutexes and semaphores a workflow or template must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Synchronization {
    /// Mutexes to hold.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mutexes: Vec<Mutex>,
    /// Semaphores to hold.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub semaphores: Vec<SemaphoreRef>,
    /// Legacy single mutex (pre-v3.6; not in the v4 schema, kept for `argo convert` inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutex: Option<Mutex>,
    /// Legacy single semaphore (pre-v3.6; not in the v4 schema, kept for `argo convert` inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semaphore: Option<SemaphoreRef>,
}

impl Synchronization {
    /// All mutexes, legacy `mutex` first.
    pub fn all_mutexes(&self) -> Vec<&Mutex> {
        self.mutex.iter().chain(self.mutexes.iter()).collect()
    }

    /// All semaphores, legacy `semaphore` first.
    pub fn all_semaphores(&self) -> Vec<&SemaphoreRef> {
        self.semaphore
            .iter()
            .chain(self.semaphores.iter())
            .collect()
    }
}

/// Argo `Mutex`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mutex {
    /// Mutex name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace of the mutex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Use the database-backed (multi-controller) mutex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<bool>,
}

/// Argo `SemaphoreRef`: a semaphore whose limit comes from a ConfigMap or the database.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SemaphoreRef {
    /// ConfigMap key holding the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeySelector>,
    /// Database-backed semaphore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<SyncDatabaseRef>,
    /// Namespace of the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Argo `SyncDatabaseRef`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncDatabaseRef {
    /// Semaphore key in the database.
    #[serde(default)]
    pub key: String,
}

/// Argo `Metrics`: custom Prometheus metrics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    /// Metrics to emit.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prometheus: Vec<Prometheus>,
}

/// Argo `Prometheus`: one custom metric.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prometheus {
    /// Metric name.
    #[serde(default)]
    pub name: String,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<MetricLabel>,
    /// Help text.
    #[serde(default)]
    pub help: String,
    /// Emit only when this expression holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Gauge metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gauge: Option<Gauge>,
    /// Histogram metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
    /// Counter metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<Counter>,
}

/// Argo `MetricLabel`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricLabel {
    /// Label name.
    #[serde(default)]
    pub key: String,
    /// Label value.
    #[serde(default)]
    pub value: String,
}

/// Argo `Gauge`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gauge {
    /// Value expression.
    #[serde(default)]
    pub value: String,
    /// Update continuously while the node runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<bool>,
    /// `Set`, `Add` or `Sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// Argo `Histogram`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Histogram {
    /// Value expression.
    #[serde(default)]
    pub value: String,
    /// Bucket boundaries (Argo `Amount`, kept as written).
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub buckets: Vec<serde_json::Number>,
}

/// Argo `Counter`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Counter {
    /// Value expression.
    #[serde(default)]
    pub value: String,
}

/// Argo `ExecutorConfig`: settings of the executor (wait/init) containers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Service account used by the executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// Deserialises `null` as the type's default, as Go does for slices, maps and structs.
///
/// Used with `#[serde(default, deserialize_with = ...)]` on list and map fields so that
/// `parameters:` with no value reads as an empty list.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
