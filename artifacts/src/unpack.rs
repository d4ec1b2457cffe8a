//! Safe unpacking of tar.gz and zip archives.
//!
//! Every entry is checked before anything is written: no `..` components, no absolute paths,
//! no writing through a symlink, symlinks and hardlinks must resolve inside the destination,
//! no device/fifo/socket entries, and configurable caps on entry count, single entry size and
//! total unpacked size (counted on the bytes actually written, so a lying header does not
//! help a decompression bomb). Unpacking happens in a temporary directory next to the
//! destination which is renamed into place only once everything succeeded, so a failed or
//! interrupted unpack never leaves something that looks like a complete destination.
//!
//! Like Argo's `untar`/`unzip`: when the archive holds exactly one top-level entry, that entry
//! becomes the destination (a file or a directory); otherwise the destination is a directory
//! holding all top-level entries.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// Caps applied while unpacking; exceeding any of them refuses the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Maximum number of entries (files, directories, links) in one archive.
    pub max_entries: u64,
    /// Maximum size in bytes of one unpacked file.
    pub max_entry_size: u64,
    /// Maximum total unpacked size in bytes.
    pub max_total_size: u64,
}

impl Default for UnpackLimits {
    /// One million entries, 64 GiB per file, 128 GiB in total.
    fn default() -> Self {
        UnpackLimits {
            max_entries: 1_000_000,
            max_entry_size: 64 << 30,
            max_total_size: 128 << 30,
        }
    }
}

/// Maximum number of symlinks followed while resolving one link target.
const MAX_LINK_HOPS: usize = 40;

impl UnpackLimits {
    /// Parses `ENTRIES,ENTRY_BYTES,TOTAL_BYTES` (as [`Self::to_arg`] writes them).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [entries, entry, total] = parts.as_slice() else {
            return Err(format!(
                "{text:?}: expected ENTRIES,ENTRY_BYTES,TOTAL_BYTES"
            ));
        };
        let number = |what: &str, v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{text:?}: {what} must be a positive integer, not {v:?}"))
        };
        Ok(UnpackLimits {
            max_entries: number("ENTRIES", entries)?,
            max_entry_size: number("ENTRY_BYTES", entry)?,
            max_total_size: number("TOTAL_BYTES", total)?,
        })
    }

    /// `ENTRIES,ENTRY_BYTES,TOTAL_BYTES`.
    pub fn to_arg(&self) -> String {
        format!(
            "{},{},{}",
            self.max_entries, self.max_entry_size, self.max_total_size
        )
    }
}

/// Unpacks the gzip-compressed tarball at `archive` to `dest` (see the module docs).
pub fn unpack_tar_gz(archive: &Path, dest: &Path, limits: &UnpackLimits) -> Result<()> {
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(256 * 1024, file));
    unpack_tar(gz, archive, dest, limits)
}

/// Unpacks an uncompressed tar stream read from `reader`; `label` names the archive in errors.
pub fn unpack_tar<R: Read>(
    reader: R,
    label: &Path,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<()> {
    let mut un = Unpacker::new(dest, limits)?;
    let bad = |e: io::Error| Error::InvalidArchive {
        path: label.to_path_buf(),
        message: e.to_string(),
    };
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw_path = entry.path().map_err(bad)?.into_owned();
        let name = raw_path.to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        un.count(&name)?;
        let Some(rel) = sanitize(&name, &raw_path)? else {
            continue; // "." or "./": the archive root itself
        };
        let mode = entry.header().mode().unwrap_or(0o644);
        let mtime = entry.header().mtime().ok();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let declared = entry.size();
                un.write_file(&name, &rel, &mut entry, declared, mode, mtime, label)?;
            }
            tar::EntryType::Directory => un.make_dir(&name, &rel, mode)?,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| Error::unsafe_entry(&name, "symlink without a target"))?
                    .into_owned();
                un.make_symlink(&name, &rel, &target)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| Error::unsafe_entry(&name, "hardlink without a target"))?
                    .into_owned();
                un.make_hardlink(&name, &rel, &target)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(Error::unsafe_entry(
                    &name,
                    "device and fifo entries are not allowed",
                ));
            }
            other => {
                return Err(Error::unsafe_entry(
                    &name,
                    format!("unsupported entry type {other:?}"),
                ));
            }
        }
    }
    un.finish()
}

/// Unpacks the zip archive at `archive` to `dest` (see the module docs). Symlink entries are
/// refused: this crate never writes them into zips.
pub fn unpack_zip(archive: &Path, dest: &Path, limits: &UnpackLimits) -> Result<()> {
    let bad = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(io) => Error::InvalidArchive {
            path: archive.to_path_buf(),
            message: io.to_string(),
        },
        other => Error::InvalidArchive {
            path: archive.to_path_buf(),
            message: other.to_string(),
        },
    };
    let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut zr = zip::ZipArchive::new(BufReader::new(file)).map_err(bad)?;
    let mut un = Unpacker::new(dest, limits)?;
    for i in 0..zr.len() {
        let mut zf = zr.by_index(i).map_err(bad)?;
        let name = zf.name().map_err(bad)?.into_owned();
        un.count(&name)?;
        let Some(rel) = sanitize(&name, Path::new(&name))? else {
            continue;
        };
        let unix = zf.unix_mode();
        if let Some(m) = unix {
            match m & 0o170_000 {
                0o120_000 => {
                    return Err(Error::unsafe_entry(
                        &name,
                        "symlinks in zip archives are not supported",
                    ));
                }
                0o020_000 | 0o060_000 | 0o010_000 | 0o140_000 => {
                    return Err(Error::unsafe_entry(
                        &name,
                        "device, fifo and socket entries are not allowed",
                    ));
                }
                _ => {}
            }
        }
        if zf.is_symlink() {
            return Err(Error::unsafe_entry(
                &name,
                "symlinks in zip archives are not supported",
            ));
        }
        if zf.is_dir() {
            un.make_dir(&name, &rel, unix.unwrap_or(0o755))?;
        } else {
            let declared = zf.size();
            let mtime = zf.last_modified().and_then(|t| time_from_zip(&t));
            un.write_file(
                &name,
                &rel,
                &mut zf,
                declared,
                unix.unwrap_or(0o644),
                mtime,
                archive,
            )?;
        }
    }
    un.finish()
}

fn time_from_zip(t: &zip::DateTime) -> Option<u64> {
    // Days from civil date (proleptic Gregorian), enough for mtime restoration.
    let (y, m, d) = (
        i64::from(t.year()),
        i64::from(t.month()),
        i64::from(t.day()),
    );
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400
        + i64::from(t.hour()) * 3600
        + i64::from(t.minute()) * 60
        + i64::from(t.second());
    u64::try_from(secs).ok()
}

/// Normalises an entry path to its `Normal` components; `None` for the archive root.
fn sanitize(name: &str, path: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::unsafe_entry(name, "path contains a '..' component"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::unsafe_entry(name, "absolute path"));
            }
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

enum Comp {
    Parent,
    Normal(OsString),
    Absolute,
}

fn comps(p: &Path) -> impl Iterator<Item = Comp> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(Comp::Normal(n.to_owned())),
        Component::ParentDir => Some(Comp::Parent),
        Component::CurDir => None,
        Component::RootDir | Component::Prefix(_) => Some(Comp::Absolute),
    })
}

/// Whether following `target` from the directory `from_dir` (relative to `root`) stays inside
/// `root`, following symlinks that already exist under `root`. Dangling parts are resolved
/// lexically.
fn resolves_inside(root: &Path, from_dir: &Path, target: &Path) -> bool {
    let mut stack: Vec<OsString> = from_dir
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect();
    let mut queue: VecDeque<Comp> = comps(target).collect();
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        match c {
            Comp::Absolute => return false,
            Comp::Parent => {
                if stack.pop().is_none() {
                    return false;
                }
            }
            Comp::Normal(n) => {
                stack.push(n);
                let here: PathBuf = root.join(stack.iter().collect::<PathBuf>());
                let is_link = fs::symlink_metadata(&here)
                    .map(|m| m.file_type().is_symlink())
                    .unwrap_or(false);
                if is_link {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return false;
                    }
                    let Ok(next) = fs::read_link(&here) else {
                        return false;
                    };
                    stack.pop();
                    for c in comps(&next).collect::<Vec<_>>().into_iter().rev() {
                        queue.push_front(c);
                    }
                }
            }
        }
    }
    true
}

struct Unpacker<'a> {
    dest: PathBuf,
    staging: tempfile::TempDir,
    limits: &'a UnpackLimits,
    entries: u64,
    total: u64,
    dirs: Vec<(PathBuf, u32)>,
    links: Vec<(String, PathBuf)>,
}

impl<'a> Unpacker<'a> {
    fn new(dest: &Path, limits: &'a UnpackLimits) -> Result<Self> {
        check_dest_free(dest)?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let prefix = format!(
            ".{}.cox-unpack-",
            dest.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let staging = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        Ok(Unpacker {
            dest: dest.to_path_buf(),
            staging,
            limits,
            entries: 0,
            total: 0,
            dirs: Vec::new(),
            links: Vec::new(),
        })
    }

    fn root(&self) -> &Path {
        self.staging.path()
    }

    fn count(&mut self, name: &str) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::unsafe_entry(
                name,
                format!("archive has more than {} entries", self.limits.max_entries),
            ));
        }
        Ok(())
    }

    /// Checks that no existing ancestor of `rel` is a symlink or a non-directory, then
    /// creates the missing ancestors.
    fn prepare_parents(&self, name: &str, rel: &Path) -> Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        let mut cur = self.root().to_path_buf();
        for c in parent.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::unsafe_entry(name, "path goes through a symlink"));
                }
                Ok(m) if !m.is_dir() => {
                    return Err(Error::unsafe_entry(
                        name,
                        "a parent of the path is not a directory",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| Error::io(&cur, e))?;
                }
                Err(e) => return Err(Error::io(&cur, e)),
            }
        }
        Ok(())
    }

    /// Removes a previous non-directory entry at `target` (later entries win, as in tar);
    /// refuses to replace a directory with a non-directory.
    fn clear_target(&self, name: &str, target: &Path) -> Result<()> {
        match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {
                Err(Error::unsafe_entry(name, "entry would replace a directory"))
            }
            Ok(_) => fs::remove_file(target).map_err(|e| Error::io(target, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(target, e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_file(
        &mut self,
        name: &str,
        rel: &Path,
        reader: &mut dyn Read,
        declared: u64,
        mode: u32,
        mtime: Option<u64>,
        label: &Path,
    ) -> Result<()> {
        let lim = self.limits;
        if declared > lim.max_entry_size {
            return Err(Error::unsafe_entry(
                name,
                format!(
                    "entry size {declared} exceeds the limit of {} bytes",
                    lim.max_entry_size
                ),
            ));
        }
        if self.total.saturating_add(declared) > lim.max_total_size {
            return Err(Error::unsafe_entry(
                name,
                format!(
                    "total unpacked size exceeds the limit of {} bytes",
                    lim.max_total_size
                ),
            ));
        }
        self.prepare_parents(name, rel)?;
        let target = self.root().join(rel);
        self.clear_target(name, &target)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
            .map_err(|e| Error::io(&target, e))?;
        // Count what is really written, whatever the header claimed.
        let allowed = lim.max_entry_size.min(lim.max_total_size - self.total);
        let copied =
            io::copy(&mut reader.take(allowed.saturating_add(1)), &mut f).map_err(|e| {
                Error::InvalidArchive {
                    path: label.to_path_buf(),
                    message: format!("reading entry {name:?}: {e}"),
                }
            })?;
        if copied > allowed {
            return Err(Error::unsafe_entry(
                name,
                "unpacked data exceeds the size limits",
            ));
        }
        self.total += copied;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o777))
            .map_err(|e| Error::io(&target, e))?;
        if let Some(secs) = mtime {
            let _ = f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        }
        Ok(())
    }

    fn make_dir(&mut self, name: &str, rel: &Path, mode: u32) -> Result<()> {
        self.prepare_parents(name, rel)?;
        let target = self.root().join(rel);
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::unsafe_entry(
                    name,
                    "directory would replace a file or link",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&target).map_err(|e| Error::io(&target, e))?;
            }
            Err(e) => return Err(Error::io(&target, e)),
        }
        self.dirs.push((rel.to_path_buf(), mode & 0o777));
        Ok(())
    }

    fn make_symlink(&mut self, name: &str, rel: &Path, link: &Path) -> Result<()> {
        if link.is_absolute() {
            return Err(Error::unsafe_entry(
                name,
                "symlink target is an absolute path",
            ));
        }
        let from = rel.parent().unwrap_or(Path::new(""));
        if !resolves_inside(self.root(), from, link) {
            return Err(Error::unsafe_entry(
                name,
                format!("symlink target {} escapes the destination", link.display()),
            ));
        }
        self.prepare_parents(name, rel)?;
        let target = self.root().join(rel);
        self.clear_target(name, &target)?;
        std::os::unix::fs::symlink(link, &target).map_err(|e| Error::io(&target, e))?;
        self.links.push((name.to_owned(), rel.to_path_buf()));
        Ok(())
    }

    fn make_hardlink(&mut self, name: &str, rel: &Path, link: &Path) -> Result<()> {
        let link_str = link.to_string_lossy().into_owned();
        let src_rel = match sanitize(&link_str, link) {
            Ok(Some(p)) => p,
            _ => {
                return Err(Error::unsafe_entry(
                    name,
                    format!("hardlink target {link_str} escapes the destination"),
                ));
            }
        };
        // The source must be a regular file already unpacked, reached without symlinks.
        let mut cur = self.root().to_path_buf();
        let n = src_rel.components().count();
        for (i, c) in src_rel.components().enumerate() {
            cur.push(c);
            let ok = match fs::symlink_metadata(&cur) {
                Ok(m) if i + 1 == n => m.is_file(),
                Ok(m) => m.is_dir(),
                Err(_) => false,
            };
            if !ok {
                return Err(Error::unsafe_entry(
                    name,
                    format!(
                        "hardlink target {link_str} is not a regular file inside the destination"
                    ),
                ));
            }
        }
        self.prepare_parents(name, rel)?;
        let target = self.root().join(rel);
        self.clear_target(name, &target)?;
        fs::hard_link(&cur, &target).map_err(|e| Error::io(&target, e))?;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        let staging_path = self.root().to_path_buf();
        // Apply directory modes deepest first, keeping the owner able to traverse.
        for (rel, mode) in self.dirs.iter().rev() {
            let p = staging_path.join(rel);
            fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o700))
                .map_err(|e| Error::io(&p, e))?;
        }
        let top: Vec<_> = fs::read_dir(&staging_path)
            .map_err(|e| Error::io(&staging_path, e))?
            .collect::<io::Result<_>>()
            .map_err(|e| Error::io(&staging_path, e))?;
        let (root, strip) = if top.len() == 1 {
            let only = top[0].path();
            let ft = top[0].file_type().map_err(|e| Error::io(&only, e))?;
            if ft.is_symlink() {
                return Err(Error::unsafe_entry(
                    top[0].file_name().to_string_lossy(),
                    "the archive's only top-level entry is a symlink",
                ));
            }
            (only, true)
        } else {
            fs::set_permissions(&staging_path, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io(&staging_path, e))?;
            (staging_path.clone(), false)
        };
        // Re-check every symlink against the final root, now that all entries exist.
        for (name, rel) in &self.links {
            let rel = if strip {
                rel.components().skip(1).collect::<PathBuf>()
            } else {
                rel.clone()
            };
            let p = root.join(&rel);
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if !m.file_type().is_symlink() {
                continue;
            }
            let link = fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
            let from = rel.parent().unwrap_or(Path::new(""));
            if !resolves_inside(&root, from, &link) {
                return Err(Error::unsafe_entry(
                    name,
                    format!("symlink target {} escapes the destination", link.display()),
                ));
            }
        }
        replace_dest(&self.dest)?;
        fs::rename(&root, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        if !strip {
            let _ = self.staging.keep();
        }
        Ok(())
    }
}

/// Fails early when `dest` is a non-empty directory.
pub(crate) fn check_dest_free(dest: &Path) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(dest)
        && m.is_dir()
    {
        let mut rd = fs::read_dir(dest).map_err(|e| Error::io(dest, e))?;
        if rd.next().is_some() {
            return Err(Error::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Clears `dest` so a rename can land there: removes a file, symlink or empty directory.
pub(crate) fn replace_dest(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => fs::remove_dir(dest).map_err(|e| {
            if e.kind() == io::ErrorKind::DirectoryNotEmpty {
                Error::DestinationExists {
                    path: dest.to_path_buf(),
                }
            } else {
                Error::io(dest, e)
            }
        }),
        Ok(_) => fs::remove_file(dest).map_err(|e| Error::io(dest, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dest, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_paths() {
        assert!(sanitize("a/../b", Path::new("a/../b")).is_err());
        assert!(sanitize("/etc/x", Path::new("/etc/x")).is_err());
        assert_eq!(sanitize("./", Path::new("./")).ok().flatten(), None);
        assert_eq!(
            sanitize("./a/b", Path::new("./a/b")).ok().flatten(),
            Some(PathBuf::from("a/b"))
        );
    }

    #[test]
    fn zip_time() {
        let t = zip::DateTime::from_date_and_time(2020, 1, 2, 3, 4, 6).ok();
        assert_eq!(t.and_then(|t| time_from_zip(&t)), Some(1_577_934_246));
    }
}
