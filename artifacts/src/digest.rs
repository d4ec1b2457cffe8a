//! SHA-256 accounting shared by uploads and downloads.

use sha2::{Digest, Sha256};

/// Running size and SHA-256 of a byte stream.
#[derive(Default)]
pub(crate) struct Tally {
    hasher: Sha256,
    size: u64,
}

impl Tally {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Consumes the tally, returning the size and the lowercase hex digest.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.size, to_hex(&self.hasher.finalize()))
    }
}

/// `bytes` as lowercase hexadecimal.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Digest of a directory saved with `Archive::None`: SHA-256 over the sorted lines
/// `<relative path>\0<size>\0<sha256>\n`, one per file.
pub(crate) fn manifest_digest(entries: &mut [(String, u64, String)]) -> String {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (path, size, sha) in entries.iter() {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(size.to_string().as_bytes());
        hasher.update([0]);
        hasher.update(sha.as_bytes());
        hasher.update(b"\n");
    }
    to_hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest() {
        let (size, hex) = Tally::default().finish();
        assert_eq!(size, 0);
        assert_eq!(
            hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
