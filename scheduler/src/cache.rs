//! The step cache: Argo's template `memoize`, kept in the store instead of a ConfigMap.
//!
//! A memoized step (its [`StepSpec::memoize`] set by the machine) goes through
//! [`MemoizingExecutor`]:
//! - an entry for `(namespace, cache, key)` younger than `maxAge`, whose output artifacts
//!   are all still in the repository ([`Executor::missing_artifacts`]; an entry whose
//!   artifacts `artifactGC` deleted is evicted), answers at once: the step does not run, its outcome is the cached one with [`StepOutcome::cache_hit`] set
//!   (the node shows `memoizationStatus.hit: true`);
//! - otherwise, when the same entry is being computed by another step right now, this one
//!   waits for it, then looks again (two identical steps in flight run once);
//! - otherwise the step runs, and a `Succeeded` outcome is stored (flushed) before it is
//!   reported. Failed or errored outcomes are never stored.
//!
//! Entries have no size limit but the disk; `cox cache` lists, shows, deletes and prunes
//! them. Argo's cache lives in a ConfigMap (1 MiB in all); the cache's name here is the
//! `cache.configMap.name` the template gives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use cox_worker::step::{BoxFuture, Executor, Memoize, StepOutcome, StepPhase, StepSpec};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::actor::Clock;
use crate::codec;
use crate::error::{Error, Result};
use crate::store::Store;

/// The store tree holding the entries.
pub(crate) const TREE: &str = "step_cache";
/// Names the record in errors.
const ENTRY: &str = "step cache entry";

/// Where an entry lives: Argo's ConfigMap (namespace and name) and its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey {
    /// The workflow's namespace.
    pub namespace: String,
    /// The cache's name (`memoize.cache.configMap.name`).
    pub cache: String,
    /// The key (`memoize.key`, substituted).
    pub key: String,
}

impl EntryKey {
    /// The key of a step's memoization.
    pub fn of(m: &Memoize) -> EntryKey {
        EntryKey {
            namespace: m.namespace.clone(),
            cache: m.cache.clone(),
            key: m.key.clone(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        // NUL cannot occur in a Kubernetes name; the key is last, so it may hold anything.
        format!("{}\0{}\0{}", self.namespace, self.cache, self.key).into_bytes()
    }

    fn from_bytes(bytes: &[u8]) -> Option<EntryKey> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '\0');
        Some(EntryKey {
            namespace: parts.next()?.to_string(),
            cache: parts.next()?.to_string(),
            key: parts.next()?.to_string(),
        })
    }
}

/// One cached outcome (Argo's entry: node id, outputs, creation and last hit times).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The node whose outcome this is.
    pub node_id: String,
    /// The run the node belonged to.
    pub run: String,
    /// Its outcome (always `Succeeded`).
    pub outcome: StepOutcome,
    /// When it was stored (RFC 3339).
    pub created_at: String,
    /// When it was last used (RFC 3339).
    pub last_hit_at: Option<String>,
}

impl CacheEntry {
    /// Whether the entry is usable at `now` under `max_age_seconds`.
    pub fn fresh(&self, max_age_seconds: Option<u64>, now: DateTime<Utc>) -> bool {
        let Some(max) = max_age_seconds else {
            return true;
        };
        DateTime::parse_from_rfc3339(&self.created_at).is_ok_and(|created| {
            let age = now - created.with_timezone(&Utc);
            age.num_milliseconds() <= (max as i64).saturating_mul(1000)
        })
    }
}

/// A run's own repository (`status.artifactRepositoryRef`; `None`: the configured one).
type RunRepository = Option<cox_worker::repo_config::RepositoryLocation>;

/// The entries, over the store.
#[derive(Clone)]
pub struct StepCache {
    store: Store,
    /// Entries being computed now; a waiter is woken when the sender is dropped.
    in_flight: Arc<Mutex<HashMap<EntryKey, watch::Receiver<()>>>>,
}

impl std::fmt::Debug for StepCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepCache").finish_non_exhaustive()
    }
}

impl StepCache {
    /// The cache kept in `store`.
    pub fn new(store: Store) -> StepCache {
        StepCache {
            store,
            in_flight: Default::default(),
        }
    }

    fn tree(&self) -> Result<sled::Tree> {
        self.store.tree(TREE)
    }

    /// The entry at `key`, if any (whatever its age).
    pub fn get(&self, key: &EntryKey) -> Result<Option<CacheEntry>> {
        match self
            .tree()?
            .get(key.bytes())
            .map_err(|e| self.store.error(e))?
        {
            Some(bytes) => decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Store `entry` at `key` (replacing any), flushed.
    pub fn put(&self, key: &EntryKey, entry: &CacheEntry) -> Result<()> {
        let bytes = codec::encode(ENTRY, entry)?;
        self.tree()?
            .insert(key.bytes(), bytes)
            .map_err(|e| self.store.error(e))?;
        self.store.flush()
    }

    /// Every entry, in key order.
    pub fn list(&self) -> Result<Vec<(EntryKey, CacheEntry)>> {
        let mut out = Vec::new();
        for item in self.tree()?.iter() {
            let (k, v) = item.map_err(|e| self.store.error(e))?;
            let key = EntryKey::from_bytes(&k).ok_or_else(|| Error::Record {
                key: format!("{TREE}/{}", String::from_utf8_lossy(&k)),
                source: Box::new(Error::Decode {
                    what: ENTRY,
                    message: "malformed key".into(),
                }),
            })?;
            let entry = decode(&key, &v)?;
            out.push((key, entry));
        }
        Ok(out)
    }

    /// Delete the entries `matches` accepts; how many went. Flushed.
    pub fn delete_where(
        &self,
        mut matches: impl FnMut(&EntryKey, &CacheEntry) -> bool,
    ) -> Result<usize> {
        let tree = self.tree()?;
        let mut deleted = 0;
        for (key, entry) in self.list()? {
            if matches(&key, &entry) {
                tree.remove(key.bytes()).map_err(|e| self.store.error(e))?;
                deleted += 1;
            }
        }
        self.store.flush()?;
        Ok(deleted)
    }

    /// A fresh entry for `m`.
    fn fresh(&self, m: &Memoize, now: DateTime<Utc>) -> Result<Option<CacheEntry>> {
        let key = EntryKey::of(m);
        Ok(self
            .get(&key)?
            .filter(|entry| entry.fresh(m.max_age_seconds, now)))
    }

    /// Record a use of the entry at `key`: its last hit is `now`. The hit stands even when
    /// its time cannot be stored (a full disk).
    fn record_hit(&self, key: &EntryKey, mut entry: CacheEntry, now: DateTime<Utc>) -> CacheEntry {
        entry.last_hit_at = Some(now.to_rfc3339());
        if let Err(e) = self.put(key, &entry) {
            tracing::warn!(key = %key.key, error = %e, "cannot store a step cache entry's last hit");
        }
        entry
    }

    /// Claims `key` for computing, or returns the receiver to wait on when another step
    /// computes it now.
    fn claim(&self, key: &EntryKey) -> std::result::Result<Claim, watch::Receiver<()>> {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = in_flight.get(key)
            && rx.has_changed().is_ok()
        {
            return Err(rx.clone());
        }
        let (tx, rx) = watch::channel(());
        in_flight.insert(key.clone(), rx);
        Ok(Claim {
            cache: self.clone(),
            key: key.clone(),
            _tx: tx,
        })
    }
}

fn decode(key: &EntryKey, bytes: &[u8]) -> Result<CacheEntry> {
    codec::decode(ENTRY, bytes).map_err(|e| Error::Record {
        key: format!("{TREE}/{}/{}/{}", key.namespace, key.cache, key.key),
        source: Box::new(e),
    })
}

/// Whether the steps of `spec`'s run can read the artifacts of `entry`: not when one is in
/// a local directory other than the run's repository (a step is given its run's directory
/// alone), so such an entry is computed again for this run (and kept for others).
fn readable_by(entry: &CacheEntry, spec: &StepSpec) -> bool {
    entry.outcome.artifacts.iter().all(|a| {
        !matches!(
            &a.store,
            Some(cox_worker::repo_config::RepositoryLocation::Local { .. })
        ) || a.store == spec.repository
    })
}

/// The right to compute an entry; dropping it (the step ended, or was abandoned) wakes
/// the waiters.
struct Claim {
    cache: StepCache,
    key: EntryKey,
    _tx: watch::Sender<()>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut in_flight = self
            .cache
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.remove(&self.key);
    }
}

/// An [`Executor`] that answers memoized steps from the [`StepCache`] (see the module doc).
pub struct MemoizingExecutor {
    inner: Arc<dyn Executor>,
    cache: StepCache,
    clock: Arc<dyn Clock>,
}

impl MemoizingExecutor {
    /// Memoized steps of `inner` go through `cache`.
    pub fn new(inner: Arc<dyn Executor>, cache: StepCache, clock: Arc<dyn Clock>) -> Self {
        MemoizingExecutor {
            inner,
            cache,
            clock,
        }
    }

    async fn run_memoized(
        &self,
        spec: StepSpec,
        m: Memoize,
        cancel: CancellationToken,
    ) -> StepOutcome {
        let key = EntryKey::of(&m);
        let claim = loop {
            let now = self.clock.now();
            match self.cache.fresh(&m, now) {
                Ok(Some(entry))
                    if readable_by(&entry, &spec)
                        && self.artifacts_kept(&key, &entry, &spec).await =>
                {
                    let mut outcome = self.cache.record_hit(&key, entry, now).outcome;
                    // Artifacts in this run's repository are recorded as such; others
                    // keep the bucket they are in.
                    for a in &mut outcome.artifacts {
                        if a.store.is_some() && a.store == spec.repository {
                            a.store = None;
                        }
                    }
                    outcome.cache_hit = true;
                    outcome.started_at = Some(now.to_rfc3339());
                    outcome.finished_at = Some(now.to_rfc3339());
                    return outcome;
                }
                Ok(_) => {}
                Err(e) => return StepOutcome::error(format!("step cache: {e}")),
            }
            match self.cache.claim(&key) {
                Ok(claim) => break claim,
                Err(mut rx) => {
                    // Another step computes this entry: wait for it to end, then look again.
                    tokio::select! {
                        _ = rx.changed() => {}
                        () = cancel.cancelled() => {
                            return StepOutcome::error("stopped while waiting for a memoized step");
                        }
                    }
                }
            }
        };
        let outcome = self.inner.run(spec.clone(), cancel).await;
        if outcome.phase == StepPhase::Succeeded {
            let node = (spec.run.as_str(), spec.node_id.as_str());
            self.store_outcome(&key, node, spec.repository.as_ref(), &outcome);
        }
        drop(claim);
        outcome
    }

    /// Whether the artifacts of a cached outcome are all still where they were saved (one
    /// existence check each, in the artifact's recorded bucket, else this run's
    /// repository). An entry whose artifacts are gone (`artifactGC`, a deleted bucket) is a
    /// miss and is evicted; one that cannot be checked is a miss and is kept.
    async fn artifacts_kept(&self, key: &EntryKey, entry: &CacheEntry, spec: &StepSpec) -> bool {
        let mut batches: Vec<(cox_worker::step::ArtifactStore, Vec<String>)> = Vec::new();
        for a in &entry.outcome.artifacts {
            let repository = a.store.clone().or_else(|| spec.repository.clone());
            match batches.iter_mut().find(|(r, _)| *r == repository) {
                Some((_, keys)) => keys.push(a.key.clone()),
                None => batches.push((repository, vec![a.key.clone()])),
            }
        }
        let mut missing = Vec::new();
        for (repository, keys) in batches {
            match self.inner.missing_artifacts(repository, keys).await {
                Ok(gone) => missing.extend(gone),
                Err(e) => {
                    tracing::warn!(cache = %key.cache, key = %key.key, error = %e, "cannot check a step cache entry's artifacts; computing again");
                    return false;
                }
            }
        }
        match missing {
            missing if missing.is_empty() => true,
            missing => {
                tracing::info!(cache = %key.cache, key = %key.key, ?missing, "step cache entry evicted: its artifacts are gone");
                if let Err(e) = self.cache.delete_where(|k, e| k == key && e == entry) {
                    tracing::warn!(key = %key.key, error = %e, "cannot evict a step cache entry");
                }
                false
            }
        }
    }

    /// Store a succeeded outcome of node `node_id` of `run`, whose own repository is
    /// `repository`, under `key`; a failure to store is logged, the step's outcome stands.
    /// Its artifacts saved to the run's own repository are recorded there, so that a hit
    /// from a run with another repository reads them where they are.
    fn store_outcome(
        &self,
        key: &EntryKey,
        (run, node_id): (&str, &str),
        repository: Option<&cox_worker::repo_config::RepositoryLocation>,
        outcome: &StepOutcome,
    ) {
        let mut outcome = outcome.clone();
        for a in &mut outcome.artifacts {
            if a.store.is_none() {
                a.store = repository.cloned();
            }
        }
        let entry = CacheEntry {
            node_id: node_id.to_string(),
            run: run.to_string(),
            outcome,
            created_at: self.clock.now().to_rfc3339(),
            last_hit_at: None,
        };
        if let Err(e) = self.cache.put(key, &entry) {
            tracing::warn!(run = %run, node = %node_id, error = %e, "cannot store a memoized outcome");
        }
    }

    /// The cache entry a stored node was launched for: its memoization status (key and
    /// cache) in its run's namespace, and the run's own repository; `None` when the node is
    /// not memoized.
    fn stored_key(&self, run: &str, node_id: &str) -> Result<Option<(EntryKey, RunRepository)>> {
        let Some(mut state) = self.cache.store.get_run(run)? else {
            return Ok(None);
        };
        let Some(memo) = state.nodes.get(node_id).and_then(|n| n.memoization.clone()) else {
            return Ok(None);
        };
        let workflow = state.workflow().ok();
        let namespace = workflow
            .and_then(|wf| wf.metadata.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        let repository = workflow.and_then(crate::resolve::run_repository);
        let key = EntryKey {
            namespace,
            cache: memo.cache_name,
            key: memo.key,
        };
        Ok(Some((key, repository)))
    }
}

impl Executor for MemoizingExecutor {
    fn run(&self, spec: StepSpec, cancel: CancellationToken) -> BoxFuture<'_, StepOutcome> {
        match spec.memoize.clone() {
            Some(m) => Box::pin(self.run_memoized(spec, m, cancel)),
            None => self.inner.run(spec, cancel),
        }
    }

    fn check_repository(
        &self,
        location: &cox_worker::repo_config::RepositoryLocation,
    ) -> std::result::Result<(), String> {
        self.inner.check_repository(location)
    }

    fn use_secrets(&self, secrets: Arc<dyn cox_worker::repo_config::SecretSource>) {
        self.inner.use_secrets(secrets)
    }

    fn log_path(&self, run: &str, node_id: &str, attempt: u32) -> Option<std::path::PathBuf> {
        self.inner.log_path(run, node_id, attempt)
    }

    fn delete_artifacts(
        &self,
        repository: Option<cox_worker::repo_config::RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<(), String>> {
        self.inner.delete_artifacts(repository, keys)
    }

    fn missing_artifacts(
        &self,
        repository: Option<cox_worker::repo_config::RepositoryLocation>,
        keys: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<String>, String>> {
        self.inner.missing_artifacts(repository, keys)
    }

    fn may_have_started(&self, run: &str, node_id: &str, attempt: u32) -> bool {
        self.inner.may_have_started(run, node_id, attempt)
    }

    // An adopted memoized step (launched by an earlier process) is cached like any other
    // completion: its key is the one its node was launched with, as stored.
    fn adopt(
        &self,
        run: String,
        node_id: String,
        attempt: u32,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Option<StepOutcome>> {
        Box::pin(async move {
            let outcome = self
                .inner
                .adopt(run.clone(), node_id.clone(), attempt, cancel)
                .await?;
            if outcome.phase == StepPhase::Succeeded && !outcome.cache_hit {
                match self.stored_key(&run, &node_id) {
                    Ok(Some((key, repository))) => {
                        self.store_outcome(&key, (&run, &node_id), repository.as_ref(), &outcome)
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(run = %run, node = %node_id, error = %e, "cannot read an adopted step's memoization")
                    }
                }
            }
            Some(outcome)
        })
    }
}
