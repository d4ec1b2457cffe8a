//! `kill -9` of `cox server` while local steps run, then a restart: a step that ended while
//! no scheduler ran is adopted (its recorded outcome, not rerun), a step still running is
//! waited for, and a step whose supervisor vanished is an infrastructure error.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, cox_at};

/// Two steps that log their start to a ledger, then wait for a release file each.
const GATED: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: gated}
spec:
  entrypoint: main
  volumes:
  - {name: dir, hostPath: {path: DIR}}
  templates:
  - name: main
    dag:
      tasks:
      - {name: quick, template: gate, arguments: {parameters: [{name: who, value: quick}]}}
      - {name: slow, template: gate, arguments: {parameters: [{name: who, value: slow}]}}
  - name: gate
    inputs: {parameters: [{name: who}]}
    container:
      image: busybox
      command: [sh, -c]
      args: ["echo {{inputs.parameters.who}} >> /d/ledger; touch /d/started-{{inputs.parameters.who}}; while [ ! -e /d/release-{{inputs.parameters.who}} ]; do sleep 0.1; done; echo out-{{inputs.parameters.who}}"]
      volumeMounts: [{name: dir, mountPath: /d}]
"#;

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit_gated(home: &Path, dir: &Path, server: &Server) {
    let file = dir.join("gated.yaml");
    std::fs::write(&file, GATED.replace("DIR", &dir.display().to_string())).unwrap();
    let out = cox_at(
        home,
        Some(&server.url),
        &["submit", &file.display().to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("both steps to start", || {
        dir.join("started-quick").exists() && dir.join("started-slow").exists()
    });
}

fn finished(home: &Path, server: &Server) -> Value {
    // Its exit code says whether the run succeeded: the callers look at the phase.
    cox_at(home, Some(&server.url), &["wait", "gated"]);
    let out = cox_at(home, Some(&server.url), &["get", "gated", "-o", "json"]);
    serde_json::from_slice(&out.stdout).expect("workflow as JSON")
}

fn node<'a>(workflow: &'a Value, display: &str) -> &'a Value {
    workflow["status"]["nodes"]
        .as_object()
        .expect("nodes")
        .values()
        .find(|n| n["displayName"] == display)
        .unwrap_or_else(|| panic!("no node {display}: {workflow}"))
}

/// The live attempts under `home`: those whose lock file is held (by a supervisor of their
/// own or by the step host), each with the pid on the lock file's first line.
fn supervisors(home: &Path) -> Vec<i32> {
    let Ok(runs) = std::fs::read_dir(home.join("runs")) else {
        return Vec::new();
    };
    runs.flatten()
        .filter_map(|run| std::fs::read_dir(run.path()).ok())
        .flat_map(|attempts| attempts.flatten())
        .filter_map(|attempt| {
            let lock = attempt.path().join("supervisor.lock");
            let held = std::fs::File::open(&lock).ok()?.try_lock().is_err();
            let text = std::fs::read_to_string(&lock).ok()?;
            let pid = text.split_whitespace().next()?.parse().ok()?;
            held.then_some(pid)
        })
        .collect()
}

#[test]
fn steps_outlive_a_killed_server_and_are_adopted_not_rerun() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    submit_gated(home.path(), dir.path(), &server);
    drop(server); // SIGKILL

    assert_eq!(
        supervisors(home.path()).len(),
        2,
        "the steps outlive the server"
    );
    // quick ends while no scheduler runs; slow is still running at the restart.
    std::fs::write(dir.path().join("release-quick"), "").unwrap();
    wait_for("quick's supervisor to record its end", || {
        supervisors(home.path()).len() == 1
    });
    let server = Server::start(home.path());
    std::fs::write(dir.path().join("release-slow"), "").unwrap();
    let workflow = finished(home.path(), &server);

    assert_eq!(workflow["status"]["phase"], "Succeeded", "{workflow}");
    for who in ["quick", "slow"] {
        let node = node(&workflow, who);
        assert_eq!(node["phase"], "Succeeded", "{node}");
        assert_eq!(node["outputs"]["result"], format!("out-{who}"), "{node}");
    }
    let mut ledger: Vec<String> = std::fs::read_to_string(dir.path().join("ledger"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    ledger.sort();
    assert_eq!(ledger, ["quick", "slow"], "each step ran once");
}

#[test]
fn a_step_whose_supervisor_vanished_is_an_infrastructure_error() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    submit_gated(home.path(), dir.path(), &server);
    drop(server);
    // The steps' supervisor (the step host) killed with the server: their sandboxes die
    // with it.
    let mut pids = supervisors(home.path());
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    wait_for("the supervisors to go", || {
        supervisors(home.path()).is_empty()
    });
    let server = Server::start(home.path());
    let workflow = finished(home.path(), &server);
    // As in Argo, a DAG whose tasks end in Error fails.
    assert_eq!(workflow["status"]["phase"], "Failed", "{workflow}");
    for who in ["quick", "slow"] {
        let node = node(&workflow, who);
        assert_eq!(node["phase"], "Error", "{node}");
        assert_eq!(
            node["message"],
            cox_scheduler::actor::LOST_STEP_MESSAGE,
            "{node}"
        );
    }
}

#[test]
fn an_adopted_step_is_still_stopped_with_its_whole_process_tree() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    submit_gated(home.path(), dir.path(), &server);
    drop(server);
    let server = Server::start(home.path());
    let out = cox_at(home.path(), Some(&server.url), &["terminate", "gated"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let workflow = finished(home.path(), &server);
    assert_eq!(workflow["status"]["phase"], "Failed", "{workflow}");
    for who in ["quick", "slow"] {
        assert_eq!(node(&workflow, who)["phase"], "Failed", "{workflow}");
    }
    // Stopped, not left behind: no supervisor, and no step process (they wait on the
    // release files, which never come).
    wait_for("the supervisors to go", || {
        supervisors(home.path()).is_empty()
    });
    let dir_name = dir.path().display().to_string();
    let steps_left = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&dir_name))
        })
        .count();
    assert_eq!(steps_left, 0, "step processes left behind");
}
