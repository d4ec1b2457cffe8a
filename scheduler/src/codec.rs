//! The store's binary encoding: the one place bincode is used.
//!
//! A record is one format version byte followed by the value in bincode 2's standard
//! configuration (through serde). A record of a newer version is refused with
//! [`Error::UnsupportedFormat`]; one of an older version is read through that version's
//! shapes ([`decode_migrating`] and [`Versioned`]; the shapes of earlier versions live in
//! this module, each version's converted to the next, so that any older version reads). A
//! store of an older version is rewritten in this one when it is opened, after a backup (see
//! [`crate::migrate`]); a bump of [`FORMAT_VERSION`] adds the old shapes here, their
//! conversion to the next version's, and their rewrite to `migrate`'s table.
//!
//! Versions: 1, the first; 2, nodes gained `memoization`; 3, saved artifacts (node outputs,
//! global outputs, step cache entries) record the bucket they were saved to.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 3;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encode `value`, prefixed with [`FORMAT_VERSION`]; `what` names it in errors.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut bytes = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut bytes, config()).map_err(|e| {
        Error::Encode {
            what,
            message: e.to_string(),
        }
    })?;
    Ok(bytes)
}

/// Decode a record written by [`encode`]; the whole record must be used.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (version, body) = split(what, bytes)?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            what,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    decode_body(what, body)
}

/// Encode `value` as a record of format `version` (a tool or test writing a store as an
/// older cox did, with that version's shape of the value).
pub fn encode_as<T: Serialize>(version: u8, what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut bytes = encode(what, value)?;
    bytes[0] = version;
    Ok(bytes)
}

/// A stored value whose records of older format versions can still be read.
pub trait Versioned: DeserializeOwned {
    /// The value of a record body of the older `version`, read through that version's
    /// shape; `None` when that version is not read.
    fn from_older(what: &'static str, version: u8, body: &[u8]) -> Option<Result<Self>>;
}

/// Decode a record of this format, or of an older one through its shapes.
pub fn decode_migrating<T: Versioned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (version, body) = split(what, bytes)?;
    let found = match version {
        FORMAT_VERSION => return decode_body(what, body),
        older if older < FORMAT_VERSION => T::from_older(what, older, body),
        _ => None,
    };
    found.unwrap_or(Err(Error::UnsupportedFormat {
        what,
        found: version,
        supported: FORMAT_VERSION,
    }))
}

fn split<'b>(what: &'static str, bytes: &'b [u8]) -> Result<(u8, &'b [u8])> {
    match bytes.split_first() {
        Some((&version, body)) => Ok((version, body)),
        None => Err(Error::Decode {
            what,
            message: "empty record".into(),
        }),
    }
}

fn decode_body<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T> {
    let (value, used) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| Error::Decode {
            what,
            message: e.to_string(),
        })?;
    if used != body.len() {
        return Err(Error::Decode {
            what,
            message: format!("{} trailing bytes", body.len() - used),
        });
    }
    Ok(value)
}

/// Objects are their JSON text in every version.
impl Versioned for String {
    fn from_older(what: &'static str, version: u8, body: &[u8]) -> Option<Result<Self>> {
        (1..FORMAT_VERSION)
            .contains(&version)
            .then(|| decode_body(what, body))
    }
}

impl Versioned for crate::machine::Node {
    fn from_older(what: &'static str, version: u8, body: &[u8]) -> Option<Result<Self>> {
        match version {
            1 => Some(decode_body::<v1::NodeV1>(what, body).map(|n| v2::NodeV2::from(n).into())),
            2 => Some(decode_body::<v2::NodeV2>(what, body).map(Into::into)),
            _ => None,
        }
    }
}

/// A run's header: the same shape in versions 1 and 2.
impl Versioned for crate::machine::RunState {
    fn from_older(what: &'static str, version: u8, body: &[u8]) -> Option<Result<Self>> {
        matches!(version, 1 | 2).then(|| decode_body::<v2::RunStateV2>(what, body).map(Into::into))
    }
}

/// A step cache entry: the same shape in versions 1 and 2.
impl Versioned for crate::cache::CacheEntry {
    fn from_older(what: &'static str, version: u8, body: &[u8]) -> Option<Result<Self>> {
        matches!(version, 1 | 2)
            .then(|| decode_body::<v2::CacheEntryV2>(what, body).map(Into::into))
    }
}

/// Shapes of format version 1 that version 2 changed.
pub mod v1 {
    use serde::{Deserialize, Serialize};

    use super::v2::{NodeV2, OutputsV2};
    use crate::machine::node::{NodeType, Phase};

    /// A node before `memoization`.
    #[derive(Serialize, Deserialize)]
    pub struct NodeV1 {
        id: String,
        name: String,
        display_name: String,
        node_type: NodeType,
        template_name: Option<String>,
        phase: Phase,
        boundary_id: Option<String>,
        children: Vec<String>,
        inputs: Vec<(String, String)>,
        outputs: OutputsV2,
        message: String,
        started_at: Option<String>,
        finished_at: Option<String>,
        attempt: u32,
        resume_at: Option<String>,
        launched: bool,
        exit_hook: Option<String>,
    }

    impl From<NodeV1> for NodeV2 {
        fn from(n: NodeV1) -> NodeV2 {
            NodeV2 {
                id: n.id,
                name: n.name,
                display_name: n.display_name,
                node_type: n.node_type,
                template_name: n.template_name,
                phase: n.phase,
                boundary_id: n.boundary_id,
                children: n.children,
                inputs: n.inputs,
                outputs: n.outputs,
                message: n.message,
                started_at: n.started_at,
                finished_at: n.finished_at,
                attempt: n.attempt,
                resume_at: n.resume_at,
                launched: n.launched,
                exit_hook: n.exit_hook,
                memoization: None,
            }
        }
    }

    /// A node as version 1 wrote it (`memoization` dropped): for writing stores as an
    /// older cox did.
    impl From<&crate::machine::Node> for NodeV1 {
        fn from(n: &crate::machine::Node) -> NodeV1 {
            let n = NodeV2::from(n);
            NodeV1 {
                id: n.id,
                name: n.name,
                display_name: n.display_name,
                node_type: n.node_type,
                template_name: n.template_name,
                phase: n.phase,
                boundary_id: n.boundary_id,
                children: n.children,
                inputs: n.inputs,
                outputs: n.outputs,
                message: n.message,
                started_at: n.started_at,
                finished_at: n.finished_at,
                attempt: n.attempt,
                resume_at: n.resume_at,
                launched: n.launched,
                exit_hook: n.exit_hook,
            }
        }
    }
}

/// Shapes of format version 2 that version 3 changed: saved artifacts without the bucket
/// they were saved to (which version 2 lost: they read as in the run's repository).
/// Conversions from this version's values (dropping the buckets) write stores as an older
/// cox did.
pub mod v2 {
    use std::collections::BTreeMap;

    use cox_worker::step::{ArchiveKind, SavedArtifact, StepOutcome, StepPhase};
    use serde::{Deserialize, Serialize};

    use crate::cache::CacheEntry;
    use crate::machine::RunState;
    use crate::machine::node::{ArtifactRef, MemoizationStatus, Node, NodeType, Outputs, Phase};

    /// An artifact of a node's or the run's outputs.
    #[derive(Serialize, Deserialize)]
    pub struct ArtifactRefV2 {
        name: String,
        key: String,
        path: String,
        archive: String,
        size: u64,
        sha256: String,
    }

    impl From<ArtifactRefV2> for ArtifactRef {
        fn from(a: ArtifactRefV2) -> ArtifactRef {
            ArtifactRef {
                name: a.name,
                key: a.key,
                path: a.path,
                archive: a.archive,
                size: a.size,
                sha256: a.sha256,
                store: None,
            }
        }
    }

    impl From<&ArtifactRef> for ArtifactRefV2 {
        fn from(a: &ArtifactRef) -> ArtifactRefV2 {
            ArtifactRefV2 {
                name: a.name.clone(),
                key: a.key.clone(),
                path: a.path.clone(),
                archive: a.archive.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
            }
        }
    }

    /// A node's outputs.
    #[derive(Serialize, Deserialize)]
    pub struct OutputsV2 {
        parameters: Vec<(String, String)>,
        artifacts: Vec<ArtifactRefV2>,
        result: Option<String>,
        exit_code: Option<i32>,
    }

    impl From<OutputsV2> for Outputs {
        fn from(o: OutputsV2) -> Outputs {
            Outputs {
                parameters: o.parameters,
                artifacts: o.artifacts.into_iter().map(Into::into).collect(),
                result: o.result,
                exit_code: o.exit_code,
            }
        }
    }

    impl From<&Outputs> for OutputsV2 {
        fn from(o: &Outputs) -> OutputsV2 {
            OutputsV2 {
                parameters: o.parameters.clone(),
                artifacts: o.artifacts.iter().map(Into::into).collect(),
                result: o.result.clone(),
                exit_code: o.exit_code,
            }
        }
    }

    /// A node.
    #[derive(Serialize, Deserialize)]
    pub struct NodeV2 {
        pub(super) id: String,
        pub(super) name: String,
        pub(super) display_name: String,
        pub(super) node_type: NodeType,
        pub(super) template_name: Option<String>,
        pub(super) phase: Phase,
        pub(super) boundary_id: Option<String>,
        pub(super) children: Vec<String>,
        pub(super) inputs: Vec<(String, String)>,
        pub(super) outputs: OutputsV2,
        pub(super) message: String,
        pub(super) started_at: Option<String>,
        pub(super) finished_at: Option<String>,
        pub(super) attempt: u32,
        pub(super) resume_at: Option<String>,
        pub(super) launched: bool,
        pub(super) exit_hook: Option<String>,
        pub(super) memoization: Option<MemoizationStatus>,
    }

    impl From<NodeV2> for Node {
        fn from(n: NodeV2) -> Node {
            Node {
                id: n.id,
                name: n.name,
                display_name: n.display_name,
                node_type: n.node_type,
                template_name: n.template_name,
                phase: n.phase,
                boundary_id: n.boundary_id,
                children: n.children,
                inputs: n.inputs,
                outputs: n.outputs.into(),
                message: n.message,
                started_at: n.started_at,
                finished_at: n.finished_at,
                attempt: n.attempt,
                resume_at: n.resume_at,
                launched: n.launched,
                exit_hook: n.exit_hook,
                memoization: n.memoization,
            }
        }
    }

    impl From<&Node> for NodeV2 {
        fn from(n: &Node) -> NodeV2 {
            let n = n.clone();
            NodeV2 {
                id: n.id,
                name: n.name,
                display_name: n.display_name,
                node_type: n.node_type,
                template_name: n.template_name,
                phase: n.phase,
                boundary_id: n.boundary_id,
                children: n.children,
                inputs: n.inputs,
                outputs: OutputsV2::from(&n.outputs),
                message: n.message,
                started_at: n.started_at,
                finished_at: n.finished_at,
                attempt: n.attempt,
                resume_at: n.resume_at,
                launched: n.launched,
                exit_hook: n.exit_hook,
                memoization: n.memoization,
            }
        }
    }

    /// A run's header (versions 1 and 2: its nodes are records of their own).
    #[derive(Serialize, Deserialize)]
    pub struct RunStateV2 {
        name: String,
        workflow_json: String,
        phase: Phase,
        message: String,
        started_at: Option<String>,
        finished_at: Option<String>,
        nodes: BTreeMap<String, NodeV2>,
        global_parameters: Vec<(String, String)>,
        global_artifacts: Vec<ArtifactRefV2>,
        main_result: Option<(Phase, String)>,
        stopped: Option<(String, bool)>,
    }

    impl From<RunStateV2> for RunState {
        fn from(r: RunStateV2) -> RunState {
            let mut state = RunState::stored(r.name, r.workflow_json);
            state.phase = r.phase;
            state.message = r.message;
            state.started_at = r.started_at;
            state.finished_at = r.finished_at;
            state.nodes = (r.nodes.into_iter())
                .map(|(id, n)| (id, n.into()))
                .collect();
            state.global_parameters = r.global_parameters;
            state.global_artifacts = r.global_artifacts.into_iter().map(Into::into).collect();
            state.main_result = r.main_result;
            state.stopped = r.stopped;
            state
        }
    }

    /// The header of `state` (see [`RunState::header`]).
    impl From<&RunState> for RunStateV2 {
        fn from(r: &RunState) -> RunStateV2 {
            RunStateV2 {
                name: r.name.clone(),
                workflow_json: r.workflow_json.to_string(),
                phase: r.phase,
                message: r.message.clone(),
                started_at: r.started_at.clone(),
                finished_at: r.finished_at.clone(),
                nodes: BTreeMap::new(),
                global_parameters: r.global_parameters.clone(),
                global_artifacts: r.global_artifacts.iter().map(Into::into).collect(),
                main_result: r.main_result.clone(),
                stopped: r.stopped.clone(),
            }
        }
    }

    /// A saved artifact of a step's outcome.
    #[derive(Serialize, Deserialize)]
    pub struct SavedArtifactV2 {
        name: String,
        path: String,
        key: String,
        archive: ArchiveKind,
        size: u64,
        sha256: String,
    }

    /// A step's outcome.
    #[derive(Serialize, Deserialize)]
    pub struct StepOutcomeV2 {
        phase: StepPhase,
        exit_code: Option<i32>,
        message: String,
        result: Option<String>,
        parameters: Vec<(String, String)>,
        artifacts: Vec<SavedArtifactV2>,
        started_at: Option<String>,
        finished_at: Option<String>,
        cache_hit: bool,
    }

    /// A step cache entry.
    #[derive(Serialize, Deserialize)]
    pub struct CacheEntryV2 {
        node_id: String,
        run: String,
        outcome: StepOutcomeV2,
        created_at: String,
        last_hit_at: Option<String>,
    }

    impl From<CacheEntryV2> for CacheEntry {
        fn from(e: CacheEntryV2) -> CacheEntry {
            let o = e.outcome;
            let artifacts = (o.artifacts.into_iter())
                .map(|a| SavedArtifact {
                    name: a.name,
                    path: a.path,
                    key: a.key,
                    archive: a.archive,
                    size: a.size,
                    sha256: a.sha256,
                    store: None,
                })
                .collect();
            CacheEntry {
                node_id: e.node_id,
                run: e.run,
                outcome: StepOutcome {
                    phase: o.phase,
                    exit_code: o.exit_code,
                    message: o.message,
                    result: o.result,
                    parameters: o.parameters,
                    artifacts,
                    started_at: o.started_at,
                    finished_at: o.finished_at,
                    cache_hit: o.cache_hit,
                },
                created_at: e.created_at,
                last_hit_at: e.last_hit_at,
            }
        }
    }

    impl From<&CacheEntry> for CacheEntryV2 {
        fn from(e: &CacheEntry) -> CacheEntryV2 {
            let o = e.outcome.clone();
            let artifacts = (o.artifacts.into_iter())
                .map(|a| SavedArtifactV2 {
                    name: a.name,
                    path: a.path,
                    key: a.key,
                    archive: a.archive,
                    size: a.size,
                    sha256: a.sha256,
                })
                .collect();
            CacheEntryV2 {
                node_id: e.node_id.clone(),
                run: e.run.clone(),
                outcome: StepOutcomeV2 {
                    phase: o.phase,
                    exit_code: o.exit_code,
                    message: o.message,
                    result: o.result,
                    parameters: o.parameters,
                    artifacts,
                    started_at: o.started_at,
                    finished_at: o.finished_at,
                    cache_hit: o.cache_hit,
                },
                created_at: e.created_at.clone(),
                last_hit_at: e.last_hit_at.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_value() {
        let value = (
            String::from("wf-abcde"),
            Some(3u32),
            vec![("a".to_string(), "b".to_string())],
        );
        let bytes = encode("test value", &value).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: (String, Option<u32>, Vec<(String, String)>) =
            decode("test value", &bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_version_1_node_is_read_as_a_node_without_memoization() {
        use crate::machine::node::{Node, NodeType, Phase};
        let node = Node {
            id: "wf-1".into(),
            name: "wf.a".into(),
            display_name: "a".into(),
            node_type: NodeType::Pod,
            template_name: Some("t".into()),
            phase: Phase::Succeeded,
            boundary_id: Some("wf".into()),
            children: vec!["wf-2".into()],
            inputs: vec![("p".into(), "v".into())],
            outputs: Default::default(),
            message: "m".into(),
            started_at: Some("2026-11-28T00:00:00Z".into()),
            finished_at: None,
            attempt: 2,
            resume_at: None,
            launched: true,
            exit_hook: None,
            memoization: None,
        };
        // Version 1 had every field but the last (`None` encodes as one byte).
        let mut v1 = encode("node", &node).unwrap();
        v1.pop();
        v1[0] = 1;
        assert_eq!(v1, encode_as(1, "node", &v1::NodeV1::from(&node)).unwrap());
        let back: Node = decode_migrating("node", &v1).unwrap();
        assert_eq!(back, node);
        // `decode` alone takes only this version.
        assert!(matches!(
            decode::<Node>("node", &v1),
            Err(Error::UnsupportedFormat { found: 1, .. })
        ));
    }

    #[test]
    fn an_artifacts_bucket_is_kept_and_a_version_2_node_reads_without_one() {
        use crate::machine::node::{ArtifactRef, Node, NodeType, Phase};
        use cox_worker::repo_config::{RepositoryLocation, SecretKeys, SecretRef};
        let secret = |key: &str| {
            Some(SecretRef {
                namespace: "argo".into(),
                name: "bucket-keys".into(),
                key: key.into(),
            })
        };
        let bucket = RepositoryLocation::S3 {
            endpoint: Some("127.0.0.1:9000".into()),
            bucket: "own".into(),
            region: "us-east-1".into(),
            insecure: true,
            key_prefix: String::new(),
            secrets: Box::new(SecretKeys {
                access_key_secret: secret("access"),
                secret_key_secret: secret("secret"),
                session_token_secret: None,
            }),
        };
        let mut node = Node {
            id: "wf-1".into(),
            name: "wf.a".into(),
            display_name: "a".into(),
            node_type: NodeType::Pod,
            template_name: None,
            phase: Phase::Succeeded,
            boundary_id: None,
            children: Vec::new(),
            inputs: Vec::new(),
            outputs: Default::default(),
            message: String::new(),
            started_at: None,
            finished_at: None,
            attempt: 0,
            resume_at: None,
            launched: true,
            exit_hook: None,
            memoization: None,
        };
        node.outputs.artifacts.push(ArtifactRef {
            name: "out".into(),
            key: "k/out.tgz".into(),
            path: "/tmp/out".into(),
            archive: "tgz".into(),
            size: 1,
            sha256: "00".into(),
            store: Some(bucket),
        });
        let bytes = encode("node", &node).unwrap();
        assert_eq!(decode::<Node>("node", &bytes).unwrap(), node);
        let v2 = encode_as(2, "node", &v2::NodeV2::from(&node)).unwrap();
        let back: Node = decode_migrating("node", &v2).unwrap();
        node.outputs.artifacts[0].store = None;
        assert_eq!(back, node);
        assert!(matches!(
            decode_migrating::<Node>("node", &[0, 1, 2]),
            Err(Error::UnsupportedFormat { found: 0, .. })
        ));
    }

    #[test]
    fn another_version_is_refused() {
        let mut bytes = encode("test value", &7u32).unwrap();
        bytes[0] = FORMAT_VERSION + 1;
        let err = decode::<u32>("test value", &bytes).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedFormat { found, .. } if found == FORMAT_VERSION + 1)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "cannot decode test value: stored format version {}, this cox reads version {FORMAT_VERSION}",
                FORMAT_VERSION + 1
            )
        );
    }

    #[test]
    fn empty_and_truncated_records_are_errors() {
        assert!(matches!(decode::<u32>("x", &[]), Err(Error::Decode { .. })));
        let bytes = encode("x", &String::from("hello")).unwrap();
        assert!(matches!(
            decode::<String>("x", &bytes[..bytes.len() - 1]),
            Err(Error::Decode { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode::<String>("x", &long),
            Err(Error::Decode { .. })
        ));
    }
}
