//! The Argo-compatible workflow model: parsing with exact error locations, validation,
//! `{{...}}` substitution and expressions. This crate does no I/O, so `cox lint` works offline.
//!
//! # Layout
//! - [`location`]: line/column locations and field paths such as `spec.templates[1].dag`.
//! - [`node`]: the located YAML/JSON tree every source is first read into, with budgets.
//! - [`de`]: strict typed deserialisation from that tree, with paths and "did you mean".
//! - [`diag`]: diagnostics (file, line, column, field path, message, hint) and their rendering.
//! - [`model`]: Argo's kinds (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow).
//! - [`load`]: a source's text to typed manifests, other kinds kept aside.
//! - [`validate`]: Argo's lint rules, every problem located.
//! - [`lint`]: many sources linted together, references resolved between them.
//! - [`expr`]: `{{...}}` substitution, expr-lang expressions, `when` and `depends`.
//! - [`duration`]: Go-style durations (`1h30m`) and bare seconds, as Argo reads them.
//! - [`cron`]: cron schedules and time zones.
pub mod cron;
pub mod de;
pub mod diag;
pub mod duration;
pub mod expr;
pub mod lint;
pub mod load;
pub mod location;
pub mod model;
pub mod node;
pub mod validate;
