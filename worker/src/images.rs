//! The image table: what a container image means when steps run as host processes.
//!
//! Locally there are no container images, so each image a workflow names must map to
//! something that runs on the host. The table is explicit and user-editable, never a guess:
//! an image with no matching entry and no `command` is an error that names the image and
//! the file to edit.
//!
//! # Entries
//!
//! Each entry has:
//! - `match`: an image reference pattern, exact or with `*` globs (any run of characters,
//!   `/` and `:` included). It is tried against the image as written and against the image
//!   without its tag or digest, so `python*` matches `python:3.12-alpine` and `alpine`
//!   matches `alpine:3.19`.
//! - `entrypoint`: the argv used when a template gives no `command` (the template's `args`
//!   are appended). A first element `@cox` stands for the `cox` binary itself, which is how
//!   `argoproj/argosay:v2` maps to the builtin `cox argosay`.
//! - `aliases`: command name -> host program (a name looked up on `PATH`, or an absolute
//!   path). Each alias becomes a symlink in a per-step `bin` directory put first on the
//!   step's `PATH`, so `command: [python]` works on a host that only has `python3`.
//!
//! The first matching entry wins. Entries from the user's file come before the built-in
//! ones, so a file entry overrides a built-in one with the same or a wider pattern.
//!
//! # File
//!
//! YAML (JSON is valid YAML), by convention `$COX_HOME/images.yaml`; the caller gives the
//! path:
//!
//! ```yaml
//! images:
//!   - match: "ghcr.io/acme/trainer:*"
//!     entrypoint: [python3, -m, trainer]
//!     aliases: {python: python3}
//!   - match: "busybox*"          # overrides the built-in entry
//!     entrypoint: [sh]
//! ```
//!
//! # Built-in entries
//!
//! | match | entrypoint | aliases |
//! | --- | --- | --- |
//! | `argoproj/argosay:v2` | `@cox argosay` (also for `command: [/argosay]`) | |
//! | `docker/whalesay*` | `cowsay` | `cowsay` -> `echo` (the message is printed, without the whale) |
//! | `busybox*`, `alpine*` | `sh` | `sh` -> `busybox` (busybox's ash, as in the image) |
//! | `ubuntu*`, `debian*`, `bash*` | `sh` | |
//! | `python*` | `python3` | `python` -> `python3` |
//! | `node*` | `node` | |
//!
//! Registry prefixes are not stripped: `docker.io/library/alpine` needs its own entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// First `entrypoint` element that stands for the `cox` binary itself.
pub const COX_PLACEHOLDER: &str = "@cox";

/// One entry of the table (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// Image reference pattern: exact, or with `*` globs.
    #[serde(rename = "match")]
    pub pattern: String,
    /// argv used when the template gives no `command`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Command name -> host program.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// The path of the image's own entrypoint (`/argosay`): a template `command` naming it
    /// runs `entrypoint` instead.
    #[serde(
        default,
        rename = "ownEntrypoint",
        skip_serializing_if = "Option::is_none"
    )]
    pub own_entrypoint: Option<String>,
}

impl ImageEntry {
    fn new(pattern: &str, entrypoint: &[&str], aliases: &[(&str, &str)]) -> Self {
        ImageEntry {
            pattern: pattern.into(),
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            aliases: aliases
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            own_entrypoint: None,
        }
    }

    /// Whether this entry applies to `image` (as written, or without its tag/digest).
    pub fn matches(&self, image: &str) -> bool {
        glob(&self.pattern, image) || glob(&self.pattern, untagged(image))
    }
}

/// The image table: user entries first, then the built-in ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageTable {
    /// Entries in match order.
    pub images: Vec<ImageEntry>,
    /// The user file the table was loaded from, named in errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
}

/// What a step runs, resolved from its spec and the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Program and arguments (`@cox` replaced).
    pub argv: Vec<String>,
    /// Command name -> host program, for the per-step `bin` directory.
    pub aliases: BTreeMap<String, String>,
}

/// The table file cannot be read or parsed, or an image cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file exists but cannot be read.
    #[error("cannot read image table {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid table.
    #[error("invalid image table {path:?}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// No `command` and no entry with an entrypoint for the image.
    #[error(
        "image {image:?} has no entrypoint in the image table and the template gives no command: add an entry with `match: {image:?}` and an `entrypoint` to {file}, or give the template a `command`"
    )]
    NoEntrypoint {
        /// The image.
        image: String,
        /// The file to edit, as shown to the user.
        file: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    images: Vec<ImageEntry>,
}

impl Default for ImageTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ImageTable {
    /// The built-in entries only (see the module doc).
    pub fn builtin() -> Self {
        let sh = ["sh"];
        let mut images = vec![
            ImageEntry {
                own_entrypoint: Some("/argosay".into()),
                ..ImageEntry::new("argoproj/argosay:v2", &[COX_PLACEHOLDER, "argosay"], &[])
            },
            ImageEntry::new("docker/whalesay*", &["cowsay"], &[("cowsay", "echo")]),
        ];
        // busybox and alpine images have busybox's ash as `sh` (with `$RANDOM`, unlike
        // Debian's dash): busybox called as `sh` is that shell, when the host has it.
        for p in ["busybox*", "alpine*"] {
            images.push(ImageEntry::new(p, &sh, &[("sh", "busybox")]));
        }
        for p in ["ubuntu*", "debian*", "bash*"] {
            images.push(ImageEntry::new(p, &sh, &[]));
        }
        images.push(ImageEntry::new(
            "python*",
            &["python3"],
            &[("python", "python3")],
        ));
        images.push(ImageEntry::new("node*", &["node"], &[]));
        ImageTable {
            images,
            source: None,
        }
    }

    /// The user's entries from `path` followed by the built-in ones; a missing file gives
    /// the built-in table (remembering `path` for error messages).
    pub fn load(path: &Path) -> Result<Self, ImageError> {
        let mut table = Self::builtin();
        table.source = Some(path.to_path_buf());
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(table),
            Err(source) => {
                return Err(ImageError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let user = Self::parse(&text).map_err(|message| ImageError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        table.images.splice(0..0, user);
        Ok(table)
    }

    /// Parses a table file's text (YAML or JSON) into its entries.
    pub fn parse(text: &str) -> Result<Vec<ImageEntry>, String> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let file: TableFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        for entry in &file.images {
            if entry.pattern.is_empty() {
                return Err("an entry has an empty `match`".into());
            }
        }
        Ok(file.images)
    }

    /// The first entry matching `image`.
    pub fn lookup(&self, image: &str) -> Option<&ImageEntry> {
        self.images.iter().find(|e| e.matches(image))
    }

    /// What to run for `image` with the template's `command` and `args`: the command (or
    /// the entry's entrypoint when it is empty) followed by the args; `@cox` as the first
    /// element becomes `cox_binary`.
    pub fn resolve(
        &self,
        image: &str,
        command: &[String],
        args: &[String],
        cox_binary: &Path,
    ) -> Result<Resolved, ImageError> {
        let entry = self.lookup(image);
        let mut argv: Vec<String> = if command.is_empty() {
            match entry.filter(|e| !e.entrypoint.is_empty()) {
                Some(e) => e.entrypoint.clone(),
                None => {
                    return Err(ImageError::NoEntrypoint {
                        image: image.to_string(),
                        file: match &self.source {
                            Some(p) => p.display().to_string(),
                            None => "the image table ($COX_HOME/images.yaml)".into(),
                        },
                    });
                }
            }
        } else {
            match entry {
                // `command: [/argosay]` names the image's own entrypoint, which is the
                // entry's entrypoint here.
                Some(e)
                    if e.own_entrypoint.is_some()
                        && command.first() == e.own_entrypoint.as_ref() =>
                {
                    e.entrypoint
                        .iter()
                        .chain(command.iter().skip(1))
                        .cloned()
                        .collect()
                }
                _ => command.to_vec(),
            }
        };
        if argv.first().is_some_and(|a| a == COX_PLACEHOLDER) {
            argv[0] = cox_binary.display().to_string();
        }
        argv.extend(args.iter().cloned());
        Ok(Resolved {
            argv,
            aliases: entry.map(|e| e.aliases.clone()).unwrap_or_default(),
        })
    }
}

/// The image without its `:tag` and/or `@digest` (a `:` before the last `/` is a port).
fn untagged(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].find(':') {
        Some(i) => &image[..last_slash + i],
        None => image,
    }
}

/// `*` matches any run of characters; everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_tags() {
        assert!(glob("python*", "python:3.12"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXc"));
        assert!(!glob("ab*ba", "aba"));
        assert_eq!(untagged("alpine:3.19"), "alpine");
        assert_eq!(untagged("reg:5000/x/y:1@sha256:abc"), "reg:5000/x/y");
        let t = ImageTable::builtin();
        assert_eq!(t.lookup("alpine:3.19").unwrap().pattern, "alpine*");
        assert_eq!(
            t.lookup("argoproj/argosay:v2").unwrap().entrypoint,
            ["@cox", "argosay"]
        );
        assert!(t.lookup("argoproj/argosay:v1").is_none());
        let own = t
            .resolve(
                "argoproj/argosay:v2",
                &["/argosay".into()],
                &["echo".into(), "hi".into()],
                Path::new("/bin/cox"),
            )
            .unwrap();
        assert_eq!(own.argv, ["/bin/cox", "argosay", "echo", "hi"]);
        assert!(t.lookup("quay.io/foo").is_none());
    }

    #[test]
    fn file_entries_come_first_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.yaml");
        std::fs::write(
            &path,
            "images:\n  - match: \"busybox\"\n    entrypoint: [echo, hi]\n  - match: acme/*\n    aliases: {py: python3}\n",
        )
        .unwrap();
        let t = ImageTable::load(&path).unwrap();
        let r = t
            .resolve("busybox:1", &[], &["x".into()], Path::new("/cox"))
            .unwrap();
        assert_eq!(r.argv, ["echo", "hi", "x"]);
        let err = t
            .resolve("acme/tool", &[], &[], Path::new("/cox"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("acme/tool") && err.contains("images.yaml"),
            "{err}"
        );
        let r = t
            .resolve(
                "argoproj/argosay:v2",
                &[],
                &["echo".into()],
                Path::new("/c"),
            )
            .unwrap();
        assert_eq!(r.argv, ["/c", "argosay", "echo"]);
        std::fs::write(&path, "images: [{match: x, bogus: 1}]").unwrap();
        assert!(matches!(
            ImageTable::load(&path),
            Err(ImageError::Parse { .. })
        ));
        let missing = ImageTable::load(&dir.path().join("none.yaml")).unwrap();
        assert_eq!(missing.images, ImageTable::builtin().images);
    }
}
