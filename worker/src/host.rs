//! The step host: one long-lived process, `cox __host`, that supervises many steps for one
//! executor, so that a step with nothing to place or collect costs no `cox` process of its
//! own.
//!
//! # What it does for each step
//!
//! Exactly what a step's own supervisor does ([`crate::local::Detached`]): it holds the
//! step's lock file for as long as the step runs (the executor locks the file and hands the
//! locked descriptor over the socket, so there is no moment when the step runs unlocked),
//! writes its pid on the lock file's first line (`PID host`), runs the step (the in-step
//! wrapper's work done in the host, the program started from the host: plain, in its own
//! process group, or in bubblewrap), writes the step's log and [`crate::local::EXIT_FILE`],
//! then closes the lock. A scheduler that restarts adopts the step by its lock file, as it
//! adopts a supervisor's.
//!
//! # Protocol
//!
//! The executor starts the host with one end of a `SOCK_SEQPACKET` socket pair as its
//! standard input, in a process group of its own and with no tie to the executor's life.
//! Each request is one message: `GRACE_MS`, a NUL, the absolute step directory, with the
//! locked lock file as `SCM_RIGHTS`. When a step has ended (its record written and its lock
//! closed), the host answers with one message, the step directory. Nothing else is said:
//! a request the host cannot read is dropped with its lock, which the executor sees as a
//! lost step.
//!
//! To stop a step, the executor (or a later one that adopted the step) creates
//! [`STOP_FILE`] in the step directory and sends SIGUSR1 to the host, which then stops
//! every step that has that file (SIGTERM to the whole step, SIGKILL after the grace).
//!
//! # Life
//!
//! The host ends once its executor has closed the socket (ended, or was killed) and its last
//! step has been recorded. It is single-threaded (a current-thread runtime). If it dies, its
//! steps' locks close without a record: each such step is lost (`Error`), as with a dead
//! supervisor, and the executor starts a new host for the next step.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::local::{Detached, HOSTED_MARK, record_step};
use crate::spec::ProcessSpec;

/// The host's hidden subcommand.
pub const HOST_SUBCOMMAND: &str = "__host";
/// In a hosted step's directory: asks its host to stop the step (see the module doc).
pub const STOP_FILE: &str = "stop.request";

/// The longest request or answer: a step directory path, with room to spare.
const MAX_MESSAGE: usize = 64 * 1024;

/// The executor's side: starts a host when it needs one and hands it steps.
#[derive(Debug)]
pub struct StepHost {
    /// The binary with the [`HOST_SUBCOMMAND`].
    cox: PathBuf,
    /// Where the host's own messages go (appended).
    messages: PathBuf,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

#[derive(Debug)]
struct Connection {
    socket: UnixStream,
    pid: u32,
    /// Steps launched and not yet reported, by step directory.
    waiting: std::sync::Mutex<HashMap<PathBuf, oneshot::Sender<()>>>,
    /// The host closed its end (or the socket failed): start another.
    closed: AtomicBool,
}

impl StepHost {
    /// A host client for the binary `cox`; the host's messages go to `messages`.
    pub fn new(cox: PathBuf, messages: PathBuf) -> Self {
        StepHost {
            cox,
            messages,
            connection: tokio::sync::Mutex::new(None),
        }
    }

    /// Writes `spec` into its step directory and hands the step to the host (started
    /// first, when there is none or it died).
    pub async fn launch(&self, spec: &ProcessSpec, grace: Duration) -> Result<Detached> {
        let (step_dir, lock) = Detached::write_launch(spec)?;
        let mut message = grace.as_millis().to_string().into_bytes();
        message.push(0);
        message.extend_from_slice(step_dir.as_os_str().as_bytes());
        if message.len() > MAX_MESSAGE {
            return Err(Error::StepDir {
                path: step_dir,
                source: std::io::Error::other("path too long for the step host"),
            });
        }
        let mut last_error = None;
        // A host found dead when the request is sent did not get it: once more, with a new one.
        for _ in 0..2 {
            let connection = self.connection().await?;
            let (done_tx, done_rx) = oneshot::channel();
            connection.lock_waiting().insert(step_dir.clone(), done_tx);
            match connection.send(&message, lock.as_fd()).await {
                Ok(()) => return Ok(Detached::hosted(step_dir, connection.pid, done_rx)),
                Err(e) => {
                    tracing::warn!(pid = connection.pid, error = %e, "step host gone; starting another");
                    connection.lock_waiting().remove(&step_dir);
                    connection.closed.store(true, Ordering::SeqCst);
                    last_error = Some(e);
                }
            }
        }
        Err(Error::Spawn {
            program: format!("{} {HOST_SUBCOMMAND}", self.cox.display()),
            source: last_error.unwrap_or_else(|| std::io::Error::other("step host unreachable")),
        })
    }

    /// The live connection, or a new host's.
    async fn connection(&self) -> Result<Arc<Connection>> {
        let mut current = self.connection.lock().await;
        if let Some(c) = current.as_ref()
            && !c.closed.load(Ordering::SeqCst)
        {
            return Ok(c.clone());
        }
        let started = Arc::new(self.start()?);
        tokio::spawn(read_answers(started.clone()));
        *current = Some(started.clone());
        Ok(started)
    }

    fn start(&self) -> Result<Connection> {
        let spawn_error = |source| Error::Spawn {
            program: format!("{} {HOST_SUBCOMMAND}", self.cox.display()),
            source,
        };
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| spawn_error(e.into()))?;
        let messages = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.messages)
            .map_err(|source| Error::StepDir {
                path: self.messages.clone(),
                source,
            })?;
        let mut child = tokio::process::Command::new(&self.cox)
            .arg(HOST_SUBCOMMAND)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::from(messages))
            .process_group(0)
            .spawn()
            .map_err(spawn_error)?;
        let pid = child.id().unwrap_or(0);
        tracing::debug!(pid, "step host started");
        // Reaped when it ends; it is never killed from here (its steps outlive us).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(Connection {
            socket: seqpacket(ours).map_err(spawn_error)?,
            pid,
            waiting: std::sync::Mutex::default(),
            closed: AtomicBool::new(false),
        })
    }
}

impl Connection {
    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, oneshot::Sender<()>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn send(&self, message: &[u8], lock: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        self.socket
            .async_io(Interest::WRITABLE, || {
                let fds = [lock];
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                control.push(SendAncillaryMessage::ScmRights(&fds));
                rustix::net::sendmsg(
                    &self.socket,
                    &[IoSlice::new(message)],
                    &mut control,
                    SendFlags::NOSIGNAL,
                )
                .map(drop)
                .map_err(std::io::Error::from)
            })
            .await
    }
}

/// Wakes each launched step's waiter when the host reports its end; when the host closes
/// its end, drops them all (their steps are then judged by their locks).
async fn read_answers(connection: Arc<Connection>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let received = connection
            .socket
            .async_io(Interest::READABLE, || {
                rustix::net::recv(&connection.socket, &mut buf[..], RecvFlags::empty())
                    .map(|(n, _)| n)
                    .map_err(std::io::Error::from)
            })
            .await;
        match received {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let dir = PathBuf::from(OsStr::from_bytes(&buf[..n]));
                if let Some(done) = connection.lock_waiting().remove(&dir) {
                    let _ = done.send(());
                }
            }
        }
    }
    connection.closed.store(true, Ordering::SeqCst);
    connection.lock_waiting().clear();
}

/// Our end of the socket pair, registered with the runtime. (Tokio's `UnixStream` serves
/// any unix socket here: only its readiness is used, the calls are ours.)
fn seqpacket(fd: OwnedFd) -> std::io::Result<UnixStream> {
    rustix::io::ioctl_fionbio(&fd, true)?;
    UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))
}

/// One request as the host received it.
struct Request {
    grace: Duration,
    step_dir: PathBuf,
    lock: OwnedFd,
}

/// `cox __host`: serves the executor on standard input (see the module doc); 0 once the
/// executor is gone and every step recorded.
pub fn host_main(_args: &[String]) -> i32 {
    let Some(runtime) = crate::wrapper::step_runtime("cox-host") else {
        return 1;
    };
    match runtime.block_on(serve()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cox-host: {e}");
            1
        }
    }
}

async fn serve() -> std::result::Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let socket = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("standard input: {e}"))?;
    let socket = seqpacket(socket).map_err(|e| format!("standard input: {e}"))?;
    let mut stop_requests =
        signal(SignalKind::user_defined1()).map_err(|e| format!("SIGUSR1: {e}"))?;
    let mut steps = tokio::task::JoinSet::new();
    let mut running: HashMap<tokio::task::Id, (PathBuf, CancellationToken)> = HashMap::new();
    let mut client = true;
    let mut buf = vec![0u8; MAX_MESSAGE];
    while client || !steps.is_empty() {
        tokio::select! {
            request = receive(&socket, &mut buf), if client => match request {
                Ok(Some(Request { grace, step_dir, lock })) => {
                    let stop = CancellationToken::new();
                    if step_dir.join(STOP_FILE).exists() {
                        stop.cancel();
                    }
                    let handle = steps.spawn(host_step(step_dir.clone(), grace, lock, stop.clone()));
                    running.insert(handle.id(), (step_dir, stop));
                }
                Ok(None) => client = false,
                Err(e) => eprintln!("cox-host: {e}"),
            },
            Some(ended) = steps.join_next_with_id() => {
                let id = match &ended {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                if let Some((step_dir, _)) = running.remove(&id)
                    && client
                    && let Err(e) = answer(&socket, &step_dir).await
                {
                    eprintln!("cox-host: cannot report the end of {}: {e}", step_dir.display());
                }
            },
            Some(()) = stop_requests.recv() => {
                for (step_dir, stop) in running.values() {
                    if step_dir.join(STOP_FILE).exists() {
                        stop.cancel();
                    }
                }
            },
        }
    }
    Ok(())
}

/// The next request; `None` once the executor closed its end.
async fn receive(
    socket: &UnixStream,
    buf: &mut [u8],
) -> std::result::Result<Option<Request>, String> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let (n, lock) = socket
        .async_io(Interest::READABLE, || {
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let received = rustix::net::recvmsg(
                socket,
                &mut [IoSliceMut::new(buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            let mut lock = None;
            for message in control.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = message {
                    for fd in fds {
                        lock.get_or_insert(fd);
                    }
                }
            }
            Ok((received.bytes, lock))
        })
        .await
        .map_err(|e| format!("reading a request: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    let text = &buf[..n];
    let parsed = text.iter().position(|&b| b == 0).and_then(|nul| {
        let grace = std::str::from_utf8(&text[..nul]).ok()?.parse().ok()?;
        Some((grace, PathBuf::from(OsStr::from_bytes(&text[nul + 1..]))))
    });
    match (parsed, lock) {
        (Some((grace, step_dir)), Some(lock)) if step_dir.is_absolute() => Ok(Some(Request {
            grace: Duration::from_millis(grace),
            step_dir,
            lock,
        })),
        _ => Err(format!(
            "malformed request ignored: {:?}",
            String::from_utf8_lossy(text)
        )),
    }
}

async fn answer(socket: &UnixStream, step_dir: &Path) -> std::io::Result<()> {
    socket
        .async_io(Interest::WRITABLE, || {
            rustix::net::send(socket, step_dir.as_os_str().as_bytes(), SendFlags::NOSIGNAL)
                .map(drop)
                .map_err(std::io::Error::from)
        })
        .await
}

/// One step, as its own supervisor would run it; the lock closes when this returns, after
/// the record is written.
async fn host_step(step_dir: PathBuf, grace: Duration, lock: OwnedFd, stop: CancellationToken) {
    let mut lock = std::fs::File::from(lock);
    // One write (`writeln!` on a file makes one per piece).
    let line = format!("{} {HOSTED_MARK}\n", std::process::id());
    if let Err(e) = lock.write_all(line.as_bytes()) {
        eprintln!(
            "cox-host: {}: {e}",
            step_dir.join(crate::local::LOCK_FILE).display()
        );
        return;
    }
    if let Err(e) = record_step(&step_dir, grace, &stop).await {
        // As a supervisor's messages: after the pid, in the lock file.
        let _ = writeln!(lock, "cox-host: {e}");
    }
}
