//! Nodes of a run, as Argo's `status.nodes` has them, in a form the store can encode
//! (no free-form JSON, every field always present).

use serde::{Deserialize, Serialize};

/// A node's phase, with Argo's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Created, not started.
    Pending,
    /// Started, not ended.
    Running,
    /// Ended well.
    Succeeded,
    /// Ended badly because of the program.
    Failed,
    /// Ended badly because of the infrastructure or the spec.
    Error,
    /// Not run: its `when` was false, or a dependency path did not apply.
    Skipped,
    /// Not run: a DAG task whose `depends` could never be satisfied.
    Omitted,
}

impl Phase {
    /// Argo's name for the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
            Phase::Skipped => "Skipped",
            Phase::Omitted => "Omitted",
        }
    }

    /// Ended, one way or another.
    pub fn is_done(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }

    /// Failed or Error.
    pub fn is_failure(self) -> bool {
        matches!(self, Phase::Failed | Phase::Error)
    }
}

/// A node's type, with Argo's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeType {
    /// A step run as a process or pod (container, script).
    Pod,
    /// One container of a container set.
    Container,
    /// A steps template.
    Steps,
    /// One parallel group of a steps template.
    StepGroup,
    /// A DAG template.
    Dag,
    /// The loop parent of a DAG task with items.
    TaskGroup,
    /// A retried template: its children are the attempts.
    Retry,
    /// A suspend template.
    Suspend,
    /// A node that was skipped without a template.
    Skipped,
}

impl NodeType {
    /// Whether nodes of this type run a process (a pod, or one container of a set).
    pub fn is_step(self) -> bool {
        matches!(self, NodeType::Pod | NodeType::Container)
    }

    /// Argo's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Pod => "Pod",
            NodeType::Container => "Container",
            NodeType::Steps => "Steps",
            NodeType::StepGroup => "StepGroup",
            NodeType::Dag => "DAG",
            NodeType::TaskGroup => "TaskGroup",
            NodeType::Retry => "Retry",
            NodeType::Suspend => "Suspend",
            NodeType::Skipped => "Skipped",
        }
    }
}

/// Outputs of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// Output parameters, in declaration order.
    pub parameters: Vec<(String, String)>,
    /// Output artifacts: name, key, archive (`tgz`, `none`, `zip`), size, sha256, path.
    pub artifacts: Vec<ArtifactRef>,
    /// `outputs.result`.
    pub result: Option<String>,
    /// `outputs.exitCode`.
    pub exit_code: Option<i32>,
}

/// A saved artifact a node produced, and where it is (as Argo's artifact status keeps its
/// whole location): consumers (`from:`), `artifactGC`, `cox cp` and the step cache read
/// it there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// Artifact name.
    pub name: String,
    /// Object key in its repository ([`Self::store`]).
    pub key: String,
    /// The path it was read from.
    pub path: String,
    /// Archive strategy: `tgz`, `none` or `zip`.
    pub archive: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Its own bucket (the artifact's `s3:` endpoint or bucket, with the Secrets naming
    /// its keys); `None`: the run's repository.
    #[serde(default, with = "cox_worker::repo_config::plain_location")]
    pub store: cox_worker::step::ArtifactStore,
}

impl Outputs {
    /// Whether nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty()
            && self.artifacts.is_empty()
            && self.result.is_none()
            && self.exit_code.is_none()
    }

    /// An output parameter by name.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One node of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Stable id: the workflow name for the root, else `<workflow>-<hash of name>`.
    pub id: String,
    /// Full name: `wf[0].step`, `wf.task(0:item)`.
    pub name: String,
    /// Short name shown in trees.
    pub display_name: String,
    /// Argo node type.
    pub node_type: NodeType,
    /// Template this node runs, if any.
    pub template_name: Option<String>,
    /// Current phase.
    pub phase: Phase,
    /// Id of the nearest enclosing steps/DAG node.
    pub boundary_id: Option<String>,
    /// Child node ids, in creation order.
    pub children: Vec<String>,
    /// Input parameters it ran with.
    pub inputs: Vec<(String, String)>,
    /// What it produced.
    pub outputs: Outputs,
    /// Why it is in its phase (errors, skips).
    pub message: String,
    /// RFC 3339 start, once started.
    pub started_at: Option<String>,
    /// RFC 3339 end, once ended.
    pub finished_at: Option<String>,
    /// For pods: the attempt number of this node under its retry parent (0 without retries).
    pub attempt: u32,
    /// For suspend nodes and retry backoff: when the node may go on (RFC 3339).
    pub resume_at: Option<String>,
    /// For pods: the launched spec, kept so a restart can re-adopt or relaunch it.
    pub launched: bool,
    /// `hooks.exit`/`onExit` of this node has been started: the hook's node id.
    pub exit_hook: Option<String>,
    /// For memoized pods: the cache entry used or filled (Argo's `memoizationStatus`).
    pub memoization: Option<MemoizationStatus>,
}

impl Node {
    /// A node that has not started: its ids and type, nothing else.
    pub fn new(id: String, name: String, display_name: String, node_type: NodeType) -> Node {
        Node {
            id,
            name,
            display_name,
            node_type,
            template_name: None,
            phase: Phase::Pending,
            boundary_id: None,
            children: Vec::new(),
            inputs: Vec::new(),
            outputs: Outputs::default(),
            message: String::new(),
            started_at: None,
            finished_at: None,
            attempt: 0,
            resume_at: None,
            launched: false,
            exit_hook: None,
            memoization: None,
        }
    }
}

/// Argo's `MemoizationStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoizationStatus {
    /// The outputs came from the cache.
    pub hit: bool,
    /// The entry's key.
    pub key: String,
    /// The cache's name.
    pub cache_name: String,
}

/// Argo's node id for a node name: the workflow name and a 32-bit FNV-1a hash of the name.
pub fn node_id(workflow: &str, node_name: &str) -> String {
    if node_name == workflow {
        return workflow.to_string();
    }
    let mut hash: u32 = 0x811c_9dc5;
    for byte in node_name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{workflow}-{hash}")
}
