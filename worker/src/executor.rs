//! [`LocalExecutor`]: the [`Executor`] that runs steps as host processes, in a bubblewrap
//! sandbox or plain (`--no-sandbox`), through the in-step wrapper ([`crate::wrapper`]).
//!
//! # Step directory
//!
//! Each attempt owns `<data>/runs/<run>/<node_id>-<attempt>/` (a previous directory of the
//! same attempt is removed first):
//!
//! ```text
//! work/          the working directory (see crate::spec)
//! log.jsonl      stdout and stderr of the wrapper and the program (see crate::logs)
//! script         a script template's source
//! bin/           the image's aliases, first on PATH (sandboxed; without the sandbox
//!                they are in the data directory's `aliases/`, shared)
//! outcome.json   the StepOutcome the wrapper wrote, when it ran as a process of its own
//! process.json   the process spec the supervisor launches (mode 0600; see crate::local::Detached)
//! supervisor.lock  locked by the step's supervisor (or the step host) while it runs the
//!                step: its pid (`PID host` for the host), then its messages
//! stop.request   a hosted step only: asks the step host to stop it (see crate::host)
//! exit.json      how the process ended (and the StepOutcome when the supervisor ran the
//!                wrapper itself), recorded by the supervisor
//! main.log       with archiveLogs: the log's text while it is uploaded
//! repository.json  S3 settings and keys, mode 0600, only with an S3 repository; the
//!                wrapper deletes it before the program starts (see crate::repo_config)
//! ```
//!
//! # Sandbox
//!
//! Besides what [`crate::local`] sets up (read-only host root, private `/tmp`, the working
//! directory), a sandboxed step sees:
//! - the step directory, writable, at [`STEP_MOUNT`] (`/.cox/step`);
//! - the `cox` binary, read-only, at [`COX_MOUNT`] (`/.cox/cox`);
//! - the artifact repository directory, writable, at its own host path (only with a local
//!   repository; with [`LocalExecutorConfig::s3`] the wrapper talks to the bucket over the
//!   host's network);
//! - the spec's volumes;
//! - the directory of each artifact or output parameter path, or its deepest ancestor that
//!   exists on the host (`/` for `/result.txt` or `/argo/inputs/x`, `/mnt` for
//!   `/mnt/out/x`, `/usr/local`), opened: a private tmpfs showing the host's entries
//!   again, read-only ([`ProcessSpec::open_dirs`]), so the step can create what a
//!   container's writable root would let it. When a path lies right in `/` and the
//!   template names no `workingDir`, the step runs in `/`, as in a container whose image
//!   sets no working directory (Argo's examples write `result.txt` relative to it and
//!   declare `/result.txt`).
//!
//! The wrapper reads the spec and the image table on its standard input (see
//! [`crate::wrapper::StepInput`]). Without the sandbox it is launched as
//! `cox __step <host step dir> ...` in `work/`; paths in the spec are host paths
//! (`/tmp/out.txt` is the host's `/tmp`), and volumes outside the working directory are
//! refused (see [`crate::local`]). The step's supervisor runs such a launch itself rather
//! than as a process of its own whenever it can: always without the sandbox, and
//! sandboxed for a step with no artifacts and no output parameters, whose program
//! bubblewrap then runs directly (see [`crate::wrapper::InProcess`]).
//!
//! # Ending
//!
//! The step ends when the program does, or is stopped (SIGTERM to every process of the
//! step, then SIGKILL after [`LocalExecutorConfig::grace`]) when its deadline passes
//! (`Failed`, [`DEADLINE_MESSAGE`]) or the cancel token fires (`Failed`, [`STOPPED_MESSAGE`]).
//! A wrapper that ends without writing an outcome gives `Error`.
//!
//! A step with no files to place or collect (no artifacts, no output parameters) runs under
//! the executor's step host ([`crate::host`]), one `cox __host` process for many steps;
//! any other runs under a supervisor of its own ([`crate::local::Detached`]). Either
//! outlives this process: a later process takes the attempt over with [`Executor::adopt`] (its
//! recorded end, or its end awaited; stopping it still stops the whole step). A launch of
//! an attempt whose supervisor is alive is refused, never made twice.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::host::StepHost;
use crate::images::ImageTable;
use crate::local::{Detached, LOCK_FILE, PROCESS_FILE};
use crate::repo_config::{
    REPOSITORY_FILE, RepositoryConfig, RepositoryLocation, RepositoryPolicy, S3Repository,
    SecretSource, StepStores,
};
use crate::spec::{Mount, ProcessSpec};
use crate::step::{
    ArchiveKind, BoxFuture, Executor, SavedArtifact, StepOutcome, StepPhase, StepSpec,
};
use crate::wrapper::{ALIASES_ARG, InProcess, OUTCOME_FILE, REPOSITORY_ARG, StepInput};

/// Where the step directory appears in the sandbox. Under the sandbox's own `/tmp`, so the
/// host root stays one read-only bind (a mount point missing on the host, such as `/.cox`,
/// makes bubblewrap rebuild the root entry by entry, several times slower per step).
pub const STEP_MOUNT: &str = "/tmp/.cox/step";
/// Where the `cox` binary appears in the sandbox.
pub const COX_MOUNT: &str = "/tmp/.cox/cox";
/// Environment variable of `cox run`/`cox server` with limits for unpacking input archives,
/// `ENTRIES,ENTRY_BYTES,TOTAL_BYTES` (default: the artifacts crate's, 1,000,000 entries,
/// 64 GiB an entry, 128 GiB in all); an invalid value makes every step `Error`, naming it.
pub const UNPACK_LIMITS_ENV: &str = "COX_UNPACK_LIMITS";
/// The step log's text, written for `archiveLogs`, in the step directory.
pub const LOG_TEXT_FILE: &str = "main.log";
/// In the data directory: the image aliases of steps run without the sandbox, one directory
/// of links per set of aliases, shared by the steps (a sandboxed step has its own `bin/`).
pub const ALIASES_DIR: &str = "aliases";
/// In the data directory: the step hosts' own messages (see [`crate::host`]).
pub const HOST_MESSAGES_FILE: &str = "step-host.log";
/// The wrapper's hidden subcommand.
pub const STEP_SUBCOMMAND: &str = "__step";
/// Node message when `deadline_seconds` passed (Argo's wording).
pub const DEADLINE_MESSAGE: &str = "Step exceeded its deadline";
/// Node message when the cancel token fired.
pub const STOPPED_MESSAGE: &str = "Stopped";

/// How a [`LocalExecutor`] runs steps.
#[derive(Debug, Clone)]
pub struct LocalExecutorConfig {
    /// Data directory; steps live under `<data_dir>/runs/<run>/<node_id>-<attempt>/`.
    pub data_dir: PathBuf,
    /// The local artifact repository's directory (created when missing); unused when
    /// [`Self::s3`] is set.
    pub artifact_dir: PathBuf,
    /// An S3-compatible artifact repository instead of the local directory.
    pub s3: Option<S3Repository>,
    /// What repositories workflows may name (`artifactRepositoryRef`, artifacts' own `s3:`
    /// locations) and which get the host's keys. [`Self::set_repository`] sets one that
    /// allows the configured bucket and local directories under [`Self::artifact_dir`].
    pub policy: RepositoryPolicy,
    /// The repository's `archiveLogs`: archive every step's log, whatever the step's
    /// own setting (Argo: the repository's `true` wins over templates and the workflow).
    pub archive_logs: bool,
    /// What images mean on this host.
    pub images: ImageTable,
    /// Run steps in the bubblewrap sandbox (`false`: `--no-sandbox`).
    pub sandbox: bool,
    /// The binary that has the `__step` and `argosay` subcommands (normally `cox` itself).
    pub cox_binary: PathBuf,
    /// Time between SIGTERM and SIGKILL when a step is stopped.
    pub grace: Duration,
}

impl LocalExecutorConfig {
    /// Sandboxed, built-in image table, this executable as the `cox` binary, 10 s grace.
    pub fn new(data_dir: impl Into<PathBuf>, artifact_dir: impl Into<PathBuf>) -> Self {
        LocalExecutorConfig {
            data_dir: data_dir.into(),
            artifact_dir: artifact_dir.into(),
            s3: None,
            policy: RepositoryPolicy::default(),
            archive_logs: false,
            images: ImageTable::builtin(),
            sandbox: true,
            cox_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cox")),
            grace: Duration::from_secs(10),
        }
    }

    /// Uses `repository` for artifacts (a local directory or a bucket), with a policy
    /// that gives the host's keys to that bucket only and allows workflow-named local
    /// directories under [`Self::artifact_dir`] (replace [`Self::policy`] to change it).
    pub fn set_repository(&mut self, repository: RepositoryConfig) {
        self.policy = RepositoryPolicy::new(&repository, &[], None, PathBuf::new());
        match repository {
            RepositoryConfig::Local(dir) => {
                self.artifact_dir = dir;
                self.s3 = None;
            }
            RepositoryConfig::S3(s3) => self.s3 = Some(s3),
        }
        self.policy.local_root = Some(self.artifact_dir.clone());
    }

    /// The repository of a step or run: its own `location` (resolved under
    /// [`Self::policy`], keys from `secrets`), else the configured one.
    pub fn repository_for(
        &self,
        location: Option<&RepositoryLocation>,
        secrets: Option<&dyn SecretSource>,
    ) -> Result<RepositoryConfig, String> {
        match (location, &self.s3) {
            (Some(l), _) => self.policy.resolve(l, secrets),
            (None, Some(s3)) => Ok(RepositoryConfig::S3(s3.clone())),
            (None, None) => Ok(RepositoryConfig::Local(self.artifact_dir.clone())),
        }
    }
}

/// Runs steps as local processes (see the module doc).
#[derive(Clone)]
pub struct LocalExecutor {
    config: Arc<LocalExecutorConfig>,
    /// Runs the steps that have no files to place or collect.
    host: Arc<StepHost>,
    /// Stored Secrets, for buckets that name them (set once by the engine).
    secrets: Arc<std::sync::OnceLock<Arc<dyn SecretSource>>>,
    /// Local repository directories and the shared alias directory as given, with their
    /// canonical paths: resolved once rather than per step (a `readlink` per component).
    canonical: Arc<std::sync::Mutex<HashMap<PathBuf, PathBuf>>>,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a step was stopped.
#[derive(Clone, Copy)]
enum Stop {
    Deadline,
    Cancelled,
}

impl LocalExecutor {
    /// An executor with `config`.
    pub fn new(config: LocalExecutorConfig) -> Self {
        LocalExecutor {
            host: Arc::new(StepHost::new(
                config.cox_binary.clone(),
                config.data_dir.join(HOST_MESSAGES_FILE),
            )),
            config: Arc::new(config),
            secrets: Arc::default(),
            canonical: Arc::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &LocalExecutorConfig {
        &self.config
    }

    /// The host directory of one attempt.
    pub fn step_dir(&self, run: &str, node_id: &str, attempt: u32) -> PathBuf {
        self.config
            .data_dir
            .join("runs")
            .join(path_safe(run))
            .join(format!("{}-{attempt}", path_safe(node_id)))
    }

    async fn run_step(&self, spec: StepSpec, cancel: CancellationToken) -> StepOutcome {
        let cfg = &*self.config;
        let step_dir = self.step_dir(&spec.run, &spec.node_id, spec.attempt);
        let (process, hosted) = match self.checked_prepare(&spec, &step_dir) {
            Ok(p) => p,
            Err(e) => return StepOutcome::error(e),
        };
        let launched = if hosted {
            self.host.launch(&process, cfg.grace).await
        } else {
            Detached::launch(&cfg.cox_binary, &process, cfg.grace).await
        };
        let detached = match launched {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_file(step_dir.join(REPOSITORY_FILE));
                return StepOutcome::error(format!("cannot start step: {e}"));
            }
        };
        let keys = process.argv.iter().any(|a| a == REPOSITORY_ARG);
        self.follow(spec, &step_dir, detached, cancel, Duration::ZERO, keys)
            .await
    }

    /// Takes over the attempt in its step directory: `None` when its supervisor is gone
    /// without recording an exit (or it never started).
    async fn adopt_step(
        &self,
        run: &str,
        node_id: &str,
        attempt: u32,
        cancel: CancellationToken,
    ) -> Option<StepOutcome> {
        let step_dir = self.step_dir(run, node_id, attempt);
        let detached = Detached::adopt(&step_dir)?;
        let process = step_dir.join(PROCESS_FILE);
        let launched = std::fs::metadata(&process).and_then(|m| m.modified()).ok();
        let input = std::fs::read(&process)
            .ok()
            .and_then(|b| serde_json::from_slice::<ProcessSpec>(&b).ok())
            .and_then(|p| serde_json::from_slice::<StepInput>(&p.stdin?).ok())?;
        let elapsed = launched
            .and_then(|t| t.elapsed().ok())
            .unwrap_or(Duration::ZERO);
        tracing::info!(
            run,
            node = node_id,
            attempt,
            alive = detached.is_alive(),
            "adopting a step"
        );
        Some(
            self.follow(input.spec, &step_dir, detached, cancel, elapsed, true)
                .await,
        )
    }

    /// Waits for a launched attempt (stopping it at its deadline, `elapsed` of which has
    /// passed, or when `cancel` fires) and builds its outcome. `keys`: the attempt may have
    /// a [`REPOSITORY_FILE`] left to delete.
    async fn follow(
        &self,
        spec: StepSpec,
        step_dir: &Path,
        mut detached: Detached,
        cancel: CancellationToken,
        elapsed: Duration,
        keys: bool,
    ) -> StepOutcome {
        let deadline = async {
            match spec.deadline_seconds {
                Some(s) => tokio::time::sleep(Duration::from_secs(s).saturating_sub(elapsed)).await,
                None => std::future::pending().await,
            }
        };
        let stop = tokio::select! {
            exit = detached.wait() => Err(exit),
            () = deadline => Ok(Stop::Deadline),
            () = cancel.cancelled() => Ok(Stop::Cancelled),
        };
        let (stop, exit) = match stop {
            Err(exit) => (None, exit),
            Ok(stop) => {
                // The supervisor applies the grace, then SIGKILL, to the whole step.
                detached.terminate();
                (Some(stop), detached.wait().await)
            }
        };
        // The wrapper deletes the keys before the program starts; this covers a wrapper
        // that never got that far.
        if keys {
            let _ = std::fs::remove_file(step_dir.join(REPOSITORY_FILE));
        }
        let (exit, outcome) = match exit {
            Ok(recorded) => (recorded.exit, recorded.outcome),
            Err(e) => return StepOutcome::error(format!("lost the step process: {e}")),
        };

        // The supervisor's, when it ran the wrapper itself; else the wrapper process's.
        let outcome = outcome.or_else(|| {
            std::fs::read(step_dir.join(OUTCOME_FILE))
                .ok()
                .and_then(|b| serde_json::from_slice::<StepOutcome>(&b).ok())
        });
        let mut outcome = match outcome {
            Some(o) => o,
            None => {
                let mut o = StepOutcome::error(format!(
                    "the step wrapper ended ({}) without reporting an outcome; see the step log {}",
                    exit.status,
                    exit_log(step_dir).display()
                ));
                o.exit_code = Some(exit.status.container_code());
                o
            }
        };
        if let Some(stop) = stop {
            outcome.phase = StepPhase::Failed;
            outcome.message = match stop {
                Stop::Deadline => DEADLINE_MESSAGE,
                Stop::Cancelled => STOPPED_MESSAGE,
            }
            .to_string();
            outcome.exit_code = outcome.exit_code.or(Some(exit.status.container_code()));
        }
        if spec.capture_result {
            outcome.result = Some(exit.result.clone());
        }
        if spec.archive_logs || self.config.archive_logs {
            match self.archive_log(&spec, step_dir).await {
                Ok(saved) => outcome.artifacts.push(saved),
                Err(e) => {
                    let e = format!("cannot archive the step's log: {e}");
                    if outcome.phase == StepPhase::Succeeded {
                        outcome.phase = StepPhase::Error;
                        outcome.message = e;
                    }
                }
            }
        }
        outcome.started_at = outcome
            .started_at
            .or_else(|| Some(exit.started.to_rfc3339()));
        outcome.finished_at = outcome
            .finished_at
            .or_else(|| Some(exit.finished.to_rfc3339()));
        outcome
    }

    /// `dir`'s canonical path, resolved on its first use.
    fn canonical_dir(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let mut known = self.canonical.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = known.get(dir) {
            return Ok(path.clone());
        }
        let path = std::fs::canonicalize(dir)?;
        known.insert(dir.to_path_buf(), path.clone());
        Ok(path)
    }

    /// The artifact repository of a step or run, opened on the host.
    fn repository(
        &self,
        location: Option<&RepositoryLocation>,
    ) -> Result<cox_artifacts::ArtifactRepository, String> {
        self.config
            .repository_for(location, self.secret_source())?
            .open()
            .map_err(|e| e.to_string())
    }

    fn secret_source(&self) -> Option<&dyn SecretSource> {
        self.secrets.get().map(|s| &**s as &dyn SecretSource)
    }

    /// Argo's `archiveLogs`: the log's text saved, from the host, as the artifact
    /// `main-logs` under `<run>/<node id>/main.log`.
    async fn archive_log(&self, spec: &StepSpec, step_dir: &Path) -> Result<SavedArtifact, String> {
        let text = step_dir.join(LOG_TEXT_FILE);
        let log = exit_log(step_dir);
        crate::logs::write_text(&log, &text).map_err(|e| e.to_string())?;
        let repo = self.repository(spec.repository.as_ref())?;
        let key = format!("{}/{}/main.log", spec.run, spec.node_id);
        let saved = repo
            .save_file(&text, &key)
            .await
            .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&text);
        Ok(SavedArtifact {
            name: "main-logs".into(),
            path: String::new(),
            key: saved.key,
            archive: ArchiveKind::None,
            size: saved.size,
            sha256: saved.sha256,
            store: None,
        })
    }

    /// [`LocalExecutor::prepare`], once the image resolves and unless the attempt is alive;
    /// with whether the step host runs it: the host runs what the wrapper can do in any
    /// process, and a step with files to place or collect gets a supervisor of its own,
    /// which works in its directory.
    fn checked_prepare(
        &self,
        spec: &StepSpec,
        step_dir: &Path,
    ) -> Result<(ProcessSpec, bool), String> {
        let cfg = &*self.config;
        // Fail early, with the table's message, when the image cannot be resolved.
        cfg.images
            .resolve(&spec.image, &spec.command, &spec.args, &cfg.cox_binary)
            .map_err(|e| e.to_string())?;
        // Launches are idempotent: never a second process for an attempt that is alive.
        // (A first launch has no directory: one `stat` rather than the lock's probes.)
        let existed = step_dir.exists();
        if existed && Detached::adopt(step_dir).is_some_and(|d| d.is_alive()) {
            return Err(format!(
                "attempt {} of {} is already running (its supervisor holds {})",
                spec.attempt,
                spec.node_id,
                step_dir.join(LOCK_FILE).display()
            ));
        }
        let (mut process, input) = self.prepare(spec, step_dir, existed)?;
        let hosted =
            InProcess::from_input(&process, input).is_some_and(|step| !step.stages_files());
        if hosted && process.sandbox {
            // Run directly in bubblewrap: the image's aliases can be the ones linked once
            // on the host, where the sandbox shows them (rather than in the step directory,
            // which then need not be bound into the sandbox at all).
            if let Some(shared) = self.shared_aliases_seen_in_sandbox(&process) {
                process
                    .argv
                    .extend([ALIASES_ARG.to_string(), shared.display().to_string()]);
            }
        }
        Ok((process, hosted))
    }

    /// The shared alias directory by its canonical path, when a sandboxed `process` sees it
    /// there: not under the sandbox's own `/tmp`, `/proc` or `/dev`, nor under a mount or a
    /// directory the sandbox replaces.
    fn shared_aliases_seen_in_sandbox(&self, process: &ProcessSpec) -> Option<PathBuf> {
        let root = self.shared_aliases().ok()?;
        let hidden = ["/tmp", "/proc", "/dev"]
            .iter()
            .map(Path::new)
            .chain(process.mounts.iter().map(|m| m.target().as_path()))
            .chain(process.open_dirs.iter().map(PathBuf::as_path))
            .any(|dir| root.starts_with(dir));
        (!hidden).then_some(root)
    }

    /// The directory of alias links shared by steps, by its canonical path: resolved once
    /// per executor, and made first when it is not there yet.
    fn shared_aliases(&self) -> std::io::Result<PathBuf> {
        let root = self.config.data_dir.join(ALIASES_DIR);
        self.canonical_dir(&root).or_else(|_| {
            std::fs::create_dir_all(&root)?;
            self.canonical_dir(&root)
        })
    }

    /// Creates the step directory (cleared first if it `existed`) and builds the process
    /// spec (its stdin: the spec and the image table, also returned).
    fn prepare(
        &self,
        spec: &StepSpec,
        step_dir: &Path,
        existed: bool,
    ) -> Result<(ProcessSpec, StepInput), String> {
        let cfg = &*self.config;
        let io = |what: &str, path: &Path, e: std::io::Error| {
            format!("cannot {what} {}: {e}", path.display())
        };
        if existed {
            std::fs::remove_dir_all(step_dir).map_err(|e| io("clear", step_dir, e))?;
        }
        std::fs::create_dir_all(step_dir).map_err(|e| io("create", step_dir, e))?;
        // The run's repository and the artifacts' own buckets, under the policy; keys go
        // to the private file only.
        let secrets = self.secret_source();
        let mut stores = StepStores::default();
        for (name, location) in spec.artifact_stores() {
            match cfg.policy.resolve(location, secrets) {
                Ok(RepositoryConfig::S3(s3)) => stores.artifacts.push(s3),
                Ok(RepositoryConfig::Local(_)) => {
                    return Err(format!(
                        "artifact {name:?}: its own location must be a bucket"
                    ));
                }
                Err(e) => return Err(format!("artifact {name:?}: {e}")),
            }
        }
        // Local repository: its canonical directory, bound into the sandbox.
        let artifact_dir = match cfg.repository_for(spec.repository.as_ref(), secrets)? {
            RepositoryConfig::S3(s3) => {
                stores.repository = Some(s3);
                None
            }
            RepositoryConfig::Local(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
                Some(
                    self.canonical_dir(&dir)
                        .map_err(|e| io("resolve", &dir, e))?,
                )
            }
        };
        if !stores.is_empty() {
            let path = step_dir.join(REPOSITORY_FILE);
            stores
                .write_private(&path)
                .map_err(|e| io("write", &path, e))?;
        }

        let (inner_step, cox) = if cfg.sandbox {
            (PathBuf::from(STEP_MOUNT), PathBuf::from(COX_MOUNT))
        } else {
            let abs = std::path::absolute(step_dir).map_err(|e| io("resolve", step_dir, e))?;
            (abs, cfg.cox_binary.clone())
        };
        let mut argv = vec![
            cox.display().to_string(),
            STEP_SUBCOMMAND.to_string(),
            inner_step.display().to_string(),
        ];
        if let Some(dir) = &artifact_dir {
            argv.extend(["--artifacts".to_string(), dir.display().to_string()]);
        }
        if !stores.is_empty() {
            argv.extend([
                REPOSITORY_ARG.to_string(),
                inner_step.join(REPOSITORY_FILE).display().to_string(),
            ]);
        }
        if !cfg.sandbox {
            let shared = self
                .shared_aliases()
                .map_err(|e| io("resolve", &cfg.data_dir.join(ALIASES_DIR), e))?;
            argv.extend([ALIASES_ARG.to_string(), shared.display().to_string()]);
        }
        if let Some(text) = std::env::var_os(UNPACK_LIMITS_ENV) {
            let limits = cox_artifacts::UnpackLimits::parse(&text.to_string_lossy())
                .map_err(|e| format!("{UNPACK_LIMITS_ENV}: {e}"))?;
            argv.extend(["--unpack-limits".to_string(), limits.to_arg()]);
        }
        let mut process = ProcessSpec::new(argv, step_dir).sandbox(cfg.sandbox);
        // Made here, on the scheduler's threads, rather than by the single-threaded step
        // host, which serves every step of the executor.
        for (made, path) in [
            (
                std::fs::create_dir(process.host_workdir()),
                process.host_workdir(),
            ),
            (
                std::fs::File::create(process.log_path()).map(drop),
                process.log_path(),
            ),
        ] {
            made.map_err(|e| io("create", &path, e))?;
        }
        let input = StepInput {
            spec: spec.clone(),
            images: cfg.images.clone(),
        };
        process.stdin =
            Some(serde_json::to_vec(&input).map_err(|e| format!("cannot encode the step: {e}"))?);
        process.env = spec.env.clone();
        process.workdir = spec.working_dir.as_ref().map(PathBuf::from);
        for v in &spec.volumes {
            // Relative hosts are the run's own volumes (emptyDir, claims): under its directory.
            let host = if v.host.is_relative() {
                let dir = cfg.data_dir.join("runs").join(&spec.run).join(&v.host);
                std::fs::create_dir_all(&dir).map_err(|e| io("create volume", &dir, e))?;
                dir
            } else {
                v.host.clone()
            };
            process.mounts.push(Mount::Bind {
                host,
                target: PathBuf::from(&v.target),
                read_only: v.read_only,
            });
        }
        if cfg.sandbox {
            process.mounts.push(Mount::Bind {
                host: std::path::absolute(step_dir).map_err(|e| io("resolve", step_dir, e))?,
                target: STEP_MOUNT.into(),
                read_only: false,
            });
            process.mounts.push(Mount::Bind {
                host: cfg.cox_binary.clone(),
                target: COX_MOUNT.into(),
                read_only: true,
            });
            if let Some(dir) = artifact_dir {
                process.mounts.push(Mount::Bind {
                    host: dir.clone(),
                    target: dir,
                    read_only: false,
                });
            }
            let workdir = process.effective_workdir();
            process.open_dirs = private_dirs(spec, &workdir);
            // A path right in `/` (`/result.txt`) is usually written relative to the
            // working directory, which is `/` in a container whose image sets none.
            if spec.working_dir.is_none()
                && artifact_paths(spec).any(|p| Path::new(p).parent() == Some(Path::new("/")))
            {
                process.workdir = Some(PathBuf::from("/"));
            }
        }
        Ok((process, input))
    }
}

fn exit_log(step_dir: &Path) -> PathBuf {
    step_dir.join("log.jsonl")
}

/// A run or node id as one path component.
fn path_safe(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Existing host directories to open (see [`ProcessSpec::open_dirs`]) so that the step's
/// artifact and parameter paths can be written, as in a container's writable root: for
/// each path's directory, unless it lies under `/tmp`, the working directory, a volume or
/// `/.cox`, its deepest ancestor that exists on the host (the directory itself when it
/// exists). Missing directories below it are made by the wrapper or the program, in the
/// private copy.
fn private_dirs(spec: &StepSpec, workdir: &Path) -> Vec<PathBuf> {
    let mut covered: Vec<PathBuf> = vec![
        PathBuf::from("/tmp"),
        workdir.to_path_buf(),
        PathBuf::from("/.cox"),
    ];
    covered.extend(spec.volumes.iter().map(|v| PathBuf::from(&v.target)));
    let mut open: Vec<PathBuf> = Vec::new();
    for path in artifact_paths(spec) {
        let path = Path::new(path);
        if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
            continue;
        }
        let Some(dir) = path.parent() else { continue };
        if covered.iter().any(|c| dir.starts_with(c))
            || ["/proc", "/dev"].iter().any(|p| dir.starts_with(p))
        {
            continue;
        }
        let mut cur = PathBuf::from("/");
        for comp in dir.components().skip(1) {
            let next = cur.join(comp);
            if !std::fs::symlink_metadata(&next).is_ok_and(|m| m.is_dir()) {
                break;
            }
            cur = next;
        }
        if !open.contains(&cur) {
            open.push(cur);
        }
    }
    open
}

/// The input artifact, output parameter and output artifact paths of a step.
fn artifact_paths(spec: &StepSpec) -> impl Iterator<Item = &str> {
    spec.input_artifacts
        .iter()
        .map(|a| a.path.as_str())
        .chain(spec.output_parameters.iter().map(|p| p.path.as_str()))
        .chain(spec.output_artifacts.iter().map(|a| a.path.as_str()))
}

impl Executor for LocalExecutor {
    fn run(&self, spec: StepSpec, cancel: CancellationToken) -> BoxFuture<'_, StepOutcome> {
        Box::pin(self.run_step(spec, cancel))
    }

    fn may_have_started(&self, run: &str, node_id: &str, attempt: u32) -> bool {
        Detached::may_have_started(&self.step_dir(run, node_id, attempt))
    }

    fn adopt(
        &self,
        run: String,
        node_id: String,
        attempt: u32,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Option<StepOutcome>> {
        Box::pin(async move { self.adopt_step(&run, &node_id, attempt, cancel).await })
    }

    fn delete_artifacts(
        &self,
        repository: Option<RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let repo = self.repository(repository.as_ref())?;
            for key in keys.iter().filter(|k| !k.trim_matches('/').is_empty()) {
                // A directory saved without an archive is the objects under its key.
                let under = repo.delete_prefix(key).await.map_err(|e| e.to_string())?;
                if under == 0 {
                    repo.delete(key).await.map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })
    }

    fn missing_artifacts(
        &self,
        repository: Option<RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<String>, String>> {
        Box::pin(async move {
            let repo = self.repository(repository.as_ref())?;
            let mut missing = Vec::new();
            for key in keys {
                if !repo.exists(&key).await.map_err(|e| e.to_string())? {
                    missing.push(key);
                }
            }
            Ok(missing)
        })
    }

    fn log_path(&self, run: &str, node_id: &str, attempt: u32) -> Option<PathBuf> {
        Some(exit_log(&self.step_dir(run, node_id, attempt)))
    }

    fn check_repository(&self, location: &RepositoryLocation) -> Result<(), String> {
        self.config.policy.admit(location)
    }

    fn use_secrets(&self, secrets: Arc<dyn SecretSource>) {
        let _ = self.secrets.set(secrets);
    }
}
