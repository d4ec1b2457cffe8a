//! LocalExecutor end to end: real wrapper processes (the `cox-step-test` binary), sandboxed
//! (bubblewrap) and plain. Sandboxed cases are skipped, with a message, where bubblewrap
//! cannot run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cox_worker::executor::{DEADLINE_MESSAGE, STOPPED_MESSAGE};
use cox_worker::step::{
    ArchiveKind, ArtifactSource, Executor, InputArtifact, OutputArtifact, OutputParameter,
    StepOutcome, StepPhase, StepSpec,
};
use cox_worker::{ImageEntry, ImageTable, LocalExecutor, LocalExecutorConfig, check_sandbox};
use tokio_util::sync::CancellationToken;

const COX: &str = env!("CARGO_BIN_EXE_cox-step-test");

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

struct Setup {
    _dir: tempfile::TempDir,
    exec: LocalExecutor,
    sandbox: bool,
}

fn setup(sandbox: bool) -> Setup {
    setup_with(sandbox, ImageTable::builtin())
}

fn setup_with(sandbox: bool, images: ImageTable) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = LocalExecutorConfig::new(dir.path().join("data"), dir.path().join("artifacts"));
    cfg.sandbox = sandbox;
    cfg.cox_binary = PathBuf::from(COX);
    cfg.grace = Duration::from_secs(1);
    cfg.images = images;
    Setup {
        _dir: dir,
        exec: LocalExecutor::new(cfg),
        sandbox,
    }
}

impl Setup {
    /// A path for step files: under the private `/tmp` when sandboxed, relative to the
    /// step's working directory without the sandbox (whose `/tmp` is the host's).
    fn path(&self, name: &str) -> String {
        if self.sandbox {
            format!("/tmp/{name}")
        } else {
            name.to_string()
        }
    }

    async fn run(&self, spec: StepSpec) -> StepOutcome {
        self.exec.run(spec, CancellationToken::new()).await
    }
}

fn spec(node: &str, image: &str, command: &[&str], args: &[&str]) -> StepSpec {
    StepSpec {
        run: "run-1".into(),
        node_id: node.into(),
        attempt: 0,
        image: image.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        args: args.iter().map(|s| s.to_string()).collect(),
        script: None,
        env: Vec::new(),
        working_dir: None,
        input_artifacts: Vec::new(),
        output_parameters: Vec::new(),
        output_artifacts: Vec::new(),
        volumes: Vec::new(),
        deadline_seconds: None,
        capture_result: true,
        memoize: None,
        repository: None,
        archive_logs: false,
    }
}

fn param(name: &str, path: &str, default: Option<&str>) -> OutputParameter {
    OutputParameter {
        name: name.into(),
        path: path.into(),
        default: default.map(Into::into),
    }
}

/// The built-in table with a user entry first: `acme/*`, its entrypoint and one alias.
fn acme_table(entrypoint: &str, (alias, program): (&str, &str)) -> ImageTable {
    let mut table = ImageTable::builtin();
    table.images.insert(
        0,
        ImageEntry {
            pattern: "acme/*".into(),
            entrypoint: vec![entrypoint.into()],
            aliases: [(alias.to_string(), program.to_string())].into(),
            own_entrypoint: None,
        },
    );
    table
}

fn succeeded(o: &StepOutcome) {
    assert_eq!(o.phase, StepPhase::Succeeded, "{o:#?}");
    assert_eq!(o.exit_code, Some(0), "{o:#?}");
    assert_eq!(o.message, "", "{o:#?}");
}

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

both!(echo_gives_result);
async fn echo_gives_result(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let o = s.run(spec("echo", "busybox", &["echo"], &["hello"])).await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some("hello"));
    assert!(o.started_at.is_some() && o.finished_at.is_some());
    let log = s.exec.log_path("run-1", "echo", 0).expect("log path");
    assert!(log.ends_with("runs/run-1/echo-0/log.jsonl"), "{log:?}");
    assert!(std::fs::read_to_string(log).unwrap().contains("hello"));

    let mut quiet = spec("quiet", "busybox", &["echo"], &["x"]);
    quiet.capture_result = false;
    assert_eq!(s.run(quiet).await.result, None);
}

both!(exit_code_fails);
async fn exit_code_fails(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let o = s
        .run(spec(
            "fail",
            "alpine",
            &["sh", "-c", "echo out; exit 3"],
            &[],
        ))
        .await;
    assert_eq!(o.phase, StepPhase::Failed, "{o:#?}");
    assert_eq!(o.exit_code, Some(3));
    assert_eq!(o.message, "Error (exit code 3)");
    assert_eq!(o.result.as_deref(), Some("out"));
}

both!(env_workdir_and_script);
async fn env_workdir_and_script(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let mut sp = spec("env", "alpine", &["sh", "-c", "echo $FOO; pwd"], &[]);
    sp.env = vec![("FOO".into(), "bar baz".into())];
    sp.working_dir = Some("/src".into());
    let o = s.run(sp).await;
    succeeded(&o);
    let want_dir = if sandbox {
        "/src".to_string()
    } else {
        s.exec
            .step_dir("run-1", "env", 0)
            .join("work")
            .display()
            .to_string()
    };
    assert_eq!(o.result.unwrap(), format!("bar baz\n{want_dir}"));

    let mut sp = spec("script", "python:3.12", &["sh"], &[]);
    sp.script = Some("echo from script\necho \"args: $#\"\n".into());
    let o = s.run(sp).await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some("from script\nargs: 0"));
}

both!(output_parameters);
async fn output_parameters(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let out = s.path("out.txt");
    let mk = |node: &str, value: &str| {
        let mut sp = spec(
            node,
            "busybox",
            &[
                "sh",
                "-c",
                "sleep 0.3; printf '%s\\n' \"$1\" > \"$2\"",
                "sh",
            ],
            &[value, &out],
        );
        sp.output_parameters = vec![param("v", &out, None)];
        sp
    };
    // Two steps at once writing the same path each get their own value.
    let (a, b) = tokio::join!(s.run(mk("a", "alpha")), s.run(mk("b", "beta")));
    succeeded(&a);
    succeeded(&b);
    assert_eq!(a.parameters, [("v".to_string(), "alpha".to_string())]);
    assert_eq!(b.parameters, [("v".to_string(), "beta".to_string())]);

    // Missing file: the default, or an error with Go's wording.
    let missing = s.path("nope.txt");
    let mut sp = spec("dflt", "busybox", &["true"], &[]);
    sp.output_parameters = vec![param("p", &missing, Some("fallback"))];
    let o = s.run(sp).await;
    succeeded(&o);
    assert_eq!(o.parameters, [("p".to_string(), "fallback".to_string())]);

    let mut sp = spec("nodflt", "busybox", &["true"], &[]);
    sp.output_parameters = vec![param("p", &missing, None)];
    let o = s.run(sp).await;
    assert_eq!(o.phase, StepPhase::Error, "{o:#?}");
    assert_eq!(o.exit_code, Some(0));
    assert_eq!(
        o.message,
        format!("open {missing}: no such file or directory")
    );

    // A failing program keeps its own message.
    let mut sp = spec("both", "busybox", &["false"], &[]);
    sp.output_parameters = vec![param("p", &missing, None)];
    let o = s.run(sp).await;
    assert_eq!(o.phase, StepPhase::Failed, "{o:#?}");
    assert_eq!(o.message, "Error (exit code 1)");
}

both!(artifacts_round_trip);
async fn artifacts_round_trip(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let (file, dir) = (s.path("gen/file.txt"), s.path("gen/dir"));
    let make = format!(
        "mkdir -p {dir}/sub && echo content > {file} && echo a > {dir}/a && echo b > {dir}/sub/b"
    );
    let mut sp = spec("produce", "alpine", &["sh", "-c", &make], &[]);
    let mut outs = Vec::new();
    for (name, path, archive) in [
        ("file-tgz", &file, ArchiveKind::TarGz),
        ("file-none", &file, ArchiveKind::None),
        ("dir-tgz", &dir, ArchiveKind::TarGz),
        ("dir-none", &dir, ArchiveKind::None),
        ("dir-zip", &dir, ArchiveKind::Zip),
    ] {
        outs.push(OutputArtifact {
            name: name.into(),
            path: path.clone(),
            key: format!("run-1/produce/{name}"),
            archive,
            optional: false,
            store: None,
        });
    }
    outs.push(OutputArtifact {
        name: "maybe".into(),
        path: s.path("gen/missing"),
        key: "run-1/produce/maybe".into(),
        archive: ArchiveKind::TarGz,
        optional: true,
        store: None,
    });
    sp.output_artifacts = outs;
    let o = s.run(sp).await;
    succeeded(&o);
    assert_eq!(o.artifacts.len(), 5, "{:#?}", o.artifacts);
    assert!(
        o.artifacts
            .iter()
            .all(|a| a.size > 0 && a.sha256.len() == 64)
    );

    // A second step gets them back, checked against size and digest.
    let mut inputs: Vec<InputArtifact> = o
        .artifacts
        .iter()
        .map(|a| InputArtifact {
            name: a.name.clone(),
            path: s.path(&format!("in/{}", a.name)),
            source: ArtifactSource::Stored {
                key: a.key.clone(),
                archive: a.archive,
                size: Some(a.size),
                sha256: Some(a.sha256.clone()),
            },
            mode: None,
            sub_path: None,
            optional: false,
            store: None,
        })
        .collect();
    inputs.push(InputArtifact {
        name: "raw".into(),
        path: if sandbox {
            // Under a directory the host does not have: made private to the step.
            "/cox-test-missing-root/inputs/raw.sh".into()
        } else {
            s.path("in/raw.sh")
        },
        source: ArtifactSource::Raw("echo raw-ran".into()),
        mode: Some(0o755),
        sub_path: None,
        optional: false,
        store: None,
    });
    inputs.push(InputArtifact {
        name: "absent".into(),
        path: s.path("in/absent"),
        source: ArtifactSource::Absent,
        mode: None,
        sub_path: None,
        optional: false,
        store: None,
    });
    // Argo: an optional input whose object is not found is skipped.
    inputs.push(InputArtifact {
        name: "optional-missing".into(),
        path: s.path("in/optional-missing"),
        source: ArtifactSource::Key("nowhere/missing".into()),
        mode: None,
        sub_path: None,
        optional: true,
        store: None,
    });
    let raw = inputs[5].path.clone();
    let check = format!(
        "set -e; in={in_dir}; cat $in/file-tgz $in/file-none; for d in dir-tgz dir-none dir-zip; do cat $in/$d/a $in/$d/sub/b; done; {raw}; test ! -e $in/absent; test ! -e $in/optional-missing",
        in_dir = s.path("in"),
    );
    let mut sp = spec("consume", "alpine", &["sh", "-c", &check], &[]);
    sp.input_artifacts = inputs.clone();
    let o2 = s.run(sp).await;
    succeeded(&o2);
    assert_eq!(
        o2.result.as_deref(),
        Some("content\ncontent\na\nb\na\nb\na\nb\nraw-ran")
    );

    // A wrong digest is refused before the program runs.
    if let ArtifactSource::Stored { sha256, .. } = &mut inputs[0].source {
        *sha256 = Some("0".repeat(64));
    }
    let mut sp = spec("tampered", "alpine", &["echo", "ran"], &[]);
    sp.input_artifacts = vec![inputs[0].clone()];
    let o3 = s.run(sp).await;
    assert_eq!(o3.phase, StepPhase::Error, "{o3:#?}");
    assert!(o3.message.contains("file-tgz"), "{}", o3.message);
    assert_eq!(o3.result.as_deref(), Some(""));

    // A missing, non-optional output artifact is an error.
    let mut sp = spec("noart", "alpine", &["true"], &[]);
    sp.output_artifacts = vec![OutputArtifact {
        name: "needed".into(),
        path: s.path("none/here"),
        key: "run-1/noart/needed".into(),
        archive: ArchiveKind::TarGz,
        optional: false,
        store: None,
    }];
    let o4 = s.run(sp).await;
    assert_eq!(o4.phase, StepPhase::Error, "{o4:#?}");
    assert!(o4.message.contains("needed") && o4.message.contains("no such file or directory"));

    let mut sp = spec("http", "alpine", &["true"], &[]);
    sp.input_artifacts = vec![InputArtifact {
        name: "web".into(),
        path: s.path("web"),
        // Nothing listens on port 1: the download fails after its retries.
        source: ArtifactSource::Http("http://127.0.0.1:1/x".into()),
        mode: None,
        sub_path: None,
        optional: false,
        store: None,
    }];
    let o5 = s.run(sp).await;
    assert_eq!(o5.phase, StepPhase::Error);
    assert!(
        o5.message.contains("input artifact \"web\"")
            && o5.message.contains("http://127.0.0.1:1/x"),
        "{}",
        o5.message
    );
}

both!(image_table);
async fn image_table(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    // No command: the entrypoint from the table, then the args.
    let o = s
        .run(spec(
            "ep",
            "alpine:3.19",
            &[],
            &["-c", "echo from-entrypoint"],
        ))
        .await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some("from-entrypoint"));

    // busybox's `sh` for busybox images, as in the image: `$RANDOM` is set (dash has none).
    if Path::new("/usr/bin/busybox").exists() || Path::new("/bin/busybox").exists() {
        let o = s
            .run(spec(
                "ash",
                "busybox",
                &["sh", "-euc", "test -n \"$RANDOM\" && echo ash"],
                &[],
            ))
            .await;
        succeeded(&o);
        assert_eq!(o.result.as_deref(), Some("ash"));
    }

    // An unknown image without command: a clear error naming the image.
    let o = s.run(spec("unknown", "acme/mystery:1", &[], &["x"])).await;
    assert_eq!(o.phase, StepPhase::Error);
    assert!(
        o.message.contains("acme/mystery:1") && o.message.contains("images.yaml"),
        "{}",
        o.message
    );

    // `python` on a PATH that only has python3, through the alias.
    if Path::new("/usr/bin/python3").exists() && !Path::new("/usr/bin/python").exists() {
        let mut sp = spec(
            "py",
            "python:3.12",
            &["python", "-c", "print('py ok')"],
            &[],
        );
        sp.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
        let o = s.run(sp).await;
        succeeded(&o);
        assert_eq!(o.result.as_deref(), Some("py ok"));
    }

    // A user entry with its own alias, ahead of the built-in ones.
    let table = acme_table("greet", ("greet", "echo"));
    let s2 = setup_with(sandbox, table);
    let o = s2
        .run(spec("alias", "acme/tool:2", &[], &["hi", "there"]))
        .await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some("hi there"));
}

both!(argosay);
async fn argosay(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let img = "argoproj/argosay:v2";
    let run = |node: &'static str, args: Vec<String>| {
        let s = &s;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            s.run(spec(node, img, &[], &args)).await
        }
    };
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let o = run("none", v(&[])).await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some("hello argo"));
    let o = run("echo", v(&["echo"])).await;
    assert_eq!(o.result.as_deref(), Some("hello argo"));
    let o = run("msg", v(&["echo", "hi there"])).await;
    assert_eq!(o.result.as_deref(), Some("hi there"));

    let file = s.path("argosay/out/msg");
    let mut sp = spec("tofile", img, &[], &["echo", "to file", &file]);
    sp.output_parameters = vec![param("m", &file, None)];
    let o = s.run(sp).await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some(""));
    assert_eq!(o.parameters, [("m".to_string(), "to file".to_string())]);

    let input = |text: &str| InputArtifact {
        name: "f".into(),
        path: s.path("argosay/in"),
        source: ArtifactSource::Raw(text.into()),
        mode: None,
        sub_path: None,
        optional: false,
        store: None,
    };
    let inp = s.path("argosay/in");
    let mut sp = spec("cat", img, &[], &["cat", &inp]);
    sp.input_artifacts = vec![input("cat me")];
    assert_eq!(s.run(sp).await.result.as_deref(), Some("cat me"));
    let mut sp = spec("assert-ok", img, &[], &["assert_contains", &inp, "needle"]);
    sp.input_artifacts = vec![input("hay needle hay")];
    succeeded(&s.run(sp).await);
    let mut sp = spec("assert-no", img, &[], &["assert_contains", &inp, "needle"]);
    sp.input_artifacts = vec![input("hay")];
    let o = s.run(sp).await;
    assert_eq!((o.phase, o.exit_code), (StepPhase::Failed, Some(1)));
    let mut sp = spec("sh", img, &[], &["sh", &inp]);
    sp.input_artifacts = vec![input("echo from sh; exit 4")];
    let o = s.run(sp).await;
    assert_eq!(o.result.as_deref(), Some("from sh"));
    assert_eq!((o.phase, o.exit_code), (StepPhase::Failed, Some(4)));

    let o = run("exit0", v(&["exit"])).await;
    succeeded(&o);
    let o = run("exit5", v(&["exit", "5"])).await;
    assert_eq!(o.message, "Error (exit code 5)");
    let o = run("sleep", v(&["sleep", "100ms"])).await;
    succeeded(&o);
    let o = run("bogus", v(&["bogus"])).await;
    assert_eq!((o.phase, o.exit_code), (StepPhase::Failed, Some(1)));
}

both!(deadline_kills_stubborn_step);
async fn deadline_kills_stubborn_step(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let mut sp = spec(
        "stubborn",
        "alpine",
        &[
            "sh",
            "-c",
            "trap '' TERM; echo started; sleep 60; echo never",
        ],
        &[],
    );
    sp.deadline_seconds = Some(1);
    let t = Instant::now();
    let o = s.run(sp).await;
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(o.phase, StepPhase::Failed, "{o:#?}");
    assert_eq!(o.message, DEADLINE_MESSAGE);
    assert_eq!(o.result.as_deref(), Some("started"));
}

both!(cancel_stops_step);
async fn cancel_stops_step(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let t = Instant::now();
    let o = s
        .exec
        .run(spec("long", "busybox", &["sleep", "60"], &[]), cancel)
        .await;
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(o.phase, StepPhase::Failed, "{o:#?}");
    assert_eq!(o.message, STOPPED_MESSAGE);
}

both!(values_pass_through_unchanged);
async fn values_pass_through_unchanged(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let value = "{{x}} $(rm -rf /) `id` \"dq\" 'sq' ; $HOME \\n *";
    let o = s
        .run(spec("inject", "busybox", &["printf", "%s"], &[value]))
        .await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some(value));
    // Through the image's entrypoint and argosay too.
    let o = s
        .run(spec(
            "inject2",
            "argoproj/argosay:v2",
            &[],
            &["echo", value],
        ))
        .await;
    assert_eq!(o.result.as_deref(), Some(value));
}

both!(missing_program_is_an_error);
async fn missing_program_is_an_error(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    // Sandboxed, a program the host lacks is left to the wrapper inside the sandbox, which
    // reports it as it does without the sandbox.
    let o = s
        .run(spec("missing", "busybox", &["cox-no-such-program"], &[]))
        .await;
    assert_eq!(o.phase, StepPhase::Error, "{o:#?}");
    assert!(
        o.message.contains("cannot run \"cox-no-such-program\""),
        "{}",
        o.message
    );
    let log = s.exec.log_path("run-1", "missing", 0).expect("log path");
    let lines = cox_worker::read_log(&log).await.expect("log");
    assert!(
        lines.iter().any(|l| l.stream == cox_worker::Stream::Stderr
            && l.line.starts_with("cox-step: cannot run")),
        "{lines:?}"
    );
}

both!(wrapper_messages_are_logged_in_order);
async fn wrapper_messages_are_logged_in_order(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    // An alias whose program is missing is skipped with a message, before the program's
    // own output.
    let table = acme_table("echo", ("ghost", "cox-no-such-program"));
    let s = setup_with(sandbox, table);
    let o = s.run(spec("aliased", "acme/tool:1", &[], &["hi"])).await;
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some("hi"));
    let log = s.exec.log_path("run-1", "aliased", 0).expect("log path");
    let lines: Vec<String> = cox_worker::read_log(&log)
        .await
        .expect("log")
        .into_iter()
        .map(|l| l.line)
        .collect();
    assert_eq!(
        lines,
        [
            "cox-step: alias ghost -> cox-no-such-program: cox-no-such-program not found on PATH; alias skipped",
            "hi"
        ],
        "{lines:?}"
    );
}

both!(cancel_stops_a_step_placing_its_inputs);
async fn cancel_stops_a_step_placing_its_inputs(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    // An input from a server that accepts and never answers: the step is stuck placing it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let url = format!("http://{}/stuck", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(120));
        drop(held);
    });
    let s = setup(sandbox);
    let mut stuck = spec("stuck", "busybox", &["true"], &[]);
    stuck.input_artifacts.push(InputArtifact {
        name: "never".into(),
        path: s.path("never.txt"),
        source: ArtifactSource::Http(url),
        mode: None,
        sub_path: None,
        optional: false,
        store: None,
    });
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        trigger.cancel();
    });
    let o = s.exec.run(stuck, cancel).await;
    assert_eq!(o.phase, StepPhase::Failed, "{o:#?}");
    assert_eq!(o.message, STOPPED_MESSAGE);
}

/// The memoization check: the keys of saved artifacts exist until `artifactGC` deletes them.
#[tokio::test]
async fn missing_artifacts_are_those_deleted_or_never_saved() {
    let s = setup(false);
    let file = s.path("made/file.txt");
    let mut sp = spec(
        "produce",
        "alpine",
        &["sh", "-c", &format!("mkdir -p made && echo x > {file}")],
        &[],
    );
    for (name, archive) in [("packed", ArchiveKind::TarGz), ("plain", ArchiveKind::None)] {
        sp.output_artifacts.push(OutputArtifact {
            name: name.into(),
            path: file.clone(),
            key: format!("run-m/produce/{name}"),
            archive,
            optional: false,
            store: None,
        });
    }
    let o = s.run(sp).await;
    succeeded(&o);
    let saved: Vec<String> = o.artifacts.iter().map(|a| a.key.clone()).collect();
    assert_eq!(saved.len(), 2);
    let mut asked = saved.clone();
    asked.push("run-m/never/saved".into());
    assert_eq!(
        s.exec.missing_artifacts(None, asked.clone()).await.unwrap(),
        ["run-m/never/saved"]
    );
    s.exec
        .delete_artifacts(None, vec![saved[0].clone()])
        .await
        .unwrap();
    assert_eq!(
        s.exec.missing_artifacts(None, asked).await.unwrap(),
        [saved[0].clone(), "run-m/never/saved".to_string()]
    );
}

/// The first line of an attempt's lock file: its supervisor's pid, then `host` when that is
/// the executor's step host.
fn lock_line(exec: &LocalExecutor, node: &str) -> String {
    let dir = exec.step_dir("run-1", node, 0);
    std::fs::read_to_string(dir.join(cox_worker::local::LOCK_FILE))
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The step host's pid in a lock file's first line.
fn host_pid(line: &str) -> i32 {
    line.strip_suffix(" host")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("not hosted: {line:?}"))
}

/// Polls (with a deadline) until the step's log shows `text`.
async fn until_logged(exec: &LocalExecutor, node: &str, text: &str) {
    let log = exec.step_dir("run-1", node, 0).join("log.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains(text)) {
        assert!(Instant::now() < deadline, "{node} never logged {text:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

both!(steps_without_files_share_one_host);
async fn steps_without_files_share_one_host(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    for node in ["a", "b"] {
        succeeded(&s.run(spec(node, "busybox", &["echo", node], &[])).await);
    }
    let (a, b) = (lock_line(&s.exec, "a"), lock_line(&s.exec, "b"));
    assert!(a.ends_with(" host"), "{a:?}");
    assert_eq!(a, b);
    // Files to collect: a supervisor of the step's own, as before.
    let out = s.path("out");
    let mut sp = spec(
        "c",
        "busybox",
        &["sh", "-c", &format!("echo 1 > {out}")],
        &[],
    );
    sp.output_parameters.push(param("p", &out, None));
    succeeded(&s.run(sp).await);
    let c = lock_line(&s.exec, "c");
    assert!(c.parse::<u32>().is_ok(), "{c:?}");
}

/// Sandboxed, a step the host runs directly in bubblewrap gets the image's aliases from the
/// directory shared by steps, at its host path, when the sandbox shows that path (a home
/// outside `/tmp`); its own step directory is then not in the sandbox at all. Under `/tmp`
/// (hidden by the sandbox's own) they are linked in the step directory, as before.
#[tokio::test]
async fn sandboxed_steps_share_alias_links_where_the_sandbox_shows_them() {
    if !can_sandbox(true).await {
        return;
    }
    let outside_tmp = Path::new("/var/tmp");
    if !outside_tmp.is_dir() {
        eprintln!("skipping: no /var/tmp for a home outside the sandbox's /tmp");
        return;
    }
    let table = acme_table("shell", ("shell", "sh"));
    let show = ["-c", "test ! -e /tmp/.cox/step && echo \"$PATH\""];
    let home = tempfile::tempdir_in(outside_tmp).expect("home outside /tmp");
    let mut cfg = LocalExecutorConfig::new(home.path().join("data"), home.path().join("artifacts"));
    cfg.sandbox = true;
    cfg.cox_binary = PathBuf::from(COX);
    cfg.images = table.clone();
    let exec = LocalExecutor::new(cfg);
    let shared = std::fs::canonicalize(home.path())
        .expect("home")
        .join("data/aliases");
    let mut first_dirs = Vec::new();
    for node in ["a", "b"] {
        let o = exec
            .run(
                spec(node, "acme/tool:1", &[], &show),
                CancellationToken::new(),
            )
            .await;
        succeeded(&o);
        let path = o.result.expect("PATH");
        let first = PathBuf::from(path.split(':').next().expect("a first entry"));
        assert_eq!(first.parent(), Some(shared.as_path()), "{path}");
        first_dirs.push(first);
    }
    assert_eq!(first_dirs[0], first_dirs[1], "one directory for both steps");

    // Under /tmp: the step's own `bin/`, in the step directory the sandbox shows.
    let s = setup_with(true, table);
    let o = s
        .run(spec("c", "acme/tool:1", &[], &["-c", "echo \"$PATH\""]))
        .await;
    succeeded(&o);
    let path = o.result.expect("PATH");
    assert!(path.starts_with("/tmp/.cox/step/bin:"), "{path}");
}

/// The executor goes away (its runtime and itself dropped, as when `cox run` is killed)
/// while a hosted step runs: the host finishes and records the step, and a new executor
/// adopts it; the host then ends.
fn hosted_step_outlives_its_executor(sandbox: bool) {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let first = runtime();
    if !first.block_on(can_sandbox(sandbox)) {
        return;
    }
    let s = setup(sandbox);
    let node = "survivor";
    first.block_on(async {
        let step = spec(
            node,
            "busybox",
            &["sh", "-c", "echo started; sleep 1; echo finished"],
            &[],
        );
        tokio::select! {
            o = s.run(step) => panic!("ended before its executor went away: {o:#?}"),
            () = until_logged(&s.exec, node, "started") => {}
        }
    });
    drop(first);
    let line = lock_line(&s.exec, node);
    let Setup { _dir, exec, .. } = s;
    let config = exec.config().clone();
    drop(exec);
    let host = host_pid(&line);

    let exec = LocalExecutor::new(config);
    let o = runtime()
        .block_on(exec.adopt("run-1".into(), node.into(), 0, CancellationToken::new()))
        .expect("the step is adopted");
    succeeded(&o);
    assert_eq!(o.result.as_deref(), Some("started\nfinished"));
    // No client and no step left: the host ends (a zombie until this process reaps it).
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(format!("/proc/{host}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "))
    {
        assert!(Instant::now() < deadline, "the host {host} did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hosted_step_outlives_its_executor_plain() {
    hosted_step_outlives_its_executor(false);
}

#[test]
fn hosted_step_outlives_its_executor_sandboxed() {
    hosted_step_outlives_its_executor(true);
}

both!(killed_host_loses_its_steps);
async fn killed_host_loses_its_steps(sandbox: bool) {
    if !can_sandbox(sandbox).await {
        return;
    }
    let s = setup(sandbox);
    let node = "orphan";
    let step = spec(node, "busybox", &["sh", "-c", "echo started; sleep 2"], &[]);
    let run = s.run(step);
    tokio::pin!(run);
    tokio::select! {
        o = &mut run => panic!("ended before its host was killed: {o:#?}"),
        () = until_logged(&s.exec, node, "started") => {}
    }
    let line = lock_line(&s.exec, node);
    let host = host_pid(&line);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the host");
    let o = run.await;
    assert_eq!(o.phase, StepPhase::Error, "{o:#?}");
    assert!(o.message.contains("lost the step process"), "{o:#?}");
    // The next step gets a new host.
    succeeded(&s.run(spec("next", "busybox", &["true"], &[])).await);
    let next = lock_line(&s.exec, "next");
    assert!(
        next.ends_with(" host") && next != line,
        "{next:?} after {line:?}"
    );
}
