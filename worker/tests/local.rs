//! Real processes, sandboxed (bubblewrap) and plain: no mocks. Sandboxed
//! cases skip, saying why, only when bubblewrap cannot run here.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cox_worker::logs::MAX_LINE_BYTES;
use cox_worker::spec::DEFAULT_WORKDIR;
use cox_worker::{
    Error, Exit, LocalProcess, LogLine, Mount, ProcessSpec, Stream, check_sandbox, read_log,
};

/// Whether sandboxed cases can run; prints the reason when not.
async fn can_sandbox(sandbox: bool) -> bool {
    if !sandbox {
        return true;
    }
    match check_sandbox().await {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipping sandboxed test: {e}");
            false
        }
    }
}

fn sh(script: &str, step_dir: &Path, sandbox: bool) -> ProcessSpec {
    ProcessSpec::new(["sh", "-c", script], step_dir).sandbox(sandbox)
}

async fn run(spec: ProcessSpec) -> (Exit, Vec<LogLine>) {
    let log = spec.step_dir.join("log.jsonl");
    let exit = LocalProcess::spawn(spec)
        .await
        .expect("spawn")
        .wait()
        .await
        .expect("wait");
    let lines = read_log(&log).await.expect("read log");
    (exit, lines)
}

fn lines_of(lines: &[LogLine], stream: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

/// Polls `check` every 10 ms until it gives a value or `limit` passes.
async fn poll<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A number no other test (or test process) uses, to find our processes.
fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    700_000 + (std::process::id() % 10_000) * 20 + NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Host pids whose command line is exactly `args`.
fn pids_running(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want) && alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Running or sleeping: present in /proc and not a zombie.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// One test body run twice: sandboxed and plain.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sandboxed() {
                super::$name(true).await
            }
            #[tokio::test]
            async fn plain() {
                super::$name(false).await
            }
        }
    };
}

both!(exit_codes);
async fn exit_codes(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (exit, _) = run(sh("exit 3", &dir.path().join("a"), sandbox)).await;
    assert_eq!(exit.status.code, Some(3));
    assert_eq!(exit.message().as_deref(), Some("Error (exit code 3)"));
    assert!(!exit.cancelled);
    let (exit, _) = run(sh("true", &dir.path().join("b"), sandbox)).await;
    assert!(exit.status.success(), "{:?}", exit.status);
    assert_eq!(exit.message(), None);
    assert!(exit.started <= exit.finished);
}

both!(env_is_explicit);
async fn env_is_explicit(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let step = dir.path().join("s");
    let spec = ProcessSpec::new(["env"], &step)
        .sandbox(sandbox)
        .env("FOO", "a b=c")
        .env("EMPTY", "");
    let home = spec.effective_workdir();
    let (exit, lines) = run(spec).await;
    assert!(exit.status.success());
    let vars: Vec<(String, String)> = lines_of(&lines, Stream::Stdout)
        .iter()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let keys: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    for key in &keys {
        assert!(
            ["PATH", "LANG", "HOME", "PWD", "FOO", "EMPTY"].contains(key),
            "leaked {key}: {vars:?}"
        );
    }
    assert!(vars.contains(&("FOO".into(), "a b=c".into())), "{vars:?}");
    assert!(vars.contains(&("EMPTY".into(), String::new())), "{vars:?}");
    assert!(
        vars.contains(&("HOME".into(), home.display().to_string())),
        "{vars:?}"
    );
    assert!(
        vars.contains(&("PWD".into(), home.display().to_string())),
        "{vars:?}"
    );
    assert!(keys.contains(&"PATH"));

    let (_, lines) = run(ProcessSpec::new(["pwd"], dir.path().join("p")).sandbox(sandbox)).await;
    let want = if sandbox {
        PathBuf::from(DEFAULT_WORKDIR)
    } else {
        dir.path().join("p/work")
    };
    assert_eq!(
        lines_of(&lines, Stream::Stdout),
        [want.display().to_string()]
    );
}

both!(arguments_arrive_unchanged);
async fn arguments_arrive_unchanged(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let value =
        r#"$(echo hi) {{x}} {{inputs.parameters.y}} 'single' "double" `id` ; & | $HOME * \n é"#;
    let spec = ProcessSpec::new(["printf", "%s", value], dir.path()).sandbox(sandbox);
    let (exit, lines) = run(spec).await;
    assert!(exit.status.success());
    assert_eq!(exit.result, value);
    assert_eq!(lines_of(&lines, Stream::Stdout), [value]);
}

both!(missing_program_fails);
async fn missing_program_fails(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ProcessSpec::new(["cox-no-such-program"], dir.path()).sandbox(sandbox);
    match LocalProcess::spawn(spec).await {
        // Sandboxed, bwrap starts and reports the failed exec itself.
        Ok(running) => {
            let exit = running.wait().await.expect("wait");
            assert!(sandbox);
            assert!(!exit.status.success());
        }
        Err(e) => {
            assert!(!sandbox);
            assert!(matches!(e, Error::Spawn { .. }), "{e:?}");
        }
    }
    let err = LocalProcess::spawn(ProcessSpec::new(Vec::<String>::new(), dir.path())).await;
    assert!(matches!(err, Err(Error::EmptyArgv)));
}

#[tokio::test]
async fn parallel_steps_have_private_tmp() {
    if !can_sandbox(true).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sync = dir.path().join("sync");
    std::fs::create_dir(&sync).expect("mkdir");
    // Each step writes /tmp/out.txt, says so, waits until the other has
    // written too, then reads its file back.
    let step = |me: &str, other: &str| {
        let script = format!(
            "echo {me} > /tmp/out.txt && touch /sync/{me} && \
             i=0; while [ ! -e /sync/{other} ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; \
             [ -e /sync/{other} ] || exit 9; cat /tmp/out.txt"
        );
        sh(&script, &dir.path().join(me), true).mount(Mount::Bind {
            host: sync.clone(),
            target: "/sync".into(),
            read_only: false,
        })
    };
    let a = LocalProcess::spawn(step("a", "b")).await.expect("spawn a");
    let b = LocalProcess::spawn(step("b", "a")).await.expect("spawn b");
    let (a, b) = tokio::join!(a.wait(), b.wait());
    let (a, b) = (a.expect("wait a"), b.expect("wait b"));
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    assert_eq!(a.result, "a");
    assert_eq!(b.result, "b");
    let host = std::fs::read_to_string("/tmp/out.txt").unwrap_or_default();
    assert!(
        host.trim() != "a" && host.trim() != "b",
        "a step wrote the host's /tmp"
    );
}

#[tokio::test]
async fn host_is_read_only_and_workdir_writable() {
    if !can_sandbox(true).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = format!("/usr/cox-ro-test-{}", unique());
    let script = format!(
        "if touch {marker} 2>/dev/null; then echo wrote; else echo denied; fi; \
         if touch /etc/cox-ro-test 2>/dev/null; then echo wrote; else echo denied; fi; \
         echo data > made-here && echo ok"
    );
    let spec = sh(&script, dir.path(), true);
    let work = spec.host_workdir();
    let (exit, lines) = run(spec).await;
    assert!(exit.status.success());
    assert_eq!(lines_of(&lines, Stream::Stdout), ["denied", "denied", "ok"]);
    assert!(!Path::new(&marker).exists());
    assert_eq!(
        std::fs::read_to_string(work.join("made-here")).expect("written"),
        "data\n"
    );
}

#[tokio::test]
async fn sandbox_mounts() {
    if !can_sandbox(true).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    let output = dir.path().join("out");
    std::fs::create_dir_all(&input).expect("mkdir");
    std::fs::create_dir_all(&output).expect("mkdir");
    std::fs::write(input.join("f"), "input\n").expect("write");
    let n = unique();
    // Targets missing on the host: at the top level, under an existing
    // directory (/usr), nested in another mount, and in the workdir.
    let usr_target = format!("/usr/cox-vol-{n}/out");
    let script = format!(
        "cat /data/in/f && cat in-work/f && \
         if touch /data/in/x 2>/dev/null; then echo wrote; else echo denied; fi && \
         echo result > {usr_target}/g && echo t > /scratch/cache/t && cat /scratch/cache/t && \
         ls /usr/bin/sh >/dev/null && echo done"
    );
    let spec = sh(&script, &dir.path().join("step"), true)
        .mount(Mount::Bind {
            host: input.clone(),
            target: "/data/in".into(),
            read_only: true,
        })
        .mount(Mount::Tmpfs {
            target: "/scratch/cache".into(),
        })
        .mount(Mount::Bind {
            host: output.clone(),
            target: usr_target.clone().into(),
            read_only: false,
        })
        .mount(Mount::Bind {
            host: input.clone(),
            target: format!("{DEFAULT_WORKDIR}/in-work").into(),
            read_only: true,
        });
    let (exit, lines) = run(spec).await;
    assert!(exit.status.success(), "{exit:?} {lines:?}");
    assert_eq!(
        lines_of(&lines, Stream::Stdout),
        ["input", "input", "denied", "t", "done"]
    );
    assert_eq!(
        std::fs::read_to_string(output.join("g")).expect("written"),
        "result\n"
    );
    assert!(!Path::new(&format!("/usr/cox-vol-{n}")).exists());
    assert!(!input.join("x").exists());

    let missing = sh("true", &dir.path().join("m"), true).mount(Mount::Bind {
        host: dir.path().join("nope"),
        target: "/nope".into(),
        read_only: true,
    });
    assert!(matches!(
        LocalProcess::spawn(missing).await,
        Err(Error::MountSource { .. })
    ));
}

#[tokio::test]
async fn plain_mounts_only_inside_workdir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).expect("mkdir");
    std::fs::write(input.join("f"), "input\n").expect("write");
    let spec = sh(
        "cat data/in/f && touch cache/t && echo ok",
        &dir.path().join("s"),
        false,
    )
    .mount(Mount::Bind {
        host: input.clone(),
        target: format!("{DEFAULT_WORKDIR}/data/in").into(),
        read_only: true,
    })
    .mount(Mount::Tmpfs {
        target: format!("{DEFAULT_WORKDIR}/cache").into(),
    });
    let (exit, lines) = run(spec).await;
    assert!(exit.status.success(), "{lines:?}");
    assert_eq!(lines_of(&lines, Stream::Stdout), ["input", "ok"]);

    let outside = sh("true", &dir.path().join("o"), false).mount(Mount::Tmpfs {
        target: "/scratch".into(),
    });
    let err = LocalProcess::spawn(outside).await;
    assert!(
        matches!(err, Err(Error::MountNeedsSandbox { .. })),
        "{err:?}"
    );
}

both!(cancel_kills_term_ignoring_tree);
async fn cancel_kills_term_ignoring_tree(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let n = unique().to_string();
    // Ignored signals stay ignored across exec: the sleeps ignore SIGTERM too.
    let script = format!("trap '' TERM; sleep {n} & sleep {n} & sleep {n}; echo unreachable");
    let running = LocalProcess::spawn(sh(&script, dir.path(), sandbox))
        .await
        .expect("spawn");
    let sleeps = poll("three sleeps", Duration::from_secs(10), || {
        let pids = pids_running(&["sleep", &n]);
        (pids.len() == 3).then_some(pids)
    })
    .await;
    let started = Instant::now();
    let grace = Duration::from_millis(300);
    running.cancel(grace).await.expect("cancel");
    assert!(
        started.elapsed() >= grace,
        "SIGKILL came before the grace period"
    );
    let pid = running.pid();
    let exit = running.wait().await.expect("wait");
    assert!(exit.cancelled);
    assert_eq!(exit.status.container_code(), 137, "{:?}", exit.status);
    assert_eq!(exit.message().as_deref(), Some("Error (exit code 137)"));
    let mut all = sleeps.clone();
    all.push(pid);
    poll(
        "every process of the step to be gone",
        Duration::from_secs(5),
        || all.iter().all(|&p| !alive(p)).then_some(()),
    )
    .await;
    assert!(pids_running(&["sleep", &n]).is_empty());
}

both!(cancel_terminates_gracefully);
async fn cancel_terminates_gracefully(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let n = unique().to_string();
    let script = format!("trap 'echo got TERM; exit 7' TERM; echo ready; sleep {n} & wait");
    let running = LocalProcess::spawn(sh(&script, dir.path(), sandbox))
        .await
        .expect("spawn");
    poll("the sleep", Duration::from_secs(10), || {
        (!pids_running(&["sleep", &n]).is_empty()).then_some(())
    })
    .await;
    let started = Instant::now();
    running
        .cancel(Duration::from_secs(60))
        .await
        .expect("cancel");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the grace period"
    );
    let exit = running.wait().await.expect("wait");
    assert!(exit.cancelled);
    assert_eq!(exit.status.code, Some(7), "{:?}", exit.status);
    assert_eq!(exit.result, "ready\ngot TERM");
    poll("the sleep to be gone", Duration::from_secs(5), || {
        pids_running(&["sleep", &n]).is_empty().then_some(())
    })
    .await;
}

both!(logs_keep_order_streams_and_times);
async fn logs_keep_order_streams_and_times(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "i=1; while [ $i -le 300 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; printf 'no newline'";
    let (exit, lines) = run(sh(script, dir.path(), sandbox)).await;
    assert!(exit.status.success());
    let want_out: Vec<String> = (1..=300)
        .map(|i| format!("out{i}"))
        .chain(["no newline".into()])
        .collect();
    let want_err: Vec<String> = (1..=300).map(|i| format!("err{i}")).collect();
    assert_eq!(lines_of(&lines, Stream::Stdout), want_out);
    assert_eq!(lines_of(&lines, Stream::Stderr), want_err);
    let last = lines
        .iter()
        .rfind(|l| l.stream == Stream::Stdout)
        .expect("a stdout line");
    assert!(last.partial);
    assert!(lines.iter().filter(|l| l.partial).count() == 1);
    for stream in [Stream::Stdout, Stream::Stderr] {
        let times: Vec<_> = lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.time)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{stream:?} times go back"
        );
    }
    for l in &lines {
        assert!(
            exit.started <= l.time && l.time <= exit.finished,
            "{l:?} outside the run"
        );
    }
    // The file itself: one JSON object per line, RFC 3339 UTC with nanoseconds.
    let raw = std::fs::read_to_string(dir.path().join("log.jsonl")).expect("log");
    let first: serde_json::Value =
        serde_json::from_str(raw.lines().next().expect("a line")).expect("json");
    let time = first["time"].as_str().expect("time");
    assert!(
        time.ends_with('Z') && time.len() == "2025-01-01T00:00:00.000000000Z".len(),
        "{time}"
    );
    assert!(first["stream"] == "stdout" || first["stream"] == "stderr");
}

both!(long_lines_are_split);
async fn long_lines_are_split(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let len = 2 * MAX_LINE_BYTES + 1000;
    let script = format!("head -c {len} /dev/zero | tr '\\0' x; echo; echo short");
    let (exit, lines) = run(sh(&script, dir.path(), sandbox)).await;
    assert!(exit.status.success());
    let got: Vec<(usize, bool)> = lines.iter().map(|l| (l.line.len(), l.partial)).collect();
    assert_eq!(
        got,
        [
            (MAX_LINE_BYTES, true),
            (MAX_LINE_BYTES, true),
            (1000, false),
            (5, false)
        ]
    );
    assert!(lines[..3].iter().all(|l| l.line.bytes().all(|b| b == b'x')));
}

both!(result_is_capped);
async fn result_is_capped(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = sh("seq 1 20000", &dir.path().join("big"), sandbox);
    spec.result_cap = 1000;
    let (exit, lines) = run(spec).await;
    let full: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    let full = full.trim_end_matches('\n');
    assert_eq!(exit.result, full[full.len() - 1000..]);
    assert!(exit.result_truncated);
    assert_eq!(lines.len(), 20000, "the log keeps everything");

    let (exit, _) = run(sh("echo small; echo", &dir.path().join("small"), sandbox)).await;
    assert_eq!(exit.result, "small\n");
    assert!(!exit.result_truncated);
}

both!(follow_streams_until_done);
async fn follow_streams_until_done(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "i=1; while [ $i -le 50 ]; do echo line$i; [ $((i % 10)) -eq 0 ] && sleep 0.05; i=$((i+1)); done";
    let running = LocalProcess::spawn(sh(script, dir.path(), sandbox))
        .await
        .expect("spawn");
    let mut follower = running.follow_logs().await.expect("follow");
    let follow = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(line) = follower.next().await {
            got.push(line.expect("record").line);
        }
        got
    });
    let exit = running.wait().await.expect("wait");
    assert!(exit.status.success());
    let got = tokio::time::timeout(Duration::from_secs(10), follow)
        .await
        .expect("follower ended")
        .expect("follower task");
    let want: Vec<String> = (1..=50).map(|i| format!("line{i}")).collect();
    assert_eq!(got, want);
}
