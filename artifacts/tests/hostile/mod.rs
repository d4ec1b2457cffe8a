//! Hostile tar.gz archives built with raw tar headers (the tar builder refuses most of
//! them). Shared by `artifacts/tests/malicious.rs` and the root package's
//! `tests/malicious_e2e.rs` (through `#[path]`), each using part of it.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use tar::EntryType;

/// An entry's content.
pub enum Body {
    /// These bytes.
    Bytes(Vec<u8>),
    /// That many zeros.
    Zeros(u64),
}

/// One entry, as written.
pub struct Raw {
    pub name: String,
    pub kind: EntryType,
    pub link: Option<String>,
    pub body: Body,
}

pub fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.into(),
        kind: EntryType::Regular,
        link: None,
        body: Body::Bytes(data.to_vec()),
    }
}

pub fn zeros(name: &str, len: u64) -> Raw {
    Raw {
        name: name.into(),
        kind: EntryType::Regular,
        link: None,
        body: Body::Zeros(len),
    }
}

pub fn dir(name: &str) -> Raw {
    Raw {
        name: name.into(),
        kind: EntryType::Directory,
        link: None,
        body: Body::Bytes(Vec::new()),
    }
}

pub fn link(name: &str, kind: EntryType, target: &str) -> Raw {
    Raw {
        name: name.into(),
        kind,
        link: Some(target.into()),
        body: Body::Bytes(Vec::new()),
    }
}

pub fn special(name: &str, kind: EntryType) -> Raw {
    Raw {
        name: name.into(),
        kind,
        link: None,
        body: Body::Bytes(Vec::new()),
    }
}

/// Writes the entries with hand-filled GNU headers, bypassing the builder's path checks.
pub fn write_tgz(path: &Path, entries: impl IntoIterator<Item = Raw>) -> io::Result<()> {
    let out = fs::File::create(path)?;
    let gz = flate2::write::GzEncoder::new(io::BufWriter::new(out), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            if let Some(l) = &e.link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(e.kind);
        h.set_mode(if e.kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_600_000_000);
        match e.body {
            Body::Bytes(data) => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_slice())?;
            }
            Body::Zeros(len) => {
                h.set_size(len);
                h.set_cksum();
                b.append(&h, io::repeat(0).take(len))?;
            }
        }
    }
    b.into_inner()?.finish()?.flush()
}
