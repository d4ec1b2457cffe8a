//! How a step ended: [`ExitStatus`] and [`Exit`].

use chrono::{DateTime, Utc};

/// How the launched process ended: exactly one of `code` and `signal` is set.
///
/// Sandboxed, the status is bubblewrap's, which reports a step killed by
/// signal N as exit code 128+N, like a container runtime does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitStatus {
    /// The exit code, when the process exited.
    pub code: Option<i32>,
    /// The signal number, when the process was killed by a signal.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The exit code as Kubernetes reports it: the code, or 128 + signal.
    pub fn container_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => -1,
        }
    }

    /// Argo's node message for a failed main container, `Error (exit code N)`;
    /// `None` on success.
    pub fn message(&self) -> Option<String> {
        (!self.success()).then(|| format!("Error (exit code {})", self.container_code()))
    }
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        ExitStatus {
            code: status.code(),
            signal: status.signal(),
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {signal}"),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

/// The outcome of one launch.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Exit {
    /// How the process ended.
    pub status: ExitStatus,
    /// When it was started.
    pub started: DateTime<Utc>,
    /// When it was seen to end (its output drained).
    pub finished: DateTime<Utc>,
    /// The last bytes of stdout (at most `result_cap`, one trailing newline
    /// trimmed, invalid UTF-8 replaced), for Argo's `outputs.result`.
    pub result: String,
    /// Whether stdout was longer than the cap and its start was dropped.
    pub result_truncated: bool,
    /// Whether [`Running::cancel`](crate::local::Running::cancel) ended it.
    pub cancelled: bool,
}

impl Exit {
    /// See [`ExitStatus::message`].
    pub fn message(&self) -> Option<String> {
        self.status.message()
    }

    /// Wall time from start to end.
    pub fn duration(&self) -> chrono::TimeDelta {
        self.finished - self.started
    }
}
