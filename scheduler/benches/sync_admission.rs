//! Admission cost of the concurrency gate ([`cox_scheduler::sync::Gate`]) with 10,000
//! waiters: enqueueing them, draining a mutex one grant at a time, draining a semaphore of 3
//! with mixed lock needs, and the worst pass (every waiter blocked while some lock has
//! room, so the whole queue is scanned). Plain `harness = false` program:
//!
//! ```sh
//! cargo bench -p cox-scheduler --bench sync_admission [-- WAITERS [ROUNDS]]
//! ```

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cox_scheduler::sync::{Gate, Holder, Lock};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("valid time")
}

/// A gate whose locks have their limits, as the gate actor sets them.
fn limited(gate: &mut Gate) {
    for lock in gate.unknown_limits() {
        let limit = if lock.key.contains("/ConfigMap/") {
            3
        } else {
            1
        };
        gate.set_limit(&lock.key, Some(limit));
    }
}

struct Figures {
    name: &'static str,
    unit: &'static str,
    samples: Vec<Duration>,
    per: usize,
}

impl Figures {
    fn print(&mut self) {
        self.samples.sort();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / self.per as f64;
        println!(
            "{:<58} min {:>9.3} µs  median {:>9.3} µs  per {} ({} rounds)",
            self.name,
            per(self.samples[0]),
            per(self.samples[self.samples.len() / 2]),
            self.unit,
            self.samples.len()
        );
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let waiters = args.first().copied().unwrap_or(10_000);
    let rounds = args.get(1).copied().unwrap_or(5);
    println!("sync gate admission, {waiters} waiters, {rounds} rounds");
    let mutex = Lock::mutex("default", "one");
    let sem = Lock::semaphore("default", "limits", "workflow");
    let left = Lock::mutex("default", "left");
    let right = Lock::mutex("default", "right");

    let mut enqueue = Figures {
        name: "enqueue (request) behind a held mutex",
        unit: "request",
        samples: vec![],
        per: waiters,
    };
    let mut drain_mutex = Figures {
        name: "mutex: release + admit, one grant each",
        unit: "grant",
        samples: vec![],
        per: waiters,
    };
    let mut drain_sem = Figures {
        name: "semaphore of 3, mixed needs: release + admit",
        unit: "grant",
        samples: vec![],
        per: waiters,
    };
    let mut worst = Figures {
        name: "worst pass: all blocked, a lock has room (full scan)",
        unit: "pass",
        samples: vec![],
        per: 1,
    };
    for _ in 0..rounds {
        // A mutex held, everyone queued behind it, then drained one grant at a time.
        let mut gate = Gate::default();
        gate.restore(Holder::run("holder"), vec![mutex.clone()], now());
        limited(&mut gate);
        let started = Instant::now();
        for i in 0..waiters {
            gate.request(
                Holder::run(&format!("w{i}")),
                vec![mutex.clone()],
                (i % 3) as i32,
                now(),
            );
        }
        enqueue.samples.push(started.elapsed());
        let started = Instant::now();
        let mut holder = Holder::run("holder");
        for _ in 0..waiters {
            gate.release(&holder);
            let grants = gate.admit(now());
            assert_eq!(grants.len(), 1);
            holder = grants[0].holder.clone();
        }
        drain_mutex.samples.push(started.elapsed());

        // Semaphore of 3 with mixed needs (as tests/sync.rs): drained to the end.
        let mut gate = Gate::default();
        for i in 0..waiters {
            let locks = match i % 5 {
                0 | 1 => vec![sem.clone()],
                2 => vec![sem.clone(), left.clone()],
                3 => vec![sem.clone(), right.clone()],
                _ => vec![left.clone()],
            };
            gate.request(Holder::run(&format!("s{i}")), locks, 0, now());
        }
        limited(&mut gate);
        let started = Instant::now();
        let mut held: Vec<Holder> = gate.admit(now()).into_iter().map(|g| g.holder).collect();
        let mut granted = held.len();
        while let Some(done) = (!held.is_empty()).then(|| held.remove(0)) {
            gate.release(&done);
            let grants = gate.admit(now());
            granted += grants.len();
            held.extend(grants.into_iter().map(|g| g.holder));
        }
        drain_sem.samples.push(started.elapsed());
        assert_eq!(granted, waiters);

        // Worst case: the semaphore is full and every waiter also needs its own free mutex,
        // so a lock has room and the pass scans the whole queue without admitting anyone.
        let mut gate = Gate::default();
        let full = Lock::semaphore("default", "limits", "full");
        gate.restore(Holder::run("a"), vec![full.clone()], now());
        gate.restore(Holder::run("b"), vec![full.clone()], now());
        gate.restore(Holder::run("c"), vec![full.clone()], now());
        for i in 0..waiters {
            let own = Lock::mutex("default", &format!("m{i}"));
            gate.request(
                Holder::run(&format!("x{i}")),
                vec![full.clone(), own],
                0,
                now(),
            );
        }
        limited(&mut gate);
        let started = Instant::now();
        assert!(gate.admit(now()).is_empty());
        worst.samples.push(started.elapsed());
    }
    for figures in [&mut enqueue, &mut drain_mutex, &mut drain_sem, &mut worst] {
        figures.print();
    }
}
