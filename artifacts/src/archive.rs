//! Archive kinds and packing of a file or directory into a local archive file.
//!
//! Packing follows Argo's layout: the archive holds one top-level entry named after the
//! source (`name` for a file, `name/...` for a directory), so unpacking yields back a file
//! or a directory at the destination path.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How a file or directory is stored under a key, as Argo's `archive:` strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// A gzip-compressed tarball (Argo's default). `None` means gzip's default level (6);
    /// `Some(0)` stores uncompressed deflate blocks, `Some(9)` compresses hardest.
    TarGz {
        /// gzip level 0..=9, or the default when absent.
        compression_level: Option<u32>,
    },
    /// No archive: a file is stored as is; a directory is stored as one object per file under
    /// the key used as a prefix (empty directories are not represented).
    None,
    /// A deflate-compressed zip archive. Both written and read (safely) by this crate; symlinks
    /// to files are stored as the file's content, other symlinks and special files are skipped.
    Zip,
}

impl Default for Archive {
    fn default() -> Self {
        Archive::TarGz {
            compression_level: None,
        }
    }
}

impl Archive {
    /// Checks option values (the gzip level must be 0..=9).
    pub fn validate(&self) -> Result<()> {
        if let Archive::TarGz {
            compression_level: Some(level),
        } = self
            && *level > 9
        {
            return Err(Error::InvalidConfig {
                message: format!("tar.gz compression level {level} is out of range 0..=9"),
            });
        }
        Ok(())
    }
}

/// The name of the top-level archive entry for `src`.
fn entry_name(src: &Path) -> Result<String> {
    src.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Error::InvalidSource {
            path: src.to_path_buf(),
        })
}

/// Writes `src` (file or directory) as a tar.gz into `out`. Streams file contents; modes,
/// mtimes and symlinks (as links) are preserved.
/// Paths under `src` in `skip` are left out, with everything below them.
pub(crate) fn pack_tar_gz(
    src: &Path,
    level: Option<u32>,
    out: File,
    out_path: &Path,
    skip: &[PathBuf],
) -> Result<()> {
    let meta = fs::metadata(src).map_err(|e| Error::io(src, e))?;
    let name = entry_name(src)?;
    let level = level.map_or(flate2::Compression::default(), flate2::Compression::new);
    let gz = flate2::write::GzEncoder::new(BufWriter::with_capacity(256 * 1024, out), level);
    let mut builder = tar::Builder::new(gz);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    if meta.is_dir() {
        append_tree(&mut builder, Path::new(&name), src, skip)?;
    } else if meta.is_file() {
        let mut f = File::open(src).map_err(|e| Error::io(src, e))?;
        builder
            .append_file(&name, &mut f)
            .map_err(|e| Error::io(src, e))?;
    } else {
        return Err(Error::InvalidSource {
            path: src.to_path_buf(),
        });
    }
    let gz = builder.into_inner().map_err(|e| Error::io(out_path, e))?;
    let mut buf = gz.finish().map_err(|e| Error::io(out_path, e))?;
    buf.flush().map_err(|e| Error::io(out_path, e))?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::io(out_path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(out_path, e))?;
    Ok(())
}

/// Appends directory `dir` as `name/` and its entries (not following symlinks), sorted,
/// leaving out the paths in `skip`.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &Path,
    dir: &Path,
    skip: &[PathBuf],
) -> Result<()> {
    builder
        .append_path_with_name(dir, name)
        .map_err(|e| Error::io(dir, e))?;
    for child in sorted_children(dir)? {
        let path = child.path();
        if skip.contains(&path) {
            continue;
        }
        let child_name = name.join(child.file_name());
        let lmeta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        if lmeta.is_dir() {
            append_tree(builder, &child_name, &path, skip)?;
        } else {
            builder
                .append_path_with_name(&path, &child_name)
                .map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

fn sorted_children(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    children.sort_by_key(|c| c.file_name());
    Ok(children)
}

/// Writes `src` (file or directory) as a zip into `out`, streaming file contents; paths
/// in `skip` are left out.
pub(crate) fn pack_zip(src: &Path, out: File, out_path: &Path, skip: &[PathBuf]) -> Result<()> {
    let meta = fs::metadata(src).map_err(|e| Error::io(src, e))?;
    let name = entry_name(src)?;
    let mut zw = zip::ZipWriter::new(BufWriter::with_capacity(256 * 1024, out));
    if meta.is_dir() {
        zip_dir(&mut zw, src, &name, &meta, out_path, skip)?;
    } else if meta.is_file() {
        zip_file(&mut zw, src, &name, &meta, out_path)?;
    } else {
        return Err(Error::InvalidSource {
            path: src.to_path_buf(),
        });
    }
    let buf = zw.finish().map_err(|e| zip_err(out_path, e))?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::io(out_path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(out_path, e))?;
    Ok(())
}

fn zip_err(path: &Path, e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(io) => Error::io(path, io),
        other => Error::InvalidArchive {
            path: path.to_path_buf(),
            message: other.to_string(),
        },
    }
}

fn unix_mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

type ZipOut = zip::ZipWriter<BufWriter<File>>;

fn zip_file(
    zw: &mut ZipOut,
    src: &Path,
    name: &str,
    meta: &fs::Metadata,
    out_path: &Path,
) -> Result<()> {
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(unix_mode(meta))
        .large_file(meta.len() >= u64::from(u32::MAX));
    zw.start_file(name, opts)
        .map_err(|e| zip_err(out_path, e))?;
    let mut f = File::open(src).map_err(|e| Error::io(src, e))?;
    io::copy(&mut f, zw).map_err(|e| Error::io(src, e))?;
    Ok(())
}

fn zip_dir(
    zw: &mut ZipOut,
    dir: &Path,
    name: &str,
    meta: &fs::Metadata,
    out_path: &Path,
    skip: &[PathBuf],
) -> Result<()> {
    let opts = zip::write::SimpleFileOptions::default().unix_permissions(unix_mode(meta));
    zw.add_directory(format!("{name}/"), opts)
        .map_err(|e| zip_err(out_path, e))?;
    for child in sorted_children(dir)? {
        let path = child.path();
        if skip.contains(&path) {
            continue;
        }
        let Some(child_name) = child.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(path = %path.display(), "skipping non-utf-8 file name in zip archive");
            continue;
        };
        let full = format!("{name}/{child_name}");
        let lmeta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        if lmeta.is_dir() {
            zip_dir(zw, &path, &full, &lmeta, out_path, skip)?;
        } else if lmeta.is_file() {
            zip_file(zw, &path, &full, &lmeta, out_path)?;
        } else if lmeta.file_type().is_symlink() {
            match fs::metadata(&path) {
                Ok(m) if m.is_file() => zip_file(zw, &path, &full, &m, out_path)?,
                _ => tracing::warn!(
                    path = %path.display(),
                    "skipping symlink that does not point to a regular file in zip archive"
                ),
            }
        } else {
            tracing::warn!(path = %path.display(), "skipping special file in zip archive");
        }
    }
    Ok(())
}
