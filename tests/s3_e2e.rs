//! `cox run` with artifacts in a real S3-compatible bucket (moto, MinIO): a workflow passes a
//! file (tar.gz) and a directory (archive none) between steps through the bucket configured
//! with `--config`. Runs only when `COX_TEST_S3_ENDPOINT` is set (scripts/test starts moto and
//! sets it); also reads `COX_TEST_S3_BUCKET` (default `cox-test`, must exist),
//! `COX_TEST_S3_REGION` (default `us-east-1`), `COX_TEST_S3_ACCESS_KEY` and
//! `COX_TEST_S3_SECRET_KEY` (default `test`).

mod support;

use std::path::Path;
use std::process::Command;

use cox_artifacts::{Archive, ArtifactRepository, S3Config};
use serde_json::Value;

const WORKFLOW: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: s3-passing-
spec:
  entrypoint: main
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
          - name: dir
            from: "{{steps.produce.outputs.artifacts.dir}}"
          - name: plain
            from: "{{steps.produce.outputs.artifacts.plain}}"
  - name: produce
    container:
      image: alpine:3.7
      command: [sh, -c]
      args:
      - |
        set -e
        test ! -e /.cox/step/repository.json || { echo "keys visible to the step"; exit 3; }
        test ! -e ../repository.json || { echo "keys visible to the step"; exit 3; }
        pwd
        mkdir -p /tmp/out/dir/nested
        echo "hello s3" > /tmp/out/file.txt
        echo one > /tmp/out/dir/one.txt
        echo two > /tmp/out/dir/nested/two.txt
        head -c 300000 /dev/urandom > /tmp/out/dir/nested/blob.bin
        cp /tmp/out/dir/nested/blob.bin /tmp/out/blob.bin
        echo plain > /tmp/out/plain.txt
    outputs:
      artifacts:
      - name: file
        path: /tmp/out/file.txt
      - name: dir
        path: /tmp/out/dir
        archive:
          none: {}
      - name: plain
        path: /tmp/out/plain.txt
        archive:
          none: {}
  - name: consume
    inputs:
      artifacts:
      - name: file
        path: /tmp/in/file.txt
      - name: dir
        path: /tmp/in/dir
      - name: plain
        path: /tmp/in/plain.txt
    container:
      image: alpine:3.7
      command: [sh, -c]
      args:
      - |
        set -e
        test "$(cat /tmp/in/file.txt)" = "hello s3"
        test "$(cat /tmp/in/dir/one.txt)" = one
        test "$(cat /tmp/in/dir/nested/two.txt)" = two
        test "$(wc -c < /tmp/in/dir/nested/blob.bin)" -eq 300000
        test "$(cat /tmp/in/plain.txt)" = plain
        echo consumed
"#;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Target {
    endpoint: String,
    bucket: String,
    region: String,
    access_key: String,
    secret_key: String,
}

fn target() -> Option<Target> {
    let Ok(endpoint) = std::env::var("COX_TEST_S3_ENDPOINT") else {
        eprintln!(
            "skipping: COX_TEST_S3_ENDPOINT is not set (scripts/test starts moto and sets it)"
        );
        return None;
    };
    Some(Target {
        endpoint,
        bucket: env_or("COX_TEST_S3_BUCKET", "cox-test"),
        region: env_or("COX_TEST_S3_REGION", "us-east-1"),
        access_key: env_or("COX_TEST_S3_ACCESS_KEY", "test"),
        secret_key: env_or("COX_TEST_S3_SECRET_KEY", "test"),
    })
}

impl Target {
    fn insecure(&self) -> bool {
        self.endpoint.starts_with("http://") || !self.endpoint.contains("://")
    }

    fn repo(&self, prefix: &str) -> ArtifactRepository {
        let mut cfg = S3Config::new(self.bucket.clone(), self.region.clone());
        cfg.endpoint = Some(self.endpoint.clone());
        cfg.insecure = self.insecure();
        cfg.access_key_id = Some(self.access_key.clone());
        cfg.secret_access_key = Some(self.secret_key.clone());
        cfg.prefix = prefix.to_owned();
        ArtifactRepository::s3(cfg).expect("s3 repository")
    }

    /// A config file in `dir`; keys as files when `key_files`, else from the environment.
    fn config(&self, dir: &Path, prefix: &str, key_files: bool) -> std::path::PathBuf {
        let mut text = format!(
            "artifactRepository:\n  s3:\n    endpoint: {}\n    bucket: {}\n    region: {}\n    insecure: {}\n    keyPrefix: {prefix}\n    accessKeySecret: {{name: my-s3, key: accessKey}}\n    secretKeySecret: {{name: my-s3, key: secretKey}}\n",
            self.endpoint,
            self.bucket,
            self.region,
            self.insecure()
        );
        if key_files {
            std::fs::write(dir.join("access-key"), format!("{}\n", self.access_key)).unwrap();
            std::fs::write(dir.join("secret-key"), format!("{}\n", self.secret_key)).unwrap();
            text.push_str("    accessKey: access-key\n    secretKey: secret-key\n");
        }
        let path = dir.join("cox.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            out.extend(files_containing(&p, needle));
        } else if ft.is_file()
            && let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            out.push(p.display().to_string());
        }
    }
    out
}

fn sandbox_available() -> bool {
    Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_passing(sandbox: bool, key_files: bool) {
    let Some(t) = target() else { return };
    if sandbox && !sandbox_available() {
        eprintln!("skipping the sandboxed run: bubblewrap does not work here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!(
        "cox-e2e-{}-{}",
        std::process::id(),
        if sandbox { "sb" } else { "nosb" }
    );
    let config = t.config(tmp.path(), &prefix, key_files);
    // Without the sandbox /tmp is the host's: use paths of this test's own.
    let workflow = if sandbox {
        WORKFLOW.to_owned()
    } else {
        WORKFLOW.replace("/tmp/", &format!("{}/", tmp.path().join("paths").display()))
    };
    std::fs::write(tmp.path().join("wf.yaml"), workflow).unwrap();
    let home = tmp.path().join("home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cox"));
    cmd.env("COX_HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("COX_SERVER")
        .env_remove("COX_CONFIG")
        .args(["run", "wf.yaml", "-o", "json", "--config"])
        .arg(&config)
        .current_dir(tmp.path());
    if key_files {
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN");
    } else {
        cmd.env("AWS_ACCESS_KEY_ID", &t.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &t.secret_key);
    }
    if !sandbox {
        cmd.arg("--no-sandbox");
    }
    let out = cmd.output().expect("run cox");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wf: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not a Workflow ({e}):\n{stdout}\nstderr:\n{stderr}"));
    assert_eq!(
        wf["status"]["phase"], "Succeeded",
        "stderr:\n{stderr}\nworkflow:\n{wf:#}"
    );
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains(&t.secret_key) || t.secret_key.len() < 12);
    assert!(!stderr.contains(&t.secret_key) || t.secret_key.len() < 12);
    let run = wf["metadata"]["name"]
        .as_str()
        .expect("run name")
        .to_owned();

    // The keys never reach the home: no leftover repository.json, no log.
    assert!(
        walk_names(&home).iter().all(|n| n != "repository.json"),
        "a repository.json was left in {}",
        home.display()
    );
    if t.secret_key.len() >= 12 {
        let leaks = files_containing(&home, t.secret_key.as_bytes());
        assert!(leaks.is_empty(), "the secret key was written to {leaks:?}");
    }
    assert!(
        !home.join("artifacts").exists(),
        "the local repository was used"
    );

    // The objects are in the bucket, under the configured prefix and the run's name.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let repo = t.repo(&prefix);
    let objects = rt
        .block_on(repo.list_prefix(&run))
        .expect("list the bucket");
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let find = |suffix: &str| {
        keys.iter()
            .find(|k| k.ends_with(suffix))
            .unwrap_or_else(|| panic!("no object ending {suffix:?} in {keys:?}"))
            .to_string()
    };
    let file_key = find("/file.tgz");
    let plain_key = find("/plain");
    find("/dir/one.txt");
    find("/dir/nested/two.txt");
    let blob_key = find("/dir/nested/blob.bin");
    eprintln!("objects under {prefix}/{run}/: {keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with(&format!("{run}/"))),
        "{keys:?}"
    );

    // Downloaded content is right.
    let d = tmp.path().join("dl");
    rt.block_on(repo.load_path(&file_key, &d.join("file.txt"), Archive::default(), None))
        .expect("download file.tgz");
    assert_eq!(
        std::fs::read_to_string(d.join("file.txt")).unwrap(),
        "hello s3\n"
    );
    rt.block_on(repo.load_path(&plain_key, &d.join("plain.txt"), Archive::None, None))
        .expect("download plain");
    assert_eq!(
        std::fs::read_to_string(d.join("plain.txt")).unwrap(),
        "plain\n"
    );
    let dir_key = blob_key.trim_end_matches("/nested/blob.bin").to_owned();
    rt.block_on(repo.load_path(&dir_key, &d.join("dir"), Archive::None, None))
        .expect("download dir");
    assert_eq!(
        std::fs::read_to_string(d.join("dir/one.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::metadata(d.join("dir/nested/blob.bin"))
            .unwrap()
            .len(),
        300000
    );

    // Clean up this test's objects.
    let _ = rt.block_on(repo.delete_prefix(&run));
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk_names(&e.path()));
            }
        }
    }
    out
}

#[test]
fn s3_passing_sandboxed_keys_from_env() {
    run_passing(true, false);
}

#[test]
fn s3_passing_no_sandbox_keys_from_files() {
    run_passing(false, true);
}

#[test]
fn bad_config_is_refused_before_running() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("wf.yaml"), WORKFLOW).unwrap();
    std::fs::write(
        tmp.path().join("cox.yaml"),
        "artifactRepository:\n  s3:\n    bukket: x\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cox"))
        .env("COX_HOME", tmp.path().join("home"))
        .env("COX_CONFIG", tmp.path().join("cox.yaml"))
        .args(["run", "wf.yaml", "--no-sandbox"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cox.yaml") && stderr.contains("bukket"),
        "{stderr}"
    );
}

/// A producer saving its output to a bucket of its own (a second bucket, keys in a stored
/// Secret), memoized; a consumer taking it by `from:`; `artifactGC: OnWorkflowDeletion`.
const OWN_BUCKET_FROM: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: own-from-
spec:
  entrypoint: main
  artifactGC: {strategy: OnWorkflowDeletion}
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
    memoize:
      key: "own-bucket-TOKEN"
      cache: {configMap: {name: own-bucket}}
    container:
      image: alpine:3.7
      command: [sh, -c]
      args: ["mkdir -p PATHS/out && echo TOKEN > PATHS/out/file.txt"]
    outputs:
      artifacts:
      - name: file
        path: PATHS/out/file.txt
        s3:
          endpoint: ENDPOINT
          bucket: BUCKET
          insecure: INSECURE
          accessKeySecret: {name: own-keys, key: accessKey}
          secretKeySecret: {name: own-keys, key: secretKey}
  - name: consume
    inputs:
      artifacts:
      - name: file
        path: PATHS/in/file.txt
    container:
      image: alpine:3.7
      command: [sh, -c]
      args: ['test "$(cat PATHS/in/file.txt)" = TOKEN']
"#;

#[test]
fn an_artifact_in_its_own_bucket_is_read_there_by_consumers_cp_the_cache_and_gc() {
    let Some(t) = target() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let token = format!("own-{}", std::process::id());
    // The second bucket, made as a user would (moto takes any request signature).
    let own_bucket = format!("cox-own-{}", std::process::id());
    let made = Command::new("curl")
        .args(["-fsS", "-X", "PUT"])
        .arg(format!("{}/{own_bucket}", t.endpoint.trim_end_matches('/')))
        .output()
        .expect("curl");
    assert!(made.status.success(), "{made:?}");
    let own = Target {
        bucket: own_bucket.clone(),
        endpoint: t.endpoint.clone(),
        region: t.region.clone(),
        access_key: t.access_key.clone(),
        secret_key: t.secret_key.clone(),
    };
    // The run's repository is the configured bucket (host keys in files): the own bucket
    // is not in credentialsAllowedFor, so only its Secret opens it.
    let prefix = format!("cox-own-run-{}", std::process::id());
    let config = t.config(tmp.path(), &prefix, true);
    let cox = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cox"))
            .env("COX_HOME", &home)
            .env("COX_CONFIG", &config)
            .env_remove("XDG_DATA_HOME")
            .env_remove("COX_SERVER")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .args(args)
            .current_dir(tmp.path())
            .output()
            .expect("run cox")
    };
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    std::fs::write(
        tmp.path().join("secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: own-keys\nstringData:\n  accessKey: {}\n  secretKey: {}\n",
            t.access_key, t.secret_key
        ),
    )
    .unwrap();
    ok(&cox(&["apply", "-f", "secret.yaml"]));
    let workflow = OWN_BUCKET_FROM
        .replace("PATHS", &tmp.path().join("paths").display().to_string())
        .replace("TOKEN", &token)
        .replace("ENDPOINT", &t.endpoint)
        .replace("BUCKET", &own_bucket)
        .replace("INSECURE", &t.insecure().to_string());
    std::fs::write(tmp.path().join("wf.yaml"), workflow).unwrap();
    let run_once = || {
        let out = cox(&["run", "wf.yaml", "-o", "json", "--no-sandbox"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let wf: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not a Workflow ({e}); stderr:\n{stderr}"));
        assert_eq!(wf["status"]["phase"], "Succeeded", "{stderr}\n{wf:#}");
        assert!(
            !wf.to_string().contains(&t.secret_key),
            "keys in the status"
        );
        wf
    };
    let node_of = |wf: &Value, template: &str| -> Value {
        wf["status"]["nodes"]
            .as_object()
            .unwrap()
            .values()
            .find(|n| n["templateName"] == template)
            .cloned()
            .unwrap_or_else(|| panic!("no {template} node in {wf:#}"))
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // The consumer read it from its bucket; the status records where it is, as Argo does.
    let first = run_once();
    let run = first["metadata"]["name"].as_str().unwrap().to_owned();
    let artifact = &node_of(&first, "produce")["outputs"]["artifacts"][0];
    let key = artifact["s3"]["key"].as_str().expect("key").to_owned();
    assert_eq!(
        artifact["s3"]["bucket"],
        own_bucket.as_str(),
        "{artifact:#}"
    );
    assert_eq!(artifact["s3"]["endpoint"], t.endpoint.as_str());
    assert_eq!(
        artifact["s3"]["accessKeySecret"],
        serde_json::json!({"name": "own-keys", "key": "accessKey"})
    );
    let listed = rt.block_on(own.repo("").list_prefix(&run)).unwrap();
    assert_eq!(
        listed.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        [key.as_str()]
    );
    let in_run_repo = rt.block_on(t.repo(&prefix).list_prefix(&run)).unwrap();
    assert!(in_run_repo.is_empty(), "saved to the run's repository too");

    // `cox cp` finds it in its bucket.
    let dest = tmp.path().join("copied");
    ok(&cox(&[
        "cp",
        &run,
        dest.to_str().unwrap(),
        "--path",
        "{artifactName}",
    ]));
    assert_eq!(
        std::fs::read_to_string(dest.join("file")).unwrap(),
        format!("{token}\n")
    );

    // `cox server` serves it from its bucket, as stored (the .tgz), opened with its Secret;
    // stopped before the next run, which needs the home.
    {
        let server = support::Server::start_with(
            &home,
            &["--no-sandbox", "--config", config.to_str().unwrap()],
        );
        let id = node_of(&first, "produce")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let answer = support::http_get(
            &server.url,
            &format!("/artifacts/default/{run}/{id}/file"),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let stored = tmp.path().join("stored-object");
        rt.block_on(own.repo("").load_file(&key, &stored, None))
            .unwrap();
        assert_eq!(answer.body, std::fs::read(&stored).unwrap());
        assert!(
            answer
                .header("content-disposition")
                .is_some_and(|d| d.starts_with("attachment; filename=")),
            "{:?}",
            answer.headers
        );
        // Its Secret gone, its bucket cannot be opened: 502 naming the Secret, no key.
        let deleted = support::http_request(
            &server.url,
            "DELETE",
            "/api/v1/namespaces/default/secrets/own-keys",
            None,
        );
        assert_eq!(deleted.status, 200, "{}", deleted.text());
        let answer = support::http_get(
            &server.url,
            &format!("/artifacts/default/{run}/{id}/file"),
            None,
        );
        assert_eq!(answer.status, 502, "{}", answer.text());
        assert!(answer.text().contains("own-keys"), "{}", answer.text());
        assert!(!answer.text().contains(&t.secret_key), "{}", answer.text());
        assert!(!answer.text().contains(&t.access_key), "{}", answer.text());
    }
    ok(&cox(&["apply", "-f", "secret.yaml"]));

    // A memoized hit gives the same artifact, in its bucket, and its consumer reads it.
    let second = run_once();
    let produce = node_of(&second, "produce");
    assert_eq!(produce["memoizationStatus"]["hit"], true, "{produce:#}");
    assert_eq!(
        produce["outputs"]["artifacts"][0]["s3"]["key"],
        key.as_str()
    );
    assert_eq!(
        produce["outputs"]["artifacts"][0]["s3"]["bucket"],
        own_bucket.as_str()
    );
    let second_run = second["metadata"]["name"].as_str().unwrap().to_owned();

    // artifactGC OnWorkflowDeletion deletes it from its bucket.
    ok(&cox(&["delete", &run]));
    let listed = rt.block_on(own.repo("").list_prefix(&run)).unwrap();
    assert!(listed.is_empty(), "left in its bucket: {listed:?}");
    let gone = rt.block_on(own.repo("").load_path(
        &key,
        &tmp.path().join("after-gc"),
        Archive::default(),
        None,
    ));
    assert!(gone.is_err(), "the object is still readable");
    // The hit's run names the same object, already gone: deleting it is no error.
    ok(&cox(&["delete", &second_run]));
}
