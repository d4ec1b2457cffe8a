//! Argo-compatible substitution and expression layer.
//!
//! * `{{name}}` simple tags and `{{=expr}}` expression tags ([`substitute`]),
//! * expr-lang evaluation with Argo's environment and functions ([`evaluate`]),
//! * govaluate-style `when` conditions ([`evaluate_when`]),
//! * enhanced DAG `depends` logic ([`depends`]),
//! * tag/reference extraction for lint ([`references`], [`check_expression`]).
//!
//! Nothing here does I/O: the time used by `now()` / `sprig.now()` / `sprig.date`
//! comes from [`Vars::set_now`].

pub mod depends;
mod eval;
mod gofmt;
mod scan;
mod sprig;
mod template;
mod when;

use std::collections::BTreeMap;

pub use eval::{check_expression, evaluate};
pub use template::{TagKind, TagRef, references, substitute};
pub use when::evaluate_when;

/// Errors of the substitution and expression layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// A `{{` with no matching `}}`; `offset` is the byte offset of the `{{`.
    #[error("unclosed tag at byte {offset}: cannot find end tag \"}}}}\" in {text:?}")]
    UnclosedTag { offset: usize, text: String },
    /// A simple `{{name}}` tag whose variable is not defined (Argo: `failed to resolve {{x}}`).
    #[error("failed to resolve {{{{{tag}}}}}")]
    Unresolved { tag: String },
    /// An expression that expr-lang could not parse.
    #[error("invalid expression '{expr}': {message}")]
    Syntax { expr: String, message: String },
    /// An expression that failed while running (unknown variable, bad operand, function error).
    #[error("failed to evaluate expression '{expr}': {message}")]
    Evaluation { expr: String, message: String },
    /// An expression that evaluated to nil, which Argo cannot render into a string.
    #[error("failed to evaluate expression '{expr}': result is nil")]
    NilResult { expr: String },
    /// A `when` condition that could not be parsed or evaluated to a bool; the message
    /// is Argo's own wording (`Invalid 'when' expression '...': ...`).
    #[error("Invalid 'when' expression '{condition}': {message}")]
    InvalidWhen { condition: String, message: String },
    /// A malformed `depends` expression; `position` is a byte offset into it.
    #[error("invalid depends expression '{depends}' at position {position}: {message}")]
    InvalidDepends {
        depends: String,
        position: usize,
        message: String,
    },
}

/// How [`substitute`] treats a tag it cannot resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// Keep the tag text unchanged (Argo's `allowUnresolved`, used for early global substitution).
    Leave,
    /// Fail naming the tag.
    Error,
}

/// The variables visible to templates: a flat map from dotted name to value, like Argo's
/// `replaceMap`. Values are strings mostly; an object value (a `withItems` map item) also
/// answers `name.key` lookups one level down, as Argo flattens `item.key`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    map: BTreeMap<String, serde_json::Value>,
    now: Option<chrono::DateTime<chrono::Utc>>,
}

impl Vars {
    /// An empty set of variables, with no current time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set (or replace) a variable.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) {
        self.map.insert(name.into(), value.into());
    }

    /// The value stored under exactly this name.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.map.get(name)
    }

    /// Remove a variable, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<serde_json::Value> {
        self.map.remove(name)
    }

    /// The time `now()`, `sprig.now()` and `sprig.date` use; without it they fail.
    pub fn set_now(&mut self, now: chrono::DateTime<chrono::Utc>) {
        self.now = Some(now);
    }

    /// Builder form of [`Vars::set_now`].
    pub fn with_now(mut self, now: chrono::DateTime<chrono::Utc>) -> Self {
        self.now = Some(now);
        self
    }

    /// The injected current time, if any.
    pub fn now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.now
    }

    /// All variables, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The text a simple `{{name}}` tag renders to: strings as is, other values as compact
    /// JSON; `name.key` reaches into an object value. `None` if unknown or null.
    pub fn render(&self, name: &str) -> Option<String> {
        if let Some(v) = self.map.get(name) {
            return render_value(v);
        }
        // `item.name` where only `item` (an object) was inserted.
        let mut end = name.len();
        while let Some(dot) = name[..end].rfind('.') {
            if let Some(serde_json::Value::Object(_)) = self.map.get(&name[..dot]) {
                let mut cur = self.map.get(&name[..dot])?;
                for seg in name[dot + 1..].split('.') {
                    cur = cur.as_object()?.get(seg)?;
                }
                return render_value(cur);
            }
            end = dot;
        }
        None
    }

    /// Argo's flat `replaceMap` view: every entry as (name, string or null), with object
    /// values flattened one level into `name.key` entries as Argo does for map items.
    pub(crate) fn flat(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::with_capacity(self.map.len());
        for (k, v) in &self.map {
            match v {
                serde_json::Value::Object(m) => {
                    out.push((k.clone(), render_value(v)));
                    for (sk, sv) in m {
                        out.push((format!("{k}.{sk}"), render_value(sv)));
                    }
                }
                _ => out.push((k.clone(), render_value(v))),
            }
        }
        out
    }
}

/// Strings raw, null as `None`, anything else as compact JSON.
pub(crate) fn render_value(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vars_render_strings_numbers_objects() {
        let mut v = Vars::new();
        v.insert("a", "x");
        v.insert("n", 3);
        v.insert("b", true);
        v.insert("item", json!({"name": "jesse", "age": 42, "tags": ["a"]}));
        v.insert("list", json!([1, "two"]));
        v.insert("nil", serde_json::Value::Null);
        assert_eq!(v.render("a").as_deref(), Some("x"));
        assert_eq!(v.render("n").as_deref(), Some("3"));
        assert_eq!(v.render("b").as_deref(), Some("true"));
        assert_eq!(v.render("item.name").as_deref(), Some("jesse"));
        assert_eq!(v.render("item.age").as_deref(), Some("42"));
        assert_eq!(v.render("item.tags").as_deref(), Some("[\"a\"]"));
        assert_eq!(
            v.render("item").as_deref(),
            Some(r#"{"name":"jesse","age":42,"tags":["a"]}"#)
        );
        assert_eq!(v.render("list").as_deref(), Some(r#"[1,"two"]"#));
        assert_eq!(v.render("nil"), None);
        assert_eq!(v.render("item.nope"), None);
        assert_eq!(v.render("missing"), None);
        assert_eq!(v.len(), 6);
        assert!(!v.is_empty());
    }

    #[test]
    fn error_messages() {
        let e = ExprError::Unresolved {
            tag: "inputs.parameters.x".into(),
        };
        assert_eq!(e.to_string(), "failed to resolve {{inputs.parameters.x}}");
        let e = ExprError::UnclosedTag {
            offset: 3,
            text: "ab {{c".into(),
        };
        assert_eq!(
            e.to_string(),
            "unclosed tag at byte 3: cannot find end tag \"}}\" in \"ab {{c\""
        );
    }
}
