//! Steps as host processes: in a bubblewrap sandbox, or plain (`--no-sandbox`).
//!
//! # Sandbox
//!
//! A sandboxed step runs as `bwrap <args> -- argv...` with:
//! - the host root read-only (`--ro-bind / /`), `/proc` and `/dev` of its own,
//!   a fresh `/tmp` (`--tmpfs /tmp`);
//! - its working directory `<step_dir>/work` bound writable at the spec's
//!   workdir (default [`DEFAULT_WORKDIR`]), and `--chdir` there;
//! - the declared mounts, parents before children;
//! - its own PID namespace (`--unshare-pid`), `--die-with-parent`,
//!   `--new-session`; the network and the user stay the host's.
//!
//! A mount target that does not exist on the host cannot be created on the
//! read-only root, so its nearest existing ancestor is replaced by a private
//! tmpfs in which the ancestor's entries are bound again read-only (for the
//! root itself, `/`'s entries are bound onto bubblewrap's own tmpfs root).
//! Such a directory is writable, but private to the step and discarded. The
//! spec's [`ProcessSpec::open_dirs`] are opened the same way.
//!
//! bubblewrap is checked once per process ([`check_sandbox`]) by running
//! `true` in a minimal sandbox, so that a missing or unusable bubblewrap is
//! reported as such rather than as a failing step. Errors bubblewrap meets
//! later (a bind that fails) appear on the step's stderr, with exit code 1.
//!
//! # Without the sandbox
//!
//! The process runs in `<step_dir>/work` in a process group of its own. A
//! mount is emulated only when its target lies under the spec's workdir: a
//! bind becomes a symlink (read-only is not enforced), a tmpfs an empty
//! directory; any other target is refused ([`Error::MountNeedsSandbox`]).
//!
//! # Ending
//!
//! As in a container, when the main process ends everything it started
//! ends too: the PID namespace dies with its init (sandboxed), or the process
//! group is sent SIGKILL (plain; a descendant that left the group with
//! `setsid` escapes this, which only the sandbox prevents).
//!
//! [`Running::cancel`] sends SIGTERM to every process of the step (each
//! process in the sandbox's PID namespace, or the process group), waits up to
//! `grace` for the main process to end, then sends SIGKILL.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::exit::{Exit, ExitStatus};
use crate::logs::{self, LogFollower, ResultCapture, Stream};
use crate::spec::{DEFAULT_PATH, DEFAULT_WORKDIR, ENV_ALLOWLIST, Mount, ProcessSpec};

/// How long output is drained after the main process ended; a process that
/// escaped the kill and still holds the pipes is not waited for longer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for the process after SIGKILL before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Launches step processes on this host.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalProcess;

impl LocalProcess {
    /// Prepares the step directory and starts the process; its output is
    /// captured from the start.
    pub async fn spawn(spec: ProcessSpec) -> Result<Running> {
        let argv0 = spec.argv.first().ok_or(Error::EmptyArgv)?.clone();
        let step_dir = std::path::absolute(&spec.step_dir).map_err(|source| Error::StepDir {
            path: spec.step_dir.clone(),
            source,
        })?;
        let spec = ProcessSpec { step_dir, ..spec };
        let host_work = spec.host_workdir();
        let workdir = spec.effective_workdir();

        let env = step_env(&spec.env, &workdir);
        let (program, args) = if spec.sandbox {
            let bwrap = check_sandbox_path().await?;
            let mut args = bwrap_args(&spec, &host_work, &workdir)?;
            args.push("--".into());
            args.extend(spec.argv.iter().map(OsString::from));
            (bwrap.into_os_string(), args)
        } else {
            let path = env.iter().rev().find(|(k, _)| k == "PATH").map(|(_, v)| v);
            let program = path
                .and_then(|path| find_program(&argv0, path))
                .map_or_else(|| OsString::from(&argv0), PathBuf::into_os_string);
            (program, spec.argv[1..].iter().map(OsString::from).collect())
        };

        prepare_workdir(&spec)?;
        let log_path = spec.log_path();
        // Appended to: a step's supervisor may have logged the wrapper's messages first.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| Error::StepDir {
                path: log_path.clone(),
                source,
            })?;

        let mut cmd = tokio::process::Command::new(&program);
        if !spec.sandbox {
            cmd.arg0(&argv0);
        }
        cmd.args(&args)
            .env_clear()
            .envs(env)
            .current_dir(&host_work)
            .stdin(if spec.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let started = Utc::now();
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            program: if spec.sandbox {
                "bwrap".into()
            } else {
                argv0.clone()
            },
            source,
        })?;
        let pid = child.id().ok_or_else(|| Error::Wait {
            pid: 0,
            source: std::io::Error::other("process ended before its pid was read"),
        })?;
        tracing::debug!(pid, sandbox = spec.sandbox, argv = ?spec.argv, "step process started");

        if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), spec.stdin) {
            // A reader that goes away early (a failing step) is its own error, not ours.
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = pipe.write_all(&bytes).await;
            });
        }
        let (tx, rx) = mpsc::channel(1024);
        let capture = Arc::new(Mutex::new(ResultCapture::new(spec.result_cap)));
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(logs::pump(
                out,
                Stream::Stdout,
                tx.clone(),
                Some(capture.clone()),
            )));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(logs::pump(
                err,
                Stream::Stderr,
                tx.clone(),
                None,
            )));
        }
        drop(tx);
        let writer = tokio::spawn(logs::write_log(log_file, log_path.clone(), rx));

        let (exited_tx, exited_rx) = watch::channel(false);
        let (logs_tx, logs_rx) = watch::channel(false);
        let cancelled = Arc::new(AtomicBool::new(false));
        let supervisor = tokio::spawn(supervise(Supervised {
            child,
            pid,
            started,
            pumps,
            writer,
            capture,
            exited_tx,
            logs_tx,
            cancelled: cancelled.clone(),
        }));

        Ok(Running {
            canceller: Canceller {
                pid,
                sandboxed: spec.sandbox,
                cancelled,
                exited: exited_rx,
            },
            log_path,
            logs_done: logs_rx,
            supervisor,
        })
    }
}

/// A started step process.
///
/// Dropping it neither stops nor waits for the step: cancel it first. (If
/// this whole process dies, `--die-with-parent` takes a sandboxed step with it: run it
/// under a [`Detached`] supervisor for it to outlive its launcher.)
#[derive(Debug)]
pub struct Running {
    canceller: Canceller,
    log_path: PathBuf,
    logs_done: watch::Receiver<bool>,
    supervisor: JoinHandle<Result<Exit>>,
}

impl Running {
    /// Host pid of the launched process (bwrap's, when sandboxed), which is
    /// also its process group id.
    pub fn pid(&self) -> u32 {
        self.canceller.pid
    }

    /// The log file (see [`crate::logs`] for its format).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Follows the log from its start until the step's output is all written.
    pub async fn follow_logs(&self) -> Result<LogFollower> {
        Ok(LogFollower::open(&self.log_path)
            .await?
            .until(self.logs_done.clone()))
    }

    /// A handle that can cancel the step while another task waits for it.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// See [`Canceller::cancel`].
    pub async fn cancel(&self, grace: Duration) -> Result<()> {
        self.canceller.cancel(grace).await
    }

    /// Waits for the process to end and its output to be written.
    pub async fn wait(self) -> Result<Exit> {
        match self.supervisor.await {
            Ok(result) => result,
            Err(join) => Err(Error::Wait {
                pid: self.canceller.pid,
                source: std::io::Error::other(join),
            }),
        }
    }
}

/// Cancels a running step; cheap to clone.
#[derive(Debug, Clone)]
pub struct Canceller {
    pid: u32,
    sandboxed: bool,
    cancelled: Arc<AtomicBool>,
    exited: watch::Receiver<bool>,
}

impl Canceller {
    /// Sends SIGTERM to every process of the step, waits up to `grace` for
    /// the main process to end, then sends SIGKILL; returns once the main
    /// process is gone. Does nothing when it has already ended.
    pub async fn cancel(&self, grace: Duration) -> Result<()> {
        self.cancelled.store(true, Ordering::SeqCst);
        let mut exited = self.exited.clone();
        if *exited.borrow() {
            return Ok(());
        }
        let pgid = Pid::from_raw(self.pid as i32);
        tracing::debug!(pid = self.pid, ?grace, "cancelling step: SIGTERM");
        let termed = self.sandboxed && term_namespace(self.pid);
        if !termed {
            signal_group(pgid, Signal::SIGTERM, self.pid)?;
        }
        if tokio::time::timeout(grace, exited.wait_for(|e| *e))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tracing::debug!(pid = self.pid, "grace period over: SIGKILL");
        // Sandboxed, the group holds bwrap and the namespace's init; the
        // namespace (and all in it) dies with its init.
        signal_group(pgid, Signal::SIGKILL, self.pid)?;
        if tokio::time::timeout(KILL_TIMEOUT, exited.wait_for(|e| *e))
            .await
            .is_err()
        {
            tracing::warn!(pid = self.pid, "step process still present after SIGKILL");
        }
        Ok(())
    }
}

fn signal_group(pgid: Pid, signal: Signal, pid: u32) -> Result<()> {
    match killpg(pgid, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(source) => Err(Error::Signal {
            pid,
            signal: signal.as_str(),
            source,
        }),
    }
}

/// Sends SIGTERM to every process in the PID namespace of bwrap `pid`'s
/// child (the namespace's init) except that init, which ignores it.
/// Returns `false` when the namespace cannot be found (not set up yet).
fn term_namespace(pid: u32) -> bool {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let Some(init) = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let mut sent = false;
    for entry in entries.flatten() {
        let Some(other) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if other == init || other == pid {
            continue;
        }
        if std::fs::read_link(format!("/proc/{other}/ns/pid")).is_ok_and(|n| n == ns) {
            sent |= kill(Pid::from_raw(other as i32), Signal::SIGTERM).is_ok();
        }
    }
    sent
}

struct Supervised {
    child: tokio::process::Child,
    pid: u32,
    started: chrono::DateTime<Utc>,
    pumps: Vec<JoinHandle<()>>,
    writer: JoinHandle<Result<()>>,
    capture: Arc<Mutex<ResultCapture>>,
    exited_tx: watch::Sender<bool>,
    logs_tx: watch::Sender<bool>,
    cancelled: Arc<AtomicBool>,
}

async fn supervise(s: Supervised) -> Result<Exit> {
    let Supervised {
        mut child,
        pid,
        started,
        pumps,
        writer,
        capture,
        exited_tx,
        logs_tx,
        cancelled,
    } = s;
    let status = child.wait().await;
    // The main process is gone: so is the rest of the step.
    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    exited_tx.send_replace(true);
    let status = status.map_err(|source| Error::Wait { pid, source })?;

    for mut pump in pumps {
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut pump)
            .await
            .is_err()
        {
            tracing::warn!(
                pid,
                "step output still open after the process ended; not waiting for it"
            );
            pump.abort();
        }
    }
    let written = match writer.await {
        Ok(r) => r,
        Err(join) => Err(Error::Wait {
            pid,
            source: std::io::Error::other(join),
        }),
    };
    logs_tx.send_replace(true);
    written?;

    let (result, result_truncated) = match capture.lock() {
        Ok(c) => c.finish(),
        Err(poisoned) => poisoned.into_inner().finish(),
    };
    let status = ExitStatus::from(status);
    tracing::debug!(pid, %status, "step process ended");
    Ok(Exit {
        status,
        started,
        finished: Utc::now(),
        result,
        result_truncated,
        cancelled: cancelled.load(Ordering::SeqCst),
    })
}

/// The hidden subcommand of a step's supervisor (see [`Detached`]).
pub const SUPERVISE_SUBCOMMAND: &str = "__supervise";
/// In the step directory: the [`ProcessSpec`] the supervisor launches (mode 0600).
pub const PROCESS_FILE: &str = "process.json";
/// In the step directory: the [`Recorded`] end the supervisor writes when the process ended.
pub const EXIT_FILE: &str = "exit.json";
/// In the step directory: locked by the supervisor for as long as it lives; it holds the
/// supervisor's pid on its first line (written by the supervisor before it starts the
/// step), then the supervisor's own messages (its stderr).
pub const LOCK_FILE: &str = "supervisor.lock";
/// After the pid on the lock file's first line: the pid is a step host's.
pub(crate) const HOSTED_MARK: &str = "host";
/// How often an adopted supervisor is checked.
const ADOPT_POLL: Duration = Duration::from_millis(200);

/// What a step's supervisor records in [`EXIT_FILE`]: how the process ended and, when the
/// supervisor ran the in-step wrapper itself ([`crate::wrapper::InProcess`]), the step's
/// outcome (otherwise the wrapper wrote it, see [`crate::wrapper::OUTCOME_FILE`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    /// How the process ended.
    #[serde(flatten)]
    pub exit: Exit,
    /// The step's outcome, when the supervisor made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<crate::step::StepOutcome>,
}

/// A step process run by a supervisor of its own, `cox __supervise STEP_DIR GRACE_MS`, that
/// outlives the scheduler: it runs [`LocalProcess::spawn`] (the log is written by the
/// supervisor, not through the scheduler's pipes), and records the [`Recorded`] end in
/// [`EXIT_FILE`] before it ends. SIGTERM to the supervisor cancels the step
/// ([`Canceller::cancel`] with the grace given). A launch of the in-step wrapper is run by
/// the supervisor itself when it can be ([`crate::wrapper::InProcess`]): one process less
/// per step.
///
/// The supervisor holds an exclusive lock on [`LOCK_FILE`] for its whole life: the
/// launcher locks the file and hands the locked descriptor over as the supervisor's
/// standard input, so there is no moment when the step runs unlocked. Another process finds
/// out whether the attempt is alive by trying the lock ([`Detached::adopt`]), which pid
/// reuse cannot fool. The supervisor is in a process group of its own, so a terminal's
/// Ctrl-C reaches only the scheduler, which stops its steps itself.
///
/// The files are written, not synced: a process that crashes leaves them whole in the
/// page cache, and the step's outcome is made durable by the scheduler's store once it
/// has it (a machine that crashes before then loses the step, which is then counted lost).
///
/// A step run by the executor's step host ([`crate::host`]) instead is a `Detached` too:
/// the host holds the same lock for the step and writes the same record; its lock file's
/// first line is `PID host` (the host's pid), and stopping it goes through the host
/// ([`crate::host::STOP_FILE`] and SIGUSR1), never a signal that would end the host.
#[derive(Debug)]
pub struct Detached {
    step_dir: PathBuf,
    pid: u32,
    child: Option<tokio::process::Child>,
    /// Run by a step host rather than a supervisor of its own.
    hosted: bool,
    /// Launched by this process through a step host: fires (or is dropped) when the host
    /// reports the step's end, so that the end is seen without waiting for a poll.
    done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Detached {
    /// Writes `spec` into its step directory and starts its supervisor, the binary `cox`
    /// run with [`SUPERVISE_SUBCOMMAND`].
    pub async fn launch(cox: &Path, spec: &ProcessSpec, grace: Duration) -> Result<Detached> {
        let (step_dir, lock) = Detached::write_launch(spec)?;
        let at = |name: &str| step_dir.join(name);
        let io = |path: PathBuf| move |source| Error::StepDir { path, source };
        let messages = lock.try_clone().map_err(io(at(LOCK_FILE)))?;
        let child = tokio::process::Command::new(cox)
            .arg(SUPERVISE_SUBCOMMAND)
            .arg(&step_dir)
            .arg(grace.as_millis().to_string())
            .stdin(Stdio::from(lock))
            .stdout(Stdio::null())
            .stderr(Stdio::from(messages))
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: cox.display().to_string(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        Ok(Detached {
            step_dir,
            pid,
            child: Some(child),
            hosted: false,
            done: None,
        })
    }

    /// A step handed to the step host `host_pid`, which holds its lock from now on and
    /// reports its end through `done`.
    pub(crate) fn hosted(
        step_dir: PathBuf,
        host_pid: u32,
        done: tokio::sync::oneshot::Receiver<()>,
    ) -> Detached {
        Detached {
            step_dir,
            pid: host_pid,
            child: None,
            hosted: true,
            done: Some(done),
        }
    }

    /// Writes `spec` into [`PROCESS_FILE`] and creates [`LOCK_FILE`], locked: the step
    /// directory (absolute) and the locked file, to hand over to whoever runs the step.
    pub(crate) fn write_launch(spec: &ProcessSpec) -> Result<(PathBuf, std::fs::File)> {
        use std::os::unix::fs::OpenOptionsExt;
        let step_dir = std::path::absolute(&spec.step_dir).map_err(|source| Error::StepDir {
            path: spec.step_dir.clone(),
            source,
        })?;
        let at = |name: &str| step_dir.join(name);
        let io = |path: PathBuf| move |source| Error::StepDir { path, source };
        let json = serde_json::to_vec(spec).map_err(|e| io(at(PROCESS_FILE))(e.into()))?;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(at(PROCESS_FILE))
            .and_then(|mut f| std::io::Write::write_all(&mut f, &json))
            .map_err(io(at(PROCESS_FILE)))?;
        let lock = std::fs::File::create(at(LOCK_FILE)).map_err(io(at(LOCK_FILE)))?;
        lock.try_lock().map_err(|e| {
            io(at(LOCK_FILE))(std::io::Error::other(format!(
                "already locked by a live attempt: {e}"
            )))
        })?;
        Ok((step_dir, lock))
    }

    /// The attempt in `step_dir`, launched by an earlier process, when its supervisor is
    /// still alive (it holds its lock) or recorded the exit; `None` when it vanished (or
    /// never started).
    pub fn adopt(step_dir: &Path) -> Option<Detached> {
        let written = Detached::written(step_dir);
        let adopted = Detached {
            step_dir: step_dir.to_path_buf(),
            pid: written.map_or(0, |(pid, _)| pid),
            child: None,
            hosted: written.is_some_and(|(_, hosted)| hosted),
            done: None,
        };
        (adopted.is_alive() || Detached::recorded_exit(step_dir).is_some()).then_some(adopted)
    }

    /// The pid the supervisor (or step host) wrote on the first line of its lock file, and
    /// whether it is a step host's (`PID host`).
    fn written(step_dir: &Path) -> Option<(u32, bool)> {
        let text = std::fs::read_to_string(step_dir.join(LOCK_FILE)).ok()?;
        let mut words = text.lines().next()?.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        Some((pid, words.next() == Some(HOSTED_MARK)))
    }

    /// Whether the step program in `step_dir` may have been started: its supervisor is alive
    /// or wrote its pid (which it does before it starts the program) or recorded an exit.
    pub fn may_have_started(step_dir: &Path) -> bool {
        Detached::written(step_dir).is_some() || Detached::adopt(step_dir).is_some()
    }

    /// Whether the supervisor still holds its lock.
    pub fn is_alive(&self) -> bool {
        if let Some(child) = &self.child {
            return child.id().is_some();
        }
        std::fs::File::open(self.step_dir.join(LOCK_FILE))
            .is_ok_and(|lock| lock.try_lock().is_err())
    }

    /// The recorded end of the attempt in `step_dir`, if its supervisor recorded one.
    pub fn recorded_exit(step_dir: &Path) -> Option<Recorded> {
        let bytes = std::fs::read(step_dir.join(EXIT_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Asks the supervisor to stop the step (SIGTERM; it applies its grace, then SIGKILL).
    /// An adopted supervisor is signalled only while it holds its lock, so a reused pid is
    /// never hit.
    /// A hosted step is stopped by its host: the request file, then SIGUSR1 to the host.
    pub fn terminate(&self) {
        if self.pid == 0 {
            return;
        }
        if self.hosted {
            if self.is_alive()
                && std::fs::write(self.step_dir.join(crate::host::STOP_FILE), b"").is_ok()
            {
                let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGUSR1);
            }
        } else if self.child.is_some() || self.is_alive() {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        }
    }

    /// Waits for the supervisor to end; the recorded end, or why there is none.
    pub async fn wait(&mut self) -> std::result::Result<Recorded, String> {
        match &mut self.child {
            Some(child) => {
                let status = child.wait().await.map_err(|e| e.to_string())?;
                Detached::recorded_exit(&self.step_dir).ok_or_else(|| {
                    format!(
                        "the step supervisor ended ({}) without recording how the step ended",
                        ExitStatus::from(status)
                    )
                })
            }
            None => {
                let lock = std::fs::File::open(self.step_dir.join(LOCK_FILE))
                    .map_err(|e| e.to_string())?;
                // A host reports a step once its end is recorded (a host that dies reports
                // nothing, which ends the wait too): the record is the end. The lock is not
                // asked after the report: the last reference to it may be released a moment
                // after the host closed it, and a refused lock would cost a poll. It is
                // polled meanwhile, in case a report is lost.
                if let Some(done) = self.done.as_mut() {
                    loop {
                        tokio::select! {
                            _ = &mut *done => break,
                            () = tokio::time::sleep(ADOPT_POLL) => {
                                if lock.try_lock().is_ok() {
                                    break;
                                }
                            }
                        }
                    }
                    self.done = None;
                    if let Some(recorded) = Detached::recorded_exit(&self.step_dir) {
                        return Ok(recorded);
                    }
                }
                // Otherwise (adopted, or no record) the lock's release is the end.
                while lock.try_lock().is_err() {
                    tokio::time::sleep(ADOPT_POLL).await;
                }
                Detached::recorded_exit(&self.step_dir).ok_or_else(|| {
                    "the step supervisor ended without recording how the step ended".to_string()
                })
            }
        }
    }
}

/// `cox __supervise STEP_DIR GRACE_MS`: runs the step of [`PROCESS_FILE`], records its
/// [`EXIT_FILE`] (see [`Detached`]); the exit code is 0 once the exit is recorded.
pub fn supervise_main(args: &[String]) -> i32 {
    let (Some(step_dir), Some(grace)) = (
        args.first().map(PathBuf::from),
        args.get(1).and_then(|g| g.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: cox {SUPERVISE_SUBCOMMAND} STEP_DIR GRACE_MS");
        return 2;
    };
    let Some(runtime) = crate::wrapper::step_runtime("cox-supervise") else {
        return 1;
    };
    match runtime.block_on(supervise_step(&step_dir, Duration::from_millis(grace))) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cox-supervise: {e}");
            1
        }
    }
}

async fn supervise_step(step_dir: &Path, grace: Duration) -> std::result::Result<(), String> {
    use std::io::Write;
    use std::os::fd::AsFd;
    use tokio::signal::unix::{SignalKind, signal};
    let step_dir = std::path::absolute(step_dir).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        if term.recv().await.is_some() {
            stopping.cancel();
        }
    });
    // The pid on the lock file's first line: standard input is the locked file, opened for
    // writing by the launcher.
    let lock = step_dir.join(LOCK_FILE);
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|mut f| writeln!(f, "{}", std::process::id()))
        .map_err(|e| format!("{}: {e}", lock.display()))?;
    record_step(&step_dir, grace, &stop).await
}

/// Runs the step of [`PROCESS_FILE`] in `step_dir` (absolute), stopping it (with `grace`)
/// when `stop` fires, and records its end in [`EXIT_FILE`]: the work of a step's supervisor,
/// or of the step host for each of its steps.
pub(crate) async fn record_step(
    step_dir: &Path,
    grace: Duration,
    stop: &tokio_util::sync::CancellationToken,
) -> std::result::Result<(), String> {
    let path = step_dir.join(PROCESS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut spec: ProcessSpec =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    spec.step_dir = step_dir.to_path_buf();
    if spec.sandbox {
        trust_sandbox();
    }
    let run_process = async |process: ProcessSpec| -> Result<Exit> {
        let running = LocalProcess::spawn(process).await?;
        let canceller = running.canceller();
        let wait = running.wait();
        tokio::pin!(wait);
        tokio::select! {
            exit = &mut wait => exit,
            () = stop.cancelled() => {
                if let Err(e) = canceller.cancel(grace).await {
                    eprintln!("cox-supervise: cannot stop the step: {e}");
                }
                wait.await
            }
        }
    };
    let recorded = match crate::wrapper::InProcess::from_process(&spec) {
        Some(step) => {
            let (exit, outcome) = step.run(spec, stop, run_process).await?;
            Recorded {
                exit,
                outcome: Some(outcome),
            }
        }
        None => Recorded {
            exit: run_process(spec).await.map_err(|e| e.to_string())?,
            outcome: None,
        },
    };
    // Not synced (see `Detached`); read only once this process has ended, so a torn file
    // is one whose writer was killed, which does not parse: the step is then lost.
    let json = serde_json::to_vec(&recorded).map_err(|e| e.to_string())?;
    let exit_path = step_dir.join(EXIT_FILE);
    std::fs::write(&exit_path, json).map_err(|e| format!("{}: {e}", exit_path.display()))
}

/// How long [`find_program`] answers again what it found, rather than searching: a step host
/// starts many steps a second, each with the same `PATH` and mostly the same programs.
const PATH_ANSWER_TTL: Duration = Duration::from_secs(2);

/// `program` as `execvp` would find it on `path` (the first executable file), when it is a
/// bare name and `path`'s directories before it are absolute. Started by its path, a
/// process is spawned with `posix_spawn`, which does not copy the parent's page tables;
/// with a bare name and a `PATH` of its own, the standard library forks to search it.
///
/// An answer is reused for [`PATH_ANSWER_TTL`] (a found file only while it is still an
/// executable file): a program installed earlier on `PATH` meanwhile is seen that much later.
pub(crate) fn find_program(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    type Answers = HashMap<(String, OsString), (std::time::Instant, Option<PathBuf>)>;
    static RECENT: std::sync::LazyLock<Mutex<Answers>> = std::sync::LazyLock::new(Mutex::default);
    if program.is_empty() || program.contains('/') {
        return None;
    }
    let key = (program.to_string(), path.to_os_string());
    let recent = RECENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
        .filter(|(at, _)| at.elapsed() < PATH_ANSWER_TTL)
        .map(|(_, found)| found.clone());
    match recent {
        Some(None) => return None,
        Some(Some(found)) if is_executable(&found) => return Some(found),
        _ => {}
    }
    let found = search_path(program, path);
    let mut recent = RECENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if recent.len() >= 1024 {
        recent.clear(); // a bound on a long-lived host's memory; lookups are cheap again
    }
    recent.insert(key, (std::time::Instant::now(), found.clone()));
    found
}

/// [`find_program`]'s search itself.
fn search_path(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    for dir in std::env::split_paths(path) {
        if !dir.is_absolute() {
            return None; // relative to the step's directory: left to execvp
        }
        let candidate = dir.join(program);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    None
}

/// Whether `path` is a file with an execute bit (`execvp` skips anything else).
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The step's `PATH`: the last `PATH` of `extra`, else the one a step inherits.
pub(crate) fn step_path(extra: &[(String, String)]) -> String {
    step_env(extra, Path::new("/"))
        .into_iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .unwrap_or_else(|| DEFAULT_PATH.to_string())
}

/// The step's environment (see [`crate::spec`] for the rules).
fn step_env(extra: &[(String, String)], workdir: &Path) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    for key in ENV_ALLOWLIST {
        let value = std::env::var_os(key).or_else(|| match *key {
            "PATH" => Some(DEFAULT_PATH.into()),
            "LANG" => Some("C.UTF-8".into()),
            _ => None,
        });
        if let Some(value) = value {
            env.push((key.into(), value));
        }
    }
    env.push(("HOME".into(), workdir.as_os_str().to_owned()));
    env.push(("PWD".into(), workdir.as_os_str().to_owned()));
    for (k, v) in extra {
        env.retain(|(key, _)| key.as_os_str() != k.as_str());
        env.push((k.into(), v.into()));
    }
    env
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::StepDir {
        path: path.to_path_buf(),
        source,
    })
}

fn check_absolute(path: &Path) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidPath {
            path: path.to_path_buf(),
            reason,
        })
    };
    if !path.is_absolute() {
        return invalid("must be absolute");
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return invalid("must not contain `..`");
    }
    if path.parent().is_none() {
        return invalid("must not be the root directory");
    }
    Ok(())
}

/// Creates the spec's working directory on the host, with its emulated mounts when it
/// runs without the sandbox (again: a second time changes nothing).
pub(crate) fn prepare_workdir(spec: &ProcessSpec) -> Result<()> {
    let host_work = spec.host_workdir();
    mkdir(&host_work)?;
    if !spec.sandbox {
        emulate_mounts(spec, &host_work)?;
    }
    Ok(())
}

/// Without the sandbox: mounts under the workdir become symlinks or
/// directories inside `host_work`.
fn emulate_mounts(spec: &ProcessSpec, host_work: &Path) -> Result<()> {
    let sandbox_workdir = spec
        .workdir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_WORKDIR));
    for mount in &spec.mounts {
        let target = mount.target();
        check_absolute(target)?;
        let rel = match target.strip_prefix(&sandbox_workdir) {
            Ok(rel) if !rel.as_os_str().is_empty() => rel,
            _ => {
                return Err(Error::MountNeedsSandbox {
                    target: target.clone(),
                    workdir: sandbox_workdir,
                });
            }
        };
        let at = host_work.join(rel);
        if let Some(parent) = at.parent() {
            mkdir(parent)?;
        }
        match mount {
            Mount::Tmpfs { .. } => mkdir(&at)?,
            Mount::Bind { host, .. } => {
                let host = std::fs::canonicalize(host).map_err(|source| Error::MountSource {
                    host: host.clone(),
                    target: target.clone(),
                    source,
                })?;
                let _ = std::fs::remove_file(&at);
                std::os::unix::fs::symlink(&host, &at).map_err(|source| Error::StepDir {
                    path: at.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

/// One mount as bubblewrap will apply it.
enum Planned<'a> {
    Bind { host: &'a Path, read_only: bool },
    Tmpfs,
}

/// bwrap's arguments up to (not including) `--`.
fn bwrap_args(spec: &ProcessSpec, host_work: &Path, workdir: &Path) -> Result<Vec<OsString>> {
    // `/` as the workdir: the step runs in the root (opened, see `open_dirs`), as a
    // container does; `work/` is not mounted.
    let root_workdir = workdir == Path::new("/");
    let mut planned: Vec<(&Path, Planned<'_>)> = Vec::new();
    if !root_workdir {
        check_absolute(workdir)?;
        planned.push((
            workdir,
            Planned::Bind {
                host: host_work,
                read_only: false,
            },
        ));
    }
    for mount in &spec.mounts {
        let target = mount.target().as_path();
        check_absolute(target)?;
        if [Path::new("/proc"), Path::new("/dev")]
            .iter()
            .any(|p| target.starts_with(p))
        {
            return Err(Error::InvalidPath {
                path: target.to_path_buf(),
                reason: "must not be under /proc or /dev",
            });
        }
        planned.push(match mount {
            Mount::Bind {
                host,
                read_only,
                target: _,
            } => {
                std::fs::metadata(host).map_err(|source| Error::MountSource {
                    host: host.clone(),
                    target: target.to_path_buf(),
                    source,
                })?;
                (
                    target,
                    Planned::Bind {
                        host,
                        read_only: *read_only,
                    },
                )
            }
            Mount::Tmpfs { target: _ } => (target, Planned::Tmpfs),
        });
    }
    // Parents before children (stable: equal depths keep their order).
    planned.sort_by_key(|(target, _)| target.components().count());

    // Directories to replace by a tmpfs so that a missing target can be made.
    let mut opens: Vec<PathBuf> = Vec::new();
    for (i, (target, _)) in planned.iter().enumerate() {
        let inside_other = planned[..i]
            .iter()
            .any(|(earlier, _)| target.starts_with(earlier) && target != earlier);
        if inside_other || target.starts_with("/tmp") {
            continue; // made inside a mount of ours, which bwrap can write
        }
        let mut cur = PathBuf::from("/");
        for comp in target.components().skip(1) {
            let next = cur.join(comp);
            if std::fs::symlink_metadata(&next).is_err() {
                if !opens.contains(&cur) {
                    opens.push(cur);
                }
                break;
            }
            cur = next;
        }
    }
    for dir in &spec.open_dirs {
        let special = [Path::new("/proc"), Path::new("/dev")]
            .iter()
            .any(|p| dir.starts_with(p));
        if !dir.is_absolute()
            || dir.components().any(|c| matches!(c, Component::ParentDir))
            || special
        {
            return Err(Error::InvalidPath {
                path: dir.clone(),
                reason: "must be absolute, without `..`, not under /proc or /dev",
            });
        }
        let under_mount = planned.iter().any(|(target, _)| dir.starts_with(target));
        if !under_mount && !dir.starts_with("/tmp") && !opens.contains(dir) {
            opens.push(dir.clone());
        }
    }
    opens.sort_by_key(|p| p.components().count());

    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&std::ffi::OsStr]| args.extend(items.iter().map(|s| s.to_os_string()));
    let root = Path::new("/");
    if opens.first().is_some_and(|p| p == root) {
        rebind_children(root, &mut push);
    } else {
        push(&["--ro-bind".as_ref(), "/".as_ref(), "/".as_ref()]);
    }
    push(&[
        "--dev".as_ref(),
        "/dev".as_ref(),
        "--proc".as_ref(),
        "/proc".as_ref(),
    ]);
    push(&["--tmpfs".as_ref(), "/tmp".as_ref()]);
    for dir in opens.iter().filter(|p| p.as_path() != root) {
        push(&["--tmpfs".as_ref(), dir.as_os_str()]);
        rebind_children(dir, &mut push);
    }
    for (target, how) in &planned {
        match how {
            Planned::Bind { host, read_only } => {
                let flag = if *read_only { "--ro-bind" } else { "--bind" };
                push(&[flag.as_ref(), host.as_os_str(), target.as_os_str()]);
            }
            Planned::Tmpfs => push(&["--tmpfs".as_ref(), target.as_os_str()]),
        }
    }
    push(&["--chdir".as_ref(), workdir.as_os_str()]);
    push(&[
        "--unshare-pid".as_ref(),
        "--die-with-parent".as_ref(),
        "--new-session".as_ref(),
    ]);
    Ok(args)
}

/// Binds `dir`'s host entries again, read-only, onto a tmpfs at `dir`.
fn rebind_children(dir: &Path, push: &mut impl FnMut(&[&std::ffi::OsStr])) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if dir == Path::new("/") && ["proc", "dev", "tmp"].iter().any(|n| name == *n) {
            continue;
        }
        match std::fs::read_link(&path) {
            Ok(link) => push(&["--symlink".as_ref(), link.as_os_str(), path.as_os_str()]),
            Err(_) => push(&["--ro-bind-try".as_ref(), path.as_os_str(), path.as_os_str()]),
        }
    }
}

/// Where `bwrap` is on the parent's `PATH`.
fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    find_program("bwrap", &path)
}

/// Runs `true` in a minimal sandbox with `bwrap`.
async fn probe(bwrap: Option<PathBuf>) -> std::result::Result<PathBuf, Option<String>> {
    let bwrap = bwrap.ok_or(None)?;
    let output = tokio::process::Command::new(&bwrap)
        .args([
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--unshare-pid",
            "--die-with-parent",
            "--new-session",
            "--",
            "true",
        ])
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .stdin(Stdio::null())
        .output()
        .await;
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(None),
        Err(e) => Err(Some(format!("cannot run {}: {e}", bwrap.display()))),
        Ok(out) if out.status.success() => Ok(bwrap),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let status = ExitStatus::from(out.status);
            Err(Some(if stderr.is_empty() {
                format!("{} failed with {status}", bwrap.display())
            } else {
                stderr
            }))
        }
    }
}

fn probe_error(failure: Option<String>) -> Error {
    match failure {
        None => Error::SandboxMissing,
        Some(reason) => Error::SandboxUnusable { reason },
    }
}

static PROBE: tokio::sync::OnceCell<std::result::Result<PathBuf, Option<String>>> =
    tokio::sync::OnceCell::const_new();

async fn check_sandbox_path() -> Result<PathBuf> {
    PROBE
        .get_or_init(|| probe(find_bwrap()))
        .await
        .clone()
        .map_err(probe_error)
}

/// Takes bubblewrap as usable without probing it: in a step's supervisor, whose launcher
/// checked the sandbox before it launched any step (a probe per step would double the
/// sandbox's cost). A bubblewrap that fails anyway fails the step with its message. Looked
/// up once per process (a step host trusts it for every step it runs).
fn trust_sandbox() {
    if PROBE.initialized() {
        return;
    }
    if let Some(bwrap) = find_bwrap() {
        let _ = PROBE.set(Ok(bwrap));
    }
}

/// Whether sandboxed steps can run here: bubblewrap is installed and can
/// create a sandbox. Checked once per process; the error names the cause
/// and the way out (`--no-sandbox`).
pub async fn check_sandbox() -> Result<()> {
    check_sandbox_path().await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_bwrap_is_reported_as_missing() {
        let err = probe(None).await.map_err(probe_error);
        assert!(matches!(err, Err(Error::SandboxMissing)), "{err:?}");
        let err = probe(Some("/nonexistent/bwrap".into()))
            .await
            .map_err(probe_error);
        assert!(matches!(err, Err(Error::SandboxMissing)), "{err:?}");
        let msg = Error::SandboxMissing.to_string();
        assert!(msg.contains("--no-sandbox"), "{msg}");
    }

    #[tokio::test]
    async fn failing_bwrap_is_reported_as_unusable() {
        // `false` stands for a bwrap that cannot create namespaces.
        let Some(fake) = ["/usr/bin/false", "/bin/false"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        else {
            return;
        };
        let err = probe(Some(fake)).await.map_err(probe_error);
        match err {
            Err(e @ Error::SandboxUnusable { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("--no-sandbox") && msg.contains("user namespaces"),
                    "{msg}"
                );
            }
            other => panic!("expected SandboxUnusable, got {other:?}"),
        }
    }

    #[test]
    fn env_is_allowlisted_and_overridable() {
        let env = step_env(
            &[("HOME".into(), "/h".into()), ("A".into(), "1".into())],
            Path::new("/w"),
        );
        let keys: Vec<_> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(keys, ["PATH", "LANG", "PWD", "HOME", "A"]);
        assert!(env.contains(&("HOME".into(), "/h".into())));
    }

    #[test]
    fn missing_targets_open_their_parent() {
        let spec = ProcessSpec::new(["true"], "/nonexistent-step")
            .mount(Mount::Tmpfs {
                target: "/usr/cox-missing/deeper".into(),
            })
            .mount(Mount::Tmpfs {
                target: "/tmp/inside-tmp".into(),
            });
        let args =
            bwrap_args(&spec, Path::new("/h/work"), Path::new("/workspace")).expect("valid spec");
        let args: Vec<_> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        // `/workspace` is missing on the host: the root is rebuilt.
        assert!(!joined.contains("--ro-bind / /"), "{joined}");
        assert!(joined.contains("--ro-bind-try /usr /usr"), "{joined}");
        assert!(
            joined.contains("--tmpfs /usr --ro-bind-try /usr/bin /usr/bin"),
            "{joined}"
        );
        assert!(joined.contains("--bind /h/work /workspace"), "{joined}");
        assert!(
            joined.ends_with("--chdir /workspace --unshare-pid --die-with-parent --new-session")
        );
        let spec = ProcessSpec {
            open_dirs: vec!["/usr".into()],
            ..ProcessSpec::new(["true"], "/s").workdir("/tmp/w")
        };
        let args =
            bwrap_args(&spec, Path::new("/h/work"), Path::new("/tmp/w")).expect("valid spec");
        let joined = args.join(" ".as_ref()).to_string_lossy().into_owned();
        // An existing directory to write in: a tmpfs with its entries bound again.
        assert!(
            joined.contains("--ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --tmpfs /usr --ro-bind-try /usr/bin /usr/bin"),
            "{joined}"
        );
        let spec = ProcessSpec::new(["true"], "/s").workdir("/tmp/w");
        let args =
            bwrap_args(&spec, Path::new("/h/work"), Path::new("/tmp/w")).expect("valid spec");
        let joined = args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            joined.starts_with("--ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --bind"),
            "{joined}"
        );
    }

    #[test]
    fn a_program_found_on_path_is_found_again_only_while_it_is_there() {
        use std::os::unix::fs::PermissionsExt;
        let dirs = tempfile::tempdir().expect("temporary directory");
        let (first, second) = (dirs.path().join("a"), dirs.path().join("b"));
        for dir in [&first, &second] {
            std::fs::create_dir(dir).expect("PATH directory");
        }
        let path = std::env::join_paths([&first, &second]).expect("PATH");
        let put = |dir: &Path, mode: u32| {
            let file = dir.join("prog");
            std::fs::write(&file, "#!/bin/sh\n").expect("program");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("mode");
            file
        };
        // As execvp: a file without an execute bit is passed over.
        put(&first, 0o644);
        let later = put(&second, 0o755);
        assert_eq!(find_program("prog", &path), Some(later.clone()));
        assert_eq!(
            find_program("prog", &path),
            Some(later.clone()),
            "answered again"
        );
        // The answer is checked before it is given again: gone, it is searched anew.
        std::fs::remove_file(&later).expect("remove");
        assert_eq!(find_program("prog", &path), None);
        assert_eq!(
            find_program("sh", "relative:/bin".as_ref()),
            None,
            "left to execvp"
        );
    }

    #[test]
    fn relative_and_parent_paths_are_refused() {
        for bad in ["rel/x", "/a/../b", "/"] {
            let spec = ProcessSpec::new(["true"], "/s").mount(Mount::Tmpfs { target: bad.into() });
            let err = bwrap_args(&spec, Path::new("/h"), Path::new("/workspace"));
            assert!(
                matches!(err, Err(Error::InvalidPath { .. })),
                "{bad}: {err:?}"
            );
        }
    }
}
