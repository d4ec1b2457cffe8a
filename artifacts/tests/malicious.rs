//! Hostile archives, built here with raw tar headers (the tar builder refuses most of these).
//! Each must be refused with the offending entry named, writing nothing outside the
//! destination and leaving no destination behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use cox_artifacts::unpack::{unpack_tar_gz, unpack_zip};
use cox_artifacts::{Archive, ArtifactRepository, Error, TransferOptions, UnpackLimits};
use tar::EntryType;

mod hostile;
use hostile::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A scratch area: `root/work/<archive>` and destination `root/work/dest/out`.
struct Scene {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    archive: PathBuf,
    dest: PathBuf,
}

fn scene() -> Scene {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let work = root.join("work");
    fs::create_dir_all(work.join("dest")).expect("mkdir");
    Scene {
        archive: work.join("evil.tgz"),
        dest: work.join("dest/out"),
        root,
        _tmp: tmp,
    }
}

/// Every path under `root`, relative.
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            out.push(p.strip_prefix(root).expect("prefix").display().to_string());
            if fs::symlink_metadata(&p).expect("lstat").is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn small_limits() -> UnpackLimits {
    UnpackLimits {
        max_entries: 1_000,
        max_entry_size: 10 << 20,
        max_total_size: 20 << 20,
    }
}

/// Unpacks and checks: refused, entry named, nothing but the archive on disk.
fn assert_refused(s: &Scene, limits: &UnpackLimits, entry: &str) {
    let err = match unpack_tar_gz(&s.archive, &s.dest, limits) {
        Ok(()) => panic!("archive with {entry:?} was accepted: {:?}", tree(&s.root)),
        Err(e) => e,
    };
    match &err {
        Error::UnsafeEntry { entry: named, .. } => assert_eq!(named, entry, "{err}"),
        other => panic!("expected UnsafeEntry for {entry:?}, got {other}"),
    }
    assert!(err.to_string().contains(entry), "{err}");
    assert!(!err.is_transient());
    assert_eq!(
        tree(&s.root),
        ["work", "work/dest", "work/evil.tgz"],
        "something was written for {entry:?}"
    );
}

#[test]
fn parent_traversal_is_refused() -> TestResult {
    for name in [
        "../evil.txt",
        "ok/../../evil.txt",
        "a/b/../../../../evil.txt",
    ] {
        let s = scene();
        write_tgz(
            &s.archive,
            [dir("ok/"), file("ok/fine.txt", b"x"), file(name, b"pwned")],
        )?;
        assert_refused(&s, &small_limits(), name);
    }
    Ok(())
}

#[test]
fn absolute_path_is_refused() -> TestResult {
    let s = scene();
    let target = s.root.join("abs-evil.txt");
    let name = target.display().to_string();
    write_tgz(&s.archive, [file("fine.txt", b"x"), file(&name, b"pwned")])?;
    assert_refused(&s, &small_limits(), &name);
    assert!(!target.exists());
    Ok(())
}

#[test]
fn escaping_symlinks_are_refused() -> TestResult {
    let cases: Vec<(Vec<Raw>, &str)> = vec![
        (vec![link("up", EntryType::Symlink, "../../outside")], "up"),
        (vec![link("etc", EntryType::Symlink, "/etc")], "etc"),
        (
            vec![dir("d/"), link("d/deep", EntryType::Symlink, "../../x")],
            "d/deep",
        ),
        // A chain: d/s1 -> .. is the archive root (fine), but s2 -> d/s1/.. leaves it.
        (
            vec![
                dir("d/"),
                link("d/s1", EntryType::Symlink, ".."),
                link("s2", EntryType::Symlink, "d/s1/.."),
            ],
            "s2",
        ),
        // The same chain created in the other order is caught by the final check.
        (
            vec![
                dir("d/"),
                link("s2", EntryType::Symlink, "d/s1/.."),
                link("d/s1", EntryType::Symlink, ".."),
            ],
            "s2",
        ),
    ];
    for (entries, bad) in cases {
        let s = scene();
        let mut all = vec![file("keep.txt", b"x")];
        all.extend(entries);
        write_tgz(&s.archive, all)?;
        assert_refused(&s, &small_limits(), bad);
    }
    Ok(())
}

#[test]
fn symlink_then_file_through_it_is_refused() -> TestResult {
    // Escaping link: refused at the link itself.
    let s = scene();
    write_tgz(
        &s.archive,
        [
            link("sub", EntryType::Symlink, "../.."),
            file("sub/evil.txt", b"pwned"),
        ],
    )?;
    assert_refused(&s, &small_limits(), "sub");

    // Even a link pointing inside is never written through.
    let s = scene();
    write_tgz(
        &s.archive,
        [
            dir("real/"),
            link("alias", EntryType::Symlink, "real"),
            file("alias/evil.txt", b"pwned"),
        ],
    )?;
    assert_refused(&s, &small_limits(), "alias/evil.txt");
    Ok(())
}

#[test]
fn escaping_hardlinks_are_refused() -> TestResult {
    for (target, bad) in [("../../../etc/passwd", "hl"), ("/etc/passwd", "hl")] {
        let s = scene();
        write_tgz(
            &s.archive,
            [file("keep.txt", b"x"), link("hl", EntryType::Link, target)],
        )?;
        assert_refused(&s, &small_limits(), bad);
    }
    // A hardlink to an inside symlink that points outside must not work either.
    let s = scene();
    write_tgz(
        &s.archive,
        [
            file("keep.txt", b"x"),
            link("inner", EntryType::Symlink, "keep.txt"),
            link("hl", EntryType::Link, "inner"),
        ],
    )?;
    assert_refused(&s, &small_limits(), "hl");
    Ok(())
}

#[test]
fn device_and_fifo_entries_are_refused() -> TestResult {
    for kind in [EntryType::Char, EntryType::Block, EntryType::Fifo] {
        let s = scene();
        write_tgz(&s.archive, [file("keep.txt", b"x"), special("node", kind)])?;
        assert_refused(&s, &small_limits(), "node");
    }
    Ok(())
}

#[test]
fn gzip_bomb_is_refused() -> TestResult {
    // 200 MB of zeros compresses to about 200 KB.
    let s = scene();
    write_tgz(
        &s.archive,
        [file("keep.txt", b"x"), zeros("bomb.bin", 200 << 20)],
    )?;
    assert!(fs::metadata(&s.archive)?.len() < 2 << 20);
    assert_refused(&s, &small_limits(), "bomb.bin");

    // Many entries each under the per-entry cap but over the total.
    let s = scene();
    write_tgz(
        &s.archive,
        (0..5).map(|i| zeros(&format!("part-{i}.bin"), 8 << 20)),
    )?;
    assert_refused(&s, &small_limits(), "part-2.bin");
    Ok(())
}

#[test]
fn entry_flood_is_refused() -> TestResult {
    let s = scene();
    write_tgz(
        &s.archive,
        (0..100_000).map(|i| file(&format!("f{i}"), b"")),
    )?;
    let limits = UnpackLimits {
        max_entries: 500,
        ..small_limits()
    };
    assert_refused(&s, &limits, "f500");
    Ok(())
}

#[test]
fn well_behaved_archive_with_inside_links_unpacks() -> TestResult {
    let s = scene();
    write_tgz(
        &s.archive,
        [
            dir("out/"),
            dir("out/d/"),
            file("out/d/a.txt", b"hello"),
            link("out/d/rel", EntryType::Symlink, "a.txt"),
            link("out/up", EntryType::Symlink, "d/../d/a.txt"),
            link("out/hard", EntryType::Link, "out/d/a.txt"),
        ],
    )?;
    unpack_tar_gz(&s.archive, &s.dest, &small_limits())?;
    assert_eq!(fs::read(s.dest.join("d/rel"))?, b"hello");
    assert_eq!(fs::read(s.dest.join("up"))?, b"hello");
    assert_eq!(fs::read(s.dest.join("hard"))?, b"hello");
    Ok(())
}

#[test]
fn link_valid_only_before_root_stripping_is_refused() -> TestResult {
    // Inside the archive `top/l -> ../other` points at a sibling, but with a single top-level
    // entry `top` becomes the destination and the link would leave it.
    let s = scene();
    write_tgz(
        &s.archive,
        [dir("top/"), link("top/l", EntryType::Symlink, "../other")],
    )?;
    assert_refused(&s, &small_limits(), "top/l");
    Ok(())
}

fn write_zip(path: &Path, entries: &[(&str, Option<u32>, &[u8])]) -> zip::result::ZipResult<()> {
    let mut zw = zip::ZipWriter::new(fs::File::create(path)?);
    for (name, mode, data) in entries {
        let mut opts = zip::write::SimpleFileOptions::default();
        if let Some(m) = mode {
            opts = opts.external_attributes(*m << 16);
        }
        zw.start_file(*name, opts)?;
        zw.write_all(data)?;
    }
    zw.finish()?;
    Ok(())
}

#[test]
fn hostile_zips_are_refused() -> TestResult {
    let cases: [(&str, Option<u32>); 3] = [
        ("../evil.txt", None),
        ("/tmp/cox-zip-evil.txt", None),
        ("fifo", Some(0o010_644)),
    ];
    for (bad, mode) in cases {
        let s = scene();
        write_zip(
            &s.archive,
            &[("fine.txt", None, b"x"), (bad, mode, b"pwned")],
        )?;
        let err = unpack_zip(&s.archive, &s.dest, &small_limits())
            .err()
            .ok_or("accepted")?;
        assert!(
            matches!(&err, Error::UnsafeEntry { entry, .. } if entry == bad),
            "{err}"
        );
        assert_eq!(tree(&s.root), ["work", "work/dest", "work/evil.tgz"]);
    }
    assert!(!Path::new("/tmp/cox-zip-evil.txt").exists());

    let s = scene();
    let big = vec![0u8; 11 << 20];
    write_zip(&s.archive, &[("big.bin", None, &big)])?;
    let err = unpack_zip(&s.archive, &s.dest, &small_limits())
        .err()
        .ok_or("accepted")?;
    assert!(
        matches!(&err, Error::UnsafeEntry { entry, .. } if entry == "big.bin"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn repository_refuses_a_malicious_stored_archive() -> TestResult {
    let s = scene();
    write_tgz(
        &s.archive,
        [file("ok.txt", b"x"), file("../../escape.txt", b"pwned")],
    )?;
    let repo = ArtifactRepository::local(s.root.join("repo"))?.with_options(TransferOptions {
        unpack_limits: small_limits(),
        ..TransferOptions::default()
    });
    repo.save_file(&s.archive, "evil.tgz").await?;
    let dest = s.root.join("work/dest/out");
    let err = repo
        .load_path("evil.tgz", &dest, Archive::default(), None)
        .await
        .err()
        .ok_or("accepted")?;
    assert!(
        matches!(&err, Error::UnsafeEntry { entry, .. } if entry == "../../escape.txt"),
        "{err}"
    );
    assert!(!dest.exists());
    assert_eq!(fs::read_dir(s.root.join("work/dest"))?.count(), 0);
    assert!(!s.root.join("escape.txt").exists());
    assert!(!s.root.join("work/escape.txt").exists());
    Ok(())
}
