//! Global concurrency: Argo's `synchronization` (mutexes and semaphores) and the server's
//! workflow parallelism limits, as one pure admission [`Gate`] and the actor that owns it
//! ([`actor::GateActor`]).
//!
//! ```text
//!   run actor ── Request(holder, locks, priority) ──►  Gate: queue by (priority desc, seq asc)
//!   run actor ◄── LockGranted / LockWaiting ────────   admit(): grant every waiter whose locks
//!   run actor ── Release(holder) / ReleaseRun ──────►           have room, in queue order
//! ```
//!
//! # Admission
//! Waiters are ordered by priority (higher first), then by the order they asked (their
//! submission order). Unlike Argo, whose queue head blocks every waiter behind it, a waiter
//! whose locks all have room is admitted even when a waiter ahead of it waits on a held
//! lock (backfilling). So that backfilling cannot starve anyone, a waiter passed over
//! [`DEFAULT_AGING`] times reserves its locks: nobody behind it takes them until it has
//! been admitted (a waiter that needs a mutex reserves its mutexes only, so that the
//! semaphores it also needs stay busy meanwhile; it is ahead when a slot frees). Waiters
//! with the same set of locks form a class served first come first served, so a pass
//! looks at one head per class: its cost grows with the number of distinct lock sets,
//! not with the number of waiters.
//!
//! # Durability
//! The gate keeps nothing on disk. Holders are derived from the runs' stored state when the
//! engine starts (a run that started and has not finished holds its workflow-level locks, a
//! launched and unfinished step holds its template's), so a crash cannot leak a permit;
//! waiters ask again in the order the engine resumes them, which is their submission order.
//!
//! # Layout
//! - this module: [`Lock`], [`Holder`], the pure [`Gate`] and its [`LockStatus`] report.
//! - [`actor`]: [`actor::GateActor`], limits from ConfigMaps and the engine's config, metrics.

pub mod actor;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many times a blocked waiter may be passed over before it reserves its locks.
pub const DEFAULT_AGING: u32 = 8;

/// What kind of lock, and where its limit comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockKind {
    /// An Argo mutex: limit 1.
    Mutex,
    /// An Argo semaphore: the limit is the integer at `key` of ConfigMap `config_map`.
    Semaphore {
        /// The ConfigMap's namespace.
        namespace: String,
        /// The ConfigMap's name.
        config_map: String,
        /// The key of its data holding the limit.
        key: String,
    },
    /// Workflows running at once on the server (`namespace: None`) or in one namespace:
    /// the limit is the engine's configuration.
    Parallelism {
        /// The namespace, or `None` for the whole server.
        namespace: Option<String>,
    },
}

/// One lock: its key (Argo's lock name, e.g. `argo/Mutex/test` or
/// `argo/ConfigMap/my-config/workflow`) and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Lock {
    /// Argo's lock name (the key everything is indexed by).
    pub key: String,
    /// Its kind.
    pub kind: LockKind,
}

impl Lock {
    /// Argo's mutex `name` in `namespace`: `<namespace>/Mutex/<name>`.
    pub fn mutex(namespace: &str, name: &str) -> Lock {
        Lock {
            key: format!("{namespace}/Mutex/{name}"),
            kind: LockKind::Mutex,
        }
    }

    /// Argo's ConfigMap semaphore: `<namespace>/ConfigMap/<config_map>/<key>`.
    pub fn semaphore(namespace: &str, config_map: &str, key: &str) -> Lock {
        Lock {
            key: format!("{namespace}/ConfigMap/{config_map}/{key}"),
            kind: LockKind::Semaphore {
                namespace: namespace.to_string(),
                config_map: config_map.to_string(),
                key: key.to_string(),
            },
        }
    }

    /// The server's or a namespace's workflow parallelism (`*/Parallelism`,
    /// `<namespace>/Parallelism`; never an Argo lock name, which has three parts or more).
    pub fn parallelism(namespace: Option<&str>) -> Lock {
        Lock {
            key: format!("{}/Parallelism", namespace.unwrap_or("*")),
            kind: LockKind::Parallelism {
                namespace: namespace.map(str::to_string),
            },
        }
    }

    /// Whether Argo knows this lock (it shows in `status.synchronization`).
    pub fn is_argo(&self) -> bool {
        !matches!(self.kind, LockKind::Parallelism { .. })
    }
}

/// Who holds or waits for locks: a run (workflow-level locks) or one node of it
/// (template-level locks).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Holder {
    /// The run's name.
    pub run: String,
    /// The node id, for template-level locks.
    pub node: Option<String>,
}

impl Holder {
    /// The run itself (workflow-level locks).
    pub fn run(run: &str) -> Holder {
        Holder {
            run: run.to_string(),
            node: None,
        }
    }

    /// A node of the run (template-level locks).
    pub fn node(run: &str, node: &str) -> Holder {
        Holder {
            run: run.to_string(),
            node: Some(node.to_string()),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(node) => write!(f, "{}/{node}", self.run),
            None => f.write_str(&self.run),
        }
    }
}

/// A waiter's place in the queue: higher priority first, then first come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    priority: std::cmp::Reverse<i32>,
    seq: u64,
}

#[derive(Debug, Clone)]
struct Waiter {
    holder: Holder,
    locks: Vec<Lock>,
    priority: i32,
    seq: u64,
    since: DateTime<Utc>,
    /// Waiters behind it admitted while it was blocked.
    bypassed: u32,
}

#[derive(Debug, Clone)]
struct Holding {
    locks: Vec<Lock>,
    since: DateTime<Utc>,
}

/// A waiter admitted by [`Gate::admit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// Who.
    pub holder: Holder,
    /// How long it waited, in seconds.
    pub waited_seconds: f64,
}

/// One lock as `cox sync list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockStatus {
    /// Argo's lock name.
    pub key: String,
    /// `Mutex`, `Semaphore` or `Parallelism`.
    pub kind: String,
    /// The limit (`None`: unknown, its ConfigMap or key is missing or not a number).
    pub limit: Option<u32>,
    /// Holders, with how long they have held it (seconds).
    pub holders: Vec<HolderStatus>,
    /// Waiters in queue order, with how long they have waited (seconds).
    pub waiters: Vec<HolderStatus>,
}

/// A holder or waiter in a [`LockStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HolderStatus {
    /// The run.
    pub run: String,
    /// The node, for template-level locks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Its priority (waiters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Seconds since it got the lock, or since it asked.
    pub seconds: f64,
}

/// The admission state: limits, holders and the queue (see the module doc). Pure: the
/// caller passes the time and acts on the grants.
#[derive(Debug, Clone)]
pub struct Gate {
    aging: u32,
    limits: HashMap<String, Option<u32>>,
    kinds: HashMap<String, LockKind>,
    held: HashMap<String, BTreeSet<Holder>>,
    holdings: HashMap<Holder, Holding>,
    queue: BTreeMap<Place, Waiter>,
    places: HashMap<Holder, Place>,
    /// Waiters per lock.
    pending: HashMap<String, usize>,
    /// Waiters by their set of lock keys, in queue order.
    classes: HashMap<Vec<String>, BTreeSet<Place>>,
    next_seq: u64,
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new(DEFAULT_AGING)
    }
}

impl Gate {
    /// An empty gate; a waiter passed over `aging` times reserves its locks.
    pub fn new(aging: u32) -> Gate {
        Gate {
            aging,
            limits: HashMap::new(),
            kinds: HashMap::new(),
            held: HashMap::new(),
            holdings: HashMap::new(),
            queue: BTreeMap::new(),
            places: HashMap::new(),
            pending: HashMap::new(),
            classes: HashMap::new(),
            next_seq: 0,
        }
    }

    /// Locks seen so far that have no limit set yet (the caller looks them up).
    pub fn unknown_limits(&self) -> Vec<Lock> {
        self.kinds
            .iter()
            .filter(|(key, _)| !self.limits.contains_key(*key))
            .map(|(key, kind)| Lock {
                key: key.clone(),
                kind: kind.clone(),
            })
            .collect()
    }

    /// Every lock seen so far.
    pub fn locks(&self) -> Vec<Lock> {
        self.kinds
            .iter()
            .map(|(key, kind)| Lock {
                key: key.clone(),
                kind: kind.clone(),
            })
            .collect()
    }

    /// Set a lock's limit (`None`: unknown, nobody is admitted to it). Returns whether it
    /// changed.
    pub fn set_limit(&mut self, key: &str, limit: Option<u32>) -> bool {
        self.limits.insert(key.to_string(), limit) != Some(limit)
    }

    fn remember(&mut self, locks: &[Lock]) {
        for lock in locks {
            self.kinds
                .entry(lock.key.clone())
                .or_insert_with(|| lock.kind.clone());
        }
    }

    /// `holder` asks for `locks` (each at most once); queued behind the waiters of higher
    /// or equal priority that asked earlier. Asking again while waiting or holding changes
    /// nothing; returns whether it was queued.
    pub fn request(
        &mut self,
        holder: Holder,
        locks: Vec<Lock>,
        priority: i32,
        now: DateTime<Utc>,
    ) -> bool {
        if self.places.contains_key(&holder) || self.holdings.contains_key(&holder) {
            return false;
        }
        let mut locks = locks;
        locks.sort();
        locks.dedup_by(|a, b| a.key == b.key);
        self.remember(&locks);
        let place = Place {
            priority: std::cmp::Reverse(priority),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.places.insert(holder.clone(), place);
        for lock in &locks {
            *self.pending.entry(lock.key.clone()).or_default() += 1;
        }
        self.classes
            .entry(locks.iter().map(|l| l.key.clone()).collect())
            .or_default()
            .insert(place);
        self.queue.insert(
            place,
            Waiter {
                holder,
                locks,
                priority,
                seq: place.seq,
                since: now,
                bypassed: 0,
            },
        );
        true
    }

    /// `holder` holds `locks` already (derived from stored state after a restart): counted
    /// whatever the limits, so that nobody else is admitted past them.
    pub fn restore(&mut self, holder: Holder, locks: Vec<Lock>, since: DateTime<Utc>) {
        if self.holdings.contains_key(&holder) {
            return;
        }
        self.remove_waiter(&holder);
        self.remember(&locks);
        self.hold(holder, locks, since);
    }

    fn hold(&mut self, holder: Holder, locks: Vec<Lock>, since: DateTime<Utc>) {
        for lock in &locks {
            self.held
                .entry(lock.key.clone())
                .or_default()
                .insert(holder.clone());
        }
        self.holdings.insert(holder, Holding { locks, since });
    }

    fn remove_waiter(&mut self, holder: &Holder) -> bool {
        let Some(waiter) = self
            .places
            .remove(holder)
            .and_then(|place| self.queue.remove(&place))
        else {
            return false;
        };
        let place = Place {
            priority: std::cmp::Reverse(waiter.priority),
            seq: waiter.seq,
        };
        self.unqueue(place, &waiter.locks);
        true
    }

    fn unqueue(&mut self, place: Place, locks: &[Lock]) {
        let class: Vec<String> = locks.iter().map(|l| l.key.clone()).collect();
        if let Some(places) = self.classes.get_mut(&class) {
            places.remove(&place);
            if places.is_empty() {
                self.classes.remove(&class);
            }
        }
        for lock in locks {
            if let Some(n) = self.pending.get_mut(&lock.key) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Per lock: its key, holders, waiters and limit (cheap: no per-waiter work).
    pub fn counts(&self) -> Vec<(String, usize, usize, Option<u32>)> {
        self.kinds
            .keys()
            .map(|key| {
                (
                    key.clone(),
                    self.holder_count(key),
                    self.pending.get(key).copied().unwrap_or(0),
                    self.limits.get(key).copied().flatten(),
                )
            })
            .collect()
    }

    /// `holder` gives back what it holds and stops waiting; whether anything changed.
    pub fn release(&mut self, holder: &Holder) -> bool {
        let waited = self.remove_waiter(holder);
        let Some(holding) = self.holdings.remove(holder) else {
            return waited;
        };
        for lock in &holding.locks {
            if let Some(holders) = self.held.get_mut(&lock.key) {
                holders.remove(holder);
                if holders.is_empty() {
                    self.held.remove(&lock.key);
                }
            }
        }
        true
    }

    /// The run and each of its nodes give back everything and stop waiting; whether
    /// anything changed.
    pub fn release_run(&mut self, run: &str) -> bool {
        let mine: Vec<Holder> = self
            .holdings
            .keys()
            .chain(self.places.keys())
            .filter(|h| h.run == run)
            .cloned()
            .collect();
        let mut changed = false;
        for holder in mine {
            changed |= self.release(&holder);
        }
        changed
    }

    /// Whether `holder` holds its locks.
    pub fn holds(&self, holder: &Holder) -> bool {
        self.holdings.contains_key(holder)
    }

    /// Whether `holder` waits.
    pub fn is_waiting(&self, holder: &Holder) -> bool {
        self.places.contains_key(holder)
    }

    /// How many hold `key`.
    pub fn holder_count(&self, key: &str) -> usize {
        self.held.get(key).map_or(0, BTreeSet::len)
    }

    /// How many wait.
    pub fn waiter_count(&self) -> usize {
        self.queue.len()
    }

    fn room(&self, key: &str) -> u32 {
        let limit = self.limits.get(key).copied().flatten().unwrap_or(0);
        limit.saturating_sub(self.holder_count(key) as u32)
    }

    /// Admit, in queue order, every waiter whose locks all have room (see the module doc);
    /// the admitted now hold their locks.
    ///
    /// Waiters with the same locks form a class, first come first served within it, so a
    /// pass looks at the head of each class only: its cost grows with the number of
    /// distinct lock sets, not with the number of waiters.
    pub fn admit(&mut self, now: DateTime<Utc>) -> Vec<Grant> {
        let mut grants = Vec::new();
        // One admission per round: the admitted hold their locks at once, so each round
        // sees the room left.
        loop {
            // Class heads in queue order, with whether they fit now.
            let mut heads: Vec<(Place, &Vec<String>, bool)> = self
                .classes
                .iter()
                .filter_map(|(keys, places)| {
                    let head = *places.first()?;
                    let fits = keys.iter().all(|k| self.room(k) > 0);
                    Some((head, keys, fits))
                })
                .collect();
            heads.sort_by_key(|(place, _, _)| *place);
            // Starving heads keep what they need from those behind them.
            let mut reserved: HashMap<&str, u32> = HashMap::new();
            let mut chosen = None;
            for (place, keys, fits) in &heads {
                let fits = *fits
                    && keys
                        .iter()
                        .all(|k| self.room(k) > reserved.get(k.as_str()).copied().unwrap_or(0));
                if fits {
                    chosen = Some(*place);
                    break;
                }
                let Some(waiter) = self.queue.get(place) else {
                    continue;
                };
                if waiter.bypassed >= self.aging {
                    // A waiter that needs a mutex claims its mutexes only: the semaphores
                    // it needs stay busy with others meanwhile, and it is ahead of them when
                    // a slot frees; one that needs only semaphores keeps a slot of each.
                    let claims_mutexes = waiter.locks.iter().any(|l| l.kind == LockKind::Mutex);
                    for lock in waiter
                        .locks
                        .iter()
                        .filter(|l| !claims_mutexes || l.kind == LockKind::Mutex)
                    {
                        *reserved.entry(lock.key.as_str()).or_default() += 1;
                    }
                }
            }
            let Some(place) = chosen else {
                break;
            };
            // Each blocked head ahead of the admitted one was passed over once more.
            let passed: Vec<Place> = heads
                .iter()
                .map(|(p, _, _)| *p)
                .take_while(|p| *p < place)
                .collect();
            for p in passed {
                if let Some(w) = self.queue.get_mut(&p) {
                    w.bypassed = w.bypassed.saturating_add(1);
                }
            }
            let Some(waiter) = self.queue.remove(&place) else {
                break;
            };
            self.places.remove(&waiter.holder);
            self.unqueue(place, &waiter.locks);
            let waited_seconds = (now - waiter.since).num_milliseconds().max(0) as f64 / 1000.0;
            grants.push(Grant {
                holder: waiter.holder.clone(),
                waited_seconds,
            });
            self.hold(waiter.holder, waiter.locks, now);
        }
        grants
    }

    /// Argo's message for a waiter: the first of its locks without room,
    /// `Waiting for <lock> lock. Lock status: <free>/<limit>`.
    pub fn waiting_message(&self, holder: &Holder) -> Option<String> {
        let place = self.places.get(holder)?;
        let waiter = self.queue.get(place)?;
        let lock = waiter
            .locks
            .iter()
            .find(|l| self.room(&l.key) == 0)
            .or_else(|| waiter.locks.first())?;
        Some(match self.limits.get(&lock.key).copied().flatten() {
            Some(limit) => format!(
                "Waiting for {} lock. Lock status: {}/{limit}",
                lock.key,
                self.room(&lock.key)
            ),
            None => format!("Failed to get semaphore limit for {}", lock.key),
        })
    }

    /// Every lock with its limit, holders and waiters (queue order), sorted by key;
    /// `namespace` keeps only the locks of that namespace (and the server-wide one).
    pub fn status(&self, namespace: Option<&str>, now: DateTime<Utc>) -> Vec<LockStatus> {
        let seconds = |since: DateTime<Utc>| (now - since).num_milliseconds().max(0) as f64 / 1e3;
        let mut locks: BTreeMap<&str, LockStatus> = BTreeMap::new();
        for (key, kind) in &self.kinds {
            let in_namespace = match namespace {
                None => true,
                Some(ns) => key.starts_with(&format!("{ns}/")) || key.starts_with("*/"),
            };
            if !in_namespace {
                continue;
            }
            let kind_name = match kind {
                LockKind::Mutex => "Mutex",
                LockKind::Semaphore { .. } => "Semaphore",
                LockKind::Parallelism { .. } => "Parallelism",
            };
            let holders = self
                .held
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|h| {
                    self.holdings.get(h).map(|holding| HolderStatus {
                        run: h.run.clone(),
                        node: h.node.clone(),
                        priority: None,
                        seconds: seconds(holding.since),
                    })
                })
                .collect();
            locks.insert(
                key,
                LockStatus {
                    key: key.clone(),
                    kind: kind_name.into(),
                    limit: self.limits.get(key).copied().flatten(),
                    holders,
                    waiters: Vec::new(),
                },
            );
        }
        for waiter in self.queue.values() {
            for lock in &waiter.locks {
                if let Some(status) = locks.get_mut(lock.key.as_str()) {
                    status.waiters.push(HolderStatus {
                        run: waiter.holder.run.clone(),
                        node: waiter.holder.node.clone(),
                        priority: Some(waiter.priority),
                        seconds: seconds(waiter.since),
                    });
                }
            }
        }
        locks.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid time")
    }

    fn names(grants: &[Grant]) -> Vec<String> {
        grants.iter().map(|g| g.holder.to_string()).collect()
    }

    fn gate_with(limits: &[(&Lock, u32)]) -> Gate {
        let mut gate = Gate::new(2);
        for (lock, limit) in limits {
            gate.remember(std::slice::from_ref(lock));
            gate.set_limit(&lock.key, Some(*limit));
        }
        gate
    }

    #[test]
    fn a_mutex_admits_one_at_a_time_by_priority_then_arrival() {
        let m = Lock::mutex("argo", "test");
        let mut gate = gate_with(&[(&m, 1)]);
        for (name, priority) in [("a", 0), ("b", 0), ("c", 5), ("d", 0), ("e", 5)] {
            assert!(gate.request(Holder::run(name), vec![m.clone()], priority, t(0)));
        }
        let mut order = Vec::new();
        let mut grants = gate.admit(t(1));
        while let [grant] = grants.as_slice() {
            assert_eq!(gate.holder_count(&m.key), 1);
            order.push(grant.holder.run.clone());
            gate.release(&grant.holder);
            grants = gate.admit(t(2));
        }
        assert!(grants.is_empty());
        assert_eq!(order, ["c", "e", "a", "b", "d"]);
    }

    #[test]
    fn a_waiter_whose_locks_are_free_goes_ahead_of_a_blocked_one() {
        let busy = Lock::mutex("argo", "busy");
        let sem = Lock::semaphore("argo", "cm", "k");
        let mut gate = gate_with(&[(&busy, 1), (&sem, 2)]);
        gate.restore(Holder::run("holder"), vec![busy.clone()], t(0));
        gate.request(
            Holder::run("head"),
            vec![busy.clone(), sem.clone()],
            9,
            t(0),
        );
        gate.request(Holder::run("next"), vec![sem.clone()], 0, t(0));
        assert_eq!(names(&gate.admit(t(1))), ["next"]);
        assert_eq!(
            gate.waiting_message(&Holder::run("head")).as_deref(),
            Some("Waiting for argo/Mutex/busy lock. Lock status: 0/1")
        );
        gate.release(&Holder::run("holder"));
        assert_eq!(names(&gate.admit(t(2))), ["head"]);
        assert_eq!(gate.holder_count(&sem.key), 2);
    }

    #[test]
    fn a_waiter_passed_over_too_often_reserves_its_locks() {
        let busy = Lock::semaphore("argo", "cm", "busy");
        let sem = Lock::semaphore("argo", "cm", "k");
        let mut gate = gate_with(&[(&busy, 1), (&sem, 1)]);
        gate.restore(Holder::run("holder"), vec![busy.clone()], t(0));
        gate.request(
            Holder::run("starved"),
            vec![busy.clone(), sem.clone()],
            0,
            t(0),
        );
        // Aging 2: two others pass it, the third waits for it.
        for (i, name) in ["x1", "x2", "x3"].iter().enumerate() {
            gate.request(Holder::run(name), vec![sem.clone()], 0, t(i as i64));
            let grants = gate.admit(t(10));
            if i < 2 {
                assert_eq!(names(&grants), [*name]);
                gate.release(&Holder::run(name));
            } else {
                assert!(grants.is_empty(), "{grants:?}");
            }
        }
        gate.release(&Holder::run("holder"));
        assert_eq!(names(&gate.admit(t(20))), ["starved"]);
        gate.release(&Holder::run("starved"));
        assert_eq!(names(&gate.admit(t(21))), ["x3"]);
    }

    #[test]
    fn a_starving_waiter_claims_its_mutex_and_leaves_its_semaphore_busy() {
        let left = Lock::mutex("argo", "left");
        let sem = Lock::semaphore("argo", "cm", "k");
        let mut gate = gate_with(&[(&left, 1), (&sem, 1)]);
        gate.restore(Holder::run("d1"), vec![left.clone()], t(0));
        gate.restore(Holder::run("a0"), vec![sem.clone()], t(0));
        gate.request(Holder::run("b"), vec![left.clone(), sem.clone()], 0, t(0));
        for name in ["a1", "a2", "a3"] {
            gate.request(Holder::run(name), vec![sem.clone()], 0, t(0));
        }
        // Passed over twice while the semaphore cycles.
        for (gone, next) in [("a0", "a1"), ("a1", "a2")] {
            gate.release(&Holder::run(gone));
            assert_eq!(names(&gate.admit(t(1))), [next]);
        }
        // The mutex frees while the semaphore is full: b claims it, d2 does not get it.
        gate.request(Holder::run("d2"), vec![left.clone()], 0, t(2));
        gate.release(&Holder::run("d1"));
        assert!(gate.admit(t(3)).is_empty());
        // The semaphore frees: b is ahead of a3.
        gate.release(&Holder::run("a2"));
        assert_eq!(names(&gate.admit(t(4))), ["b"]);
    }

    #[test]
    fn restored_holders_count_and_unknown_limits_admit_nobody() {
        let sem = Lock::semaphore("argo", "cm", "k");
        let mut gate = Gate::default();
        gate.restore(Holder::node("r1", "n1"), vec![sem.clone()], t(0));
        gate.request(Holder::run("w"), vec![sem.clone()], 0, t(0));
        assert_eq!(gate.unknown_limits(), vec![sem.clone()]);
        assert!(gate.admit(t(1)).is_empty());
        assert_eq!(
            gate.waiting_message(&Holder::run("w")).as_deref(),
            Some("Failed to get semaphore limit for argo/ConfigMap/cm/k")
        );
        gate.set_limit(&sem.key, Some(1));
        assert!(gate.admit(t(1)).is_empty(), "the restored holder fills it");
        // A limit raised live admits at once.
        assert!(gate.set_limit(&sem.key, Some(2)));
        assert_eq!(names(&gate.admit(t(2))), ["w"]);
        assert!(gate.release_run("r1"));
        assert_eq!(gate.holder_count(&sem.key), 1);
    }

    #[test]
    fn asking_twice_changes_nothing_and_release_run_drops_waiters() {
        let m = Lock::mutex("ns", "m");
        let mut gate = gate_with(&[(&m, 1)]);
        assert!(gate.request(Holder::run("a"), vec![m.clone()], 0, t(0)));
        assert!(!gate.request(Holder::run("a"), vec![m.clone()], 0, t(0)));
        assert_eq!(names(&gate.admit(t(0))), ["a"]);
        assert!(!gate.request(Holder::run("a"), vec![m.clone()], 0, t(0)));
        gate.request(Holder::node("b", "n"), vec![m.clone()], 0, t(0));
        assert!(gate.release_run("b"));
        assert_eq!(gate.waiter_count(), 0);
        let status = gate.status(Some("ns"), t(3));
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].holders[0].run, "a");
        assert_eq!(status[0].holders[0].seconds, 3.0);
        assert!(gate.status(Some("other"), t(3)).is_empty());
    }
}
