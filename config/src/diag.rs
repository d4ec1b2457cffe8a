//! Diagnostics: what is wrong, in which file, at which line and column, under which field path.

use serde::Serialize;
use std::fmt;

use crate::location::{FieldPath, Location};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The document is refused.
    Error,
    /// The document is accepted, but something is likely wrong or deprecated.
    Warning,
}

/// One finding about a source, located as precisely as the checker could.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The source's name (a file path, `-`, or a request name).
    pub source: String,
    /// Line and column in the source; unknown when 0.
    #[serde(flatten)]
    pub location: Location,
    /// Field path from the document root, such as `spec.templates[1].dag.tasks[0]`.
    #[serde(serialize_with = "path_as_string")]
    pub path: FieldPath,
    /// The object's kind and name, such as `Workflow hello-world-`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// A suggestion, such as "did you mean 'dependencies'?".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn path_as_string<S: serde::Serializer>(path: &FieldPath, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string())
}

impl Serialize for Location {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Location", 2)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("column", &self.column)?;
        st.end()
    }
}

impl Diagnostic {
    /// An error at a path and location.
    pub fn error(
        source: &str,
        location: Location,
        path: FieldPath,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            source: source.to_string(),
            location,
            path,
            object: None,
            message: message.into(),
            hint: None,
        }
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Whether the diagnostic refuses the document.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `file:line:col: path: message (hint)`, the form editors and terminals understand.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if self.location.is_known() {
            write!(f, ":{}:{}", self.location.line, self.location.column)?;
        }
        if self.severity == Severity::Warning {
            write!(f, ": warning")?;
        }
        if !self.path.0.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// A third-party message in our style: first letter lowercase, no trailing period; `fallback`
/// when it is empty.
pub fn house_style(message: &str, fallback: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(c) => c
            .to_lowercase()
            .chain(chars)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string(),
        None => fallback.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_compiler() {
        let d = Diagnostic::error(
            "wf.yaml",
            Location {
                line: 12,
                column: 7,
            },
            FieldPath::parse("spec.templates[1].dag.tasks[0].dependancies"),
            "unknown field 'dependancies'",
        )
        .with_hint(Some("did you mean 'dependencies'?".into()));
        assert_eq!(
            d.to_string(),
            "wf.yaml:12:7: spec.templates[1].dag.tasks[0].dependancies: unknown field 'dependancies' (did you mean 'dependencies'?)"
        );
        let json = serde_json::to_value(&d).expect("json");
        assert_eq!(json["line"], 12);
        assert_eq!(json["path"], "spec.templates[1].dag.tasks[0].dependancies");
    }
}
