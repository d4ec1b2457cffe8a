//! The scheduler: one actor per workflow run driving a pure state machine, the store,
//! and (to come) the HTTP API and metrics.
//!
//! # Layout
//! - [`machine`]: a run's pure state machine (`apply(event) -> actions`), Argo's semantics.
//! - [`codec`]: the store's binary encoding (bincode 2, with a format version byte).
//! - [`objects`]: WorkflowTemplates, ClusterWorkflowTemplates and ConfigMaps: checked, stored.
//! - [`resolve`]: template references and ConfigMap parameters, resolved at submission.
//! - [`store`]: the durable store of runs (sled), flushed on every write, one process at a time.
//! - [`migrate`]: the store's format version: newer stores refused, older ones migrated after a backup.
//! - [`cache`]: the step cache (template `memoize`), in the store.
//! - [`actor`]: the run actor: apply, persist, then perform the actions (launch, cancel, timers).
//! - [`engine`]: the local engine: home directory, store, submit, await, get/list/delete.
//! - [`sync`]: global concurrency: mutexes, semaphores and parallelism limits, a fair queue.
//! - [`ttl`]: `ttlStrategy`, finished runs deleted once their time to live has passed.
//! - [`server`]: `cox server`, Argo Server's REST API over the engine (axum).
//! - [`error`]: the crate's `Error` and `Result`.
//! - `testsuite` (feature `testsuite`): `FakeExecutor` and `SchedulerTest` for tests.
pub mod actor;
pub mod cache;
pub mod codec;
pub mod engine;
pub mod error;
pub mod machine;
pub mod migrate;
pub mod objects;
pub mod resolve;
pub mod server;
pub mod store;
pub mod sync;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod ttl;

pub use engine::{Engine, EngineConfig};
pub use error::{Error, Result};
