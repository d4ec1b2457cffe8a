//! Hidden, internal subcommands of `cox`, dispatched before clap parses the command line
//! so that their arguments arrive byte for byte (an argosay message may well be `--help`):
//!
//! - `cox __step STEP_DIR --artifacts DIR` (the step on stdin): the in-step wrapper that runs
//!   inside every local step (see `cox_worker::wrapper`);
//! - `cox __supervise STEP_DIR GRACE_MS`: a local step's supervisor, which outlives the
//!   scheduler and records how the step ended (see `cox_worker::local::Detached`);
//! - `cox __host` (requests on stdin): the step host, which supervises many steps of one
//!   `cox run` or `cox server` and outlives it (see `cox_worker::host`);
//! - `cox argosay ARGS...`: the builtin stand-in for the `argoproj/argosay:v2` image (see
//!   `cox_worker::argosay`), which the image table maps that image to.
//!
//! None is listed in `cox --help`; all are for `cox` itself to run.

use std::process::ExitCode;

/// Runs a hidden subcommand when the first argument names one; `None` otherwise.
pub fn dispatch() -> Option<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some(cox_worker::executor::STEP_SUBCOMMAND) => cox_worker::wrapper::main(&args[1..]),
        Some(cox_worker::local::SUPERVISE_SUBCOMMAND) => {
            cox_worker::local::supervise_main(&args[1..])
        }
        Some(cox_worker::host::HOST_SUBCOMMAND) => cox_worker::host::host_main(&args[1..]),
        Some("argosay") => cox_worker::argosay::main(&args[1..]),
        _ => return None,
    };
    // Exit codes outside 0..=255 (a negative or huge `exit N`) wrap as a shell's would.
    Some(ExitCode::from(code.rem_euclid(256) as u8))
}
