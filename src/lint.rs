//! `cox lint PATH...`: read files and directories, report every problem, like `argo lint`.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use cox_config::lint::{LintInput, lint_sources};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct LintArgs {
    /// Files or directories (searched recursively for .yaml, .yml and .json files); `-` reads stdin.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Pretty)]
    output: Format,
    /// Also print warnings.
    #[arg(long)]
    warnings: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One line per problem, `file:line:column: path: message`, then a summary.
    Pretty,
    /// A JSON document with every diagnostic and the counts.
    Json,
}

pub fn run(args: &LintArgs) -> Result<ExitCode> {
    let mut inputs = Vec::new();
    for path in &args.paths {
        collect(path, true, &mut inputs)?;
    }
    let report = lint_sources(&inputs);
    let shown: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.is_error() || args.warnings)
        .collect();
    // A closed pipe (`cox lint ... | head`) ends the output quietly, like other Unix tools.
    if let Err(e) = print_report(args.output, inputs.len(), &report, &shown)
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    Ok(if report.error_count() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(
    format: Format,
    files: usize,
    report: &cox_config::lint::LintReport,
    shown: &[&cox_config::diag::Diagnostic],
) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "files": files,
                "objects": report.objects,
                "errors": report.error_count(),
                "warnings": report.warning_count(),
                "diagnostics": shown,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        }
        Format::Pretty => {
            for d in shown {
                writeln!(out, "{d}")?;
            }
            match report.error_count() {
                0 => writeln!(out, "✔ no linting errors found!")?,
                1 => writeln!(out, "✖ 1 linting error found!")?,
                n => writeln!(out, "✖ {n} linting errors found!")?,
            }
        }
    }
    out.flush()
}

/// Gather sources: a named file is always read; a directory contributes its YAML and JSON files.
fn collect(path: &Path, named: bool, inputs: &mut Vec<LintInput>) -> Result<()> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading stdin")?;
        inputs.push(LintInput {
            source: "-".into(),
            text,
        });
        return Ok(());
    }
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("{}: cannot list directory", path.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            collect(&entry.path(), false, inputs)?;
        }
        return Ok(());
    }
    let is_manifest = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    );
    if named || is_manifest {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("{}: not valid UTF-8 text", path.display()))?;
        inputs.push(LintInput {
            source: path.display().to_string(),
            text,
        });
    }
    Ok(())
}
