//! `cox lint` error classes: every fixture in `tests/fixtures/lint/` run through the real
//! binary, asserting the complete lines a user sees and the exit code.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const DIR: &str = "tests/fixtures/lint";

/// Run `cox` from the package root (so printed paths are the relative fixture paths).
fn cox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cox"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("run cox")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn fixture(name: &str) -> String {
    let path = format!("{DIR}/{name}");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(&path).exists(),
        "missing fixture {path}"
    );
    path
}

/// Lint `args`, expect exactly `lines` then the summary, and the matching exit code.
fn expect_lines(args: &[&str], lines: &[String]) {
    let out = cox(&["lint"].iter().chain(args).copied().collect::<Vec<_>>());
    let mut expected: Vec<String> = lines.to_vec();
    expected.push(match lines.len() {
        0 => "✔ no linting errors found!".to_string(),
        1 => "✖ 1 linting error found!".to_string(),
        n => format!("✖ {n} linting errors found!"),
    });
    let got = stdout(&out);
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got, expected, "cox lint {args:?}");
    let code = if lines.is_empty() { 0 } else { 1 };
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code of cox lint {args:?}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One fixture with one or more errors; `{f}` in each line stands for the fixture's path.
fn expect_fixture(file: &str, lines: &[&str]) {
    let path = fixture(file);
    let lines: Vec<String> = lines.iter().map(|l| l.replace("{f}", &path)).collect();
    expect_lines(&[path.as_str()], &lines);
}

fn lint_json(args: &[&str]) -> (serde_json::Value, Option<i32>) {
    let mut all = vec!["lint", "-o", "json"];
    all.extend_from_slice(args);
    let out = cox(&all);
    let json = serde_json::from_str(&stdout(&out)).expect("json output");
    (json, out.status.code())
}

/// Every single-error fixture: (file stem, expected lines).
const SINGLE: &[(&str, &[&str])] = &[
    (
        "active_deadline_on_steps",
        &[
            "{f}:9:7: spec.templates[0].activeDeadlineSeconds: activeDeadlineSeconds is only valid for leaf templates",
        ],
    ),
    (
        "alias_bomb",
        &["{f}:10:33: document is too large to read safely (aliases expand too far)"],
    ),
    (
        "argument_not_in_enum",
        &[
            "{f}:10:13: spec.templates[0].steps[0][0]: value 'purple' of inputs.parameters.colour is not in its enum: red, green",
        ],
    ),
    (
        "dag_dependency_undefined",
        &["{f}:15:28: spec.templates[0].dag.tasks[1].dependencies[0]: dependency 'c' not defined"],
    ),
    (
        "deeply_nested",
        &["{f}:7:269: document is nested too deeply to read safely"],
    ),
    (
        "dependency_cycle",
        &["{f}:11:13: spec.templates[0].dag.tasks[0]: dependency cycle detected: a -> c -> b -> a"],
    ),
    (
        "depends_and_dependencies",
        &[
            "{f}:16:13: spec.templates[0].dag.tasks[1].dependencies: cannot use both 'depends' and 'dependencies' in the same DAG template",
        ],
    ),
    (
        "depends_malformed",
        &[
            "{f}:15:13: spec.templates[0].dag.tasks[1].depends: invalid depends expression 'a && (a.Succeeded' at position 17: expected '&&', '||' or ')', found end of expression",
        ],
    ),
    (
        "depends_unknown_task",
        &["{f}:15:13: spec.templates[0].dag.tasks[1].depends: dependency 'nope' not defined"],
    ),
    ("duplicate_key", &["{f}:11:9: duplicate key 'image'"]),
    (
        "entrypoint_missing",
        &["{f}:6:3: spec.entrypoint: spec.entrypoint is required"],
    ),
    (
        "entrypoint_undefined",
        &["{f}:6:3: spec.entrypoint: template name 'mian' undefined (did you mean 'main'?)"],
    ),
    (
        "malformed_bad_indentation",
        &["{f}:11:8: while parsing a block mapping, did not find expected key"],
    ),
    (
        "malformed_expression",
        &[
            "{f}:11:16: spec.templates[0].container.args[0]: invalid expression ' 1 + ': line 1, column 6: expected conditional_if, negation_op, sign_op, value, array, map, or ident",
        ],
    ),
    (
        "malformed_unclosed_bracket",
        &["{f}:11:18: unclosed bracket '['"],
    ),
    ("missing_kind", &["{f}:1:1: missing required field 'kind'"]),
    (
        "missing_required_field",
        &["{f}:10:9: spec.templates[0].container.image: container.image may not be empty"],
    ),
    (
        "missing_required_name",
        &["{f}:11:13: spec.templates[0].inputs.parameters[0].name: name is required"],
    ),
    (
        "memoize_key_annotation_unknown",
        &[
            "{f}:11:11: spec.templates[0].metadata.annotations.coxswain.io/memoize-key: unknown value 'always' (the one value is 'auto')",
        ],
    ),
    (
        "misspelt_kind",
        &["{f}:2:7: kind: unknown kind 'Workflw' (did you mean 'Workflow'?)"],
    ),
    (
        "multiple_template_types",
        &[
            "{f}:8:7: spec.templates[0]: multiple template types specified (container, script). choose one of: container, containerSet, steps, script, resource, dag, suspend, data, http, plugin",
        ],
    ),
    (
        "no_template_type",
        &[
            "{f}:8:7: spec.templates[0]: template type unspecified. choose one of: container, containerSet, steps, script, resource, dag, suspend, data, http, plugin",
        ],
    ),
    (
        "output_parameter_without_value",
        &[
            "{f}:13:13: spec.templates[0].outputs.parameters[0]: outputs.parameters.result does not have valueFrom or value specified",
        ],
    ),
    (
        "parallelism_on_container",
        &[
            "{f}:9:7: spec.templates[0].parallelism: parallelism is only valid for steps and dag templates",
        ],
    ),
    (
        "required_input_not_supplied",
        &["{f}:10:13: spec.templates[0].steps[0][0]: inputs.parameters.text was not supplied"],
    ),
    (
        "retry_backoff_duration_invalid",
        &[
            "{f}:12:11: spec.templates[0].retryStrategy.backoff.duration: invalid duration 'five seconds': expected a number of seconds or a duration such as 90s, 5m or 1h30m",
        ],
    ),
    (
        "retry_policy_invalid",
        &[
            "{f}:11:9: spec.templates[0].retryStrategy.retryPolicy: OnFailur is not a valid RetryPolicy (did you mean 'OnFailure'?)",
        ],
    ),
    (
        "step_template_undefined",
        &[
            "{f}:11:13: spec.templates[0].steps[0][0].template: template name 'wrok' undefined (did you mean 'work'?)",
        ],
    ),
    (
        "suspend_duration_invalid",
        &[
            "{f}:10:9: spec.templates[0].suspend.duration: invalid duration '10 minutes': expected a number of seconds or a duration such as 90s, 5m or 1h30m",
        ],
    ),
    (
        "task_status_non_descendant",
        &[
            "{f}:18:19: spec.templates[0].dag.tasks[1].arguments.parameters[0].value: failed to resolve {{tasks.a.status}}",
        ],
    ),
    (
        "task_template_undefined",
        &[
            "{f}:12:13: spec.templates[0].dag.tasks[0].template: template name 'nothing-like-it' undefined",
        ],
    ),
    (
        "template_name_invalid",
        &[
            "{f}:12:7: spec.templates[1].name: 'Bad_Name' is invalid: name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric character (e.g. My-name1-2, 123-NAME)",
        ],
    ),
    (
        "template_name_not_unique",
        &["{f}:11:7: spec.templates[1].name: template name 'main' is not unique"],
    ),
    (
        "timeout_bare_integer",
        &["{f}:9:16: spec.templates[0].timeout: expected a string, found an integer"],
    ),
    (
        "unknown_field_container",
        &[
            "{f}:11:9: spec.templates[0].container.commands: unknown field 'commands' (did you mean 'command'?)",
        ],
    ),
    (
        "unknown_field_dag_task",
        &[
            "{f}:13:13: spec.templates[0].dag.tasks[0].dependencis: unknown field 'dependencis' (did you mean 'dependencies'?)",
        ],
    ),
    (
        "unknown_field_hint",
        &[
            "{f}:7:3: spec.serviceAccount: unknown field 'serviceAccount' (did you mean 'serviceAccountName'?)",
        ],
    ),
    (
        "unknown_field_no_hint",
        &["{f}:7:3: spec.frobnicate: unknown field 'frobnicate'"],
    ),
    (
        "unresolved_input_parameter",
        &[
            "{f}:11:16: spec.templates[0].container.args[0]: failed to resolve {{inputs.parameters.x}}",
        ],
    ),
    (
        "unresolved_step_output",
        &[
            "{f}:17:19: spec.templates[0].steps[1][0].arguments.parameters[0].value: failed to resolve {{steps.nope.outputs.result}}",
        ],
    ),
    (
        "unresolved_task_output_parameter",
        &[
            "{f}:19:19: spec.templates[0].dag.tasks[1].arguments.parameters[0].value: failed to resolve {{tasks.x.outputs.parameters.y}}",
        ],
    ),
    (
        "with_items_and_with_param",
        &[
            "{f}:10:13: spec.templates[0].steps[0][0]: only one of withItems, withParam, withSequence can be specified",
        ],
    ),
    (
        "with_sequence_count_and_end",
        &[
            "{f}:12:13: spec.templates[0].steps[0][0].withSequence: only one of count or end can be defined in withSequence",
        ],
    ),
    (
        "wrong_api_version",
        &[
            "{f}:1:1: apiVersion: apiVersion 'argoproj.io/v1' is not supported for kind Workflow; use 'argoproj.io/v1alpha1'",
        ],
    ),
    (
        "wrong_type_integer_got_string",
        &["{f}:7:16: spec.parallelism: expected an integer, found the string \"lots\""],
    ),
    (
        "wrong_type_string_got_list",
        &["{f}:10:16: spec.templates[0].container.image: expected a string, found a list"],
    ),
];

#[test]
fn each_error_class_prints_the_exact_message() {
    // Check every case and report all that differ, not only the first.
    let failed: Vec<String> = SINGLE
        .iter()
        .filter_map(|(stem, lines)| {
            std::panic::catch_unwind(|| expect_fixture(&format!("{stem}.yaml"), lines))
                .err()
                .map(|_| stem.to_string())
        })
        .collect();
    assert!(failed.is_empty(), "cases that failed: {failed:?}");
}

#[test]
fn every_error_fixture_is_covered() {
    // A fixture added to the directory without a case here would silently test nothing.
    let mut known: Vec<String> = SINGLE.iter().map(|(s, _)| format!("{s}.yaml")).collect();
    known.extend(
        [
            "cron_invalid.yaml",
            "several_errors.yaml",
            "several_documents_errors.yaml",
            "several_unknown_fields.yaml",
            "valid_steps.yaml",
            "valid_dag.yaml",
            "valid_multi.yaml",
            "valid_workflow.json",
        ]
        .map(String::from),
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let entry = entry.expect("entry");
        if entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        assert!(known.contains(&name), "fixture {name} has no test case");
    }
}

#[test]
fn valid_files_lint_clean() {
    for file in [
        "valid_steps.yaml",
        "valid_dag.yaml",
        "valid_multi.yaml",
        "valid_workflow.json",
    ] {
        expect_lines(&[fixture(file).as_str()], &[]);
    }
}

#[test]
fn valid_multi_document_file_counts_every_object() {
    let (json, code) = lint_json(&[&fixture("valid_multi.yaml")]);
    assert_eq!(code, Some(0));
    assert_eq!(json["files"], 1);
    assert_eq!(json["objects"], 3);
    assert_eq!(json["errors"], 0);
    assert_eq!(json["diagnostics"], serde_json::json!([]));
}

#[test]
fn cron_workflow_schedule_time_zone_and_concurrency_policy() {
    expect_fixture(
        "cron_invalid.yaml",
        &[
            "{f}:6:3: spec.schedule: cron schedule '61 * * * *' is malformed: component error: Number out of bounds",
            "{f}:7:3: spec.timezone: unknown time zone 'Mars/Olympus'",
            "{f}:8:3: spec.concurrencyPolicy: 'Forbidden' is not a valid concurrencyPolicy",
        ],
    );
}

#[test]
fn several_errors_in_one_file_are_all_reported() {
    expect_fixture(
        "several_errors.yaml",
        &[
            "{f}:6:3: spec.entrypoint: template name 'start' undefined",
            "{f}:11:13: spec.templates[0].steps[0][0].template: template name 'missing' undefined",
            "{f}:16:16: spec.templates[1].container.args[0]: failed to resolve {{inputs.parameters.nope}}",
            "{f}:17:7: spec.templates[2].name: template name 'main' is not unique",
        ],
    );
}

#[test]
fn every_unknown_field_is_reported_not_only_the_first() {
    // Unknown fields are skipped so typing goes on; the first hard type error ends it.
    expect_fixture(
        "several_unknown_fields.yaml",
        &[
            "{f}:5:3: metadata.labelz: unknown field 'labelz' (did you mean 'labels'?)",
            "{f}:8:3: spec.serviceAccount: unknown field 'serviceAccount' (did you mean 'serviceAccountName'?)",
            "{f}:15:13: spec.templates[0].dag.tasks[0].dependencis: unknown field 'dependencis' (did you mean 'dependencies'?)",
            "{f}:19:9: spec.templates[1].container.commands: unknown field 'commands' (did you mean 'command'?)",
            "{f}:20:15: spec.templates[1].container.args: expected a list, found the string \"echo\"",
        ],
    );
}

#[test]
fn errors_in_several_documents_of_one_file_are_all_reported() {
    // Note: the typing error of the second document (found while loading) is printed before
    // the first document's validation errors; see `cox_config::lint::lint_loaded`.
    expect_fixture(
        "several_documents_errors.yaml",
        &[
            "{f}:6:3: spec.entrypoint: template name 'start' undefined",
            "{f}:11:7: spec.templates[1].name: template name 'main' is not unique",
            "{f}:24:9: spec.templates[0].container.imagePullPolicie: unknown field 'imagePullPolicie' (did you mean 'imagePullPolicy'?)",
        ],
    );
}

#[test]
fn several_files_in_one_call() {
    let a = fixture("unknown_field_no_hint.yaml");
    let b = fixture("valid_steps.yaml");
    let c = fixture("duplicate_key.yaml");
    expect_lines(
        &[&a, &b, &c],
        &[
            format!("{a}:7:3: spec.frobnicate: unknown field 'frobnicate'"),
            format!("{c}:11:9: duplicate key 'image'"),
        ],
    );
    let (json, code) = lint_json(&[&a, &b, &c]);
    assert_eq!(code, Some(1));
    assert_eq!(json["files"], 3);
    assert_eq!(json["errors"], 2);
}

#[test]
fn templates_are_resolved_across_files() {
    // A WorkflowTemplate in one file satisfies a templateRef in another.
    expect_lines(
        &[&fixture("valid_multi.yaml"), &fixture("valid_steps.yaml")],
        &[],
    );
}

#[test]
fn a_directory_is_searched_recursively_for_manifests() {
    // dir/notes.txt is not YAML: files found in a directory are only read by extension.
    let dir = fixture("dir");
    expect_lines(
        &[&dir],
        &[
            format!(
                "{dir}/a_bad.yaml:10:9: spec.templates[0].container.imagePullPolicie: unknown field 'imagePullPolicie' (did you mean 'imagePullPolicy'?)"
            ),
            format!(
                "{dir}/nested/c_bad.json:3:67: spec.templates[0].steps[0][0].template: template name 'gone' undefined"
            ),
        ],
    );
    let (json, _) = lint_json(&[&dir]);
    assert_eq!(json["files"], 3);
    assert_eq!(json["objects"], 2);
}

#[test]
fn stdin_is_read_for_dash() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture("entrypoint_undefined.yaml")),
    )
    .expect("read fixture");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cox"))
        .args(["lint", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cox");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        stdout(&out),
        "-:6:3: spec.entrypoint: template name 'mian' undefined (did you mean 'main'?)\n✖ 1 linting error found!\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let path = format!("{DIR}/does-not-exist.yaml");
    let out = cox(&["lint", &path]);
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{path}: cannot read")) && stderr.contains("No such file"),
        "stderr: {stderr}"
    );
}

#[test]
fn json_reports_location_path_and_hint() {
    let path = fixture("unknown_field_hint.yaml");
    let (json, code) = lint_json(&[&path]);
    assert_eq!(code, Some(1));
    assert_eq!(json["files"], 1);
    assert_eq!(json["errors"], 1);
    let d = &json["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["source"], path.as_str());
    assert_eq!(d["line"], 7);
    assert_eq!(d["column"], 3);
    assert_eq!(d["path"], "spec.serviceAccount");
    assert_eq!(d["object"], "Workflow t-");
    assert_eq!(d["message"], "unknown field 'serviceAccount'");
    assert_eq!(d["hint"], "did you mean 'serviceAccountName'?");
}

#[test]
fn json_deep_path_without_hint() {
    let (json, _) = lint_json(&[&fixture("task_template_undefined.yaml")]);
    let d = &json["diagnostics"][0];
    assert_eq!(d["line"], 12);
    assert_eq!(d["column"], 13);
    assert_eq!(d["path"], "spec.templates[0].dag.tasks[0].template");
    assert_eq!(d["message"], "template name 'nothing-like-it' undefined");
    assert!(d["hint"].is_null(), "{d}");

    let (json, _) = lint_json(&[&fixture("dependency_cycle.yaml")]);
    let d = &json["diagnostics"][0];
    assert_eq!(d["path"], "spec.templates[0].dag.tasks[0]");
    assert_eq!(d["message"], "dependency cycle detected: a -> c -> b -> a");
}

#[test]
fn json_syntax_error_has_location_and_empty_path() {
    let (json, code) = lint_json(&[&fixture("malformed_unclosed_bracket.yaml")]);
    assert_eq!(code, Some(1));
    assert_eq!(json["objects"], 0);
    let d = &json["diagnostics"][0];
    assert_eq!(d["line"], 11);
    assert_eq!(d["column"], 18);
    assert_eq!(d["path"], "");
    assert_eq!(d["message"], "unclosed bracket '['");
}
