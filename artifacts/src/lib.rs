//! Artifact repositories, archive formats and safe unpacking for Coxswain.
//!
//! This crate owns how the files that workflow steps hand each other (datasets, models,
//! reports) are stored and fetched, following Argo's artifact semantics:
//!
//! - an [`ArtifactRepository`] maps keys to objects in a local directory or an S3-compatible
//!   bucket (AWS S3, MinIO) through `object_store`, streaming every transfer (multipart
//!   uploads for large files, chunked downloads) and recording each artifact's size and
//!   SHA-256 so that a later download can be verified while it streams;
//! - [`Archive`] is Argo's archive strategy: `tar.gz` (the default), `none` (a file as is, a
//!   directory as one object per file under the key) or `zip`;
//! - [`unpack`] extracts archives defensively (path traversal, escaping links, device files,
//!   decompression bombs and entry floods are refused, naming the entry) into a temporary
//!   directory renamed into place only on success.
//!
//! A directory saved with [`Archive::None`] is recorded with the total size of its files and
//! the SHA-256 of its manifest: the sorted lines `<relative path>\0<size>\0<sha256>\n`.
//!
//! # Layout
//! - `error`: the [`Error`] enum, [`Result`] alias and transient/permanent classification.
//! - `repository`: [`ArtifactRepository`], its local and S3 constructors and transfer options.
//! - `archive`: the [`Archive`] strategy and packing of files and directories.
//! - `unpack`: safe tar.gz and zip extraction with [`UnpackLimits`].
//! - `digest`: size and SHA-256 accounting shared by uploads and downloads.

mod archive;
mod digest;
mod error;
mod repository;
pub mod unpack;

pub use archive::Archive;
pub use digest::to_hex;
pub use error::{Error, Result};
pub use repository::{
    ArtifactRepository, ClientSettings, Expected, ListedObject, S3Config, SavedArtifact,
    TransferOptions,
};
pub use unpack::UnpackLimits;
