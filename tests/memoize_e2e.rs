//! Template `memoize` through `cox run` and `cox cache`, with real steps and a real store:
//! the second run of a memoized step reuses the first one's outputs without running it.

use std::process::{Command, Output};

use serde_json::Value;

const FIXTURE: &str = "tests/fixtures/memoize/nonce.yaml";

fn cox(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("COX_HOME", home)
        .env_remove("XDG_DATA_HOME")
        .args(args)
        .output()
        .expect("run cox")
}

/// `cox run` of the fixture; the `compute` node's memoization hit and output value.
fn run(home: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["run", FIXTURE, "-o", "json", "--no-sandbox"];
    args.extend_from_slice(extra);
    let out = cox(home, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let wf: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not a workflow ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(wf["status"]["phase"], "Succeeded", "{wf:#}");
    let node = wf["status"]["nodes"]
        .as_object()
        .expect("nodes")
        .values()
        .find(|n| n["displayName"] == "compute")
        .expect("compute node")
        .clone();
    assert_eq!(node["memoizationStatus"]["cacheName"], "nonces");
    let value = node["outputs"]["parameters"][0]["value"]
        .as_str()
        .expect("value")
        .to_string();
    let key = node["memoizationStatus"]["key"].as_str().expect("key");
    assert!(key.starts_with("nonce-"), "{key}");
    (
        node["memoizationStatus"]["hit"].as_bool().expect("hit"),
        value,
    )
}

#[test]
fn a_second_run_reuses_the_memoized_outputs_until_the_entry_is_deleted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");

    let (hit, first) = run(&home, &[]);
    assert!(!hit);
    assert_eq!(first.len(), 32, "{first}");
    let (hit, second) = run(&home, &[]);
    assert!(hit, "the second run is a cache hit");
    assert_eq!(second, first, "with the same outputs");
    // Another input is another key.
    let (hit, other) = run(&home, &["-p", "dataset=stock"]);
    assert!(!hit);
    assert_ne!(other, first);

    let list = cox(&home, &["cache", "list"]);
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        list.contains("nonce-sales") && list.contains("nonce-stock"),
        "{list}"
    );
    let show = cox(
        &home,
        &["cache", "show", "nonce-sales", "--cache", "nonces"],
    );
    assert_eq!(show.status.code(), Some(0));
    let entry: Value = serde_json::from_slice(&show.stdout).expect("entry json");
    assert_eq!(entry["outputs"]["parameters"][0]["value"], first.as_str());
    assert!(entry["lastHitTimestamp"].is_string(), "{entry:#}");

    let deleted = cox(&home, &["cache", "delete", "nonce-sales"]);
    assert_eq!(deleted.status.code(), Some(0), "{deleted:?}");
    let (hit, third) = run(&home, &[]);
    assert!(!hit, "deleted entries are computed again");
    assert_ne!(third, first);

    let missing = cox(&home, &["cache", "show", "nope", "--cache", "nonces"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no cache entry \"nope\""));
    let pruned = cox(&home, &["cache", "prune", "--older-than", "0s"]);
    assert!(String::from_utf8_lossy(&pruned.stdout).contains("2 cache entries pruned"));
}
