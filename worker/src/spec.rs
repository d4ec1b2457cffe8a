//! What to run: [`ProcessSpec`] and its [`Mount`]s, shared by every executor.
//!
//! # Step directory
//!
//! Each launch owns a host directory, [`ProcessSpec::step_dir`], which the
//! caller picks (one per step attempt) and the launcher creates:
//!
//! ```text
//! <step_dir>/
//!   work/        the step's private, writable working directory
//!   log.jsonl    its stdout and stderr (format: see crate::logs)
//! ```
//!
//! In the sandbox `work/` appears at [`ProcessSpec::workdir`] (default
//! [`DEFAULT_WORKDIR`]); without the sandbox the process simply runs in it,
//! whatever `workdir` says, since the host's paths cannot be rearranged.
//!
//! # Environment
//!
//! The parent's environment is not inherited. A step sees only:
//! - the variables in [`ENV_ALLOWLIST`], copied from the parent when set
//!   (`PATH` falls back to [`DEFAULT_PATH`], `LANG` to `C.UTF-8`);
//! - `HOME` and `PWD`, set to the working directory as the step sees it
//!   (bubblewrap's `--chdir` sets `PWD` too);
//! - then [`ProcessSpec::env`], in order, a later entry winning (it may
//!   override any of the above).

use std::path::PathBuf;

/// Where the step's working directory appears inside the sandbox when the
/// spec names none: under the sandbox's own `/tmp` (a tmpfs), so bubblewrap makes
/// the mount point there. A directory the host lacks, such as `/workspace`, makes
/// bubblewrap rebuild the root from one bind per entry, which doubled its cost
/// per step (8.4 against 4.2 ms of CPU, see BENCHMARKS.md); a directory the host
/// has would be hidden.
pub const DEFAULT_WORKDIR: &str = "/tmp/work";

/// Parent variables a step inherits (see the module doc).
pub const ENV_ALLOWLIST: &[&str] = &["PATH", "LANG"];

/// `PATH` when the parent has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How many trailing bytes of stdout are kept for Argo's `outputs.result`.
///
/// Argo's executor keeps the last 256 KiB (`maxAnnotationSize = 256 * (1 << 10)`
/// in `workflow/executor/executor.go`, after trimming one trailing newline).
pub const DEFAULT_RESULT_CAP: usize = 256 * 1024;

/// A directory made visible to the step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mount {
    /// Bind a host path (file or directory; it must exist) at `target`.
    Bind {
        /// The host path: a volume's host path or a per-run/per-step directory.
        host: PathBuf,
        /// Absolute path inside the step.
        target: PathBuf,
        /// Mount read-only.
        read_only: bool,
    },
    /// A fresh, empty, writable in-memory directory at `target`.
    Tmpfs {
        /// Absolute path inside the step.
        target: PathBuf,
    },
}

impl Mount {
    /// Where the mount appears inside the step.
    pub fn target(&self) -> &PathBuf {
        match self {
            Mount::Bind { target, .. } | Mount::Tmpfs { target } => target,
        }
    }
}

/// One process to launch: a step's main container, run locally.
///
/// Standard input is always closed (`/dev/null`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProcessSpec {
    /// Program and arguments, passed as-is (no shell, no template expansion).
    /// The program is looked up on the step's `PATH`.
    pub argv: Vec<String>,
    /// Environment variables for the step, on top of the allowlist.
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox (absolute); `None` means
    /// [`DEFAULT_WORKDIR`]. Ignored without the sandbox.
    pub workdir: Option<PathBuf>,
    /// Volumes, in any order (they are applied parents first).
    pub mounts: Vec<Mount>,
    /// Existing host directories in which the step must be able to create entries (the
    /// directory of an artifact path such as `/result.txt` or `/mnt/out`, as a container's
    /// writable root allows): sandboxed, each becomes a private tmpfs on which its host
    /// entries are bound again read-only. Ignored without the sandbox.
    pub open_dirs: Vec<PathBuf>,
    /// Run inside bubblewrap (`true`) or as a plain host process (`--no-sandbox`).
    pub sandbox: bool,
    /// Host directory owned by this launch (see the module doc).
    pub step_dir: PathBuf,
    /// How many trailing stdout bytes to keep as the result.
    pub result_cap: usize,
    /// Bytes written to the process's standard input, which is then closed; `None`: stdin
    /// is `/dev/null`. In `process.json`, text is written as a JSON string (the step's
    /// input is JSON text) and other bytes as an array of numbers; both are read.
    #[serde(with = "stdin_bytes")]
    pub stdin: Option<Vec<u8>>,
}

/// [`ProcessSpec::stdin`] in JSON: a string when the bytes are UTF-8 (a third of the size of
/// an array of numbers, and parsed in one pass), else the array, as earlier versions wrote
/// every input; either is read.
mod stdin_bytes {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes.as_deref().map(std::str::from_utf8) {
            Some(Ok(text)) => s.serialize_some(text),
            _ => bytes.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Bytes(#[serde(deserialize_with = "text_or_array")] Vec<u8>);
        Ok(Option::<Bytes>::deserialize(d)?.map(|b| b.0))
    }

    fn text_or_array<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct TextOrArray;
        impl<'de> Visitor<'de> for TextOrArray {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
                Ok(text.as_bytes().to_vec())
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Vec<u8>, E> {
                Ok(text.into_bytes())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element()? {
                    bytes.push(b);
                }
                Ok(bytes)
            }
        }
        d.deserialize_any(TextOrArray)
    }
}

impl ProcessSpec {
    /// A sandboxed spec with no env, no mounts and the default workdir and cap.
    pub fn new<I, S>(argv: I, step_dir: impl Into<PathBuf>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProcessSpec {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            workdir: None,
            mounts: Vec::new(),
            open_dirs: Vec::new(),
            sandbox: true,
            step_dir: step_dir.into(),
            result_cap: DEFAULT_RESULT_CAP,
            stdin: None,
        }
    }

    /// Adds one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds a mount.
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Sets whether to use the sandbox.
    pub fn sandbox(mut self, sandbox: bool) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Sets the in-sandbox working directory.
    pub fn workdir(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(workdir.into());
        self
    }

    /// The host directory that holds the step's working directory.
    pub fn host_workdir(&self) -> PathBuf {
        self.step_dir.join("work")
    }

    /// The step's log file.
    pub fn log_path(&self) -> PathBuf {
        self.step_dir.join("log.jsonl")
    }

    /// The working directory as the step sees it.
    pub fn effective_workdir(&self) -> PathBuf {
        if self.sandbox {
            self.workdir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_WORKDIR))
        } else {
            self.host_workdir()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(stdin: Option<Vec<u8>>) -> (String, Option<Vec<u8>>) {
        let spec = ProcessSpec {
            stdin,
            ..ProcessSpec::new(["true"], "/s")
        };
        let json = serde_json::to_string(&spec).unwrap();
        let back: ProcessSpec = serde_json::from_str(&json).unwrap();
        (json, back.stdin)
    }

    #[test]
    fn text_input_is_written_as_a_string_and_read_back() {
        let text = br#"{"spec":{"x":"a \"quoted\" {{value}}\n"}}"#.to_vec();
        let (json, back) = round_trip(Some(text.clone()));
        assert!(json.contains(r#""stdin":"{\"spec\""#), "{json}");
        assert_eq!(back, Some(text));
    }

    #[test]
    fn other_bytes_and_none_keep_their_form() {
        let (json, back) = round_trip(Some(vec![0xff, 0, 7]));
        assert!(json.contains(r#""stdin":[255,0,7]"#), "{json}");
        assert_eq!(back, Some(vec![0xff, 0, 7]));
        let (json, back) = round_trip(None);
        assert!(json.contains(r#""stdin":null"#), "{json}");
        assert_eq!(back, None);
    }

    #[test]
    fn an_array_written_by_an_earlier_version_is_read() {
        let mut value = serde_json::to_value(ProcessSpec::new(["true"], "/s")).unwrap();
        value["stdin"] = serde_json::json!([123, 125]);
        let spec: ProcessSpec = serde_json::from_value(value).unwrap();
        assert_eq!(spec.stdin.as_deref(), Some(&b"{}"[..]));
    }
}
