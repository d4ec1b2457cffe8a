//! Objects kept beside runs (WorkflowTemplates, ClusterWorkflowTemplates, ConfigMaps,
//! Secrets): read from a document, checked, and stored with the metadata a server sets. `cox
//! apply` and the API share this.
//!
//! Secrets are stored as Kubernetes keeps them: `stringData` merged into `data` as base64
//! (a `stringData` key wins) and dropped. Their values are read only by
//! [`SecretSource::secret_value`], when a step's bucket needs its keys; errors name the
//! Secret and key, never a value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use cox_config::model::{ClusterWorkflowTemplate, Manifest, WorkflowTemplate};
use cox_worker::repo_config::{SecretRef, SecretSource};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::resolve::{DEFAULT_NAMESPACE, config_map_data};
use crate::store::{ObjectKind, PutMode, Store};

/// A WorkflowTemplate, ClusterWorkflowTemplate, ConfigMap or Secret, checked and ready to
/// store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its namespace (empty for cluster templates).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The whole object.
    pub value: Value,
}

impl StoredObject {
    /// Check a document as an object of `kind` (a missing `kind:` is taken as that kind):
    /// the metadata name is required, templates must type as Argo's, ConfigMap data must be
    /// strings. `namespace` is used when the object has none. Errors say what and where.
    pub fn from_value(
        kind: ObjectKind,
        mut value: Value,
        namespace: Option<&str>,
    ) -> std::result::Result<StoredObject, String> {
        let Value::Object(object) = &mut value else {
            return Err("must be an object".into());
        };
        match object.get("kind").and_then(Value::as_str) {
            None => {
                object.insert("kind".into(), json!(kind.as_str()));
            }
            Some(found) if found == kind.as_str() => {}
            Some(found) => return Err(format!("kind: must be {}, not {found}", kind.as_str())),
        }
        let api_version = match kind {
            ObjectKind::ConfigMap | ObjectKind::Secret => "v1",
            _ => cox_config::load::API_VERSION,
        };
        object
            .entry("apiVersion")
            .or_insert_with(|| json!(api_version));
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        let Value::Object(metadata) = metadata else {
            return Err("metadata: must be an object".into());
        };
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("metadata.name: required")?
            .to_string();
        let namespace = if kind.is_namespaced() {
            let given = metadata
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let namespace = namespace.or(given).unwrap_or(DEFAULT_NAMESPACE).to_string();
            metadata.insert("namespace".into(), json!(namespace));
            namespace
        } else {
            metadata.remove("namespace");
            String::new()
        };
        match kind {
            ObjectKind::WorkflowTemplate => {
                serde_json::from_value::<WorkflowTemplate>(value.clone())
                    .map_err(|e| e.to_string())?;
            }
            ObjectKind::ClusterWorkflowTemplate => {
                serde_json::from_value::<ClusterWorkflowTemplate>(value.clone())
                    .map_err(|e| e.to_string())?;
            }
            ObjectKind::ConfigMap => {
                config_map_data(&value.to_string())?;
            }
            ObjectKind::Secret => normalize_secret(&mut value)?,
        }
        Ok(StoredObject {
            kind,
            namespace,
            name,
            value,
        })
    }

    /// Store it (`mode` decides about an existing one), with a uid and creation time (kept
    /// from the object it replaces); the object as stored.
    pub fn put(mut self, store: &Store, mode: PutMode, now: DateTime<Utc>) -> Result<Value> {
        let previous = store.get_object(self.kind, &self.namespace, &self.name)?;
        let previous: Option<Value> = previous.and_then(|text| serde_json::from_str(&text).ok());
        if let Some(metadata) = self
            .value
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            for key in ["uid", "creationTimestamp"] {
                let kept = previous
                    .as_ref()
                    .and_then(|p| p.pointer(&format!("/metadata/{key}")))
                    .cloned();
                let value = kept.unwrap_or_else(|| match key {
                    "uid" => json!(crate::server::workflow::new_uid()),
                    _ => json!(now.to_rfc3339_opts(SecondsFormat::Secs, true)),
                });
                metadata.insert(key.into(), value);
            }
        }
        let text = serde_json::to_string(&self.value).map_err(|e| Error::Encode {
            what: self.kind.as_str(),
            message: e.to_string(),
        })?;
        store.put_object(self.kind, &self.namespace, &self.name, &text, mode)?;
        Ok(self.value)
    }
}

/// Checks a Secret's `data` (base64 strings) and `stringData` (strings) and merges the
/// latter into the former, as Kubernetes stores a Secret. Errors never quote a value.
fn normalize_secret(value: &mut Value) -> std::result::Result<(), String> {
    let Value::Object(object) = value else {
        return Err("must be an object".into());
    };
    let mut data = match object.remove("data") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => return Err("data: must be an object".into()),
    };
    for (key, v) in &data {
        let text = v
            .as_str()
            .ok_or_else(|| format!("data.{key}: must be a string"))?;
        BASE64
            .decode(text)
            .map_err(|_| format!("data.{key}: must be base64"))?;
    }
    match object.remove("stringData") {
        None | Some(Value::Null) => {}
        Some(Value::Object(plain)) => {
            for (key, v) in plain {
                let text = v
                    .as_str()
                    .ok_or_else(|| format!("stringData.{key}: must be a string"))?;
                data.insert(key, json!(BASE64.encode(text)));
            }
        }
        Some(_) => return Err("stringData: must be an object".into()),
    }
    object.insert("data".into(), Value::Object(data));
    object.entry("type").or_insert_with(|| json!("Opaque"));
    Ok(())
}

impl SecretSource for Store {
    fn secret_value(&self, secret: &SecretRef) -> std::result::Result<String, String> {
        let text = self
            .get_object(ObjectKind::Secret, &secret.namespace, &secret.name)
            .map_err(|e| format!("{secret}: {e}"))?
            .ok_or_else(|| {
                format!(
                    "secret '{}' not found in namespace '{}'",
                    secret.name, secret.namespace
                )
            })?;
        let object: Value =
            serde_json::from_str(&text).map_err(|_| format!("{secret}: not a stored Secret"))?;
        let encoded = object
            .pointer("/data")
            .and_then(|d| d.get(&secret.key))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("key '{}' not found in secret '{}'", secret.key, secret.name))?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| format!("{secret}: not base64"))?;
        String::from_utf8(bytes).map_err(|_| format!("{secret}: not UTF-8 text"))
    }
}

/// The stored WorkflowTemplates of `namespace` and every ClusterWorkflowTemplate, typed, for
/// lint to check `templateRef`/`workflowTemplateRef` against.
pub fn template_manifests(store: &Store, namespace: &str) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for (kind, namespace) in [
        (ObjectKind::WorkflowTemplate, Some(namespace)),
        (ObjectKind::ClusterWorkflowTemplate, None),
    ] {
        for text in store.list_objects(kind, namespace)? {
            let loaded = cox_config::load::load("stored", &text);
            out.extend(loaded.documents.into_iter().map(|d| d.manifest));
        }
    }
    Ok(out)
}

/// A stored object by name, parsed.
pub fn get(store: &Store, kind: ObjectKind, namespace: &str, name: &str) -> Result<Value> {
    let text = store
        .get_object(kind, namespace, name)?
        .ok_or_else(|| Error::ObjectNotFound {
            kind: kind.as_str(),
            name: name.to_string(),
        })?;
    parse(kind, &text)
}

/// The stored objects of a kind in a namespace (all namespaces when `None`), parsed.
pub fn list(store: &Store, kind: ObjectKind, namespace: Option<&str>) -> Result<Vec<Value>> {
    store
        .list_objects(kind, namespace)?
        .iter()
        .map(|text| parse(kind, text))
        .collect()
}

fn parse(kind: ObjectKind, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Decode {
        what: kind.as_str(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_through_the_store_and_keep_their_uid() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(&home.path().join("store")).unwrap();
        let now = Utc::now();
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"k": "v"}});
        let object =
            StoredObject::from_value(ObjectKind::ConfigMap, config_map.clone(), Some("argo"))
                .unwrap();
        assert_eq!(object.namespace, "argo");
        let stored = object.clone().put(&store, PutMode::Create, now).unwrap();
        let uid = stored["metadata"]["uid"].clone();
        assert!(matches!(
            object.clone().put(&store, PutMode::Create, now),
            Err(Error::ObjectExists { .. })
        ));
        let again = object.put(&store, PutMode::Update, now).unwrap();
        assert_eq!(again["metadata"]["uid"], uid);
        assert_eq!(
            get(&store, ObjectKind::ConfigMap, "argo", "cm").unwrap()["data"]["k"],
            "v"
        );
        assert_eq!(
            list(&store, ObjectKind::ConfigMap, Some("argo"))
                .unwrap()
                .len(),
            1
        );
        assert!(
            list(&store, ObjectKind::ConfigMap, Some("other"))
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .delete_object(ObjectKind::ConfigMap, "argo", "cm")
                .unwrap()
        );
        assert!(matches!(
            get(&store, ObjectKind::ConfigMap, "argo", "cm"),
            Err(Error::ObjectNotFound { .. })
        ));
    }

    #[test]
    fn secrets_are_stored_as_kubernetes_keeps_them_and_read_by_reference() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(&home.path().join("store")).unwrap();
        let secret = json!({"kind": "Secret", "metadata": {"name": "s3"},
            "data": {"accessKey": BASE64.encode("AKID"), "both": BASE64.encode("old")},
            "stringData": {"secretKey": "SHHH", "both": "new"}});
        let object = StoredObject::from_value(ObjectKind::Secret, secret, Some("argo")).unwrap();
        assert_eq!(object.value["apiVersion"], "v1");
        assert_eq!(object.value["type"], "Opaque");
        assert!(object.value.get("stringData").is_none());
        assert_eq!(object.value["data"]["secretKey"], BASE64.encode("SHHH"));
        object.put(&store, PutMode::Create, Utc::now()).unwrap();
        let value = |name: &str, key: &str| {
            store.secret_value(&SecretRef {
                namespace: "argo".into(),
                name: name.into(),
                key: key.into(),
            })
        };
        assert_eq!(value("s3", "accessKey").unwrap(), "AKID");
        assert_eq!(value("s3", "secretKey").unwrap(), "SHHH");
        assert_eq!(value("s3", "both").unwrap(), "new");
        assert_eq!(
            value("s3", "nope").unwrap_err(),
            "key 'nope' not found in secret 's3'"
        );
        assert_eq!(
            value("gone", "accessKey").unwrap_err(),
            "secret 'gone' not found in namespace 'argo'"
        );
        // Bad values are refused by field, never quoted.
        for (bad, error) in [
            (
                json!({"data": {"k": "not base64!"}}),
                "data.k: must be base64",
            ),
            (json!({"data": {"k": 1}}), "data.k: must be a string"),
            (
                json!({"stringData": {"k": 1}}),
                "stringData.k: must be a string",
            ),
            (json!({"stringData": "x"}), "stringData: must be an object"),
        ] {
            let mut secret = bad;
            secret["metadata"] = json!({"name": "x"});
            assert_eq!(
                StoredObject::from_value(ObjectKind::Secret, secret, None).unwrap_err(),
                error
            );
        }
    }

    #[test]
    fn bad_objects_are_refused_with_the_field() {
        let bad = |kind, value| StoredObject::from_value(kind, value, None).unwrap_err();
        assert_eq!(
            bad(ObjectKind::ConfigMap, json!({"metadata": {}})),
            "metadata.name: required"
        );
        assert_eq!(
            bad(
                ObjectKind::ConfigMap,
                json!({"metadata": {"name": "x"}, "data": {"n": 1}})
            ),
            "data.n: must be a string"
        );
        assert_eq!(
            bad(
                ObjectKind::WorkflowTemplate,
                json!({"kind": "Workflow", "metadata": {"name": "x"}})
            ),
            "kind: must be WorkflowTemplate, not Workflow"
        );
        let object = StoredObject::from_value(
            ObjectKind::ClusterWorkflowTemplate,
            json!({"metadata": {"name": "c", "namespace": "x"}, "spec": {}}),
            Some("argo"),
        )
        .unwrap();
        assert_eq!(object.namespace, "");
        assert!(object.value["metadata"].get("namespace").is_none());
    }
}
