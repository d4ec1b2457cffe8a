//! Fuzz the Argo YAML loader and linter: arbitrary UTF-8 must never panic or hang.
#![no_main]

use cox_config::lint::{LintInput, lint_sources};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let loaded = cox_config::load::load("fuzz", text);
    let _ = loaded.has_errors();
    let report = lint_sources(&[LintInput {
        source: "fuzz".to_string(),
        text: text.to_string(),
    }]);
    let _ = (report.error_count(), report.warning_count());
});
