//! The store's format as a whole: its version marker, the refusal of newer stores, and the
//! migration of older ones after a backup.
//!
//! The default tree's `format_version` holds the [`FORMAT_VERSION`] every record of the
//! store is written in. When the store is opened:
//! - a marker of this version: nothing to do;
//! - a newer marker, or (without a marker) a record of a newer version: the store is
//!   refused with [`Error::UnsupportedStore`], untouched;
//! - an older marker, or no marker (stores from before it) with records of an older
//!   version: the whole sled directory is first copied to
//!   `<home>/backups/store-v<oldest>-<UTC time>/` (flushed, so the copy is a database sled
//!   opens as it is), then every record is rewritten in this version, then the marker is set.
//!   A failed copy ([`Error::Backup`]) migrates nothing. A record that cannot be read is left
//!   as it is: its run is quarantined when it is resumed (see [`Store::quarantine_run`]).
//!
//! [`Store::quarantine_run`]: crate::store::Store::quarantine_run

use std::path::{Path, PathBuf};

use chrono::Utc;
use tracing::{info, warn};

use crate::codec::{self, FORMAT_VERSION};
use crate::error::{Error, Result};
use crate::machine::{Node, RunState};

/// The key of the format marker in the default tree.
const FORMAT_KEY: &[u8] = b"format_version";

/// The trees of versioned records, with how each record of an older version is rewritten.
/// (The store's `intents` are not here: each is removed once written, and those a crash
/// left are written when the store is opened, after this check. They are of the current
/// version; a bump of the version must write older ones before migrating.)
type Rewrite = fn(&[u8]) -> Result<Vec<u8>>;
const TREES: &[(&str, Rewrite)] = &[
    ("runs", |bytes| {
        let state: RunState = codec::decode_migrating("run state", bytes)?;
        codec::encode("run state", &state.header())
    }),
    ("nodes", |bytes| {
        let node: Node = codec::decode_migrating("node", bytes)?;
        codec::encode("node", &node)
    }),
    ("workflow_templates", rewrite_text),
    ("cluster_workflow_templates", rewrite_text),
    ("configmaps", rewrite_text),
    ("secrets", rewrite_text),
    (crate::cache::TREE, |bytes| {
        let entry: crate::cache::CacheEntry = codec::decode_migrating("step cache entry", bytes)?;
        codec::encode("step cache entry", &entry)
    }),
];

/// Objects are their JSON text in every version.
fn rewrite_text(bytes: &[u8]) -> Result<Vec<u8>> {
    let text: String = codec::decode_migrating("object", bytes)?;
    codec::encode("object", &text)
}

/// Check the store's format when it is opened; migrate an older one after a backup (see
/// the module doc).
pub(crate) fn check_format(db: &sled::Db, path: &Path) -> Result<()> {
    let store_error = |source| Error::Store {
        path: path.to_path_buf(),
        source,
    };
    let marker = db
        .get(FORMAT_KEY)
        .map_err(store_error)?
        .and_then(|v| v.first().copied());
    if marker == Some(FORMAT_VERSION) {
        return Ok(());
    }
    let (mut oldest, newest) = record_versions(db).map_err(store_error)?;
    let newest = newest.max(marker);
    if let Some(found) = newest.filter(|v| *v > FORMAT_VERSION) {
        return Err(Error::UnsupportedStore {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    if let Some(marker) = marker {
        oldest = Some(oldest.map_or(marker, |o| o.min(marker)));
    }
    if let Some(old) = oldest.filter(|v| *v < FORMAT_VERSION) {
        db.flush().map_err(store_error)?;
        let backup = backup_path(path, old);
        copy_dir(path, &backup).map_err(|source| Error::Backup {
            path: path.to_path_buf(),
            backup: backup.clone(),
            source,
        })?;
        let rewritten = migrate(db).map_err(store_error)?;
        info!(
            path = %path.display(),
            from = old,
            to = FORMAT_VERSION,
            records = rewritten,
            backup = %backup.display(),
            "store migrated"
        );
    }
    db.insert(FORMAT_KEY, &[FORMAT_VERSION])
        .map_err(store_error)?;
    db.flush().map_err(store_error)?;
    Ok(())
}

/// The oldest and newest version bytes of the store's records.
fn record_versions(db: &sled::Db) -> sled::Result<(Option<u8>, Option<u8>)> {
    let (mut oldest, mut newest) = (None::<u8>, None::<u8>);
    for (tree, _) in TREES {
        for entry in db.open_tree(tree)?.iter() {
            let (_, bytes) = entry?;
            if let Some(&v) = bytes.first() {
                oldest = Some(oldest.map_or(v, |o| o.min(v)));
                newest = Some(newest.map_or(v, |n| n.max(v)));
            }
        }
    }
    Ok((oldest, newest))
}

/// Rewrite every record of an older version in this one; how many were rewritten.
fn migrate(db: &sled::Db) -> sled::Result<usize> {
    let mut rewritten = 0;
    for (name, rewrite) in TREES {
        let tree = db.open_tree(name)?;
        for entry in tree.iter() {
            let (key, bytes) = entry?;
            if bytes.first().is_some_and(|v| *v >= FORMAT_VERSION) {
                continue;
            }
            match rewrite(&bytes) {
                Ok(new) => {
                    tree.insert(key, new)?;
                    rewritten += 1;
                }
                Err(e) => warn!(
                    tree = name,
                    key = %String::from_utf8_lossy(&key).replace('\0', "/"),
                    error = %e,
                    "record left as it is: it cannot be read"
                ),
            }
        }
    }
    db.flush()?;
    Ok(rewritten)
}

/// `<home>/backups/store-v<version>-<UTC time>` for the store at `<home>/store`, not yet
/// taken.
fn backup_path(store: &Path, version: u8) -> PathBuf {
    let home = store.parent().unwrap_or(store);
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let base = home
        .join("backups")
        .join(format!("store-v{version}-{stamp}"));
    let mut candidate = base.clone();
    let mut n = 1;
    while candidate.exists() {
        n += 1;
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
    }
    candidate
}

/// Copy the directory `from` to `to` (created), files and subdirectories.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    // The copy is the only way back: it is on disk before the migration starts.
    std::fs::File::open(to)?.sync_all()
}
