//! The crate's one error type.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while preparing, running, signalling or
/// reading the logs of a step process.
///
/// A step that runs and exits non-zero is not an error: it is an
/// [`Exit`](crate::exit::Exit) with a failed [`ExitStatus`](crate::exit::ExitStatus).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec's argv is empty: there is no program to run.
    #[error("process spec has an empty argv")]
    EmptyArgv,

    /// A path in the spec (working directory or mount target) is not absolute,
    /// or a mount target would replace a directory the sandbox needs.
    #[error("invalid path {path:?} in process spec: {reason}")]
    InvalidPath {
        /// The offending path.
        path: PathBuf,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A bind mount's host path cannot be used (usually: it does not exist).
    #[error("cannot bind {host:?} at {target:?}: {source}")]
    MountSource {
        /// The host side of the bind.
        host: PathBuf,
        /// Where it was to appear in the step.
        target: PathBuf,
        /// The underlying error from inspecting `host`.
        source: std::io::Error,
    },

    /// Without the sandbox, a mount can only be emulated inside the working
    /// directory (as a symlink or empty directory); this one lies elsewhere.
    #[error(
        "mount target {target:?} is outside the working directory {workdir:?}, which needs the sandbox (drop --no-sandbox)"
    )]
    MountNeedsSandbox {
        /// The mount target that cannot be emulated.
        target: PathBuf,
        /// The step's working directory.
        workdir: PathBuf,
    },

    /// bubblewrap is not installed (no `bwrap` on `PATH`).
    #[error(
        "bubblewrap (bwrap) is not installed or not on PATH: install it (apt-get install bubblewrap) or run with --no-sandbox"
    )]
    SandboxMissing,

    /// bubblewrap is installed but cannot build a sandbox on this machine,
    /// most often because unprivileged user namespaces are disabled.
    #[error(
        "bubblewrap cannot create a sandbox here ({reason}); enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, or the AppArmor userns restriction) or run with --no-sandbox"
    )]
    SandboxUnusable {
        /// What bwrap said (its stderr, or how it failed).
        reason: String,
    },

    /// The per-step host directory (working directory, log) could not be made.
    #[error("cannot prepare step directory {path:?}: {source}")]
    StepDir {
        /// The directory or file being prepared.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The operating system refused to start the process.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program that was executed (`bwrap` when sandboxed).
        program: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// Waiting for the process failed.
    #[error("cannot wait for process {pid}: {source}")]
    Wait {
        /// The host pid of the launched process.
        pid: u32,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// Sending a signal to the step's processes failed.
    #[error("cannot send {signal} to process group {pid}: {source}")]
    Signal {
        /// The process group (the launched process's pid).
        pid: u32,
        /// The signal's name.
        signal: &'static str,
        /// The underlying errno.
        source: nix::Error,
    },

    /// Reading or writing the step's log file failed.
    #[error("cannot access log {path:?}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A line of the log file is not a valid log record.
    #[error("malformed record at line {line} of log {path:?}: {source}")]
    LogFormat {
        /// The log file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: u64,
        /// The JSON error.
        source: serde_json::Error,
    },
}
