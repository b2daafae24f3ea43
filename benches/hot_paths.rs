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
                                        relative_path: None,
                                        drop_id: None,
                                        destination: "local",
                                    })
                                    .collect();
                                for id in q.add_many(&items).expect("add") {
                                    q.lifecycle()
                                        .landed(
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

/// The desktop's queue view over a folder of 100,000 files half uploaded: what each window
/// fetch (the counts and 80 rows) costs while the uploads write to the same database.
fn queue_windows(c: &mut Criterion) {
    let (_dir, q) = queue_of_100k(
        "INSERT INTO items (profile, path, key, size, content_type, fingerprint, state) \
         VALUES ('local', ?1, ?2, 12, 'text/plain', '', ?3)",
        |i| {
            let state = if i < 50_000 { "done" } else { "queued" };
            vec![
                format!("/home/ann/Survey/f{i:06}.txt"),
                format!("uploads/Survey/f{i:06}.txt"),
                state.to_owned(),
            ]
        },
    );
    use hoist::queue::ItemState::{Cancelled, Done, Failed, Paused, Queued, Uploading};
    let unfinished = [Queued, Uploading, Paused];
    let finished = [Done, Failed, Cancelled];
    assert_eq!(
        q.visible_window(&unfinished, true, 0, 80).expect("w").len(),
        80
    );
    let mut g = c.benchmark_group("queue view of 100,000 uploads");
    g.bench_function("the counts", |b| {
        b.iter(|| q.visible_counts().expect("counts"))
    });
    g.bench_function("the top window (80 rows)", |b| {
        b.iter(|| q.visible_window(&unfinished, true, 0, 80).expect("w"))
    });
    g.bench_function("a window 40,000 deep (80 rows)", |b| {
        b.iter(|| q.visible_window(&unfinished, true, 40_000, 80).expect("w"))
    });
    g.bench_function("the newest finished (80 rows)", |b| {
        b.iter(|| q.visible_window(&finished, false, 0, 80).expect("w"))
    });
    g.finish();
}

/// A queue database of 100,000 items, filled directly (100,000 fsync'd commits would take
/// minutes): `sql` inserts one, with the values `row(i)` gives.
fn queue_of_100k(sql: &str, row: impl Fn(u32) -> Vec<String>) -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("q.sqlite3");
    let q = Queue::open(&db).expect("queue");
    let mut conn = rusqlite::Connection::open(&db).expect("db");
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx.prepare(sql).expect("insert");
        for i in 0..100_000u32 {
            insert
                .execute(rusqlite::params_from_iter(row(i)))
                .expect("row");
        }
    }
    tx.commit().expect("commit");
    (dir, q)
}

/// The history tab's reads over a queue of 100,000 finished uploads: the newest page, a page
/// deep in it, and a search (issue #17: "history with 100,000 rows opens in under a second").
fn history_pages(c: &mut Criterion) {
    let (_dir, q) = queue_of_100k(
        "INSERT INTO items (profile, path, key, size, content_type, fingerprint, state, sha256, \
         location, updated_at) VALUES ('local', ?1, ?2, 12, 'text/plain', '', 'done', 'ab', \
         'http://127.0.0.1/b/k', ?3)",
        |i| {
            vec![
                format!("/home/ann/Survey/d{:03}/f{i:06}.txt", i / 1000),
                format!(
                    "uploads/2026/11/30/{i:08x}-Survey/d{:03}/f{i:06}.txt",
                    i / 1000
                ),
                format!(
                    "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    1 + i / 86_400 % 28,
                    i / 3600 % 24,
                    i / 60 % 60,
                    i % 60,
                    i % 1000
                ),
            ]
        },
    );
    let (first, total) = q.history_page(None, None, 200).expect("page");
    assert_eq!((first.len(), total), (200, 100_000));
    let (deep, _) = q.history_page(None, None, 50_000).expect("deep");
    let cursor = deep
        .last()
        .map(|i| (i.updated_at.clone(), i.id))
        .expect("cursor");
    let mut g = c.benchmark_group("history of 100,000 uploads");
    g.bench_function("the newest page (200)", |b| {
        b.iter(|| q.history_page(None, None, 200).expect("page"))
    });
    g.bench_function("a page 50,000 deep", |b| {
        b.iter(|| {
            q.history_page(None, Some((&cursor.0, cursor.1)), 200)
                .expect("page")
        })
    });
    g.bench_function("a search (name or key contains)", |b| {
        b.iter(|| q.history_page(Some("f04242"), None, 200).expect("page"))
    });
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
    history_pages,
    queue_windows,
    small_files_end_to_end
);
criterion_main!(benches);
