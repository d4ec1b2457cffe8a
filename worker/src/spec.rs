//! What to run: [`ProcessSpec`] and its [`Mount`]s, shared by every executor.
//!
//! # Step directory
//!
//! Each launch owns a host directory, [`ProcessSpec::step_dir`], which the
//! caller picks (one per step attempt) and the launcher creates:
//!
//! ```text
//! <step_dir>/
//!   work/        the step's private, writable working directory
//!   log.jsonl    its stdout and stderr (format: see crate::logs)
//! ```
//!
//! In the sandbox `work/` appears at [`ProcessSpec::workdir`] (default
//! [`DEFAULT_WORKDIR`]); without the sandbox the process simply runs in it,
//! whatever `workdir` says, since the host's paths cannot be rearranged.
//!
//! # Environment
//!
//! The parent's environment is not inherited. A step sees only:
//! - the variables in [`ENV_ALLOWLIST`], copied from the parent when set
//!   (`PATH` falls back to [`DEFAULT_PATH`], `LANG` to `C.UTF-8`);
//! - `HOME` and `PWD`, set to the working directory as the step sees it
//!   (bubblewrap's `--chdir` sets `PWD` too);
//! - then [`ProcessSpec::env`], in order, a later entry winning (it may
//!   override any of the above).

use std::path::PathBuf;

/// Where the step's working directory appears inside the sandbox when the
/// spec names none: under the sandbox's own `/tmp` (a tmpfs), so bubblewrap makes
/// the mount point there. A directory the host lacks, such as `/workspace`, makes
/// bubblewrap rebuild the root from one bind per entry, which doubled its cost
/// per step (8.4 against 4.2 ms of CPU, see BENCHMARKS.md); a directory the host
/// has would be hidden.
pub const DEFAULT_WORKDIR: &str = "/tmp/work";

/// Parent variables a step inherits (see the module doc).
pub const ENV_ALLOWLIST: &[&str] = &["PATH", "LANG"];

/// `PATH` when the parent has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How many trailing bytes of stdout are kept for Argo's `outputs.result`.
///
/// Argo's executor keeps the last 256 KiB (`maxAnnotationSize = 256 * (1 << 10)`
/// in `workflow/executor/executor.go`, after trimming one trailing newline).
pub const DEFAULT_RESULT_CAP: usize = 256 * 1024;

/// A directory made visible to the step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mount {
    /// Bind a host path (file or directory; it must exist) at `target`.
    Bind {
        /// The host path: a volume's host path or a per-run/per-step directory.
        host: PathBuf,
        /// Absolute path inside the step.
        target: PathBuf,
        /// Mount read-only.
        read_only: bool,
    },
    /// A fresh, empty, writable in-memory directory at `target`.
    Tmpfs {
        /// Absolute path inside the step.
        target: PathBuf,
    },
}

impl Mount {
    /// Where the mount appears inside the step.
    pub fn target(&self) -> &PathBuf {
        match self {
            Mount::Bind { target, .. } | Mount::Tmpfs { target } => target,
        }
    }
}

/// One process to launch: a step's main container, run locally.
///
/// Standard input is always closed (`/dev/null`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProcessSpec {
    /// Program and arguments, passed as-is (no shell, no template expansion).
    /// The program is looked up on the step's `PATH`.
    pub argv: Vec<String>,
    /// Environment variables for the step, on top of the allowlist.
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox (absolute); `None` means
    /// [`DEFAULT_WORKDIR`]. Ignored without the sandbox.
    pub workdir: Option<PathBuf>,
    /// Volumes, in any order (they are applied parents first).
    pub mounts: Vec<Mount>,
    /// Existing host directories in which the step must be able to create entries (the
    /// directory of an artifact path such as `/result.txt` or `/mnt/out`, as a container's
    /// writable root allows): sandboxed, each becomes a private tmpfs on which its host
    /// entries are bound again read-only. Ignored without the sandbox.
    pub open_dirs: Vec<PathBuf>,
    /// Run inside bubblewrap (`true`) or as a plain host process (`--no-sandbox`).
    pub sandbox: bool,
    /// Host directory owned by this launch (see the module doc).
    pub step_dir: PathBuf,
    /// How many trailing stdout bytes to keep as the result.
    pub result_cap: usize,
    /// Bytes written to the process's standard input, which is then closed; `None`: stdin
    /// is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
}

impl ProcessSpec {
    /// A sandboxed spec with no env, no mounts and the default workdir and cap.
    pub fn new<I, S>(argv: I, step_dir: impl Into<PathBuf>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProcessSpec {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            workdir: None,
            mounts: Vec::new(),
            open_dirs: Vec::new(),
            sandbox: true,
            step_dir: step_dir.into(),
            result_cap: DEFAULT_RESULT_CAP,
            stdin: None,
        }
    }

    /// Adds one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds a mount.
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Sets whether to use the sandbox.
    pub fn sandbox(mut self, sandbox: bool) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Sets the in-sandbox working directory.
    pub fn workdir(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(workdir.into());
        self
    }

    /// The host directory that holds the step's working directory.
    pub fn host_workdir(&self) -> PathBuf {
        self.step_dir.join("work")
    }

    /// The step's log file.
    pub fn log_path(&self) -> PathBuf {
        self.step_dir.join("log.jsonl")
    }

    /// The working directory as the step sees it.
    pub fn effective_workdir(&self) -> PathBuf {
        if self.sandbox {
            self.workdir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_WORKDIR))
        } else {
            self.host_workdir()
        }
    }
}
