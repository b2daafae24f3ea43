//! The manager behind the desktop app, driven the way the app drives it: files and folders
//! added, events watched, pause, resume, cancel, retry, dismiss, the queue reopened after a
//! restart, history exported, and profiles administered with their secrets in the real
//! keychain. Uploads go to the embedded SigV4-verifying store and are checked byte for byte.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hoist::app::health::CheckStatus;
use hoist::app::profiles::SecretInput;
use hoist::app::{
    ExportFormat, HistoryEntry, Manager, ManagerConfig, ManagerEvent, Phase, QueueFilter,
    QueueQuery, QueueWindow, UploadRow,
};
use hoist::profile::{Mode, Profile, ProfileStore};
use hoist::queue::{ItemState, Queue};
use hoist::secret::{Keychain, Secret, SecretKind};
use tokio::sync::mpsc;

use crate::support::{self, bytes, sha256_hex, write, Store};

struct App {
    manager: Arc<Manager>,
    events: mpsc::UnboundedReceiver<ManagerEvent>,
    config: tempfile::TempDir,
    data: tempfile::TempDir,
    keychain: Keychain,
}

fn config_in(config: &Path, data: &Path, keychain: &Keychain) -> ManagerConfig {
    let (retry, _) = support::recorded_policy();
    ManagerConfig {
        profiles: ProfileStore::in_dir(config),
        keychain: keychain.clone(),
        data_dir: data.to_path_buf(),
        retry,
        reconnect_after: Duration::from_millis(300),
    }
}

fn app() -> App {
    let (config, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let keychain = Keychain::new(format!("hoist-test-{}", uuid::Uuid::new_v4()));
    let manager = Manager::open(config_in(config.path(), data.path(), &keychain)).unwrap();
    let events = subscribe(&manager);
    App {
        manager,
        events,
        config,
        data,
        keychain,
    }
}

fn subscribe(manager: &Manager) -> mpsc::UnboundedReceiver<ManagerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    manager.subscribe(Arc::new(move |e| {
        let _ = tx.send(e);
    }));
    rx
}

/// Waits (bounded) for the first event that `pick` accepts.
async fn next_matching<T>(
    events: &mut mpsc::UnboundedReceiver<ManagerEvent>,
    mut pick: impl FnMut(&ManagerEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let e = events.recv().await.expect("the manager is alive");
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .expect("the expected event arrives within a minute")
}

fn drain(events: &mut mpsc::UnboundedReceiver<ManagerEvent>) -> Vec<ManagerEvent> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

fn row(manager: &Manager, id: i64) -> UploadRow {
    manager
        .uploads()
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .expect("the row is in the queue view")
}

async fn stored_sha256(manager: &Manager, key: &str) -> Option<String> {
    let folder = manager.local_folder().await.unwrap();
    std::fs::read(folder.join(key)).ok().map(|b| sha256_hex(&b))
}

/// Files of unfinished multipart uploads the embedded store keeps next to its bucket.
fn pending_uploads(data: &Path) -> usize {
    std::fs::read_dir(data.join("store"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(".upload"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_files_and_folders_land_intact_on_the_embedded_default() {
    let mut app = app();
    let src = tempfile::tempdir().unwrap();
    let a = write(src.path(), "a.txt", b"alpha\n");
    let folder = src.path().join("photos");
    std::fs::create_dir_all(folder.join("2026")).unwrap();
    let b = write(&folder, "b.bin", &bytes(300_000, 1));
    let c = write(&folder.join("2026"), "c.bin", &bytes(70_000, 2));
    let empty = write(src.path(), "empty.txt", b"");

    let overview = app.manager.overview().await.unwrap();
    assert_eq!(overview.active_profile, "local");
    assert!(overview.local);
    assert!(Path::new(&overview.destination).is_dir());

    let report = app
        .manager
        .add(vec![a.clone(), folder.clone(), empty.clone()])
        .await
        .unwrap();
    assert_eq!(report.queued.len(), 3);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].path, empty.display().to_string());
    assert!(
        report.rejected[0].reason.contains("empty"),
        "the reason says what is wrong: {}",
        report.rejected[0].reason
    );
    let batch = next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { done, failed } => Some((*done, *failed)),
        _ => None,
    })
    .await;
    assert_eq!(batch, (3, 0));

    let rows = app.manager.uploads().unwrap();
    assert_eq!(rows.len(), 3);
    // Folders expand in path order: photos/2026/c.bin comes before photos/b.bin.
    for (path, r) in [&a, &c, &b].iter().zip(&rows) {
        assert_eq!(r.phase, Phase::Done, "{r:?}");
        assert_eq!(r.sent, r.size);
        let expected = sha256_hex(&std::fs::read(path).unwrap());
        assert_eq!(r.sha256.as_deref(), Some(expected.as_str()));
        assert_eq!(
            stored_sha256(&app.manager, &r.key).await.as_deref(),
            Some(expected.as_str()),
            "{} landed intact",
            r.name
        );
    }
    assert!(
        rows[1].key.contains("photos/2026/") && rows[2].key.contains("photos/"),
        "folders keep their structure: {rows:?}"
    );

    // History: newest first, with checksum, URL and time; exported as JSON and CSV.
    let history = app.manager.history().unwrap();
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|h| h
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("http://127.0.0.1:") && !u.contains("X-Amz-Signature"))
        && !h.finished_at.is_empty()));
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("history.json");
    assert_eq!(
        app.manager
            .export_history(ExportFormat::Json, &json)
            .unwrap(),
        3
    );
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(
        !text.contains("shareable"),
        "an export holds what landed, not what the window offers"
    );
    let back: Vec<HistoryEntry> = serde_json::from_str(&text).unwrap();
    let landed: Vec<HistoryEntry> = history
        .iter()
        .map(|e| HistoryEntry {
            shareable: false,
            ..e.clone()
        })
        .collect();
    assert_eq!(back, landed);
    let csv_path = out.path().join("history.csv");
    app.manager
        .export_history(ExportFormat::Csv, &csv_path)
        .unwrap();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,profile,name,key,size,sha256,etag,integrity,url,finishedAt,verified")
    );
    assert_eq!(lines.count(), 3);
    assert!(csv.contains(history[0].sha256.as_deref().unwrap()));

    // Done rows can be cleared from the queue view; the history keeps them.
    app.manager.clear_finished().unwrap();
    assert!(app.manager.uploads().unwrap().is_empty());
    assert_eq!(app.manager.history().unwrap().len(), 3);
}

/// Regression: a batch was reported finished (and notified) as soon as the first file of a drop
/// was done, while the others were still being queued. The sink holds the drop after its second
/// file until the first upload is done, which made the bug show every time. And: two uploads
/// ending together could split the batch in two, one of them counted after the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_is_reported_once_when_all_its_files_are_done() {
    let app = app();
    let src = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3)
        .map(|i| {
            write(
                src.path(),
                &format!("f{i}.txt"),
                format!("file {i}\n").as_bytes(),
            )
        })
        .collect();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let done_rx = std::sync::Mutex::new(done_rx);
    let queued = std::sync::atomic::AtomicUsize::new(0);
    app.manager.subscribe(Arc::new(move |e: ManagerEvent| {
        if let ManagerEvent::Changed { row } = &e {
            match row.phase {
                Phase::Done => {
                    let _ = done_tx.send(());
                }
                // Events so far: file 1 queued, file 1 started; the third is file 2 queued.
                Phase::Queued if queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 => {
                    let _ = done_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(20));
                }
                _ => {}
            }
        }
        let _ = events_tx.send(e);
    }));
    let report = app.manager.add(files).await.unwrap();
    assert_eq!(report.queued.len(), 3);
    app.manager.wait_idle().await;
    let batches: Vec<(u32, u32)> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            ManagerEvent::BatchFinished { done, failed } => Some((done, failed)),
            _ => None,
        })
        .collect();
    assert_eq!(batches, [(3, 0)]);
}

/// A staff profile named `staff` for the simple backend at `url`, without a token.
fn staff_profile(url: &str) -> Profile {
    Profile::new(
        "staff",
        Mode::Backend {
            url: url.to_string(),
            protocol: Default::default(),
            token: false,
        },
    )
}

/// A file big enough to go in several parts (the threshold is 16 MiB, parts 8 MiB).
fn big_file(dir: &Path) -> PathBuf {
    write(dir, "big.bin", &bytes(40 * 1024 * 1024 + 3, 7))
}

/// Waits for the first progress of upload `id` and runs `then` on it.
async fn at_first_progress(app: &mut App, id: i64) {
    next_matching(&mut app.events, |e| match e {
        ManagerEvent::Progress { id: i, sent, .. } if *i == id && *sent > 0 => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_upload_survives_a_restart_and_resumes_intact() {
    let app = app();
    let src = tempfile::tempdir().unwrap();
    let big = big_file(src.path());
    let report = app.manager.add(vec![big.clone()]).await.unwrap();
    let id = report.queued[0];
    // Paused once the store has acknowledged a part.
    let watcher = Queue::open(&app.data.path().join("queue.sqlite3")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while watcher.parts(id).unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no part acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.manager.pause(id).unwrap();
    app.manager.wait_idle().await;
    let paused = row(&app.manager, id);
    assert_eq!(paused.phase, Phase::Paused);
    // Regression: a paused upload showed "0 B of 40 MiB" while parts were stored.
    let journaled: u64 = watcher.parts(id).unwrap().iter().map(|p| p.size).sum();
    drop(watcher);
    assert!(journaled > 0, "journaled {journaled}, row {paused:?}");
    assert_eq!(
        paused.sent, journaled,
        "a paused row shows the bytes the store has"
    );
    // Regression (#31, defect 5): the overall bar said "0 B of 40 MiB" beside that row.
    let overall = app
        .manager
        .queue_window(QueueQuery {
            filter: QueueFilter::All,
            offset: 0,
            limit: 10,
        })
        .unwrap()
        .overall;
    assert_eq!(
        (overall.sent, overall.size),
        (paused.sent, paused.size),
        "the overall bar counts what the paused row shows"
    );
    assert_eq!(
        stored_sha256(&app.manager, &paused.key).await,
        None,
        "nothing is stored before completion"
    );

    // The app closes; the queue and the store's unfinished upload stay on disk.
    let App {
        manager,
        config,
        data,
        keychain,
        ..
    } = app;
    drop(manager);
    let queue = Queue::open(&data.path().join("queue.sqlite3")).unwrap();
    let item = queue.get(id).unwrap().unwrap();
    assert_eq!(item.state, ItemState::Paused);
    assert!(item.upload_id.is_some(), "the multipart upload is kept");
    // As if the app had been killed while uploading: the next start picks it up by itself.
    queue.lifecycle().started(id).unwrap();
    drop(queue);

    let manager = Manager::open(config_in(config.path(), data.path(), &keychain)).unwrap();
    let mut events = subscribe(&manager);
    assert_eq!(row(&manager, id).phase, Phase::Queued);
    assert_eq!(
        row(&manager, id).sent,
        journaled,
        "and so does it after a restart"
    );
    manager.resume_unfinished().await.unwrap();
    let batch = next_matching(&mut events, |e| match e {
        ManagerEvent::BatchFinished { done, failed } => Some((*done, *failed)),
        _ => None,
    })
    .await;
    assert_eq!(batch, (1, 0));
    let done = row(&manager, id);
    assert_eq!(done.phase, Phase::Done);
    assert_eq!(
        stored_sha256(&manager, &done.key).await,
        Some(sha256_hex(&std::fs::read(&big).unwrap()))
    );
    assert_eq!(pending_uploads(data.path()), 0);
}

/// Regression: an upload whose file vanished while it was paused failed on resume with the
/// reason, but kept its multipart upload on the store (its parts stayed behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_upload_whose_file_vanished_fails_and_leaves_nothing_behind() {
    let mut app = app();
    let src = tempfile::tempdir().unwrap();
    let big = big_file(src.path());
    let id = app.manager.add(vec![big.clone()]).await.unwrap().queued[0];
    at_first_progress(&mut app, id).await;
    app.manager.pause(id).unwrap();
    app.manager.wait_idle().await;
    assert!(
        pending_uploads(app.data.path()) >= 1,
        "the paused upload and its parts are kept"
    );
    std::fs::remove_file(&big).unwrap();
    app.manager.resume(id).await.unwrap();
    app.manager.wait_idle().await;
    let failed = row(&app.manager, id);
    assert_eq!(failed.phase, Phase::Failed);
    let reason = failed.error.unwrap_or_default();
    assert!(reason.contains("not found"), "{reason}");
    assert_eq!(
        pending_uploads(app.data.path()),
        0,
        "its parts were aborted"
    );
}

/// Regression: a retry after a cancel reused the aborted multipart upload id (s3s-fs still
/// lists parts for it), so every part was refused with 403 AccessDenied. And: the abort went out
/// while a part was still being written, which could leave that part in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_upload_leaves_nothing_behind_and_can_be_retried() {
    let mut app = app();
    let src = tempfile::tempdir().unwrap();
    let big = big_file(src.path());
    let id = app.manager.add(vec![big.clone()]).await.unwrap().queued[0];
    at_first_progress(&mut app, id).await;
    app.manager.cancel(id).await.unwrap();
    app.manager.wait_idle().await;
    let cancelled = row(&app.manager, id);
    assert_eq!(cancelled.phase, Phase::Cancelled);
    assert_eq!(cancelled.error.as_deref(), Some("cancelled"));
    assert_eq!(stored_sha256(&app.manager, &cancelled.key).await, None);
    assert_eq!(
        pending_uploads(app.data.path()),
        0,
        "the multipart upload was aborted"
    );
    assert!(
        app.manager.resume(id).await.is_err(),
        "a cancelled upload is retried, not resumed"
    );

    drain(&mut app.events);
    app.manager.retry(id).await.unwrap();
    app.manager.wait_idle().await;
    let done = row(&app.manager, id);
    let events = drain(&mut app.events);
    assert_eq!(done.phase, Phase::Done, "{done:?} {events:#?}");
    assert_eq!(
        stored_sha256(&app.manager, &done.key).await,
        Some(sha256_hex(&std::fs::read(&big).unwrap()))
    );
    let phases: Vec<Phase> = events
        .into_iter()
        .filter_map(|e| match e {
            ManagerEvent::Changed { row } if row.id == id => Some(row.phase),
            _ => None,
        })
        .collect();
    for p in [
        Phase::Queued,
        Phase::Signing,
        Phase::Uploading,
        Phase::Verifying,
        Phase::Done,
    ] {
        assert!(phases.contains(&p), "{p:?} was shown: {phases:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_keeps_its_reason_until_dismissed() {
    let mut app = app();
    // A backend nobody listens on: signing fails after the retries.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/upload", dead.local_addr().unwrap());
    drop(dead);
    app.manager
        .save_profile("staff", staff_profile(&url), vec![], true)
        .await
        .unwrap();
    assert_eq!(
        app.manager.overview().await.unwrap().active_profile,
        "local",
        "adding a profile does not redirect uploads"
    );
    app.manager.set_active("staff").unwrap();
    let src = tempfile::tempdir().unwrap();
    let f = write(src.path(), "report.txt", b"quarterly numbers\n");
    let id = app.manager.add(vec![f]).await.unwrap().queued[0];
    let batch = next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { done, failed } => Some((*done, *failed)),
        _ => None,
    })
    .await;
    assert_eq!(batch, (0, 1));
    let failed = row(&app.manager, id);
    assert_eq!(failed.phase, Phase::Failed);
    let reason = failed.error.clone().unwrap_or_default();
    assert!(reason.contains("cannot reach the backend"), "{reason}");

    // Retrying fails the same way and the row stays, with its reason, until dismissed.
    app.manager.retry_all().await.unwrap();
    app.manager.wait_idle().await;
    assert_eq!(row(&app.manager, id).phase, Phase::Failed);
    assert!(app.manager.history().unwrap().is_empty());
    app.manager.dismiss(id).unwrap();
    assert!(app.manager.uploads().unwrap().is_empty());
}

/// Regression (orphaned secrets, security review): a profile edited to another backend host,
/// or to another mode, kept its bearer token, which then went to the new host.
#[tokio::test]
async fn an_edited_profile_drops_the_secrets_that_would_reach_a_new_host() {
    let app = app();
    let staff = |url: &str| {
        Profile::new(
            "staff",
            Mode::Backend {
                url: url.into(),
                protocol: hoist::profile::Protocol::Simple,
                token: true,
            },
        )
    };
    let token = |v: &str| SecretInput {
        kind: SecretKind::BearerToken,
        value: Secret::new(v),
    };
    let stored = || app.keychain.get("staff", SecretKind::BearerToken).unwrap();
    let m = &app.manager;
    m.save_profile(
        "staff",
        staff("https://uploads.example.com/api"),
        vec![token("t1")],
        true,
    )
    .await
    .unwrap();
    // Same host: the token stays.
    m.save_profile(
        "staff",
        staff("https://uploads.example.com/v2"),
        vec![],
        false,
    )
    .await
    .unwrap();
    assert_eq!(stored().map(|s| s.expose().to_string()), Some("t1".into()));
    // Another host: the old token goes; a new one given with the change is kept.
    m.save_profile(
        "staff",
        staff("https://elsewhere.example.net/api"),
        vec![],
        false,
    )
    .await
    .unwrap();
    assert_eq!(stored(), None);
    m.save_profile(
        "staff",
        staff("https://elsewhere.example.net/api"),
        vec![token("t2")],
        false,
    )
    .await
    .unwrap();
    let admin = Profile::new(
        "staff",
        Mode::SelfSign {
            bucket: "company-uploads".into(),
            region: "us-east-1".into(),
            endpoint: None,
            path_style: false,
            access_key_id: "AKIDEXAMPLE".into(),
        },
    );
    // Another mode: no token survives it.
    m.save_profile("staff", admin, vec![], false).await.unwrap();
    assert_eq!(stored(), None);
}

/// Regression: Copy URL gave an address that does not open (403 on the embedded store). A
/// share link is a presigned GET anyone can open until it expires; a changed one is refused;
/// a backend profile, which holds no credentials, says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_link_downloads_the_file_and_nothing_else() {
    let mut app = app();
    let src = tempfile::tempdir().unwrap();
    let content = bytes(200_000, 5);
    let file = write(src.path(), "Quarterly report.pdf.bin", &content);
    let id = app.manager.add(vec![file]).await.unwrap().queued[0];
    next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { done: 1, .. } => Some(()),
        _ => None,
    })
    .await;
    assert!(
        app.manager.history().unwrap()[0].shareable,
        "Hoist signs for the embedded store: the history offers a link"
    );
    let link = app
        .manager
        .share_link(id, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(link.contains("X-Amz-Signature="), "a presigned link");
    let http = reqwest::Client::new();
    let got = http.get(&link).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), content);
    // The address alone (what Copy address gives) does not open the file.
    let address = link.split('?').next().unwrap();
    assert_eq!(http.get(address).send().await.unwrap().status(), 403);
    let tampered = link.replace("X-Amz-Expires=3600", "X-Amz-Expires=604800");
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);

    app.manager
        .save_profile(
            "staff",
            staff_profile("http://127.0.0.1:9/api/upload"),
            vec![],
            true,
        )
        .await
        .unwrap();
    let queue = Queue::open(&app.data.path().join("queue.sqlite3")).unwrap();
    let theirs = queue
        .add(&hoist::queue::NewItem {
            profile: "staff",
            path: Path::new("/tmp/x.txt"),
            key: "uploads/x.txt",
            size: 1,
            content_type: "text/plain",
            modified_ns: None,
            fingerprint: "",
            relative_path: None,
            drop_id: None,
            destination: "backend http://127.0.0.1:9/api/upload",
        })
        .unwrap();
    queue
        .lifecycle()
        .landed(
            theirs,
            &hoist::queue::Landed {
                key: "theirs.txt",
                sha256: None,
                etag: None,
                location: "http://127.0.0.1:9/theirs.txt",
                integrity: None,
                verified: false,
            },
        )
        .unwrap();
    let refused = app
        .manager
        .share_link(theirs, Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("a backend profile does not have"),
        "{refused}"
    );
}

/// Regression: the profile Test showed a raw error chain for a name that did not resolve, then
/// suggested switching path style even where path style was on, or where the endpoint itself
/// does not resolve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_names_a_dns_failure_and_blames_addressing_only_for_a_bucket_host() {
    let app = app();
    let unresolved = |path_style: bool| {
        Profile::new(
            "far",
            Mode::SelfSign {
                bucket: "test-bucket".into(),
                region: "us-east-1".into(),
                endpoint: Some("http://hoist-store.invalid:9000".into()),
                path_style,
                access_key_id: support::ACCESS_KEY_ID.into(),
            },
        )
    };
    let secret = || {
        vec![SecretInput {
            kind: SecretKind::SecretAccessKey,
            value: Secret::new(support::SECRET_ACCESS_KEY),
        }]
    };
    let check = |report: &hoist::app::health::HealthReport, name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .clone()
    };
    app.manager
        .save_profile("far", unresolved(true), secret(), true)
        .await
        .unwrap();
    let report = app.manager.health_check("far").await.unwrap();
    let put = check(&report, "put");
    assert_eq!(put.status, CheckStatus::Fail);
    assert!(
        put.detail
            .contains("name hoist-store.invalid could not be resolved (DNS)")
            && put.detail.contains("tell IT"),
        "{}",
        put.detail
    );
    assert_eq!(check(&report, "path style").status, CheckStatus::Skipped);

    app.manager
        .save_profile("far", unresolved(false), vec![], false)
        .await
        .unwrap();
    let report = app.manager.health_check("far").await.unwrap();
    // Regression (#31, defect 7): "try path-style" was suggested although the endpoint's own
    // host resolves nowhere, where path style cannot help.
    let addressing = check(&report, "path style");
    assert_eq!(addressing.status, CheckStatus::Skipped);
    assert!(
        addressing
            .detail
            .contains("hoist-store.invalid does not resolve either: path style cannot help"),
        "{}",
        addressing.detail
    );
    let _ = app.keychain.delete("far", SecretKind::SecretAccessKey);
}

/// The app's bandwidth limit over all uploads: set while the app runs, kept for the next
/// start, and shown in the header (the CLI takes it as its default too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overall_bandwidth_limit_is_kept_and_shown() {
    let app = app();
    assert_eq!(app.manager.overview().await.unwrap().limit_rate, None);
    app.manager.set_limit_rate(Some(2_000_000)).unwrap();
    assert_eq!(
        app.manager.overview().await.unwrap().limit_rate,
        Some(2_000_000)
    );
    let again = Manager::open(config_in(app.config.path(), app.data.path(), &app.keychain));
    drop(app.manager);
    let again = again.unwrap();
    assert_eq!(again.overview().await.unwrap().limit_rate, Some(2_000_000));
    again.set_limit_rate(None).unwrap();
    assert_eq!(
        ProfileStore::in_dir(app.config.path())
            .limit_rate()
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_saved_in_the_app_keeps_its_secret_in_the_keychain_only() {
    let app = app();
    let store = Store::start().await;
    let admin = store.self_sign_profile("admin");

    // A wrong secret: the health check says the put was refused, and leaves nothing.
    let entry = app
        .manager
        .save_profile(
            "admin",
            admin.clone(),
            vec![SecretInput {
                kind: SecretKind::SecretAccessKey,
                value: Secret::new("not-the-secret"),
            }],
            true,
        )
        .await
        .unwrap();
    assert!(entry.secrets[0].stored && entry.secrets[0].required);
    let bad = app.manager.health_check("admin").await.unwrap();
    assert!(!bad.ok);
    let put = bad.checks.iter().find(|c| c.name == "put").unwrap();
    assert_eq!(put.status, CheckStatus::Fail);
    assert!(put.detail.contains("signature"), "{}", put.detail);

    // The right one, typed again: every check passes and the probe object is gone.
    app.manager
        .save_profile(
            "admin",
            admin,
            vec![SecretInput {
                kind: SecretKind::SecretAccessKey,
                value: Secret::new(support::SECRET_ACCESS_KEY),
            }],
            false,
        )
        .await
        .unwrap();
    let good = app.manager.health_check("admin").await.unwrap();
    assert!(good.ok, "{good:?}");
    let names: Vec<&str> = good.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["profile", "sign", "put", "clock", "path style"]);
    assert!(good.checks.iter().all(|c| c.status == CheckStatus::Pass));
    assert!(store.keys().is_empty(), "the probe was deleted");

    assert_eq!(
        app.keychain
            .get("admin", SecretKind::SecretAccessKey)
            .unwrap()
            .map(|s| s.expose().to_string()),
        Some(support::SECRET_ACCESS_KEY.to_string())
    );
    for f in support::all_files(app.config.path()) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(!text.contains(support::SECRET_ACCESS_KEY), "{f:?}");
        assert!(!text.contains("not-the-secret"), "{f:?}");
    }
    let listed = app.manager.profiles().await.unwrap();
    let json = serde_json::to_string(&listed).unwrap();
    assert!(
        !json.contains(support::SECRET_ACCESS_KEY),
        "secrets never go back to the UI"
    );

    // Exported without secrets; imported by a staff machine (other config, other keychain).
    let out = tempfile::tempdir().unwrap();
    let exported = out.path().join("admin.hoist-profile.toml");
    app.manager.export_profile("admin", &exported).unwrap();
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("hoist-profile = 1") && text.contains("access_key_id"));
    assert!(!text.contains(support::SECRET_ACCESS_KEY));
    let staff = self::app();
    let imported = staff.manager.import_profile(&exported).await.unwrap();
    // Regression (security review): an imported profile took over at once.
    assert!(!imported.active, "an import never activates by itself");
    assert_eq!(
        staff.manager.overview().await.unwrap().active_profile,
        "local"
    );
    assert_eq!(imported.name, "admin");
    assert!(
        !imported.secrets[0].stored,
        "the secret is for the user to enter"
    );
    let again = staff
        .manager
        .import_profile(&exported)
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("already exists"), "{again}");
    let junk = write(out.path(), "junk.toml", b"hello = 1\n");
    let err = staff
        .manager
        .import_profile(&junk)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a Hoist profile file"), "{err}");

    // Removing the profile removes its secret.
    app.manager.remove_profile("admin").await.unwrap();
    assert_eq!(
        app.keychain
            .get("admin", SecretKind::SecretAccessKey)
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_of_the_embedded_default_passes() {
    let app = app();
    let report = app.manager.health_check("local").await.unwrap();
    assert!(report.ok, "{report:?}");
    assert!(report.checks.iter().all(|c| c.status == CheckStatus::Pass));
    let folder = app.manager.local_folder().await.unwrap();
    assert!(
        support::all_files(&folder).is_empty(),
        "the probe object was deleted"
    );
}

/// A TCP relay to `upstream` on `port` of 127.0.0.1: the network between staff and the store,
/// back once it runs (before, nothing listens there: connections are refused).
async fn network_back(port: u16, upstream: std::net::SocketAddr) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the relay's port is free again");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

/// Makes `office`, a self-sign profile for `store` reached through a port of 127.0.0.1 where
/// nothing listens yet, the active one; answers that port and the store's address.
async fn behind_a_dead_link(app: &App, store: &Store) -> (u16, std::net::SocketAddr) {
    let upstream = store.store.endpoint().socket_addrs(|| None).unwrap()[0];
    let gate = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = gate.local_addr().unwrap().port();
    drop(gate);
    let mut profile = store.self_sign_profile("office");
    if let Mode::SelfSign { endpoint, .. } = &mut profile.mode {
        *endpoint = Some(format!("http://127.0.0.1:{port}"));
    }
    let secret = SecretInput {
        kind: SecretKind::SecretAccessKey,
        value: Secret::new(support::SECRET_ACCESS_KEY),
    };
    app.manager
        .save_profile("office", profile, vec![secret], true)
        .await
        .unwrap();
    app.manager.set_active("office").unwrap();
    (port, upstream)
}

/// Uploads that failed because the store could not be reached are retried by themselves once
/// it can be (a laptop back on the network), and land intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_failed_for_want_of_a_network_land_by_themselves_when_it_is_back() {
    let mut app = app();
    let store = Store::start().await;
    let (port, upstream) = behind_a_dead_link(&app, &store).await;
    let src = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..3u8)
        .map(|i| write(src.path(), &format!("f{i}.bin"), &bytes(50_000, i)))
        .collect();
    let ids = app.manager.add(files.clone()).await.unwrap().queued;
    let batch = next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { done, failed } => Some((*done, *failed)),
        _ => None,
    })
    .await;
    assert_eq!(
        batch,
        (0, 3),
        "nothing can land while the store is unreachable"
    );
    for &id in &ids {
        let reason = row(&app.manager, id).error.unwrap_or_default();
        assert!(
            reason.contains("tries again by itself"),
            "the reason says Hoist will try again: {reason}"
        );
    }

    // A few probes fail (each retries one upload), then the network comes back.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(store.keys().len(), 0);
    network_back(port, upstream).await;
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let rows: Vec<_> = ids.iter().map(|&id| row(&app.manager, id).phase).collect();
            if rows.iter().all(|p| *p == Phase::Done) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("every upload lands once the store can be reached");
    for (i, &id) in ids.iter().enumerate() {
        let key = row(&app.manager, id).key;
        assert_eq!(
            store.stored_sha256(&key),
            Some(sha256_hex(&bytes(50_000, i as u8))),
            "{key} landed intact"
        );
    }
    drain(&mut app.events);
}

/// Regression (#31, defect 1): a failing upload notified on every automatic retry ("1 upload
/// failed" five times in three minutes for one file). Each batch outcome is reported once: the
/// failures when they happen, the recovery when the files land, never a probe's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_retries_report_no_batch_of_their_own() {
    let mut app = app();
    let store = Store::start().await;
    let (port, upstream) = behind_a_dead_link(&app, &store).await;
    let src = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..2u8)
        .map(|i| write(src.path(), &format!("r{i}.bin"), &bytes(20_000, i)))
        .collect();
    let ids = app.manager.add(files).await.unwrap().queued;
    let batches = |events: Vec<ManagerEvent>| -> Vec<(u32, u32)> {
        events
            .iter()
            .filter_map(|e| match e {
                ManagerEvent::BatchFinished { done, failed } => Some((*done, *failed)),
                _ => None,
            })
            .collect()
    };
    let first = next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { done, failed } => Some((*done, *failed)),
        _ => None,
    })
    .await;
    assert_eq!(first, (0, 2));
    // Probes retry one upload at a time meanwhile, and fail.
    let probed = |app: &App| {
        ids.iter()
            .map(|&id| row(&app.manager, id).error.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = batches(drain(&mut app.events));
    assert!(store.keys().is_empty(), "{:?}", probed(&app));
    assert_eq!(during, vec![], "a failed probe is not a batch to report");

    network_back(port, upstream).await;
    tokio::time::timeout(Duration::from_secs(60), async {
        while !ids
            .iter()
            .all(|&id| row(&app.manager, id).phase == Phase::Done)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the uploads land once the store can be reached");
    app.manager.wait_idle().await;
    let after: u32 = batches(drain(&mut app.events))
        .iter()
        .map(|(done, failed)| {
            assert_eq!(*failed, 0, "no failure reported again");
            *done
        })
        .sum();
    assert_eq!(after, 2, "the recovery is reported: both landed");
}

/// Regression (#31, defect 4): a wrong token read "refused to sign (HTTP 400) … (HTTP 401)",
/// and storing the right one retried none of the files refused for the wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storing_the_right_token_sends_the_files_the_wrong_one_failed() {
    let mut app = app();
    let store = Store::start().await;
    let backend = support::backend::Backend::start(
        store.store.signer(),
        support::backend::Flavour::Careful,
        Some("the-right-token"),
        "",
    )
    .await;
    let staff = Profile::new(
        "staff",
        Mode::Backend {
            url: backend.url.clone(),
            protocol: hoist::profile::Protocol::Simple,
            token: true,
        },
    );
    let token = |v: &str| SecretInput {
        kind: SecretKind::BearerToken,
        value: Secret::new(v),
    };
    let m = &app.manager;
    m.save_profile("staff", staff.clone(), vec![token("a-wrong-token")], true)
        .await
        .unwrap();
    let src = tempfile::tempdir().unwrap();
    let file = write(src.path(), "minutes.txt", b"minutes of the meeting\n");
    m.set_active("staff").unwrap();
    let id = m.add(vec![file]).await.unwrap().queued[0];
    next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { failed: 1, .. } => Some(()),
        _ => None,
    })
    .await;
    let reason = row(m, id).error.unwrap_or_default();
    assert!(reason.contains("HTTP 401"), "{reason}");
    assert!(
        !reason.contains("HTTP 400"),
        "the status is the backend's: {reason}"
    );

    m.save_profile("staff", staff, vec![token("the-right-token")], false)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), async {
        while row(m, id).phase != Phase::Done {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the file refused for the wrong token lands with the right one");
    assert_eq!(store.keys().len(), 1);
    // A company backend signs uploads only: its staff are offered no share link (#31).
    let entry = &m.history().unwrap()[0];
    assert_eq!(entry.profile, "staff");
    assert!(!entry.shareable);
    drain(&mut app.events);
}

/// A failed upload dismissed by hand is not brought back by the reconnection retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dismissed_upload_is_not_retried_when_the_network_is_back() {
    let mut app = app();
    let store = Store::start().await;
    let (port, upstream) = behind_a_dead_link(&app, &store).await;
    let src = tempfile::tempdir().unwrap();
    let kept = write(src.path(), "kept.bin", &bytes(10_000, 1));
    let dropped = write(src.path(), "dropped.bin", &bytes(10_000, 2));
    let ids = app.manager.add(vec![kept, dropped]).await.unwrap().queued;
    next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { failed: 2, .. } => Some(()),
        _ => None,
    })
    .await;
    app.manager.dismiss(ids[1]).unwrap();
    network_back(port, upstream).await;
    tokio::time::timeout(Duration::from_secs(60), async {
        while row(&app.manager, ids[0]).phase != Phase::Done {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the kept upload lands");
    app.manager.wait_idle().await;
    let dismissed = Queue::open(&app.data.path().join("queue.sqlite3"))
        .unwrap()
        .get(ids[1])
        .unwrap()
        .unwrap();
    assert_eq!(
        dismissed.state,
        ItemState::Failed,
        "left as it was dismissed"
    );
    assert_eq!(store.keys().len(), 1);
}

/// The queue view comes a window at a time, in the list's order (unfinished uploads first,
/// oldest first; then finished ones, the last to finish first), filtered, with its counts and
/// totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_view_comes_a_window_at_a_time_in_the_lists_order() {
    let mut app = app();
    let src = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..12u8)
        .map(|i| write(src.path(), &format!("f{i:02}.txt"), &bytes(1_000, i)))
        .collect();
    let done = app.manager.add(files).await.unwrap().queued;
    next_matching(&mut app.events, |e| match e {
        ManagerEvent::BatchFinished { done: 12, .. } => Some(()),
        _ => None,
    })
    .await;
    let big = app
        .manager
        .add(vec![big_file(src.path())])
        .await
        .unwrap()
        .queued[0];
    at_first_progress(&mut app, big).await;
    app.manager.pause(big).unwrap();
    app.manager.wait_idle().await;

    let window = |filter, offset, limit| {
        app.manager
            .queue_window(QueueQuery {
                filter,
                offset,
                limit,
            })
            .unwrap()
    };
    let ids = |w: &QueueWindow| w.rows.iter().map(|r| r.id).collect::<Vec<_>>();
    // Finished ones as they finished, the last first (#31: the last to finish could be
    // below the fold); they finished at once, so the queue's record of when decides.
    let newest_first: Vec<i64> = {
        let queue = Queue::open(&app.data.path().join("queue.sqlite3")).unwrap();
        let mut finished: Vec<(String, i64)> = done
            .iter()
            .map(|id| (queue.get(*id).unwrap().unwrap().updated_at, *id))
            .collect();
        finished.sort_unstable_by(|a, b| b.cmp(a));
        finished.into_iter().map(|(_, id)| id).collect()
    };

    let top = window(QueueFilter::All, 0, 5);
    assert_eq!((top.matching, top.all, top.offset), (13, 13, 0));
    assert_eq!(ids(&top)[0], big, "the unfinished upload is first");
    assert_eq!(top.rows[0].phase, Phase::Paused);
    assert_eq!(
        ids(&top)[1..],
        newest_first[..4],
        "then finished ones, newest first"
    );
    let tail = window(QueueFilter::All, 10, 5);
    assert_eq!(
        ids(&tail),
        newest_first[9..],
        "a window past the end is short"
    );
    assert_eq!(tail.offset, 10);

    let unfinished = window(QueueFilter::Unfinished, 0, 50);
    assert_eq!((ids(&unfinished), unfinished.matching), (vec![big], 1));
    assert_eq!(unfinished.overall.unfinished, 1);
    assert_eq!(unfinished.overall.size, 40 * 1024 * 1024 + 3);
    assert!(
        unfinished.overall.sent_ever >= 12_000,
        "every byte sent is counted"
    );
    let landed = window(QueueFilter::Done, 3, 4);
    assert_eq!(landed.matching, 12);
    assert_eq!(ids(&landed), newest_first[3..7]);
    assert!(window(QueueFilter::Failed, 0, 10).rows.is_empty());
    let capped = window(QueueFilter::All, 0, 100_000);
    assert_eq!(capped.rows.len(), 13, "the limit is capped, never the list");

    app.manager.dismiss(done[0]).unwrap();
    let after = window(QueueFilter::All, 0, 50);
    assert_eq!((after.matching, after.all), (12, 12));
    assert!(
        !ids(&after).contains(&done[0]),
        "a dismissed upload leaves the view"
    );
    app.manager.cancel(big).await.unwrap();
}

/// Uploads still waiting for their turn (beyond the files in flight) hold no control until
/// it comes; pausing or cancelling them meanwhile still holds: paused ones wait, cancelled ones
/// never start, and a resume lands every paused one intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_uploads_pause_and_cancel_before_their_turn() {
    let mut app = app();
    app.manager.set_limit_rate(Some(64 * 1024)).unwrap();
    let src = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..40u8)
        .map(|i| write(src.path(), &format!("w{i:02}.bin"), &bytes(20_000, i)))
        .collect();
    let ids = app.manager.add(files).await.unwrap().queued;
    let (paused, cancelled) = (ids[30], ids[31]);
    app.manager.pause(paused).unwrap();
    app.manager.cancel(cancelled).await.unwrap();
    app.manager.pause_all().unwrap();
    app.manager.wait_idle().await;
    assert_eq!(row(&app.manager, paused).phase, Phase::Paused);
    assert_eq!(row(&app.manager, cancelled).phase, Phase::Cancelled);
    app.manager.set_limit_rate(None).unwrap();
    app.manager.resume_all().await.unwrap();
    app.manager.wait_idle().await;
    for (i, &id) in ids.iter().enumerate() {
        let r = row(&app.manager, id);
        if id == cancelled {
            assert_eq!(r.phase, Phase::Cancelled, "a cancelled upload never starts");
            assert_eq!(stored_sha256(&app.manager, &r.key).await, None);
            continue;
        }
        assert_eq!(r.phase, Phase::Done, "{} lands once resumed", r.name);
        assert_eq!(
            stored_sha256(&app.manager, &r.key).await,
            Some(sha256_hex(&bytes(20_000, i as u8)))
        );
    }
    drain(&mut app.events);
}
