//! Drives `RunState::apply` with scripted outcomes (every step succeeds at once, FIFO, like
//! `scheduler/src/machine/tests.rs::drive`) and times, per transition, what the run actor
//! does per event (scheduler/src/actor.rs `RunActorState::step`):
//!   apply          RunState::apply(event)
//!   encode         codec::encode of the whole state (what Store::put_run encodes)
//!   clone          RunState::clone (the actor's progress.send_replace(self.run.clone()))
//!   put_run        Store::put_run: encode + sled insert + sled flush (only with --store DIR),
//!                  also reported as transitions written and flushed per second
//!
//! usage: cox-run-machine-bench WORKFLOW.yaml [--store DIR] [--max-secs S]
use std::time::{Duration, Instant};

use chrono::TimeZone;
use cox_config::load::load;
use cox_config::model::Manifest;
use cox_scheduler::codec;
use cox_scheduler::machine::{Action, Event, RunState};
use cox_scheduler::store::Store;
use cox_worker::step::{StepOutcome, StepPhase, StepSpec};

fn ok() -> StepOutcome {
    StepOutcome {
        phase: StepPhase::Succeeded,
        exit_code: Some(0),
        message: String::new(),
        result: Some(String::new()),
        parameters: Vec::new(),
        artifacts: Vec::new(),
        started_at: None,
        finished_at: None,
        cache_hit: false,
    }
}

#[derive(Default, Clone, Copy)]
struct Acc {
    apply: Duration,
    encode: Duration,
    clone: Duration,
    put: Duration,
    bytes: usize,
    events: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: WORKFLOW.yaml [--store DIR] [--max-secs S]");
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let max =
        Duration::from_secs_f64(opt("--max-secs").map_or(600.0, |s| s.parse().expect("secs")));
    let store = opt("--store").map(|d| Store::open(std::path::Path::new(d)).expect("store"));

    let text = std::fs::read_to_string(path).expect("read");
    let loaded = load(path, &text);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let Some(Manifest::Workflow(wf)) = loaded.documents.into_iter().next().map(|d| d.manifest)
    else {
        panic!("not a workflow")
    };
    let mut now = chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let mut state = RunState::new(wf, now).expect("state");
    if let Some(s) = &store {
        s.create_run(&state, now).expect("create");
    }

    let total_start = Instant::now();
    let mut acc = Acc::default();
    let mut windows: Vec<(usize, Acc)> = Vec::new();
    let mut window = Acc::default();
    let mut queue: std::collections::VecDeque<StepSpec> = Default::default();
    let mut granted: Vec<String> = Vec::new();
    let mut event = Event::Start { now };
    let mut launched = 0usize;
    let mut finished = false;
    loop {
        let t = Instant::now();
        let actions = state.apply(event);
        let d_apply = t.elapsed();
        let t = Instant::now();
        let bytes = codec::encode("run state", &state).expect("encode");
        let d_encode = t.elapsed();
        let t = Instant::now();
        let copy = state.clone();
        let d_clone = t.elapsed();
        drop(copy);
        let d_put = match &store {
            Some(s) => {
                let t = Instant::now();
                s.put_run(&state).expect("put");
                t.elapsed()
            }
            None => Duration::ZERO,
        };
        for a in [&mut acc, &mut window] {
            a.apply += d_apply;
            a.encode += d_encode;
            a.clone += d_clone;
            a.put += d_put;
            a.bytes = bytes.len();
            a.events += 1;
        }
        if window.events == 500 {
            windows.push((acc.events, window));
            window = Acc::default();
        }
        for action in actions {
            match action {
                Action::Launch(spec) => {
                    launched += 1;
                    queue.push_back(*spec)
                }
                Action::Finished => finished = true,
                // Nothing else holds locks here: admitted at once.
                Action::Acquire { node_id, .. } => granted.push(node_id),
                Action::WakeAt { .. } | Action::Cancel { .. } | Action::DeleteArtifacts { .. } => {}
            }
        }
        if finished || total_start.elapsed() > max {
            break;
        }
        if let Some(node_id) = granted.pop() {
            event = Event::LockGranted { node_id, now };
            continue;
        }
        now += chrono::Duration::seconds(1);
        let spec = queue.pop_front().expect("stuck: nothing running");
        event = Event::StepFinished {
            node_id: spec.node_id,
            outcome: ok(),
            now,
        };
    }
    if window.events > 0 {
        windows.push((acc.events, window));
    }
    let wall = total_start.elapsed();
    println!(
        "{path}: finished={finished} phase={:?} events={} launched={launched} nodes={} wall={:.1} ms",
        state.phase(),
        acc.events,
        state.nodes.len(),
        ms(wall)
    );
    let per = |d: Duration, n: usize| ms(d) / n as f64;
    println!(
        "total ms: apply {:.1}  encode {:.1}  clone {:.1}  put_run {:.1}",
        ms(acc.apply),
        ms(acc.encode),
        ms(acc.clone),
        ms(acc.put)
    );
    println!(
        "mean per event ms: apply {:.3}  encode {:.3}  clone {:.3}  put_run {:.3}  (final state {} bytes)",
        per(acc.apply, acc.events),
        per(acc.encode, acc.events),
        per(acc.clone, acc.events),
        per(acc.put, acc.events),
        acc.bytes
    );
    if store.is_some() {
        // Store write throughput: transitions written and flushed per second of put_run.
        println!(
            "put_run with flush: {} transitions in {:.1} ms = {:.0} transitions/s",
            acc.events,
            ms(acc.put),
            acc.events as f64 / acc.put.as_secs_f64()
        );
    }
    if windows.len() > 1 {
        println!(
            "per-event ms by window (events up to | apply | encode | clone | put_run | state bytes):"
        );
        for (upto, w) in &windows {
            println!(
                "  {upto:>6} | {:.3} | {:.3} | {:.3} | {:.3} | {}",
                per(w.apply, w.events),
                per(w.encode, w.events),
                per(w.clone, w.events),
                per(w.put, w.events),
                w.bytes
            );
        }
    }
}
