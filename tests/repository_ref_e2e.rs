//! `artifactRepositoryRef`: a ConfigMap stored with `cox apply` names the repository of a
//! run's steps; `cox run` resolves it at submission, writes Argo's
//! `status.artifactRepositoryRef`, and the artifacts land there (a local directory always; a
//! real S3-compatible bucket when `COX_TEST_S3_ENDPOINT` is set, see tests/s3_e2e.rs). A
//! reference to a missing key is refused before anything runs.
//!
//! The rules for what a ConfigMap may name (see `RepositoryPolicy`): local directories only
//! under the local repository root; the host's keys only for the configured bucket (or
//! `credentialsAllowedFor`), any other bucket needs `accessKeySecret`/`secretKeySecret`,
//! read from stored Secrets at launch and never written into the run, its logs or messages.
//! Artifacts with their own `s3:` bucket follow the same rules.

use std::path::Path;
use std::process::{Command, Output};

use cox_artifacts::{ArtifactRepository, S3Config};
use serde_json::Value;

const WORKFLOW: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: repo-ref-
spec:
  entrypoint: main
  artifactRepositoryRef:
    key: KEY
  templates:
  - name: main
    steps:
    - - name: produce
        template: produce
    - - name: consume
        template: consume
        arguments:
          artifacts:
          - name: file
            from: "{{steps.produce.outputs.artifacts.file}}"
  - name: produce
    container:
      image: alpine:3.7
      command: [sh, -c]
      args: ["mkdir -p OUT && echo hello-ref > OUT/file.txt"]
    outputs:
      artifacts:
      - name: file
        path: OUT/file.txt
  - name: consume
    inputs:
      artifacts:
      - name: file
        path: IN/file.txt
    container:
      image: alpine:3.7
      command: [sh, -c]
      args: ['test "$(cat IN/file.txt)" = hello-ref']
"#;

fn cox(home: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cox"));
    cmd.env("COX_HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("COX_SERVER")
        .env_remove("COX_CONFIG")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .args(args)
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run cox")
}

/// Stores the `artifact-repositories` ConfigMap with `data` (YAML lines, indented by 2).
fn apply_config_map(home: &Path, dir: &Path, data: &str) {
    apply(
        home,
        dir,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: artifact-repositories\n  annotations:\n    workflows.argoproj.io/default-artifact-repository: other\ndata:\n{data}"
        ),
    );
}

/// `cox apply` of the object `text`.
fn apply(home: &Path, dir: &Path, text: &str) {
    std::fs::write(dir.join("object.yaml"), text).unwrap();
    let out = cox(home, dir, &["apply", "-f", "object.yaml"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the workflow with `key` and returns the resulting Workflow.
fn run(home: &Path, dir: &Path, key: &str, env: &[(&str, &str)]) -> (Output, Option<Value>) {
    run_workflow(home, dir, &WORKFLOW.replace("KEY", key), env)
}

fn run_workflow(
    home: &Path,
    dir: &Path,
    workflow: &str,
    env: &[(&str, &str)],
) -> (Output, Option<Value>) {
    let paths = dir.join("paths");
    let workflow = workflow
        .replace("OUT", &paths.join("out").display().to_string())
        .replace("IN", &paths.join("in").display().to_string());
    std::fs::write(dir.join("wf.yaml"), workflow).unwrap();
    let out = cox(
        home,
        dir,
        &["run", "wf.yaml", "-o", "json", "--no-sandbox"],
        env,
    );
    let wf = serde_json::from_slice(&out.stdout).ok();
    (out, wf)
}

fn succeeded(out: &Output, wf: Option<Value>) -> (Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wf = wf.unwrap_or_else(|| panic!("no workflow on stdout; stderr:\n{stderr}"));
    assert_eq!(wf["status"]["phase"], "Succeeded", "{stderr}\n{wf:#}");
    let run = wf["metadata"]["name"].as_str().unwrap().to_string();
    (wf, run)
}

#[test]
fn local_directory_from_a_config_map() {
    let tmp = tempfile::tempdir().unwrap();
    // Under the local repository root: the configured local directory, `<home>/artifacts`.
    let home = tmp.path().join("home");
    let repo = home.join("artifacts").join("team");
    apply_config_map(
        &home,
        tmp.path(),
        &format!("  mine: |\n    local:\n      path: {}\n", repo.display()),
    );
    let (out, wf) = run(&home, tmp.path(), "mine", &[]);
    let (wf, run) = succeeded(&out, wf);
    let r = &wf["status"]["artifactRepositoryRef"];
    assert_eq!(r["configMap"], "artifact-repositories", "{wf:#}");
    assert_eq!(r["key"], "mine");
    assert_eq!(r["namespace"], "default");
    assert_eq!(
        r["artifactRepository"]["local"]["path"],
        repo.display().to_string()
    );
    // The artifact is in the ConfigMap's directory, not in the default one.
    let produced = std::fs::read_dir(repo.join(&run))
        .expect("the run's directory in the ConfigMap's repository")
        .count();
    assert!(produced > 0);
    assert!(!home.join("artifacts").join(&run).exists());

    // `cox cp` reads the run's repository.
    let dest = tmp.path().join("copied");
    let out = cox(
        &home,
        tmp.path(),
        &[
            "cp",
            &run,
            dest.to_str().unwrap(),
            "--path",
            "{artifactName}",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = std::fs::read_to_string(dest.join("file")).unwrap_or_else(|_| {
        std::fs::read_to_string(dest.join("file").join("file.txt")).expect("copied artifact")
    });
    assert_eq!(copied.trim(), "hello-ref");
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn artifact_gc_deletes_from_the_runs_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = home.join("artifacts").join("team");
    // No key in the ref: the ConfigMap's annotation names it.
    apply_config_map(
        &home,
        tmp.path(),
        &format!("  other: |\n    local:\n      path: {}\n", repo.display()),
    );
    let workflow = WORKFLOW.replace(
        "  artifactRepositoryRef:\n    key: KEY\n",
        "  artifactRepositoryRef: {configMap: artifact-repositories}\n  artifactGC: {strategy: OnWorkflowCompletion}\n",
    );
    let (out, wf) = run_workflow(&home, tmp.path(), &workflow, &[]);
    let (wf, run) = succeeded(&out, wf);
    assert_eq!(wf["status"]["artifactRepositoryRef"]["key"], "other");
    assert!(
        repo.exists(),
        "the steps never used the ConfigMap's repository"
    );
    let left = files(&repo.join(&run));
    assert!(left.is_empty(), "not collected: {left:?}");
}

#[test]
fn missing_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    apply_config_map(
        &home,
        tmp.path(),
        "  mine: |\n    local:\n      path: /nowhere\n",
    );
    let (out, _) = run(&home, tmp.path(), "nope", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "spec.artifactRepositoryRef: key 'nope' not found in ConfigMap 'artifact-repositories'"
        ),
        "{stderr}"
    );
    assert!(
        !home.join("runs").exists() || std::fs::read_dir(home.join("runs")).unwrap().count() == 0
    );
}

#[test]
fn missing_config_map_is_refused_unless_it_is_the_default_one() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let workflow = WORKFLOW.replace("    key: KEY\n", "    configMap: mine\n    key: k\n");
    let (out, _) = run_workflow(&home, tmp.path(), &workflow, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ConfigMap 'mine' not found in namespace 'default'"),
        "{stderr}"
    );
    // `artifact-repositories` (the default name), none stored: the configured repository,
    // standing in for the ConfigMap of an Argo installation (Argo's example
    // artifact-repository-ref.yaml).
    let (out, wf) = run(&home, tmp.path(), "my-key", &[]);
    let (wf, run) = succeeded(&out, wf);
    assert_eq!(
        wf["status"]["artifactRepositoryRef"],
        serde_json::json!({"default": true})
    );
    assert!(home.join("artifacts").join(&run).exists());
}

#[test]
fn local_directories_outside_the_root_are_refused_at_submission() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let root = home.join("artifacts");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    let entries = [
        (
            "root",
            "/".to_string(),
            "resolves to /, outside the local repository root",
        ),
        (
            "etc",
            "/etc".to_string(),
            "outside the local repository root",
        ),
        (
            "dotdot",
            format!("{}/../../outside", root.display()),
            "must not contain `.` or `..`",
        ),
        (
            "link",
            format!("{}/link/deeper", root.display()),
            "outside the local repository root",
        ),
    ];
    let data: String = entries
        .iter()
        .map(|(key, path, _)| format!("  {key}: |\n    local:\n      path: {path}\n"))
        .collect();
    apply_config_map(&home, tmp.path(), &data);
    for (key, _, why) in entries {
        let (out, _) = run(&home, tmp.path(), key, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}: ran");
        assert!(
            stderr.contains(&format!(
                "spec.artifactRepositoryRef: ConfigMap 'artifact-repositories' key '{key}': local.path: "
            )) && stderr.contains(why),
            "{key}: {stderr}"
        );
    }
    // Nothing ran, nothing was created through the link.
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    assert!(
        !home.join("runs").exists() || std::fs::read_dir(home.join("runs")).unwrap().count() == 0
    );

    // The configuration's localRepositoryRoot moves the root.
    let shared = tmp.path().join("shared");
    std::fs::write(
        tmp.path().join("cox.yaml"),
        format!("localRepositoryRoot: {}\n", shared.display()),
    )
    .unwrap();
    apply_config_map(
        &home,
        tmp.path(),
        &format!(
            "  mine: |\n    local:\n      path: {}/team\n",
            shared.display()
        ),
    );
    let config = tmp.path().join("cox.yaml").display().to_string();
    let (out, wf) = run(&home, tmp.path(), "mine", &[("COX_CONFIG", &config)]);
    let (_, run) = succeeded(&out, wf);
    assert!(shared.join("team").join(&run).exists());
}

/// The S3 test server's settings, or `None` (the test is skipped) without one.
struct S3Server {
    endpoint: String,
    bucket: String,
    region: String,
    access: String,
    secret: String,
    insecure: bool,
}

fn s3_server() -> Option<S3Server> {
    let Ok(endpoint) = std::env::var("COX_TEST_S3_ENDPOINT") else {
        eprintln!(
            "skipping: COX_TEST_S3_ENDPOINT is not set (scripts/test starts moto and sets it)"
        );
        return None;
    };
    let get = |n: &str, d: &str| std::env::var(n).unwrap_or_else(|_| d.to_string());
    Some(S3Server {
        insecure: endpoint.starts_with("http://") || !endpoint.contains("://"),
        endpoint,
        bucket: get("COX_TEST_S3_BUCKET", "cox-test"),
        region: get("COX_TEST_S3_REGION", "us-east-1"),
        access: get("COX_TEST_S3_ACCESS_KEY", "test"),
        secret: get("COX_TEST_S3_SECRET_KEY", "test"),
    })
}

impl S3Server {
    fn repository(&self, prefix: &str) -> ArtifactRepository {
        let mut cfg = S3Config::new(self.bucket.clone(), self.region.clone());
        cfg.endpoint = Some(self.endpoint.clone());
        cfg.insecure = self.insecure;
        cfg.access_key_id = Some(self.access.clone());
        cfg.secret_access_key = Some(self.secret.clone());
        cfg.prefix = prefix.to_string();
        ArtifactRepository::s3(cfg).unwrap()
    }

    /// The Secret `my-s3` holding the keys (`stringData`).
    fn secret_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: my-s3\nstringData:\n  accessKey: {}\n  secretKey: {}\n",
            self.access, self.secret
        )
    }

    /// The same endpoint, written with another host name for the same server.
    fn other_endpoint(&self) -> String {
        self.endpoint.replace("127.0.0.1", "localhost")
    }
}

fn list(repo: &ArtifactRepository, prefix: &str) -> Vec<cox_artifacts::ListedObject> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(repo.list_prefix(prefix))
        .expect("list the bucket")
}

/// No file under `home` but the store holds `text`.
fn assert_nowhere(home: &Path, text: &str) {
    for file in files(home) {
        if file.components().any(|c| c.as_os_str() == "store") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(text),
            "a key in {}",
            file.display()
        );
    }
}

#[test]
fn s3_bucket_from_a_config_map() {
    let Some(s3) = s3_server() else { return };
    let prefix = format!("cox-repo-ref-{}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let bucket_yaml = |endpoint: &str, secrets: &str| {
        format!(
            "    s3:\n      endpoint: {endpoint}\n      bucket: {}\n      region: {}\n      insecure: {}\n      keyPrefix: {prefix}\n{secrets}",
            s3.bucket, s3.region, s3.insecure
        )
    };
    let named = "      accessKeySecret: {name: my-s3, key: accessKey}\n      secretKeySecret: {name: my-s3, key: secretKey}\n";
    apply_config_map(
        &home,
        tmp.path(),
        &format!(
            "  bucket: |\n{}  nokeys: |\n{}",
            bucket_yaml(&s3.endpoint, named),
            bucket_yaml(&s3.endpoint, "")
        ),
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", s3.access.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
    ];
    // A bucket naming no Secrets does not get the host's (environment's) keys.
    let (out, _) = run(&home, tmp.path(), "nokeys", &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ConfigMap 'artifact-repositories' key 'nokeys': bucket")
            && stderr.contains("give accessKeySecret and secretKeySecret"),
        "{stderr}"
    );
    // Secrets named but not stored: the step fails, saying which.
    let (out, wf) = run(&home, tmp.path(), "bucket", &[]);
    let wf = wf.expect("a workflow");
    assert_eq!(wf["status"]["phase"], "Failed", "{wf:#}");
    assert!(
        wf.to_string()
            .contains("secret 'my-s3' not found in namespace 'default'"),
        "{wf:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Stored: the keys come from the Secret (none in the environment).
    apply(&home, tmp.path(), &s3.secret_yaml());
    let (out, wf) = run(&home, tmp.path(), "bucket", &[]);
    let (wf, run) = succeeded(&out, wf);
    let text = format!("{wf} {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !text.contains(&s3.secret) && !text.contains(&s3.access),
        "keys in the status"
    );
    assert_nowhere(&home, &s3.secret);
    assert_eq!(
        wf["status"]["artifactRepositoryRef"]["artifactRepository"]["s3"]["bucket"],
        s3.bucket.as_str()
    );
    assert!(!home.join("artifacts").join(&run).exists());
    assert!(
        !list(&s3.repository(&prefix), &run).is_empty(),
        "no objects under {run} in the ConfigMap's bucket"
    );

    let dest = tmp.path().join("copied");
    let out = cox(
        &home,
        tmp.path(),
        &["cp", &run, dest.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn configured_bucket_from_a_config_map_gets_the_host_keys() {
    let Some(s3) = s3_server() else { return };
    let prefix = format!("cox-repo-ref-host-{}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::write(
        tmp.path().join("cox.yaml"),
        format!(
            "artifactRepository:\n  s3:\n    endpoint: {}\n    bucket: {}\n    insecure: {}\n",
            s3.endpoint, s3.bucket, s3.insecure
        ),
    )
    .unwrap();
    // The configured bucket with another prefix: the host's keys. The same server under
    // another name: not the configured endpoint, refused.
    apply_config_map(
        &home,
        tmp.path(),
        &format!(
            "  same: |\n    s3: {{endpoint: '{}', bucket: {}, insecure: {}, keyPrefix: {prefix}}}\n  renamed: |\n    s3: {{endpoint: '{}', bucket: {}, insecure: {}}}\n",
            s3.endpoint,
            s3.bucket,
            s3.insecure,
            s3.other_endpoint(),
            s3.bucket,
            s3.insecure
        ),
    );
    let config = tmp.path().join("cox.yaml").display().to_string();
    let env = [
        ("COX_CONFIG", config.as_str()),
        ("AWS_ACCESS_KEY_ID", s3.access.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
    ];
    let (out, wf) = run(&home, tmp.path(), "same", &env);
    let (_, name) = succeeded(&out, wf);
    assert!(!list(&s3.repository(&prefix), &name).is_empty());
    let (out, _) = run(&home, tmp.path(), "renamed", &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is not the configured repository"),
        "{stderr}"
    );
}

const OWN_BUCKET_WORKFLOW: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: own-bucket-
spec:
  entrypoint: main
  artifactGC: {strategy: OnWorkflowCompletion}
  templates:
  - name: main
    steps:
    - - name: produce
        template: produce
    - - name: consume
        template: consume
  - name: produce
    container:
      image: alpine:3.7
      command: [sh, -c]
      args: ["mkdir -p OUT && echo hello-own > OUT/file.txt"]
    outputs:
      artifacts:
      - name: file
        path: OUT/file.txt
        s3: {LOCATION}
  - name: consume
    inputs:
      artifacts:
      - name: file
        path: IN/file.txt
        s3: {LOCATION}
    container:
      image: alpine:3.7
      command: [sh, -c]
      args: ['test "$(cat IN/file.txt)" = hello-own']
"#;

#[test]
fn artifacts_with_their_own_bucket() {
    let Some(s3) = s3_server() else { return };
    let dir = format!("cox-own-{}", std::process::id());
    let key = format!("{dir}/file.tgz");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let location = |endpoint: &str, secrets: &str| {
        format!(
            "{{endpoint: '{endpoint}', bucket: {}, region: {}, insecure: {}, key: {key}{secrets}}}",
            s3.bucket, s3.region, s3.insecure
        )
    };
    let named = ", accessKeySecret: {name: my-s3, key: accessKey}, secretKeySecret: {name: my-s3, key: secretKey}";
    apply(&home, tmp.path(), &s3.secret_yaml());
    // An object of the same key in the run's (local) repository, which artifactGC must
    // leave alone: the artifact is in its own bucket, and is deleted there.
    let decoy = home.join("artifacts").join(&key);
    std::fs::create_dir_all(decoy.parent().unwrap()).unwrap();
    std::fs::write(&decoy, "not the artifact").unwrap();
    let workflow = OWN_BUCKET_WORKFLOW.replace("{LOCATION}", &location(&s3.endpoint, named));
    let (out, wf) = run_workflow(&home, tmp.path(), &workflow, &[]);
    let (wf, _) = succeeded(&out, wf);
    assert!(!wf.to_string().contains(&s3.secret));
    assert_nowhere(&home, &s3.secret);
    // artifactGC (OnWorkflowCompletion) deleted it from its own bucket, where the run
    // recorded it, and left the run repository's object of the same key alone.
    let stored = list(&s3.repository(""), &dir);
    assert!(stored.is_empty(), "left in its bucket: {stored:?}");
    let produced = wf["status"]["nodes"]
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["templateName"] == "produce")
        .unwrap();
    assert_eq!(
        produced["outputs"]["artifacts"][0]["s3"]["bucket"],
        s3.bucket.as_str()
    );
    assert!(
        decoy.exists(),
        "artifactGC deleted the run repository's object"
    );

    // No Secrets, a bucket that is not the configured repository: the step errs, naming
    // the artifact, and the environment's keys go nowhere.
    let workflow = OWN_BUCKET_WORKFLOW.replace("{LOCATION}", &location(&s3.endpoint, ""));
    let env = [
        ("AWS_ACCESS_KEY_ID", s3.access.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
    ];
    let (_, wf) = run_workflow(&home, tmp.path(), &workflow, &env);
    let wf = wf.expect("a workflow");
    assert_eq!(wf["status"]["phase"], "Failed", "{wf:#}");
    let text = wf.to_string();
    assert!(
        text.contains("artifact \\\"file\\\": bucket") && text.contains("give accessKeySecret"),
        "{wf:#}"
    );
}
