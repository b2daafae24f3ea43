//! Criterion benchmarks of Hoist's hot paths, run by hand (`cargo bench --bench hot_paths`):
//! checksumming a file, signing a URL, planning parts, committing queue changes from several
//! uploads at once, and small files end to end into the embedded store (the per-file overhead
//! that decides workload B of `bench/compare.sh`). Results are in BENCHMARKS.md.
// criterion_group! defines an undocumented `pub fn` in this bench crate.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hoist::queue::{NewItem, Queue};
use hoist::secret::Secret;
use hoist::sign::sigv4::SigV4Signer;
use hoist::upload::parts::{multipart_etag, part_count, part_size_for, DEFAULT_PART_SIZE};

fn random_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    use rand::RngCore;
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a bench file");
    path
}

fn checksums(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut g = c.benchmark_group("digest_file (SHA-256 + MD5)");
    for (name, len) in [
        ("64 KiB", 64 << 10),
        ("8 MiB", 8 << 20),
        ("64 MiB", 64 << 20),
    ] {
        let path = random_file(dir.path(), name, len);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(hoist::upload::digest_file(&path))
                    .expect("digest")
            })
        });
    }
    g.finish();
}

fn signing(c: &mut Criterion) {
    let signer = SigV4Signer::new(
        "bucket",
        "us-east-1",
        "AKIDEXAMPLE",
        Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    c.bench_function("presign one PUT (SigV4, 3 signed headers)", |b| {
        b.iter(|| {
            signer
                .presign(
                    "PUT",
                    "https://bucket.s3.amazonaws.com/uploads/2026/file.bin",
                    &[
                        ("content-length", "65536"),
                        ("content-md5", "XUFAKrxLKna5cZ2REBfFkg=="),
                        ("content-type", "application/octet-stream"),
                    ],
                    Duration::from_secs(900),
                    now,
                )
                .expect("presign")
        })
    });
}

fn part_planning(c: &mut Criterion) {
    let size = 5u64 << 40; // S3's largest object: parts of 525 MiB, at most 10,000
    let md5s: Vec<[u8; 16]> = (0..10_000u32)
        .map(|i| {
            let mut m = [0u8; 16];
            m[..4].copy_from_slice(&i.to_be_bytes());
            m
        })
        .collect();
    c.bench_function("plan parts and the final ETag of a 5 TiB object", |b| {
        b.iter(|| {
            let part = part_size_for(size, DEFAULT_PART_SIZE).expect("part size");
            assert!(part_count(size, part) <= 10_000);
            multipart_etag(&md5s)
        })
    });
}

fn queue_commits(c: &mut Criterion) {
    // As `hoist upload` does: a chunk of files queued in one commit, each finished on its own.
    let mut g = c.benchmark_group("queue: queue 64 files, then finish each (fsync'd)");
    g.sample_size(10);
    for writers in [1usize, 4] {
        g.bench_function(format!("{writers} writer(s)"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let q = Queue::open(&dir.path().join("q.sqlite3")).expect("queue");
                    (dir, q)
                },
                |(_dir, q)| {
                    std::thread::scope(|s| {
                        for w in 0..writers {
                            let q = &q;
                            s.spawn(move || {
                                let paths: Vec<PathBuf> = (0..64 / writers)
                                    .map(|i| PathBuf::from(format!("/d/{w}/{i}")))
                                    .collect();
                                let items: Vec<NewItem<'_>> = paths
                                    .iter()
                                    .map(|path| NewItem {
                                        profile: "p",
                                        path,
                                        key: "k",
                                        size: 1,
                                        content_type: "text/plain",
                                        modified_ns: None,
                                        fingerprint: "",
                                    })
                                    .collect();
                                for id in q.add_many(&items).expect("add") {
                                    q.finish(
                                        id,
                                        &hoist::queue::Landed {
                                            key: "k",
                                            sha256: Some("sha"),
                                            location: "loc",
                                            ..Default::default()
                                        },
                                    )
                                    .expect("finish");
                                }
                            });
                        }
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// A temp dir in memory where there is one: the store's file system work would otherwise
/// dominate, and vary with the disk's history (ext4 slows down creating files after many deletes).
fn memory_tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir")
}

fn small_files_end_to_end(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let files = memory_tempdir();
    let paths: Vec<PathBuf> = (0..100)
        .map(|i| random_file(files.path(), &format!("f{i}.bin"), 64 << 10))
        .collect();
    let data = memory_tempdir();
    let queue = Arc::new(Queue::open(&data.path().join("q.sqlite3")).expect("queue"));
    let session = rt
        .block_on(hoist::session::Session::open_in(
            hoist::profile::Profile::local(),
            &hoist::secret::Keychain::new("hoist-bench-unused"),
            hoist::retry::RetryPolicy::default(),
            queue,
            data.path(),
        ))
        .expect("a session on the embedded store");
    let mut g = c.benchmark_group("upload to the embedded store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(paths.len() as u64));
    let bucket = session
        .local_store()
        .expect("the embedded store")
        .bucket_dir();
    g.bench_function("100 files of 64 KiB", |b| {
        b.iter_custom(|iterations| {
            let mut spent = Duration::ZERO;
            for _ in 0..iterations {
                let started = std::time::Instant::now();
                let outcomes = rt.block_on(session.upload_all(&paths, |_| Arc::new(|_| {})));
                spent += started.elapsed();
                assert!(outcomes.iter().all(|o| o.result.is_ok()));
                // Untimed: every iteration starts from an empty bucket, as a store that filled
                // up would slow the later ones (file systems slow down in large directories).
                empty_store(&bucket);
            }
            spent
        })
    });
    g.finish();
}

/// Removes the bucket's objects and the store's metadata files beside it (`.bucket-…`).
fn empty_store(bucket: &Path) {
    std::fs::remove_dir_all(bucket).expect("empty the bucket");
    std::fs::create_dir_all(bucket).expect("recreate the bucket");
    let root = bucket.parent().expect("the store's root");
    for entry in std::fs::read_dir(root).expect("the store's root").flatten() {
        if entry.file_name().to_string_lossy().starts_with(".bucket-") {
            std::fs::remove_file(entry.path()).expect("remove object metadata");
        }
    }
}

criterion_group!(
    benches,
    checksums,
    signing,
    part_planning,
    queue_commits,
    small_files_end_to_end
);
criterion_main!(benches);
