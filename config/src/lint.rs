//! Lint: load many sources, resolve references between them, validate every document.

use crate::diag::{Diagnostic, Severity};
use crate::load::{Loaded, load};
use crate::validate::{Registry, validate};

/// One source to lint: its name (a path) and its text.
#[derive(Debug, Clone)]
pub struct LintInput {
    /// Name used in diagnostics, usually the file path.
    pub source: String,
    /// The source's text.
    pub text: String,
}

/// The outcome of linting a set of sources.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    /// Every problem found, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// How many Argo objects were checked.
    pub objects: usize,
}

impl LintReport {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }
}

/// Lint sources together: templates defined in one may be referenced from another.
pub fn lint_sources(inputs: &[LintInput]) -> LintReport {
    let loaded: Vec<Loaded> = inputs.iter().map(|i| load(&i.source, &i.text)).collect();
    let mut registry = Registry::default();
    for l in &loaded {
        for doc in &l.documents {
            registry.add(&doc.manifest);
        }
    }
    lint_loaded(&loaded, &registry)
}

/// Lint already loaded sources against a registry of referenceable templates.
pub fn lint_loaded(loaded: &[Loaded], registry: &Registry<'_>) -> LintReport {
    let mut report = LintReport::default();
    for l in loaded {
        let mut found = l.diagnostics.clone();
        for doc in &l.documents {
            report.objects += 1;
            found.extend(validate(&l.source, doc, registry));
        }
        // One source's problems in source order, whichever stage found them.
        found.sort_by_key(|d| (d.location.line, d.location.column));
        report.diagnostics.extend(found);
    }
    report
}
