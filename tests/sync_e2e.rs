//! Global concurrency through the real `cox server` and real steps: the one-at-a-time
//! example of the README, and `kill -9` of the server while a mutex is held and others
//! wait, then a restart: the holder is known again from the store, nobody overlaps, the
//! queue keeps its order, nothing is leaked.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Server, cox_at};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn get(home: &Path, server: &Server, name: &str) -> Value {
    let out = ok(cox_at(
        home,
        Some(&server.url),
        &["get", name, "-o", "json"],
    ));
    serde_json::from_str(&out).expect("workflow as JSON")
}

/// `cox sync list --json`: the locks of `default`.
fn locks(home: &Path, server: &Server) -> Vec<Value> {
    let out = ok(cox_at(home, Some(&server.url), &["sync", "list", "--json"]));
    serde_json::from_str(&out).expect("locks as JSON")
}

/// The runs holding and waiting for `key` (waiters in queue order).
fn lock_people(home: &Path, server: &Server, key: &str) -> (Vec<String>, Vec<String>) {
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["run"].as_str().map(str::to_string))
            .collect()
    };
    locks(home, server)
        .iter()
        .find(|l| l["key"] == key)
        .map(|l| (names(&l["holders"]), names(&l["waiters"])))
        .unwrap_or_default()
}

#[test]
fn the_one_at_a_time_example_runs_submissions_from_its_template_one_after_another() {
    let home = tempfile::tempdir().unwrap();
    let server = Server::start(home.path());
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/one-at-a-time.yaml");
    ok(cox_at(
        home.path(),
        Some(&server.url),
        &["apply", "-f", example],
    ));
    let mut names = Vec::new();
    for _ in 0..3 {
        let out = ok(cox_at(
            home.path(),
            Some(&server.url),
            &[
                "submit",
                "--from",
                "workflowtemplate/hourly-report",
                "-p",
                "seconds=3",
                "-o",
                "name",
            ],
        ));
        names.push(out.trim().to_string());
    }
    let key = "default/Mutex/hourly-report";
    // The last submission waits behind two runs of 3 s each: it is Pending, with Argo's
    // message, and queued behind the second.
    let pending = get(home.path(), &server, &names[2]);
    assert_eq!(pending["status"]["phase"], "Pending", "{pending}");
    assert_eq!(
        pending["status"]["message"],
        "Waiting for default/Mutex/hourly-report lock. Lock status: 0/1"
    );
    let (holders, waiters) = lock_people(home.path(), &server, key);
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(waiters.last(), Some(&names[2]));
    let table = ok(cox_at(home.path(), Some(&server.url), &["sync", "list"]));
    assert!(table.contains(key) && table.contains("1/1"), "{table}");

    let mut spans = Vec::new();
    for name in &names {
        cox_at(home.path(), Some(&server.url), &["wait", name]);
        let run = get(home.path(), &server, name);
        assert_eq!(run["status"]["phase"], "Succeeded", "{run}");
        let at = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(run["status"][field].as_str().expect(field))
                .expect("RFC 3339")
        };
        spans.push((at("startedAt"), at("finishedAt")));
    }
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {spans:?}");
    }
    let (holders, waiters) = lock_people(home.path(), &server, key);
    assert!(holders.is_empty() && waiters.is_empty());
    let metrics = http_get(&server, "/metrics");
    assert!(
        metrics.contains(&format!("cox_sync_locks_held{{lock=\"{key}\"}} 0")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("cox_sync_lock_limit{{lock=\"{key}\"}} 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("cox_sync_wait_seconds_count 3"),
        "{metrics}"
    );
}

/// The body of a plain HTTP/1.0 GET (no client library needed for a text answer).
fn http_get(server: &Server, path: &str) -> String {
    use std::io::{Read, Write};
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
}

/// A workflow holding mutex `gate` whose step notes its start and end in a ledger, and
/// waits for a release file in between.
fn gated(name: &str, priority: i32, dir: &Path) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
  priority: {priority}
  synchronization:
    mutexes: [{{name: gate}}]
  volumes:
  - {{name: dir, hostPath: {{path: {dir}}}}}
  templates:
  - name: main
    container:
      image: busybox
      command: [sh, -c]
      args: ["echo start {name} >> /d/ledger; touch /d/started-{name}; while [ ! -e /d/release-{name} ]; do sleep 0.1; done; echo end {name} >> /d/ledger"]
      volumeMounts: [{{name: dir, mountPath: /d}}]
"#,
        dir = dir.display()
    )
}

#[test]
fn a_killed_server_keeps_its_holders_and_queue_and_leaks_nothing() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = "default/Mutex/gate";
    let mut server = Server::start(home.path());
    // g1 takes the mutex; the others queue: priority first, then submission order.
    let runs = [("g1", 0), ("g2", 0), ("g3", 5), ("g4", 0), ("g5", 5)];
    for (name, priority) in runs {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, gated(name, priority, dir.path())).unwrap();
        ok(cox_at(
            home.path(),
            Some(&server.url),
            &["submit", &file.display().to_string()],
        ));
        if name == "g1" {
            wait_for("g1 to start", || dir.path().join("started-g1").exists());
        }
    }
    let order = ["g1", "g3", "g5", "g2", "g4"];
    wait_for("four waiters", || {
        lock_people(home.path(), &server, key).1.len() == 4
    });
    assert_eq!(
        lock_people(home.path(), &server, key),
        (
            vec!["g1".to_string()],
            order[1..].iter().map(|s| s.to_string()).collect()
        )
    );

    for (i, name) in order.iter().enumerate() {
        // `name` holds the mutex once its step started: its start is stored before the step
        // runs. (Killed between the grant and that write, the server would restart with no
        // holder, and the waiters, asking again in submission order, could pass it.)
        wait_for("the holder to start", || {
            dir.path().join(format!("started-{name}")).exists()
        });
        // Kill the server while `name` holds the mutex (every other turn), and restart.
        if i % 2 == 0 {
            drop(server); // SIGKILL
            if i == 0 {
                // With no server, `cox sync list` reads the same from the store.
                let out = ok(cox_at(home.path(), None, &["sync", "list", "--json"]));
                let stored: Vec<Value> = serde_json::from_str(&out).expect("locks");
                let gate = stored.iter().find(|l| l["key"] == key).expect("the mutex");
                assert_eq!(gate["holders"][0]["run"], "g1", "{gate}");
                let waiting: Vec<&str> = gate["waiters"]
                    .as_array()
                    .expect("waiters")
                    .iter()
                    .filter_map(|w| w["run"].as_str())
                    .collect();
                assert_eq!(waiting, order[1..], "{gate}");
            }
            server = Server::start(home.path());
            let (holders, waiters) = lock_people(home.path(), &server, key);
            assert_eq!(holders, [*name], "the holder after a restart");
            assert_eq!(waiters, order[i + 1..], "the queue after a restart");
        }
        for later in &order[i + 1..] {
            assert!(
                !dir.path().join(format!("started-{later}")).exists(),
                "{later} started while {name} holds the mutex"
            );
        }
        std::fs::write(dir.path().join(format!("release-{name}")), "").unwrap();
        cox_at(home.path(), Some(&server.url), &["wait", name]);
    }
    for name in order {
        let run = get(home.path(), &server, name);
        assert_eq!(run["status"]["phase"], "Succeeded", "{run}");
    }
    // Never two at once: each start is followed by its own end.
    let ledger = std::fs::read_to_string(dir.path().join("ledger")).unwrap();
    let expected: Vec<String> = order
        .iter()
        .flat_map(|n| [format!("start {n}"), format!("end {n}")])
        .collect();
    assert_eq!(ledger.lines().collect::<Vec<_>>(), expected);
    let (holders, waiters) = lock_people(home.path(), &server, key);
    assert!(holders.is_empty() && waiters.is_empty(), "a leaked permit");
}
