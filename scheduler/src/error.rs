//! The scheduler's error type.

use std::path::PathBuf;

/// The scheduler's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the scheduler's shell (store, codec, actors, engine).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A lock inside the process was poisoned by a panic elsewhere.
    #[error("internal lock poisoned by an earlier panic")]
    Poisoned,
    /// A value could not be encoded for the store.
    #[error("cannot encode {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        message: String,
    },
    /// Stored bytes could not be decoded.
    #[error("cannot decode {what}: {message}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// Stored bytes were written by a format this build does not read.
    #[error(
        "cannot decode {what}: stored format version {found}, this cox reads version {supported}"
    )]
    UnsupportedFormat {
        /// What was being decoded.
        what: &'static str,
        /// The version byte found.
        found: u8,
        /// The version this build writes and reads.
        supported: u8,
    },
    /// Another process holds the store's lock.
    #[error(
        "another cox process is using {}; wait for it to finish, or set COX_HOME to another directory",
        home.display()
    )]
    Locked {
        /// The store directory.
        home: PathBuf,
    },
    /// The store failed (I/O, corruption).
    #[error("store {}: {source}", path.display())]
    Store {
        /// The store directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// The store's disk (or the user's quota) is full: the write did not happen.
    #[error(
        "store {}: no space left on device; nothing was lost, and writes resume once space is freed",
        path.display()
    )]
    NoSpace {
        /// The store directory.
        path: PathBuf,
    },
    /// The store was written by a newer cox.
    #[error(
        "store {}: written in format version {found}, this cox reads version {supported} and older; use a newer cox",
        path.display()
    )]
    UnsupportedStore {
        /// The store directory.
        path: PathBuf,
        /// The newest version found.
        found: u8,
        /// The version this build writes.
        supported: u8,
    },
    /// The copy of an older store, made before migrating it, failed (nothing was migrated).
    #[error("store {}: cannot back it up to {} before migrating it: {source}", path.display(), backup.display())]
    Backup {
        /// The store directory.
        path: PathBuf,
        /// Where the copy was going.
        backup: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored record could not be read back.
    #[error("store record {key}: {source}")]
    Record {
        /// The record's key.
        key: String,
        /// Why it could not be decoded.
        #[source]
        source: Box<Error>,
    },
    /// No home directory could be found for the default `COX_HOME`.
    #[error("no home directory: set COX_HOME (or HOME or XDG_DATA_HOME)")]
    NoHome,
    /// The home directory could not be created.
    #[error("{}: cannot create directory: {source}", path.display())]
    CreateHome {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No run has this name.
    #[error("run {0}: not found")]
    RunNotFound(String),
    /// A run's `OnWorkflowDeletion` artifacts could not be deleted; the run is kept.
    #[error(
        "run {run}: cannot delete its artifacts (artifactGC OnWorkflowDeletion), so the run is kept: {message}"
    )]
    ArtifactGc {
        /// The run.
        run: String,
        /// Why.
        message: String,
    },
    /// A run with this name already exists.
    #[error("run {0}: already exists")]
    RunExists(String),
    /// No stored object of this kind has this name.
    #[error("{kind} {name}: not found")]
    ObjectNotFound {
        /// The kind (`WorkflowTemplate`, `ClusterWorkflowTemplate`, `ConfigMap`).
        kind: &'static str,
        /// The object's name.
        name: String,
    },
    /// A stored object of this kind already has this name.
    #[error("{kind} {name}: already exists")]
    ObjectExists {
        /// The kind.
        kind: &'static str,
        /// The object's name.
        name: String,
    },
    /// A lifecycle request (suspend, resume, stop, set) does not apply to the run as it is.
    #[error("run {run}: {message}")]
    Lifecycle {
        /// The run's name.
        run: String,
        /// Why it was refused.
        message: String,
    },
    /// The workflow cannot be submitted (no name, cannot be encoded).
    #[error("cannot submit workflow: {0}")]
    Submit(String),
    /// A run actor could not be started, answered an error, or stopped before its run finished.
    #[error("run {run}: {message}")]
    Actor {
        /// The run's name.
        run: String,
        /// What happened.
        message: String,
    },
}

impl Error {
    /// Whether trying again later may succeed (the store is busy, or its disk full).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Locked { .. } | Error::NoSpace { .. })
    }
}
