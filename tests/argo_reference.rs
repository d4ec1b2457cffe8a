//! Argo's own example and e2e files (`../shared/argo`, or `$COX_ARGO_REFERENCE`) against our
//! parser and linter: examples lint clean or are refused for a listed reason, `lintfail` files
//! are refused with a located error, and every document survives parse-then-serialise.
//!
//! The reference data is not part of this repository; without it these tests say so and pass.

use cox_config::lint::{LintInput, lint_sources};
use cox_config::load::load;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Reference files refused on purpose, with the reason that must be reported.
const REFUSED: &[(&str, &str)] = &[(
    "examples/k8s-patch-json-workflow.yaml",
    "duplicate key 'annotations'",
)];

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("COX_ARGO_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/argo"));
    if dir.join("EXPECTED.tsv").exists() {
        Some(dir)
    } else {
        eprintln!(
            "Argo reference data not found at {}: nothing to check",
            dir.display()
        );
        None
    }
}

/// Every `.yaml`/`.yml`/`.json` file below `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("readable reference directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The reference copy stores Argo's symbolic links as text files holding the link target,
/// relative to Argo's own tree (`../../../examples/hello-world.yaml` from `test/e2e/functional`);
/// follow them from the reference root as git would have.
fn read_following_links(root: &Path, path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("reference file is UTF-8");
    let target = text.trim();
    let looks_like_link =
        !target.contains('\n') && !target.contains(':') && target.ends_with(".yaml");
    if looks_like_link {
        let within_root = target.trim_start_matches("../");
        let linked = root.join(within_root);
        if linked.exists() && linked != path {
            return read_following_links(root, &linked);
        }
    }
    text
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn examples_and_functional_workflows_lint_clean() {
    let Some(root) = reference_dir() else { return };
    let mut inputs = Vec::new();
    for dir in ["examples", "e2e/functional"] {
        for path in files(&root.join(dir)) {
            inputs.push(LintInput {
                source: relative(&root, &path),
                text: read_following_links(&root, &path),
            });
        }
    }
    assert!(
        inputs.len() > 200,
        "expected Argo's examples, found {} files",
        inputs.len()
    );
    let report = lint_sources(&inputs);
    let mut unexpected = Vec::new();
    for d in report.diagnostics.iter().filter(|d| d.is_error()) {
        let refused = REFUSED
            .iter()
            .any(|(file, reason)| d.source == *file && d.message.contains(reason));
        if !refused {
            unexpected.push(d.to_string());
        }
    }
    assert!(
        unexpected.is_empty(),
        "unexpected lint errors:\n{}",
        unexpected.join("\n")
    );
    for (file, reason) in REFUSED {
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.source == *file && d.message.contains(reason) && d.location.is_known()),
            "{file} should be refused with '{reason}' at a location"
        );
    }
    eprintln!("linted {} files, {} objects", inputs.len(), report.objects);
}

#[test]
fn lintfail_files_are_refused_with_a_location() {
    let Some(root) = reference_dir() else { return };
    let lintfail = files(&root.join("e2e/lintfail"));
    assert!(!lintfail.is_empty());
    for path in lintfail {
        let output = Command::new(env!("CARGO_BIN_EXE_cox"))
            .args(["lint", "-o", "json"])
            .arg(&path)
            .output()
            .expect("cox runs");
        assert_eq!(
            output.status.code(),
            Some(1),
            "{} must be refused",
            path.display()
        );
        let report: Value = serde_json::from_slice(&output.stdout).expect("json report");
        let first = &report["diagnostics"][0];
        assert!(
            first["line"].as_u64().unwrap_or(0) > 0,
            "{}: error without a line: {first}",
            path.display()
        );
        assert!(
            !first["path"].as_str().unwrap_or("").is_empty(),
            "{}: error without a field path: {first}",
            path.display()
        );
    }
}

/// Compare as Argo's JSON does: empty values omitted, scalars by their text (AnyString and
/// intstr turn `1` into `"1"`).
fn normalise(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(Value::String(s.clone())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        Value::Number(n) => Some(Value::String(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        })),
        Value::Array(items) => {
            let items: Vec<Value> = items
                .iter()
                .map(|v| normalise(v).unwrap_or(Value::Null))
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| normalise(v).map(|v| (k.clone(), v)))
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
    }
}

fn differences(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get(k) {
                    Some(w) => differences(&format!("{path}.{k}"), w, v, out),
                    None => out.push(format!("{path}.{k}: lost")),
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                out.push(format!("{path}.{k}: added"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (w, v)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), w, v, out);
            }
        }
        _ if ours == theirs => {}
        _ => out.push(format!("{path}: {ours} != {theirs}")),
    }
}

#[test]
fn every_document_round_trips_without_losing_a_field() {
    let Some(root) = reference_dir() else { return };
    let mut documents = 0;
    let mut failures = Vec::new();
    for dir in [
        "examples",
        "e2e/functional",
        "e2e/expectedfailures",
        "e2e/testdata",
    ] {
        for path in files(&root.join(dir)) {
            let source = relative(&root, &path);
            let loaded = load(&source, &read_following_links(&root, &path));
            for doc in &loaded.documents {
                documents += 1;
                let ours = serde_json::to_value(&doc.manifest).expect("serialisable");
                let theirs = doc.node.to_json();
                let (ours, theirs) = (
                    normalise(&ours).unwrap_or(Value::Null),
                    normalise(&theirs).unwrap_or(Value::Null),
                );
                let mut diff = Vec::new();
                differences("", &ours, &theirs, &mut diff);
                if !diff.is_empty() {
                    failures.push(format!(
                        "{source} (document {}): {}",
                        doc.index,
                        diff.join("; ")
                    ));
                }
            }
        }
    }
    assert!(
        documents > 400,
        "expected Argo's documents, found {documents}"
    );
    assert!(
        failures.is_empty(),
        "{} documents changed in a round trip:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{documents} documents round-tripped");
}
