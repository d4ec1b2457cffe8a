//! `cox argosay`: a builtin stand-in for the `argoproj/argosay:v2` test image, which many of
//! Argo's examples and end-to-end workflows use. Behaviour by first argument:
//!
//! - none, or `echo` alone: prints `hello argo`;
//! - `echo MSG`: prints MSG; `echo MSG FILE`: creates FILE's directory, writes MSG and a
//!   newline into FILE, prints nothing;
//! - `cat FILE`: prints FILE; `assert_contains FILE STR`: fails unless FILE contains STR;
//! - `exit [N]`: exits with N (default 0); `sleep D`: sleeps D, a Go duration (`1s`,
//!   `500ms`, `1m30s`) or a number of seconds;
//! - `sh [ARGS...]`: runs `sh` with the remaining arguments (`sh FILE` runs FILE);
//! - anything else: exits 1.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Runs argosay with `args` (what follows `argosay` on the command line); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1), arg(2)) {
        (None, _, _) | (Some("echo"), None, _) => say("hello argo"),
        (Some("echo"), Some(msg), None) => say(msg),
        (Some("echo"), Some(msg), Some(file)) => {
            let file = Path::new(file);
            let written = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(file, format!("{msg}\n")));
            report(written, file)
        }
        (Some("cat"), Some(file), _) => match std::fs::read(file) {
            Ok(bytes) => {
                let mut out = std::io::stdout().lock();
                i32::from(out.write_all(&bytes).and_then(|()| out.flush()).is_err())
            }
            Err(e) => report(Err(e), Path::new(file)),
        },
        (Some("assert_contains"), Some(file), Some(needle)) => match std::fs::read(file) {
            Ok(bytes) if contains(&bytes, needle.as_bytes()) => 0,
            Ok(_) => {
                eprintln!("argosay: {file} does not contain {needle:?}");
                1
            }
            Err(e) => report(Err(e), Path::new(file)),
        },
        (Some("exit"), code, _) => match code.map_or(Ok(0), str::parse::<i32>) {
            Ok(code) => code,
            Err(_) => {
                eprintln!("argosay: invalid exit code {:?}", code.unwrap_or_default());
                1
            }
        },
        (Some("sleep"), Some(d), _) => match parse_duration(d) {
            Some(d) => {
                std::thread::sleep(d);
                0
            }
            None => {
                eprintln!("argosay: invalid duration {d:?}");
                1
            }
        },
        (Some("sh"), _, _) => match std::process::Command::new("sh").args(&args[1..]).status() {
            Ok(status) => crate::exit::ExitStatus::from(status).container_code(),
            Err(e) => {
                eprintln!("argosay: cannot run sh: {e}");
                1
            }
        },
        (Some(other), _, _) => {
            eprintln!("argosay: unknown or incomplete command {other:?}");
            1
        }
    }
}

fn say(msg: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    i32::from(writeln!(out, "{msg}").and_then(|()| out.flush()).is_err())
}

fn report(result: std::io::Result<()>, path: &Path) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("argosay: {}: {e}", path.display());
            1
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A Go duration (`300ms`, `1.5h`, `2h45m`; units ns, us, µs, ms, s, m, h) or plain seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    // Plain (possibly fractional) seconds, as `sleep 1.5`; otherwise Go's syntax.
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    cox_config::duration::parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1"), None);
    }

    #[test]
    fn builtin_commands() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a/b/msg");
        let fs = f.display().to_string();
        assert_eq!(main(&s(&["echo", "hi there", &fs])), 0);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "hi there\n");
        assert_eq!(main(&s(&["assert_contains", &fs, "there"])), 0);
        assert_eq!(main(&s(&["assert_contains", &fs, "nope"])), 1);
        assert_eq!(main(&s(&["exit", "7"])), 7);
        assert_eq!(main(&s(&["exit"])), 0);
        assert_eq!(main(&s(&["sh", "-c", "exit 4"])), 4);
        assert_eq!(main(&s(&["cat", "/nonexistent/x"])), 1);
        assert_eq!(main(&s(&["bogus"])), 1);
        assert_eq!(main(&s(&["sleep", "10ms"])), 0);
    }
}
