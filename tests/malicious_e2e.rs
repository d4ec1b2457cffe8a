//! Hostile input archives through the engine: a step's input artifact is a crafted tar.gz in
//! the local repository (loaded by key, as Argo's key-only artifacts are). Each run must end
//! `Error` with a message naming the offending entry, the program must never run, and
//! nothing may be written outside the artifact's destination, in the sandbox and without it.
//! `artifacts/tests/malicious.rs` covers the unpacker itself in more cases.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tar::EntryType;

#[path = "../artifacts/tests/hostile/mod.rs"]
mod hostile;
use hostile::{Raw, file, link, special, write_tgz, zeros};

const WORKFLOW: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hostile-
spec:
  entrypoint: main
  arguments:
    parameters:
      - name: dest
  templates:
    - name: main
      inputs:
        parameters:
          - name: dest
            value: "{{workflow.parameters.dest}}"
        artifacts:
          - name: bundle
            path: "{{inputs.parameters.dest}}/bundle"
            s3:
              key: hostile/bundle.tgz
      container:
        image: busybox
        command: [sh, -c, "echo the program ran; touch {{inputs.parameters.dest}}/ran"]
"#;

/// Every path under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).expect("prefix").display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Runs the workflow with `entries` as the stored archive and checks the refusal.
fn assert_refused(entries: Vec<Raw>, entry: &str, sandbox: bool, limits: Option<&str>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let data = tmp.path().join("data");
    let dest = data.join("dest");
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::create_dir_all(home.join("artifacts/hostile")).expect("mkdir");
    write_tgz(&home.join("artifacts/hostile/bundle.tgz"), entries).expect("write archive");
    let wf = tmp.path().join("wf.yaml");
    std::fs::write(&wf, WORKFLOW).expect("write workflow");
    let dest_arg = format!("dest={}", dest.display());
    let mut args = vec![
        "run".to_string(),
        wf.display().to_string(),
        "-o".into(),
        "json".into(),
        "-p".into(),
        dest_arg,
    ];
    if !sandbox {
        args.push("--no-sandbox".into());
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cox"));
    cmd.env("COX_HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("COX_UNPACK_LIMITS")
        .args(&args);
    if let Some(l) = limits {
        cmd.env("COX_UNPACK_LIMITS", l);
    }
    let out = cmd.output().expect("run cox");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wf: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not a Workflow ({e}): {stdout}\n{stderr}"));
    let status = &wf["status"];
    let context = format!("{entry:?} (sandbox {sandbox}): {status}\n{stderr}");
    assert_eq!(status["phase"], "Error", "{context}");
    let message = status["nodes"]
        .as_object()
        .and_then(|n| n.values().next())
        .and_then(|n| n["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("input artifact \"bundle\""), "{context}");
    assert!(message.contains(entry), "{message} does not name {entry:?}");
    // The program never ran; nothing was written under the data directory (the archive
    // tries to reach it from the destination) nor left at the destination.
    assert!(!stderr.contains("the program ran"), "{context}");
    assert_eq!(tree(&data), ["dest"], "{context}");
    for escaped in ["/tmp/cox-hostile-abs.txt", "/tmp/cox-hostile-sym.txt"] {
        assert!(!Path::new(escaped).exists(), "{escaped} was written");
    }
}

fn both(entries: impl Fn() -> Vec<Raw>, entry: &str, limits: Option<&str>) {
    for sandbox in [true, false] {
        assert_refused(entries(), entry, sandbox, limits);
    }
}

#[test]
fn traversal_is_refused() {
    both(
        || {
            vec![
                file("bundle/ok.txt", b"x"),
                file("bundle/../../escaped.txt", b"pwned"),
            ]
        },
        "bundle/../../escaped.txt",
        None,
    );
}

#[test]
fn absolute_paths_are_refused() {
    both(
        || {
            vec![
                file("bundle/ok.txt", b"x"),
                file("/tmp/cox-hostile-abs.txt", b"pwned"),
            ]
        },
        "/tmp/cox-hostile-abs.txt",
        None,
    );
}

#[test]
fn symlink_escapes_are_refused() {
    both(
        || {
            vec![
                file("bundle/ok.txt", b"x"),
                link("bundle/out", EntryType::Symlink, "/tmp"),
                file("bundle/out/cox-hostile-sym.txt", b"pwned"),
            ]
        },
        "bundle/out",
        None,
    );
    both(
        || vec![link("bundle/up", EntryType::Symlink, "../../..")],
        "bundle/up",
        None,
    );
}

#[test]
fn hardlink_escapes_are_refused() {
    both(
        || {
            vec![
                file("bundle/ok.txt", b"x"),
                link("bundle/passwd", EntryType::Link, "/etc/passwd"),
            ]
        },
        "bundle/passwd",
        None,
    );
}

#[test]
fn device_files_are_refused() {
    for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
        both(
            || vec![file("bundle/ok.txt", b"x"), special("bundle/node", kind)],
            "bundle/node",
            None,
        );
    }
}

#[test]
fn gzip_bombs_and_entry_floods_are_refused() {
    // 200 MB of zeros, about 200 KB stored, against a 10 MB per-entry limit.
    both(
        || {
            vec![
                file("bundle/ok.txt", b"x"),
                zeros("bundle/bomb.bin", 200 << 20),
            ]
        },
        "bundle/bomb.bin",
        Some("1000,10485760,20971520"),
    );
    both(
        || {
            (0..3000)
                .map(|i| file(&format!("bundle/f{i}"), b""))
                .collect()
        },
        "bundle/f500",
        Some("500,10485760,20971520"),
    );
}

#[test]
fn invalid_limits_are_an_error_naming_the_variable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wf = tmp.path().join("wf.yaml");
    std::fs::write(&wf, WORKFLOW).expect("write workflow");
    let out = Command::new(env!("CARGO_BIN_EXE_cox"))
        .env("COX_HOME", tmp.path().join("home"))
        .env("COX_UNPACK_LIMITS", "lots")
        .args([
            "run",
            &wf.display().to_string(),
            "-o",
            "json",
            "-p",
            "dest=/tmp/x",
        ])
        .output()
        .expect("run cox");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("COX_UNPACK_LIMITS"), "{stdout}");
    assert!(stdout.contains("\"Error\""), "{stdout}");
}
