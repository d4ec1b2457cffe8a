//! A run's state machine: pure, `apply(event) -> actions`, no I/O, no clock, no randomness.
//!
//! ```text
//!   Start ──► reconcile ──► Launch(step) ...      StepFinished ──► reconcile ──► Launch / Cancel / Timer / Finished
//!                              ▲                                         │
//!                              └──────────────── Timer ◄─────────────────┘
//! ```
//!
//! Every event updates the node tree (Argo's `status.nodes`), then the tree is reconciled
//! from the root the way Argo's operator does it: each template is "executed" again and is
//! idempotent, so what already ran is kept and only the next steps are launched.

mod lifecycle;
mod locks;
pub mod memo_key;
pub(crate) mod node;
mod nodes;
mod operator;
mod rerun;
mod run;

pub use lifecycle::{NodeFieldSelector, Request, selector_terms};
pub use node::{ArtifactRef, MemoizationStatus, Node, NodeType, Outputs, Phase, node_id};
pub use nodes::Nodes;
pub(crate) use operator::parse_ts;
pub use rerun::{RESUBMITTED_FROM, RetryOptions};
pub use run::{GC_ON_COMPLETION, GC_ON_DELETION, RunState};

use chrono::{DateTime, Utc};
use cox_worker::step::{StepOutcome, StepSpec};
use serde::{Deserialize, Serialize};

/// Something that happened to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The run starts (or restarts after a crash: already running steps are kept).
    Start {
        /// The current time.
        now: DateTime<Utc>,
    },
    /// A step attempt ended.
    StepFinished {
        /// The node id of the attempt.
        node_id: String,
        /// Its outcome.
        outcome: StepOutcome,
        /// The current time.
        now: DateTime<Utc>,
    },
    /// A timer asked for with [`Action::WakeAt`] is due.
    Timer {
        /// The current time.
        now: DateTime<Utc>,
    },
    /// Stop the run as Argo's `stop` (exit handlers still run) or `terminate` (they do not):
    /// running steps are cancelled, nothing new starts, the run ends Failed.
    Stop {
        /// The current time.
        now: DateTime<Utc>,
        /// Terminate: skip the exit handlers.
        terminate: bool,
    },
    /// Suspend, resume, or set suspend nodes (see [`Request`]); a request
    /// [`RunState::check`] refuses changes nothing.
    Lifecycle {
        /// The current time.
        now: DateTime<Utc>,
        /// What is asked.
        request: Request,
    },
    /// A node waiting for its template's locks ([`Action::Acquire`]) was admitted: it is
    /// launched. (The run's own locks are the actor's: it sends `Start` once admitted.)
    LockGranted {
        /// The node.
        node_id: String,
        /// The current time.
        now: DateTime<Utc>,
    },
    /// Why the run (`node_id: None`, not started yet) or a node still waits for its locks:
    /// Argo's `Waiting for <lock> lock. Lock status: <free>/<limit>`.
    LockWaiting {
        /// The node, or the run.
        node_id: Option<String>,
        /// The message.
        message: String,
    },
}

/// Something the actor around the machine must do, after persisting the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Start a step attempt.
    Launch(Box<StepSpec>),
    /// Stop a running attempt (deadline, failFast, stop).
    Cancel {
        /// The node id of the attempt.
        node_id: String,
    },
    /// Send [`Event::Timer`] at this time (retry backoff, suspend duration, deadlines).
    WakeAt {
        /// When.
        at: DateTime<Utc>,
    },
    /// Delete these artifacts (`artifactGC: OnWorkflowCompletion`); one action for each
    /// repository they are in, just before [`Action::Finished`], which waits for them.
    DeleteArtifacts {
        /// Their repository: an artifact's own bucket, or the run's own repository
        /// (`None`: the configured one).
        repository: Option<cox_worker::repo_config::RepositoryLocation>,
        /// Object keys (a key with no object is a prefix: the objects under it).
        keys: Vec<String>,
    },
    /// Ask for a node's template-level locks; [`Event::LockGranted`] answers.
    Acquire {
        /// The node.
        node_id: String,
        /// Its template's locks.
        locks: Vec<crate::sync::Lock>,
        /// The workflow's priority.
        priority: i32,
    },
    /// The run has ended; nothing more will be launched.
    Finished,
}

#[cfg(test)]
mod tests;
