//! What the end-to-end tests against a real `cox server` share: running `cox` with a home
//! and a server, and a server process on a free loopback port.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    /// Start it and wait until it accepts connections.
    pub fn start(home: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_cox"))
            .env("COX_HOME", home)
            .env_remove("COX_SERVER")
            .args(["server", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start cox server");
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "cox server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
