//! The crate's error type and its transient/permanent classification.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while saving, loading, packing or unpacking an artifact.
///
/// Messages are lowercase, carry no trailing period and name the key, path or archive
/// entry concerned. Secrets never appear in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The artifact key is not a valid object path (empty segment, `..`, control characters).
    #[error("invalid artifact key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given by the caller.
        key: String,
        /// Why it was refused.
        reason: String,
    },

    /// No object (and, for directory artifacts, no object under the prefix) exists at the key.
    #[error("artifact {key} not found")]
    NotFound {
        /// The key that was looked up.
        key: String,
    },

    /// The object store failed; see [`Error::is_transient`] for whether a retry may help.
    #[error("object store error for artifact {key}: {source}")]
    Storage {
        /// The key the operation was about.
        key: String,
        /// The underlying object store error.
        #[source]
        source: object_store::Error,
    },

    /// A local file system operation failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The local path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The downloaded artifact does not have the size recorded when it was saved.
    #[error("size mismatch for artifact {key}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The key that was loaded.
        key: String,
        /// The recorded size.
        expected: u64,
        /// The size actually received.
        actual: u64,
    },

    /// The downloaded artifact does not have the SHA-256 recorded when it was saved.
    #[error("sha256 mismatch for artifact {key}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The key that was loaded.
        key: String,
        /// The recorded hex digest.
        expected: String,
        /// The hex digest actually computed.
        actual: String,
    },

    /// An archive entry was refused by the safe unpacker (path traversal, link escaping the
    /// destination, device file, or a count/size limit exceeded).
    #[error("unsafe archive entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry name as stored in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },

    /// The archive is corrupt or not of the expected format.
    #[error("invalid archive {}: {message}", path.display())]
    InvalidArchive {
        /// The local archive file.
        path: PathBuf,
        /// What the decoder reported.
        message: String,
    },

    /// A local source path to save does not exist or is neither a file nor a directory.
    #[error("source {} is not a regular file or directory", path.display())]
    InvalidSource {
        /// The path given by the caller.
        path: PathBuf,
    },

    /// The unpack destination already exists and is a non-empty directory.
    #[error("destination {} already exists and is not empty", path.display())]
    DestinationExists {
        /// The destination path.
        path: PathBuf,
    },

    /// The repository or archive configuration is invalid (bad compression level, S3 settings).
    #[error("invalid configuration: {message}")]
    InvalidConfig {
        /// What is wrong; never contains a secret.
        message: String,
    },

    /// A blocking background task (packing, unpacking) panicked or was cancelled.
    #[error("background task for {what} failed: {message}")]
    Background {
        /// What the task was doing.
        what: String,
        /// The join error.
        message: String,
    },
}

impl Error {
    /// Whether retrying the same operation may succeed: network errors, timeouts, throttling
    /// and 5xx responses are transient; integrity failures, unsafe archives, missing keys,
    /// bad configuration and local I/O errors are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Storage { source, .. } => store_error_is_transient(source),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsafe_entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::UnsafeEntry {
            entry: entry.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn storage(key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Error::NotFound {
                key: key.to_owned(),
            },
            source => Error::Storage {
                key: key.to_owned(),
                source,
            },
        }
    }
}

/// Classifies an object store error. object_store does not export its retry error type, so
/// the source chain is inspected: HTTP connect/request/timeout/interrupted errors, I/O errors
/// of a network kind, and rendered 5xx/429 statuses count as transient.
fn store_error_is_transient(err: &object_store::Error) -> bool {
    use object_store::Error as E;
    match err {
        E::NotFound { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::NotImplemented { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. } => false,
        E::JoinError { .. } => true,
        _ => chain_is_transient(err),
    }
}

fn chain_is_transient(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            if matches!(
                http.kind(),
                K::Connect | K::Request | K::Timeout | K::Interrupted
            ) {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::TimedOut
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::ConnectionRefused
                    | K::BrokenPipe
                    | K::UnexpectedEof
                    | K::Interrupted
            ) {
                return true;
            }
        }
        if rendered_status_is_transient(&e.to_string()) {
            return true;
        }
        current = e.source();
    }
    false
}

/// object_store renders HTTP failures as `... status code: 503 Service Unavailable ...`.
fn rendered_status_is_transient(msg: &str) -> bool {
    const MARKER: &str = "status code: ";
    let Some(pos) = msg.find(MARKER) else {
        return false;
    };
    let code: String = msg[pos + MARKER.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match code.parse::<u16>() {
        Ok(code) => code == 429 || code == 408 || (500..600).contains(&code),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_statuses() {
        assert!(rendered_status_is_transient(
            "Server returned non-2xx status code: 503 Service Unavailable: "
        ));
        assert!(rendered_status_is_transient("x status code: 429 Too Many"));
        assert!(!rendered_status_is_transient(
            "status code: 400 Bad Request"
        ));
        assert!(!rendered_status_is_transient("no status here"));
    }

    #[test]
    fn classification() {
        let generic = object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow")),
        };
        assert!(Error::storage("k", generic).is_transient());
        let nf = object_store::Error::NotFound {
            path: "k".into(),
            source: "gone".into(),
        };
        let e = Error::storage("k", nf);
        assert!(matches!(e, Error::NotFound { .. }));
        assert!(!e.is_transient());
        assert!(
            !Error::DigestMismatch {
                key: "k".into(),
                expected: "a".into(),
                actual: "b".into()
            }
            .is_transient()
        );
        assert!(!Error::unsafe_entry("../x", "parent component").is_transient());
    }
}
