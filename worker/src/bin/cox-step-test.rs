//! Test-only stand-in for the `cox` binary: the in-step wrapper (`__step`) and `argosay`,
//! so that worker's own tests run real steps. Not installed for users; `cox` has the same
//! two hidden subcommands.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("__step") => cox_worker::wrapper::main(&args[1..]),
        Some("argosay") => cox_worker::argosay::main(&args[1..]),
        _ => {
            eprintln!("usage: cox-step-test (__step STEP_DIR --artifacts DIR | argosay ARGS...)");
            2
        }
    };
    std::process::exit(code);
}
