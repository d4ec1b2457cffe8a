//! The contract between the scheduler and whatever runs a step: [`StepSpec`] in, [`StepOutcome`]
//! out. Everything in a spec is resolved (no `{{...}}` left); the same spec runs as a local
//! sandboxed process or, later, a Kubernetes pod, through the same in-step wrapper.

use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// One attempt of one step, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    /// The workflow run's name.
    pub run: String,
    /// The node id in the run's status.
    pub node_id: String,
    /// 0 for the first attempt, 1 for the first retry, ...
    pub attempt: u32,
    /// The container image, which selects an entry of the image table when `command` is empty.
    pub image: String,
    /// `container.command` (empty: the image's entrypoint).
    pub command: Vec<String>,
    /// `container.args`.
    pub args: Vec<String>,
    /// For script templates: the source, written to a file whose path is appended to the command.
    pub script: Option<String>,
    /// Environment variables from `container.env` (resolved values only).
    pub env: Vec<(String, String)>,
    /// `container.workingDir`.
    pub working_dir: Option<String>,
    /// Artifacts to place before the command runs.
    pub input_artifacts: Vec<InputArtifact>,
    /// Parameters read from files after the command ends (`valueFrom.path`).
    pub output_parameters: Vec<OutputParameter>,
    /// Artifacts saved after the command ends.
    pub output_artifacts: Vec<OutputArtifact>,
    /// Volumes mounted into the step.
    pub volumes: Vec<VolumeMount>,
    /// Kill the step after this many seconds (template `activeDeadlineSeconds` or `timeout`).
    pub deadline_seconds: Option<u64>,
    /// Whether `outputs.result` is wanted (script templates, and containers whose stdout is read).
    pub capture_result: bool,
    /// Argo's `archiveLogs`: save the step's log as the artifact `main-logs`.
    #[serde(default)]
    pub archive_logs: bool,
    /// Template `memoize`, resolved: the outcome may come from, and goes to, a step cache.
    #[serde(default)]
    pub memoize: Option<Memoize>,
    /// The run's own repository (Argo's `artifactRepositoryRef`), without keys; `None`: the
    /// executor's configured one.
    #[serde(default)]
    pub repository: Option<crate::repo_config::RepositoryLocation>,
}

impl StepSpec {
    /// The artifacts' own buckets, each once, with the name of the first artifact in it.
    pub fn artifact_stores(&self) -> Vec<(&str, &crate::repo_config::RepositoryLocation)> {
        let mut stores: Vec<(&str, &crate::repo_config::RepositoryLocation)> = Vec::new();
        let inputs = (self.input_artifacts.iter()).map(|a| (a.name.as_str(), a.store.as_ref()));
        let outputs = (self.output_artifacts.iter()).map(|a| (a.name.as_str(), a.store.as_ref()));
        for (name, store) in inputs.chain(outputs) {
            if let Some(store) = store
                && !stores.iter().any(|(_, s)| *s == store)
            {
                stores.push((name, store));
            }
        }
        stores
    }
}

/// A step's memoization (Argo's template `memoize`), resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memoize {
    /// The workflow's namespace: caches are per namespace, as Argo's ConfigMaps are.
    pub namespace: String,
    /// The cache's name (`cache.configMap.name`).
    pub cache: String,
    /// The entry's key (`key`, substituted).
    pub key: String,
    /// Entries older than this are not used (`maxAge`); `None`: any age.
    pub max_age_seconds: Option<u64>,
}

/// An input artifact and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputArtifact {
    /// The artifact's name.
    pub name: String,
    /// Where it appears inside the step.
    pub path: String,
    /// Where its bytes come from.
    pub source: ArtifactSource,
    /// File mode to set, if given.
    pub mode: Option<u32>,
    /// Argo's `subPath`: only this relative path inside the artifact is placed.
    #[serde(default)]
    pub sub_path: Option<String>,
    /// Argo's `optional`: an object that is not found is skipped (nothing placed).
    #[serde(default)]
    pub optional: bool,
    /// Its own bucket (`s3:` with an endpoint or bucket), for [`ArtifactSource::Key`] and
    /// [`ArtifactSource::Stored`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: ArtifactStore,
}

/// The origin of an input artifact's bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ArtifactSource {
    /// Inline text (`raw.data`).
    Raw(String),
    /// An object in the run's artifact repository.
    Stored {
        /// Object key.
        key: String,
        /// How it was archived when saved.
        archive: ArchiveKind,
        /// Size and SHA-256 recorded when saved, checked when loaded.
        size: Option<u64>,
        /// Hex SHA-256 recorded when saved.
        sha256: Option<String>,
    },
    /// An object named by its key alone (an explicit `s3:` location, Argo's key-only
    /// artifacts): no size or digest is known; a gzip'd tar or a zip (told by its first
    /// bytes) is unpacked, anything else placed as is; a key with no object but objects
    /// under `key/` is a directory.
    Key(String),
    /// An HTTP(S) URL to download.
    Http(String),
    /// Optional and absent: nothing is placed.
    Absent,
}

/// Where one artifact is kept when it has its own `s3:` location (endpoint and bucket, or
/// Secrets): that bucket instead of the run's repository.
pub type ArtifactStore = Option<crate::repo_config::RepositoryLocation>;

/// Archive strategy of a stored artifact (Argo's `archive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ArchiveKind {
    /// tar + gzip, Argo's default.
    #[default]
    TarGz,
    /// Stored as is.
    None,
    /// zip.
    Zip,
}

/// A parameter read from a file after the command ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputParameter {
    /// The parameter's name.
    pub name: String,
    /// The file to read.
    pub path: String,
    /// Used when the file is missing (`valueFrom.default`); without it a missing file fails the step.
    pub default: Option<String>,
}

/// An artifact saved after the command ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputArtifact {
    /// The artifact's name.
    pub name: String,
    /// The file or directory inside the step.
    pub path: String,
    /// Object key to save it under.
    pub key: String,
    /// Archive strategy.
    pub archive: ArchiveKind,
    /// Missing is not an error.
    pub optional: bool,
    /// Its own bucket (`s3:` with an endpoint or bucket) instead of the run's repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: ArtifactStore,
}

/// A volume mounted into a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// Directory on the host: absolute for a hostPath; relative paths name the run's own
    /// volumes (emptyDir, volume claims) under the run's data directory.
    pub host: PathBuf,
    /// Where it appears inside the step.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// How an attempt ended, as Argo classes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepPhase {
    /// Exit code 0 and every output collected.
    Succeeded,
    /// The program failed (non-zero exit, missing output, deadline).
    Failed,
    /// The step could not be run or its outputs not saved (infrastructure).
    Error,
}

/// What the scheduler learns from one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// Succeeded, Failed or Error.
    pub phase: StepPhase,
    /// The main program's exit code, when it ran.
    pub exit_code: Option<i32>,
    /// Argo's message: empty on success, `Error (exit code 1)`, `Step exceeded its deadline`, ...
    pub message: String,
    /// `outputs.result`: stdout, last 256 KiB, one trailing newline trimmed.
    pub result: Option<String>,
    /// Output parameters read from files, in declaration order.
    pub parameters: Vec<(String, String)>,
    /// Output artifacts saved.
    pub artifacts: Vec<SavedArtifact>,
    /// When the program started, RFC 3339.
    pub started_at: Option<String>,
    /// When the program ended, RFC 3339.
    pub finished_at: Option<String>,
    /// The outcome is a memoized step's cached one; the step did not run.
    #[serde(default)]
    pub cache_hit: bool,
}

/// An output artifact that was saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedArtifact {
    /// The artifact's name.
    pub name: String,
    /// The path it was read from inside the step.
    pub path: String,
    /// Object key in its repository ([`Self::store`]).
    pub key: String,
    /// Archive strategy used.
    pub archive: ArchiveKind,
    /// Stored size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// The bucket it was saved to when it has its own (`s3:` with an endpoint or bucket);
    /// `None`: the run's repository. Secret references only, never keys.
    #[serde(default, with = "crate::repo_config::plain_location")]
    pub store: ArtifactStore,
}

impl StepOutcome {
    /// An infrastructure error before the program could run.
    pub fn error(message: impl Into<String>) -> Self {
        StepOutcome {
            phase: StepPhase::Error,
            exit_code: None,
            message: message.into(),
            result: None,
            parameters: Vec::new(),
            artifacts: Vec::new(),
            started_at: None,
            finished_at: None,
            cache_hit: false,
        }
    }
}

/// A boxed future, so executors can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs steps somewhere: host processes, Kubernetes pods, or a scripted fake in tests.
pub trait Executor: Send + Sync + 'static {
    /// Run one attempt to its end. Cancelling `cancel` stops the step (SIGTERM, grace, SIGKILL)
    /// and the outcome then says so. Never panics on a step's failure: failures are outcomes.
    fn run(
        &self,
        spec: StepSpec,
        cancel: tokio_util::sync::CancellationToken,
    ) -> BoxFuture<'_, StepOutcome>;

    /// Where the attempt's log is kept (JSON lines, see [`crate::logs`]), if it is a file.
    fn log_path(&self, run: &str, node_id: &str, attempt: u32) -> Option<PathBuf>;

    /// Takes over an attempt launched by an earlier process (which crashed or stopped) and
    /// waits for it like [`Executor::run`]: its outcome when it ended meanwhile, its end when
    /// it still runs, `None` when nothing of it is left (the caller then counts it lost, an
    /// infrastructure error). The default: nothing survives its launcher.
    fn adopt(
        &self,
        run: String,
        node_id: String,
        attempt: u32,
        cancel: tokio_util::sync::CancellationToken,
    ) -> BoxFuture<'_, Option<StepOutcome>> {
        let _ = (run, node_id, attempt, cancel);
        Box::pin(async { None })
    }

    /// Whether an attempt launched by an earlier process may have started its program; one
    /// that cannot have (that process died before the step got going) is launched again, as
    /// the same attempt, rather than counted lost. The default: it may have.
    fn may_have_started(&self, run: &str, node_id: &str, attempt: u32) -> bool {
        let _ = (run, node_id, attempt);
        true
    }

    /// Deletes artifacts from the repository the steps save to (Argo's `artifactGC`): each
    /// key's object, or the objects under it, in the run's own `repository` when it has
    /// one. An executor without a repository says so.
    fn delete_artifacts(
        &self,
        repository: Option<crate::repo_config::RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<(), String>> {
        let _ = (repository, keys);
        Box::pin(async { Err("this executor keeps no artifacts to delete".to_string()) })
    }

    /// Whether a workflow may use the repository at `location` (a run's
    /// `artifactRepositoryRef`), checked at submission so that a refusal is an error there
    /// and not in every step; the error says why. Executors that store artifacts check
    /// again when they open it. The default (an executor keeping no artifacts): allowed.
    fn check_repository(
        &self,
        location: &crate::repo_config::RepositoryLocation,
    ) -> Result<(), String> {
        let _ = location;
        Ok(())
    }

    /// Where the values of Secrets named by repositories come from (the scheduler's store),
    /// given once, when the engine opens. The default: Secrets are not used.
    fn use_secrets(&self, secrets: std::sync::Arc<dyn crate::repo_config::SecretSource>) {
        let _ = secrets;
    }

    /// Of `keys`, those with no object (nor objects under them) in the repository the steps
    /// save to: a memoized outcome whose artifacts `artifactGC` deleted is not reused. An
    /// executor without a repository has nothing to check: none is missing.
    fn missing_artifacts(
        &self,
        repository: Option<crate::repo_config::RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<String>, String>> {
        let _ = (repository, keys);
        Box::pin(async { Ok(Vec::new()) })
    }
}
