//! A minimal HTTP/1.1 server on loopback for tests (GET and HEAD, one request per
//! connection), shared by `artifacts/tests` and the top-level end-to-end tests.

use std::io::{BufRead, BufReader, Write};

/// Serves `body(target)` (the request target, query included) with 200, or 404 when it
/// gives `None`; returns the base URL. Runs until the test process ends.
pub fn serve(body: impl Fn(&str) -> Option<Vec<u8>> + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut parts = request.split_whitespace();
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let mut out = &stream;
            let _ = match body(target) {
                Some(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    out.write_all(head.as_bytes()).and_then(|()| {
                        if method == "HEAD" {
                            Ok(())
                        } else {
                            out.write_all(&body)
                        }
                    })
                }
                None => out.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    base
}
