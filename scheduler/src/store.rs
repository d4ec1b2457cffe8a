//! The durable store of runs: sled at `$COX_HOME/store`.
//!
//! Trees:
//! - `runs`: run name -> encoded [`RunState`] header, without its nodes (see [`crate::codec`]).
//! - `nodes`: run name, a zero byte, node id -> encoded node. A transition rewrites only the
//!   nodes it changed, with the header, atomically (see below), so a run of ten thousand
//!   nodes costs a few small writes per event, not the whole run.
//! - `intents`: run name -> the run's last transition ([`Intent`], see below).
//! - `runs_by_created`: creation time (big-endian milliseconds) followed by the name -> name,
//!   so `list` is in submission order without decoding every run.
//! - `workflow_templates`, `configmaps`, `secrets`: namespace, a zero byte, name -> the object as JSON
//!   text; `cluster_workflow_templates`: name -> the object (see [`ObjectKind`]).
//! - `quarantine`: the damaged records of quarantined runs, byte for byte, under their tree,
//!   a zero byte and their key ([`Store::quarantine_run`]).
//! - the default tree's `format_version`: the format of every record (see [`crate::migrate`]).
//! - the default tree's `epoch`: a big-endian counter that grows by one, flushed, each time
//!   the store is opened ([`Store::epoch`]); attempt ids carry it, so a result of an attempt
//!   launched by an earlier process can never pass for one of this process's.
//!
//! Every write is flushed before it returns; one that fails (a full disk) is an error, and
//! as sled refuses every later write of an opening that saw an I/O error, the next
//! operation opens the database again, so writes succeed again once there is space.
//!
//! Every write is flushed before it returns: the run actor persists a state before it
//! performs the actions that state produced, so after a crash the store is never behind
//! what was done.
//!
//! # A transition: its intent, then its records, one flush
//!
//! sled makes a write of several keys atomic (a transaction) by writing and syncing a
//! manifest of its own, so a flushed transaction waits for two synced writes. A transition
//! of a run ([`Store::put_run`]) is instead written as plain inserts, all flushed at once
//! (one synced write): first its [`Intent`] (the header, if changed, and the changed nodes,
//! encoded as in their trees) under the run's name in `intents`, then those records in
//! `runs` and `nodes`; once flushed, the intent is removed (made durable by the next
//! flush). sled recovers a prefix of the writes made (its own crash tests check that), so
//! after a crash either the intent is there and the records that followed it may be missing
//! (opening the store writes them again: [`apply_left_intents`]), or it is not and neither
//! is any record of that transition (an intent left then is the previous transition's,
//! whose records were flushed: writing them again changes nothing). Readers
//! in this process never see a transition half written (the records are written under
//! [`Store::applying`]). A transition of more than [`INTENT_MAX`] bytes and the writes of
//! a whole run (replacement, quarantine) are transactions that also remove the run's
//! intent; deletion removes the intent first, and a run being created has none.
//!
//! # Locking
//! sled locks the store directory exclusively (an OS file lock, released when the process
//! exits, even on a crash). A second process (or a second `Store` in one process) fails with
//! [`Error::Locked`], after waiting up to the given `lock_wait` for the holder to finish.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sled::transaction::Transactional;
use tracing::{info, warn};

use crate::codec;
use crate::error::{Error, Result};
use crate::machine::{Node, Nodes, Phase, RunState};

const RUNS: &str = "runs";
const RUNS_BY_CREATED: &str = "runs_by_created";
const NODES: &str = "nodes";
const NODE: &str = "node";
const INTENTS: &str = "intents";
const INTENT: &str = "run transition";
/// The largest transition written through an intent (its records are written twice); a
/// larger one (a node listing thousands of children) is a transaction.
const INTENT_MAX: usize = 16 * 1024;
/// How the message of a run whose record cannot be read starts.
pub const QUARANTINED: &str = "quarantined, its stored record is unreadable";
/// The tree keeping the damaged records of quarantined runs, byte for byte.
pub const QUARANTINE: &str = "quarantine";
/// The key of the store epoch in the default tree.
const EPOCH: &[u8] = b"epoch";
const RUN: &str = "run state";
/// How often a waiting open tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(100);
/// How long reopening after a write failure waits for the broken opening's lock.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

/// The kinds of objects kept beside runs, one tree each. Objects are stored as their JSON
/// text (encoded like every record), as the API received them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Argo `WorkflowTemplate` (namespaced).
    WorkflowTemplate,
    /// Argo `ClusterWorkflowTemplate` (not namespaced).
    ClusterWorkflowTemplate,
    /// Kubernetes `ConfigMap` (namespaced).
    ConfigMap,
    /// Kubernetes `Secret` (namespaced): keys of artifact buckets.
    Secret,
}

impl ObjectKind {
    /// The kind's name, as in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::WorkflowTemplate => "WorkflowTemplate",
            ObjectKind::ClusterWorkflowTemplate => "ClusterWorkflowTemplate",
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Secret => "Secret",
        }
    }

    /// The Kubernetes resource name, as Kubernetes' messages say it.
    pub fn resource(self) -> &'static str {
        match self {
            ObjectKind::WorkflowTemplate => "workflowtemplates.argoproj.io",
            ObjectKind::ClusterWorkflowTemplate => "clusterworkflowtemplates.argoproj.io",
            ObjectKind::ConfigMap => "configmaps",
            ObjectKind::Secret => "secrets",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(self, ObjectKind::ClusterWorkflowTemplate)
    }

    fn tree(self) -> &'static str {
        match self {
            ObjectKind::WorkflowTemplate => "workflow_templates",
            ObjectKind::ClusterWorkflowTemplate => "cluster_workflow_templates",
            ObjectKind::ConfigMap => "configmaps",
            ObjectKind::Secret => "secrets",
        }
    }

    /// The kind of a manifest's `kind:`, if it is one kept here.
    pub fn from_kind(kind: &str) -> Option<ObjectKind> {
        [
            ObjectKind::WorkflowTemplate,
            ObjectKind::ClusterWorkflowTemplate,
            ObjectKind::ConfigMap,
            ObjectKind::Secret,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

/// How [`Store::put_object`] treats an object that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Only a new object: an existing one is [`Error::ObjectExists`].
    Create,
    /// Only an existing object: a missing one is [`Error::ObjectNotFound`].
    Update,
    /// Either (`cox apply`).
    CreateOrUpdate,
}

/// One line of `cox list`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's name.
    pub name: String,
    /// Its workflow phase.
    pub phase: Phase,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// RFC 3339 start, once started.
    pub started_at: Option<String>,
    /// RFC 3339 end, once ended.
    pub finished_at: Option<String>,
    /// Why it is in its phase.
    pub message: String,
}

/// What a store last wrote (and flushed) of a run: the lineage and revision of its
/// [`Nodes`] map, so that the next write of that map looks only at the nodes changed after
/// that revision, and the nodes as written (a copy that shares them with the run), so that
/// it writes only those that differ: a node changed and changed back is not written again.
struct Written {
    lineage: u64,
    revision: u64,
    nodes: Nodes,
    /// The run's header as written ([`RunState::header`]).
    header: RunState,
}

/// A run's transition: records to put in `runs` (its header under the run's name; `None`: as
/// last written) and `nodes` (under their keys), each encoded as in its tree. Stored as is
/// as the run's intent (see the module doc).
#[derive(serde::Serialize, serde::Deserialize)]
struct Intent {
    header: Option<Vec<u8>>,
    nodes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Intent {
    /// Whether there is nothing to write.
    fn is_empty(&self) -> bool {
        self.header.is_none() && self.nodes.is_empty()
    }

    /// The bytes of its records and keys.
    fn size(&self) -> usize {
        self.header.as_ref().map_or(0, Vec::len)
            + self
                .nodes
                .iter()
                .map(|(key, bytes)| key.len() + bytes.len())
                .sum::<usize>()
    }

    /// Writes the records of run `name`'s transition (plain inserts, not flushed).
    fn write(&self, h: &Handles, name: &[u8]) -> std::result::Result<(), sled::Error> {
        if let Some(header) = &self.header {
            h.runs.insert(name, header.as_slice())?;
        }
        for (key, bytes) in &self.nodes {
            h.nodes.insert(key.as_slice(), bytes.as_slice())?;
        }
        Ok(())
    }
}

/// Writes the records of the intents left (see the module doc), removes the intents, then
/// flushes.
fn apply_left_intents(h: &Handles) -> Result<()> {
    let error = |e| store_error(&h.path, e);
    let mut names = Vec::new();
    for entry in h.intents.iter() {
        let (name, bytes) = entry.map_err(error)?;
        let intent: Intent = codec::decode(INTENT, &bytes)?;
        intent.write(h, &name).map_err(error)?;
        names.push(name);
    }
    // Removed only after every record is written: a crash meanwhile leaves them to do again.
    for name in &names {
        h.intents.remove(name).map_err(error)?;
    }
    if !names.is_empty() {
        h.db.flush().map_err(error)?;
        info!(path = %h.path.display(), runs = names.len(), "wrote the runs' last transitions again");
    }
    Ok(())
}

/// A write of a run: its records, and what the store knows of the run once they are flushed.
struct RunWrite {
    records: Intent,
    after: Option<Written>,
}

/// In debug builds (so in every test), checks a write of the nodes `changed` (keys) against
/// every node: with `before` (the last write of the same map; none for a whole write) it
/// must be exactly the nodes that differ from what was written then, whatever changed them.
#[cfg(debug_assertions)]
fn check_changed(state: &RunState, before: Option<&Written>, changed: &[(Vec<u8>, Vec<u8>)]) {
    let changed: std::collections::HashSet<&[u8]> =
        changed.iter().map(|(key, _)| key.as_slice()).collect();
    for (id, node) in &state.nodes {
        let differs = before.is_none_or(|before| before.nodes.get(id) != Some(node));
        assert_eq!(
            changed.contains(node_key(&state.name, id).as_slice()),
            differs,
            "run {}: node {id} {} but is {}written",
            state.name,
            if differs { "changed" } else { "did not change" },
            if differs { "not " } else { "" },
        );
    }
}

/// The sled database and its trees, as one opening has them.
struct Handles {
    path: PathBuf,
    db: sled::Db,
    runs: sled::Tree,
    by_created: sled::Tree,
    nodes: sled::Tree,
    intents: sled::Tree,
    /// One tree per [`ObjectKind`] (see [`Handles::objects`]).
    objects: [sled::Tree; 4],
}

impl Handles {
    fn open(path: &Path) -> Result<Handles> {
        std::fs::create_dir_all(path).map_err(|source| Error::CreateHome {
            path: path.to_path_buf(),
            source,
        })?;
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(|source| open_error(path, source))?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| store_error(path, e));
        Ok(Handles {
            path: path.to_path_buf(),
            runs: tree(RUNS)?,
            by_created: tree(RUNS_BY_CREATED)?,
            nodes: tree(NODES)?,
            intents: tree(INTENTS)?,
            objects: [
                tree(ObjectKind::WorkflowTemplate.tree())?,
                tree(ObjectKind::ClusterWorkflowTemplate.tree())?,
                tree(ObjectKind::ConfigMap.tree())?,
                tree(ObjectKind::Secret.tree())?,
            ],
            db,
        })
    }

    fn objects(&self, kind: ObjectKind) -> &sled::Tree {
        &self.objects[match kind {
            ObjectKind::WorkflowTemplate => 0,
            ObjectKind::ClusterWorkflowTemplate => 1,
            ObjectKind::ConfigMap => 2,
            ObjectKind::Secret => 3,
        }]
    }
}

/// The open store. Cheap to clone: clones share the database.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    /// The current opening; `None` while a broken one is being replaced.
    handles: Arc<RwLock<Option<Arc<Handles>>>>,
    /// Set when an operation failed with an I/O error (a full disk): sled then refuses every
    /// later write of that opening, so the next operation opens the database again.
    broken: Arc<AtomicBool>,
    /// This opening's epoch (see [`Store::epoch`]).
    epoch: u64,
    /// Per run, what was last written (and flushed) of its nodes, to write only what changed.
    written: Arc<Mutex<HashMap<String, Written>>>,
    /// Held (written) while a transition's records are written, so that readers (who read
    /// it) never see one half written.
    applying: Arc<RwLock<()>>,
    /// Flushes still to fail, as with a full disk (tests of what follows a failed flush).
    #[cfg(test)]
    failing_flushes: Arc<std::sync::atomic::AtomicUsize>,
    /// Write intents without their records, as a crash right after the intent reached the
    /// disk would leave them (tests).
    #[cfg(test)]
    intents_only: Arc<AtomicBool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating) the store at `path`; fails at once with [`Error::Locked`] when another
    /// process has it open.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_waiting(path, Duration::ZERO)
    }

    /// Open the store at `path`, waiting up to `lock_wait` for another process to release it.
    pub fn open_waiting(path: &Path, lock_wait: Duration) -> Result<Store> {
        let deadline = Instant::now() + lock_wait;
        loop {
            match Store::try_open(path) {
                Err(Error::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(LOCK_RETRY)
                }
                other => return other,
            }
        }
    }

    fn try_open(path: &Path) -> Result<Store> {
        let handles = Handles::open(path)?;
        crate::migrate::check_format(&handles.db, path)?;
        apply_left_intents(&handles)?;
        let epoch = next_epoch(&handles.db).map_err(|e| store_error(path, e))?;
        Ok(Store {
            path: path.to_path_buf(),
            handles: Arc::new(RwLock::new(Some(Arc::new(handles)))),
            broken: Default::default(),
            epoch,
            written: Default::default(),
            applying: Default::default(),
            #[cfg(test)]
            failing_flushes: Default::default(),
            #[cfg(test)]
            intents_only: Default::default(),
        })
    }

    /// The current opening; after an I/O failure, a new one (see [`Store::broken`]).
    fn h(&self) -> Result<Arc<Handles>> {
        if !self.broken.load(Ordering::Acquire)
            && let Some(handles) = self
                .handles
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        {
            return Ok(handles);
        }
        let mut slot = self.handles.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(handles) = slot.as_ref()
            && !self.broken.load(Ordering::Acquire)
        {
            return Ok(Arc::clone(handles));
        }
        // sled's file lock goes with the last handle of the broken opening: operations
        // still holding one finish (failing) within moments.
        *slot = None;
        let deadline = Instant::now() + REOPEN_WAIT;
        let handles = loop {
            match Handles::open(&self.path) {
                Ok(handles) => break handles,
                Err(Error::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(e) => return Err(e),
            }
        };
        // The broken opening may have flushed an intent without all of its records.
        apply_left_intents(&handles)?;
        // What the broken opening applied without flushing is gone: write runs whole again.
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.broken.store(false, Ordering::Release);
        info!(path = %self.path.display(), "store reopened after a write failure");
        let handles = Arc::new(handles);
        *slot = Some(Arc::clone(&handles));
        Ok(handles)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record a new run, created at `created_at`; fails if the name is taken. Flushed.
    pub fn create_run(&self, state: &RunState, created_at: DateTime<Utc>) -> Result<()> {
        let RunWrite {
            records: Intent {
                header,
                nodes: changed,
            },
            after,
        } = self.changes(state, true)?;
        let header = header.unwrap_or_default();
        let name = state.name.as_bytes();
        let index_key = created_key(created_at, &state.name);
        let h = self.h()?;
        let outcome =
            (&h.runs, &h.by_created, &h.nodes).transaction(|(runs, by_created, nodes)| {
                if runs.get(name)?.is_some() {
                    return sled::transaction::abort(());
                }
                runs.insert(name, header.as_slice())?;
                by_created.insert(index_key.as_slice(), name)?;
                for (key, bytes) in &changed {
                    nodes.insert(key.as_slice(), bytes.as_slice())?;
                }
                Ok(())
            });
        match outcome {
            Ok(()) => self.flush_remembering(&state.name, after),
            Err(sled::transaction::TransactionError::Abort(())) => {
                Err(Error::RunExists(state.name.clone()))
            }
            Err(sled::transaction::TransactionError::Storage(source)) => Err(self.error(source)),
        }
    }

    /// Write a run's transition (its header and the nodes that changed since the last write),
    /// atomically, and flush before returning (see the module doc).
    pub fn put_run(&self, state: &RunState) -> Result<()> {
        let write = self.changes(state, false)?;
        if write.records.is_empty() {
            // The store has this state already, flushed.
            self.remember(&state.name, write.after);
            return Ok(());
        }
        if write.records.size() > INTENT_MAX {
            // Written once rather than twice; the second synced write costs less than that.
            return self.transact(&state.name, write, &[]);
        }
        let RunWrite {
            records: intent,
            after,
        } = write;
        let name = state.name.as_bytes();
        let encoded = codec::encode(INTENT, &intent)?;
        let h = self.h()?;
        let written = {
            let _writing = self
                .applying
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            h.intents.insert(name, encoded).and_then(|_| {
                #[cfg(test)]
                if self.intents_only.load(Ordering::Acquire) {
                    return Ok(());
                }
                intent.write(&h, name)
            })
        };
        if let Err(e) = written {
            // Some records may be written and not others: the next write is whole.
            self.forget(&state.name);
            return Err(self.error(e));
        }
        self.flush_remembering(&state.name, after)?;
        #[cfg(test)]
        if self.intents_only.load(Ordering::Acquire) {
            return Ok(());
        }
        // Its records are on disk: the intent goes, with the next flush (until then, or if
        // a crash loses its removal, writing them again changes nothing).
        h.intents.remove(name).map_err(|e| self.error(e))?;
        Ok(())
    }

    /// What to write of `state`: its header unless it is as last written, and the nodes:
    /// every node with `all` or when the run's nodes are not the ones last written (another
    /// [`Nodes`] lineage, or the last write failed), else those changed since the last
    /// write.
    fn changes(&self, state: &RunState, all: bool) -> Result<RunWrite> {
        let written = self.written.lock().map_err(|_| Error::Poisoned)?;
        let last = written.get(&state.name).filter(|_| !all);
        let nodes = &state.nodes;
        let before = last.filter(|w| w.lineage == nodes.lineage());
        let mut changed = Vec::new();
        let mut add = |id: &str, node: &Node| -> Result<()> {
            changed.push((node_key(&state.name, id), codec::encode(NODE, node)?));
            Ok(())
        };
        match before {
            Some(before) => {
                for (id, node) in nodes.changed_since(before.revision) {
                    if before.nodes.get(id) != Some(node) {
                        add(id, node)?;
                    }
                }
            }
            None => {
                for (id, node) in nodes {
                    add(id, node)?;
                }
            }
        }
        #[cfg(debug_assertions)]
        check_changed(state, before, &changed);
        let header = state.header();
        let encoded = match last {
            // Compared, not encoded: the workflow's text is shared, not copied.
            Some(last) if last.header.same_header(&header) => {
                #[cfg(debug_assertions)]
                assert_eq!(
                    codec::encode(RUN, &last.header)?,
                    codec::encode(RUN, &header)?,
                    "run {}: the header changed but is not written",
                    state.name
                );
                None
            }
            _ => Some(codec::encode(RUN, &header)?),
        };
        Ok(RunWrite {
            records: Intent {
                header: encoded,
                nodes: changed,
            },
            // A finished run is not written again but whole (a retry): nothing to keep.
            after: (!state.is_finished()).then(|| Written {
                lineage: nodes.lineage(),
                revision: nodes.revision(),
                nodes: nodes.clone(),
                header,
            }),
        })
    }

    /// Flush a write of `run`'s nodes; once it is on disk, remember what was written.
    fn flush_remembering(&self, run: &str, after: Option<Written>) -> Result<()> {
        match self.flush() {
            Ok(()) => {
                self.remember(run, after);
                Ok(())
            }
            Err(e) => {
                // Not known to be on disk: the next write of the run writes every node.
                self.forget(run);
                Err(e)
            }
        }
    }

    /// What the store has of `run`, flushed (`None`: nothing to keep).
    fn remember(&self, run: &str, after: Option<Written>) {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        match after {
            Some(after) => written.insert(run.to_string(), after),
            None => written.remove(run),
        };
    }

    /// A run's state, if there is such a run.
    pub fn get_run(&self, name: &str) -> Result<Option<RunState>> {
        // A transition is read whole or not at all (see the module doc).
        let _reading = self.applying.read().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = self.get_header(name)? else {
            return Ok(None);
        };
        let mut state = state;
        for entry in self.h()?.nodes.scan_prefix(node_prefix(name)) {
            let (key, bytes) = entry.map_err(|e| self.error(e))?;
            let node = decode_node(&key, &bytes)?;
            state.nodes.insert(node.id.clone(), node);
        }
        Ok(Some(state))
    }

    /// A run's state without its nodes (enough for listings and its phase, times and
    /// workflow).
    pub(crate) fn get_header(&self, name: &str) -> Result<Option<RunState>> {
        let Some(bytes) = self
            .h()?
            .runs
            .get(name.as_bytes())
            .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        decode_run(name, &bytes).map(Some)
    }

    /// Every run, oldest first.
    pub fn list_runs(&self) -> Result<Vec<RunSummary>> {
        let mut out = Vec::new();
        for entry in self.h()?.by_created.iter() {
            let (key, name) = entry.map_err(|e| self.error(e))?;
            let name = String::from_utf8_lossy(&name).into_owned();
            // An index entry without its run is left by a crash between the two writes of a
            // delete; it is skipped, not an error.
            let state = match self.get_header(&name) {
                Ok(Some(state)) => state,
                Ok(None) => continue,
                // Quarantined: listed as Error, saying why, never resumed; other runs go on.
                Err(e @ Error::Record { .. }) => {
                    warn!(run = %name, error = %e, "run quarantined: its record is unreadable");
                    out.push(RunSummary {
                        created_at: created_from_key(&key),
                        name,
                        phase: Phase::Error,
                        started_at: None,
                        finished_at: None,
                        message: format!("{QUARANTINED}: {e}"),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            out.push(RunSummary {
                created_at: created_from_key(&key),
                name,
                phase: state.phase,
                started_at: state.started_at,
                finished_at: state.finished_at,
                message: state.message,
            });
        }
        Ok(out)
    }

    /// Runs whose stored header cannot be read, and why, by name.
    pub fn unreadable_runs(&self) -> Result<Vec<(String, Error)>> {
        let mut out = Vec::new();
        for entry in self.h()?.runs.iter() {
            let (key, bytes) = entry.map_err(|e| self.error(e))?;
            let name = String::from_utf8_lossy(&key).into_owned();
            if let Err(e) = decode_run(&name, &bytes) {
                out.push((name, e));
            }
        }
        Ok(out)
    }

    /// Quarantine a run whose stored records cannot all be read: its damaged records move,
    /// byte for byte, to the `quarantine` tree (key: their tree, a zero byte, their key), and
    /// the run is stored as ended in `Error`, its message saying it was quarantined and why
    /// (`reason`). The nodes that can be read stay. One flushed transaction; the new state.
    pub fn quarantine_run(&self, name: &str, reason: &str, now: DateTime<Utc>) -> Result<RunState> {
        let h = self.h()?;
        let mut damaged: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let message = format!(
            "{QUARANTINED} ({reason}); its damaged records are kept in the store's {QUARANTINE} tree"
        );
        let header = h.runs.get(name.as_bytes()).map_err(|e| self.error(e))?;
        let mut state = match header.as_deref().map(|bytes| decode_run(name, bytes)) {
            Some(Ok(state)) => state,
            other => {
                if let Some(Err(_)) = other
                    && let Some(bytes) = &header
                {
                    damaged.push((quarantine_key(RUNS, name.as_bytes()), bytes.to_vec()));
                }
                let created = h
                    .by_created
                    .iter()
                    .filter_map(|entry| entry.ok())
                    .find(|(_, value)| value.as_ref() == name.as_bytes())
                    .map_or(now, |(key, _)| created_from_key(&key));
                RunState::quarantined(name, created)
            }
        };
        let mut damaged_nodes = Vec::new();
        for entry in h.nodes.scan_prefix(node_prefix(name)) {
            let (key, bytes) = entry.map_err(|e| self.error(e))?;
            match decode_node(&key, &bytes) {
                Ok(node) => {
                    state.nodes.insert(node.id.clone(), node);
                }
                Err(_) => {
                    damaged.push((quarantine_key(NODES, &key), bytes.to_vec()));
                    damaged_nodes.push(key);
                }
            }
        }
        state.phase = Phase::Error;
        state.message = message;
        state
            .finished_at
            .get_or_insert_with(|| now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let header = codec::encode(RUN, &state.header())?;
        let quarantine = h.db.open_tree(QUARANTINE).map_err(|e| self.error(e))?;
        let outcome: std::result::Result<(), sled::transaction::TransactionError<()>> =
            (&h.runs, &h.nodes, &quarantine, &h.intents).transaction(
                |(runs, nodes, quarantine, intents)| {
                    intents.remove(name.as_bytes())?;
                    for (key, bytes) in &damaged {
                        quarantine.insert(key.as_slice(), bytes.as_slice())?;
                    }
                    for key in &damaged_nodes {
                        nodes.remove(key.as_ref())?;
                    }
                    runs.insert(name.as_bytes(), header.as_slice())?;
                    Ok(())
                },
            );
        outcome.map_err(|e| match e {
            sled::transaction::TransactionError::Storage(source) => self.error(source),
            sled::transaction::TransactionError::Abort(()) => Error::Poisoned,
        })?;
        self.forget(name);
        self.flush()?;
        warn!(run = %name, reason, damaged = damaged.len(), "run quarantined");
        Ok(state)
    }

    /// The raw records quarantined for run `name`: the tree they came from and their key
    /// there, and their bytes.
    pub fn quarantined_records(&self, name: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let quarantine = self.tree(QUARANTINE)?;
        let readable = |key: &[u8]| String::from_utf8_lossy(key).replace('\0', "/");
        let mut out = Vec::new();
        let header = quarantine_key(RUNS, name.as_bytes());
        if let Some(bytes) = quarantine.get(&header).map_err(|e| self.error(e))? {
            out.push((readable(&header), bytes.to_vec()));
        }
        let nodes = quarantine_key(NODES, &node_prefix(name));
        for entry in quarantine.scan_prefix(&nodes) {
            let (key, bytes) = entry.map_err(|e| self.error(e))?;
            out.push((readable(&key), bytes.to_vec()));
        }
        Ok(out)
    }

    /// Names of the runs that have not finished, oldest first (to resume after a restart).
    pub fn unfinished_runs(&self) -> Result<Vec<String>> {
        Ok(self
            .list_runs()?
            .into_iter()
            .filter(|r| !r.phase.is_done())
            .map(|r| r.name)
            .collect())
    }

    /// Remove a run; whether it existed. Flushed.
    pub fn delete_run(&self, name: &str) -> Result<bool> {
        let h = self.h()?;
        // First: an intent left after some of the run's records were removed would bring
        // them back when the store is next opened.
        h.intents
            .remove(name.as_bytes())
            .map_err(|e| self.error(e))?;
        let existed = h
            .runs
            .remove(name.as_bytes())
            .map_err(|e| self.error(e))?
            .is_some();
        for entry in h.by_created.iter() {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            if value.as_ref() == name.as_bytes() {
                h.by_created.remove(key).map_err(|e| self.error(e))?;
            }
        }
        for entry in h.nodes.scan_prefix(node_prefix(name)) {
            let (key, _) = entry.map_err(|e| self.error(e))?;
            h.nodes.remove(key).map_err(|e| self.error(e))?;
        }
        // A quarantined run's damaged records go with it.
        let quarantine = h.db.open_tree(QUARANTINE).map_err(|e| self.error(e))?;
        quarantine
            .remove(quarantine_key(RUNS, name.as_bytes()))
            .map_err(|e| self.error(e))?;
        for entry in quarantine.scan_prefix(quarantine_key(NODES, &node_prefix(name))) {
            let (key, _) = entry.map_err(|e| self.error(e))?;
            quarantine.remove(key).map_err(|e| self.error(e))?;
        }
        self.forget(name);
        self.flush()?;
        Ok(existed)
    }

    /// Write a run's state whole: its header and every node, and remove the stored nodes it
    /// no longer has (a retry drops what runs again), in one transaction. Flushed.
    pub fn replace_run(&self, state: &RunState) -> Result<()> {
        self.write_whole(state)
    }

    /// [`Store::replace_run`]: every node, and no intent, in one flushed transaction.
    fn write_whole(&self, state: &RunState) -> Result<()> {
        let write = self.changes(state, true)?;
        let mut gone = Vec::new();
        let h = self.h()?;
        let written: std::collections::HashSet<&[u8]> = write
            .records
            .nodes
            .iter()
            .map(|(key, _)| key.as_slice())
            .collect();
        for entry in h.nodes.scan_prefix(node_prefix(&state.name)) {
            let (key, _) = entry.map_err(|e| self.error(e))?;
            if !written.contains(key.as_ref()) {
                gone.push(key);
            }
        }
        self.transact(&state.name, write, &gone)
    }

    /// Writes `write` of run `name` and removes the nodes `gone` (keys), without an intent
    /// (and removing any), in one flushed transaction.
    fn transact(&self, name: &str, write: RunWrite, gone: &[sled::IVec]) -> Result<()> {
        let RunWrite {
            records: Intent { header, nodes },
            after,
        } = write;
        let h = self.h()?;
        let run = name;
        let name = name.as_bytes();
        let outcome: std::result::Result<(), sled::transaction::TransactionError<()>> =
            (&h.runs, &h.nodes, &h.intents).transaction(|(runs, tree, intents)| {
                intents.remove(name)?;
                if let Some(header) = &header {
                    runs.insert(name, header.as_slice())?;
                }
                for key in gone {
                    tree.remove(key.as_ref())?;
                }
                for (key, bytes) in &nodes {
                    tree.insert(key.as_slice(), bytes.as_slice())?;
                }
                Ok(())
            });
        match outcome {
            Ok(()) => self.flush_remembering(run, after),
            Err(sled::transaction::TransactionError::Abort(())) => Ok(()),
            Err(sled::transaction::TransactionError::Storage(source)) => Err(self.error(source)),
        }
    }

    /// Store an object (its JSON text) under its namespace and name; flushed. The namespace
    /// is ignored for kinds that have none.
    pub fn put_object(
        &self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
        json: &str,
        mode: PutMode,
    ) -> Result<()> {
        let h = self.h()?;
        let tree = h.objects(kind);
        let key = object_key(kind, namespace, name);
        let bytes = codec::encode(kind.as_str(), &json.to_string())?;
        match mode {
            PutMode::Create => {
                let swapped = tree
                    .compare_and_swap(&key, None as Option<&[u8]>, Some(bytes))
                    .map_err(|e| self.error(e))?;
                if swapped.is_err() {
                    return Err(Error::ObjectExists {
                        kind: kind.as_str(),
                        name: name.to_string(),
                    });
                }
            }
            PutMode::Update => {
                // Replace only what is there: a concurrent delete wins over this update.
                let mut current = tree.get(&key).map_err(|e| self.error(e))?;
                loop {
                    let Some(old) = current else {
                        return Err(Error::ObjectNotFound {
                            kind: kind.as_str(),
                            name: name.to_string(),
                        });
                    };
                    match tree
                        .compare_and_swap(&key, Some(old), Some(bytes.clone()))
                        .map_err(|e| self.error(e))?
                    {
                        Ok(()) => break,
                        Err(conflict) => current = conflict.current,
                    }
                }
            }
            PutMode::CreateOrUpdate => {
                tree.insert(key, bytes).map_err(|e| self.error(e))?;
            }
        }
        self.flush()
    }

    /// A stored object's JSON text.
    pub fn get_object(
        &self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>> {
        let key = object_key(kind, namespace, name);
        let Some(bytes) = self
            .h()?
            .objects(kind)
            .get(&key)
            .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        decode_object(kind, &key, &bytes).map(Some)
    }

    /// The objects of a kind in a namespace (every namespace when `None`; the namespace is
    /// ignored for kinds that have none), by name.
    pub fn list_objects(&self, kind: ObjectKind, namespace: Option<&str>) -> Result<Vec<String>> {
        let h = self.h()?;
        let tree = h.objects(kind);
        let entries = match namespace.filter(|_| kind.is_namespaced()) {
            Some(namespace) => tree.scan_prefix(node_prefix(namespace)),
            None => tree.iter(),
        };
        let mut out = Vec::new();
        for entry in entries {
            let (key, bytes) = entry.map_err(|e| self.error(e))?;
            out.push(decode_object(kind, &key, &bytes)?);
        }
        Ok(out)
    }

    /// Remove an object; whether it existed. Flushed.
    pub fn delete_object(&self, kind: ObjectKind, namespace: &str, name: &str) -> Result<bool> {
        let key = object_key(kind, namespace, name);
        let existed = self
            .h()?
            .objects(kind)
            .remove(key)
            .map_err(|e| self.error(e))?
            .is_some();
        self.flush()?;
        Ok(existed)
    }

    /// The store epoch of this opening: one more than the previous opening's, persisted
    /// (flushed) before the store is handed out, so it grows on every start, crash or not.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Flush every tree to disk.
    pub(crate) fn flush(&self) -> Result<()> {
        #[cfg(test)]
        if self
            .failing_flushes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::NoSpace {
                path: self.path.clone(),
            });
        }
        self.h()?.db.flush().map(drop).map_err(|e| self.error(e))
    }

    /// The tree `name` of this store (opened on first use).
    pub(crate) fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.h()?.db.open_tree(name).map_err(|e| self.error(e))
    }

    /// A storage error of this store. An I/O error (a full disk) breaks sled's opening for
    /// good, so the next operation opens the database again (see [`Store::h`]).
    pub(crate) fn error(&self, source: sled::Error) -> Error {
        if matches!(source, sled::Error::Io(_)) {
            self.broken.store(true, Ordering::Release);
        }
        store_error(&self.path, source)
    }

    fn forget(&self, run: &str) {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(run);
    }
}

/// A storage error of the store at `path`; a full disk says so.
fn store_error(path: &Path, source: sled::Error) -> Error {
    if let sled::Error::Io(io) = &source
        && is_disk_full(io)
    {
        return Error::NoSpace {
            path: path.to_path_buf(),
        };
    }
    Error::Store {
        path: path.to_path_buf(),
        source,
    }
}

/// ENOSPC, or EDQUOT (a quota is a full disk to its user). sled hands out copies of its
/// first I/O error that keep only the kind and the text, so the text counts too.
fn is_disk_full(io: &std::io::Error) -> bool {
    matches!(
        io.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(io.raw_os_error(), Some(28 | 122))
        || io.to_string().contains("No space left on device")
}

/// Increments the persisted epoch and flushes it; a missing or malformed value counts as 0.
fn next_epoch(db: &sled::Db) -> sled::Result<u64> {
    let read = |bytes: Option<&[u8]>| {
        bytes
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes)
    };
    let new = db.update_and_fetch(EPOCH, |old| {
        Some(read(old).saturating_add(1).to_be_bytes().to_vec())
    })?;
    db.flush()?;
    Ok(read(new.as_deref()))
}

fn decode_run(name: &str, bytes: &[u8]) -> Result<RunState> {
    codec::decode_migrating::<RunState>(RUN, bytes).map_err(|e| Error::Record {
        key: format!("{RUNS}/{name}"),
        source: Box::new(e),
    })
}

fn decode_node(key: &[u8], bytes: &[u8]) -> Result<crate::machine::Node> {
    codec::decode_migrating::<crate::machine::Node>(NODE, bytes).map_err(|e| Error::Record {
        key: format!(
            "{NODES}/{}",
            String::from_utf8_lossy(key).replace('\0', "/")
        ),
        source: Box::new(e),
    })
}

/// A record's key in the `quarantine` tree: its tree, a zero byte, its key.
fn quarantine_key(tree: &str, key: &[u8]) -> Vec<u8> {
    let mut out = tree.as_bytes().to_vec();
    out.push(0);
    out.extend_from_slice(key);
    out
}

fn decode_object(kind: ObjectKind, key: &[u8], bytes: &[u8]) -> Result<String> {
    codec::decode(kind.as_str(), bytes).map_err(|e| Error::Record {
        key: format!(
            "{}/{}",
            kind.tree(),
            String::from_utf8_lossy(key).replace('\0', "/")
        ),
        source: Box::new(e),
    })
}

fn object_key(kind: ObjectKind, namespace: &str, name: &str) -> Vec<u8> {
    if kind.is_namespaced() {
        node_key(namespace, name)
    } else {
        name.as_bytes().to_vec()
    }
}

fn open_error(path: &Path, source: sled::Error) -> Error {
    // sled reports a held lock as an I/O error with this text (sled 0.34 `Config::try_lock`).
    if let sled::Error::Io(io) = &source
        && io.to_string().contains("could not acquire lock")
    {
        return Error::Locked {
            home: path.to_path_buf(),
        };
    }
    store_error(path, source)
}

fn node_prefix(run: &str) -> Vec<u8> {
    let mut key = run.as_bytes().to_vec();
    key.push(0);
    key
}

fn node_key(run: &str, node: &str) -> Vec<u8> {
    let mut key = node_prefix(run);
    key.extend_from_slice(node.as_bytes());
    key
}

fn created_key(created_at: DateTime<Utc>, name: &str) -> Vec<u8> {
    let millis = u64::try_from(created_at.timestamp_millis()).unwrap_or(0);
    let mut key = millis.to_be_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

fn created_from_key(key: &[u8]) -> DateTime<Utc> {
    let millis = key
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .and_then(|m| i64::try_from(m).ok())
        .unwrap_or(0);
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Action, Event};
    use crate::testsuite::{succeeded, workflow_from_yaml};

    const DAG: &str = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: marks}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    dag:\n      tasks:\n      - {name: a, template: step}\n      - {name: b, template: step, dependencies: [a]}\n      - {name: c, template: step, dependencies: [a]}\n  - name: step\n    container: {image: busybox, command: ['true']}\n";

    /// What [`mark_records`] puts in place of every stored node.
    const MARK: &[u8] = b"not rewritten";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    /// A started run of [`DAG`], created in a new store; the node launched first.
    fn started(dir: &Path) -> (Store, RunState, String) {
        let store = Store::open(dir).unwrap();
        let mut state = RunState::new(workflow_from_yaml(DAG), at(0)).unwrap();
        let actions = state.apply(Event::Start { now: at(1) });
        let launched = actions
            .iter()
            .find_map(|a| match a {
                Action::Launch(spec) => Some(spec.node_id.clone()),
                _ => None,
            })
            .unwrap();
        store.create_run(&state, at(0)).unwrap();
        (store, state, launched)
    }

    /// Replaces every stored node record of `run` with [`MARK`], to see which records the
    /// next write replaces.
    fn mark_records(store: &Store, run: &str) {
        let h = store.h().unwrap();
        for entry in h.nodes.scan_prefix(node_prefix(run)) {
            let (key, _) = entry.unwrap();
            h.nodes.insert(key, MARK).unwrap();
        }
    }

    /// The nodes whose record the last write replaced (each now holding the node as it is).
    fn rewritten(store: &Store, state: &RunState) -> Vec<String> {
        let prefix = node_prefix(&state.name);
        let mut out = Vec::new();
        for entry in store.h().unwrap().nodes.scan_prefix(&prefix) {
            let (key, bytes) = entry.unwrap();
            let id = String::from_utf8(key[prefix.len()..].to_vec()).unwrap();
            if bytes.as_ref() != MARK {
                assert_eq!(
                    bytes.to_vec(),
                    codec::encode(NODE, &state.nodes[&id]).unwrap()
                );
                out.push(id);
            }
        }
        out
    }

    /// The ids of the nodes of `now` that are not as in `before`.
    fn differing(before: &Nodes, now: &Nodes) -> Vec<String> {
        now.iter()
            .filter(|(id, node)| before.get(id) != Some(*node))
            .map(|(id, _)| id.clone())
            .collect()
    }

    #[test]
    fn a_write_replaces_exactly_the_nodes_changed_whatever_changed_them() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut state, a) = started(dir.path());
        let write = |state: &RunState| {
            mark_records(&store, &state.name);
            store.put_run(state).unwrap();
            rewritten(&store, state)
        };
        assert!(write(&state).is_empty(), "nothing changed");

        // The machine: the first step ends, its dependents start.
        let before = state.nodes.clone();
        state.apply(Event::StepFinished {
            node_id: a.clone(),
            outcome: succeeded(None),
            now: at(2),
        });
        let changed = differing(&before, &state.nodes);
        assert!(changed.contains(&a) && changed.len() >= 3, "{changed:?}");
        assert_eq!(write(&state), changed);

        // Asked for to change, left as it was: nothing to write.
        let _ = state.nodes.get_mut(&a).unwrap();
        assert!(write(&state).is_empty());
        // Changed, and changed back before the write: nothing either.
        state.nodes.get_mut(&a).unwrap().message = "x".into();
        state.nodes.get_mut(&a).unwrap().message.clear();
        assert!(write(&state).is_empty());

        state.nodes.get_mut(&a).unwrap().message = "changed".into();
        assert_eq!(write(&state), std::slice::from_ref(&a));

        let mut added = state.nodes[&a].clone();
        added.id = format!("{a}-copy");
        state.nodes.insert(added.id.clone(), added.clone());
        assert_eq!(write(&state), [added.id.clone()]);

        state.nodes.update_all(|node| node.message = "every".into());
        let all: Vec<String> = state.nodes.keys().cloned().collect();
        assert_eq!(write(&state), all);

        // A copy is another lineage: its revisions say nothing of what was written.
        let copy = state.clone();
        assert_eq!(write(&copy), all);

        let stored = store.get_run(&state.name).unwrap().unwrap();
        assert_eq!(stored.nodes, state.nodes);
    }

    #[test]
    fn the_header_is_written_only_when_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut state, a) = started(dir.path());
        let runs = store.h().unwrap().runs.clone();
        let header_rewritten = |state: &RunState| {
            runs.insert(state.name.as_bytes(), MARK).unwrap();
            store.put_run(state).unwrap();
            let stored = runs.get(state.name.as_bytes()).unwrap().unwrap();
            stored.as_ref() != MARK
        };
        state.nodes.get_mut(&a).unwrap().message = "node only".into();
        assert!(!header_rewritten(&state));
        // (The node records hold the nodes as they are.)
        assert_eq!(rewritten(&store, &state).len(), state.nodes.len());
        state.message = "the run's own".into();
        assert!(header_rewritten(&state));
        let stored = store.get_run(&state.name).unwrap().unwrap();
        assert_eq!(stored.message, state.message);
        assert_eq!(stored.nodes, state.nodes);
    }

    #[test]
    fn after_a_failed_flush_the_next_write_writes_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut state, a) = started(dir.path());
        let all: Vec<String> = state.nodes.keys().cloned().collect();
        assert!(all.len() >= 2, "{all:?}");

        state.nodes.get_mut(&a).unwrap().message = "lost?".into();
        store.failing_flushes.store(1, Ordering::Release);
        let failed = store.put_run(&state).unwrap_err();
        assert!(matches!(failed, Error::NoSpace { .. }), "{failed:?}");

        // What the failed write did is not trusted: every node is written again.
        mark_records(&store, &state.name);
        store.put_run(&state).unwrap();
        assert_eq!(rewritten(&store, &state), all);

        // Then only what changes.
        state.nodes.get_mut(&a).unwrap().message = "kept".into();
        mark_records(&store, &state.name);
        store.put_run(&state).unwrap();
        assert_eq!(rewritten(&store, &state), [a]);
    }

    fn intents(store: &Store) -> usize {
        store.h().unwrap().intents.len()
    }

    fn message(store: &Store, run: &str, node: &str) -> String {
        let state = store.get_run(run).unwrap().unwrap();
        state.nodes.get(node).unwrap().message.clone()
    }

    #[test]
    fn a_transition_left_as_its_intent_alone_is_written_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut state, a) = started(dir.path());
        state.nodes.get_mut(&a).unwrap().message = "intent only".into();
        store.intents_only.store(true, Ordering::Release);
        store.put_run(&state).unwrap();
        assert_eq!(intents(&store), 1);
        assert_eq!(
            message(&store, &state.name, &a),
            "",
            "its records are not written"
        );
        drop(store);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(intents(&store), 0, "written, then removed");
        assert_eq!(message(&store, &state.name, &a), "intent only");
        // The next transitions go on from it, their intents removed once written.
        state.nodes.get_mut(&a).unwrap().message = "next".into();
        store.put_run(&state).unwrap();
        assert_eq!(intents(&store), 0);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(message(&store, &state.name, &a), "next");
    }

    #[test]
    fn a_transition_larger_than_an_intent_is_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut state, a) = started(dir.path());
        let big = "x".repeat(INTENT_MAX + 1);
        state.nodes.get_mut(&a).unwrap().message = big.clone();
        store.intents_only.store(true, Ordering::Release);
        store.put_run(&state).unwrap();
        assert_eq!(intents(&store), 0);
        assert_eq!(message(&store, &state.name, &a), big, "written at once");
    }

    #[test]
    fn whole_writes_and_deletion_take_the_intent_away() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut state, a) = started(dir.path());
        let replaced = state.clone();
        state.nodes.get_mut(&a).unwrap().message = "superseded".into();
        store.intents_only.store(true, Ordering::Release);
        store.put_run(&state).unwrap();
        store.replace_run(&replaced).unwrap();
        assert_eq!(intents(&store), 0);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(message(&store, &state.name, &a), "", "not brought back");

        store.intents_only.store(true, Ordering::Release);
        store.put_run(&state).unwrap();
        assert!(store.delete_run(&state.name).unwrap());
        assert_eq!(intents(&store), 0);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(
            store.get_run(&state.name).unwrap().is_none(),
            "not brought back"
        );
        assert_eq!(store.h().unwrap().nodes.len(), 0);
    }

    #[test]
    fn a_finished_run_is_forgotten_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut state, a) = started(dir.path());
        store.put_run(&state).unwrap();
        let known = |store: &Store| store.written.lock().unwrap().contains_key("marks");
        assert!(known(&store));
        state.apply(Event::Stop {
            now: at(3),
            terminate: true,
        });
        state.apply(Event::StepFinished {
            node_id: a,
            outcome: crate::testsuite::failed(1),
            now: at(4),
        });
        assert!(state.is_finished(), "{:?}", state.phase());
        store.put_run(&state).unwrap();
        assert!(!known(&store), "nothing is kept of a finished run");
    }

    #[test]
    fn created_keys_sort_by_time_and_read_back() {
        let early = DateTime::from_timestamp_millis(1_000).unwrap();
        let late = DateTime::from_timestamp_millis(2_000_000).unwrap();
        assert!(created_key(early, "zzz") < created_key(late, "aaa"));
        assert_eq!(created_from_key(&created_key(late, "aaa")), late);
    }
}
