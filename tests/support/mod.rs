//! What the end-to-end tests against a real `cox server` share: running `cox` with a home
//! and a server, and a server process on a free loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// `cox ARGS` on `home`, talking to `server` when given.
pub fn cox_at(home: &Path, server: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cox"));
    command.env("COX_HOME", home).args(args);
    match server {
        Some(server) => command.env("COX_SERVER", server),
        None => command.env_remove("COX_SERVER"),
    };
    command.output().expect("run cox")
}

/// A `cox server` on a free loopback port over `home`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Server {
    /// Start it on a port of its own choosing and wait until it accepts connections. The
    /// port comes from the server's own "listening on" line: a port probed here and handed
    /// over could be taken by another test's server in between, and this test would then
    /// talk to that one.
    pub fn start(home: &Path) -> Server {
        Server::start_with(home, &[])
    }

    /// [`Server::start`], with more `cox server` arguments (`--auth-mode token`, say).
    pub fn start_with(home: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cox"))
            .env("COX_HOME", home)
            .env_remove("COX_SERVER")
            .args(["server", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cox server");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        // Reads the server's messages to the end, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("cox server: listening on ") {
                    let url = rest.split(',').next().unwrap_or_default().to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("cox server did not say where it listens");
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
