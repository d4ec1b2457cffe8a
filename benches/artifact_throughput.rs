//! Benchmark: a large artifact passed between two steps through an S3 server, against a
//! plain object_store put plus get of the same bytes to the same server; peak RSS of the
//! scheduler (`cox run`) and of the in-step wrappers (`cox __step`).
//!
//! Run with `benches/artifact-throughput.sh` (starts moto when `COX_TEST_S3_ENDPOINT` is
//! unset), or `cargo bench --bench artifact_throughput -- [--mib N] [--runs N]` with the
//! `COX_TEST_S3_*` variables of `scripts/test` set. Plain `main`, no harness.
//!
//! - Baseline: object_store's `BufWriter` (multipart) fed from the file, then `get` streamed
//!   to a file: the time of the put plus the get.
//! - cox: `cox run` of a two-step workflow through the bucket: the producer's output
//!   artifact (`archive: none`) is the prepared file itself (its program is `true`), the
//!   consumer's input is downloaded (and its SHA-256 checked) into its sandbox's `/tmp`.
//!   The transfer time is the run's wall time minus that of the same workflow with a one-byte
//!   file (process starts, sandbox, store: everything but moving the bytes).
//!
//! Throughput is bytes moved (size up plus size down) over time; minimum and median over
//! `--runs` runs are printed, and the ratio of the medians against the 70% target.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

const TARGET_RATIO: f64 = 0.70;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("{name} is not set: run benches/artifact-throughput.sh, or set the COX_TEST_S3_* variables as scripts/test does");
        std::process::exit(2)
    })
}

/// A file of `size` pseudo-random bytes (incompressible, fast to make).
fn write_random(path: &Path, size: u64) {
    let mut f =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

fn store() -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(env("COX_TEST_S3_ENDPOINT"))
            .with_bucket_name(env("COX_TEST_S3_BUCKET"))
            .with_region(std::env::var("COX_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into()))
            .with_access_key_id(env("COX_TEST_S3_ACCESS_KEY"))
            .with_secret_access_key(env("COX_TEST_S3_SECRET_KEY"))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("s3 store"),
    )
}

/// Put then get through object_store alone; returns the two durations.
async fn plain_put_get(
    store: &Arc<dyn ObjectStore>,
    src: &Path,
    dest: &Path,
    key: &str,
) -> (Duration, Duration) {
    let path = ObjPath::from(key);
    let start = Instant::now();
    let mut writer = object_store::buffered::BufWriter::new(store.clone(), path.clone());
    let mut file = tokio::fs::File::open(src).await.expect("open");
    tokio::io::copy(&mut file, &mut writer).await.expect("put");
    writer.shutdown().await.expect("complete put");
    let put = start.elapsed();
    let start = Instant::now();
    let mut out = tokio::fs::File::create(dest).await.expect("create");
    let mut stream = store.get(&path).await.expect("get").into_stream();
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk.expect("chunk")).await.expect("write");
    }
    out.flush().await.expect("flush");
    let get = start.elapsed();
    store.delete(&path).await.expect("delete");
    (put, get)
}

const WORKFLOW: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: throughput-
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: produce
            template: produce
        - - name: consume
            template: consume
            arguments:
              artifacts:
                - name: data
                  from: "{{steps.produce.outputs.artifacts.data}}"
    - name: produce
      container:
        image: busybox
        command: ["true"]
      outputs:
        artifacts:
          - name: data
            path: SOURCE
            archive:
              none: {}
    - name: consume
      inputs:
        artifacts:
          - name: data
            path: /tmp/in.bin
      container:
        image: busybox
        command: ["true"]
"#;

/// Peak RSS (VmHWM, KiB) of `pid`, if it still exists.
fn hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn parent(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn descends_from(mut pid: u32, root: u32) -> bool {
    for _ in 0..64 {
        match parent(pid) {
            Some(p) if p == root => return true,
            Some(p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

/// One `cox run`: wall time, and the peak RSS (KiB) of `cox run` and of its wrappers,
/// sampled from /proc every 20 ms.
fn cox_run(cox: &str, home: &Path, workflow: &Path, config: &Path) -> (Duration, u64, u64) {
    let start = Instant::now();
    let child = Command::new(cox)
        .args([
            "run",
            &workflow.display().to_string(),
            "-o",
            "json",
            "--config",
            &config.display().to_string(),
        ])
        .env("COX_HOME", home)
        .env("AWS_ACCESS_KEY_ID", env("COX_TEST_S3_ACCESS_KEY"))
        .env("AWS_SECRET_ACCESS_KEY", env("COX_TEST_S3_SECRET_KEY"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start cox run");
    let root = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut sched, mut wrapper) = (0u64, 0u64);
            while !done.load(Ordering::Relaxed) {
                sched = sched.max(hwm(root).unwrap_or(0));
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Some(pid) = entry
                        .file_name()
                        .to_str()
                        .and_then(|s| s.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    if cmdline.windows(6).any(|w| w == b"__step") && descends_from(pid, root) {
                        wrapper = wrapper.max(hwm(pid).unwrap_or(0));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (sched, wrapper)
        })
    };
    let out = child.wait_with_output().expect("cox run");
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let (sched, wrapper) = sampler.join().expect("sampler");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"phase\": \"Succeeded\"") || stdout.contains("\"phase\":\"Succeeded\""),
        "the benchmark run did not succeed: {}",
        &stdout[..stdout.len().min(2000)]
    );
    (elapsed, sched, wrapper)
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mib = opt("--mib", 1024);
    let runs = opt("--runs", 3) as usize;
    let size = mib << 20;
    let cox = env!("CARGO_BIN_EXE_cox");
    let tmp = tempfile::Builder::new()
        .prefix("cox-throughput-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let big = tmp.path().join("big.bin");
    let tiny = tmp.path().join("tiny.bin");
    write_random(&big, size);
    write_random(&tiny, 1);
    let config = tmp.path().join("s3.yaml");
    std::fs::write(
        &config,
        format!(
            "artifactRepository:\n  s3:\n    endpoint: {}\n    bucket: {}\n    region: {}\n    insecure: true\n    keyPrefix: bench\n",
            env("COX_TEST_S3_ENDPOINT"),
            env("COX_TEST_S3_BUCKET"),
            std::env::var("COX_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".into())
        ),
    )
    .expect("config");
    let workflow = |src: &Path, name: &str| -> PathBuf {
        let p = tmp.path().join(name);
        std::fs::write(&p, WORKFLOW.replace("SOURCE", &src.display().to_string()))
            .expect("workflow");
        p
    };
    let (wf_big, wf_tiny) = (workflow(&big, "big.yaml"), workflow(&tiny, "tiny.yaml"));
    let moved = 2.0 * size as f64 / (1u64 << 20) as f64;
    println!("artifact: {mib} MiB, {runs} runs; throughput = MiB moved (up + down) per second");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s3 = store();
    let mut plain = Vec::new();
    for i in 0..runs {
        let (put, get) = rt.block_on(plain_put_get(
            &s3,
            &big,
            &tmp.path().join("got.bin"),
            &format!("bench/plain-{i}"),
        ));
        let _ = std::fs::remove_file(tmp.path().join("got.bin"));
        println!(
            "plain object_store: put {:.2} s, get {:.2} s",
            put.as_secs_f64(),
            get.as_secs_f64()
        );
        plain.push(moved / (put + get).as_secs_f64());
    }

    let mut overhead = Vec::new();
    for i in 0..runs {
        let (t, _, _) = cox_run(
            cox,
            &tmp.path().join(format!("home-tiny-{i}")),
            &wf_tiny,
            &config,
        );
        overhead.push(t.as_secs_f64());
    }
    let (_, overhead_med) = stats(overhead.clone());
    println!("cox run, 1-byte artifact (fixed cost): median {overhead_med:.2} s");

    let mut through = Vec::new();
    let (mut sched_peak, mut wrapper_peak) = (0u64, 0u64);
    for i in 0..runs {
        let home = tmp.path().join(format!("home-{i}"));
        let (t, sched, wrapper) = cox_run(cox, &home, &wf_big, &config);
        let _ = std::fs::remove_dir_all(&home);
        let transfer = t.as_secs_f64() - overhead_med;
        println!(
            "cox run: {:.2} s, transfer {transfer:.2} s; peak RSS cox run {} MiB, wrapper {} MiB",
            t.as_secs_f64(),
            sched / 1024,
            wrapper / 1024
        );
        through.push(moved / transfer);
        sched_peak = sched_peak.max(sched);
        wrapper_peak = wrapper_peak.max(wrapper);
    }
    let (pmin, pmed) = stats(plain);
    let (cmin, cmed) = stats(through);
    println!("plain object_store: min {pmin:.1} MiB/s, median {pmed:.1} MiB/s");
    println!("cox (two steps):    min {cmin:.1} MiB/s, median {cmed:.1} MiB/s");
    let ratio = cmed / pmed;
    println!(
        "ratio of medians: {:.0}% (target >= {:.0}%): {}",
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        if ratio >= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "peak RSS: cox run {} MiB, cox __step {} MiB (target < 100 MiB each)",
        sched_peak / 1024,
        wrapper_peak / 1024
    );
}
