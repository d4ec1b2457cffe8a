//! Argo's H*-class examples (`../shared/argo/EXPECTED.tsv`, or `$COX_ARGO_REFERENCE`): each
//! with a fresh `COX_HOME` into which the examples' prerequisites are stored first with
//! `cox apply -f` (the ConfigMap, the WorkflowTemplates and the ClusterWorkflowTemplates),
//! then run with `cox run -o json` and compared with the phase Argo expects. The examples
//! that wait for a resume are run by `cox server` and resumed over its API (see
//! `suspended_examples_finish_once_resumed`).
//!
//! `memoize-simple.yaml` is run twice in the same home: Argo expects the second run to be
//! answered from the cache its first run filled (`memoizationStatus.hit`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use support::{Server, cox_at};

use serde_json::Value;

/// Stored before every example, as Argo's CI creates them in the cluster.
const PREREQUISITES: [&str; 3] = [
    "examples/configmaps/simple-parameters-configmap.yaml",
    "examples/workflow-template/templates.yaml",
    "examples/cluster-workflow-template/clustertemplates.yaml",
];

/// Examples left to other tests here or to later work.
const NOT_RUN_BY_COX_RUN: [&str; 3] = [
    "examples/suspend-template.yaml",
    "examples/suspend-template-outputs.yaml",
    "examples/intermediate-parameters.yaml",
];

/// The reference directory; None (the tests skipped) only when `$COX_ARGO_REFERENCE` is not
/// set and `../shared/argo` is absent: `scripts/test` sets it whenever it has one.
fn argo() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("COX_ARGO_REFERENCE").map(PathBuf::from) {
        assert!(
            dir.join("EXPECTED.tsv").is_file(),
            "COX_ARGO_REFERENCE={}: no EXPECTED.tsv",
            dir.display()
        );
        return Some(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/argo");
    if dir.join("EXPECTED.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("{}: no EXPECTED.tsv; H* examples skipped", dir.display());
        None
    }
}

/// `(path, expected phase)` of every H* example.
fn hstar(argo: &Path) -> Vec<(String, String)> {
    let table = std::fs::read_to_string(argo.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    table
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut fields = l.split('\t');
            let (path, class, expected) = (fields.next()?, fields.next()?, fields.next()?);
            (class == "H*").then(|| (path.to_string(), expected.to_string()))
        })
        .collect()
}

fn cox(home: &Path, args: &[&str]) -> Output {
    cox_at(home, None, args)
}

/// The example whose second run, in the same home, must be a cache hit.
const MEMOIZED: &str = "examples/memoize-simple.yaml";

/// Whether any node of the workflow was answered from the memoization cache.
fn cache_hit(workflow: &Value) -> bool {
    workflow["status"]["nodes"]
        .as_object()
        .into_iter()
        .flat_map(|nodes| nodes.values())
        .any(|n| n["memoizationStatus"]["hit"] == true)
}

/// A fresh home with the prerequisites stored.
fn prepared_home(argo: &Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("temp dir");
    let mut args = vec!["apply".to_string()];
    for file in PREREQUISITES {
        args.push("-f".into());
        args.push(argo.join(file).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let applied = cox(home.path(), &args);
    assert!(
        applied.status.success(),
        "cox apply: {}",
        String::from_utf8_lossy(&applied.stderr)
    );
    home
}

#[test]
fn hstar_examples_reach_their_expected_phase() {
    let Some(argo) = argo() else { return };
    let examples = hstar(&argo);
    assert!(examples.len() >= 17, "H* rows: {examples:?}");
    let mut failures = Vec::new();
    for (path, expected) in examples {
        if NOT_RUN_BY_COX_RUN.contains(&path.as_str()) {
            continue;
        }
        let home = prepared_home(&argo);
        let file = argo.join(&path).display().to_string();
        let runs = if path == MEMOIZED { 2 } else { 1 };
        let mut output = cox(home.path(), &["run", &file, "-o", "json"]);
        for _ in 1..runs {
            output = cox(home.path(), &["run", &file, "-o", "json"]);
        }
        let workflow = serde_json::from_slice::<Value>(&output.stdout).ok();
        let phase = workflow
            .as_ref()
            .and_then(|wf| wf["status"]["phase"].as_str().map(str::to_string));
        eprintln!("{path}: {phase:?} (want {expected})");
        if path == MEMOIZED && !workflow.as_ref().is_some_and(cache_hit) {
            failures.push(format!("{path}: the second run is not a cache hit"));
        }
        if phase.as_deref() != Some(expected.as_str()) {
            failures.push(format!(
                "{path}: {phase:?}, want {expected}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The workflow, read through the server.
fn workflow(home: &Path, server: &str, name: &str) -> Value {
    let output = cox_at(home, Some(server), &["get", name, "-o", "json"]);
    assert!(
        output.status.success(),
        "cox get {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("workflow JSON")
}

/// Display names of the suspend nodes waiting for a resume.
fn waiting(workflow: &Value) -> Vec<String> {
    workflow["status"]["nodes"]
        .as_object()
        .into_iter()
        .flat_map(|nodes| nodes.values())
        .filter(|n| n["type"] == "Suspend" && n["phase"] == "Running")
        .filter_map(|n| n["displayName"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn suspended_examples_finish_once_resumed() {
    let Some(argo) = argo() else { return };
    let home = prepared_home(&argo);
    let server = Server::start(home.path());
    let url = server.url.as_str();
    // What each example's suspend nodes are given before they are resumed.
    let supplied: [(&str, &[(&str, &str)]); 3] = [
        ("examples/suspend-template.yaml", &[]),
        (
            "examples/suspend-template-outputs.yaml",
            &[("approve", "message=released by the test")],
        ),
        (
            "examples/intermediate-parameters.yaml",
            &[("approval", "approve=YES")],
        ),
    ];
    let expected = hstar(&argo);
    for (path, values) in supplied {
        let want = &expected
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("{path} is not an H* example"))
            .1;
        let file = argo.join(path).display().to_string();
        let submitted = cox_at(home.path(), Some(url), &["submit", &file]);
        assert!(
            submitted.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&submitted.stderr)
        );
        let name = String::from_utf8_lossy(&submitted.stdout)
            .trim()
            .to_string();
        // Resume whatever suspend node waits, until the workflow ends (suspend-template has
        // a manual approval and then a 20 s delay, which a resume also ends).
        let deadline = Instant::now() + Duration::from_secs(120);
        let finished = loop {
            let current = workflow(home.path(), url, &name);
            if matches!(
                current["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed" | "Error")
            ) {
                break current;
            }
            for node in waiting(&current) {
                for (display, parameter) in values.iter().filter(|(d, _)| *d == node) {
                    let set = cox_at(
                        home.path(),
                        Some(url),
                        &[
                            "node",
                            "set",
                            &name,
                            "--node-field-selector",
                            &format!("displayName={display}"),
                            "--output-parameter",
                            parameter,
                        ],
                    );
                    assert!(
                        set.status.success(),
                        "{path}: node set: {}",
                        String::from_utf8_lossy(&set.stderr)
                    );
                }
                let resumed = cox_at(home.path(), Some(url), &["resume", &name]);
                assert!(
                    resumed.status.success(),
                    "{path}: resume: {}",
                    String::from_utf8_lossy(&resumed.stderr)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{path}: never finished: {current}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(
            finished["status"]["phase"],
            want.as_str(),
            "{path}: {finished}"
        );
        let waited = cox_at(home.path(), Some(url), &["wait", &name]);
        assert!(waited.status.success(), "{path}: cox wait");
        eprintln!("{path}: {want}");
    }
    let outputs = workflow(home.path(), url, "suspend-outputs");
    let release = outputs["status"]["nodes"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["displayName"] == "release")
        .expect("release node");
    assert_eq!(
        release["inputs"]["parameters"][0]["value"],
        "released by the test"
    );
}
