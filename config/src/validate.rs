//! Validation: what `argo lint` checks, with Argo's messages where Argo has one, every
//! problem reported (not only the first) and each one located in the source.
//!
//! The checks work on the typed model; paths are mapped back to lines and columns through
//! the document's located tree. Variable references are checked against a scope computed
//! the way Argo's validator computes it, without copying the scope per task, so that a DAG
//! of ten thousand tasks lints in well under a second.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::diag::{Diagnostic, Severity};
use crate::duration;
use crate::expr::depends;
use crate::load::Document;
use crate::location::FieldPath;
use crate::model::{
    Arguments, Artifact, DagTask, Manifest, Parameter, Template, TemplateKind, TemplateRef,
    WorkflowSpec, WorkflowStep,
};

/// Templates other documents may reference (`templateRef`, `workflowTemplateRef`).
#[derive(Debug, Default, Clone)]
pub struct Registry<'a> {
    namespaced: HashMap<String, &'a WorkflowSpec>,
    cluster: HashMap<String, &'a WorkflowSpec>,
    /// Whether the registry holds every template that exists (a server's store), so that a
    /// reference it cannot resolve is an error rather than something lint cannot check.
    pub complete: bool,
}

impl<'a> Registry<'a> {
    /// Add a WorkflowTemplate or ClusterWorkflowTemplate; other kinds are ignored.
    pub fn add(&mut self, manifest: &'a Manifest) {
        match manifest {
            Manifest::WorkflowTemplate(t) => {
                if let Some(name) = t.metadata.name.clone() {
                    self.namespaced.insert(name, &t.spec);
                }
            }
            Manifest::ClusterWorkflowTemplate(t) => {
                if let Some(name) = t.metadata.name.clone() {
                    self.cluster.insert(name, &t.spec);
                }
            }
            _ => {}
        }
    }

    /// The spec of a stored template.
    pub fn get(&self, name: &str, cluster_scope: bool) -> Option<&'a WorkflowSpec> {
        if cluster_scope {
            self.cluster.get(name).copied()
        } else {
            self.namespaced.get(name).copied()
        }
    }
}

/// Check one document; `source` names it in the diagnostics.
pub fn validate(source: &str, doc: &Document, registry: &Registry<'_>) -> Vec<Diagnostic> {
    let manifest = &doc.manifest;
    let spec_path = match manifest {
        Manifest::CronWorkflow(_) => FieldPath::root().field("spec").field("workflowSpec"),
        _ => FieldPath::root().field("spec"),
    };
    let mut checker = Checker {
        source,
        doc,
        registry,
        spec: manifest.workflow_spec(),
        spec_path,
        diagnostics: Vec::new(),
        object: manifest_label(manifest),
        templates: HashMap::new(),
        global_outputs: HashSet::new(),
        any_global_outputs: false,
    };
    checker.run();
    checker.diagnostics
}

fn manifest_label(manifest: &Manifest) -> String {
    let meta = manifest.metadata();
    let name = meta
        .name
        .as_deref()
        .or(meta.generate_name.as_deref())
        .unwrap_or("");
    if name.is_empty() {
        manifest.kind().to_string()
    } else {
        format!("{} {}", manifest.kind(), name)
    }
}

/// Prefixes of the variables Argo checks; other tags (`{{=expr}}`, custom ones) are left alone.
const CHECKED_PREFIXES: [&str; 7] = [
    "item",
    "steps.",
    "inputs.",
    "outputs.",
    "pod.",
    "workflow.",
    "tasks.",
];

const TEMPLATE_TYPES: &str =
    "container, containerSet, steps, script, resource, dag, suspend, data, http, plugin";

/// Argo's name rule for templates, steps and tasks.
fn field_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
    if name.len() > 128 {
        Some("must be no more than 128 characters".to_string())
    } else if !valid {
        Some("name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric character (e.g. My-name1-2, 123-NAME)".to_string())
    } else {
        None
    }
}

/// Argo's name rule for parameters and artifacts.
fn param_name_problem(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!valid).then(|| {
        "Parameter/Artifact name must consist of alpha-numeric characters, '_' or '-' e.g. my_param_1, MY-PARAM-1".to_string()
    })
}

/// Whether a value is (or contains) an Argo variable, so its final value is known only at run time.
fn has_variable(text: &str) -> bool {
    text.contains("{{")
}

/// What a step or task may read about another node: `steps.X.<suffix>`.
#[derive(Debug, Default, Clone)]
struct NodeOutputs {
    /// Allowed suffixes, such as `outputs.result` or `outputs.parameters.p`.
    suffixes: HashSet<String>,
    /// Suffixes allowed only from a descendant (status, aggregated outputs).
    ancestor_only: HashSet<String>,
    /// Template unknown (an unresolvable templateRef): accept any suffix.
    anything: bool,
}

/// Variables visible from one place of a template.
#[derive(Debug, Default, Clone)]
struct Scope {
    names: HashSet<String>,
    any_item: bool,
    any_workflow_output_parameters: bool,
    any_workflow_output_artifacts: bool,
}

impl Scope {
    fn add(&mut self, name: impl Into<String>) {
        self.names.insert(name.into());
    }
}

/// Where step and task references are resolved (the dependency graph of a DAG).
enum Nodes<'t> {
    None,
    Steps(&'t HashMap<String, NodeOutputs>),
    Dag {
        outputs: &'t HashMap<String, NodeOutputs>,
        graph: &'t DagGraph,
        current: usize,
    },
}

struct DagGraph {
    index: HashMap<String, usize>,
    deps: Vec<Vec<usize>>,
}

impl DagGraph {
    /// Whether `ancestor` is reachable from `task` through dependencies.
    fn is_ancestor(&self, task: usize, ancestor: usize) -> bool {
        let mut seen = vec![false; self.deps.len()];
        let mut stack = self.deps[task].clone();
        while let Some(t) = stack.pop() {
            if t == ancestor {
                return true;
            }
            if !std::mem::replace(&mut seen[t], true) {
                stack.extend(self.deps[t].iter().copied());
            }
        }
        false
    }
}

struct Checker<'a> {
    source: &'a str,
    doc: &'a Document,
    registry: &'a Registry<'a>,
    spec: &'a WorkflowSpec,
    spec_path: FieldPath,
    diagnostics: Vec<Diagnostic>,
    object: String,
    templates: HashMap<&'a str, &'a Template>,
    global_outputs: HashSet<String>,
    any_global_outputs: bool,
}

impl<'a> Checker<'a> {
    fn emit(
        &mut self,
        severity: Severity,
        path: FieldPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let location = self.doc.location(&path);
        self.diagnostics.push(Diagnostic {
            severity,
            source: self.source.to_string(),
            location,
            path,
            object: Some(self.object.clone()),
            message: message.into(),
            hint,
        });
    }

    fn error(&mut self, path: FieldPath, message: impl Into<String>) {
        self.emit(Severity::Error, path, message, None);
    }

    fn warn(&mut self, path: FieldPath, message: impl Into<String>) {
        self.emit(Severity::Warning, path, message, None);
    }

    fn run(&mut self) {
        let spec = self.spec;
        let spec_path = self.spec_path.clone();
        let is_template_kind = matches!(
            self.doc.manifest,
            Manifest::WorkflowTemplate(_) | Manifest::ClusterWorkflowTemplate(_)
        );

        if let Manifest::CronWorkflow(cron) = &self.doc.manifest {
            self.check_cron(cron);
        }

        // Template names: present, well-formed, unique.
        let templates_path = spec_path.field("templates");
        for (i, template) in spec.templates.iter().enumerate() {
            let path = templates_path.index(i);
            match template.name.as_deref() {
                None | Some("") => self.error(path.field("name"), "name is required"),
                Some(name) => {
                    if let Some(problem) = field_name_problem(name) {
                        self.error(
                            path.field("name"),
                            format!("'{name}' is invalid: {problem}"),
                        );
                    }
                    if self.templates.insert(name, template).is_some() {
                        self.error(
                            path.field("name"),
                            format!("template name '{name}' is not unique"),
                        );
                    }
                }
            }
        }
        self.collect_global_outputs();

        // Entrypoint.
        let has_wf_ref = spec.workflow_template_ref.is_some();
        if has_wf_ref {
            self.check_workflow_template_ref(&spec_path);
        }
        let arguments = spec.arguments.clone().unwrap_or_default();
        self.check_argument_names(&spec_path.field("arguments"), &arguments);
        for (i, p) in arguments.parameters.iter().enumerate() {
            self.check_enum(
                &spec_path.field("arguments").field("parameters").index(i),
                p,
            );
        }
        match spec.entrypoint.as_deref() {
            Some(entry) if !entry.is_empty() => {
                if !has_wf_ref {
                    match self.templates.get(entry).copied() {
                        Some(template) => {
                            if !is_template_kind {
                                self.check_inputs_supplied(
                                    &spec_path.field("entrypoint"),
                                    template,
                                    Some(&arguments),
                                    true,
                                );
                            }
                        }
                        None => {
                            let hint =
                                crate::de::did_you_mean(entry, self.templates.keys().copied())
                                    .map(|n| format!("did you mean '{n}'?"));
                            self.emit(
                                Severity::Error,
                                spec_path.field("entrypoint"),
                                format!("template name '{entry}' undefined"),
                                hint,
                            );
                        }
                    }
                }
            }
            _ if has_wf_ref || is_template_kind => {}
            _ => self.error(spec_path.field("entrypoint"), "spec.entrypoint is required"),
        }
        self.check_template_name_ref(&spec_path.field("onExit"), spec.on_exit.as_deref());
        for (event, hook) in &spec.hooks {
            let path = spec_path.field("hooks").field(event.clone());
            self.check_hook(
                &path,
                hook.template.as_deref(),
                hook.template_ref.as_ref(),
                hook.arguments.as_ref(),
            );
        }

        if let Some(strategy) = spec.pod_gc.as_ref().and_then(|p| p.strategy.as_deref()) {
            const STRATEGIES: [&str; 4] = [
                "OnPodCompletion",
                "OnPodSuccess",
                "OnWorkflowCompletion",
                "OnWorkflowSuccess",
            ];
            if !strategy.is_empty() && !STRATEGIES.contains(&strategy) {
                let hint = crate::de::did_you_mean(strategy, STRATEGIES)
                    .map(|n| format!("did you mean '{n}'?"));
                self.emit(
                    Severity::Error,
                    spec_path.field("podGC").field("strategy"),
                    format!("podGC.strategy unknown strategy '{strategy}'"),
                    hint,
                );
            }
        }
        if let Some(rs) = &spec.retry_strategy {
            self.check_retry_strategy(&spec_path.field("retryStrategy"), rs);
        }

        let globals = self.global_scope();
        for (i, template) in spec.templates.iter().enumerate() {
            self.check_template(&templates_path.index(i), template, &globals);
        }
    }

    fn check_cron(&mut self, cron: &crate::model::CronWorkflow) {
        let path = FieldPath::root().field("spec");
        let mut schedules: Vec<(FieldPath, &str)> = Vec::new();
        if let Some(s) = cron.spec.schedule.as_deref() {
            schedules.push((path.field("schedule"), s));
        }
        for (i, s) in cron.spec.schedules.iter().enumerate() {
            schedules.push((path.field("schedules").index(i), s));
        }
        if schedules.is_empty() {
            self.error(
                path.clone(),
                "cron workflow must have a schedule (spec.schedule or spec.schedules)",
            );
        }
        for (at, schedule) in schedules {
            if let Err(e) = crate::cron::parse(schedule) {
                self.error(at, format!("cron schedule '{schedule}' is malformed: {e}"));
            }
        }
        if let Some(tz) = cron.spec.timezone.as_deref()
            && !tz.is_empty()
            && crate::cron::parse_timezone(tz).is_none()
        {
            self.error(path.field("timezone"), format!("unknown time zone '{tz}'"));
        }
        if let Some(policy) = cron.spec.concurrency_policy.as_deref() {
            const POLICIES: [&str; 3] = ["Allow", "Forbid", "Replace"];
            if !policy.is_empty() && !POLICIES.contains(&policy) {
                let hint = crate::de::did_you_mean(policy, POLICIES)
                    .map(|n| format!("did you mean '{n}'?"));
                self.emit(
                    Severity::Error,
                    path.field("concurrencyPolicy"),
                    format!("'{policy}' is not a valid concurrencyPolicy"),
                    hint,
                );
            }
        }
        if cron.spec.starting_deadline_seconds.is_some_and(|s| s < 0) {
            self.error(
                path.field("startingDeadlineSeconds"),
                "startingDeadlineSeconds must be positive",
            );
        }
    }

    fn check_workflow_template_ref(&mut self, spec_path: &FieldPath) {
        let spec = self.spec;
        let Some(wf_ref) = spec.workflow_template_ref.as_ref() else {
            return;
        };
        if !spec.templates.is_empty() {
            self.error(spec_path.field("templates"), "Templates is invalid field in spec if workflow referred WorkflowTemplate reference");
        }
        let name = wf_ref.name.as_deref().unwrap_or("");
        let cluster = wf_ref.cluster_scope.unwrap_or(false);
        let path = spec_path.field("workflowTemplateRef").field("name");
        if name.is_empty() {
            self.error(path, "workflowTemplateRef.name is required");
        } else if self.registry.get(name, cluster).is_none() {
            let kind = if cluster {
                "ClusterWorkflowTemplate"
            } else {
                "WorkflowTemplate"
            };
            self.missing_reference(path, format!("{kind} '{name}' not found"));
        }
    }

    /// An unresolvable reference: an error against a complete store, otherwise a warning that
    /// lint could not check it (the template may exist on the server).
    fn missing_reference(&mut self, path: FieldPath, message: String) {
        if self.registry.complete {
            self.error(path, message);
        } else {
            self.warn(
                path,
                format!("{message} among the linted files; not checked"),
            );
        }
    }

    fn check_template_name_ref(&mut self, path: &FieldPath, name: Option<&str>) {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return;
        };
        if !self.templates.contains_key(name) {
            let hint = crate::de::did_you_mean(name, self.templates.keys().copied())
                .map(|n| format!("did you mean '{n}'?"));
            self.emit(
                Severity::Error,
                path.clone(),
                format!("template name '{name}' undefined"),
                hint,
            );
        }
    }

    fn check_hook(
        &mut self,
        path: &FieldPath,
        template: Option<&str>,
        template_ref: Option<&TemplateRef>,
        arguments: Option<&Arguments>,
    ) {
        match (template, template_ref) {
            (Some(name), None) => self.check_template_name_ref(&path.field("template"), Some(name)),
            (None, Some(r)) => {
                self.resolve_template_ref(&path.field("templateRef"), r);
            }
            (Some(_), Some(_)) => self.error(
                path.clone(),
                "template name cannot be specified with templateRef.",
            ),
            (None, None) => self.error(path.clone(), "hook must name a template or a templateRef"),
        }
        if let Some(args) = arguments {
            self.check_argument_names(&path.field("arguments"), args);
        }
    }

    /// `workflow.outputs.parameters.X` names declared through `globalName` anywhere.
    fn collect_global_outputs(&mut self) {
        let mut names = HashSet::new();
        let mut any = false;
        let mut visit = |t: &Template| {
            if let Some(outputs) = &t.outputs {
                for p in &outputs.parameters {
                    if let Some(g) = p.global_name.as_deref() {
                        if has_variable(g) {
                            any = true
                        } else {
                            names.insert(format!("workflow.outputs.parameters.{g}"));
                        }
                    }
                }
                for a in &outputs.artifacts {
                    if let Some(g) = a.global_name.as_deref() {
                        if has_variable(g) {
                            any = true
                        } else {
                            names.insert(format!("workflow.outputs.artifacts.{g}"));
                        }
                    }
                }
            }
        };
        for t in &self.spec.templates {
            for_each_template(t, &mut visit);
        }
        self.global_outputs = names;
        self.any_global_outputs = any;
    }

    fn global_scope(&self) -> Scope {
        let mut scope = Scope::default();
        for name in [
            "workflow.name",
            "workflow.namespace",
            "workflow.mainEntrypoint",
            "workflow.serviceAccountName",
            "workflow.uid",
            "workflow.parameters",
            "workflow.annotations",
            "workflow.labels",
            "workflow.priority",
            "workflow.status",
            "workflow.failures",
            "workflow.duration",
            "workflow.scheduledTime",
            "workflow.creationTimestamp",
            "workflow.outputs.parameters",
            "workflow.outputs.artifacts",
            "workflow.parameters.json",
            "workflow.labels.json",
            "workflow.annotations.json",
            "steps.name",
            "tasks.name",
        ] {
            scope.add(name);
        }
        if let Some(args) = &self.spec.arguments {
            for p in &args.parameters {
                scope.add(format!("workflow.parameters.{}", p.name));
            }
            for a in &args.artifacts {
                scope.add(format!("workflow.artifacts.{}", a.name));
            }
        }
        let meta = self.doc.manifest.metadata();
        for k in meta.labels.keys() {
            scope.add(format!("workflow.labels.{k}"));
        }
        for k in meta.annotations.keys() {
            scope.add(format!("workflow.annotations.{k}"));
        }
        if let Some(wm) = &self.spec.workflow_metadata {
            for k in wm.labels.keys().chain(wm.labels_from.keys()) {
                scope.add(format!("workflow.labels.{k}"));
            }
            for k in wm.annotations.keys() {
                scope.add(format!("workflow.annotations.{k}"));
            }
        }
        // Templates and references may be submitted with labels and parameters of their own.
        let open = self.spec.workflow_template_ref.is_some()
            || matches!(
                self.doc.manifest,
                Manifest::WorkflowTemplate(_) | Manifest::ClusterWorkflowTemplate(_)
            );
        if open {
            scope.add("workflow.labels.*");
            scope.add("workflow.annotations.*");
            scope.add("workflow.parameters.*");
        }
        scope.names.extend(self.global_outputs.iter().cloned());
        scope.any_workflow_output_parameters = self.any_global_outputs;
        scope.any_workflow_output_artifacts = self.any_global_outputs;
        scope
    }

    fn check_argument_names(&mut self, path: &FieldPath, args: &Arguments) {
        self.check_param_names(
            &path.field("parameters"),
            args.parameters.iter().map(|p| p.name.as_str()),
        );
        self.check_param_names(
            &path.field("artifacts"),
            args.artifacts.iter().map(|a| a.name.as_str()),
        );
        for (i, a) in args.artifacts.iter().enumerate() {
            if a.from.is_some() && a.from_expression.is_some() {
                self.error(
                    path.field("artifacts").index(i),
                    format!("{} should have either `from` or `fromExpression`", a.name),
                );
            }
        }
    }

    fn check_param_names<'n>(&mut self, path: &FieldPath, names: impl Iterator<Item = &'n str>) {
        let mut seen = HashSet::new();
        for (i, name) in names.enumerate() {
            let at = path.index(i).field("name");
            if name.is_empty() {
                self.error(at, "name is required");
                continue;
            }
            if let Some(problem) = param_name_problem(name) {
                self.error(at.clone(), format!("'{name}' is invalid: {problem}"));
            }
            if !seen.insert(name) {
                self.error(at, format!("'{name}' is not unique"));
            }
        }
    }

    fn check_enum(&mut self, path: &FieldPath, p: &Parameter) {
        let allowed = p.enum_strs();
        if allowed.is_empty() {
            return;
        }
        for (field, value) in [("value", p.value_str()), ("default", p.default_str())] {
            if let Some(v) = value.filter(|v| !has_variable(v))
                && !allowed.contains(&v)
            {
                self.error(
                    path.field(field),
                    format!(
                        "{}.{field} '{v}' should be present in the enum list: {}",
                        p.name,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    /// Inputs of `template` without a value or default must be supplied by the caller.
    fn check_inputs_supplied(
        &mut self,
        path: &FieldPath,
        template: &Template,
        args: Option<&Arguments>,
        strict_values: bool,
    ) {
        let Some(inputs) = &template.inputs else {
            return;
        };
        let empty = Arguments::default();
        let args = args.unwrap_or(&empty);
        for p in &inputs.parameters {
            let has_own = p.value.is_some() || p.default.is_some() || p.value_from.is_some();
            match args.parameter(&p.name) {
                None if !has_own => self.error(
                    path.clone(),
                    format!("inputs.parameters.{} was not supplied", p.name),
                ),
                Some(arg) if strict_values => {
                    let allowed = p.enum_strs();
                    if let Some(v) = arg
                        .value_str()
                        .filter(|v| !has_variable(v) && !allowed.is_empty())
                        && !allowed.contains(&v)
                    {
                        self.error(
                            path.clone(),
                            format!(
                                "value '{v}' of inputs.parameters.{} is not in its enum: {}",
                                p.name,
                                allowed.join(", ")
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        for a in &inputs.artifacts {
            let has_own = artifact_has_source(a) || a.optional == Some(true);
            if !has_own && args.artifact(&a.name).is_none() {
                self.error(
                    path.clone(),
                    format!("inputs.artifacts.{} was not supplied", a.name),
                );
            }
        }
    }

    fn check_retry_strategy(&mut self, path: &FieldPath, rs: &crate::model::RetryStrategy) {
        if let Some(policy) = rs.retry_policy.as_deref() {
            const POLICIES: [&str; 4] = ["Always", "OnFailure", "OnError", "OnTransientError"];
            if !policy.is_empty() && !POLICIES.contains(&policy) {
                let hint = crate::de::did_you_mean(policy, POLICIES)
                    .map(|n| format!("did you mean '{n}'?"));
                self.emit(
                    Severity::Error,
                    path.field("retryPolicy"),
                    format!("{policy} is not a valid RetryPolicy"),
                    hint,
                );
            }
        }
        if let Some(crate::model::IntOrString::String(limit)) = &rs.limit
            && !has_variable(limit)
            && limit.trim().parse::<i64>().is_err()
        {
            self.error(
                path.field("limit"),
                format!("limit '{limit}' must be an integer or an argo variable"),
            );
        }
        if let Some(backoff) = &rs.backoff {
            for (field, value) in [
                ("duration", backoff.duration.as_deref()),
                ("maxDuration", backoff.max_duration.as_deref()),
            ] {
                if let Some(v) = value.filter(|v| !has_variable(v))
                    && let Err(e) = duration::parse(v)
                {
                    self.error(path.field("backoff").field(field), e);
                }
            }
        }
        if let Some(expr) = rs.expression.as_deref()
            && let Err(e) = check_expression_with_tags(expr)
        {
            self.error(path.field("expression"), e.to_string());
        }
    }

    fn check_template(&mut self, path: &FieldPath, template: &'a Template, globals: &Scope) {
        let name = template.name.as_deref().unwrap_or("");
        let kinds = template.kinds();
        let kind = match kinds.as_slice() {
            [] => {
                self.error(
                    path.clone(),
                    format!("template type unspecified. choose one of: {TEMPLATE_TYPES}"),
                );
                None
            }
            [k] => Some(*k),
            _ => {
                let set: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
                self.error(
                    path.clone(),
                    format!(
                        "multiple template types specified ({}). choose one of: {TEMPLATE_TYPES}",
                        set.join(", ")
                    ),
                );
                None
            }
        };
        let leaf = !matches!(kind, Some(TemplateKind::Steps | TemplateKind::Dag));

        // Inputs.
        let inputs = template.inputs.clone().unwrap_or_default();
        let inputs_path = path.field("inputs");
        self.check_param_names(
            &inputs_path.field("parameters"),
            inputs.parameters.iter().map(|p| p.name.as_str()),
        );
        self.check_param_names(
            &inputs_path.field("artifacts"),
            inputs.artifacts.iter().map(|a| a.name.as_str()),
        );
        for (i, p) in inputs.parameters.iter().enumerate() {
            self.check_enum(&inputs_path.field("parameters").index(i), p);
        }
        for (i, art) in inputs.artifacts.iter().enumerate() {
            let at = inputs_path.field("artifacts").index(i);
            let pod_like = matches!(
                kind,
                Some(TemplateKind::Container | TemplateKind::Script | TemplateKind::ContainerSet)
            );
            if pod_like && art.path.as_deref().unwrap_or("").is_empty() {
                self.error(
                    at.field("path"),
                    format!("inputs.artifacts.{}.path not specified", art.name),
                );
            }
            if !leaf && art.path.is_some() {
                self.error(
                    at.field("path"),
                    format!(
                        "inputs.artifacts.{}.path only valid in container/script templates",
                        art.name
                    ),
                );
            }
            if art.from.is_some() || art.from_expression.is_some() {
                self.error(
                    at,
                    format!("inputs.artifacts.{}.from not valid in inputs", art.name),
                );
            }
        }

        // Fields valid only for some template types.
        if let Some(timeout) = template.timeout.as_deref() {
            if !leaf {
                let kind_name = kind.map(|k| k.as_str()).unwrap_or("this");
                self.error(
                    path.field("timeout"),
                    format!("{kind_name} template doesn't support timeout field."),
                );
            } else if !has_variable(timeout) {
                if timeout.trim().parse::<i64>().is_ok() {
                    self.error(
                        path.field("timeout"),
                        format!("{name} has invalid duration format in timeout."),
                    );
                } else if let Err(e) = duration::parse(timeout) {
                    self.error(path.field("timeout"), e);
                }
            }
        }
        if !leaf && template.active_deadline_seconds.is_some() {
            self.error(
                path.field("activeDeadlineSeconds"),
                "activeDeadlineSeconds is only valid for leaf templates",
            );
        }
        if let Some(crate::model::IntOrString::String(s)) = &template.active_deadline_seconds
            && !has_variable(s)
            && s.trim().parse::<u64>().is_err()
        {
            self.error(
                path.field("activeDeadlineSeconds"),
                "activeDeadlineSeconds must be a positive integer > 0 or an argo variable",
            );
        }
        if let Some(crate::model::IntOrString::Int(i)) = &template.active_deadline_seconds
            && *i < 0
        {
            self.error(
                path.field("activeDeadlineSeconds"),
                "activeDeadlineSeconds must be a positive integer > 0 or an argo variable",
            );
        }
        if leaf && template.parallelism.is_some() {
            self.error(
                path.field("parallelism"),
                "parallelism is only valid for steps and dag templates",
            );
        }
        if let Some(rs) = &template.retry_strategy {
            self.check_retry_strategy(&path.field("retryStrategy"), rs);
        }
        if let Some(memo) = &template.memoize
            && let Some(age) =
                Some(memo.max_age.as_str()).filter(|a| !has_variable(a) && !a.is_empty())
            && let Err(e) = duration::parse(age)
        {
            self.error(path.field("memoize").field("maxAge"), e);
        }
        // Coxswain's automatic memoization key (see the scheduler's `machine::memo_key`).
        if let Some(value) = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.get("coxswain.io/memoize-key"))
        {
            let at = path
                .field("metadata")
                .field("annotations")
                .field("coxswain.io/memoize-key");
            if value != "auto" {
                self.error(
                    at,
                    format!("unknown value '{value}' (the one value is 'auto')"),
                );
            } else if template.memoize.is_none() {
                self.warn(at, "has no effect: the template has no memoize");
            }
        }
        if let Some(suspend) = &template.suspend
            && let Some(d) = suspend.duration.as_deref().filter(|d| !has_variable(d))
            && let Err(e) = duration::parse(d)
        {
            self.error(path.field("suspend").field("duration"), e);
        }
        let defaults = self.spec.template_defaults.as_deref();
        let default_image = |pick: fn(&Template) -> Option<&str>| {
            defaults.and_then(pick).is_some_and(|i| !i.is_empty())
        };
        if let Some(container) = &template.container {
            if container.image.as_deref().unwrap_or("").is_empty()
                && !default_image(|t| t.container.as_ref()?.image.as_deref())
            {
                self.error(
                    path.field("container").field("image"),
                    "container.image may not be empty",
                );
            }
            let mut mounts: HashMap<&str, String> = HashMap::new();
            for (i, m) in container.volume_mounts.iter().enumerate() {
                if let Some(prev) = mounts.insert(
                    m.mount_path.as_str(),
                    format!("container.volumeMounts.{}", m.name),
                ) {
                    self.error(
                        path.field("container")
                            .field("volumeMounts")
                            .index(i)
                            .field("mountPath"),
                        format!("mountPath '{}' already mounted in {prev}", m.mount_path),
                    );
                }
            }
            for (i, art) in inputs.artifacts.iter().enumerate() {
                if let Some(p) = art.path.as_deref()
                    && let Some(prev) = mounts.insert(p, format!("inputs.artifacts.{}", art.name))
                {
                    self.error(
                        inputs_path.field("artifacts").index(i).field("path"),
                        format!("path '{p}' already mounted in {prev}"),
                    );
                }
            }
        }
        if let Some(script) = &template.script
            && script.image.as_deref().unwrap_or("").is_empty()
            && !default_image(|t| t.script.as_ref()?.image.as_deref())
        {
            self.error(
                path.field("script").field("image"),
                "script.image may not be empty",
            );
        }
        if let Some(resource) = &template.resource {
            const ACTIONS: [&str; 6] = ["get", "create", "apply", "delete", "replace", "patch"];
            if !has_variable(&resource.action) && !ACTIONS.contains(&resource.action.as_str()) {
                self.error(
                    path.field("resource").field("action"),
                    "resource.action must be one of: get, create, apply, delete, replace, patch",
                );
            }
            if let Some(manifest) = resource.manifest.as_deref().filter(|m| !has_variable(m))
                && crate::node::parse_documents(manifest, &crate::node::Limits::default()).is_err()
            {
                self.error(
                    path.field("resource").field("manifest"),
                    "resource.manifest must be a valid yaml",
                );
            }
        }
        if let Some(metrics) = &template.metrics {
            self.check_metrics(&path.field("metrics"), metrics);
        }
        if let Some(set) = &template.container_set {
            let names: HashSet<&str> = set.containers.iter().map(|c| c.name.as_str()).collect();
            for (i, c) in set.containers.iter().enumerate() {
                for (j, dep) in c.dependencies.iter().enumerate() {
                    if !names.contains(dep.as_str()) {
                        self.error(
                            path.field("containerSet")
                                .field("containers")
                                .index(i)
                                .field("dependencies")
                                .index(j),
                            format!("dependency '{dep}' not defined"),
                        );
                    }
                }
            }
        }

        // Scope of this template.
        let mut scope = globals.clone();
        for p in &inputs.parameters {
            scope.add(format!("inputs.parameters.{}", p.name));
        }
        if !inputs.parameters.is_empty() {
            scope.add("inputs.parameters");
        }
        for a in &inputs.artifacts {
            scope.add(format!("inputs.artifacts.{}", a.name));
            if leaf {
                scope.add(format!("inputs.artifacts.{}.path", a.name));
            }
        }
        if !matches!(
            kind,
            Some(TemplateKind::Steps | TemplateKind::Dag | TemplateKind::Suspend)
        ) {
            scope.add("pod.name");
        }

        match kind {
            Some(TemplateKind::Steps) => self.check_steps(path, template, &mut scope),
            Some(TemplateKind::Dag) => self.check_dag(path, template, &mut scope),
            _ => {
                let mut value = serde_json::to_value(template).unwrap_or_default();
                if let Some(obj) = value.as_object_mut() {
                    obj.remove("outputs");
                    obj.remove("name");
                }
                self.check_references(path, &value, &scope, &Nodes::None);
            }
        }
        self.check_outputs(path, template, kind, leaf, &scope);
    }

    fn check_metrics(&mut self, path: &FieldPath, metrics: &crate::model::Metrics) {
        for (i, m) in metrics.prometheus.iter().enumerate() {
            let at = path.field("prometheus").index(i);
            let valid = !m.name.is_empty()
                && m.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !m.name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                self.error(at.field("name"), format!("metric name '{}' is invalid. Metric names must contain alphanumeric characters, '_', or ':'", m.name));
            }
            if m.help.is_empty() {
                self.error(
                    at.clone(),
                    format!(
                        "metric '{}' must contain a help string under 'help: ' field",
                        m.name
                    ),
                );
            }
        }
    }

    fn check_outputs(
        &mut self,
        path: &FieldPath,
        template: &Template,
        kind: Option<TemplateKind>,
        leaf: bool,
        scope: &Scope,
    ) {
        let Some(outputs) = &template.outputs else {
            return;
        };
        let out_path = path.field("outputs");
        self.check_param_names(
            &out_path.field("parameters"),
            outputs.parameters.iter().map(|p| p.name.as_str()),
        );
        self.check_param_names(
            &out_path.field("artifacts"),
            outputs.artifacts.iter().map(|a| a.name.as_str()),
        );
        let pod_like = matches!(
            kind,
            Some(TemplateKind::Container | TemplateKind::Script | TemplateKind::ContainerSet)
        );
        for (i, art) in outputs.artifacts.iter().enumerate() {
            let at = out_path.field("artifacts").index(i);
            if pod_like && art.path.as_deref().unwrap_or("").is_empty() {
                self.error(
                    at.clone(),
                    format!("outputs.artifacts.{}.path not specified", art.name),
                );
            }
            if !leaf && art.path.is_some() {
                self.error(
                    at.field("path"),
                    format!(
                        "outputs.artifacts.{}.path only valid in container/script templates",
                        art.name
                    ),
                );
            }
            if let Some(g) = art.global_name.as_deref().filter(|g| !has_variable(g))
                && let Some(problem) = param_name_problem(g)
            {
                self.error(at.field("globalName"), format!("globalName: {problem}"));
            }
        }
        for (i, p) in outputs.parameters.iter().enumerate() {
            let at = out_path.field("parameters").index(i);
            let reference = format!("outputs.parameters.{}", p.name);
            match (&p.value, &p.value_from) {
                (Some(_), Some(_)) => self.error(
                    at.clone(),
                    format!("{reference} has both valueFrom and value specified. Choose one."),
                ),
                (None, None) => self.error(
                    at.clone(),
                    format!("{reference} does not have valueFrom or value specified"),
                ),
                (None, Some(vf)) => {
                    let set = [
                        vf.path.is_some(),
                        vf.jq_filter.is_some(),
                        vf.json_path.is_some(),
                        vf.parameter.is_some(),
                        vf.expression.is_some(),
                        vf.supplied.is_some(),
                        vf.config_map_key_ref.is_some(),
                        vf.event.is_some(),
                    ]
                    .iter()
                    .filter(|s| **s)
                    .count();
                    if set == 0 && vf.default.is_none() {
                        self.error(at.field("valueFrom"), "valueFrom type unspecified. choose one of: path, jqFilter, jsonPath, parameter, raw, expression");
                    } else if set > 1 {
                        self.error(at.field("valueFrom"), "multiple valueFrom types specified. choose one of: path, jqFilter, jsonPath, parameter, raw, expression");
                    }
                    match kind {
                        Some(TemplateKind::Container | TemplateKind::Script)
                            if vf.path.is_none()
                                && vf.supplied.is_none()
                                && vf.expression.is_none()
                                && vf.default.is_none() =>
                        {
                            self.error(
                                at.field("valueFrom"),
                                format!(
                                    "{reference}.path must be specified for {} templates",
                                    kind.map(|k| k.as_str()).unwrap_or("")
                                ),
                            );
                        }
                        Some(TemplateKind::Resource)
                            if vf.jq_filter.is_none() && vf.json_path.is_none() =>
                        {
                            self.error(at.field("valueFrom"), format!("{reference} .jqFilter or jsonPath must be specified for resource templates"));
                        }
                        Some(TemplateKind::Dag | TemplateKind::Steps) => {
                            if vf.parameter.is_none()
                                && vf.expression.is_none()
                                && vf.supplied.is_none()
                            {
                                self.error(at.field("valueFrom"), format!("{reference}.parameter or expression must be specified for {} templates", kind.map(|k| k.as_str()).unwrap_or("")));
                            }
                            if vf.parameter.is_some() && vf.expression.is_some() {
                                self.error(at.field("valueFrom"), format!("{reference} should have either `parameter` or `expression` specified for {} templates", kind.map(|k| k.as_str()).unwrap_or("")));
                            }
                        }
                        _ => {}
                    }
                    if let Some(expr) = vf.expression.as_deref()
                        && let Err(e) = check_expression_with_tags(expr)
                    {
                        self.error(at.field("valueFrom").field("expression"), e.to_string());
                    }
                }
                (Some(_), None) => {}
            }
            if let Some(g) = p.global_name.as_deref().filter(|g| !has_variable(g))
                && let Some(problem) = param_name_problem(g)
            {
                self.error(at.field("globalName"), format!("globalName: {problem}"));
            }
        }
        let mut scope = scope.clone();
        for a in &outputs.artifacts {
            scope.add(format!("outputs.artifacts.{}.path", a.name));
        }
        let value = serde_json::to_value(outputs).unwrap_or_default();
        self.check_references(&out_path, &value, &scope, &Nodes::None);
    }

    /// Resolve what a step or task calls; reports problems and returns the template when known.
    fn resolve_call(
        &mut self,
        path: &FieldPath,
        template: Option<&str>,
        template_ref: Option<&TemplateRef>,
        inline: Option<&'a Template>,
    ) -> Option<&'a Template> {
        let given = [template.is_some(), template_ref.is_some(), inline.is_some()]
            .iter()
            .filter(|s| **s)
            .count();
        if given > 1 {
            self.error(
                path.clone(),
                "only one of template, templateRef and inline may be specified",
            );
            return None;
        }
        if let Some(name) = template {
            return match self.templates.get(name).copied() {
                Some(t) => Some(t),
                None => {
                    let hint = crate::de::did_you_mean(name, self.templates.keys().copied())
                        .map(|n| format!("did you mean '{n}'?"));
                    self.emit(
                        Severity::Error,
                        path.field("template"),
                        format!("template name '{name}' undefined"),
                        hint,
                    );
                    None
                }
            };
        }
        if let Some(r) = template_ref {
            return self.resolve_template_ref(&path.field("templateRef"), r);
        }
        if let Some(t) = inline {
            return Some(t);
        }
        self.error(
            path.clone(),
            "template name, templateRef or inline template is required",
        );
        None
    }

    fn resolve_template_ref(&mut self, path: &FieldPath, r: &TemplateRef) -> Option<&'a Template> {
        let name = r.name.as_deref().unwrap_or("");
        let template = r.template.as_deref().unwrap_or("");
        if name.is_empty() {
            self.error(path.field("name"), "resource name is required");
            return None;
        }
        if template.is_empty() {
            self.error(path.field("template"), "template name is required");
            return None;
        }
        if has_variable(name) || has_variable(template) {
            return None;
        }
        let cluster = r.cluster_scope.unwrap_or(false);
        match self.registry.get(name, cluster) {
            Some(spec) => {
                let found = spec
                    .templates
                    .iter()
                    .find(|t| t.name.as_deref() == Some(template));
                if found.is_none() {
                    self.error(
                        path.clone(),
                        format!("template reference {name}.{template} not found"),
                    );
                }
                found
            }
            None => {
                let kind = if cluster {
                    "ClusterWorkflowTemplate"
                } else {
                    "WorkflowTemplate"
                };
                self.missing_reference(
                    path.clone(),
                    format!("{kind} '{name}' (for template reference {name}.{template}) not found"),
                );
                None
            }
        }
    }

    fn check_loop(
        &mut self,
        path: &FieldPath,
        with_items: &[serde_json::Value],
        with_param: Option<&str>,
        with_sequence: Option<&crate::model::Sequence>,
        scope: &mut Scope,
    ) {
        let defined = [
            !with_items.is_empty(),
            with_param.is_some(),
            with_sequence.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if defined > 1 {
            self.error(
                path.clone(),
                "only one of withItems, withParam, withSequence can be specified",
            );
        }
        if !with_items.is_empty() {
            for item in with_items {
                match item {
                    serde_json::Value::Object(map) => {
                        scope.add("item");
                        for k in map.keys() {
                            scope.add(format!("item.{k}"));
                        }
                    }
                    serde_json::Value::Array(list) => {
                        scope.add("item");
                        for i in 0..list.len() {
                            scope.add(format!("item.[{i}]"));
                        }
                    }
                    _ => scope.add("item"),
                }
            }
        } else if with_param.is_some() {
            scope.add("item");
            scope.any_item = true;
        } else if let Some(seq) = with_sequence {
            if seq.count.is_some() && seq.end.is_some() {
                self.error(
                    path.field("withSequence"),
                    "only one of count or end can be defined in withSequence",
                );
            }
            if seq.count.is_none() && seq.end.is_none() {
                self.error(
                    path.field("withSequence"),
                    "withSequence needs count or end",
                );
            }
            scope.add("item");
        }
    }

    fn check_steps(&mut self, path: &FieldPath, template: &'a Template, scope: &mut Scope) {
        let mut names: HashSet<&str> = HashSet::new();
        let mut outputs: HashMap<String, NodeOutputs> = HashMap::new();
        for (i, group) in template.steps.iter().enumerate() {
            let group_path = path.field("steps").index(i);
            let mut resolved: Vec<Option<&'a Template>> = Vec::new();
            for (j, step) in group.iter().enumerate() {
                let step_path = group_path.index(j);
                let name = step.name.as_deref().unwrap_or("");
                if name.is_empty() {
                    self.error(step_path.field("name"), "name is required");
                } else {
                    if !names.insert(name) {
                        self.error(
                            step_path.field("name"),
                            format!("step name '{name}' is not unique"),
                        );
                    }
                    if let Some(problem) = field_name_problem(name) {
                        self.error(
                            step_path.field("name"),
                            format!("step name '{name}' is invalid: {problem}"),
                        );
                    }
                    outputs
                        .entry(name.to_string())
                        .or_default()
                        .suffixes
                        .insert("status".to_string());
                }
                resolved.push(self.check_call(&step_path, &StepLike::Step(step)));
            }
            // References of this group: earlier groups' outputs, statuses of all steps so far.
            for (j, step) in group.iter().enumerate() {
                let step_path = group_path.index(j);
                let mut step_scope = scope.clone();
                self.check_loop(
                    &step_path,
                    &step.with_items,
                    step.with_param.as_deref(),
                    step.with_sequence.as_ref(),
                    &mut step_scope,
                );
                let mut value = serde_json::to_value(step).unwrap_or_default();
                let hooks = strip_call_parts(&mut value);
                self.check_references(&step_path, &value, &step_scope, &Nodes::Steps(&outputs));
                if let (Some(hooks), Some(name)) = (hooks, step.name.as_deref()) {
                    step_scope.add(format!("steps.{name}.*"));
                    self.check_references(
                        &step_path.field("hooks"),
                        &hooks,
                        &step_scope,
                        &Nodes::Steps(&outputs),
                    );
                }
            }
            for (step, target) in group.iter().zip(resolved) {
                let Some(name) = step.name.as_deref() else {
                    continue;
                };
                let aggregate = !step.with_items.is_empty() || step.with_param.is_some();
                let entry = outputs.entry(name.to_string()).or_default();
                fill_outputs(entry, target, aggregate, true);
            }
        }
        // The template's own outputs may read any step.
        for (name, entry) in outputs {
            for s in entry.suffixes {
                scope.add(format!("steps.{name}.{s}"));
            }
            if entry.anything {
                scope.add(format!("steps.{name}.*"));
            }
        }
    }

    fn check_call(&mut self, path: &FieldPath, call: &StepLike<'a>) -> Option<&'a Template> {
        let (template, template_ref, inline, arguments, on_exit, hooks) = call.parts();
        let target = self.resolve_call(path, template, template_ref, inline);
        if let Some(args) = arguments {
            self.check_argument_names(&path.field("arguments"), args);
            for (i, p) in args.parameters.iter().enumerate() {
                if p.value.is_none() && p.value_from.is_none() {
                    self.error(
                        path.field("arguments").field("parameters").index(i),
                        format!("arguments.parameters.{}.value is required", p.name),
                    );
                }
            }
        }
        if let Some(t) = target {
            self.check_inputs_supplied(path, t, arguments, true);
        }
        if let Some(t) = inline {
            let globals = self.global_scope();
            self.check_template(&path.field("inline"), t, &globals);
        }
        self.check_template_name_ref(&path.field("onExit"), on_exit);
        for (event, hook) in hooks {
            let at = path.field("hooks").field(event.clone());
            self.check_hook(
                &at,
                hook.template.as_deref(),
                hook.template_ref.as_ref(),
                hook.arguments.as_ref(),
            );
            if let Some(expr) = hook.expression.as_deref()
                && let Err(e) = check_expression_with_tags(expr)
            {
                self.error(at.field("expression"), e.to_string());
            }
        }
        target
    }

    fn check_dag(&mut self, path: &FieldPath, template: &'a Template, scope: &mut Scope) {
        let Some(dag) = &template.dag else { return };
        let tasks_path = path.field("dag").field("tasks");
        if dag.tasks.is_empty() {
            self.error(tasks_path.clone(), "must have at least one task");
            return;
        }
        let mut index: HashMap<String, usize> = HashMap::with_capacity(dag.tasks.len());
        for (i, task) in dag.tasks.iter().enumerate() {
            let at = tasks_path.index(i).field("name");
            if task.name.is_empty() {
                self.error(at, "name is required");
                continue;
            }
            if let Some(problem) = field_name_problem(&task.name) {
                self.error(
                    at.clone(),
                    format!("task name '{}' is invalid: {problem}", task.name),
                );
            } else if task.name.starts_with(|c: char| c.is_ascii_digit()) {
                self.error(at.clone(), format!("task name '{}' cannot begin with a digit when using either 'depends' or 'dependencies'", task.name));
            }
            if index.insert(task.name.clone(), i).is_some() {
                self.error(at, format!("task name '{}' is not unique", task.name));
            }
        }
        let using_depends = dag.tasks.iter().any(|t| t.depends.is_some());
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); dag.tasks.len()];
        let mut resolved: Vec<Option<&'a Template>> = Vec::with_capacity(dag.tasks.len());
        for (i, task) in dag.tasks.iter().enumerate() {
            let at = tasks_path.index(i);
            if using_depends && !task.dependencies.is_empty() {
                self.error(
                    at.field("dependencies"),
                    "cannot use both 'depends' and 'dependencies' in the same DAG template",
                );
            }
            if using_depends && task.continue_on.is_some() {
                self.error(at.field("continueOn"), "cannot use 'continueOn' when using 'depends'. Instead use 'dep-task.Failed'/'dep-task.Errored'");
            }
            resolved.push(self.check_call(&at, &StepLike::Task(task)));
            let mut named: Vec<(String, FieldPath, bool)> = Vec::new();
            for (j, d) in task.dependencies.iter().enumerate() {
                named.push((d.clone(), at.field("dependencies").index(j), false));
            }
            if let Some(expr) = task.depends.as_deref() {
                match depends::parse(expr) {
                    Ok(parsed) => {
                        let items = parsed.item_tasks();
                        for dep in parsed.tasks() {
                            named.push((
                                dep.to_string(),
                                at.field("depends"),
                                items.contains(&dep),
                            ));
                        }
                    }
                    Err(e) => self.error(at.field("depends"), e.to_string()),
                }
            }
            for (dep, dep_path, items_based) in named {
                match index.get(&dep) {
                    Some(&d) => {
                        if !deps[i].contains(&d) {
                            deps[i].push(d);
                        }
                        let dt = &dag.tasks[d];
                        if items_based
                            && dt.with_items.is_empty()
                            && dt.with_param.is_none()
                            && dt.with_sequence.is_none()
                        {
                            self.error(dep_path, format!("dependency '{dep}' uses an items-based condition such as .AnySucceeded or .AllFailed but does not contain any items"));
                        }
                    }
                    None => {
                        let hint = crate::de::did_you_mean(&dep, index.keys().map(String::as_str))
                            .map(|n| format!("did you mean '{n}'?"));
                        self.emit(
                            Severity::Error,
                            dep_path,
                            format!("dependency '{dep}' not defined"),
                            hint,
                        );
                    }
                }
            }
        }
        if let Some(cycle) = find_cycle(&deps) {
            let names: Vec<&str> = cycle.iter().map(|&i| dag.tasks[i].name.as_str()).collect();
            self.error(
                tasks_path.index(cycle[0]),
                format!("dependency cycle detected: {}", names.join(" -> ")),
            );
        }
        if let Some(target) = dag.target.as_deref() {
            for name in target.split_whitespace() {
                if !has_variable(name) && !index.contains_key(name) {
                    self.error(
                        path.field("dag").field("target"),
                        format!("target '{name}' is not defined"),
                    );
                }
            }
        }

        // References: every task's outputs are visible; status and aggregates from ancestors only.
        let mut outputs: HashMap<String, NodeOutputs> = HashMap::with_capacity(dag.tasks.len());
        for (task, target) in dag.tasks.iter().zip(&resolved) {
            let aggregate = !task.with_items.is_empty() || task.with_param.is_some();
            let entry = outputs.entry(task.name.clone()).or_default();
            fill_outputs(entry, *target, aggregate, false);
        }
        let graph = DagGraph { index, deps };
        for (i, task) in dag.tasks.iter().enumerate() {
            let at = tasks_path.index(i);
            let needs_scan = task_mentions_variables(task);
            let mut task_scope;
            let scope_ref = if task.with_items.is_empty()
                && task.with_param.is_none()
                && task.with_sequence.is_none()
            {
                &*scope
            } else {
                task_scope = scope.clone();
                self.check_loop(
                    &at,
                    &task.with_items,
                    task.with_param.as_deref(),
                    task.with_sequence.as_ref(),
                    &mut task_scope,
                );
                &task_scope
            };
            if needs_scan {
                let mut value = serde_json::to_value(task).unwrap_or_default();
                let hooks = strip_call_parts(&mut value);
                let nodes = Nodes::Dag {
                    outputs: &outputs,
                    graph: &graph,
                    current: i,
                };
                self.check_references(&at, &value, scope_ref, &nodes);
                if let Some(hooks) = hooks {
                    let mut hook_scope = scope_ref.clone();
                    hook_scope.add(format!("tasks.{}.*", task.name));
                    self.check_references(&at.field("hooks"), &hooks, &hook_scope, &nodes);
                }
            }
        }
        for (name, entry) in outputs {
            for s in entry.suffixes.iter().chain(entry.ancestor_only.iter()) {
                scope.add(format!("tasks.{name}.{s}"));
            }
            scope.add(format!("tasks.{name}.status"));
            if entry.anything {
                scope.add(format!("tasks.{name}.*"));
            }
        }
    }

    /// Check every `{{...}}` in the strings of `value` against `scope`.
    fn check_references(
        &mut self,
        path: &FieldPath,
        value: &serde_json::Value,
        scope: &Scope,
        nodes: &Nodes<'_>,
    ) {
        match value {
            serde_json::Value::String(s) => {
                if !s.contains("{{") {
                    return;
                }
                for tag in tags(s) {
                    if let Some(expr) = tag.strip_prefix('=') {
                        if let Err(e) = check_expression_with_tags(expr) {
                            self.error(path.clone(), e.to_string());
                        }
                        continue;
                    }
                    let name = tag.trim();
                    if !CHECKED_PREFIXES.iter().any(|p| name.starts_with(p)) {
                        continue;
                    }
                    if !resolves(name, scope, nodes) {
                        self.error(path.clone(), format!("failed to resolve {{{{{name}}}}}"));
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_references(&path.index(i), item, scope, nodes);
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    self.check_references(&path.field(k.clone()), v, scope, nodes);
                }
            }
            _ => {}
        }
    }
}

/// Syntax-check an expression whose `{{...}}` tags are substituted before it is evaluated.
fn check_expression_with_tags(expr: &str) -> Result<(), crate::expr::ExprError> {
    if !expr.contains("{{") {
        return crate::expr::check_expression(expr);
    }
    let mut replaced = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(start) = rest.find("{{") {
        replaced.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => {
                replaced.push_str("argo_variable");
                rest = &rest[start + end + 2..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    replaced.push_str(rest);
    crate::expr::check_expression(&replaced).map_err(|e| match e {
        crate::expr::ExprError::Syntax { message, .. } => crate::expr::ExprError::Syntax {
            expr: expr.to_string(),
            message,
        },
        other => other,
    })
}

/// Remove what is checked elsewhere from a serialised step or task (its inline template),
/// and take out its hooks, which may also read the step's own outputs.
fn strip_call_parts(value: &mut serde_json::Value) -> Option<serde_json::Value> {
    let obj = value.as_object_mut()?;
    obj.remove("inline");
    obj.remove("hooks")
}

/// Whether a task has any `{{` in it, without serialising it (most tasks of a big DAG do not).
fn task_mentions_variables(task: &DagTask) -> bool {
    let args = task.arguments.as_ref();
    let in_args = args.is_some_and(|a| {
        a.parameters
            .iter()
            .any(|p| p.value_str().is_some_and(has_variable) || p.value_from.is_some())
            || a.artifacts
                .iter()
                .any(|a| a.from.as_deref().is_some_and(has_variable) || a.from_expression.is_some())
    });
    in_args
        || task.when.as_deref().is_some_and(has_variable)
        || task.with_param.as_deref().is_some_and(has_variable)
        || task.template.as_deref().is_some_and(has_variable)
        || task.with_sequence.is_some()
        || !task.with_items.is_empty()
        || task.template_ref.is_some()
        || !task.hooks.is_empty()
}

fn artifact_has_source(a: &Artifact) -> bool {
    let v = serde_json::to_value(a).unwrap_or_default();
    const SOURCES: [&str; 13] = [
        "s3",
        "git",
        "http",
        "artifactory",
        "hdfs",
        "raw",
        "oss",
        "gcs",
        "azure",
        "plugin",
        "from",
        "fromExpression",
        "artifactLocation",
    ];
    SOURCES.iter().any(|k| v.get(k).is_some())
}

/// What `steps.X.*` / `tasks.X.*` may read, given the template X calls.
fn fill_outputs(
    entry: &mut NodeOutputs,
    template: Option<&Template>,
    aggregate: bool,
    status_anywhere: bool,
) {
    for s in [
        "id",
        "startedAt",
        "finishedAt",
        "hostNodeName",
        "exitCode",
        "outputs.result",
    ] {
        entry.suffixes.insert(s.to_string());
    }
    if status_anywhere {
        entry.suffixes.insert("status".to_string());
    } else {
        entry.ancestor_only.insert("status".to_string());
    }
    let Some(t) = template else {
        entry.anything = true;
        return;
    };
    if t.daemon == Some(true) {
        entry.suffixes.insert("ip".to_string());
    }
    if let Some(outputs) = &t.outputs {
        for p in &outputs.parameters {
            entry
                .suffixes
                .insert(format!("outputs.parameters.{}", p.name));
        }
        for a in &outputs.artifacts {
            entry
                .suffixes
                .insert(format!("outputs.artifacts.{}", a.name));
        }
    }
    if aggregate {
        let target = if status_anywhere {
            &mut entry.suffixes
        } else {
            &mut entry.ancestor_only
        };
        target.insert("outputs.parameters".to_string());
        target.insert("outputs.result".to_string());
    }
    // Steps and DAG templates forward their children's outputs through their own.
    if matches!(t.kind(), Some(TemplateKind::Steps | TemplateKind::Dag)) && t.outputs.is_none() {
        entry.anything = false;
    }
}

fn resolves(name: &str, scope: &Scope, nodes: &Nodes<'_>) -> bool {
    if scope.names.contains(name) {
        return true;
    }
    if (name == "item" || name.starts_with("item.")) && scope.any_item {
        return true;
    }
    if name.starts_with("outputs.") || name.starts_with("workflow.creationTimestamp") {
        return true;
    }
    if name.starts_with("workflow.outputs.parameters.") && scope.any_workflow_output_parameters {
        return true;
    }
    if name.starts_with("workflow.outputs.artifacts.") && scope.any_workflow_output_artifacts {
        return true;
    }
    for open in [
        "workflow.labels.",
        "workflow.annotations.",
        "workflow.parameters.",
    ] {
        if name.starts_with(open) && scope.names.contains(&format!("{open}*")) {
            return true;
        }
    }
    let (prefix, rest) = match name.split_once('.') {
        Some(parts) => parts,
        None => return false,
    };
    if let Some((node, suffix)) = rest.split_once('.') {
        let wildcard = format!("{prefix}.{node}.*");
        if scope.names.contains(&wildcard) {
            return true;
        }
        match (prefix, nodes) {
            ("steps", Nodes::Steps(outputs)) => {
                return outputs
                    .get(node)
                    .is_some_and(|o| o.anything || o.suffixes.contains(suffix));
            }
            (
                "tasks",
                Nodes::Dag {
                    outputs,
                    graph,
                    current,
                },
            ) => {
                let Some(o) = outputs.get(node) else {
                    return false;
                };
                if o.anything || o.suffixes.contains(suffix) {
                    return true;
                }
                if o.ancestor_only.contains(suffix) {
                    return graph
                        .index
                        .get(node)
                        .is_some_and(|&a| graph.is_ancestor(*current, a));
                }
                return false;
            }
            _ => {}
        }
    }
    false
}

/// The `{{...}}` tags of a string, without their braces (`{{=...}}` keeps its `=`).
pub fn tags(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 2..];
            }
            None => break,
        }
    }
    out
}

/// A dependency cycle as task indices, first task repeated at the end; iterative, so deep
/// graphs cannot overflow the stack.
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; deps.len()];
    for start in 0..deps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Stack of (task, next dependency to visit).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Active;
        while let Some(&mut (task, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = deps[task].get(*next) {
                *next += 1;
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::Active;
                        stack.push((dep, 0));
                    }
                    Mark::Active => {
                        // Each task on the stack depends on the next; `task` depends on `dep`.
                        let from = stack.iter().position(|(t, _)| *t == dep).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|(t, _)| *t).collect();
                        cycle.push(dep);
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[task] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// A step or a task, seen through what both have in common.
enum StepLike<'a> {
    Step(&'a WorkflowStep),
    Task(&'a DagTask),
}

type CallParts<'a> = (
    Option<&'a str>,
    Option<&'a TemplateRef>,
    Option<&'a Template>,
    Option<&'a Arguments>,
    Option<&'a str>,
    &'a BTreeMap<String, crate::model::LifecycleHook>,
);

impl<'a> StepLike<'a> {
    fn parts(&self) -> CallParts<'a> {
        match self {
            StepLike::Step(s) => (
                s.template.as_deref(),
                s.template_ref.as_ref(),
                s.inline.as_deref(),
                s.arguments.as_ref(),
                s.on_exit.as_deref(),
                &s.hooks,
            ),
            StepLike::Task(t) => (
                t.template.as_deref(),
                t.template_ref.as_ref(),
                t.inline.as_deref(),
                t.arguments.as_ref(),
                t.on_exit.as_deref(),
                &t.hooks,
            ),
        }
    }
}

/// Call `f` on a template and every inline template below it.
fn for_each_template<'t>(t: &'t Template, f: &mut dyn FnMut(&'t Template)) {
    f(t);
    for group in &t.steps {
        for step in group {
            if let Some(inline) = &step.inline {
                for_each_template(inline, f);
            }
        }
    }
    if let Some(dag) = &t.dag {
        for task in &dag.tasks {
            if let Some(inline) = &task.inline {
                for_each_template(inline, f);
            }
        }
    }
}
