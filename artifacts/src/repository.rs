//! The artifact repository: keys in an object store (local directory or S3/MinIO), streamed
//! uploads and downloads with size and SHA-256 accounting.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::archive::{self, Archive};
use crate::digest::{Tally, manifest_digest};
use crate::error::{Error, Result};
use crate::unpack::{self, UnpackLimits};

/// What was stored under a key: enough to verify a later download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedArtifact {
    /// The key, relative to the repository prefix.
    pub key: String,
    /// Stored size in bytes (the archive's size for tar.gz/zip; the sum of file sizes for a
    /// directory saved with [`Archive::None`]).
    pub size: u64,
    /// Lowercase hex SHA-256 of the stored bytes (for a directory saved with
    /// [`Archive::None`], of its manifest: see the crate docs).
    pub sha256: String,
}

/// Size and digest a download must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Expected size in bytes.
    pub size: u64,
    /// Expected lowercase hex SHA-256.
    pub sha256: String,
}

impl Expected {
    /// Builds an expectation from a size and a hex digest (case-insensitive).
    pub fn new(size: u64, sha256: impl Into<String>) -> Self {
        Expected {
            size,
            sha256: sha256.into().to_ascii_lowercase(),
        }
    }
}

impl From<&SavedArtifact> for Expected {
    fn from(s: &SavedArtifact) -> Self {
        Expected::new(s.size, s.sha256.clone())
    }
}

/// One object found by [`ArtifactRepository::list_prefix`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The key, relative to the repository prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// Tuning of transfers and unpacking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOptions {
    /// Files up to this size are uploaded with one PUT (and are read into memory); larger
    /// ones use a multipart upload.
    pub multipart_threshold: u64,
    /// Multipart part size (S3 requires at least 5 MiB except for the last part).
    pub part_size: usize,
    /// Parts in flight at once; memory use is bounded by `part_size * max_concurrent_parts`.
    pub max_concurrent_parts: usize,
    /// Limits for unpacking archives and for directories stored with [`Archive::None`].
    pub unpack_limits: UnpackLimits,
    /// Where archives are packed before upload; the system temp dir when `None`.
    pub staging_dir: Option<PathBuf>,
    /// Paths never saved as part of a saved directory, with everything below them (the
    /// in-step wrapper's own files when a step saves its `/tmp`).
    pub skip: Vec<PathBuf>,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            multipart_threshold: 8 << 20,
            part_size: 8 << 20,
            max_concurrent_parts: 4,
            unpack_limits: UnpackLimits::default(),
            staging_dir: None,
            skip: Vec::new(),
        }
    }
}

/// HTTP client behaviour for remote stores: per-request timeouts and bounded retries with
/// exponential backoff (passed to object_store's `ClientOptions` and `RetryConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// Timeout for establishing a connection.
    pub connect_timeout: Duration,
    /// Timeout for one whole request (one part for multipart uploads).
    pub request_timeout: Duration,
    /// Retries of one request on transient failure; 0 disables retries.
    pub max_retries: usize,
    /// No retry is started after this much time since the first attempt.
    pub retry_timeout: Duration,
    /// First backoff delay.
    pub backoff_initial: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// Backoff multiplier between attempts.
    pub backoff_base: f64,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_retries: 5,
            retry_timeout: Duration::from_secs(180),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(15),
            backoff_base: 2.0,
        }
    }
}

/// Settings of an S3-compatible repository (AWS S3, MinIO, moto). Credentials are values the
/// caller already resolved; `Debug` never prints them.
#[derive(Clone)]
pub struct S3Config {
    /// Endpoint such as `minio:9000` or `https://s3.example.com`; when it has no scheme,
    /// `http://` is used if `insecure` is set, `https://` otherwise. `None` means AWS.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Region (MinIO accepts any, e.g. `us-east-1`).
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`), needed by MinIO and moto.
    pub path_style: bool,
    /// Argo's `insecure`: allow plain HTTP.
    pub insecure: bool,
    /// Access key id; when both keys are `None` object_store's default chain is used.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    pub session_token: Option<String>,
    /// Key prefix inside the bucket, e.g. `artifacts/`.
    pub prefix: String,
    /// Timeouts and retries.
    pub client: ClientSettings,
}

impl S3Config {
    /// A config for `bucket` in `region`, path-style, HTTPS, no credentials, no prefix.
    pub fn new(bucket: impl Into<String>, region: impl Into<String>) -> Self {
        S3Config {
            endpoint: None,
            bucket: bucket.into(),
            region: region.into(),
            path_style: true,
            insecure: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            prefix: String::new(),
            client: ClientSettings::default(),
        }
    }
}

fn redacted(v: &Option<String>) -> &'static str {
    if v.is_some() { "<redacted>" } else { "<unset>" }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("insecure", &self.insecure)
            .field("access_key_id", &redacted(&self.access_key_id))
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("prefix", &self.prefix)
            .field("client", &self.client)
            .finish()
    }
}

/// A place where artifacts are saved and loaded by key.
#[derive(Clone)]
pub struct ArtifactRepository {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    description: String,
    options: TransferOptions,
}

impl fmt::Debug for ArtifactRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The store itself is not printed: its Debug may include credentials.
        f.debug_struct("ArtifactRepository")
            .field("store", &self.description)
            .field("prefix", &self.prefix.as_ref())
            .field("options", &self.options)
            .finish()
    }
}

fn parse_key(key: &str) -> Result<ObjPath> {
    let trimmed = key.trim_matches('/');
    if trimmed.is_empty() {
        return Err(Error::InvalidKey {
            key: key.to_owned(),
            reason: "empty key".into(),
        });
    }
    ObjPath::parse(trimmed).map_err(|e| Error::InvalidKey {
        key: key.to_owned(),
        reason: e.to_string().to_lowercase(),
    })
}

/// object_store's client and retry settings for `c`.
fn client_options(
    c: &ClientSettings,
    allow_http: bool,
) -> (object_store::ClientOptions, object_store::RetryConfig) {
    use object_store::{BackoffConfig, ClientOptions, RetryConfig};
    let client = ClientOptions::new()
        .with_connect_timeout(c.connect_timeout)
        .with_timeout(c.request_timeout)
        .with_allow_http(allow_http);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: c.backoff_initial,
            max_backoff: c.backoff_max,
            base: c.backoff_base,
        },
        max_retries: c.max_retries,
        retry_timeout: c.retry_timeout,
    };
    (client, retry)
}

impl ArtifactRepository {
    /// Wraps any object store; `prefix` (may be empty) is prepended to every key.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self> {
        let description = store.to_string();
        let prefix = if prefix.trim_matches('/').is_empty() {
            ObjPath::default()
        } else {
            parse_key(prefix)?
        };
        Ok(ArtifactRepository {
            store,
            prefix,
            description,
            options: TransferOptions::default(),
        })
    }

    /// A repository in a local directory (created if missing); keys map to files below it.
    pub fn local(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| Error::InvalidConfig {
                message: format!("local repository {}: {e}", dir.display()),
            })?
            .with_automatic_cleanup(true);
        let mut repo = Self::new(Arc::new(store), "")?;
        repo.description = format!("local:{}", dir.display());
        Ok(repo)
    }

    /// The web server of an `http(s)://host[:port]/path[?query]` URL, and the URL's path as
    /// the key to load (Argo's `http` artifacts; see [`Self::load_detect`]). A query string
    /// (a signed URL's, say) is sent, unchanged, with every request for the key; a fragment
    /// is dropped, as browsers never send one.
    pub fn http(url: &str, client: &ClientSettings) -> Result<(Self, String)> {
        let invalid = |reason: &str| Error::InvalidConfig {
            message: format!("http artifact url {url:?}: {reason}"),
        };
        let without_fragment = url.split_once('#').map_or(url, |(u, _)| u);
        let (located, query) = match without_fragment.split_once('?') {
            Some((u, q)) => (u, Some(q)),
            None => (without_fragment, None),
        };
        let rest = located
            .strip_prefix("http://")
            .or_else(|| located.strip_prefix("https://"))
            .ok_or_else(|| invalid("must start with http:// or https://"))?;
        let (host, path) = rest
            .split_once('/')
            .filter(|(h, p)| !h.is_empty() && !p.trim_matches('/').is_empty())
            .ok_or_else(|| invalid("names no file"))?;
        // object_store's HTTP store appends the key's segments to its URL's path and keeps
        // that URL's query: the query goes on the base.
        let mut base = format!("{}{host}/", &located[..located.len() - rest.len()]);
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            base = format!("{base}?{q}");
        }
        let (options, retry) = client_options(client, url.starts_with("http://"));
        let store = object_store::http::HttpBuilder::new()
            .with_url(&base)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| invalid(&e.to_string().to_lowercase()))?;
        let mut repo = Self::new(Arc::new(store), "")?;
        // The query may carry a signature: never shown.
        repo.description = format!("{}{host}", &located[..located.len() - rest.len()]);
        Ok((repo, path.to_owned()))
    }

    /// A repository in an S3-compatible bucket.
    pub fn s3(cfg: S3Config) -> Result<Self> {
        use object_store::aws::AmazonS3Builder;

        let (client, retry) = client_options(&cfg.client, cfg.insecure);

        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_virtual_hosted_style_request(!cfg.path_style)
            .with_allow_http(cfg.insecure)
            .with_client_options(client)
            .with_retry(retry);
        let mut description = format!("s3://{}", cfg.bucket);
        if let Some(ep) = &cfg.endpoint {
            let ep = if ep.contains("://") {
                ep.clone()
            } else if cfg.insecure {
                format!("http://{ep}")
            } else {
                format!("https://{ep}")
            };
            description = format!("s3:{ep}/{}", cfg.bucket);
            b = b.with_endpoint(ep);
        }
        if let Some(v) = &cfg.access_key_id {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = &cfg.secret_access_key {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = &cfg.session_token {
            b = b.with_token(v);
        }
        let store = b.build().map_err(|e| Error::InvalidConfig {
            message: format!("s3 bucket {}: {}", cfg.bucket, e.to_string().to_lowercase()),
        })?;
        let mut repo = Self::new(Arc::new(store), &cfg.prefix)?;
        repo.description = description;
        Ok(repo)
    }

    /// Replaces the transfer options.
    pub fn with_options(mut self, options: TransferOptions) -> Self {
        self.options = options;
        self
    }

    /// The transfer options in use.
    pub fn options(&self) -> &TransferOptions {
        &self.options
    }

    /// The underlying object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn path(&self, key: &str) -> Result<ObjPath> {
        let p = parse_key(key)?;
        Ok(self.prefix.parts().chain(p.parts()).collect())
    }

    fn relative_key(&self, location: &ObjPath) -> String {
        match location.prefix_match(&self.prefix) {
            Some(parts) => parts
                .map(|p| p.as_ref().to_owned())
                .collect::<Vec<_>>()
                .join("/"),
            None => location.to_string(),
        }
    }

    /// Uploads one local file under `key`, streaming it (multipart above the threshold).
    pub async fn save_file(&self, local_path: &Path, key: &str) -> Result<SavedArtifact> {
        let path = self.path(key)?;
        let (size, sha256) = self.upload(local_path, &path, key).await?;
        tracing::debug!(key, size, "saved artifact file");
        Ok(SavedArtifact {
            key: key.to_owned(),
            size,
            sha256,
        })
    }

    async fn upload(&self, local: &Path, path: &ObjPath, key: &str) -> Result<(u64, String)> {
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| Error::io(local, e))?;
        let meta = file.metadata().await.map_err(|e| Error::io(local, e))?;
        if !meta.is_file() {
            return Err(Error::InvalidSource {
                path: local.to_path_buf(),
            });
        }
        let threshold = usize::try_from(self.options.multipart_threshold).unwrap_or(usize::MAX);
        let mut tally = Tally::default();
        let first = read_chunk(&mut file, threshold.saturating_add(1), local).await?;
        tally.update(&first);
        if first.len() <= threshold {
            self.store
                .put(path, PutPayload::from(Bytes::from(first)))
                .await
                .map_err(|e| Error::storage(key, e))?;
            return Ok(tally.finish());
        }
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| Error::storage(key, e))?;
        let part = self.options.part_size.max(1);
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
        writer.put(Bytes::from(first));
        let result: Result<()> = async {
            loop {
                writer
                    .wait_for_capacity(self.options.max_concurrent_parts.max(1))
                    .await
                    .map_err(|e| Error::storage(key, e))?;
                let chunk = read_chunk(&mut file, part, local).await?;
                if chunk.is_empty() {
                    return Ok(());
                }
                tally.update(&chunk);
                writer.put(Bytes::from(chunk));
            }
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish().await.map_err(|e| Error::storage(key, e))?;
                Ok(tally.finish())
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key, error = %abort, "failed to abort multipart upload");
                }
                Err(e)
            }
        }
    }

    /// Streams the object at `key` into `file`, returning its size and digest. Stops early
    /// when more bytes than expected arrive.
    async fn download(
        &self,
        path: &ObjPath,
        key: &str,
        file: std::fs::File,
        file_path: &Path,
        expected: Option<&Expected>,
    ) -> Result<(u64, String)> {
        let got = self
            .store
            .get(path)
            .await
            .map_err(|e| Error::storage(key, e))?;
        let mut stream = got.into_stream();
        let mut out =
            tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        let mut tally = Tally::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::storage(key, e))?;
            tally.update(&chunk);
            if let Some(exp) = expected
                && tally.size() > exp.size
            {
                return Err(Error::SizeMismatch {
                    key: key.to_owned(),
                    expected: exp.size,
                    actual: tally.size(),
                });
            }
            out.write_all(&chunk)
                .await
                .map_err(|e| Error::io(file_path, e))?;
        }
        out.flush().await.map_err(|e| Error::io(file_path, e))?;
        out.into_inner()
            .sync_all()
            .await
            .map_err(|e| Error::io(file_path, e))?;
        let (size, sha256) = tally.finish();
        if let Some(exp) = expected {
            check_expected(key, exp, size, &sha256)?;
        }
        Ok((size, sha256))
    }

    /// The object at `key` as a stream of chunks, as stored, checked against `expected` as it
    /// goes: an object longer than expected fails as soon as it is, and the last chunk is
    /// held back until the whole object's size and SHA-256 have matched, so a reader of the
    /// stream never receives all of a wrong object (it gets an error instead of the end).
    /// Nothing is held in memory but the chunk in hand.
    pub async fn stream_verified(
        &self,
        key: &str,
        expected: Expected,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + Send + 'static + use<>> {
        let path = self.path(key)?;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|e| Error::storage(key, e))?;
        let state = Verifying {
            chunks: got.into_stream(),
            tally: Tally::default(),
            held: None,
            key: key.to_owned(),
            expected,
            ended: false,
        };
        Ok(futures_util::stream::unfold(state, Verifying::next))
    }

    /// Downloads the object at `key` to the file `dest`, verifying `expected` while streaming.
    /// The data goes to a temporary file next to `dest`, renamed into place only when
    /// complete and verified; on any error it is removed and `dest` is untouched.
    pub async fn load_file(
        &self,
        key: &str,
        dest: &Path,
        expected: Option<Expected>,
    ) -> Result<SavedArtifact> {
        let path = self.path(key)?;
        let tmp = temp_file_next_to(dest, "cox-partial")?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io(tmp.path(), e))?;
        let (size, sha256) = self
            .download(&path, key, file, tmp.path(), expected.as_ref())
            .await?;
        set_mode(tmp.path(), 0o644)?;
        tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
        tracing::debug!(key, size, "loaded artifact file");
        Ok(SavedArtifact {
            key: key.to_owned(),
            size,
            sha256,
        })
    }

    /// Saves a file or directory under `key` with the given archive strategy. Archives are
    /// packed into a temporary file first (never in memory), then uploaded.
    pub async fn save_path(
        &self,
        src: &Path,
        key: &str,
        archive: Archive,
    ) -> Result<SavedArtifact> {
        archive.validate()?;
        let meta = tokio::fs::metadata(src)
            .await
            .map_err(|e| Error::io(src, e))?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(Error::InvalidSource {
                path: src.to_path_buf(),
            });
        }
        match archive {
            Archive::None if meta.is_file() => self.save_file(src, key).await,
            Archive::None => self.save_dir_objects(src, key).await,
            Archive::TarGz { compression_level } => {
                let tmp = self.staging_file()?;
                let out = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
                let (s, o) = (src.to_path_buf(), tmp.path().to_path_buf());
                let skip = self.options.skip.clone();
                blocking("packing tar.gz", move || {
                    archive::pack_tar_gz(&s, compression_level, out, &o, &skip)
                })
                .await?;
                self.save_file(tmp.path(), key).await
            }
            Archive::Zip => {
                let tmp = self.staging_file()?;
                let out = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
                let (s, o) = (src.to_path_buf(), tmp.path().to_path_buf());
                let skip = self.options.skip.clone();
                blocking("packing zip", move || archive::pack_zip(&s, out, &o, &skip)).await?;
                self.save_file(tmp.path(), key).await
            }
        }
    }

    fn staging_file(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self
            .options
            .staging_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        tempfile::Builder::new()
            .prefix(".cox-pack-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))
    }

    async fn save_dir_objects(&self, dir: &Path, key: &str) -> Result<SavedArtifact> {
        let d = dir.to_path_buf();
        let skip = self.options.skip.clone();
        let files = blocking("listing directory", move || list_files(&d, &skip)).await?;
        let mut manifest = Vec::with_capacity(files.len());
        let mut total = 0u64;
        for (rel, abs) in files {
            let child_key = format!("{}/{rel}", key.trim_end_matches('/'));
            let path = self.path(&child_key)?;
            let (size, sha) = self.upload(&abs, &path, &child_key).await?;
            total += size;
            manifest.push((rel, size, sha));
        }
        Ok(SavedArtifact {
            key: key.to_owned(),
            size: total,
            sha256: manifest_digest(&mut manifest),
        })
    }

    /// Loads what [`save_path`](Self::save_path) stored under `key` into `dest_path`: a file
    /// or a directory. Archives are downloaded to a temporary file next to `dest_path`,
    /// verified against `expected`, then safely unpacked (see [`crate::unpack`]). With
    /// [`Archive::None`], a single object is loaded as a file, otherwise every object under
    /// `key/` becomes a file of the directory. `dest_path` must not be a non-empty directory.
    pub async fn load_path(
        &self,
        key: &str,
        dest_path: &Path,
        archive: Archive,
        expected: Option<Expected>,
    ) -> Result<()> {
        archive.validate()?;
        unpack::check_dest_free(dest_path)?;
        match archive {
            Archive::None => {
                let path = self.path(key)?;
                match self.store.head(&path).await {
                    Ok(_) => {
                        self.load_file(key, dest_path, expected).await?;
                        Ok(())
                    }
                    Err(object_store::Error::NotFound { .. }) => {
                        self.load_dir_objects(key, dest_path, expected).await
                    }
                    Err(e) => Err(Error::storage(key, e)),
                }
            }
            Archive::TarGz { .. } | Archive::Zip => {
                let path = self.path(key)?;
                let tmp = temp_file_next_to(dest_path, "cox-download")?;
                let file = tmp
                    .as_file()
                    .try_clone()
                    .map_err(|e| Error::io(tmp.path(), e))?;
                self.download(&path, key, file, tmp.path(), expected.as_ref())
                    .await?;
                let limits = self.options.unpack_limits;
                let (a, d) = (tmp.path().to_path_buf(), dest_path.to_path_buf());
                let is_zip = archive == Archive::Zip;
                blocking("unpacking", move || {
                    if is_zip {
                        unpack::unpack_zip(&a, &d, &limits)
                    } else {
                        unpack::unpack_tar_gz(&a, &d, &limits)
                    }
                })
                .await?;
                drop(tmp);
                Ok(())
            }
        }
    }

    /// Loads an object known by its key alone (Argo's key-only and explicit locations) into
    /// `dest_path`: a gzip'd tar or a zip, told by its first bytes, is unpacked safely;
    /// anything else becomes the file `dest_path`. Without an object at `key`, the objects
    /// under `key/` become the directory `dest_path`.
    pub async fn load_detect(&self, key: &str, dest_path: &Path) -> Result<()> {
        unpack::check_dest_free(dest_path)?;
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => {
                return self.load_dir_objects(key, dest_path, None).await;
            }
            Err(e) => return Err(Error::storage(key, e)),
        }
        let tmp = temp_file_next_to(dest_path, "cox-download")?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io(tmp.path(), e))?;
        self.download(&path, key, file, tmp.path(), None).await?;
        let mut magic = [0u8; 4];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(tmp.path()).map_err(|e| Error::io(tmp.path(), e))?;
            f.read(&mut magic).map_err(|e| Error::io(tmp.path(), e))?
        };
        let limits = self.options.unpack_limits;
        let (a, d) = (tmp.path().to_path_buf(), dest_path.to_path_buf());
        if magic[..n].starts_with(&[0x1f, 0x8b]) {
            blocking("unpacking", move || unpack::unpack_tar_gz(&a, &d, &limits)).await?;
        } else if magic[..n] == *b"PK\x03\x04" {
            blocking("unpacking", move || unpack::unpack_zip(&a, &d, &limits)).await?;
        } else {
            set_mode(tmp.path(), 0o644)?;
            tmp.persist(dest_path)
                .map_err(|e| Error::io(dest_path, e.error))?;
        }
        Ok(())
    }

    async fn load_dir_objects(
        &self,
        key: &str,
        dest: &Path,
        expected: Option<Expected>,
    ) -> Result<()> {
        let objects = self.list_prefix(key).await?;
        if objects.is_empty() {
            return Err(Error::NotFound {
                key: key.to_owned(),
            });
        }
        let limits = self.options.unpack_limits;
        if objects.len() as u64 > limits.max_entries {
            return Err(Error::unsafe_entry(
                key,
                format!("more than {} objects under the prefix", limits.max_entries),
            ));
        }
        let staging = temp_dir_next_to(dest)?;
        let base = format!("{}/", key.trim_matches('/'));
        let mut manifest = Vec::with_capacity(objects.len());
        let mut total = 0u64;
        for obj in objects {
            let Some(rel) = obj.key.strip_prefix(&base) else {
                continue;
            };
            total = total.saturating_add(obj.size);
            if obj.size > limits.max_entry_size || total > limits.max_total_size {
                return Err(Error::unsafe_entry(
                    &obj.key,
                    "object exceeds the size limits",
                ));
            }
            // Object paths never hold `..` or empty segments; double-check anyway.
            let local_rel = PathBuf::from(rel);
            if local_rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(Error::unsafe_entry(&obj.key, "unsafe object path"));
            }
            let target = staging.path().join(&local_rel);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| Error::io(parent, e))?;
            }
            let file = std::fs::File::create(&target).map_err(|e| Error::io(&target, e))?;
            let path = self.path(&obj.key)?;
            let (size, sha) = self.download(&path, &obj.key, file, &target, None).await?;
            manifest.push((rel.to_owned(), size, sha));
        }
        let size: u64 = manifest.iter().map(|m| m.1).sum();
        let sha256 = manifest_digest(&mut manifest);
        if let Some(exp) = &expected {
            check_expected(key, exp, size, &sha256)?;
        }
        set_mode(staging.path(), 0o755)?;
        unpack::replace_dest(dest)?;
        let staging = staging.keep();
        std::fs::rename(&staging, dest).map_err(|e| Error::io(dest, e))?;
        Ok(())
    }

    /// Whether an object exists at `key`, or (for directories saved with [`Archive::None`])
    /// any object under `key/`.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => {
                let mut listing = self.store.list(Some(&path));
                match listing.next().await {
                    Some(Ok(_)) => Ok(true),
                    Some(Err(object_store::Error::NotFound { .. })) | None => Ok(false),
                    Some(Err(e)) => Err(Error::storage(key, e)),
                }
            }
            Err(e) => Err(Error::storage(key, e)),
        }
    }

    /// Deletes the object at `key`; deleting a missing key succeeds.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage(key, e)),
        }
    }

    /// Deletes every object under `prefix/`, returning how many were deleted. The prefix must
    /// not be empty (use a dedicated repository prefix to wipe everything).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let objects = self.list_prefix(prefix).await?;
        let mut deleted = 0;
        for obj in objects {
            self.delete(&obj.key).await?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Lists every object under `prefix/` (recursively), keys relative to the repository
    /// prefix, sorted by key. The prefix must not be empty.
    pub async fn list_prefix(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let path = self.path(prefix)?;
        let mut listing = self.store.list(Some(&path));
        let mut out = Vec::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => out.push(ListedObject {
                    key: self.relative_key(&meta.location),
                    size: meta.size,
                }),
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(Error::storage(prefix, e)),
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// The state of [`ArtifactRepository::stream_verified`]'s stream.
struct Verifying {
    chunks: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
    tally: Tally,
    /// The latest chunk, given out only once a later one came or the whole object matched.
    held: Option<Bytes>,
    key: String,
    expected: Expected,
    ended: bool,
}

impl Verifying {
    async fn next(mut self) -> Option<(Result<Bytes>, Verifying)> {
        if self.ended {
            return None;
        }
        loop {
            match self.chunks.next().await {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    self.tally.update(&chunk);
                    if self.tally.size() > self.expected.size {
                        self.ended = true;
                        let error = Error::SizeMismatch {
                            key: self.key.clone(),
                            expected: self.expected.size,
                            actual: self.tally.size(),
                        };
                        return Some((Err(error), self));
                    }
                    if let Some(previous) = self.held.replace(chunk) {
                        return Some((Ok(previous), self));
                    }
                }
                Some(Err(e)) => {
                    self.ended = true;
                    let error = Error::storage(&self.key, e);
                    return Some((Err(error), self));
                }
                None => {
                    self.ended = true;
                    let (size, sha256) = std::mem::take(&mut self.tally).finish();
                    return match check_expected(&self.key, &self.expected, size, &sha256) {
                        Ok(()) => self.held.take().map(|last| (Ok(last), self)),
                        Err(error) => Some((Err(error), self)),
                    };
                }
            }
        }
    }
}

fn check_expected(key: &str, exp: &Expected, size: u64, sha256: &str) -> Result<()> {
    if size != exp.size {
        return Err(Error::SizeMismatch {
            key: key.to_owned(),
            expected: exp.size,
            actual: size,
        });
    }
    if !sha256.eq_ignore_ascii_case(&exp.sha256) {
        return Err(Error::DigestMismatch {
            key: key.to_owned(),
            expected: exp.sha256.clone(),
            actual: sha256.to_owned(),
        });
    }
    Ok(())
}

/// Reads until `want` bytes or end of file.
async fn read_chunk(file: &mut tokio::fs::File, want: usize, path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(want.min(16 << 20));
    let mut limited = file.take(want as u64);
    limited
        .read_to_end(&mut buf)
        .await
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

fn parent_of(dest: &Path) -> Result<PathBuf> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    Ok(parent)
}

fn temp_prefix(dest: &Path, what: &str) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.{what}-")
}

fn temp_file_next_to(dest: &Path, what: &str) -> Result<tempfile::NamedTempFile> {
    let parent = parent_of(dest)?;
    tempfile::Builder::new()
        .prefix(&temp_prefix(dest, what))
        .tempfile_in(&parent)
        .map_err(|e| Error::io(&parent, e))
}

fn temp_dir_next_to(dest: &Path) -> Result<tempfile::TempDir> {
    let parent = parent_of(dest)?;
    tempfile::Builder::new()
        .prefix(&temp_prefix(dest, "cox-unpack"))
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(path, e))
}

async fn blocking<T, F>(what: &str, f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Background {
            what: what.to_owned(),
            message: e.to_string(),
        })?
}

/// Regular files under `dir` (following symlinks to files, skipping other links and special
/// files), as (`a/b` relative key, absolute path), sorted.
fn list_files(dir: &Path, skip: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        for child in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let child = child.map_err(|e| Error::io(&d, e))?;
            let path = child.path();
            if skip.contains(&path) {
                continue;
            }
            let name = child
                .file_name()
                .to_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::InvalidKey {
                    key: path.to_string_lossy().into_owned(),
                    reason: "file name is not valid utf-8".into(),
                })?;
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = child.file_type().map_err(|e| Error::io(&path, e))?;
            if ft.is_dir() {
                stack.push((path, child_rel));
            } else if ft.is_file()
                || (ft.is_symlink() && std::fs::metadata(&path).is_ok_and(|m| m.is_file()))
            {
                out.push((child_rel, path));
            } else {
                tracing::warn!(path = %path.display(), "skipping entry that is not a regular file");
            }
        }
    }
    out.sort();
    Ok(out)
}
