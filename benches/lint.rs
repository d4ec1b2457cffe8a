//! Benchmark: lint of a generated 10,000-task DAG with ~20,000 edges (target: under 1 s).
//!
//! Run with `cargo bench --bench lint`. Plain `main`, no harness: the workflow text is
//! generated in memory, then `load`, `lint` (validation of the loaded documents) and the two
//! together are each timed over several runs, and the minimum and median are printed.
//!
//! Options (after `--`): `--write PATH` also writes the generated workflow to PATH (to time
//! `cox lint PATH`); `--tasks N` changes the DAG size; `--runs N` changes the run count.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cox_config::lint::{LintInput, lint_loaded, lint_sources};
use cox_config::load::load;
use cox_config::validate::Registry;

/// Requirement from the issue: end-to-end lint of the 10,000-task DAG under one second.
const TARGET: Duration = Duration::from_secs(1);

/// The two earlier tasks task `i` (>= 2) depends on, chosen deterministically and distinct.
fn parents(i: usize) -> (usize, usize) {
    let a = i - 1;
    // A multiplicative hash spreads the second edge over the whole prefix (long edges).
    let b = (i.wrapping_mul(2_654_435_761) >> 7) % (i - 1);
    (a, b)
}

/// A Workflow whose DAG template has `n` tasks t0..t{n-1}; returns the text and edge count.
fn generate(n: usize) -> (String, usize) {
    let mut out = String::with_capacity(n * 160);
    out.push_str(
        "apiVersion: argoproj.io/v1alpha1\n\
         kind: Workflow\n\
         metadata:\n  generateName: big-dag-\n\
         spec:\n  entrypoint: main\n  templates:\n\
         \x20   - name: main\n      dag:\n        tasks:\n",
    );
    let mut edges = 0;
    for i in 0..n {
        out.push_str(&format!("          - name: t{i}\n"));
        let deps: Vec<usize> = match i {
            0 => vec![],
            1 => vec![0],
            _ => {
                let (a, b) = parents(i);
                vec![a, b]
            }
        };
        edges += deps.len();
        if !deps.is_empty() {
            let list: Vec<String> = deps.iter().map(|d| format!("t{d}")).collect();
            out.push_str(&format!(
                "            dependencies: [{}]\n",
                list.join(", ")
            ));
        }
        // Every tenth task with a dependency passes its parents' results on, so the
        // variable-reference check (`{{tasks.X.outputs.result}}`) is exercised.
        if i % 10 == 5 && deps.len() == 2 {
            out.push_str(&format!(
                "            template: join\n            arguments:\n              parameters:\n\
                 \x20               - name: left\n                  value: \"{{{{tasks.t{}.outputs.result}}}}\"\n\
                 \x20               - name: right\n                  value: \"{{{{tasks.t{}.outputs.result}}}}\"\n",
                deps[0], deps[1]
            ));
        } else {
            out.push_str("            template: work\n");
        }
    }
    out.push_str(
        "    - name: work\n      container:\n        image: alpine:3\n        command: [echo, ok]\n\
         \x20   - name: join\n      inputs:\n        parameters:\n          - name: left\n          - name: right\n\
         \x20     container:\n        image: alpine:3\n\
         \x20       command: [echo, \"{{inputs.parameters.left}}\", \"{{inputs.parameters.right}}\"]\n",
    );
    (out, edges)
}

/// Minimum and median of `runs` timings of `f`.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[0], samples[samples.len() / 2])
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let mut tasks = 10_000;
    let mut runs = 7;
    let mut write = None;
    // Cargo passes `--bench`; unknown flags are ignored.
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--write" => write = args.next(),
            "--tasks" => tasks = args.next().and_then(|v| v.parse().ok()).unwrap_or(tasks),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            _ => {}
        }
    }

    let gen_start = Instant::now();
    let (text, edges) = generate(tasks);
    let gen_time = gen_start.elapsed();
    if let Some(path) = &write {
        std::fs::write(path, &text).expect("write the generated workflow");
        println!("wrote {path}");
    }

    // Sanity: the generated workflow must be valid, or the benchmark measures error paths.
    let input = [LintInput {
        source: "big-dag.yaml".to_string(),
        text: text.clone(),
    }];
    let report = lint_sources(&input);
    let refs = text.matches("outputs.result").count();
    println!(
        "workflow: {tasks} tasks, {edges} edges, {refs} task-result references, {} bytes (generated in {:.1} ms)",
        text.len(),
        gen_time.as_secs_f64() * 1e3
    );
    println!(
        "lint: {} objects, {} errors, {} warnings",
        report.objects,
        report.error_count(),
        report.warning_count()
    );
    for d in report.diagnostics.iter().take(5) {
        println!("  {d:?}");
    }
    if report.objects != 1 || report.error_count() != 0 {
        eprintln!("generated workflow does not lint clean; fix the generator");
        std::process::exit(2);
    }

    println!("{runs} runs each:                 min          median");
    let (min, med) = time(runs, || load("big-dag.yaml", &text));
    println!("  load (parse + type)      {}   {}", ms(min), ms(med));
    let loaded = [load("big-dag.yaml", &text)];
    let mut registry = Registry::default();
    for doc in &loaded[0].documents {
        registry.add(&doc.manifest);
    }
    let (min, med) = time(runs, || lint_loaded(&loaded, &registry));
    println!("  lint (validate loaded)   {}   {}", ms(min), ms(med));
    let (min, e2e) = time(runs, || lint_sources(&input));
    println!("  end to end lint_sources  {}   {}", ms(min), ms(e2e));
    let verdict = if e2e < TARGET { "PASS" } else { "FAIL" };
    println!(
        "{verdict}: median end-to-end {:.1} ms against the {} ms target",
        e2e.as_secs_f64() * 1e3,
        TARGET.as_millis()
    );
}
