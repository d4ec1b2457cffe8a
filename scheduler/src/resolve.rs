//! Resolving a workflow's references against stored objects, once, when it is submitted.
//!
//! A run keeps what it started with, as Argo does: the (Cluster)WorkflowTemplate specs and
//! templates it refers to are copied into its `status` (Argo's `storedWorkflowTemplateSpec`
//! and `storedTemplates`), so editing or deleting a template later does not change a running
//! workflow. ConfigMap values named by `configMapKeyRef` parameters are read at the same time
//! and written into the parameter's `value`.
//!
//! - `workflowTemplateRef`: the template's spec, with the workflow's own spec laid over it
//!   (templates and parameters merged by name), is the spec the run executes, kept in
//!   `status.storedWorkflowTemplateSpec`.
//! - `templateRef`: each referenced template is kept in `status.storedTemplates` under Argo's
//!   key, `namespaced/<WorkflowTemplate>/<template>` or `cluster/<ClusterWorkflowTemplate>/<template>`,
//!   together with the templates it calls by plain name (which live in the same
//!   WorkflowTemplate) and, recursively, those it refers to.
//! - `artifactRepositoryRef {configMap, key}`: the ConfigMap (default
//!   `artifact-repositories`, in the workflow's namespace) and key (default: the ConfigMap's
//!   annotation `workflows.argoproj.io/default-artifact-repository`) name the repository of
//!   the run's steps, kept in `status.artifactRepositoryRef` as Argo does; without a ref,
//!   that ConfigMap's default when there is one, else `{default: true}` (the configured
//!   repository). The repository is stored without keys (see
//!   [`cox_worker::repo_config::RepositoryLocation`]).

use std::collections::{BTreeMap, HashMap};

use cox_config::model::{ArtifactRepositoryRef, Template, TemplateRef, Workflow, WorkflowSpec};
use cox_worker::repo_config::RepositoryLocation;
use serde_json::{Map, Value};

use crate::store::{ObjectKind, Store};

/// `status` key of the stored templates (Argo's name).
pub const STORED_TEMPLATES: &str = "storedTemplates";
/// `status` key of the stored WorkflowTemplate spec (Argo's name).
pub const STORED_SPEC: &str = "storedWorkflowTemplateSpec";
/// The namespace of objects given without one.
pub const DEFAULT_NAMESPACE: &str = "default";
/// `status` key of the run's artifact repository (Argo's name).
pub const ARTIFACT_REPOSITORY_REF: &str = "artifactRepositoryRef";
/// The ConfigMap of artifact repositories when a ref names none (Argo's).
pub const ARTIFACT_REPOSITORIES: &str = "artifact-repositories";
/// The annotation naming a ConfigMap's default repository key (Argo's).
pub const DEFAULT_REPOSITORY_ANNOTATION: &str = "workflows.argoproj.io/default-artifact-repository";

/// Where referenced objects come from.
pub trait Objects {
    /// The spec of a WorkflowTemplate (`cluster`: a ClusterWorkflowTemplate), if stored.
    fn template_spec(
        &self,
        namespace: &str,
        name: &str,
        cluster: bool,
    ) -> Result<Option<WorkflowSpec>, String>;
    /// The `data` of a ConfigMap, if stored.
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, String>;
    /// An annotation of a stored ConfigMap.
    fn config_map_annotation(
        &self,
        namespace: &str,
        name: &str,
        annotation: &str,
    ) -> Result<Option<String>, String> {
        let _ = (namespace, name, annotation);
        Ok(None)
    }
}

/// Checks the run's own repository with `check` (the executor's rules), the error naming
/// the ConfigMap and key it came from.
pub fn check_run_repository(
    workflow: &Workflow,
    check: impl Fn(&RepositoryLocation) -> Result<(), String>,
) -> Result<(), String> {
    let Some(location) = run_repository(workflow) else {
        return Ok(());
    };
    check(&location).map_err(|e| {
        let from = workflow
            .status
            .as_ref()
            .and_then(|s| s.get(ARTIFACT_REPOSITORY_REF));
        let field = |f: &str| {
            from.and_then(|r| r.get(f))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        format!(
            "spec.artifactRepositoryRef: ConfigMap '{}' key '{}': {e}",
            field("configMap"),
            field("key")
        )
    })
}

/// The run's own repository, from its `status.artifactRepositoryRef` (`None`: the
/// configured one).
pub fn run_repository(workflow: &Workflow) -> Option<RepositoryLocation> {
    let found = workflow
        .status
        .as_ref()?
        .get(ARTIFACT_REPOSITORY_REF)?
        .get("artifactRepository")?;
    serde_json::from_value(found.clone()).ok()
}

impl Objects for Store {
    fn template_spec(
        &self,
        namespace: &str,
        name: &str,
        cluster: bool,
    ) -> Result<Option<WorkflowSpec>, String> {
        let kind = if cluster {
            ObjectKind::ClusterWorkflowTemplate
        } else {
            ObjectKind::WorkflowTemplate
        };
        let Some(text) = self
            .get_object(kind, namespace, name)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let object: Value = serde_json::from_str(&text)
            .map_err(|e| format!("stored {} {name}: {e}", kind.as_str()))?;
        let spec = object.get("spec").cloned().unwrap_or(Value::Null);
        serde_json::from_value(spec)
            .map(Some)
            .map_err(|e| format!("stored {} {name}: spec: {e}", kind.as_str()))
    }

    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, String> {
        let Some(text) = self
            .get_object(ObjectKind::ConfigMap, namespace, name)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        config_map_data(&text).map(Some)
    }

    fn config_map_annotation(
        &self,
        namespace: &str,
        name: &str,
        annotation: &str,
    ) -> Result<Option<String>, String> {
        let Some(text) = self
            .get_object(ObjectKind::ConfigMap, namespace, name)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let object: Value = serde_json::from_str(&text).map_err(|e| format!("ConfigMap: {e}"))?;
        Ok(object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(annotation))
            .and_then(Value::as_str)
            .map(str::to_string))
    }
}

/// A ConfigMap's `data` (non-string values are refused, as Kubernetes does).
pub fn config_map_data(text: &str) -> Result<BTreeMap<String, String>, String> {
    let object: Value = serde_json::from_str(text).map_err(|e| format!("ConfigMap: {e}"))?;
    let mut data = BTreeMap::new();
    if let Some(map) = object.get("data").and_then(Value::as_object) {
        for (key, value) in map {
            let Some(value) = value.as_str() else {
                return Err(format!("data.{key}: must be a string"));
            };
            data.insert(key.clone(), value.to_string());
        }
    }
    Ok(data)
}

/// The key of a stored template: `namespaced/<name>/<template>` or `cluster/<name>/<template>`.
pub fn stored_key(reference: &TemplateRef) -> Result<String, String> {
    let name = reference
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or("templateRef.name: required")?;
    let template = reference
        .template
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or("templateRef.template: required")?;
    let scope = if reference.cluster_scope == Some(true) {
        "cluster"
    } else {
        "namespaced"
    };
    Ok(format!("{scope}/{name}/{template}"))
}

/// Resolve `workflow`'s references (see the module doc); errors name the reference.
pub fn resolve(workflow: &mut Workflow, objects: &dyn Objects) -> Result<(), String> {
    let namespace = workflow
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let mut resolver = Resolver {
        namespace: &namespace,
        objects,
        specs: HashMap::new(),
    };
    // A submitted status is not the run's: Argo ignores it too.
    let mut status = Map::new();
    let stored_spec = match workflow.spec.workflow_template_ref.clone() {
        Some(reference) => {
            let cluster = reference.cluster_scope == Some(true);
            let name = reference
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or("spec.workflowTemplateRef.name: required")?;
            let base = resolver
                .spec(&name, cluster)
                .map_err(|e| format!("spec.workflowTemplateRef: {e}"))?;
            let mut own = workflow.spec.clone();
            own.workflow_template_ref = None;
            let mut joined = to_value(&base)?;
            join(&mut joined, to_value(&own)?);
            resolver.fill_config_maps(&mut joined, "spec")?;
            let joined: WorkflowSpec = serde_json::from_value(joined)
                .map_err(|e| format!("spec.workflowTemplateRef {name}: cannot merge: {e}"))?;
            Some(joined)
        }
        None => {
            let mut own = to_value(&workflow.spec)?;
            resolver.fill_config_maps(&mut own, "spec")?;
            workflow.spec = serde_json::from_value(own).map_err(|e| format!("spec: {e}"))?;
            None
        }
    };
    let effective = stored_spec.as_ref().unwrap_or(&workflow.spec);
    let stored = resolver.stored_templates(effective)?;
    if let Some(spec) = &stored_spec {
        status.insert(STORED_SPEC.into(), to_value(spec)?);
    }
    if !stored.is_empty() {
        status.insert(STORED_TEMPLATES.into(), Value::Object(stored));
    }
    let repository = artifact_repository(
        effective.artifact_repository_ref.as_ref(),
        &namespace,
        objects,
    )
    .map_err(|e| format!("spec.artifactRepositoryRef: {e}"))?;
    status.insert(ARTIFACT_REPOSITORY_REF.into(), repository);
    workflow.status = (!status.is_empty()).then_some(Value::Object(status));
    Ok(())
}

/// Argo's `status.artifactRepositoryRef` for `reference` (see the module doc).
fn artifact_repository(
    reference: Option<&ArtifactRepositoryRef>,
    namespace: &str,
    objects: &dyn Objects,
) -> Result<Value, String> {
    let named = reference
        .and_then(|r| r.config_map.clone())
        .filter(|n| !n.is_empty());
    let name = named
        .clone()
        .unwrap_or_else(|| ARTIFACT_REPOSITORIES.to_string());
    let data = objects.config_map(namespace, &name)?;
    let key = match reference
        .and_then(|r| r.key.clone())
        .filter(|k| !k.is_empty())
    {
        Some(key) => Some(key),
        None => objects.config_map_annotation(namespace, &name, DEFAULT_REPOSITORY_ANNOTATION)?,
    };
    let (data, key) = match (data, key, reference) {
        (Some(data), Some(key), _) => (data, key),
        // No ref and no default in the namespace: the configured repository, as Argo's
        // controller falls back to its own.
        (_, _, None) => return Ok(serde_json::json!({"default": true})),
        // A ref to the default ConfigMap, none stored in the namespace: the configured
        // repository stands in for the `artifact-repositories` ConfigMap an Argo
        // installation provides (Argo would refuse the ref). A ConfigMap named in the ref
        // must exist.
        (None, _, Some(_)) if named.is_none() => {
            return Ok(serde_json::json!({"default": true}));
        }
        (None, _, Some(_)) => {
            return Err(format!(
                "ConfigMap '{name}' not found in namespace '{namespace}'"
            ));
        }
        (Some(_), None, Some(_)) => {
            return Err(format!(
                "no key given and ConfigMap '{name}' has no annotation {DEFAULT_REPOSITORY_ANNOTATION}"
            ));
        }
    };
    let text = data
        .get(&key)
        .ok_or_else(|| format!("key '{key}' not found in ConfigMap '{name}'"))?;
    let location = RepositoryLocation::parse(text, namespace)
        .map_err(|e| format!("ConfigMap '{name}' key '{key}': {e}"))?;
    Ok(serde_json::json!({
        "configMap": name,
        "key": key,
        "namespace": namespace,
        "artifactRepository": location,
    }))
}

struct Resolver<'r> {
    namespace: &'r str,
    objects: &'r dyn Objects,
    /// Specs fetched so far, by (cluster, name).
    specs: HashMap<(bool, String), WorkflowSpec>,
}

impl Resolver<'_> {
    fn spec(&mut self, name: &str, cluster: bool) -> Result<WorkflowSpec, String> {
        if let Some(spec) = self.specs.get(&(cluster, name.to_string())) {
            return Ok(spec.clone());
        }
        let kind = if cluster {
            "ClusterWorkflowTemplate"
        } else {
            "WorkflowTemplate"
        };
        let spec = self
            .objects
            .template_spec(self.namespace, name, cluster)?
            .ok_or_else(|| match cluster {
                true => format!("{kind} '{name}' not found"),
                false => format!(
                    "{kind} '{name}' not found in namespace '{}'",
                    self.namespace
                ),
            })?;
        self.specs.insert((cluster, name.to_string()), spec.clone());
        Ok(spec)
    }

    /// Every template reachable through `templateRef` from `spec`, by stored key.
    fn stored_templates(&mut self, spec: &WorkflowSpec) -> Result<Map<String, Value>, String> {
        let mut stored = Map::new();
        // (key of the calling scope, template): plain names resolve in that scope.
        let mut pending: Vec<(Option<String>, Template)> =
            spec.templates.iter().map(|t| (None, t.clone())).collect();
        while let Some((scope, template)) = pending.pop() {
            for reference in references(&template) {
                let (key, reference) = match (reference, &scope) {
                    (Reference::Plain(_), None) => continue,
                    (Reference::Plain(name), Some(scope)) => {
                        let (cluster_scope, wftmpl) = scope.split_once('/').unwrap_or_default();
                        let reference = TemplateRef {
                            name: Some(wftmpl.to_string()),
                            template: Some(name),
                            cluster_scope: Some(cluster_scope == "cluster"),
                        };
                        (stored_key(&reference)?, reference)
                    }
                    (Reference::Ref(reference), _) => (stored_key(&reference)?, reference),
                };
                if stored.contains_key(&key) {
                    continue;
                }
                let (name, wanted) = (
                    reference.name.clone().unwrap_or_default(),
                    reference.template.clone().unwrap_or_default(),
                );
                let cluster = reference.cluster_scope == Some(true);
                let spec = self
                    .spec(&name, cluster)
                    .map_err(|e| format!("templateRef {name}/{wanted}: {e}"))?;
                let found = spec
                    .templates
                    .iter()
                    .find(|t| t.name.as_deref() == Some(wanted.as_str()))
                    .ok_or_else(|| {
                        format!(
                            "templateRef {name}/{wanted}: template '{wanted}' not found in '{name}'"
                        )
                    })?;
                let mut value = to_value(found)?;
                self.fill_config_maps(&mut value, &format!("templateRef {name}/{wanted}"))?;
                let template: Template = serde_json::from_value(value.clone())
                    .map_err(|e| format!("templateRef {name}/{wanted}: {e}"))?;
                stored.insert(key.clone(), value);
                let scope = key.rsplit_once('/').map(|(s, _)| s.to_string());
                pending.push((scope, template));
            }
        }
        Ok(stored)
    }

    /// Write the value of every `configMapKeyRef` parameter under `value` into it.
    fn fill_config_maps(&self, value: &mut Value, at: &str) -> Result<(), String> {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    let at = format!("{at}.{key}");
                    if key == "parameters"
                        && let Value::Array(parameters) = child
                    {
                        for (i, parameter) in parameters.iter_mut().enumerate() {
                            self.fill_parameter(parameter, &format!("{at}[{i}]"))?;
                        }
                    }
                    self.fill_config_maps(child, &at)?;
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.fill_config_maps(item, &format!("{at}[{i}]"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn fill_parameter(&self, parameter: &mut Value, at: &str) -> Result<(), String> {
        let Some(selector) = parameter.pointer("/valueFrom/configMapKeyRef") else {
            return Ok(());
        };
        if parameter.get("value").is_some() {
            return Ok(());
        }
        let name = selector.get("name").and_then(Value::as_str).unwrap_or("");
        let key = selector.get("key").and_then(Value::as_str).unwrap_or("");
        let optional = selector.get("optional").and_then(Value::as_bool) == Some(true);
        let at = format!("{at}.valueFrom.configMapKeyRef");
        let data = self
            .objects
            .config_map(self.namespace, name)
            .map_err(|e| format!("{at}: {e}"))?;
        let found = data.as_ref().and_then(|d| d.get(key)).cloned();
        match (found, data.is_some()) {
            (Some(found), _) => {
                if let Value::Object(p) = parameter {
                    p.insert("value".into(), Value::String(found));
                }
                Ok(())
            }
            // Missing and optional (or with a default): the parameter's default applies.
            _ if optional || parameter.pointer("/valueFrom/default").is_some() => Ok(()),
            (None, true) => Err(format!("{at}: key '{key}' not found in ConfigMap '{name}'")),
            (None, false) => Err(format!(
                "{at}: ConfigMap '{name}' not found in namespace '{}'",
                self.namespace
            )),
        }
    }
}

enum Reference {
    Plain(String),
    Ref(TemplateRef),
}

/// The templates a template calls: steps, DAG tasks and their hooks.
fn references(template: &Template) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut add = |plain: Option<&String>, reference: Option<&TemplateRef>| {
        if let Some(reference) = reference {
            out.push(Reference::Ref(reference.clone()));
        } else if let Some(plain) = plain.filter(|p| !p.contains("{{")) {
            out.push(Reference::Plain(plain.clone()));
        }
    };
    for step in template.steps.iter().flatten() {
        add(step.template.as_ref(), step.template_ref.as_ref());
        add(step.on_exit.as_ref(), None);
        for hook in step.hooks.values() {
            add(hook.template.as_ref(), hook.template_ref.as_ref());
        }
    }
    for task in template.dag.iter().flat_map(|d| d.tasks.iter()) {
        add(task.template.as_ref(), task.template_ref.as_ref());
        add(task.on_exit.as_ref(), None);
        for hook in task.hooks.values() {
            add(hook.template.as_ref(), hook.template_ref.as_ref());
        }
    }
    out
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| format!("cannot encode: {e}"))
}

/// Lay `over` onto `base` as Argo joins a workflow's spec with its WorkflowTemplate's:
/// objects merge key by key, lists of named items (templates, parameters, artifacts) merge
/// by name, anything else is replaced.
fn join(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => join(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(over)) if named(base) && named(&over) => {
            for item in over {
                let name = item.get("name").cloned();
                match base.iter_mut().find(|b| b.get("name") == name.as_ref()) {
                    Some(existing) => join(existing, item),
                    None => base.push(item),
                }
            }
        }
        (base, over) => *base = over,
    }
}

fn named(items: &[Value]) -> bool {
    items
        .iter()
        .all(|item| item.get("name").is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fixed {
        templates: Vec<(bool, &'static str, &'static str)>,
        config_maps: Vec<(&'static str, &'static str, &'static str)>,
        /// (ConfigMap, default repository key annotation).
        annotations: Vec<(&'static str, &'static str)>,
    }

    impl Objects for Fixed {
        fn template_spec(
            &self,
            _namespace: &str,
            name: &str,
            cluster: bool,
        ) -> Result<Option<WorkflowSpec>, String> {
            Ok(self
                .templates
                .iter()
                .find(|(c, n, _)| *c == cluster && *n == name)
                .map(|(_, _, yaml)| serde_saphyr::from_str(yaml).expect("spec")))
        }

        fn config_map(
            &self,
            _namespace: &str,
            name: &str,
        ) -> Result<Option<BTreeMap<String, String>>, String> {
            let data: BTreeMap<String, String> = self
                .config_maps
                .iter()
                .filter(|(n, _, _)| *n == name)
                .map(|(_, k, v)| (k.to_string(), v.to_string()))
                .collect();
            Ok((!data.is_empty()).then_some(data))
        }

        fn config_map_annotation(
            &self,
            _namespace: &str,
            name: &str,
            annotation: &str,
        ) -> Result<Option<String>, String> {
            assert_eq!(annotation, DEFAULT_REPOSITORY_ANNOTATION);
            Ok(self
                .annotations
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, key)| key.to_string()))
        }
    }

    #[test]
    fn artifact_repository_refs() {
        let base = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w, namespace: ns}\nspec:\n  entrypoint: m\n  templates: [{name: m, container: {image: x}}]\n";
        let status = |objects: &Fixed, extra: &str| {
            let mut wf = workflow(&format!("{base}{extra}"));
            resolve(&mut wf, objects).map(|()| {
                let repository = run_repository(&wf);
                (
                    wf.status.unwrap()[ARTIFACT_REPOSITORY_REF].clone(),
                    repository,
                )
            })
        };
        // Nothing stored: the configured repository, with or without a ref to a key of the
        // default ConfigMap (which an Argo installation would provide).
        for extra in ["", "  artifactRepositoryRef: {key: my-key}\n"] {
            let (r, l) = status(&Fixed::default(), extra).unwrap();
            assert_eq!(r, serde_json::json!({"default": true}));
            assert_eq!(l, None);
        }
        let objects = Fixed {
            config_maps: vec![
                ("artifact-repositories", "a", "local: {path: /a}"),
                ("artifact-repositories", "bad", "local: {path: rel}"),
                (
                    "mine",
                    "b",
                    "s3: {bucket: bb, endpoint: 'h:1', insecure: true}",
                ),
            ],
            annotations: vec![("artifact-repositories", "a")],
            ..Fixed::default()
        };
        // No ref: the namespace's default (annotation), as Argo does.
        let (r, l) = status(&objects, "").unwrap();
        assert_eq!(
            r,
            serde_json::json!({"configMap": "artifact-repositories", "key": "a", "namespace": "ns",
                "artifactRepository": {"local": {"path": "/a"}}})
        );
        assert_eq!(l, Some(RepositoryLocation::Local { path: "/a".into() }));
        let (r, _) = status(
            &objects,
            "  artifactRepositoryRef: {configMap: mine, key: b}\n",
        )
        .unwrap();
        assert_eq!(r["artifactRepository"]["s3"]["bucket"], "bb");
        assert_eq!(r["configMap"], "mine");
        for (extra, error) in [
            (
                "{configMap: mine}",
                "no key given and ConfigMap 'mine' has no annotation",
            ),
            (
                "{key: zz}",
                "key 'zz' not found in ConfigMap 'artifact-repositories'",
            ),
            (
                "{configMap: gone}",
                "ConfigMap 'gone' not found in namespace 'ns'",
            ),
            (
                "{key: bad}",
                "ConfigMap 'artifact-repositories' key 'bad': local.path: must be absolute",
            ),
        ] {
            let e = status(&objects, &format!("  artifactRepositoryRef: {extra}\n")).unwrap_err();
            assert!(
                e.starts_with("spec.artifactRepositoryRef: ") && e.contains(error),
                "{e}"
            );
        }
    }

    fn workflow(yaml: &str) -> Workflow {
        serde_saphyr::from_str(yaml).expect("workflow")
    }

    const INNER: &str = "templates:\n- name: outer\n  steps:\n  - - name: a\n      template: leaf\n- name: leaf\n  container: {image: busybox}\n- name: unused\n  container: {image: busybox}\n";

    #[test]
    fn template_refs_store_the_template_and_what_it_calls_by_name() {
        let objects = Fixed {
            templates: vec![(true, "lib", INNER)],
            ..Fixed::default()
        };
        let mut wf = workflow(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    steps:\n    - - name: s\n        templateRef: {name: lib, template: outer, clusterScope: true}\n",
        );
        resolve(&mut wf, &objects).unwrap();
        let stored = &wf.status.as_ref().unwrap()[STORED_TEMPLATES];
        let mut keys: Vec<&String> = stored.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["cluster/lib/leaf", "cluster/lib/outer"]);
        assert_eq!(stored["cluster/lib/outer"]["name"], "outer");
    }

    #[test]
    fn missing_templates_and_config_maps_are_named() {
        let mut wf = workflow(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec:\n  workflowTemplateRef: {name: nope}\n",
        );
        let err = resolve(&mut wf, &Fixed::default()).unwrap_err();
        assert_eq!(
            err,
            "spec.workflowTemplateRef: WorkflowTemplate 'nope' not found in namespace 'default'"
        );
        let mut wf = workflow(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec:\n  arguments:\n    parameters:\n    - name: m\n      valueFrom: {configMapKeyRef: {name: cm, key: k}}\n",
        );
        let err = resolve(&mut wf, &Fixed::default()).unwrap_err();
        assert_eq!(
            err,
            "spec.arguments.parameters[0].valueFrom.configMapKeyRef: ConfigMap 'cm' not found in namespace 'default'"
        );
    }

    #[test]
    fn workflow_template_ref_joins_specs_and_fills_config_maps() {
        let objects = Fixed {
            templates: vec![(
                false,
                "base",
                "entrypoint: main\narguments:\n  parameters:\n  - {name: a, value: from-template}\n  - name: b\n    valueFrom: {configMapKeyRef: {name: cm, key: k}}\ntemplates:\n- name: main\n  container: {image: busybox}\n",
            )],
            config_maps: vec![("cm", "k", "from-configmap")],
            ..Fixed::default()
        };
        let mut wf = workflow(
            "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: w}\nspec:\n  arguments:\n    parameters:\n    - {name: a, value: mine}\n  workflowTemplateRef: {name: base}\n",
        );
        resolve(&mut wf, &objects).unwrap();
        let spec = &wf.status.as_ref().unwrap()[STORED_SPEC];
        assert_eq!(spec["entrypoint"], "main");
        assert_eq!(spec["arguments"]["parameters"][0]["value"], "mine");
        assert_eq!(
            spec["arguments"]["parameters"][1]["value"],
            "from-configmap"
        );
        assert!(spec.get("workflowTemplateRef").is_none());
    }
}
