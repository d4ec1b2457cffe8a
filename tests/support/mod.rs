//! What the end-to-end tests against a real `cox server` share: running `cox` with a home
//! and a server, and a server process on a free loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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
    /// Every line the server has written to stderr so far.
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
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
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&lines);
        // Reads the server's messages to the end, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("cox server: listening on ") {
                    let url = rest.split(',').next().unwrap_or_default().to_string();
                    let _ = tx.send(url);
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line);
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("cox server did not say where it listens");
        Server {
            child,
            url,
            stderr: lines,
        }
    }

    /// The first line of the server's stderr containing every one of `words`, waiting for it
    /// up to 30 s; `None` if none came.
    pub fn logged(&self, words: &[&str]) -> Option<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(lines) = self.stderr.lock()
                && let Some(line) = lines.iter().find(|l| words.iter().all(|w| l.contains(w)))
            {
                return Some(line.clone());
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 answer: status, headers (names lowercase), the body as received; status 0
/// when the connection was closed before a whole head came.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the transfer failed: cut before the head, or before the announced length.
    pub fn failed(&self) -> bool {
        let announced = self
            .header("content-length")
            .and_then(|l| l.parse::<usize>().ok());
        self.status == 0 || announced.is_some_and(|length| self.body.len() < length)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` on a connection of its own, read until the server closes it (or cuts it: what
/// came before is kept, so a transfer cut short shows as a short body).
pub fn http_get(server: &str, path: &str, token: Option<&str>) -> Answer {
    http_request(server, "GET", path, token)
}

/// `METHOD path` (no body), read as [`http_get`] reads.
pub fn http_request(server: &str, method: &str, path: &str, token: Option<&str>) -> Answer {
    let authorization = token.map(|t| format!("Authorization: Bearer {t}"));
    let headers: Vec<&str> = authorization.as_deref().into_iter().collect();
    http_request_with(server, method, path, &headers)
}

/// `METHOD path` (no body) with these header lines, read as [`http_get`] reads.
pub fn http_request_with(server: &str, method: &str, path: &str, headers: &[&str]) -> Answer {
    let address = server.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    let authorization: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{authorization}\r\n"
    )
    .expect("send");
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        };
    };
    let head = String::from_utf8_lossy(&received[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: received[end + 4..].to_vec(),
    }
}
