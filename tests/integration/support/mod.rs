//! Shared test support: the SigV4-verifying in-process store (Hoist's own embedded store,
//! `s3s-fs` with `SimpleAuth`), a front that answers like an SSE-KMS bucket, a scripted faulty
//! S3 endpoint, a presign backend speaking the `simple` protocol, and a clock that records
//! sleeps instead of sleeping.

#![allow(dead_code)]

pub(crate) mod backend;
pub(crate) mod companion;
pub(crate) mod faulty;
pub(crate) mod kms_front;
pub(crate) mod localstack;
pub(crate) mod network;
pub(crate) mod observed;
/// The company's identity provider (oidc-provider), shared with hoist-server's tests.
#[path = "../../oidc-provider/harness.rs"]
pub(crate) mod oidc;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hoist::local::EmbeddedStore;
use hoist::retry::{Clock, Jitter, RetryBudget, RetryPolicy};
use hoist::secret::Secret;
use hoist::upload::{ProgressFn, TransferEvent};
use sha2::{Digest, Sha256};

/// The package's directory as `cargo test` gives it to the running test, not as it was when
/// the test was built: a binary built from another checkout that shares the target dir (CI's
/// clone) can look fresh to cargo, and would look for files where that checkout was.
pub(crate) fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

pub(crate) const ACCESS_KEY_ID: &str = "HOISTTESTKEY";
pub(crate) const SECRET_ACCESS_KEY: &str = "hoist-test-secret-0123456789abcdefghijkl";

/// A running SigV4-verifying store in a temporary directory.
pub(crate) struct Store {
    pub dir: tempfile::TempDir,
    pub store: EmbeddedStore,
}

impl Store {
    pub(crate) async fn start() -> Self {
        Self::start_checking_parts(true).await
    }

    /// s3s-fs as it is: it checks no part's `Content-MD5` or checksum and answers none.
    pub(crate) async fn start_without_part_checks() -> Self {
        Self::start_checking_parts(false).await
    }

    async fn start_checking_parts(check: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, secret) = (dir.path(), Secret::new(SECRET_ACCESS_KEY));
        let store = match check {
            true => EmbeddedStore::start_with(root, "test-bucket", ACCESS_KEY_ID, secret).await,
            false => {
                EmbeddedStore::start_without_part_checks(root, "test-bucket", ACCESS_KEY_ID, secret)
                    .await
            }
        }
        .expect("embedded store starts");
        Self { dir, store }
    }

    /// SHA-256 of the stored object, or `None` when there is no object at `key`.
    pub(crate) fn stored_sha256(&self, key: &str) -> Option<String> {
        std::fs::read(self.store.object_path(key))
            .ok()
            .map(|b| sha256_hex(&b))
    }

    /// Files of unfinished multipart uploads the store still holds (`.upload*` in its root).
    pub(crate) fn pending_uploads(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".upload"))
            .count()
    }

    /// A self-sign profile for this store (its secret is [`SECRET_ACCESS_KEY`]).
    pub(crate) fn self_sign_profile(&self, name: &str) -> hoist::profile::Profile {
        hoist::profile::Profile::new(
            name,
            hoist::profile::Mode::SelfSign {
                bucket: "test-bucket".into(),
                region: "us-east-1".into(),
                endpoint: Some(self.store.endpoint().to_string()),
                path_style: true,
                access_key_id: ACCESS_KEY_ID.into(),
            },
        )
    }

    /// Every object file under the bucket, as keys.
    pub(crate) fn keys(&self) -> Vec<String> {
        let root = self.store.bucket_dir();
        let mut out = Vec::new();
        walk(&root, &mut |p| {
            out.push(
                p.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        });
        out.sort();
        out
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, f);
            } else {
                f(&p);
            }
        }
    }
}

/// Every regular file below `dir`.
pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut |p| out.push(p.to_path_buf()));
    out
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic pseudo-random bytes.
pub(crate) fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x = seed as u32 | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub(crate) fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write test file");
    p
}

/// A clock that records the delays asked for and returns at once; `now` may be shifted back,
/// and may tick one second per reading (so that every signature differs).
#[derive(Default)]
pub(crate) struct RecordingClock {
    pub sleeps: Mutex<Vec<Duration>>,
    pub shift_back: Duration,
    pub ticking: bool,
    pub readings: std::sync::atomic::AtomicU64,
}

impl Clock for RecordingClock {
    fn now(&self) -> SystemTime {
        let n = self
            .readings
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tick = if self.ticking {
            Duration::from_secs(n)
        } else {
            Duration::ZERO
        };
        SystemTime::now() - self.shift_back + tick
    }
    fn sleep(
        &self,
        d: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.sleeps.lock().unwrap().push(d);
        Box::pin(async {})
    }
}

pub(crate) struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn unit(&self) -> f64 {
        self.0
    }
}

/// AWS-standard policy with a recording clock and jitter fixed at 0.5.
pub(crate) fn recorded_policy() -> (RetryPolicy, Arc<RecordingClock>) {
    policy_with(RecordingClock::default(), RetryBudget::default())
}

pub(crate) fn policy_with(
    clock: RecordingClock,
    budget: RetryBudget,
) -> (RetryPolicy, Arc<RecordingClock>) {
    let clock = Arc::new(clock);
    let policy = RetryPolicy {
        clock: Arc::clone(&clock) as Arc<dyn hoist::retry::Clock>,
        jitter: Arc::new(FixedJitter(0.5)),
        budget: Arc::new(budget),
        ..RetryPolicy::default()
    };
    (policy, clock)
}

/// Asserts what proved an upload: the checksum, its value and who compared it.
pub(crate) fn assert_proof(
    r: &hoist::upload::UploadReceipt,
    algorithm: &str,
    value: &str,
    checked_by: hoist::upload::CheckedBy,
) {
    let proof = r.integrity.as_ref().expect("a proof");
    assert_eq!(
        (
            proof.algorithm.as_str(),
            proof.value.as_str(),
            proof.checked_by
        ),
        (algorithm, value, checked_by),
        "{proof}"
    );
}

/// A progress callback that keeps every event.
pub(crate) fn recorder() -> (ProgressFn, Arc<Mutex<Vec<TransferEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    (Arc::new(move |e| sink.lock().unwrap().push(e)), events)
}
