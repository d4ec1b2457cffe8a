//! `artifactRepositoryRef`: a ConfigMap stored with `cox apply` names the repository of a
//! run's steps; `cox run` resolves it at submission, writes Argo's
//! `status.artifactRepositoryRef`, and the artifacts land there (a local directory always; a
//! real S3-compatible bucket when `COX_TEST_S3_ENDPOINT` is set, see tests/s3_e2e.rs). A
//! reference to a missing key is refused before anything runs.

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
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: artifact-repositories\n  annotations:\n    workflows.argoproj.io/default-artifact-repository: other\ndata:\n{data}"
    );
    std::fs::write(dir.join("cm.yaml"), text).unwrap();
    let out = cox(home, dir, &["apply", "-f", "cm.yaml"], &[]);
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
    let (home, repo) = (tmp.path().join("home"), tmp.path().join("repo"));
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
    let (home, repo) = (tmp.path().join("home"), tmp.path().join("repo"));
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
fn missing_config_map_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (out, _) = run(&home, tmp.path(), "mine", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ConfigMap 'artifact-repositories' not found in namespace 'default'"),
        "{stderr}"
    );
}

#[test]
fn s3_bucket_from_a_config_map() {
    let Ok(endpoint) = std::env::var("COX_TEST_S3_ENDPOINT") else {
        eprintln!(
            "skipping: COX_TEST_S3_ENDPOINT is not set (scripts/test starts moto and sets it)"
        );
        return;
    };
    let get = |n: &str, d: &str| std::env::var(n).unwrap_or_else(|_| d.to_string());
    let (bucket, region) = (
        get("COX_TEST_S3_BUCKET", "cox-test"),
        get("COX_TEST_S3_REGION", "us-east-1"),
    );
    let (access, secret) = (
        get("COX_TEST_S3_ACCESS_KEY", "test"),
        get("COX_TEST_S3_SECRET_KEY", "test"),
    );
    let insecure = endpoint.starts_with("http://") || !endpoint.contains("://");
    let prefix = format!("cox-repo-ref-{}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    apply_config_map(
        &home,
        tmp.path(),
        &format!(
            "  bucket: |\n    s3:\n      endpoint: {endpoint}\n      bucket: {bucket}\n      region: {region}\n      insecure: {insecure}\n      keyPrefix: {prefix}\n      accessKeySecret: {{name: my-s3, key: accessKey}}\n      secretKeySecret: {{name: my-s3, key: secretKey}}\n"
        ),
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", access.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let (out, wf) = run(&home, tmp.path(), "bucket", &env);
    let (wf, run) = succeeded(&out, wf);
    let text = wf.to_string();
    assert!(
        !text.contains(&secret) && !text.contains(&access),
        "keys in the status"
    );
    assert_eq!(
        wf["status"]["artifactRepositoryRef"]["artifactRepository"]["s3"]["bucket"],
        bucket.as_str()
    );
    assert!(!home.join("artifacts").join(&run).exists());

    let mut cfg = S3Config::new(bucket, region);
    cfg.endpoint = Some(endpoint);
    cfg.insecure = insecure;
    cfg.access_key_id = Some(access.clone());
    cfg.secret_access_key = Some(secret.clone());
    cfg.prefix = prefix;
    let repo = ArtifactRepository::s3(cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let objects = rt
        .block_on(repo.list_prefix(&run))
        .expect("list the bucket");
    assert!(
        !objects.is_empty(),
        "no objects under {run} in the ConfigMap's bucket"
    );

    let dest = tmp.path().join("copied");
    let out = cox(
        &home,
        tmp.path(),
        &["cp", &run, dest.to_str().unwrap()],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
