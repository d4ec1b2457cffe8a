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
//!     # accessKeySecret / secretKeySecret (Kubernetes secrets) are accepted and ignored
//! ```
//!
//! or `local: {path: DIR}` (relative to the configuration file's directory). Without
//! `accessKey`/`secretKey`, credentials come from the environment of `cox run`:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`.
//!
//! # Credentials and the wrapper
//!
//! Credentials never go into the step input nor into any process environment (steps run with
//! a cleared environment, and a wrapper's environment would be inherited by the program and
//! readable in `/proc/<pid>/environ`). The executor writes the resolved S3 settings, keys
//! included, to [`REPOSITORY_FILE`] in the step directory, created with mode 0600; the
//! wrapper reads it and deletes it before it stages inputs or starts the program, keeping
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

    /// Writes the settings, keys included, to `path`, created with mode 0600 (an existing
    /// file is replaced).
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

/// Where artifacts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryConfig {
    /// A local directory.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Repository),
}

/// Reads an environment variable (for tests: any lookup).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

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
        (None, None) => {
            let get = |n: &str| env(n).filter(|v| !v.is_empty());
            match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                (Some(a), Some(s)) => Some(Credentials {
                    access_key_id: a,
                    secret_access_key: s,
                    session_token: get("AWS_SESSION_TOKEN"),
                }),
                (None, None) => None,
                _ => {
                    return Err(
                        "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".into(),
                    );
                }
            }
        }
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
        r.write_private(&f).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(S3Repository::take_private(&f).unwrap(), r);
        assert!(!f.exists());
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
