//! How one step runs anywhere: the executor that launches a step's main
//! process (locally as a host process, later as a Kubernetes pod), and the
//! in-step wrapper around it. This crate owns launching, sandboxing,
//! cancellation, log capture, `outputs.result` capture and exit reporting.
//!
//! For now it holds the local process layer: [`local::LocalProcess::spawn`]
//! runs a [`spec::ProcessSpec`] in a bubblewrap sandbox or as a plain host
//! process and returns a [`local::Running`], whose `wait` gives an
//! [`exit::Exit`].
//!
//! # Layout
//!
//! - [`spec`]: what to run: `ProcessSpec`, `Mount`, environment and step-directory rules.
//! - [`local`]: host processes: bubblewrap sandbox or plain, cancellation, `LocalProcess`/`Running`.
//! - [`host`]: the step host (`cox __host`): one process supervising many steps of an executor.
//! - [`logs`]: log capture, the JSON Lines log format, `read_log` and `LogFollower`.
//! - [`exit`]: `ExitStatus` and `Exit` (status, Argo-style message, timing, result).
//! - [`error`]: the crate's `Error` and `Result`.
//! - [`step`]: the scheduler-facing contract: `StepSpec`, `StepOutcome` and the `Executor` trait.
//! - [`executor`]: `LocalExecutor`, the `Executor` running steps as host processes through the wrapper.
//! - [`wrapper`]: the in-step wrapper (`cox __step`, or run by the step's supervisor itself): inputs, program, outputs.
//! - [`repo_config`]: the `cox` configuration file's `artifactRepository` (local or S3) and how it reaches the wrapper.
//! - [`images`]: the image table: entrypoints and command aliases of images on this host.
//! - [`argosay`]: `cox argosay`, the builtin stand-in for the `argoproj/argosay:v2` image.

pub mod argosay;
pub mod error;
pub mod executor;
pub mod exit;
pub mod host;
pub mod images;
pub mod local;
pub mod logs;
pub mod repo_config;
pub mod spec;
pub mod step;
pub mod wrapper;

pub use error::{Error, Result};
pub use executor::{LocalExecutor, LocalExecutorConfig};
pub use exit::{Exit, ExitStatus};
pub use images::{ImageEntry, ImageError, ImageTable};
pub use local::{Canceller, LocalProcess, Running, check_sandbox};
pub use logs::{LogFollower, LogLine, Stream, read_log};
pub use spec::{Mount, ProcessSpec};
