//! The scheduler: one supervisor per workflow run driving a pure state machine, the store,
//! and (to come) the HTTP API and metrics.
//!
//! # Layout
//! - [`machine`]: a run's pure state machine (`apply(event) -> actions`), Argo's semantics.
pub mod machine;
