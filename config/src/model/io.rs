//! Inputs and outputs: parameters, artifacts, arguments, and artifact locations
//! (S3, Git, HTTP, Artifactory, HDFS, raw, OSS, GCS, Azure, plugin).

use serde::{Deserialize, Serialize};

use super::common::{AnyString, ConfigMapKeySelector, Metadata, SecretKeySelector};

/// Argo `Arguments`: parameters and artifacts passed to a workflow, step, task or hook.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arguments {
    /// Parameter arguments.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub parameters: Vec<Parameter>,
    /// Artifact arguments.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub artifacts: Vec<Artifact>,
}

impl Arguments {
    /// Sets parameter `name` to `value` (as `-p NAME=VALUE` does), adding it when missing.
    /// A value outside the parameter's `enum` is refused with Argo's message.
    pub fn set_parameter(&mut self, name: &str, value: &str) -> Result<(), String> {
        match self.parameters.iter_mut().find(|p| p.name == name) {
            Some(p) => {
                let allowed = p.enum_strs();
                if !allowed.is_empty() && !allowed.contains(&value) {
                    return Err(format!(
                        "spec.arguments.{name}.value '{value}' should be present in spec.arguments.{name}.enum list: {}",
                        allowed.join(", ")
                    ));
                }
                p.value = Some(AnyString(value.to_string()));
            }
            None => self.parameters.push(Parameter::new(name, value)),
        }
        Ok(())
    }
}

impl Arguments {
    /// The parameter with the given name.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// The artifact with the given name.
    pub fn artifact(&self, name: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.name == name)
    }
}

/// Argo `Inputs`: parameters and artifacts a template declares.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inputs {
    /// Input parameters.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub parameters: Vec<Parameter>,
    /// Input artifacts.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub artifacts: Vec<Artifact>,
}

/// Argo `Outputs`: parameters, artifacts, result and exit code of a template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outputs {
    /// Output parameters.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub parameters: Vec<Parameter>,
    /// Output artifacts.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub artifacts: Vec<Artifact>,
    /// Result (stdout) of a script or container template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Exit code of the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<String>,
}

/// Argo `Parameter`: a named string value, with optional default, enum and source.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Parameter {
    /// Parameter name.
    #[serde(default)]
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<AnyString>,
    /// Default used when no value is supplied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<AnyString>,
    /// Allowed values.
    #[serde(
        default,
        rename = "enum",
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub enum_values: Vec<AnyString>,
    /// Where to get the value from (file, JSON path, expression, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
    /// Export as a global workflow parameter under this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_name: Option<String>,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Parameter {
    /// A parameter with just a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Parameter {
            name: name.into(),
            value: Some(AnyString(value.into())),
            ..Default::default()
        }
    }

    /// The literal value, if set.
    pub fn value_str(&self) -> Option<&str> {
        self.value.as_ref().map(AnyString::as_str)
    }

    /// The default, if set.
    pub fn default_str(&self) -> Option<&str> {
        self.default.as_ref().map(AnyString::as_str)
    }

    /// The value, falling back to the default.
    pub fn value_or_default(&self) -> Option<&str> {
        self.value_str().or_else(|| self.default_str())
    }

    /// The allowed values as strings.
    pub fn enum_strs(&self) -> Vec<&str> {
        self.enum_values.iter().map(AnyString::as_str).collect()
    }
}

/// Argo `ValueFrom`: the source of a parameter value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueFrom {
    /// File path in the container (output parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// JSONPath over a resource (resource templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// jq filter over a resource (resource templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jq_filter: Option<String>,
    /// Expression over the event (WorkflowEventBinding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Another parameter reference (DAG/steps outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// Value supplied later (e.g. when resuming a suspend template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplied: Option<SuppliedValueFrom>,
    /// A ConfigMap key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<ConfigMapKeySelector>,
    /// Value used when the source cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<AnyString>,
    /// Expression evaluated to get the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// Argo `SuppliedValueFrom`: empty marker, the value is supplied via CLI/API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuppliedValueFrom {}

/// Argo `Artifact`: a named file or directory with its location and options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Artifact {
    /// Artifact name.
    #[serde(default)]
    pub name: String,
    /// Path in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// File mode bits for the loaded artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
    /// Reference to another artifact (`{{steps.x.outputs.artifacts.y}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Expression producing the artifact reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_expression: Option<String>,
    /// Archive logs with this artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_logs: Option<bool>,
    /// S3 location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Artifact>,
    /// Git location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitArtifact>,
    /// HTTP location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpArtifact>,
    /// Artifactory location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifactory: Option<ArtifactoryArtifact>,
    /// HDFS location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdfs: Option<HdfsArtifact>,
    /// Inline content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawArtifact>,
    /// Alibaba OSS location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss: Option<OssArtifact>,
    /// Google Cloud Storage location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsArtifact>,
    /// Azure Blob Storage location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureArtifact>,
    /// Artifact plugin location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginArtifact>,
    /// Export as a global workflow artifact under this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_name: Option<String>,
    /// How to archive (tar, zip, none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveStrategy>,
    /// The artifact may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Path within the artifact to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    /// Recurse into directories (input artifacts in some drivers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurse_mode: Option<bool>,
    /// Garbage-collection strategy for this artifact.
    #[serde(
        default,
        rename = "artifactGC",
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_gc: Option<ArtifactGc>,
    /// Set by the controller once the artifact has been deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}

impl Artifact {
    /// Argo names of the locations set on this artifact (`s3`, `git`, ...).
    pub fn location_kinds(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let set = [
            ("s3", self.s3.is_some()),
            ("git", self.git.is_some()),
            ("http", self.http.is_some()),
            ("artifactory", self.artifactory.is_some()),
            ("hdfs", self.hdfs.is_some()),
            ("raw", self.raw.is_some()),
            ("oss", self.oss.is_some()),
            ("gcs", self.gcs.is_some()),
            ("azure", self.azure.is_some()),
            ("plugin", self.plugin.is_some()),
        ];
        for (n, s) in set {
            if s {
                v.push(n);
            }
        }
        v
    }
}

/// Argo `ArtifactPaths`: same shape as [`Artifact`] (used by data templates).
pub type ArtifactPaths = Artifact;

/// Argo `ArtifactLocation`: where artifacts are stored (template `archiveLocation`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactLocation {
    /// Archive the main container's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_logs: Option<bool>,
    /// S3 location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Artifact>,
    /// Git location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitArtifact>,
    /// HTTP location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpArtifact>,
    /// Artifactory location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifactory: Option<ArtifactoryArtifact>,
    /// HDFS location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdfs: Option<HdfsArtifact>,
    /// Inline content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawArtifact>,
    /// Alibaba OSS location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss: Option<OssArtifact>,
    /// Google Cloud Storage location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsArtifact>,
    /// Azure Blob Storage location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureArtifact>,
    /// Artifact plugin location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginArtifact>,
}

/// Argo `ArchiveStrategy`: how an output artifact is packed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveStrategy {
    /// Upload files without packing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none: Option<NoneStrategy>,
    /// Tar (gzip) archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar: Option<TarStrategy>,
    /// Zip archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<ZipStrategy>,
}

/// Argo `NoneStrategy`: empty marker, no archiving.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoneStrategy {}

/// Argo `TarStrategy`: tar.gz archiving.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TarStrategy {
    /// gzip compression level (0 disables compression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_level: Option<i32>,
}

/// Argo `ZipStrategy`: empty marker, zip archiving.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZipStrategy {}

/// Argo `ArtifactGC`: per-artifact garbage collection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactGc {
    /// `OnWorkflowCompletion`, `OnWorkflowDeletion`, `Never` or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Metadata of the GC pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<Metadata>,
    /// Service account of the GC pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// Argo `ArtifactRepositoryRef`: selects an artifact repository from a ConfigMap.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactRepositoryRef {
    /// ConfigMap name (default `artifact-repositories`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Key in the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Argo `S3Artifact`: an object in S3-compatible storage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Artifact {
    /// Endpoint (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Bucket name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Use plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Access key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret: Option<SecretKeySelector>,
    /// Secret key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_secret: Option<SecretKeySelector>,
    /// Session token secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_secret: Option<SecretKeySelector>,
    /// IAM role to assume.
    #[serde(default, rename = "roleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Use the SDK's default credential chain.
    #[serde(
        default,
        rename = "useSDKCreds",
        skip_serializing_if = "Option::is_none"
    )]
    pub use_sdk_creds: Option<bool>,
    /// Create the bucket if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_bucket_if_not_present: Option<CreateS3BucketOptions>,
    /// Server-side encryption options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_options: Option<S3EncryptionOptions>,
    /// CA certificate secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<SecretKeySelector>,
    /// `path` or `virtual` hosted style addressing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressing_style: Option<String>,
    /// Object key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Argo `CreateS3BucketOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateS3BucketOptions {
    /// Enable object locking on the created bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_locking: Option<bool>,
}

/// Argo `S3EncryptionOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3EncryptionOptions {
    /// KMS key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// KMS encryption context (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_encryption_context: Option<String>,
    /// Enable SSE-S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_encryption: Option<bool>,
    /// SSE-C key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_customer_key_secret: Option<SecretKeySelector>,
}

/// Argo `GitArtifact`: a Git repository checkout.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitArtifact {
    /// Repository URL.
    #[serde(default)]
    pub repo: String,
    /// Revision (commit, tag, branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Clone depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u64>,
    /// Extra refspecs to fetch.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fetch: Vec<String>,
    /// Username secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_secret: Option<SecretKeySelector>,
    /// Password secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeySelector>,
    /// SSH private key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key_secret: Option<SecretKeySelector>,
    /// Skip host key verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_ignore_host_key: Option<bool>,
    /// Skip TLS verification.
    #[serde(
        default,
        rename = "insecureSkipTLS",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_tls: Option<bool>,
    /// Do not clone submodules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_submodules: Option<bool>,
    /// Branch to check out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Clone only one branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_branch: Option<bool>,
}

/// Argo `HTTPArtifact`: a file fetched over HTTP(S).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpArtifact {
    /// URL.
    #[serde(default)]
    pub url: String,
    /// Request headers.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<Header>,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<HttpAuth>,
    /// Stream uploads through a temporary file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_stream_via_file: Option<bool>,
}

/// Argo `Header`: an HTTP header for HTTP artifacts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// Header name.
    #[serde(default)]
    pub name: String,
    /// Header value.
    #[serde(default)]
    pub value: String,
}

/// Argo `HTTPAuth`: authentication for HTTP artifacts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpAuth {
    /// Client certificate auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<ClientCertAuth>,
    /// OAuth2 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Auth>,
    /// Basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
}

/// Argo `BasicAuth`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// Username secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_secret: Option<SecretKeySelector>,
    /// Password secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeySelector>,
}

/// Argo `ClientCertAuth`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertAuth {
    /// Client certificate secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret: Option<SecretKeySelector>,
    /// Client key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_secret: Option<SecretKeySelector>,
}

/// Argo `OAuth2Auth`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2Auth {
    /// Client id secret.
    #[serde(
        default,
        rename = "clientIDSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_id_secret: Option<SecretKeySelector>,
    /// Client secret secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_secret: Option<SecretKeySelector>,
    /// Token URL secret.
    #[serde(
        default,
        rename = "tokenURLSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_url_secret: Option<SecretKeySelector>,
    /// Scopes.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes: Vec<String>,
    /// Extra endpoint parameters.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub endpoint_params: Vec<OAuth2EndpointParam>,
}

/// Argo `OAuth2EndpointParam`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2EndpointParam {
    /// Parameter name.
    #[serde(default)]
    pub key: String,
    /// Parameter value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Argo `ArtifactoryArtifact`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactoryArtifact {
    /// Artifact URL.
    #[serde(default)]
    pub url: String,
    /// Username secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_secret: Option<SecretKeySelector>,
    /// Password secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeySelector>,
}

/// Argo `HDFSArtifact`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HdfsArtifact {
    /// Kerberos ccache secret.
    #[serde(
        default,
        rename = "krbCCacheSecret",
        skip_serializing_if = "Option::is_none"
    )]
    pub krb_c_cache_secret: Option<SecretKeySelector>,
    /// Kerberos keytab secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub krb_keytab_secret: Option<SecretKeySelector>,
    /// Kerberos user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub krb_username: Option<String>,
    /// Kerberos realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub krb_realm: Option<String>,
    /// Kerberos config ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub krb_config_config_map: Option<ConfigMapKeySelector>,
    /// Kerberos service principal name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub krb_service_principal_name: Option<String>,
    /// Namenode addresses.
    #[serde(
        default,
        deserialize_with = "crate::model::common::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<String>,
    /// HDFS user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdfs_user: Option<String>,
    /// Data transfer protection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_transfer_protection: Option<String>,
    /// File path.
    #[serde(default)]
    pub path: String,
    /// Overwrite existing files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// Argo `RawArtifact`: inline artifact content.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawArtifact {
    /// The content.
    #[serde(default)]
    pub data: String,
}

/// Argo `OSSArtifact`: Alibaba Cloud OSS object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OssArtifact {
    /// Endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Access key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret: Option<SecretKeySelector>,
    /// Secret key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_secret: Option<SecretKeySelector>,
    /// Create the bucket if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_bucket_if_not_present: Option<bool>,
    /// STS security token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
    /// Bucket lifecycle rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_rule: Option<OssLifecycleRule>,
    /// Use the SDK's default credentials.
    #[serde(
        default,
        rename = "useSDKCreds",
        skip_serializing_if = "Option::is_none"
    )]
    pub use_sdk_creds: Option<bool>,
    /// Object key.
    #[serde(default)]
    pub key: String,
}

/// Argo `OSSLifecycleRule`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OssLifecycleRule {
    /// Days before moving to infrequent access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_infrequent_access_after_days: Option<i32>,
    /// Days before deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_deletion_after_days: Option<i32>,
}

/// Argo `GCSArtifact`: Google Cloud Storage object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcsArtifact {
    /// Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Service account key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key_secret: Option<SecretKeySelector>,
    /// Object key.
    #[serde(default)]
    pub key: String,
}

/// Argo `AzureArtifact`: Azure Blob Storage blob.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureArtifact {
    /// Service endpoint.
    #[serde(default)]
    pub endpoint: String,
    /// Container name.
    #[serde(default)]
    pub container: String,
    /// Account key secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key_secret: Option<SecretKeySelector>,
    /// Use the SDK's default credentials.
    #[serde(
        default,
        rename = "useSDKCreds",
        skip_serializing_if = "Option::is_none"
    )]
    pub use_sdk_creds: Option<bool>,
    /// Blob name.
    #[serde(default)]
    pub blob: String,
}

/// Argo `PluginArtifact`: location handled by an artifact driver plugin.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginArtifact {
    /// Plugin name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Plugin configuration (opaque string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
    /// Connection timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_timeout_seconds: Option<i32>,
    /// Object key.
    #[serde(default)]
    pub key: String,
}
