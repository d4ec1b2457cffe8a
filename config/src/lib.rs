//! The Argo-compatible workflow model: parsing with exact error locations, validation,
//! `{{...}}` substitution and expressions. This crate does no I/O, so `cox lint` works offline.
//!
//! # Layout
//! - [`location`]: line/column locations and field paths such as `spec.templates[1].dag`.
//! - [`node`]: the located YAML/JSON tree every source is first read into, with budgets.
pub mod location;
pub mod node;
