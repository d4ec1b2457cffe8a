//! `cox server`'s access flags, through the real binary: without authentication it only
//! listens on loopback (the API itself, tokens included, is tested in
//! `scheduler/tests/server_streams.rs` and `tests/clients/test_clients.py`).

use std::process::Command;

/// Runs `cox server ARGS` with a fresh home; it must refuse to start. Its stderr.
fn refused(args: &[&str]) -> String {
    let home = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_cox"))
        .arg("server")
        .args(args)
        .env("COX_HOME", home.path())
        .output()
        .expect("run cox");
    assert!(!output.status.success(), "{args:?} started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_public_address_needs_tokens_or_insecure() {
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let stderr = refused(&["--addr", addr, "--no-sandbox"]);
        assert!(
            stderr.contains(&format!("--addr {addr}: not a loopback address"))
                && stderr.contains("--auth-mode token"),
            "{stderr}"
        );
    }
}

#[test]
fn token_mode_needs_a_file_with_tokens() {
    let stderr = refused(&["--auth-mode", "token", "--no-sandbox"]);
    assert!(stderr.contains("--token-file"), "{stderr}");
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("tokens");
    std::fs::write(&empty, "# nobody yet\n").expect("write");
    let path = empty.to_str().expect("utf-8 path");
    let stderr = refused(&["--auth-mode", "token", "--token-file", path, "--no-sandbox"]);
    assert!(
        stderr.contains(&format!("{path}: no token in the file")),
        "{stderr}"
    );
    let missing = dir.path().join("missing");
    let path = missing.to_str().expect("utf-8 path");
    let stderr = refused(&["--auth-mode", "token", "--token-file", path, "--no-sandbox"]);
    assert!(stderr.contains(&format!("{path}: cannot read")), "{stderr}");
}
