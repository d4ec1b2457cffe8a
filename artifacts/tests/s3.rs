//! S3 round trip against a real S3-compatible server (moto, MinIO). Runs only when
//! `COX_TEST_S3_ENDPOINT` is set; also reads `COX_TEST_S3_BUCKET` (default `cox-test`),
//! `COX_TEST_S3_REGION` (default `us-east-1`), `COX_TEST_S3_ACCESS_KEY` and
//! `COX_TEST_S3_SECRET_KEY` (default `test`). The bucket must exist.

use std::fs;

use cox_artifacts::{Archive, ArtifactRepository, Error, S3Config, TransferOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::test]
async fn s3_round_trip() -> TestResult {
    let Ok(endpoint) = std::env::var("COX_TEST_S3_ENDPOINT") else {
        eprintln!("skipping: COX_TEST_S3_ENDPOINT is not set");
        return Ok(());
    };
    let mut cfg = S3Config::new(
        env_or("COX_TEST_S3_BUCKET", "cox-test"),
        env_or("COX_TEST_S3_REGION", "us-east-1"),
    );
    cfg.insecure = endpoint.starts_with("http://") || !endpoint.contains("://");
    cfg.endpoint = Some(endpoint);
    cfg.path_style = true;
    cfg.access_key_id = Some(env_or("COX_TEST_S3_ACCESS_KEY", "test"));
    cfg.secret_access_key = Some(env_or("COX_TEST_S3_SECRET_KEY", "test"));
    cfg.prefix = format!("cox-test-{}", std::process::id());
    let repo = ArtifactRepository::s3(cfg)?.with_options(TransferOptions {
        multipart_threshold: 5 << 20,
        part_size: 5 << 20,
        ..TransferOptions::default()
    });

    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("data");
    fs::create_dir_all(src.join("nested"))?;
    fs::write(src.join("a.txt"), b"alpha")?;
    let big: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
    fs::write(src.join("nested/big.bin"), &big)?;

    // Multipart upload of a single large file.
    let saved = repo
        .save_file(&src.join("nested/big.bin"), "big.bin")
        .await?;
    let dest = tmp.path().join("big.bin");
    repo.load_file("big.bin", &dest, Some((&saved).into()))
        .await?;
    assert!(fs::read(&dest)? == big);

    for (key, archive) in [
        ("dir.tgz", Archive::default()),
        ("dir.zip", Archive::Zip),
        ("dir", Archive::None),
    ] {
        let saved = repo.save_path(&src, key, archive).await?;
        let out = tmp.path().join(format!("out-{key}"));
        repo.load_path(key, &out, archive, Some((&saved).into()))
            .await?;
        assert_eq!(fs::read(out.join("a.txt"))?, b"alpha");
        assert!(fs::read(out.join("nested/big.bin"))? == big);
        assert!(repo.exists(key).await?);
    }

    let err = repo
        .load_file("missing", &tmp.path().join("m"), None)
        .await
        .err()
        .ok_or("expected not found")?;
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    repo.delete("big.bin").await?;
    repo.delete("dir.tgz").await?;
    repo.delete("dir.zip").await?;
    assert_eq!(repo.delete_prefix("dir").await?, 2);
    assert!(!repo.exists("dir").await?);
    Ok(())
}

#[tokio::test]
async fn unreachable_endpoint_is_a_transient_error() -> TestResult {
    // A loopback port nobody listens on: connection refused, no retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cfg = S3Config::new("bucket", "us-east-1");
    cfg.endpoint = Some(format!("127.0.0.1:{port}"));
    cfg.insecure = true;
    cfg.access_key_id = Some("test".into());
    cfg.secret_access_key = Some("test".into());
    cfg.client.max_retries = 0;
    cfg.client.connect_timeout = std::time::Duration::from_secs(2);
    let repo = ArtifactRepository::s3(cfg)?;
    let tmp = tempfile::tempdir()?;
    let err = repo
        .load_file("k", &tmp.path().join("k"), None)
        .await
        .err()
        .ok_or("expected a connection error")?;
    assert!(matches!(err, Error::Storage { .. }), "{err}");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("artifact k"), "{err}");
    Ok(())
}
