//! Test-only stand-in for the `cox` binary: the step supervisor (`__supervise`), the step host (`__host`), the in-step
//! wrapper (`__step`) and `argosay`, so that worker's own tests run real steps. Not installed
//! for users; `cox` has the same hidden subcommands.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some(cox_worker::local::SUPERVISE_SUBCOMMAND) => {
            cox_worker::local::supervise_main(&args[1..])
        }
        Some(cox_worker::host::HOST_SUBCOMMAND) => cox_worker::host::host_main(&args[1..]),
        Some("__step") => cox_worker::wrapper::main(&args[1..]),
        Some("argosay") => cox_worker::argosay::main(&args[1..]),
        _ => {
            eprintln!(
                "usage: cox-step-test (__supervise STEP_DIR GRACE_MS | __host | __step STEP_DIR --artifacts DIR | argosay ARGS...)"
            );
            2
        }
    };
    std::process::exit(code);
}
