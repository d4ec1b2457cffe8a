//! Chaos: `cox server` is SIGKILLed at random moments and restarted while workflows run.
//! Every step appends `run pod attempt` to a ledger on a hostPath volume. Afterwards every
//! acknowledged workflow has finished Succeeded, no attempt appears twice in the ledger (no
//! step that had succeeded ran again), and every step's output is intact.
//!
//! Bounded for CI by default; the issue's full setting (20 workflows of 50 steps, 50 kills)
//! is `scripts/chaos`, through these variables:
//! `COX_CHAOS_WORKFLOWS` (default 3), `COX_CHAOS_STEPS` (default 8), `COX_CHAOS_KILLS`
//! (default 6), `COX_CHAOS_SEED` (default: from the clock, printed).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{Server, cox_at};

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64: reproducible from the printed seed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Two interleaved chains of `steps` tasks: task i depends on task i-2.
fn workflow(name: &str, steps: u64, dir: &Path) -> String {
    let mut tasks = String::new();
    for i in 0..steps {
        let depends = if i >= 2 {
            format!(", dependencies: [t{}]", i - 2)
        } else {
            String::new()
        };
        tasks.push_str(&format!(
            "      - {{name: t{i}, template: step, arguments: {{parameters: [{{name: n, value: \"{i}\"}}]}}{depends}}}\n"
        ));
    }
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{name: {name}}}
spec:
  entrypoint: main
  volumes:
  - {{name: ledger, hostPath: {{path: {dir}}}}}
  templates:
  - name: main
    dag:
      tasks:
{tasks}  - name: step
    inputs: {{parameters: [{{name: n}}]}}
    retryStrategy: {{limit: 3, retryPolicy: OnError}}
    container:
      image: busybox
      command: [sh, -c]
      args: ["echo '{{{{workflow.name}}}} {{{{pod.name}}}} {{{{retries}}}}' >> /l/ledger; sleep 0.3; echo out-{{{{workflow.name}}}}-{{{{inputs.parameters.n}}}}"]
      volumeMounts: [{{name: ledger, mountPath: /l}}]
"#,
        dir = dir.display()
    )
}

#[test]
fn workflows_finish_intact_through_repeated_sigkills_of_the_server() {
    let workflows = setting("COX_CHAOS_WORKFLOWS", 3);
    let steps = setting("COX_CHAOS_STEPS", 8);
    let kills = setting("COX_CHAOS_KILLS", 6);
    let seed = setting(
        "COX_CHAOS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
            | 1,
    );
    eprintln!("chaos: {workflows} workflows of {steps} steps, {kills} kills, seed {seed}");
    let mut random = Random(seed);
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut names = Vec::new();
    let server = Server::start(home.path());
    for w in 0..workflows {
        let name = format!("chaos-{w}");
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, workflow(&name, steps, dir.path())).unwrap();
        let out = cox_at(
            home.path(),
            Some(&server.url),
            &["submit", &file.display().to_string()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        names.push(name);
    }
    let mut server = Some(server);
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(100 + random.below(900)));
        drop(server.take()); // SIGKILL
        server = Some(Server::start(home.path()));
    }
    let server = server.expect("a server");

    let mut results = BTreeMap::new();
    let mut succeeded_pods = BTreeSet::new();
    for name in &names {
        cox_at(home.path(), Some(&server.url), &["wait", name]);
        let out = cox_at(home.path(), Some(&server.url), &["get", name, "-o", "json"]);
        let workflow: Value = serde_json::from_slice(&out.stdout).expect("workflow as JSON");
        assert_eq!(
            workflow["status"]["phase"], "Succeeded",
            "seed {seed}: {workflow}"
        );
        for node in workflow["status"]["nodes"]
            .as_object()
            .expect("nodes")
            .values()
        {
            if node["type"] == "Pod" && node["phase"] == "Succeeded" {
                succeeded_pods.insert(format!("{name} {}", node["id"].as_str().unwrap()));
                results.insert(
                    node["inputs"]["parameters"][0]["value"]
                        .as_str()
                        .map(|n| format!("{name}-{n}")),
                    node["outputs"]["result"].clone(),
                );
            }
        }
    }
    // Every task succeeded once, with its own output.
    assert_eq!(results.len() as u64, workflows * steps, "seed {seed}");
    for (task, result) in &results {
        let task = task.as_deref().expect("the step's input");
        assert_eq!(result, &Value::from(format!("out-{task}")), "seed {seed}");
    }
    let ledger = std::fs::read_to_string(dir.path().join("ledger")).unwrap();
    let mut seen = BTreeSet::new();
    for line in ledger.lines() {
        let mut fields = line.split(' ');
        let (run, pod) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        assert!(
            seen.insert(format!("{run} {pod}")),
            "seed {seed}: {line} ran twice"
        );
    }
    // Each succeeded attempt appears exactly once.
    for pod in &succeeded_pods {
        assert!(
            seen.contains(pod),
            "seed {seed}: {pod} is not in the ledger"
        );
    }
}
