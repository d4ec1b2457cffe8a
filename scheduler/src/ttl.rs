//! `ttlStrategy`: finished workflows deleted once their time to live has passed, as Argo's
//! TTL controller does. `cox server` sweeps the store every second ([`Reaper::sweep`]), the
//! first time as it starts, so a run whose TTL passed while no server was up is deleted
//! then. A deletion is the engine's ([`Engine::delete`]): artifactGC `OnWorkflowDeletion`
//! and the watch stream's `DELETED` event included.
//!
//! Which delay applies is Argo's rule: `secondsAfterFailure` for a Failed run,
//! `secondsAfterSuccess` for a Succeeded one, when set; otherwise `secondsAfterCompletion`
//! (so an Error run only ever expires by `secondsAfterCompletion`, as in Argo, whose
//! `Failed()` is the Failed phase alone). The delay counts from the run's `finishedAt`.

use std::collections::HashMap;

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

/// Finished runs already looked at: their `finishedAt` then, and when they expire. A run
/// finished again since (a retry) is looked at again.
#[derive(Debug, Default)]
pub struct Reaper {
    seen: HashMap<String, (String, Option<DateTime<Utc>>)>,
}

impl Reaper {
    /// A reaper that has seen nothing yet.
    pub fn new() -> Reaper {
        Reaper::default()
    }

    /// Delete every stored, finished run whose TTL has passed; their names. A run that
    /// cannot be read or deleted is logged and left for the next sweep.
    pub async fn sweep(&mut self, engine: &Engine) -> Result<Vec<String>> {
        let now = engine.now();
        let runs = engine.list()?;
        self.seen
            .retain(|name, _| runs.iter().any(|run| &run.name == name));
        let mut deleted = Vec::new();
        for run in runs {
            let Some(finished_at) = run.finished_at.filter(|_| run.phase.is_done()) else {
                continue;
            };
            let expires = match self.seen.get(&run.name) {
                Some((seen_at, expires)) if *seen_at == finished_at => *expires,
                _ => {
                    let expires = Self::expires(engine, &run.name, run.phase, &finished_at);
                    self.seen
                        .insert(run.name.clone(), (finished_at.clone(), expires));
                    expires
                }
            };
            if expires.is_none_or(|at| at > now) {
                continue;
            }
            match engine.delete(&run.name).await {
                Ok(_) => {
                    info!(run = %run.name, "deleted: its ttlStrategy expired");
                    self.seen.remove(&run.name);
                    deleted.push(run.name);
                }
                Err(e) => warn!(run = %run.name, error = %e, "expired run not deleted"),
            }
        }
        Ok(deleted)
    }

    /// When the stored run expires, from its workflow's `ttlStrategy`.
    fn expires(
        engine: &Engine,
        name: &str,
        phase: Phase,
        finished_at: &str,
    ) -> Option<DateTime<Utc>> {
        let finished_at = parse_ts(finished_at)?;
        let mut state = match engine.get(name) {
            Ok(Some(state)) => state,
            Ok(None) => return None,
            Err(e) => {
                warn!(run = %name, error = %e, "cannot read the run for its ttlStrategy");
                return None;
            }
        };
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
