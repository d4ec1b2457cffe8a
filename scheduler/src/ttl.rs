//! `ttlStrategy`: finished workflows deleted once their time to live has passed, as Argo's
//! TTL controller does. `cox server` looks at every stored run once as it starts (so a run
//! whose TTL passed while no server was up is deleted then), and from then on at each run
//! as it finishes: a [`Reaper`] keeps the expiry times in order and wakes for the next one,
//! so an idle server reads nothing. A deletion is the engine's ([`Engine::delete`]):
//! artifactGC `OnWorkflowDeletion` and the watch stream's `DELETED` event included.
//!
//! Which delay applies is Argo's rule: `secondsAfterFailure` for a Failed run,
//! `secondsAfterSuccess` for a Succeeded one, when set; otherwise `secondsAfterCompletion`
//! (so an Error run only ever expires by `secondsAfterCompletion`, as in Argo, whose
//! `Failed()` is the Failed phase alone). The delay counts from the run's `finishedAt`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use cox_config::model::TtlStrategy;
use tracing::{info, warn};

use crate::engine::Engine;
use crate::error::Result;
use crate::machine::{Phase, parse_ts};

/// When a run that ended in `phase` at `finished_at` expires under `ttl`; `None` if never.
pub fn expiry(
    ttl: &TtlStrategy,
    phase: Phase,
    finished_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let seconds = match phase {
        Phase::Failed => ttl.seconds_after_failure,
        Phase::Succeeded => ttl.seconds_after_success,
        _ => None,
    }
    .or(ttl.seconds_after_completion)?;
    Some(finished_at + Duration::seconds(i64::from(seconds)))
}

/// The finished runs that will expire, in the order they do. Each entry is a promise to
/// look again: when it falls due the run is read afresh (a retry may have restarted it,
/// or a deletion removed it) before it is deleted.
#[derive(Debug, Default)]
pub struct Reaper {
    due: BTreeSet<(DateTime<Utc>, String)>,
    expires: HashMap<String, DateTime<Utc>>,
}

impl Reaper {
    /// A reaper that knows of no run yet.
    pub fn new() -> Reaper {
        Reaper::default()
    }

    /// Look at every stored run: at start, and after run events were missed.
    pub fn scan(&mut self, engine: &Engine) -> Result<()> {
        self.due.clear();
        self.expires.clear();
        for run in engine.list()? {
            if run.phase.is_done() {
                self.look_at(engine, &run.name);
            }
        }
        Ok(())
    }

    /// (Re)compute when the stored run `name` expires, if it has finished and has a TTL.
    pub fn look_at(&mut self, engine: &Engine, name: &str) {
        self.forget(name);
        if let Some(at) = Self::expires(engine, name) {
            self.due.insert((at, name.to_string()));
            self.expires.insert(name.to_string(), at);
        }
    }

    /// Drop the run `name` (it was deleted).
    pub fn forget(&mut self, name: &str) {
        if let Some(at) = self.expires.remove(name) {
            self.due.remove(&(at, name.to_string()));
        }
    }

    /// When the next run expires, if any will.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Delete every run whose TTL has passed by `engine.now()`; their names. A run that
    /// cannot be deleted is logged and tried again at the next look.
    pub async fn reap(&mut self, engine: &Engine) -> Vec<String> {
        let now = engine.now();
        let mut deleted = Vec::new();
        while let Some((at, name)) = self.due.first().cloned() {
            if at > now {
                break;
            }
            self.forget(&name);
            // Read afresh: the run may have been retried or deleted since it was looked at.
            match Self::expires(engine, &name) {
                Some(at) if at <= now => match engine.delete(&name).await {
                    Ok(_) => {
                        info!(run = %name, "deleted: its ttlStrategy expired");
                        deleted.push(name);
                    }
                    Err(e) => warn!(run = %name, error = %e, "expired run not deleted"),
                },
                Some(later) => {
                    self.due.insert((later, name.clone()));
                    self.expires.insert(name, later);
                }
                None => {}
            }
        }
        deleted
    }

    /// Look at every stored run, then delete those whose TTL has passed.
    pub async fn sweep(&mut self, engine: &Engine) -> Result<Vec<String>> {
        self.scan(engine)?;
        Ok(self.reap(engine).await)
    }

    /// When the stored run expires, from its phase, `finishedAt` and its workflow's
    /// `ttlStrategy` (its header alone: no node is read); `None` if it is gone,
    /// unfinished, unreadable or has no TTL.
    fn expires(engine: &Engine, name: &str) -> Option<DateTime<Utc>> {
        let mut state = match engine.store().get_header(name) {
            Ok(Some(state)) => state,
            Ok(None) => return None,
            Err(e) => {
                warn!(run = %name, error = %e, "cannot read the run for its ttlStrategy");
                return None;
            }
        };
        let phase = state.phase();
        if !phase.is_done() {
            return None;
        }
        let finished_at = parse_ts(state.finished_at.as_deref()?)?;
        let ttl = state.workflow().ok()?.spec.ttl_strategy.clone()?;
        expiry(&ttl, phase, finished_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_ts(s).expect("timestamp")
    }

    #[test]
    fn the_phase_specific_delay_wins_over_completion() {
        let end = at("2026-01-01T00:00:00Z");
        let ttl = TtlStrategy {
            seconds_after_completion: Some(100),
            seconds_after_success: Some(10),
            seconds_after_failure: Some(20),
        };
        assert_eq!(
            expiry(&ttl, Phase::Succeeded, end),
            Some(at("2026-01-01T00:00:10Z"))
        );
        assert_eq!(
            expiry(&ttl, Phase::Failed, end),
            Some(at("2026-01-01T00:00:20Z"))
        );
        // Argo's Failed() is the Failed phase alone: an Error run uses the completion delay.
        assert_eq!(
            expiry(&ttl, Phase::Error, end),
            Some(at("2026-01-01T00:01:40Z"))
        );
    }

    #[test]
    fn without_a_matching_delay_a_run_never_expires() {
        let end = at("2026-01-01T00:00:00Z");
        let ttl = TtlStrategy {
            seconds_after_success: Some(0),
            ..TtlStrategy::default()
        };
        assert_eq!(expiry(&ttl, Phase::Succeeded, end), Some(end));
        assert_eq!(expiry(&ttl, Phase::Failed, end), None);
        assert_eq!(expiry(&TtlStrategy::default(), Phase::Succeeded, end), None);
    }
}
