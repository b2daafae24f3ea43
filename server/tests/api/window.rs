//! Issue #27: the window's staff path — the app's `Manager` with a staff profile through
//! hoist-server — runs the same pipeline as the CLI (small files signed in batches ahead), and
//! a multipart upload interrupted by a backend outage resumes with the parts already sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hoist::app::{Manager, ManagerConfig};
use hoist::profile::{Mode, Profile, ProfileStore, Protocol};
use hoist::queue::ItemState;
use hoist::secret::{Keychain, Secret, SecretKind};

use crate::{listen, sha256, Harness, Relay, ALICE};

struct Window {
    manager: Arc<Manager>,
    /// The app's queue database, read as another process would.
    queue: hoist::queue::Queue,
    _config: tempfile::TempDir,
    _data: tempfile::TempDir,
}

/// The app as staff run it: a staff profile for `url` with Alice's token in the keychain.
async fn window(url: &str, protocol: Protocol) -> Window {
    let (config, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let keychain = Keychain::new(format!("hoist-window-{}", uuid::Uuid::new_v4()));
    keychain
        .set("staff", SecretKind::BearerToken, &Secret::new(ALICE))
        .expect("the test session's keychain");
    let profiles = ProfileStore::in_dir(config.path());
    let profile = Profile::new(
        "staff",
        Mode::Backend {
            url: url.to_string(),
            protocol,
            token: true,
        },
    );
    profiles.add(profile, true).unwrap();
    let manager = Manager::open(ManagerConfig {
        profiles,
        keychain,
        data_dir: data.path().to_path_buf(),
        retry: hoist::retry::RetryPolicy::default(),
        reconnect_after: Duration::from_millis(300),
    })
    .unwrap();
    let queue = hoist::queue::Queue::open(&data.path().join("queue.sqlite3")).unwrap();
    Window {
        manager,
        queue,
        _config: config,
        _data: data,
    }
}

/// What `probe` finds, once it finds it (asked every 20 ms, for at most two minutes: a
/// generous deadline for "eventually", not a time budget).
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "no sign of {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Multipart uploads the server created (its audit log).
fn multipart_creates(h: &Harness) -> usize {
    h.audit_lines()
        .iter()
        .filter(|l| l["action"] == "multipart.create" && l["outcome"] == "created")
        .count()
}

/// Counts the signing requests that reach the server, one counter per route.
#[derive(Clone, Default)]
struct Requests {
    single: Arc<AtomicUsize>,
    batch: Arc<AtomicUsize>,
}

async fn counting(h: &Harness, requests: &Requests) -> String {
    let counts = requests.clone();
    let router = h.router.clone().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let counts = counts.clone();
            async move {
                match req.uri().path() {
                    "/api/upload" => counts.single.fetch_add(1, Ordering::SeqCst),
                    "/api/upload/batch" => counts.batch.fetch_add(1, Ordering::SeqCst),
                    _ => 0,
                };
                next.run(req).await
            }
        },
    ));
    listen(router).await
}

/// The bug: `app::Manager` sent each upload through its own scheduler, which signed no file
/// ahead: the window paid one backend round trip per small file where the CLI paid one per 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_signs_a_folder_of_small_files_in_batches_as_the_cli_does() {
    let h = Harness::new().await;
    let requests = Requests::default();
    let base = counting(&h, &requests).await;
    let w = window(&format!("{base}/api/upload"), Protocol::Simple).await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Receipts");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..120 {
        std::fs::write(
            folder.join(format!("r{i:03}.txt")),
            format!("receipt {i}\n"),
        )
        .unwrap();
    }
    let report = w.manager.add(vec![folder]).await.unwrap();
    assert_eq!(report.queued.len(), 120, "{:?}", report.rejected);
    tokio::time::timeout(Duration::from_secs(120), w.manager.wait_idle())
        .await
        .expect("the folder uploads");
    for id in &report.queued {
        let item = w.queue.get(*id).unwrap().unwrap();
        assert_eq!(item.state, ItemState::Done, "{:?}", item.error);
        assert!(item.key.contains("-Receipts/r"), "{}", item.key);
    }
    let (single, batch) = (
        requests.single.load(Ordering::SeqCst),
        requests.batch.load(Ordering::SeqCst),
    );
    // One round trip a file before; now a few batches (a batch of one, when the pipeline had
    // only one file ready, is asked on its own).
    assert!(
        batch >= 2 && batch + single <= 20,
        "signed in {batch} batch requests and {single} single ones (the CLI signs 50 a batch)"
    );
    assert_eq!(h.store_keys().len(), 120);
}

/// The bug: in the window, a staff multipart upload whose backend went away (hoist-server
/// stopped, then started again) was retried by itself from 0 B, under a second create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_multipart_upload_in_the_window_resumes_its_parts_after_a_backend_outage() {
    let h = Harness::new().await;
    let served = listen(h.router.clone()).await;
    let backend = Relay::start(served.trim_start_matches("http://").parse().unwrap()).await;
    let w = window(&format!("http://{}", backend.addr), Protocol::Companion).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("survey.bin");
    let content: Vec<u8> = (0..40 * 1024 * 1024).map(|i| (i % 249) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    w.manager
        .set_limit_rate(Some(8 * 1024 * 1024))
        .expect("a bandwidth limit, so that the outage comes mid-upload");
    let report = w.manager.add(vec![path]).await.unwrap();
    let id = report.queued[0];
    // Down once two parts are in the store's hands.
    let item = || w.queue.get(id).unwrap().unwrap();
    eventually("a part acknowledged", || {
        (item().acked_bytes >= 16 * 1024 * 1024).then_some(())
    })
    .await;
    backend.go_down();
    let failed = eventually("the outage noticed", || {
        Some(item()).filter(|i| i.state == ItemState::Failed)
    })
    .await;
    assert!(failed.upload_id.is_some(), "the multipart upload was kept");
    assert!(
        failed.acked_bytes >= 16 * 1024 * 1024,
        "its parts were kept"
    );
    w.manager.set_limit_rate(None).unwrap();
    // Down a while longer: the retries the app makes meanwhile (a probe after 300 ms, then
    // twice as long) meet an unreachable backend, which is not a gone upload.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    backend.come_back();
    // Retried by itself once the backend answers again, with the parts it had.
    let done = eventually("a retry once the backend came back", || {
        Some(item()).filter(|i| i.state == ItemState::Done)
    })
    .await;
    assert_eq!(sha256(&h.stored(&done.key).unwrap()), sha256(&content));
    assert_eq!(
        multipart_creates(&h),
        1,
        "the upload went on under its first create"
    );
    assert_eq!(h.store_keys().len(), 1);
    assert_eq!(h.pending_parts(), 0, "no multipart upload left");
}

/// The same outage met by `hoist upload` (the CLI): the run fails for now with the upload's
/// parts kept, and the next `hoist upload` goes on from them under the first create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_multipart_upload_in_the_cli_resumes_its_parts_after_a_backend_outage() {
    let h = Harness::new().await;
    let served = listen(h.router.clone()).await;
    let backend = Relay::start(served.trim_start_matches("http://").parse().unwrap()).await;
    let cli = crate::chaos::Cli::new();
    let url = format!("http://{}", backend.addr);
    cli.staff(&url, "companion");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("survey.bin");
    let content: Vec<u8> = (0..40 * 1024 * 1024).map(|i| (i % 247) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let run = cli
        .cmd(&["upload", "--json", "--limit-rate", "8MB"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let queue = hoist::queue::Queue::open(&cli.data.path().join("queue.sqlite3")).unwrap();
    let acked = || {
        queue
            .recent(1)
            .ok()
            .and_then(|mut items| items.pop())
            .map_or(0, |i| i.acked_bytes)
    };
    eventually("a part acknowledged", || {
        (acked() >= 16 * 1024 * 1024).then_some(())
    })
    .await;
    backend.go_down();
    let out = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "the run cannot end well while the backend is down"
    );
    let item = queue.recent(1).unwrap().pop().unwrap();
    assert_eq!(item.state, ItemState::Failed, "{:?}", item.error);
    assert!(item.upload_id.is_some(), "the multipart upload was kept");
    let kept = item.acked_bytes;
    assert!(kept >= 16 * 1024 * 1024, "its parts were kept");

    backend.come_back();
    let out = cli.cmd(&["upload", "--json"]).arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let item = queue.recent(1).unwrap().pop().unwrap();
    assert_eq!(item.state, ItemState::Done);
    assert_eq!(sha256(&h.stored(&item.key).unwrap()), sha256(&content));
    assert_eq!(
        multipart_creates(&h),
        1,
        "the upload went on under its first create"
    );
    assert_eq!(
        queue.recent(10).unwrap().len(),
        1,
        "one queue item for the file"
    );
    assert_eq!(h.pending_parts(), 0, "no multipart upload left");
}
