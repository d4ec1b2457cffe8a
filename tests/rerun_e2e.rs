//! `cox retry` and `cox resubmit --memoized` end to end: real steps, a real store, a step
//! that fails until the test lets it pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Home {
    tmp: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let home = Home {
            tmp: tempfile::tempdir().expect("tmp"),
        };
        std::fs::create_dir(home.data()).expect("data dir");
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rerun/flaky.yaml"),
        )
        .expect("fixture");
        let text = text.replace("DATA_DIR", &home.data().display().to_string());
        std::fs::write(home.workflow(), text).expect("write workflow");
        home
    }

    fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn workflow(&self) -> PathBuf {
        self.tmp.path().join("flaky.yaml")
    }

    fn cox(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cox"))
            .env("COX_HOME", self.tmp.path().join("home"))
            .env_remove("XDG_DATA_HOME")
            .args(args)
            .output()
            .expect("run cox")
    }

    /// `cox ARGS -o json`: the final workflow and the exit code.
    fn json(&self, args: &[&str]) -> (Value, Option<i32>) {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.cox(&all);
        let wf = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cox {args:?}: not a workflow ({e}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (wf, out.status.code())
    }

    fn times_b_ran(&self) -> usize {
        std::fs::read_to_string(self.data().join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

fn node<'a>(wf: &'a Value, display: &str) -> &'a Value {
    wf["status"]["nodes"]
        .as_object()
        .expect("nodes")
        .values()
        .find(|n| n["displayName"] == display)
        .unwrap_or_else(|| panic!("no node {display} in {wf:#}"))
}

#[test]
fn resubmit_memoized_reuses_a_and_retry_reruns_only_b() {
    let home = Home::new();
    let workflow = home.workflow();
    let file = workflow.to_str().expect("utf-8");
    let (failed, code) = home.json(&["run", file]);
    assert_eq!(code, Some(1));
    assert_eq!(failed["status"]["phase"], "Failed");
    let old = failed["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let value = node(&failed, "A")["outputs"]["parameters"][0]["value"].clone();
    assert_eq!(home.times_b_ran(), 1);

    // Still failing: retry runs B again (only B), and fails again.
    let (again, code) = home.json(&["retry", &old]);
    assert_eq!(code, Some(1));
    assert_eq!(again["metadata"]["name"], old.as_str(), "in place");
    assert_eq!(home.times_b_ran(), 2);
    assert_eq!(
        node(&again, "A")["outputs"]["parameters"][0]["value"],
        value
    );

    // Now B passes: a memoized resubmit reuses A, as Argo shows it.
    std::fs::write(home.data().join("pass"), "").expect("marker");
    let (new, code) = home.json(&["resubmit", &old, "--memoized"]);
    assert_eq!(code, Some(0), "{new:#}");
    assert_ne!(new["metadata"]["name"], old.as_str());
    let a = node(&new, "A");
    assert_eq!(a["type"], "Skipped");
    assert_eq!(
        a["outputs"]["parameters"][0]["value"], value,
        "A's output reused"
    );
    assert!(
        a["message"]
            .as_str()
            .expect("message")
            .starts_with("original pod: ")
    );
    assert_eq!(home.times_b_ran(), 3);
    // C got A's reused value.
    let logs = home.cox(&["logs", new["metadata"]["name"].as_str().expect("name")]);
    let logs = String::from_utf8_lossy(&logs.stdout).to_string();
    assert!(logs.contains(value.as_str().expect("value")), "{logs}");

    // A succeeded run cannot be resubmitted memoized, nor retried.
    let refused = home.cox(&[
        "resubmit",
        new["metadata"]["name"].as_str().unwrap(),
        "--memoized",
        "--no-sandbox",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("workflow must be Failed/Error to resubmit in memoized mode"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // The first run can still be retried in place, and now passes.
    let (retried, code) = home.json(&["retry", &old]);
    assert_eq!(code, Some(0));
    assert_eq!(retried["status"]["phase"], "Succeeded");
    assert_eq!(home.times_b_ran(), 4);
}
