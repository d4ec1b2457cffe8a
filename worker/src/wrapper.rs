//! The in-step wrapper, `cox __step STEP_DIR [--artifacts DIR] [--repository FILE]
//! [--unpack-limits ENTRIES,ENTRY_BYTES,TOTAL_BYTES]`: runs inside the step (the sandbox, or
//! a plain process with `--no-sandbox`) around the user's program. Its standard input is a
//! [`StepInput`] as JSON: the step's spec and the image table (a pipe rather than files: no
//! inode to create per step, nothing left to clean up).
//!
//! 1. reads the [`StepInput`] from stdin; `STEP_DIR` is the step directory as the step sees
//!    it (`/tmp/.cox/step` when sandboxed);
//! 2. opens the artifact repository: the S3 bucket described by `FILE`, else the local
//!    directory `DIR`, and the buckets of artifacts with their own location, also in `FILE`
//!    (see [`crate::repo_config`]; the file holds keys and is deleted as soon as it is read,
//!    before anything else runs); places the input artifacts (raw text, objects of
//!    the repository, checked against their recorded size and SHA-256) and sets their modes;
//! 3. writes a script template's source to `<step>/script` and appends that path to the
//!    argv (Argo: the script file is the last argument);
//! 4. resolves the argv with the image table (the template's `command`, or the image's
//!    entrypoint, then `args`) and links the image's aliases into `<step>/bin`, put first
//!    on `PATH`;
//! 5. runs the program with the step's environment and working directory, stdin closed,
//!    stdout and stderr inherited (so the process layer logs them and captures the result);
//! 6. reads output parameters from files and saves output artifacts to the repository;
//! 7. writes the [`StepOutcome`] as JSON to `<step>/outcome.json` and exits with the
//!    program's exit code.
//!
//! A step's supervisor (`cox __supervise`, see [`crate::local::Detached`]) does this work
//! itself, without a wrapper process, whenever it can ([`InProcess`]): it then runs the
//! program directly, and writes the outcome into its own record rather than
//! `outcome.json`.
//!
//! The wrapper's own messages go to stderr, prefixed `cox-step:`, never to stdout (which
//! is the step's `outputs.result`). SIGTERM does not stop the wrapper: the program gets it
//! too (the whole step is signalled), and the wrapper waits for it to end.
//!
//! # Outcomes (as Argo)
//! - exit code 0 and every output collected: `Succeeded`;
//! - non-zero exit: `Failed`, `Error (exit code N)` (outputs are still collected);
//! - an output parameter's file missing without a default: `Error`,
//!   `open <path>: no such file or directory`; a missing non-optional output artifact:
//!   `Error`, `output artifact <name>: open <path>: no such file or directory`;
//! - inputs that cannot be placed, a program that cannot be started: `Error`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use cox_artifacts::{Archive, ArtifactRepository, Expected, UnpackLimits};
use serde::{Deserialize, Serialize};

use crate::exit::Exit;
use crate::images::ImageTable;
use crate::repo_config::StepStores;
use crate::spec::{Mount, ProcessSpec};
use crate::step::{
    ArchiveKind, ArtifactSource, InputArtifact, SavedArtifact, StepOutcome, StepPhase, StepSpec,
};

/// The outcome file the wrapper writes in the step directory.
pub const OUTCOME_FILE: &str = "outcome.json";
/// A script template's source, in the step directory.
pub const SCRIPT_FILE: &str = "script";
/// The per-step directory of alias symlinks, in the step directory.
pub const BIN_DIR: &str = "bin";

/// The outcome's message when a step run by its supervisor is stopped before its program
/// started (the executor then says why it stopped it).
const STOPPED_WHILE_PLACING: &str = "stopped while its inputs were placed";
/// The same, after its program ended.
const STOPPED_WHILE_SAVING: &str = "stopped while its outputs were saved";

/// What the wrapper reads on its standard input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepInput {
    /// The step.
    pub spec: StepSpec,
    /// The image table (all entries, as configured).
    pub images: ImageTable,
}

/// The wrapper's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperArgs {
    /// The step directory, as the step sees it.
    pub step_dir: PathBuf,
    /// The local artifact repository's directory.
    pub artifacts: Option<PathBuf>,
    /// The keys file: the run's bucket and artifacts' own buckets (see
    /// [`crate::repo_config::REPOSITORY_FILE`]).
    pub repository: Option<PathBuf>,
    /// Limits for unpacking input archives (`--unpack-limits ENTRIES,ENTRY_BYTES,TOTAL_BYTES`);
    /// the artifacts crate's defaults when `None`.
    pub unpack_limits: Option<UnpackLimits>,
    /// Where alias directories shared by steps are kept (`--aliases DIR`, a host path: without
    /// the sandbox, or sandboxed when the step host runs the program directly and the
    /// sandbox shows `DIR` at that path): the image's aliases are linked there once, not per
    /// step.
    pub aliases: Option<PathBuf>,
}

/// The wrapper's argument naming the file of bucket keys (see [`crate::repo_config`]).
pub const REPOSITORY_ARG: &str = "--repository";
/// The wrapper's argument naming the directory of shared alias links.
pub const ALIASES_ARG: &str = "--aliases";

/// The wrapper's usage line.
pub const USAGE: &str = "usage: cox __step STEP_DIR [--artifacts DIR] [--repository FILE] [--unpack-limits ENTRIES,ENTRY_BYTES,TOTAL_BYTES] [--aliases DIR] < STEP_INPUT_JSON";

impl WrapperArgs {
    /// Parses `STEP_DIR [--artifacts DIR] [--repository FILE] [--unpack-limits L]
    /// [--aliases DIR]` (at least one of the first two).
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let (mut step_dir, mut artifacts, mut repository) = (None, None, None);
        let (mut unpack_limits, mut aliases) = (None, None);
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .map(PathBuf::from)
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--artifacts" => artifacts = Some(value("--artifacts")?),
                REPOSITORY_ARG => repository = Some(value(REPOSITORY_ARG)?),
                ALIASES_ARG => aliases = Some(value(ALIASES_ARG)?),
                "--unpack-limits" => {
                    let v = value("--unpack-limits")?;
                    unpack_limits = Some(UnpackLimits::parse(&v.to_string_lossy())?);
                }
                other if other.starts_with("--") => return Err(format!("unknown option {other}")),
                other if step_dir.is_none() => step_dir = Some(PathBuf::from(other)),
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        if artifacts.is_none() && repository.is_none() {
            return Err("give --artifacts DIR, --repository FILE or both".into());
        }
        Ok(WrapperArgs {
            step_dir: step_dir.ok_or("missing STEP_DIR")?,
            artifacts,
            repository,
            unpack_limits,
            aliases,
        })
    }
}

/// The single-threaded runtime of a per-step process (`who` names it in the message when it
/// cannot start).
pub(crate) fn step_runtime(who: &str) -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("{who}: cannot start: {e}"))
        .ok()
}

/// Entry point of `cox __step ARGS...`: runs the step and returns the process exit code
/// (the program's, or 1 when it did not run; 2 for bad arguments).
pub fn main(args: &[String]) -> i32 {
    let args = match WrapperArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cox-step: {e}\n{USAGE}");
            return 2;
        }
    };
    let Some(runtime) = crate::wrapper::step_runtime("cox-step") else {
        return 1;
    };
    runtime.block_on(async {
        let outcome = run(&args).await;
        let outcome_path = args.step_dir.join(OUTCOME_FILE);
        if let Err(e) = write_outcome(&outcome_path, &outcome) {
            eprintln!("cox-step: cannot write {}: {e}", outcome_path.display());
            return 1;
        }
        exit_code(&outcome)
    })
}

/// The wrapper's exit code for `outcome`: the program's, else 0 or 1.
fn exit_code(outcome: &StepOutcome) -> i32 {
    match (outcome.exit_code, outcome.phase) {
        (Some(code), _) => code,
        (None, StepPhase::Succeeded) => 0,
        (None, _) => 1,
    }
}

/// Writes `outcome` as JSON. Not through a temporary file: the executor reads it only
/// after the wrapper has exited, and a torn file (the wrapper killed while writing) does not
/// parse, which the executor reports as a wrapper that ended without an outcome.
pub fn write_outcome(path: &Path, outcome: &StepOutcome) -> std::io::Result<()> {
    std::fs::write(
        path,
        serde_json::to_vec(outcome).map_err(std::io::Error::other)?,
    )
}

/// Where the wrapper's own messages go: its stderr, prefixed `cox-step:` (a wrapper
/// process, whose stderr is the step log), or kept for the step log (the wrapper run by
/// the step's supervisor, see [`InProcess`]).
#[derive(Debug, Default)]
struct Diagnostics {
    kept: Option<Vec<String>>,
}

impl Diagnostics {
    fn kept() -> Self {
        Diagnostics {
            kept: Some(Vec::new()),
        }
    }

    fn say(&mut self, msg: impl std::fmt::Display) {
        match &mut self.kept {
            Some(lines) => lines.push(format!("cox-step: {msg}")),
            None => eprintln!("cox-step: {msg}"),
        }
    }

    /// An outcome of `Error` with `msg`, said.
    fn fail(&mut self, msg: String) -> StepOutcome {
        self.say(&msg);
        StepOutcome::error(msg)
    }

    fn take(&mut self) -> Vec<String> {
        self.kept.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// A step ready to run: its inputs placed, its program resolved.
struct Ready {
    spec: StepSpec,
    repo: ArtifactRepository,
    /// Artifacts' own buckets.
    stores: StepStores,
    argv: Vec<String>,
    /// `PATH` with the alias directory first, when the image has aliases.
    path: Option<String>,
}

/// What the program sees, for the wrapper preparing it.
struct Seen<'a> {
    /// The step directory as the program sees it.
    inner: &'a Path,
    /// Where this process writes the step directory (not `inner` only for a sandboxed step
    /// prepared by its supervisor).
    host: &'a Path,
    /// The step's `PATH`.
    path: &'a str,
    /// The `cox` binary as the program sees it.
    cox: &'a Path,
}

/// Stages 2 to 4 (see the module doc): places the inputs, writes the script and links the
/// aliases.
async fn prepare(
    args: &WrapperArgs,
    repo: Result<(ArtifactRepository, StepStores), String>,
    spec: StepSpec,
    table: &ImageTable,
    seen: Seen<'_>,
    diags: &mut Diagnostics,
) -> Result<Ready, StepOutcome> {
    let Seen {
        inner,
        host,
        path,
        cox,
    } = seen;
    let (repo, stores) = match repo {
        Ok((r, stores)) => {
            let r = skip_own_files(r, inner, args.artifacts.as_deref());
            let r = match args.unpack_limits {
                Some(limits) => {
                    let mut options = r.options().clone();
                    options.unpack_limits = limits;
                    r.with_options(options)
                }
                None => r,
            };
            (r, stores)
        }
        Err(e) => return Err(diags.fail(e)),
    };
    if let Err(e) = stage_inputs(&spec, &repo, &stores).await {
        return Err(diags.fail(e));
    }
    let mut resolved = match table.resolve(&spec.image, &spec.command, &spec.args, cox) {
        Ok(r) => r,
        Err(e) => return Err(diags.fail(e.to_string())),
    };
    if let Some(source) = &spec.script {
        let script = host.join(SCRIPT_FILE);
        if let Err(e) = std::fs::write(&script, source)
            .and_then(|()| std::fs::set_permissions(&script, PermissionsExt::from_mode(0o755)))
        {
            return Err(diags.fail(format!("cannot write script {}: {e}", script.display())));
        }
        resolved
            .argv
            .push(inner.join(SCRIPT_FILE).display().to_string());
    }
    let bin = match &args.aliases {
        Some(shared) => Bin::Shared(shared),
        None => Bin::Step { inner, host },
    };
    let path = match link_aliases(bin, &resolved.aliases, path, diags) {
        Ok(p) => p,
        Err(e) => return Err(diags.fail(e)),
    };
    Ok(Ready {
        spec,
        repo,
        stores,
        argv: resolved.argv,
        path,
    })
}

impl Ready {
    /// Stage 6: the outcome of the program's end (`Err`: it could not be started), with
    /// the output parameters and artifacts collected.
    async fn finish(
        self,
        status: Result<crate::exit::ExitStatus, String>,
        started: chrono::DateTime<chrono::Utc>,
        finished: chrono::DateTime<chrono::Utc>,
        diags: &mut Diagnostics,
    ) -> StepOutcome {
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                let mut o = diags.fail(format!("cannot run {:?}: {e}", self.argv[0]));
                o.started_at = Some(started.to_rfc3339());
                o.finished_at = Some(finished.to_rfc3339());
                return o;
            }
        };
        let mut outcome = StepOutcome {
            phase: if status.success() {
                StepPhase::Succeeded
            } else {
                StepPhase::Failed
            },
            exit_code: Some(status.container_code()),
            message: status.message().unwrap_or_default(),
            result: None,
            parameters: Vec::new(),
            artifacts: Vec::new(),
            started_at: Some(started.to_rfc3339()),
            finished_at: Some(finished.to_rfc3339()),
            cache_hit: false,
        };
        let mut problems = Vec::new();
        collect_parameters(&self.spec, &mut outcome, &mut problems);
        save_artifacts(
            &self.spec,
            &self.repo,
            &self.stores,
            &mut outcome,
            &mut problems,
        )
        .await;
        if !problems.is_empty() {
            for p in &problems {
                diags.say(p);
            }
            if outcome.phase == StepPhase::Succeeded {
                outcome.phase = StepPhase::Error;
                outcome.message = problems.join("; ");
            }
        }
        outcome
    }
}

/// Runs the step described by `args` and returns its outcome (not yet written).
pub async fn run(args: &WrapperArgs) -> StepOutcome {
    // The whole step gets SIGTERM on cancel; the wrapper outlives its program.
    let _term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let mut diags = Diagnostics::default();
    // First of all, so that the keys are gone before anything else can fail or run.
    let repo = open_repository(args.artifacts.as_deref(), args.repository.as_deref());
    let input: StepInput = match read_input() {
        Ok(i) => i,
        Err(e) => return diags.fail(format!("cannot read the step input on stdin: {e}")),
    };
    let cox = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cox"));
    let path = std::env::var("PATH").unwrap_or_else(|_| crate::spec::DEFAULT_PATH.into());
    let seen = Seen {
        inner: &args.step_dir,
        host: &args.step_dir,
        path: &path,
        cox: &cox,
    };
    let ready = match prepare(args, repo, input.spec, &input.images, seen, &mut diags).await {
        Ok(r) => r,
        Err(outcome) => return outcome,
    };
    let mut cmd = tokio::process::Command::new(&ready.argv[0]);
    cmd.args(&ready.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    if let Some(path) = &ready.path {
        cmd.env("PATH", path);
    }
    let started = chrono::Utc::now();
    let status = match cmd.spawn() {
        Ok(mut child) => child.wait().await,
        Err(e) => Err(e),
    };
    let finished = chrono::Utc::now();
    let status = status
        .map(crate::exit::ExitStatus::from)
        .map_err(|e| e.to_string());
    ready.finish(status, started, finished, &mut diags).await
}

/// The wrapper run by a step's supervisor in its own process (`cox __supervise`), rather
/// than as a process of its own between the supervisor and the program: one `cox` start
/// per step instead of two. The supervisor runs the program itself, so its output is
/// logged and its result captured as the wrapper's would be; the wrapper's messages are
/// written to the step log as its stderr lines, as before.
///
/// Taken on: every step without the sandbox (paths are the host's, so the wrapper's work
/// is the same from the supervisor); sandboxed, a step with nothing to place or collect
/// inside the sandbox (no input or output artifacts, no output parameters) whose program
/// is found on the host: bubblewrap then runs the program directly. Any other sandboxed
/// step runs the wrapper inside the sandbox, as a process of its own.
#[derive(Debug)]
pub struct InProcess {
    args: WrapperArgs,
    input: StepInput,
    /// The step directory on the host (`args.step_dir` is as the program sees it).
    host: PathBuf,
    /// The `cox` binary as the program sees it.
    cox: PathBuf,
    /// The step's `PATH`.
    path: String,
}

impl InProcess {
    /// The wrapper launch of `process` (`cox __step ...`, its input on stdin), when the
    /// supervisor can run it itself (see the type's doc); `None` otherwise.
    pub fn from_process(process: &ProcessSpec) -> Option<InProcess> {
        let input: StepInput = serde_json::from_slice(process.stdin.as_deref()?).ok()?;
        InProcess::from_input(process, input)
    }

    /// [`InProcess::from_process`] with the step's `input` as given (what `process`'s
    /// standard input holds), rather than read back from it.
    pub fn from_input(process: &ProcessSpec, input: StepInput) -> Option<InProcess> {
        let [cox, sub, rest @ ..] = process.argv.as_slice() else {
            return None;
        };
        if sub != crate::executor::STEP_SUBCOMMAND {
            return None;
        }
        let args = WrapperArgs::parse(rest).ok()?;
        let path = crate::local::step_path(&process.env);
        let step = InProcess {
            args,
            input,
            host: process.step_dir.clone(),
            cox: PathBuf::from(cox),
            path,
        };
        (!process.sandbox || step.runs_directly(process)).then_some(step)
    }

    /// Whether the step has files to place or collect (input and output artifacts, output
    /// parameters): the wrapper's work that a step host leaves to a supervisor of the step's
    /// own, as it runs in the step's working directory ([`crate::host`]).
    pub fn stages_files(&self) -> bool {
        let spec = &self.input.spec;
        !(spec.input_artifacts.is_empty()
            && spec.output_parameters.is_empty()
            && spec.output_artifacts.is_empty())
    }

    /// Sandboxed: nothing to do inside the sandbox, and the program is on the host, where
    /// bubblewrap finds it (a program it cannot find is the wrapper's to report).
    fn runs_directly(&self, process: &ProcessSpec) -> bool {
        let spec = &self.input.spec;
        if self.stages_files() || !process.open_dirs.is_empty() {
            return false;
        }
        let Ok(resolved) =
            self.input
                .images
                .resolve(&spec.image, &spec.command, &spec.args, &self.cox)
        else {
            return false;
        };
        let program = &resolved.argv[0];
        let ours = Path::new(program) == self.cox;
        let on_host = |candidate: &Path| {
            // What the sandbox shows there is the host's: not its own /tmp, nor a mount.
            candidate.is_absolute()
                && !candidate.starts_with("/tmp")
                && !process
                    .mounts
                    .iter()
                    .any(|m| candidate.starts_with(m.target()))
                && crate::local::is_executable(candidate)
        };
        if ours || program.contains('/') {
            return ours || on_host(Path::new(program));
        }
        let program = match resolved.aliases.get(program) {
            Some(target) if target.contains('/') => return on_host(Path::new(target)),
            Some(target) => target,
            None => program,
        };
        crate::local::find_program(program, self.path.as_ref()).is_some_and(|p| on_host(&p))
    }

    /// Runs the step: the wrapper's work before and after the program, the program with
    /// `run_program` (given the process to launch: `process` with the program's argv and
    /// environment). Returns how the program ended (a made-up exit code 1 when it did not
    /// run) and the step's outcome; the wrapper's messages are in the log. When `stop`
    /// fires while inputs are placed or outputs saved, that work is abandoned (as the
    /// wrapper process would be killed) and the outcome is an `Error`; the caller stops the
    /// program itself.
    pub async fn run<F>(
        self,
        process: ProcessSpec,
        stop: &tokio_util::sync::CancellationToken,
        run_program: F,
    ) -> Result<(Exit, StepOutcome), String>
    where
        F: AsyncFnOnce(ProcessSpec) -> crate::Result<Exit>,
    {
        let self_stages_files = self.stages_files();
        let InProcess {
            args,
            input,
            host,
            cox,
            path,
        } = self;
        let log = process.log_path();
        let mut diags = Diagnostics::kept();
        let on_host = |p: &Path| match p.strip_prefix(&args.step_dir) {
            Ok(rel) => host.join(rel),
            Err(_) => p.to_path_buf(),
        };
        // As the wrapper process did: in the working directory (without the sandbox), where
        // relative paths of files to place or collect are. Not otherwise: a step host runs
        // many steps in one process.
        if !process.sandbox && self_stages_files {
            // (Otherwise made as the program is started.)
            let work = process.host_workdir();
            crate::local::prepare_workdir(&process).map_err(|e| e.to_string())?;
            std::env::set_current_dir(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        }
        let repo = open_repository(
            args.artifacts.as_deref(),
            args.repository.as_deref().map(on_host).as_deref(),
        );
        let started = chrono::Utc::now();
        let seen = Seen {
            inner: &args.step_dir,
            host: &host,
            path: &path,
            cox: &cox,
        };
        let ready = tokio::select! {
            ready = prepare(&args, repo, input.spec, &input.images, seen, &mut diags) => ready,
            () = stop.cancelled() => Err(StepOutcome::error(STOPPED_WHILE_PLACING)),
        };
        let said = diags.take();
        crate::logs::append_lines(&log, crate::logs::Stream::Stderr, &said)
            .map_err(|e| e.to_string())?;
        let ready = match ready {
            Ok(r) => r,
            Err(outcome) => {
                let exit = Exit {
                    status: crate::exit::ExitStatus {
                        code: Some(exit_code(&outcome)),
                        signal: None,
                    },
                    started,
                    finished: chrono::Utc::now(),
                    result: String::new(),
                    result_truncated: false,
                    cancelled: false,
                };
                return Ok((exit, outcome));
            }
        };
        let mut program = ProcessSpec {
            argv: ready.argv.clone(),
            stdin: None,
            ..process
        };
        if let Some(path) = &ready.path {
            program.env.push(("PATH".into(), path.clone()));
        }
        if program.sandbox {
            // Of the wrapper's mounts, only those the program uses: each bind costs
            // bubblewrap a pass over the mount table. (Aliases are in the step directory
            // unless they are shared.)
            let step_aliases = ready.path.is_some() && args.aliases.is_none();
            let needs_step = step_aliases || ready.spec.script.is_some();
            let needs_cox = ready.argv.iter().any(|a| Path::new(a) == cox);
            let artifacts = args.artifacts.as_deref();
            program.mounts.retain(|mount| match mount {
                Mount::Bind { host, target, .. } => {
                    let unused = (target == &args.step_dir && !needs_step)
                        || (target == &cox && !needs_cox)
                        || (artifacts == Some(target.as_path()) && host == target);
                    !unused
                }
                Mount::Tmpfs { .. } => true,
            });
        }
        let (exit, status) = match run_program(program).await {
            Ok(exit) => {
                let status = Ok(exit.status);
                (exit, status)
            }
            Err(crate::Error::Spawn { source, .. }) => {
                let now = chrono::Utc::now();
                let exit = Exit {
                    status: crate::exit::ExitStatus {
                        code: Some(1),
                        signal: None,
                    },
                    started: now,
                    finished: now,
                    result: String::new(),
                    result_truncated: false,
                    cancelled: false,
                };
                (exit, Err(source.to_string()))
            }
            Err(e) => return Err(e.to_string()),
        };
        let outcome = tokio::select! {
            outcome = ready.finish(status, exit.started, exit.finished, &mut diags) => outcome,
            () = stop.cancelled() => {
                let mut o = StepOutcome::error(STOPPED_WHILE_SAVING);
                o.exit_code = Some(exit.status.container_code());
                o
            }
        };
        crate::logs::append_lines(&log, crate::logs::Stream::Stderr, &diags.take())
            .map_err(|e| e.to_string())?;
        Ok((exit, outcome))
    }
}

/// The [`StepInput`] on standard input, read to its end.
fn read_input() -> Result<StepInput, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// The run's repository (the bucket of the keys file `repository`, else the local
/// directory `artifacts`) and the artifacts' own buckets; the keys file is read, then
/// deleted.
fn open_repository(
    artifacts: Option<&Path>,
    repository: Option<&Path>,
) -> Result<(ArtifactRepository, StepStores), String> {
    let mut stores = match repository {
        Some(file) => StepStores::take_private(file)?,
        None => StepStores::default(),
    };
    if let Some(s3) = stores.repository.take() {
        let repo = s3
            .open()
            .map_err(|e| format!("cannot open artifact repository s3://{}: {e}", s3.bucket))?;
        return Ok((repo, stores));
    }
    let dir = artifacts.unwrap_or(Path::new("."));
    let repo = local_repository(dir)
        .map_err(|e| format!("cannot open artifact repository {}: {e}", dir.display()))?;
    Ok((repo, stores))
}

/// The local repository in `dir`, opened once per process while `dir` is there (a step host
/// runs many steps on one repository; opening it creates and resolves its directory). A
/// relative `dir` is opened each time: it depends on the working directory.
fn local_repository(dir: &Path) -> cox_artifacts::Result<ArtifactRepository> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex, PoisonError};
    static OPENED: LazyLock<Mutex<HashMap<PathBuf, ArtifactRepository>>> =
        LazyLock::new(Mutex::default);
    if !dir.is_absolute() {
        return ArtifactRepository::local(dir);
    }
    let opened = OPENED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(dir)
        .cloned();
    if let Some(repo) = opened
        && dir.is_dir()
    {
        return Ok(repo);
    }
    let repo = ArtifactRepository::local(dir)?;
    let mut opened = OPENED.lock().unwrap_or_else(PoisonError::into_inner);
    if opened.len() >= 64 {
        opened.clear();
    }
    opened.insert(dir.to_path_buf(), repo.clone());
    Ok(repo)
}

/// The repository an artifact is in: its own bucket, else the run's.
fn artifact_repository(
    repo: &ArtifactRepository,
    stores: &StepStores,
    store: &crate::step::ArtifactStore,
) -> Result<ArtifactRepository, String> {
    let Some(location) = store else {
        return Ok(repo.clone());
    };
    let s3 = stores
        .artifact_store(location)
        .ok_or("its bucket was not passed to the step")?;
    let own = s3
        .open()
        .map_err(|e| format!("cannot open s3://{}: {e}", s3.bucket))?;
    Ok(own.with_options(repo.options().clone()))
}

/// A saved directory (a step saving its `/tmp`) never takes the wrapper's own files: the
/// step directory and, sandboxed, the `/tmp/.cox` that holds it and the `cox` binary, nor
/// the local repository's directory (mounted at its host path, often under `/tmp`).
fn skip_own_files(
    repo: ArtifactRepository,
    step_dir: &Path,
    repository_dir: Option<&Path>,
) -> ArtifactRepository {
    let step_dir = std::path::absolute(step_dir).unwrap_or_else(|_| step_dir.to_path_buf());
    let mut options = repo.options().clone();
    if let Some(dir) = repository_dir {
        options
            .skip
            .push(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
    }
    if let Some(parent) = step_dir
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == ".cox"))
    {
        options.skip.push(parent.to_path_buf());
    }
    options.skip.push(step_dir);
    repo.with_options(options)
}

fn archive_of(kind: ArchiveKind) -> Archive {
    match kind {
        ArchiveKind::TarGz => Archive::default(),
        ArchiveKind::None => Archive::None,
        ArchiveKind::Zip => Archive::Zip,
    }
}

async fn stage_inputs(
    spec: &StepSpec,
    repo: &ArtifactRepository,
    stores: &StepStores,
) -> Result<(), String> {
    for input in &spec.input_artifacts {
        let path = Path::new(&input.path);
        let what = |e: &dyn std::fmt::Display| {
            format!("input artifact {:?} at {}: {e}", input.name, input.path)
        };
        if matches!(input.source, ArtifactSource::Absent) {
            continue;
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| what(&e))?;
        }
        let repo = artifact_repository(repo, stores, &input.store).map_err(|e| what(&e))?;
        match &input.sub_path {
            Some(sub) => place_sub_path(input, &repo, path, sub).await,
            None => place(input, &repo, path).await,
        }
        .map_err(|e| what(&e))?;
        if let Some(mode) = input.mode {
            set_mode(path, mode).map_err(|e| what(&e))?;
        }
    }
    Ok(())
}

/// Places `subPath` of the artifact: the whole artifact goes to a private directory next
/// to `path`, then the part asked for is moved to `path`.
async fn place_sub_path(
    input: &InputArtifact,
    repo: &ArtifactRepository,
    path: &Path,
    sub: &str,
) -> Result<(), String> {
    let rel = Path::new(sub.trim_start_matches("./"));
    if rel.as_os_str().is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!(
            "subPath {sub:?} must be a relative path without `..`"
        ));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".cox-subpath-")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a directory in {}: {e}", parent.display()))?;
    let whole = staging.path().join("artifact");
    place(input, repo, &whole).await?;
    if input.optional && std::fs::symlink_metadata(&whole).is_err() {
        return Ok(());
    }
    let part = whole.join(rel);
    std::fs::symlink_metadata(&part)
        .map_err(|_| format!("subPath {sub:?} is not in the artifact"))?;
    std::fs::rename(&part, path).map_err(|e| format!("cannot place subPath {sub:?}: {e}"))
}

/// Places the artifact's bytes at `path`.
async fn place(
    input: &InputArtifact,
    repo: &ArtifactRepository,
    path: &Path,
) -> Result<(), String> {
    match &input.source {
        ArtifactSource::Absent => Ok(()),
        ArtifactSource::Raw(text) => std::fs::write(path, text).map_err(|e| e.to_string()),
        // Argo: an optional input whose object is not found is skipped.
        ArtifactSource::Key(key) => match repo.load_detect(key, path).await {
            Err(cox_artifacts::Error::NotFound { .. }) if input.optional => Ok(()),
            loaded => loaded.map_err(|e| e.to_string()),
        },
        ArtifactSource::Stored {
            key,
            archive,
            size,
            sha256,
        } => {
            let expected = match (size, sha256) {
                (Some(size), Some(sha)) => Some(Expected::new(*size, sha.clone())),
                _ => None,
            };
            repo.load_path(key, path, archive_of(*archive), expected)
                .await
                .map_err(|e| e.to_string())
        }
        ArtifactSource::Http(url) => {
            // A query string may be a signature: kept out of messages (and so of status).
            let hide = |text: String| match url.split_once('?') {
                Some((_, query)) if !query.is_empty() => text.replace(query, "<query>"),
                _ => text,
            };
            let (site, key) = ArtifactRepository::http(url, &Default::default())
                .map_err(|e| hide(e.to_string()))?;
            let site = site.with_options(repo.options().clone());
            site.load_detect(&key, path)
                .await
                .map_err(|e| hide(format!("{url}: {e}")))
        }
    }
}

/// Sets `mode` on a file, or on a directory's files (directories stay traversable).
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            set_mode(&entry?.path(), mode)?;
        }
        Ok(())
    } else if meta.is_file() {
        std::fs::set_permissions(path, PermissionsExt::from_mode(mode))
    } else {
        Ok(())
    }
}

/// Where a step's alias links go.
enum Bin<'a> {
    /// `<step>/bin`: the step directory as the program sees it, and where it is written.
    Step { inner: &'a Path, host: &'a Path },
    /// A directory under this one named after the links, made once and shared by every
    /// step with the same links (a host path: steps without the sandbox).
    Shared(&'a Path),
}

/// Links each alias into the step's alias directory and returns the `PATH` (the step's
/// `path`) with it first (`None` without aliases).
fn link_aliases(
    bin: Bin<'_>,
    aliases: &BTreeMap<String, String>,
    path: &str,
    diags: &mut Diagnostics,
) -> Result<Option<String>, String> {
    if aliases.is_empty() {
        return Ok(None);
    }
    let mut links = Vec::with_capacity(aliases.len());
    for (name, program) in aliases {
        if name.is_empty() || name.contains('/') {
            return Err(format!("invalid alias name {name:?} in the image table"));
        }
        let target = if program.contains('/') {
            Some(PathBuf::from(program))
        } else {
            crate::local::find_program(program, path.as_ref())
        };
        match target {
            Some(target) => links.push((name.as_str(), target)),
            None => diags.say(format!(
                "alias {name} -> {program}: {program} not found on PATH; alias skipped"
            )),
        }
    }
    let seen = match bin {
        Bin::Step { inner, host } => {
            make_links(&host.join(BIN_DIR), &links)?;
            inner.join(BIN_DIR)
        }
        Bin::Shared(root) => shared_links(root, &links)?,
    };
    Ok(Some(format!("{}:{path}", seen.display())))
}

/// Creates `dir` with a symlink `name -> target` for each of `links`.
fn make_links(dir: &Path, links: &[(&str, PathBuf)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, target) in links {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link)
            .map_err(|e| format!("cannot link alias {}: {e}", link.display()))?;
    }
    Ok(())
}

/// The shared directory of `links` under `root`, `<root>/<digest of the links>`, made when
/// missing: filled under a name of its own, then renamed into place, so that a step never
/// sees it half made and two processes making it at once both end up using one.
fn shared_links(root: &Path, links: &[(&str, PathBuf)]) -> Result<PathBuf, String> {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for (name, target) in links {
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(target.as_os_str().as_encoded_bytes());
        digest.update([0]);
    }
    let name = cox_artifacts::to_hex(&digest.finalize()[..12]);
    let dir = root.join(name);
    if dir.is_dir() {
        return Ok(dir);
    }
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fresh = root.join(format!(".new-{}-{n}", std::process::id()));
    let made = make_links(&fresh, links).and_then(|()| {
        match std::fs::rename(&fresh, &dir) {
            Ok(()) => Ok(()),
            // Made meanwhile by another step: that one is used.
            Err(_) if dir.is_dir() => Ok(()),
            Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
        }
    });
    let _ = std::fs::remove_dir_all(&fresh);
    made.map(|()| dir)
}

/// Argo trims one trailing newline from a parameter file.
fn collect_parameters(spec: &StepSpec, outcome: &mut StepOutcome, problems: &mut Vec<String>) {
    for p in &spec.output_parameters {
        match std::fs::read(&p.path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                outcome.parameters.push((p.name.clone(), text.to_string()));
            }
            Err(e) => match &p.default {
                Some(default) => outcome.parameters.push((p.name.clone(), default.clone())),
                None => problems.push(open_error(&p.path, &e)),
            },
        }
    }
}

/// Go's wording for a failed open, as Argo reports it.
fn open_error(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("open {path}: no such file or directory"),
        std::io::ErrorKind::PermissionDenied => format!("open {path}: permission denied"),
        _ => format!("open {path}: {e}"),
    }
}

async fn save_artifacts(
    spec: &StepSpec,
    repo: &ArtifactRepository,
    stores: &StepStores,
    outcome: &mut StepOutcome,
    problems: &mut Vec<String>,
) {
    for a in &spec.output_artifacts {
        if let Err(e) = std::fs::metadata(&a.path) {
            if !a.optional {
                problems.push(format!(
                    "output artifact {:?}: {}",
                    a.name,
                    open_error(&a.path, &e)
                ));
            }
            continue;
        }
        let repo = match artifact_repository(repo, stores, &a.store) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("cannot save output artifact {:?}: {e}", a.name));
                continue;
            }
        };
        match repo
            .save_path(Path::new(&a.path), &a.key, archive_of(a.archive))
            .await
        {
            Ok(saved) => outcome.artifacts.push(SavedArtifact {
                name: a.name.clone(),
                path: a.path.clone(),
                key: saved.key,
                archive: a.archive,
                size: saved.size,
                sha256: saved.sha256,
                store: a.store.clone(),
            }),
            Err(e) => problems.push(format!("cannot save output artifact {:?}: {e}", a.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_with_the_same_aliases_share_one_directory_made_once() {
        let root = tempfile::tempdir().expect("tempdir");
        let sh = [("sh", PathBuf::from("/usr/bin/busybox"))];
        let first = shared_links(root.path(), &sh).expect("made");
        assert_eq!(
            std::fs::read_link(first.join("sh")).ok(),
            Some(PathBuf::from("/usr/bin/busybox"))
        );
        assert_eq!(shared_links(root.path(), &sh).ok(), Some(first.clone()));
        // Other links, another directory; the first is left as it was.
        let other = shared_links(root.path(), &[("sh", PathBuf::from("/bin/dash"))]).unwrap();
        assert_ne!(other, first);
        assert_eq!(
            std::fs::read_link(first.join("sh")).ok(),
            Some(PathBuf::from("/usr/bin/busybox"))
        );
        // Made by several at once: one directory, whole, and nothing else left behind.
        let many = [
            ("python", PathBuf::from("/usr/bin/python3")),
            ("sh", PathBuf::from("/usr/bin/busybox")),
        ];
        let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
            let made: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| shared_links(root.path(), &many).expect("made")))
                .collect();
            made.into_iter()
                .map(|t| t.join().expect("thread"))
                .collect()
        });
        assert!(dirs.iter().all(|d| *d == dirs[0]), "{dirs:?}");
        let mut names: Vec<_> = std::fs::read_dir(&dirs[0])
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["python", "sh"]);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 3);
    }

    #[test]
    fn parses_arguments() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = WrapperArgs::parse(&s(&["/s", "--artifacts", "/a"])).unwrap();
        assert_eq!(a.step_dir, PathBuf::from("/s"));
        assert_eq!(a.artifacts, Some(PathBuf::from("/a")));
        assert!(WrapperArgs::parse(&s(&["/s"])).is_err());
        assert!(WrapperArgs::parse(&s(&["x", "--artifacts"])).is_err());
        assert!(WrapperArgs::parse(&s(&["x", "--bogus", "y"])).is_err());
        let a = WrapperArgs::parse(&s(&["/s", "--repository", "/s/r.json"])).unwrap();
        assert_eq!(a.repository, Some(PathBuf::from("/s/r.json")));
        assert_eq!(a.artifacts, None);
        // A local run repository with artifacts' own buckets: both.
        let a = WrapperArgs::parse(&s(&["x", "--artifacts", "/a", "--repository", "/r"])).unwrap();
        assert_eq!(
            (a.artifacts, a.repository),
            (Some(PathBuf::from("/a")), Some(PathBuf::from("/r")))
        );
        assert_eq!(a.aliases, None);
        let a = WrapperArgs::parse(&s(&["x", "--artifacts", "/a", "--aliases", "/h/al"])).unwrap();
        assert_eq!(a.aliases, Some(PathBuf::from("/h/al")));
    }
}
