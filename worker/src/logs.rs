//! Step logs: capture, file format, reading and following.
//!
//! # Format
//!
//! A log file holds one JSON object per line (JSON Lines), in the order the
//! lines were read:
//!
//! ```text
//! {"time":"2025-01-02T03:04:05.123456789Z","stream":"stdout","line":"hello"}
//! {"time":"2025-01-02T03:04:05.200000000Z","stream":"stderr","line":"no newline at end","partial":true}
//! ```
//!
//! - `time`: RFC 3339, UTC, always 9 fractional digits; when the line was read.
//! - `stream`: `"stdout"` or `"stderr"`.
//! - `line`: the text without its `\n` (a `\r` is kept). Invalid UTF-8 is
//!   replaced with U+FFFD.
//! - `partial`: present and `true` when the record does not end a line: a
//!   line longer than [`MAX_LINE_BYTES`] is split into records of at most
//!   that many bytes (cut at a character boundary), all but the last marked
//!   partial; a last line with no final newline is kept and marked partial.
//!   Concatenating records up to and including one without `partial` gives
//!   back the original line.
//!
//! Within one stream records are in output order; between stdout and stderr
//! the order is the order the two pipes were read, so lines written close
//! together on different streams may appear swapped (as with any runtime
//! that reads two pipes).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, watch};

use crate::error::{Error, Result};

/// Longest record, in bytes of `line`; longer lines are split.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// How often a [`LogFollower`] at the end of the file looks for more.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// Which output stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One record of a log file (see the module doc for the format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the line was read.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub time: DateTime<Utc>,
    /// The stream it was read from.
    pub stream: Stream,
    /// The text, without the newline.
    pub line: String,
    /// The record does not end a line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

fn ser_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

fn de_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

/// Splits a byte stream into records: complete lines, and chunks of at most
/// `max` bytes of longer lines. Memory is bounded by `max` plus one read.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            max: max.max(4),
        }
    }

    /// Feeds bytes; calls `emit(bytes, partial)` for each finished record.
    pub(crate) fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i <= self.max => {
                    emit(&rest[..i], false);
                    start += i + 1;
                }
                _ if rest.len() > self.max => {
                    let cut = char_boundary(rest, self.max);
                    emit(&rest[..cut], true);
                    start += cut;
                }
                _ => break,
            }
        }
        self.buf.drain(..start);
    }

    /// The unterminated remainder, if any (a partial record).
    pub(crate) fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }
}

/// The largest cut `<= max` that does not split a UTF-8 sequence (or `max`
/// when the bytes are not UTF-8 there).
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    let mut cut = max;
    while cut > max.saturating_sub(3) && cut > 0 && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    if cut == 0 || (bytes[cut] & 0xC0) == 0x80 {
        max
    } else {
        cut
    }
}

/// Keeps the last `cap` bytes of stdout (plus one, for the trailing newline
/// that Argo trims).
#[derive(Debug)]
pub(crate) struct ResultCapture {
    buf: VecDeque<u8>,
    cap: usize,
    dropped: bool,
}

impl ResultCapture {
    pub(crate) fn new(cap: usize) -> Self {
        ResultCapture {
            buf: VecDeque::new(),
            cap,
            dropped: false,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let keep = self.cap + 1;
        if data.len() >= keep {
            self.dropped |= !self.buf.is_empty() || data.len() > keep;
            self.buf.clear();
            self.buf.extend(&data[data.len() - keep..]);
            return;
        }
        self.buf.extend(data);
        if self.buf.len() > keep {
            let excess = self.buf.len() - keep;
            self.buf.drain(..excess);
            self.dropped = true;
        }
    }

    /// The result text and whether output was dropped from its start.
    pub(crate) fn finish(&self) -> (String, bool) {
        let mut bytes: Vec<u8> = self.buf.iter().copied().collect();
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        let mut truncated = self.dropped;
        if bytes.len() > self.cap {
            bytes.drain(..bytes.len() - self.cap);
            truncated = true;
        }
        let mut start = 0;
        if truncated {
            // Do not begin with the tail of a cut character.
            while start < bytes.len().min(3) && (bytes[start] & 0xC0) == 0x80 {
                start += 1;
            }
        }
        (
            String::from_utf8_lossy(&bytes[start..]).into_owned(),
            truncated,
        )
    }
}

/// Reads one stream to its end, sending records to the log writer and
/// copying stdout into `capture`.
pub(crate) async fn pump(
    mut reader: impl AsyncRead + Unpin,
    stream: Stream,
    tx: mpsc::Sender<LogLine>,
    capture: Option<std::sync::Arc<std::sync::Mutex<ResultCapture>>>,
) {
    let mut splitter = LineSplitter::new(MAX_LINE_BYTES);
    let mut buf = vec![0u8; 8192];
    let mut records = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(stream = stream.as_str(), error = %e, "reading step output failed");
                break;
            }
        };
        if let Some(capture) = &capture
            && let Ok(mut c) = capture.lock()
        {
            c.push(&buf[..n]);
        }
        let now = Utc::now();
        splitter.push(&buf[..n], |bytes, partial| {
            records.push(record(now, stream, bytes, partial));
        });
        for r in records.drain(..) {
            if tx.send(r).await.is_err() {
                return;
            }
        }
    }
    if let Some(rest) = splitter.finish() {
        let _ = tx.send(record(Utc::now(), stream, &rest, true)).await;
    }
}

fn record(time: DateTime<Utc>, stream: Stream, bytes: &[u8], partial: bool) -> LogLine {
    LogLine {
        time,
        stream,
        line: String::from_utf8_lossy(bytes).into_owned(),
        partial,
    }
}

/// Writes records to `path` until every sender is gone, flushing whenever
/// it has caught up, so followers see lines promptly.
///
/// The writes are plain blocking ones: a file write that lands in the page cache costs
/// less than handing it to tokio's blocking pool (a thread started in a step's supervisor
/// for each step).
pub(crate) async fn write_log(
    file: std::fs::File,
    path: PathBuf,
    mut rx: mpsc::Receiver<LogLine>,
) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Log {
        path: path.clone(),
        source,
    };
    let mut out = std::io::BufWriter::new(file);
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        for rec in batch.drain(..) {
            serde_json::to_writer(&mut out, &rec).map_err(|e| io(std::io::Error::other(e)))?;
            out.write_all(b"\n").map_err(io)?;
        }
        if rx.is_empty() {
            out.flush().map_err(io)?;
        }
    }
    // Flushed to the OS, not synced to disk: what must survive a crash (the step's outcome)
    // is made durable by the store; an fsync per step would cost more than the step.
    out.flush().map_err(io)?;
    Ok(())
}

/// Appends `lines` to the log at `path` (created when missing) as records of `stream`,
/// timed now; nothing is done for no lines.
pub fn append_lines(path: &Path, stream: Stream, lines: &[String]) -> Result<()> {
    use std::io::Write;
    if lines.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut bytes = Vec::new();
    let mut splitter = LineSplitter::new(MAX_LINE_BYTES);
    for line in lines {
        splitter.push(format!("{line}\n").as_bytes(), |chunk, partial| {
            if let Ok(json) = serde_json::to_vec(&record(now, stream, chunk, partial)) {
                bytes.extend_from_slice(&json);
                bytes.push(b'\n');
            }
        });
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|source| Error::Log {
            path: path.to_path_buf(),
            source,
        })
}

fn parse(path: &Path, line_no: u64, bytes: &[u8]) -> Result<LogLine> {
    serde_json::from_slice(bytes).map_err(|source| Error::LogFormat {
        path: path.to_path_buf(),
        line: line_no,
        source,
    })
}

/// Writes a log file's text, one line per record (partial records joined to the next of
/// their stream), to `out`, streaming; returns the number of records. A line the other
/// stream interrupts is ended there, so a stdout line left without its newline is never
/// glued to the stderr line read after it.
pub fn write_text(path: &Path, out: &Path) -> Result<u64> {
    use std::io::{BufRead, Write};
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error::Log { path: p, source }
    };
    let reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io(path))?);
    let mut writer = std::io::BufWriter::new(std::fs::File::create(out).map_err(io(out))?);
    let mut count = 0u64;
    // The stream of a line written without its end yet.
    let mut open: Option<Stream> = None;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(io(path))?;
        if line.is_empty() {
            continue;
        }
        let record = parse(path, i as u64 + 1, &line)?;
        if open.is_some_and(|stream| stream != record.stream) {
            writer.write_all(b"\n").map_err(io(out))?;
        }
        writer.write_all(record.line.as_bytes()).map_err(io(out))?;
        if record.partial {
            open = Some(record.stream);
        } else {
            writer.write_all(b"\n").map_err(io(out))?;
            open = None;
        }
        count += 1;
    }
    writer.flush().map_err(io(out))?;
    Ok(count)
}

/// Reads a whole log file as it is now.
pub async fn read_log(path: impl AsRef<Path>) -> Result<Vec<LogLine>> {
    let path = path.as_ref();
    let bytes = tokio::fs::read(path).await.map_err(|source| Error::Log {
        path: path.to_path_buf(),
        source,
    })?;
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| parse(path, i as u64 + 1, l))
        .collect()
}

/// Follows a log file like `tail -f`, from its first record.
///
/// Without a done signal it follows until dropped. With one (see
/// [`LogFollower::until`], or [`Running::follow_logs`](crate::local::Running::follow_logs)),
/// [`next`](LogFollower::next) returns `None` once the writer has finished
/// and every record has been returned.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    reader: tokio::io::BufReader<tokio::fs::File>,
    pending: Vec<u8>,
    line_no: u64,
    done: Option<watch::Receiver<bool>>,
}

impl LogFollower {
    /// Opens `path` for following; it must exist.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|source| Error::Log {
                path: path.clone(),
                source,
            })?;
        Ok(LogFollower {
            path,
            reader: tokio::io::BufReader::new(file),
            pending: Vec::new(),
            line_no: 0,
            done: None,
        })
    }

    /// Ends the follow once `done` is `true` (or its sender is gone) and the
    /// file is read to its end.
    pub fn until(mut self, done: watch::Receiver<bool>) -> Self {
        self.done = Some(done);
        self
    }

    /// The next record; waits for one while the log is still being written.
    pub async fn next(&mut self) -> Option<Result<LogLine>> {
        loop {
            // Checked before reading: a writer that was done before this read
            // has flushed everything the read can see.
            let was_done = match &self.done {
                Some(done) => *done.borrow() || done.has_changed().is_err(),
                None => false,
            };
            match self.reader.read_until(b'\n', &mut self.pending).await {
                Err(source) => {
                    return Some(Err(Error::Log {
                        path: self.path.clone(),
                        source,
                    }));
                }
                Ok(_) if self.pending.last() == Some(&b'\n') => {
                    self.line_no += 1;
                    let bytes = std::mem::take(&mut self.pending);
                    return Some(parse(&self.path, self.line_no, &bytes[..bytes.len() - 1]));
                }
                Ok(_) if was_done => return None,
                Ok(_) => match &mut self.done {
                    Some(done) => {
                        let _ = tokio::time::timeout(FOLLOW_POLL, done.changed()).await;
                    }
                    None => tokio::time::sleep(FOLLOW_POLL).await,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |b, p| {
                out.push((String::from_utf8_lossy(b).into_owned(), p))
            });
        }
        if let Some(rest) = s.finish() {
            out.push((String::from_utf8_lossy(&rest).into_owned(), true));
        }
        out
    }

    #[test]
    fn splitter_lines_across_chunks() {
        let got = split_all(8, &[b"ab", b"c\nde\n\nf", b"g"]);
        let want = [("abc", false), ("de", false), ("", false), ("fg", true)];
        let want: Vec<_> = want.iter().map(|(s, p)| (s.to_string(), *p)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn splitter_splits_long_lines_at_char_boundaries() {
        let got = split_all(5, &["abcdéfghij\n".as_bytes()]);
        let want = [("abcd", true), ("éfgh", true), ("ij", false)];
        let want: Vec<_> = want.iter().map(|(s, p)| (s.to_string(), *p)).collect();
        assert_eq!(got, want);
        let got = split_all(4, &[b"abcd\n"]);
        assert_eq!(got, vec![("abcd".to_string(), false)]);
    }

    #[test]
    fn capture_keeps_tail_and_trims_one_newline() {
        let mut c = ResultCapture::new(4);
        c.push(b"ab");
        c.push(b"cd\n");
        assert_eq!(c.finish(), ("abcd".to_string(), false));
        c.push(b"ef\n");
        assert_eq!(c.finish(), ("d\nef".to_string(), true));
        let mut c = ResultCapture::new(4);
        c.push(b"0123456789");
        assert_eq!(c.finish(), ("6789".to_string(), true));
    }

    #[test]
    fn text_ends_a_line_the_other_stream_interrupts() {
        let dir = tempfile::tempdir().unwrap();
        let (log, text) = (dir.path().join("log.jsonl"), dir.path().join("main.log"));
        let now = Utc::now();
        let mut jsonl = Vec::new();
        for (stream, line, partial) in [
            (Stream::Stdout, "out", false),
            (Stream::Stdout, "half ", true),
            (Stream::Stdout, "whole", false),
            (Stream::Stdout, "no newline", true),
            (Stream::Stderr, "err", false),
            (Stream::Stderr, "last", true),
        ] {
            jsonl.extend(
                serde_json::to_vec(&record(now, stream, line.as_bytes(), partial)).unwrap(),
            );
            jsonl.push(b'\n');
        }
        std::fs::write(&log, jsonl).unwrap();
        assert_eq!(write_text(&log, &text).unwrap(), 6);
        assert_eq!(
            std::fs::read_to_string(&text).unwrap(),
            "out\nhalf whole\nno newline\nerr\nlast"
        );
    }

    #[test]
    fn record_json_shape() {
        let rec = LogLine {
            time: DateTime::parse_from_rfc3339("2025-01-02T03:04:05.5Z")
                .map(|t| t.with_timezone(&Utc))
                .expect("valid time"),
            stream: Stream::Stderr,
            line: "x".into(),
            partial: false,
        };
        let json = serde_json::to_string(&rec).expect("serializes");
        assert_eq!(
            json,
            r#"{"time":"2025-01-02T03:04:05.500000000Z","stream":"stderr","line":"x"}"#
        );
        assert_eq!(serde_json::from_str::<LogLine>(&json).expect("parses"), rec);
    }
}
