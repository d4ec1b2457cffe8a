//! Round trips through a local repository, with real files.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cox_artifacts::{
    Archive, ArtifactRepository, ClientSettings, Error, Expected, S3Config, TransferOptions,
};

mod support {
    pub mod http;
}

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A description of a tree: relative path -> (kind, mode, content or link target).
fn snapshot(root: &Path) -> BTreeMap<String, (char, u32, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (char, u32, Vec<u8>)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            let m = fs::symlink_metadata(&p).expect("lstat");
            let mode = m.permissions().mode() & 0o777;
            if m.file_type().is_symlink() {
                let t = fs::read_link(&p).expect("readlink");
                out.insert(rel, ('l', 0, t.to_string_lossy().as_bytes().to_vec()));
            } else if m.is_dir() {
                out.insert(rel, ('d', mode, Vec::new()));
                walk(base, &p, out);
            } else {
                out.insert(rel, ('f', mode, fs::read(&p).expect("read")));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn set_mode(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A directory with nested dirs, an empty dir, varied modes and an inside symlink.
fn sample_dir(root: &Path, with_symlink: bool) -> std::path::PathBuf {
    let d = root.join("data");
    fs::create_dir_all(d.join("nested/deeper")).expect("mkdir");
    fs::create_dir_all(d.join("empty")).expect("mkdir");
    fs::write(d.join("top.txt"), b"top level\n").expect("write");
    fs::write(d.join("run.sh"), b"#!/bin/sh\necho hi\n").expect("write");
    set_mode(&d.join("run.sh"), 0o750);
    fs::write(d.join("nested/deeper/model.bin"), vec![7u8; 70_000]).expect("write");
    fs::write(d.join("nested/secret.txt"), b"only me").expect("write");
    set_mode(&d.join("nested/secret.txt"), 0o600);
    set_mode(&d.join("nested/deeper"), 0o750);
    if with_symlink {
        std::os::unix::fs::symlink("nested/deeper/model.bin", d.join("model-link"))
            .expect("symlink");
    }
    d
}

fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn file_round_trips_with_every_archive_kind() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let src = tmp.path().join("report.csv");
    fs::write(&src, b"a,b\n1,2\n")?;
    set_mode(&src, 0o640);
    for (i, archive) in [
        Archive::default(),
        Archive::TarGz {
            compression_level: Some(0),
        },
        Archive::TarGz {
            compression_level: Some(9),
        },
        Archive::None,
        Archive::Zip,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("wf/step/report-{i}");
        let saved = repo.save_path(&src, &key, archive).await?;
        assert_eq!(saved.key, key);
        let dest = tmp.path().join(format!("out-{i}/report.csv"));
        repo.load_path(&key, &dest, archive, Some(Expected::from(&saved)))
            .await?;
        assert!(dest.is_file(), "{archive:?} should unpack to a file");
        assert_eq!(fs::read(&dest)?, b"a,b\n1,2\n");
        if archive != Archive::None {
            assert_eq!(
                fs::metadata(&dest)?.permissions().mode() & 0o777,
                0o640,
                "{archive:?} keeps the mode"
            );
        }
        // Nothing but the destination is left next to it.
        let siblings: Vec<_> = fs::read_dir(dest.parent().ok_or("parent")?)?.collect();
        assert_eq!(siblings.len(), 1, "{archive:?} left temporary files");
    }
    Ok(())
}

#[tokio::test]
async fn objects_known_by_key_alone_are_told_apart_by_their_bytes() -> TestResult {
    // Argo's key-only artifacts: no archive kind is recorded, so the loader looks.
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let dir = sample_dir(tmp.path(), false);
    for (i, archive) in [Archive::default(), Archive::Zip, Archive::None]
        .into_iter()
        .enumerate()
    {
        let key = format!("keys/dir-{i}");
        repo.save_path(&dir, &key, archive).await?;
        let dest = tmp.path().join(format!("dir-out-{i}"));
        repo.load_detect(&key, &dest).await?;
        let (want, got) = (snapshot(&dir), snapshot(&dest));
        // Every file comes back with its content (plain objects keep no empty directories).
        for (rel, (kind, _, content)) in &got {
            let same = want.get(rel).map(|w| (&w.0, &w.2)) == Some((kind, content));
            assert!(same, "{archive:?} {rel}");
        }
        assert!(got.contains_key("nested/deeper/model.bin"), "{archive:?}");
    }
    // A plain file whose bytes are not an archive is placed as is, even if it is text
    // that starts like one.
    let src = tmp.path().join("notes.txt");
    fs::write(&src, b"PK but not a zip")?;
    repo.save_path(&src, "keys/notes", Archive::None).await?;
    let dest = tmp.path().join("notes-out.txt");
    repo.load_detect("keys/notes", &dest).await?;
    assert_eq!(fs::read(&dest)?, b"PK but not a zip");
    // Missing: a clear error naming the key.
    let err = repo
        .load_detect("keys/missing", &tmp.path().join("none"))
        .await
        .expect_err("missing key");
    assert!(err.to_string().contains("keys/missing"), "{err}");
    Ok(())
}

#[tokio::test]
async fn directories_saved_leave_out_skipped_paths() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = sample_dir(tmp.path(), false);
    let mut options = TransferOptions::default();
    options.skip.push(dir.join("nested"));
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?.with_options(options);
    for (i, archive) in [Archive::default(), Archive::Zip, Archive::None]
        .into_iter()
        .enumerate()
    {
        let key = format!("skip/dir-{i}");
        repo.save_path(&dir, &key, archive).await?;
        let dest = tmp.path().join(format!("skip-out-{i}"));
        repo.load_path(&key, &dest, archive, None).await?;
        assert!(dest.join("top.txt").is_file(), "{archive:?}");
        assert!(
            !dest.join("nested").exists(),
            "{archive:?} saved a skipped path"
        );
    }
    Ok(())
}

#[tokio::test]
async fn directory_round_trips_through_tar_gz_preserving_modes_and_links() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let src = sample_dir(tmp.path(), true);
    let saved = repo
        .save_path(&src, "wf/data.tgz", Archive::default())
        .await?;
    assert_eq!(saved.sha256.len(), 64);
    let dest = tmp.path().join("in/data");
    repo.load_path(
        "wf/data.tgz",
        &dest,
        Archive::default(),
        Some((&saved).into()),
    )
    .await?;
    assert_eq!(snapshot(&src), snapshot(&dest));
    assert!(dest.join("empty").is_dir());
    assert_eq!(
        fs::read_link(dest.join("model-link"))?,
        Path::new("nested/deeper/model.bin")
    );
    Ok(())
}

#[tokio::test]
async fn directory_round_trips_through_zip() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let src = sample_dir(tmp.path(), false);
    let saved = repo.save_path(&src, "wf/data.zip", Archive::Zip).await?;
    let dest = tmp.path().join("in/data");
    repo.load_path("wf/data.zip", &dest, Archive::Zip, Some((&saved).into()))
        .await?;
    assert_eq!(snapshot(&src), snapshot(&dest));
    Ok(())
}

#[tokio::test]
async fn directory_round_trips_as_individual_objects() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let src = sample_dir(tmp.path(), false);
    let saved = repo.save_path(&src, "wf/data", Archive::None).await?;
    assert_eq!(saved.size, 10 + 18 + 70_000 + 7);
    let keys: Vec<_> = repo
        .list_prefix("wf/data")
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        [
            "wf/data/nested/deeper/model.bin",
            "wf/data/nested/secret.txt",
            "wf/data/run.sh",
            "wf/data/top.txt"
        ]
    );
    assert!(repo.exists("wf/data").await?);
    let dest = tmp.path().join("in/data");
    repo.load_path("wf/data", &dest, Archive::None, Some((&saved).into()))
        .await?;
    for f in [
        "top.txt",
        "run.sh",
        "nested/secret.txt",
        "nested/deeper/model.bin",
    ] {
        assert_eq!(fs::read(src.join(f))?, fs::read(dest.join(f))?, "{f}");
    }
    // A wrong manifest digest is detected.
    let dest2 = tmp.path().join("in/data2");
    let err = repo
        .load_path(
            "wf/data",
            &dest2,
            Archive::None,
            Some(Expected::new(saved.size, "00".repeat(32))),
        )
        .await
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(!dest2.exists());
    Ok(())
}

#[tokio::test]
async fn empty_directories_round_trip() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let src = tmp.path().join("nothing");
    fs::create_dir(&src)?;
    for archive in [Archive::default(), Archive::Zip] {
        let saved = repo.save_path(&src, "wf/empty", archive).await?;
        let dest = tmp.path().join(format!("in-{}/nothing", saved.sha256));
        repo.load_path("wf/empty", &dest, archive, Some((&saved).into()))
            .await?;
        assert!(dest.is_dir(), "{archive:?}");
        assert_eq!(fs::read_dir(&dest)?.count(), 0);
    }
    Ok(())
}

#[tokio::test]
async fn multi_megabyte_file_streams_through_multipart() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = pseudo_random(5 * 1024 * 1024 + 123);
    let src = tmp.path().join("big.bin");
    fs::write(&src, &data)?;
    let opts = TransferOptions {
        multipart_threshold: 1 << 20,
        part_size: 1 << 20,
        max_concurrent_parts: 2,
        ..TransferOptions::default()
    };
    for (name, repo) in [
        (
            "multipart",
            ArtifactRepository::local(tmp.path().join("repo1"))?.with_options(opts.clone()),
        ),
        (
            "single",
            ArtifactRepository::local(tmp.path().join("repo2"))?,
        ),
    ] {
        let saved = repo.save_file(&src, "big/blob.bin").await?;
        assert_eq!(saved.size, data.len() as u64, "{name}");
        assert_eq!(saved.sha256, sha256_hex(&data), "{name}");
        let dest = tmp.path().join(format!("{name}.bin"));
        let loaded = repo
            .load_file("big/blob.bin", &dest, Some((&saved).into()))
            .await?;
        assert_eq!(loaded, saved);
        assert!(fs::read(&dest)? == data, "{name} content differs");

        // The same file packed as tar.gz also round trips.
        let saved = repo
            .save_path(&src, "big/blob.tgz", Archive::default())
            .await?;
        let dest = tmp.path().join(format!("{name}-tgz/big.bin"));
        repo.load_path(
            "big/blob.tgz",
            &dest,
            Archive::default(),
            Some((&saved).into()),
        )
        .await?;
        assert!(fs::read(&dest)? == data, "{name} tgz content differs");
    }
    Ok(())
}

#[tokio::test]
async fn corrupted_object_is_detected_and_partial_file_removed() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("repo");
    let repo = ArtifactRepository::local(&root)?;
    let src = tmp.path().join("model.bin");
    fs::write(&src, pseudo_random(300_000))?;
    let saved = repo.save_file(&src, "m/model.bin").await?;
    let stored = root.join("m/model.bin");
    assert!(stored.is_file());

    // Same size, one byte flipped: digest mismatch.
    let mut bytes = fs::read(&stored)?;
    bytes[1234] ^= 0xff;
    fs::write(&stored, &bytes)?;
    let out = tmp.path().join("out");
    let dest = out.join("model.bin");
    let err = repo
        .load_file("m/model.bin", &dest, Some((&saved).into()))
        .await
        .err()
        .ok_or("expected digest mismatch")?;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("m/model.bin"));
    assert!(!err.is_transient());
    assert_eq!(fs::read_dir(&out)?.count(), 0, "partial file left behind");

    // Longer than recorded: size mismatch, also for archives.
    bytes.extend_from_slice(b"trailing");
    fs::write(&stored, &bytes)?;
    let err = repo
        .load_file("m/model.bin", &dest, Some((&saved).into()))
        .await
        .err()
        .ok_or("expected size mismatch")?;
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert_eq!(fs::read_dir(&out)?.count(), 0, "partial file left behind");

    let saved = repo
        .save_path(&src, "m/model.tgz", Archive::default())
        .await?;
    let mut tgz = fs::read(root.join("m/model.tgz"))?;
    let mid = tgz.len() / 2;
    tgz[mid] ^= 0x55;
    fs::write(root.join("m/model.tgz"), &tgz)?;
    let err = repo
        .load_path(
            "m/model.tgz",
            &dest,
            Archive::default(),
            Some((&saved).into()),
        )
        .await
        .err()
        .ok_or("expected digest mismatch")?;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(fs::read_dir(&out)?.count(), 0, "partial file left behind");
    Ok(())
}

#[tokio::test]
async fn missing_keys_and_bookkeeping() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let dest = tmp.path().join("x");
    let err = repo
        .load_file("no/such/key", &dest, None)
        .await
        .err()
        .ok_or("expected not found")?;
    assert!(
        matches!(err, Error::NotFound { ref key } if key == "no/such/key"),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_eq!(err.to_string(), "artifact no/such/key not found");
    for archive in [Archive::default(), Archive::None, Archive::Zip] {
        let err = repo
            .load_path("no/such/key", &dest, archive, None)
            .await
            .err()
            .ok_or("expected not found")?;
        assert!(matches!(err, Error::NotFound { .. }), "{archive:?}: {err}");
    }
    assert!(!dest.exists());
    assert!(!repo.exists("no/such/key").await?);

    let src = tmp.path().join("f.txt");
    fs::write(&src, b"x")?;
    for k in ["p/a", "p/b/c", "p/b/d", "q/e"] {
        repo.save_file(&src, k).await?;
    }
    assert!(repo.exists("p/a").await?);
    assert_eq!(repo.list_prefix("p").await?.len(), 3);
    assert_eq!(repo.list_prefix("p/b").await?.len(), 2);
    repo.delete("p/a").await?;
    repo.delete("p/a").await?; // idempotent
    assert!(!repo.exists("p/a").await?);
    assert_eq!(repo.delete_prefix("p").await?, 2);
    assert!(repo.list_prefix("p").await?.is_empty());
    assert!(repo.exists("q/e").await?);

    for bad in ["", "../x", "a//b", "a/./b"] {
        let err = repo
            .save_file(&src, bad)
            .await
            .err()
            .ok_or("expected invalid key")?;
        assert!(matches!(err, Error::InvalidKey { .. }), "{bad:?}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn prefixed_repository_and_bad_options() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let store = ArtifactRepository::local(tmp.path().join("repo"))?
        .store()
        .clone();
    let repo = ArtifactRepository::new(store, "tenant-a/artifacts")?;
    let src = tmp.path().join("f.txt");
    fs::write(&src, b"hello")?;
    repo.save_file(&src, "k/f.txt").await?;
    assert!(tmp.path().join("repo/tenant-a/artifacts/k/f.txt").is_file());
    assert_eq!(repo.list_prefix("k").await?[0].key, "k/f.txt");

    let err = repo
        .save_path(
            &src,
            "k/g",
            Archive::TarGz {
                compression_level: Some(12),
            },
        )
        .await
        .err()
        .ok_or("expected invalid config")?;
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");

    // A non-empty destination directory is never overwritten.
    let dir = tmp.path().join("busy");
    fs::create_dir(&dir)?;
    fs::write(dir.join("keep.txt"), b"mine")?;
    repo.save_path(&src, "k/t.tgz", Archive::default()).await?;
    let err = repo
        .load_path("k/t.tgz", &dir, Archive::default(), None)
        .await
        .err()
        .ok_or("expected destination exists")?;
    assert!(matches!(err, Error::DestinationExists { .. }), "{err}");
    assert_eq!(fs::read(dir.join("keep.txt"))?, b"mine");
    Ok(())
}

#[test]
fn s3_config_debug_redacts_credentials() -> TestResult {
    let mut cfg = S3Config::new("bucket", "us-east-1");
    cfg.endpoint = Some("127.0.0.1:9".into());
    cfg.insecure = true;
    cfg.access_key_id = Some("AKIAEXAMPLEKEYID".into());
    cfg.secret_access_key = Some("wJalrXUtnFEMI-super-secret".into());
    cfg.session_token = Some("token-secret-value".into());
    cfg.prefix = "artifacts".into();
    cfg.client = ClientSettings {
        max_retries: 1,
        ..ClientSettings::default()
    };
    let shown = format!("{cfg:?}");
    for secret in ["AKIAEXAMPLEKEYID", "super-secret", "token-secret-value"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    // Building does no network I/O.
    let repo = ArtifactRepository::s3(cfg)?;
    let shown = format!("{repo:?}");
    assert!(!shown.contains("super-secret"), "{shown}");
    assert!(shown.contains("http://127.0.0.1:9"), "{shown}");
    Ok(())
}

#[tokio::test]
async fn http_urls_keep_their_query_string() -> TestResult {
    // A signed URL: the server answers only with the exact query, encoded as given.
    let base = support::http::serve(|target| {
        (target == "/dir/data.bin?X-Amz-Signature=ab%2Fcd&expires=1")
            .then(|| b"signed bytes".to_vec())
    });
    let url = format!("{base}/dir/data.bin?X-Amz-Signature=ab%2Fcd&expires=1#fragment");
    let (repo, key) = ArtifactRepository::http(&url, &ClientSettings::default())?;
    assert_eq!(key, "dir/data.bin");
    assert!(
        !format!("{repo:?}").contains("Signature"),
        "the query stays out of descriptions: {repo:?}"
    );
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("data.bin");
    repo.load_detect(&key, &dest).await?;
    assert_eq!(fs::read(&dest)?, b"signed bytes");
    // Without the query, the same server has nothing.
    let (repo, key) =
        ArtifactRepository::http(&format!("{base}/dir/data.bin"), &ClientSettings::default())?;
    assert!(
        repo.load_detect(&key, &dir.path().join("other"))
            .await
            .is_err()
    );
    Ok(())
}

/// Every item of a stream: the bytes before the first error, and that error.
async fn drain(
    stream: impl futures_util::Stream<Item = cox_artifacts::Result<bytes::Bytes>>,
) -> (Vec<u8>, Option<Error>) {
    use futures_util::StreamExt;
    let mut stream = std::pin::pin!(stream);
    let mut received = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(e) => return (received, Some(e)),
        }
    }
    (received, None)
}

#[tokio::test]
async fn verified_streams_never_deliver_a_wrong_object_whole() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let repo = ArtifactRepository::local(tmp.path().join("repo"))?;
    let data = pseudo_random(300 * 1024);
    let src = tmp.path().join("data.bin");
    fs::write(&src, &data)?;
    let saved = repo.save_path(&src, "wf/step/data", Archive::None).await?;
    let stream = repo
        .stream_verified(&saved.key, Expected::from(&saved))
        .await?;
    let (received, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(received, data);
    // Another digest recorded: everything but the last chunk, then the mismatch.
    let wrong = Expected::new(saved.size, sha256_hex(b"something else"));
    let (received, error) = drain(repo.stream_verified(&saved.key, wrong).await?).await;
    assert!(
        matches!(error, Some(Error::DigestMismatch { .. })),
        "{error:?}"
    );
    assert!(received.len() < data.len());
    assert_eq!(received, data[..received.len()]);
    // A smaller size recorded: cut as soon as the object is longer.
    let shorter = Expected::new(1000, saved.sha256.clone());
    let (received, error) = drain(repo.stream_verified(&saved.key, shorter).await?).await;
    assert!(
        matches!(error, Some(Error::SizeMismatch { .. })),
        "{error:?}"
    );
    assert!(received.len() <= 1000);
    // No object: an error before any stream.
    assert!(matches!(
        repo.stream_verified("wf/step/none", Expected::from(&saved))
            .await,
        Err(Error::NotFound { .. })
    ));
    Ok(())
}
