//! Where a step's artifacts are stored: the `artifactRepository` of the `cox` configuration
//! file (Argo's `ArtifactRepository` shape), resolved on the host, and how it reaches the
//! in-step wrapper.
//!
//! ```yaml
//! artifactRepository:
//!   s3:
//!     endpoint: 127.0.0.1:9000   # no scheme: http:// when insecure, https:// otherwise
//!     bucket: my-bucket
//!     region: us-east-1          # default us-east-1
//!     insecure: true             # allow plain HTTP
//!     keyPrefix: artifacts/      # optional, prepended to every key
//!     accessKey: /path/to/file   # optional: file holding the access key id
//!     secretKey: /path/to/file   # optional: file holding the secret access key
//!     # accessKeySecret / secretKeySecret (Kubernetes secrets) are accepted and ignored here
//! localRepositoryRoot: DIR       # where workflow-named local repositories must lie
//! credentialsAllowedFor:         # more buckets the host's keys may go to
//! - {endpoint: 127.0.0.1:9000, bucket: shared, insecure: true}
//! ```
//!
//! or `local: {path: DIR}` (relative to the configuration file's directory). Without
//! `accessKey`/`secretKey`, credentials come from the environment of `cox run`:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`.
//!
//! # Repositories named by workflows
//!
//! An `artifact-repositories` ConfigMap value or an artifact's own `s3:` bucket is a
//! [`RepositoryLocation`] (where, and which stored Secrets hold its keys); the executor
//! resolves it under its [`RepositoryPolicy`], which says which local directories may be
//! named and which buckets get the host's keys.
//!
//! # Credentials and the wrapper
//!
//! Credentials never go into the step input (kept in the step directory's `process.json`)
//! nor into any process environment (steps run with a cleared environment, and a wrapper's
//! environment would be inherited by the program and readable in `/proc/<pid>/environ`).
//! The executor writes the resolved S3 settings, keys included ([`StepStores`]: the run's
//! bucket and artifacts' own), to [`REPOSITORY_FILE`] in the step directory, created with
//! mode 0600; the wrapper reads it and deletes it before it stages inputs or starts the program, keeping
//! the keys only in its own memory; the executor deletes it again when the step ends, in
//! case the wrapper never ran.

use std::fmt;
use std::path::{Path, PathBuf};

use cox_artifacts::{ArtifactRepository, S3Config};
use serde::{Deserialize, Serialize};

/// The resolved S3 repository file in the step directory (see the module doc).
pub const REPOSITORY_FILE: &str = "repository.json";

/// The `cox` configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CoxConfigFile {
    /// Where artifacts go; `<home>/artifacts` when missing.
    #[serde(default)]
    pub artifact_repository: Option<RepositorySpec>,
    /// Where local directories named by workflows (`artifact-repositories` ConfigMaps) must
    /// lie; relative to the configuration file's directory. Default: the configured local
    /// repository's directory, else `<home>/artifacts`.
    #[serde(default)]
    pub local_repository_root: Option<PathBuf>,
    /// Buckets, besides the configured one, that the host's keys (the key files, else
    /// `AWS_*` of the environment) may be sent to when a workflow names them.
    #[serde(default)]
    pub credentials_allowed_for: Vec<BucketTarget>,
    /// Argo's controller `parallelism`: workflows running at once on the server (`cox
    /// server`); unlimited when missing.
    #[serde(default)]
    pub parallelism: Option<u32>,
    /// Argo's controller `namespaceParallelism`: workflows running at once in each
    /// namespace; unlimited when missing.
    #[serde(default)]
    pub namespace_parallelism: Option<u32>,
}

/// Argo's `ArtifactRepository`, the kinds cox supports.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySpec {
    /// Argo's `archiveLogs`: when true, every step's log is archived (`main-logs`),
    /// whatever its template or workflow says, as Argo's controller does.
    #[serde(default)]
    pub archive_logs: Option<bool>,
    /// A local directory.
    #[serde(default)]
    pub local: Option<LocalSpec>,
    /// An S3-compatible bucket.
    #[serde(default)]
    pub s3: Option<S3Spec>,
}

/// `local:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalSpec {
    /// The directory.
    pub path: PathBuf,
}

/// A Kubernetes secret selector (`{name, key}`): accepted and ignored locally.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSelector {
    /// Secret name.
    #[serde(default)]
    pub name: Option<String>,
    /// Key in the secret.
    #[serde(default)]
    pub key: Option<String>,
}

/// `s3:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Spec {
    /// `host:port` or a URL; AWS when missing.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region, `us-east-1` by default.
    #[serde(default)]
    pub region: Option<String>,
    /// Allow plain HTTP.
    #[serde(default)]
    pub insecure: bool,
    /// Prefix of every key in the bucket.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// Argo's `keyFormat`: refused unless empty (keys are `<run>/<node>/<name>.tgz`).
    #[serde(default)]
    pub key_format: Option<String>,
    /// cox: a file holding the access key id.
    #[serde(default)]
    pub access_key: Option<PathBuf>,
    /// cox: a file holding the secret access key.
    #[serde(default)]
    pub secret_key: Option<PathBuf>,
    /// cox: a file holding a session token.
    #[serde(default)]
    pub session_token: Option<PathBuf>,
    /// Argo: ignored locally.
    #[serde(default)]
    pub access_key_secret: Option<SecretSelector>,
    /// Argo: ignored locally.
    #[serde(default)]
    pub secret_key_secret: Option<SecretSelector>,
    /// Argo: ignored locally.
    #[serde(default)]
    pub session_token_secret: Option<SecretSelector>,
    /// Argo: ignored locally (credentials come from the environment unless files are given).
    #[serde(default, rename = "useSDKCreds")]
    pub use_sdk_creds: Option<bool>,
}

/// Resolved keys. `Debug` never prints them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    #[serde(default)]
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A resolved S3 repository, as the wrapper receives it in [`REPOSITORY_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Repository {
    /// Endpoint (`host:port` or URL); AWS when `None`.
    pub endpoint: Option<String>,
    /// Bucket.
    pub bucket: String,
    /// Region.
    pub region: String,
    /// Allow plain HTTP.
    pub insecure: bool,
    /// Key prefix.
    pub key_prefix: String,
    /// Keys; object_store's default chain when `None`.
    pub credentials: Option<Credentials>,
}

impl S3Repository {
    /// The artifacts crate's settings (path-style requests, as MinIO and moto need).
    pub fn s3_config(&self) -> S3Config {
        let mut c = S3Config::new(self.bucket.clone(), self.region.clone());
        c.endpoint = self.endpoint.clone();
        c.insecure = self.insecure;
        c.path_style = true;
        c.prefix = self.key_prefix.clone();
        if let Some(k) = &self.credentials {
            c.access_key_id = Some(k.access_key_id.clone());
            c.secret_access_key = Some(k.secret_access_key.clone());
            c.session_token = k.session_token.clone();
        }
        c
    }

    /// Opens the repository.
    pub fn open(&self) -> cox_artifacts::Result<ArtifactRepository> {
        ArtifactRepository::s3(self.s3_config())
    }

    /// Whether this is the bucket at `location` (its keys aside).
    pub fn is_at(&self, location: &RepositoryLocation) -> bool {
        match location {
            RepositoryLocation::Local { .. } => false,
            RepositoryLocation::S3 {
                endpoint,
                bucket,
                region,
                insecure,
                key_prefix,
                secrets: _,
            } => {
                self.endpoint == *endpoint
                    && self.bucket == *bucket
                    && self.region == *region
                    && self.insecure == *insecure
                    && self.key_prefix == *key_prefix
            }
        }
    }
}

/// What the wrapper receives in [`REPOSITORY_FILE`]: the run's bucket, and the buckets of
/// artifacts with their own location, keys included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStores {
    /// The run's repository, when it is a bucket (else the wrapper's `--artifacts DIR`).
    #[serde(default)]
    pub repository: Option<S3Repository>,
    /// Artifacts' own buckets.
    #[serde(default)]
    pub artifacts: Vec<S3Repository>,
}

impl StepStores {
    /// Whether there is nothing to pass.
    pub fn is_empty(&self) -> bool {
        self.repository.is_none() && self.artifacts.is_empty()
    }

    /// The bucket of an artifact's `location`.
    pub fn artifact_store(&self, location: &RepositoryLocation) -> Option<&S3Repository> {
        self.artifacts.iter().find(|s| s.is_at(location))
    }

    /// Writes them, keys included, to `path`, created with mode 0600 (an existing file is
    /// replaced).
    pub fn write_private(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        f.sync_all()
    }

    /// Reads [`Self::write_private`]'s file and deletes it.
    pub fn take_private(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        let removed = std::fs::remove_file(path);
        let bytes = bytes?;
        removed.map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid {}: {e}", path.display()))
    }
}

/// A key of a stored Kubernetes Secret (Argo's `accessKeySecret` and the like), with the
/// namespace of the workflow that names it. Only the reference is ever stored in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// The Secret's namespace (the workflow's).
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
    /// The key in its `data`.
    pub key: String,
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "secret '{}' key '{}' in namespace '{}'",
            self.name, self.key, self.namespace
        )
    }
}

/// Where Secret values come from (the scheduler's store). Errors name the Secret and key,
/// never a value.
pub trait SecretSource: Send + Sync {
    /// The value of `secret`.
    fn secret_value(&self, secret: &SecretRef) -> Result<String, String>;
}

/// The Secrets holding a bucket's keys (Argo's `accessKeySecret`, `secretKeySecret`,
/// `sessionTokenSecret`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    /// The access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret: Option<SecretRef>,
    /// The secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_secret: Option<SecretRef>,
    /// A session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_secret: Option<SecretRef>,
}

impl SecretKeys {
    /// The references of Argo selectors `{name, key}` in `namespace` (`what` names the
    /// place for errors).
    pub fn from_selectors(
        namespace: &str,
        what: &str,
        access: Option<(&str, &str)>,
        secret: Option<(&str, &str)>,
        token: Option<(&str, &str)>,
    ) -> Result<Self, String> {
        let one = |field: &str, selector: Option<(&str, &str)>| match selector {
            None => Ok(None),
            Some((name, key)) if name.trim().is_empty() || key.trim().is_empty() => {
                Err(format!("{what}.{field}: both name and key are required"))
            }
            Some((name, key)) => Ok(Some(SecretRef {
                namespace: namespace.to_string(),
                name: name.to_string(),
                key: key.to_string(),
            })),
        };
        let keys = SecretKeys {
            access_key_secret: one("accessKeySecret", access)?,
            secret_key_secret: one("secretKeySecret", secret)?,
            session_token_secret: one("sessionTokenSecret", token)?,
        };
        match (&keys.access_key_secret, &keys.secret_key_secret) {
            (Some(_), None) | (None, Some(_)) => Err(format!(
                "{what}: give both accessKeySecret and secretKeySecret, or neither"
            )),
            (None, None) if keys.session_token_secret.is_some() => Err(format!(
                "{what}.sessionTokenSecret: needs accessKeySecret and secretKeySecret"
            )),
            _ => Ok(keys),
        }
    }

    /// Whether any Secret is named.
    pub fn is_empty(&self) -> bool {
        self.access_key_secret.is_none() && self.secret_key_secret.is_none()
    }

    /// The keys, read from `secrets`.
    fn resolve(&self, secrets: Option<&dyn SecretSource>) -> Result<Option<Credentials>, String> {
        let (Some(access), Some(secret)) = (&self.access_key_secret, &self.secret_key_secret)
        else {
            return Ok(None);
        };
        let secrets = secrets.ok_or("stored Secrets cannot be read here")?;
        Ok(Some(Credentials {
            access_key_id: secrets.secret_value(access)?,
            secret_access_key: secrets.secret_value(secret)?,
            session_token: match &self.session_token_secret {
                Some(t) => Some(secrets.secret_value(t)?),
                None => None,
            },
        }))
    }
}

/// A bucket on an endpoint, as the configuration file's `credentialsAllowedFor` lists
/// them. Two are the same when bucket, scheme, host and port are (see [`endpoint_url`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketTarget {
    /// `host:port` or a URL; AWS when missing.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// Plain HTTP, for an endpoint without a scheme.
    #[serde(default)]
    pub insecure: bool,
}

impl BucketTarget {
    fn same_as(&self, endpoint: Option<&str>, bucket: &str, insecure: bool) -> bool {
        self.bucket == bucket
            && endpoint_url(self.endpoint.as_deref(), self.insecure)
                == endpoint_url(endpoint, insecure)
    }
}

/// An endpoint as the URL requests go to, lowercase, without a trailing slash: a bare
/// `host:port` gets `http://` when `insecure`, `https://` otherwise; `None` is AWS.
pub fn endpoint_url(endpoint: Option<&str>, insecure: bool) -> Option<String> {
    let endpoint = endpoint.map(str::trim).filter(|e| !e.is_empty())?;
    let url = if endpoint.contains("://") {
        endpoint.to_string()
    } else if insecure {
        format!("http://{endpoint}")
    } else {
        format!("https://{endpoint}")
    };
    Some(url.trim_end_matches('/').to_ascii_lowercase())
}

/// A run's own repository (from Argo's `artifactRepositoryRef`), or the store of one
/// artifact (its own `s3:` location), as written into the run's status and each step's
/// spec: where, and which Secrets hold the keys, never the keys. The executor resolves it
/// under its [`RepositoryPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RepositoryLocation {
    /// A local directory (absolute).
    Local {
        /// The directory.
        path: PathBuf,
    },
    /// An S3-compatible bucket.
    #[serde(rename_all = "camelCase")]
    S3 {
        /// Endpoint (`host:port` or URL); AWS when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// Bucket.
        bucket: String,
        /// Region.
        region: String,
        /// Allow plain HTTP.
        #[serde(default)]
        insecure: bool,
        /// Key prefix.
        #[serde(default)]
        key_prefix: String,
        /// The Secrets holding its keys (boxed: most locations name none).
        #[serde(default, flatten)]
        secrets: Box<SecretKeys>,
    },
}

impl RepositoryLocation {
    /// Parses the YAML of an `artifact-repositories` ConfigMap value (Argo's
    /// `ArtifactRepository`: `s3: {...}`, or cox's `local: {path}` with an absolute path);
    /// Secrets are looked up in `namespace`. Key files are refused: a ConfigMap must not make
    /// the host read files as keys.
    pub fn parse(text: &str, namespace: &str) -> Result<Self, String> {
        let spec: RepositorySpec = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        match (&spec.local, &spec.s3) {
            (Some(l), None) if l.path.is_absolute() => Ok(RepositoryLocation::Local {
                path: l.path.clone(),
            }),
            (Some(l), None) => Err(format!(
                "local.path: must be absolute, not {}",
                l.path.display()
            )),
            (None, Some(s3)) => {
                if s3.access_key.is_some() || s3.secret_key.is_some() || s3.session_token.is_some()
                {
                    return Err("s3: accessKey, secretKey and sessionToken files are only accepted in the cox configuration file".into());
                }
                fn selector(s: &Option<SecretSelector>) -> Option<(&str, &str)> {
                    s.as_ref().map(|s| {
                        (
                            s.name.as_deref().unwrap_or_default(),
                            s.key.as_deref().unwrap_or_default(),
                        )
                    })
                }
                let secrets = SecretKeys::from_selectors(
                    namespace,
                    "s3",
                    selector(&s3.access_key_secret),
                    selector(&s3.secret_key_secret),
                    selector(&s3.session_token_secret),
                )?;
                let r = s3_repository(s3, Path::new("/"), &|_| None)?;
                Ok(RepositoryLocation::S3 {
                    endpoint: r.endpoint,
                    bucket: r.bucket,
                    region: r.region,
                    insecure: r.insecure,
                    key_prefix: r.key_prefix,
                    secrets: Box::new(secrets),
                })
            }
            _ => Err("give one of local and s3".into()),
        }
    }

    /// An artifact's own bucket, from its `s3:` location: `None` when that names only a
    /// key (in the run's repository). `sub` substitutes `{{...}}` in the texts; Secrets are
    /// looked up in `namespace`.
    pub fn of_artifact(
        s3: &cox_config::model::S3Artifact,
        namespace: &str,
        sub: &dyn Fn(&str) -> String,
    ) -> Result<Option<Self>, String> {
        let text = |v: &Option<String>| v.as_deref().map(sub).filter(|t| !t.trim().is_empty());
        let (endpoint, bucket) = (text(&s3.endpoint), text(&s3.bucket));
        fn selector(s: &Option<cox_config::model::SecretKeySelector>) -> Option<(&str, &str)> {
            s.as_ref()
                .map(|s| (s.name.as_deref().unwrap_or_default(), s.key.as_str()))
        }
        let secrets = SecretKeys::from_selectors(
            namespace,
            "s3",
            selector(&s3.access_key_secret),
            selector(&s3.secret_key_secret),
            selector(&s3.session_token_secret),
        )?;
        let Some(bucket) = bucket else {
            if endpoint.is_some() || !secrets.is_empty() {
                return Err("s3.bucket: required with s3.endpoint or s3.accessKeySecret".into());
            }
            return Ok(None);
        };
        Ok(Some(RepositoryLocation::S3 {
            endpoint,
            bucket,
            region: text(&s3.region).unwrap_or_else(|| "us-east-1".into()),
            insecure: s3.insecure.unwrap_or(false),
            key_prefix: String::new(),
            secrets: Box::new(secrets),
        }))
    }

    /// The repository, with `credentials` for a bucket.
    fn with_credentials(&self, credentials: Option<Credentials>) -> RepositoryConfig {
        match self {
            RepositoryLocation::Local { path } => RepositoryConfig::Local(path.clone()),
            RepositoryLocation::S3 {
                endpoint,
                bucket,
                region,
                insecure,
                key_prefix,
                secrets: _,
            } => RepositoryConfig::S3(S3Repository {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: region.clone(),
                insecure: *insecure,
                key_prefix: key_prefix.clone(),
                credentials,
            }),
        }
    }
}

/// [`RepositoryLocation`] in a shape every serde format takes, bincode included (no
/// flattened nor skipped fields): for records that keep where an artifact is (`#[serde(with
/// = "cox_worker::repo_config::plain_location")]` on an `Option<RepositoryLocation>`).
/// Secret references only, as the location itself.
pub mod plain_location {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{RepositoryLocation, SecretKeys, SecretRef};

    #[derive(Serialize, Deserialize)]
    enum Plain {
        Local {
            path: PathBuf,
        },
        S3 {
            endpoint: Option<String>,
            bucket: String,
            region: String,
            insecure: bool,
            key_prefix: String,
            /// `accessKeySecret`, `secretKeySecret`, `sessionTokenSecret`.
            secrets: Box<[Option<SecretRef>; 3]>,
        },
    }

    impl From<&RepositoryLocation> for Plain {
        fn from(location: &RepositoryLocation) -> Plain {
            match location.clone() {
                RepositoryLocation::Local { path } => Plain::Local { path },
                RepositoryLocation::S3 {
                    endpoint,
                    bucket,
                    region,
                    insecure,
                    key_prefix,
                    secrets,
                } => Plain::S3 {
                    endpoint,
                    bucket,
                    region,
                    insecure,
                    key_prefix,
                    secrets: Box::new([
                        secrets.access_key_secret,
                        secrets.secret_key_secret,
                        secrets.session_token_secret,
                    ]),
                },
            }
        }
    }

    impl From<Plain> for RepositoryLocation {
        fn from(plain: Plain) -> RepositoryLocation {
            match plain {
                Plain::Local { path } => RepositoryLocation::Local { path },
                Plain::S3 {
                    endpoint,
                    bucket,
                    region,
                    insecure,
                    key_prefix,
                    secrets,
                } => {
                    let [access_key_secret, secret_key_secret, session_token_secret] = *secrets;
                    RepositoryLocation::S3 {
                        endpoint,
                        bucket,
                        region,
                        insecure,
                        key_prefix,
                        secrets: Box::new(SecretKeys {
                            access_key_secret,
                            secret_key_secret,
                            session_token_secret,
                        }),
                    }
                }
            }
        }
    }

    /// Serializes an optional location in the plain shape.
    pub fn serialize<S: Serializer>(
        location: &Option<RepositoryLocation>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        location.as_ref().map(Plain::from).serialize(serializer)
    }

    /// Deserializes what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<RepositoryLocation>, D::Error> {
        Ok(Option::<Plain>::deserialize(deserializer)?.map(Into::into))
    }
}

/// What repositories a workflow may name, and which of them get the host's keys.
///
/// - A local directory must be absolute, without `..`, and resolve (symlinks followed, by
///   its longest existing ancestor before it is created and again after) inside
///   [`Self::local_root`]: the sandbox binds a repository writable, so any other directory
///   would hand the host's files to the steps.
/// - A bucket naming Secrets gets their keys (read at launch, never stored in the run).
///   One naming none gets the host's keys ([`Self::credentials`]) only when it is one of
///   [`Self::credential_targets`] (the configured bucket and the configuration file's
///   `credentialsAllowedFor`); any other bucket is refused, so a workflow cannot send the
///   host's keys to an endpoint of its choosing.
#[derive(Debug, Clone, Default)]
pub struct RepositoryPolicy {
    /// The directory every workflow-named local repository must lie in; `None`: none may.
    pub local_root: Option<PathBuf>,
    /// The host's keys: the configuration file's key files, else `AWS_*` of the
    /// environment.
    pub credentials: Option<Credentials>,
    /// Buckets the host's keys may be sent to.
    pub credential_targets: Vec<BucketTarget>,
}

impl RepositoryPolicy {
    /// The policy of a host whose configured repository is `configured`, with `allowed`
    /// more buckets for its keys, `env_credentials` when the configuration has no key
    /// files, and `local_root` for workflow-named directories.
    pub fn new(
        configured: &RepositoryConfig,
        allowed: &[BucketTarget],
        env_credentials: Option<Credentials>,
        local_root: PathBuf,
    ) -> Self {
        let mut credential_targets = allowed.to_vec();
        if let RepositoryConfig::S3(s3) = configured {
            credential_targets.push(BucketTarget {
                endpoint: s3.endpoint.clone(),
                bucket: s3.bucket.clone(),
                insecure: s3.insecure,
            });
        }
        RepositoryPolicy {
            local_root: Some(local_root),
            credentials: configured.credentials().cloned().or(env_credentials),
            credential_targets,
        }
    }

    /// Checks `location` without reading Secrets nor creating anything (at submission).
    pub fn admit(&self, location: &RepositoryLocation) -> Result<(), String> {
        match location {
            RepositoryLocation::Local { path } => self.local_path(path).map(drop),
            RepositoryLocation::S3 { .. } => self.keys_for(location, None, false).map(drop),
        }
    }

    /// The repository at `location`, with its keys (from `secrets`, or the host's), its
    /// local directory created and resolved.
    pub fn resolve(
        &self,
        location: &RepositoryLocation,
        secrets: Option<&dyn SecretSource>,
    ) -> Result<RepositoryConfig, String> {
        match location {
            RepositoryLocation::Local { path } => {
                let checked = self.local_path(path)?;
                std::fs::create_dir_all(&checked)
                    .map_err(|e| format!("cannot create {}: {e}", checked.display()))?;
                // Again once it exists: a link made meanwhile must not lead out either.
                let resolved = self.local_path(&checked)?;
                Ok(RepositoryConfig::Local(resolved))
            }
            RepositoryLocation::S3 { .. } => {
                let keys = self.keys_for(location, secrets, true)?;
                Ok(location.with_credentials(keys))
            }
        }
    }

    fn keys_for(
        &self,
        location: &RepositoryLocation,
        secrets: Option<&dyn SecretSource>,
        read: bool,
    ) -> Result<Option<Credentials>, String> {
        let RepositoryLocation::S3 {
            endpoint,
            bucket,
            insecure,
            secrets: named,
            ..
        } = location
        else {
            return Ok(None);
        };
        if !named.is_empty() {
            return if read {
                named.resolve(secrets)
            } else {
                Ok(None)
            };
        }
        if self
            .credential_targets
            .iter()
            .any(|t| t.same_as(endpoint.as_deref(), bucket, *insecure))
        {
            return Ok(self.credentials.clone());
        }
        let place = match endpoint_url(endpoint.as_deref(), *insecure) {
            Some(url) => format!("bucket '{bucket}' at {url}"),
            None => format!("AWS bucket '{bucket}'"),
        };
        Err(format!(
            "{place} is not the configured repository nor in credentialsAllowedFor of the cox configuration, so the host's credentials are not sent to it: give accessKeySecret and secretKeySecret"
        ))
    }

    /// `path` checked to lie in the local root: the canonical path of its longest existing
    /// ancestor, with the rest appended.
    fn local_path(&self, path: &Path) -> Result<PathBuf, String> {
        use std::path::Component;
        let root = self.local_root.as_deref().ok_or(
            "local repositories named by workflows are not allowed on this host (no local repository root)",
        )?;
        if !path.is_absolute() {
            return Err(format!(
                "local.path: must be absolute, not {}",
                path.display()
            ));
        }
        if path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(format!(
                "local.path: {} must not contain `.` or `..`",
                path.display()
            ));
        }
        std::fs::create_dir_all(root).map_err(|e| {
            format!(
                "cannot create the local repository root {}: {e}",
                root.display()
            )
        })?;
        let root = std::fs::canonicalize(root).map_err(|e| {
            format!(
                "cannot resolve the local repository root {}: {e}",
                root.display()
            )
        })?;
        let mut existing = path;
        let mut rest = Vec::new();
        let resolved = loop {
            match std::fs::canonicalize(existing) {
                Ok(found) => break rest.iter().rev().fold(found, |p: PathBuf, n| p.join(n)),
                Err(_) => match (existing.parent(), existing.file_name()) {
                    (Some(parent), Some(name)) => {
                        rest.push(name);
                        existing = parent;
                    }
                    _ => return Err(format!("local.path: cannot resolve {}", path.display())),
                },
            }
        };
        if !resolved.starts_with(&root) {
            return Err(format!(
                "local.path: {} resolves to {}, outside the local repository root {} (set localRepositoryRoot in the cox configuration)",
                path.display(),
                resolved.display(),
                root.display()
            ));
        }
        Ok(resolved)
    }
}

/// Where artifacts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryConfig {
    /// A local directory.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Repository),
}

/// Where a run's saved artifacts are read back from: the configured repository, and the
/// policy for the repositories and buckets workflows name. `cox cp` and `cox server`'s
/// artifact routes read through it, so both open exactly what the steps wrote to, with the
/// same keys.
#[derive(Debug, Clone)]
pub struct ArtifactSources {
    /// The configuration file's repository (`<home>/artifacts` without one).
    pub configured: RepositoryConfig,
    /// What repositories workflows may name, and which get the host's keys.
    pub policy: RepositoryPolicy,
}

impl ArtifactSources {
    /// The repository of a run (its Workflow object): its own
    /// (`status.artifactRepositoryRef`, under the policy, keys from `secrets`), else the
    /// configured one.
    pub fn for_run(
        &self,
        workflow: &serde_json::Value,
        secrets: &dyn SecretSource,
    ) -> Result<RepositoryConfig, String> {
        let own = workflow
            .pointer("/status/artifactRepositoryRef/artifactRepository")
            .and_then(|r| serde_json::from_value::<RepositoryLocation>(r.clone()).ok());
        match own {
            Some(location) => self
                .policy
                .resolve(&location, Some(secrets))
                .map_err(|e| format!("the run's artifactRepositoryRef: {e}")),
            None => Ok(self.configured.clone()),
        }
    }

    /// The repository one saved artifact of a run is in: its own bucket (`store`, resolved
    /// under the policy as the step that saved it was), else the run's repository.
    pub fn for_artifact(
        &self,
        workflow: &serde_json::Value,
        store: Option<&RepositoryLocation>,
        secrets: &dyn SecretSource,
    ) -> Result<RepositoryConfig, String> {
        match store {
            Some(location) => self.policy.resolve(location, Some(secrets)),
            None => self.for_run(workflow, secrets),
        }
    }
}

impl RepositoryConfig {
    /// Opens the repository.
    pub fn open(&self) -> cox_artifacts::Result<ArtifactRepository> {
        match self {
            RepositoryConfig::Local(dir) => ArtifactRepository::local(dir),
            RepositoryConfig::S3(s3) => s3.open(),
        }
    }

    /// The bucket's keys, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        match self {
            RepositoryConfig::Local(_) => None,
            RepositoryConfig::S3(s3) => s3.credentials.as_ref(),
        }
    }
}

/// Reads an environment variable (for tests: any lookup).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Keys from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (both or neither) and
/// `AWS_SESSION_TOKEN`.
pub fn env_credentials(env: EnvLookup<'_>) -> Result<Option<Credentials>, String> {
    let get = |n: &str| env(n).filter(|v| !v.is_empty());
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(a), Some(s)) => Ok(Some(Credentials {
            access_key_id: a,
            secret_access_key: s,
            session_token: get("AWS_SESSION_TOKEN"),
        })),
        (None, None) => Ok(None),
        _ => Err("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into()),
    }
}

impl CoxConfigFile {
    /// Parses the YAML text of a configuration file.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(CoxConfigFile::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The repository's `archiveLogs`: every step's log archived.
    pub fn archive_logs(&self) -> bool {
        self.artifact_repository
            .as_ref()
            .and_then(|r| r.archive_logs)
            .unwrap_or(false)
    }

    /// The rules for repositories that workflows name, on a host whose configured
    /// repository is `configured` (see [`RepositoryPolicy`]): `localRepositoryRoot`
    /// (relative to `base`), else the configured local directory, else `default_root`;
    /// the configured bucket and `credentialsAllowedFor` get the host's keys, which are the
    /// key files', else `env_credentials`.
    pub fn policy(
        &self,
        base: &Path,
        configured: &RepositoryConfig,
        env_credentials: Option<Credentials>,
        default_root: &Path,
    ) -> RepositoryPolicy {
        let root = match (&self.local_repository_root, configured) {
            (Some(root), _) => base.join(root),
            (None, RepositoryConfig::Local(dir)) => dir.clone(),
            (None, RepositoryConfig::S3(_)) => default_root.to_path_buf(),
        };
        RepositoryPolicy::new(
            configured,
            &self.credentials_allowed_for,
            env_credentials,
            root,
        )
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The repository: `default_dir` when none is configured; relative local paths and
    /// key files are taken from `base` (the configuration file's directory); credentials
    /// from the key files, else from `env`.
    pub fn repository(
        &self,
        base: &Path,
        default_dir: &Path,
        env: EnvLookup<'_>,
    ) -> Result<RepositoryConfig, String> {
        let Some(spec) = &self.artifact_repository else {
            return Ok(RepositoryConfig::Local(default_dir.to_path_buf()));
        };
        match (&spec.local, &spec.s3) {
            (Some(_), Some(_)) => {
                Err("artifactRepository: give one of local and s3, not both".into())
            }
            (None, None) => Ok(RepositoryConfig::Local(default_dir.to_path_buf())),
            (Some(l), None) => Ok(RepositoryConfig::Local(base.join(&l.path))),
            (None, Some(s3)) => s3_repository(s3, base, env).map(RepositoryConfig::S3),
        }
    }
}

fn read_key(base: &Path, file: &Path, what: &str) -> Result<String, String> {
    let path = base.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "artifactRepository.s3.{what}: cannot read {}: {e}",
            path.display()
        )
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!(
            "artifactRepository.s3.{what}: {} is empty",
            path.display()
        ));
    }
    Ok(key.to_owned())
}

fn s3_repository(s3: &S3Spec, base: &Path, env: EnvLookup<'_>) -> Result<S3Repository, String> {
    if s3.bucket.trim().is_empty() {
        return Err("artifactRepository.s3.bucket is empty".into());
    }
    if s3
        .key_format
        .as_deref()
        .is_some_and(|f| !f.trim().is_empty())
    {
        return Err("artifactRepository.s3.keyFormat is not supported by cox".into());
    }
    let credentials = match (&s3.access_key, &s3.secret_key) {
        (Some(a), Some(s)) => Some(Credentials {
            access_key_id: read_key(base, a, "accessKey")?,
            secret_access_key: read_key(base, s, "secretKey")?,
            session_token: match &s3.session_token {
                Some(t) => Some(read_key(base, t, "sessionToken")?),
                None => None,
            },
        }),
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                "artifactRepository.s3: give both accessKey and secretKey files, or neither".into(),
            );
        }
        (None, None) => env_credentials(env)?,
    };
    Ok(S3Repository {
        endpoint: s3.endpoint.clone().filter(|e| !e.trim().is_empty()),
        bucket: s3.bucket.clone(),
        region: s3
            .region
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "us-east-1".into()),
        insecure: s3.insecure,
        key_prefix: s3.key_prefix.clone().unwrap_or_default(),
        credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn default_and_local() {
        let base = Path::new("/cfg");
        let d = Path::new("/home/artifacts");
        let c = CoxConfigFile::parse("").unwrap();
        assert_eq!(
            c.repository(base, d, &no_env).unwrap(),
            RepositoryConfig::Local(d.into())
        );
        let c = CoxConfigFile::parse("artifactRepository:\n  local:\n    path: arts\n").unwrap();
        assert_eq!(
            c.repository(base, d, &no_env).unwrap(),
            RepositoryConfig::Local("/cfg/arts".into())
        );
    }

    #[test]
    fn s3_from_env_and_files() {
        let text = "artifactRepository:\n  s3:\n    endpoint: 127.0.0.1:9000\n    bucket: b\n    insecure: true\n    keyPrefix: p/\n    accessKeySecret: {name: s, key: a}\n    secretKeySecret: {name: s, key: b}\n";
        let c = CoxConfigFile::parse(text).unwrap();
        let env = |n: &str| match n {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("SECRET".to_string()),
            _ => None,
        };
        let RepositoryConfig::S3(r) = c.repository(Path::new("/"), Path::new("/d"), &env).unwrap()
        else {
            panic!("not s3")
        };
        assert_eq!(r.region, "us-east-1");
        assert_eq!(r.key_prefix, "p/");
        assert_eq!(r.credentials.as_ref().unwrap().secret_access_key, "SECRET");
        let dbg = format!("{r:?} {:?}", r.s3_config());
        assert!(!dbg.contains("SECRET") && !dbg.contains("AKID"), "{dbg}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ak"), "FILEAK\n").unwrap();
        std::fs::write(dir.path().join("sk"), "FILESK\n").unwrap();
        let text =
            "artifactRepository:\n  s3:\n    bucket: b\n    accessKey: ak\n    secretKey: sk\n";
        let c = CoxConfigFile::parse(text).unwrap();
        let RepositoryConfig::S3(r) = c.repository(dir.path(), Path::new("/d"), &env).unwrap()
        else {
            panic!("not s3")
        };
        let k = r.credentials.clone().unwrap();
        assert_eq!(
            (k.access_key_id.as_str(), k.secret_access_key.as_str()),
            ("FILEAK", "FILESK")
        );

        // The private file: 0600, read once, then gone.
        let f = dir.path().join(REPOSITORY_FILE);
        let stores = StepStores {
            repository: Some(r.clone()),
            artifacts: vec![r.clone()],
        };
        stores.write_private(&f).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(StepStores::take_private(&f).unwrap(), stores);
        assert!(!f.exists());
    }

    /// Secrets by `name/key`.
    struct Fixed(Vec<(&'static str, &'static str)>);

    impl SecretSource for Fixed {
        fn secret_value(&self, secret: &SecretRef) -> Result<String, String> {
            let wanted = format!("{}/{}", secret.name, secret.key);
            (self.0.iter().find(|(k, _)| *k == wanted))
                .map(|(_, v)| v.to_string())
                .ok_or_else(|| format!("{secret}: not found"))
        }
    }

    fn keys(a: &str, s: &str) -> Credentials {
        Credentials {
            access_key_id: a.into(),
            secret_access_key: s.into(),
            session_token: None,
        }
    }

    #[test]
    fn locations_from_config_maps() {
        let l = RepositoryLocation::parse("local:\n  path: /srv/arts\n", "ns").unwrap();
        assert_eq!(
            l,
            RepositoryLocation::Local {
                path: "/srv/arts".into()
            }
        );
        let s = RepositoryLocation::parse(
            "s3:\n  endpoint: minio:9000\n  bucket: b\n  insecure: true\n  accessKeySecret: {name: c, key: a}\n  secretKeySecret: {name: c, key: s}\n",
            "ns",
        )
        .unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["s3"]["bucket"], "b");
        assert_eq!(json["s3"]["region"], "us-east-1");
        assert_eq!(
            json["s3"]["accessKeySecret"],
            serde_json::json!({"namespace": "ns", "name": "c", "key": "a"})
        );
        assert_eq!(
            serde_json::from_value::<RepositoryLocation>(json).unwrap(),
            s
        );
        for bad in [
            "local:\n  path: rel\n",
            "s3:\n  bucket: b\n  accessKey: /etc/passwd\n  secretKey: /etc/passwd\n",
            "s3:\n  bucket: b\n  accessKeySecret: {name: c, key: a}\n",
            "s3:\n  bucket: b\n  accessKeySecret: {name: c}\n  secretKeySecret: {name: c, key: s}\n",
            "gcs: {bucket: b}\n",
            "{}",
        ] {
            assert!(RepositoryLocation::parse(bad, "ns").is_err(), "{bad}");
        }
    }

    #[test]
    fn local_directories_must_resolve_under_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let policy = RepositoryPolicy {
            local_root: Some(root.clone()),
            ..RepositoryPolicy::default()
        };
        let local = |p: &Path| RepositoryLocation::Local { path: p.into() };
        // Inside: created, canonical.
        let inside = root.join("team/a");
        policy.admit(&local(&inside)).unwrap();
        let RepositoryConfig::Local(dir) = policy.resolve(&local(&inside), None).unwrap() else {
            panic!("not local")
        };
        assert_eq!(dir, std::fs::canonicalize(&inside).unwrap());
        // The host's root, another directory, `..`, and a link leading out: refused, and
        // nothing created outside.
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        for (path, why) in [
            (PathBuf::from("/"), "outside the local repository root"),
            (PathBuf::from("/etc"), "outside the local repository root"),
            (root.join("../outside"), "must not contain `.` or `..`"),
            (root.join("link"), "outside the local repository root"),
            (
                root.join("link/new/deeper"),
                "outside the local repository root",
            ),
        ] {
            let e = policy.admit(&local(&path)).unwrap_err();
            assert!(e.contains(why), "{}: {e}", path.display());
            let e = policy.resolve(&local(&path), None).unwrap_err();
            assert!(e.contains(why), "{}: {e}", path.display());
        }
        assert!(!outside.join("new").exists());
        // No root: no workflow-named directory at all.
        let e = RepositoryPolicy::default()
            .admit(&local(&inside))
            .unwrap_err();
        assert!(e.contains("not allowed"), "{e}");
    }

    #[test]
    fn host_keys_go_only_to_the_configured_or_allowed_buckets() {
        let configured = RepositoryConfig::S3(S3Repository {
            endpoint: Some("127.0.0.1:9000".into()),
            bucket: "mine".into(),
            region: "us-east-1".into(),
            insecure: true,
            key_prefix: String::new(),
            credentials: Some(keys("HOSTAK", "HOSTSK")),
        });
        let allowed = [BucketTarget {
            endpoint: Some("https://s3.example.com/".into()),
            bucket: "shared".into(),
            insecure: false,
        }];
        let policy = RepositoryPolicy::new(&configured, &allowed, None, "/r".into());
        let bucket = |endpoint: Option<&str>, bucket: &str, insecure: bool, secrets| {
            RepositoryLocation::S3 {
                endpoint: endpoint.map(str::to_string),
                bucket: bucket.into(),
                region: "us-east-1".into(),
                insecure,
                key_prefix: "other/".into(),
                secrets: Box::new(secrets),
            }
        };
        let host = Some(keys("HOSTAK", "HOSTSK"));
        // The configured bucket (any key prefix, the same URL however written) and the
        // allowed one: the host's keys.
        for location in [
            bucket(Some("127.0.0.1:9000"), "mine", true, SecretKeys::default()),
            bucket(
                Some("HTTP://127.0.0.1:9000/"),
                "mine",
                false,
                SecretKeys::default(),
            ),
            bucket(
                Some("s3.example.com"),
                "shared",
                false,
                SecretKeys::default(),
            ),
        ] {
            policy.admit(&location).unwrap();
            let resolved = policy.resolve(&location, None).unwrap();
            assert_eq!(resolved.credentials().cloned(), host, "{location:?}");
        }
        // Another bucket, another endpoint, the same host over https, AWS: refused.
        for location in [
            bucket(
                Some("127.0.0.1:9000"),
                "theirs",
                true,
                SecretKeys::default(),
            ),
            bucket(
                Some("evil.example:9000"),
                "mine",
                true,
                SecretKeys::default(),
            ),
            bucket(Some("127.0.0.1:9000"), "mine", false, SecretKeys::default()),
            bucket(None, "mine", false, SecretKeys::default()),
        ] {
            let e = policy.admit(&location).unwrap_err();
            assert!(
                e.contains("give accessKeySecret and secretKeySecret"),
                "{e}"
            );
            let e = policy.resolve(&location, None).unwrap_err();
            assert!(!e.contains("HOST"), "{e}");
        }
        // Secrets named: their keys, wherever the bucket is.
        let named = SecretKeys::from_selectors(
            "ns",
            "s3",
            Some(("creds", "a")),
            Some(("creds", "s")),
            None,
        )
        .unwrap();
        let theirs = bucket(Some("evil.example:9000"), "x", true, named);
        policy.admit(&theirs).unwrap();
        let secrets = Fixed(vec![("creds/a", "THEIRAK"), ("creds/s", "THEIRSK")]);
        let resolved = policy.resolve(&theirs, Some(&secrets)).unwrap();
        assert_eq!(
            resolved.credentials().cloned(),
            Some(keys("THEIRAK", "THEIRSK"))
        );
        let e = policy.resolve(&theirs, Some(&Fixed(vec![]))).unwrap_err();
        assert!(e.contains("secret 'creds' key 'a'"), "{e}");
        assert!(policy.resolve(&theirs, None).is_err());
        // Environment keys alone (local configured repository): no bucket gets them.
        let local = RepositoryPolicy::new(
            &RepositoryConfig::Local("/a".into()),
            &[],
            Some(keys("ENVAK", "ENVSK")),
            "/a".into(),
        );
        let e = local
            .admit(&bucket(
                Some("127.0.0.1:9000"),
                "mine",
                true,
                SecretKeys::default(),
            ))
            .unwrap_err();
        assert!(e.contains("is not the configured repository"), "{e}");
    }

    #[test]
    fn artifact_locations() {
        let s3: cox_config::model::S3Artifact = serde_json::from_value(serde_json::json!({
            "endpoint": "{{inputs.parameters.ep}}", "bucket": "b", "key": "k", "insecure": true,
            "accessKeySecret": {"name": "c", "key": "a"}, "secretKeySecret": {"name": "c", "key": "s"}
        }))
        .unwrap();
        let sub = |t: &str| t.replace("{{inputs.parameters.ep}}", "h:1");
        let Some(RepositoryLocation::S3 {
            endpoint, secrets, ..
        }) = RepositoryLocation::of_artifact(&s3, "ns", &sub).unwrap()
        else {
            panic!("no store")
        };
        assert_eq!(endpoint.as_deref(), Some("h:1"));
        assert_eq!(secrets.access_key_secret.unwrap().namespace, "ns");
        let key_only: cox_config::model::S3Artifact =
            serde_json::from_value(serde_json::json!({"key": "k"})).unwrap();
        assert_eq!(
            RepositoryLocation::of_artifact(&key_only, "ns", &sub).unwrap(),
            None
        );
        let no_bucket: cox_config::model::S3Artifact =
            serde_json::from_value(serde_json::json!({"endpoint": "h:1", "key": "k"})).unwrap();
        assert!(RepositoryLocation::of_artifact(&no_bucket, "ns", &sub).is_err());
    }

    #[test]
    fn a_saved_artifacts_bucket_goes_through_json_without_keys() {
        let s3: cox_config::model::S3Artifact = serde_json::from_value(serde_json::json!({
            "endpoint": "h:1", "bucket": "b", "insecure": true,
            "accessKeySecret": {"name": "c", "key": "a"}, "secretKeySecret": {"name": "c", "key": "s"}
        }))
        .unwrap();
        let store = RepositoryLocation::of_artifact(&s3, "ns", &|t| t.to_string()).unwrap();
        assert!(store.is_some());
        for store in [
            store,
            None,
            Some(RepositoryLocation::Local { path: "/r".into() }),
        ] {
            let saved = crate::step::SavedArtifact {
                name: "out".into(),
                path: "/tmp/out".into(),
                key: "k".into(),
                archive: crate::step::ArchiveKind::TarGz,
                size: 1,
                sha256: "00".into(),
                store,
            };
            let text = serde_json::to_string(&saved).unwrap();
            assert_eq!(
                serde_json::from_str::<crate::step::SavedArtifact>(&text).unwrap(),
                saved
            );
        }
        // An outcome written before artifacts recorded their bucket: the run's repository.
        let old = r#"{"name":"o","path":"/o","key":"k","archive":"None","size":1,"sha256":"00"}"#;
        let saved: crate::step::SavedArtifact = serde_json::from_str(old).unwrap();
        assert_eq!(saved.store, None);
    }

    #[test]
    fn refusals() {
        let b = Path::new("/");
        for text in [
            "artifactRepository:\n  s3:\n    bucket: b\n    accessKey: a\n",
            "artifactRepository:\n  s3:\n    bucket: b\n  local:\n    path: x\n",
            "artifactRepository:\n  s3:\n    bucket: b\n    keyFormat: '{{workflow.name}}'\n",
        ] {
            let c = CoxConfigFile::parse(text).unwrap();
            assert!(c.repository(b, b, &no_env).is_err(), "{text}");
        }
        assert!(CoxConfigFile::parse("artifactRepository:\n  s3:\n    bukket: b\n").is_err());
        assert!(CoxConfigFile::parse("bogus: 1\n").is_err());
    }

    #[test]
    fn parallelism_limits_are_read_and_checked() {
        let c = CoxConfigFile::parse("parallelism: 4\nnamespaceParallelism: 2\n").unwrap();
        assert_eq!((c.parallelism, c.namespace_parallelism), (Some(4), Some(2)));
        let c = CoxConfigFile::parse("").unwrap();
        assert_eq!((c.parallelism, c.namespace_parallelism), (None, None));
        assert!(CoxConfigFile::parse("parallelism: -1\n").is_err());
    }
}
