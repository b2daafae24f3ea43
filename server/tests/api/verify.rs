//! What landed is what was declared (`[verify]`): uploads land under `incoming/`, the
//! completion step checks them (size, magic bytes, ClamAV's clamd with a signature database
//! of the tests' own) and moves them to their key or to `quarantine/` with the reason, and
//! an accepted upload is announced to an HMAC-signed webhook.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hoist_server::config::PolicyConfig;
use hoist_server::verify::{Verifier, VerifyConfig, WebhookConfig};
use serde_json::{json, Value};

use crate::end_to_end::staff_session;
use crate::{sha256, Harness, ALICE};

/// Bytes ClamAV reports as `Hoist.Test.Sample`: the tests' signature database has their MD5.
const SAMPLE: &[u8] = b"HOIST-TEST-MALWARE-SAMPLE: not a virus, a signature the tests define\n";
/// What the tests' verifier lets clamd scan at most.
const SCAN_LIMIT: u64 = 1024 * 1024;
const WEBHOOK_SECRET: &str = "webhook-secret-for-the-tests-0123456789";

fn verifier(clamd: Option<&Clamd>, webhook: Option<&str>) -> Verifier {
    Verifier::new(
        VerifyConfig {
            incoming_prefix: "incoming/".into(),
            quarantine_prefix: "quarantine/".into(),
            clamd: clamd.map(|c| format!("unix:{}", c.socket.display())),
            // Far below clamd's own limits (its defaults here), so that the limit is Hoist's.
            scan_limit_bytes: Some(SCAN_LIMIT),
            webhook: webhook.map(|url| WebhookConfig { url: url.into() }),
        },
        webhook.map(|_| WEBHOOK_SECRET.to_string()),
    )
    .unwrap()
}

/// Debian's clamd on a socket of its own, with one signature: [`SAMPLE`]'s MD5.
struct Clamd {
    socket: PathBuf,
    child: Child,
    /// Its configuration, to start it again.
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Clamd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let md5: String = {
            use md5::Digest as _;
            md5::Md5::digest(SAMPLE)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        std::fs::write(
            db.join("hoist-test.hdb"),
            format!("{md5}:{}:Hoist.Test.Sample\n", SAMPLE.len()),
        )
        .unwrap();
        let socket = dir.path().join("clamd.sock");
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "DatabaseDirectory {}\nLocalSocket {}\nForeground yes\nLogFile {}\nPidFile {}\n",
                db.display(),
                socket.display(),
                dir.path().join("clamd.log").display(),
                dir.path().join("clamd.pid").display()
            ),
        )
        .unwrap();
        let child = Self::spawn(&conf, &socket);
        Self {
            socket,
            child,
            conf,
            _dir: dir,
        }
    }

    fn spawn(conf: &Path, socket: &Path) -> Child {
        let child = Command::new(clamd_binary())
            .arg(format!("--config-file={}", conf.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clamd runs (scripts/deps installs clamav-daemon)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "clamd did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    }

    /// Stops it: its socket answers nothing until [`Self::restart`].
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }

    fn restart(&mut self) {
        self.child = Self::spawn(&self.conf, &self.socket);
    }
}

fn clamd_binary() -> &'static str {
    ["/usr/sbin/clamd", "clamd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("clamd")
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Hoist completes again when a scanner is down, as asked (Retry-After: 60); here, once more
/// and only a second on.
fn completes_once_more() -> hoist::retry::RetryPolicy {
    hoist::retry::RetryPolicy {
        max_attempts: 2,
        max_throttle_wait: Duration::from_secs(1),
        ..Default::default()
    }
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn no_progress() -> hoist::upload::ProgressFn {
    Arc::new(|_| {})
}

#[tokio::test]
async fn a_checked_upload_moves_from_incoming_to_its_key() {
    let h = Harness::with_verifier(PolicyConfig::default(), verifier(None, None)).await;
    let base = crate::listen(h.router.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let content = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 50_000]].concat();
    let file = write(dir.path(), "poster.png", &content);
    let r = staff_session(&base)
        .upload(&file, &no_progress())
        .await
        .expect("uploaded and verified");
    assert!(r.verified);
    assert!(r.key.starts_with("uploads/alice/"), "{}", r.key);
    assert!(!r.location.contains("incoming"), "{}", r.location);
    assert_eq!(sha256(&h.stored(&r.key).unwrap()), sha256(&content));
    assert_eq!(
        h.store_keys(),
        vec![r.key.clone()],
        "nothing left in incoming/"
    );
    let lines = h.audit_lines();
    assert_eq!(lines.last().unwrap()["outcome"], "verified", "{lines:?}");
    assert_eq!(lines.last().unwrap()["action"], "simple.complete");
}

/// What a client that lies about the type sends: a PDF declared as a PNG.
#[tokio::test]
async fn content_that_is_not_the_declared_type_goes_to_quarantine_with_the_reason() {
    let h = Harness::with_verifier(PolicyConfig::default(), verifier(None, None)).await;
    let base = crate::listen(h.router.clone()).await;
    let http = reqwest::Client::new();
    let post = |path: &str, token: &str, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\n".to_vec();
    let (_, signed) = post(
        "/api/upload",
        ALICE,
        json!({"fileName": "cat.png", "contentType": "image/png", "size": pdf.len()}),
    )
    .await;
    let key = signed["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("incoming/uploads/alice/"), "{key}");
    let mut put = http.put(signed["url"].as_str().unwrap()).body(pdf.clone());
    for (n, v) in signed["headers"].as_object().unwrap() {
        put = put.header(n.as_str(), v.as_str().unwrap());
    }
    assert!(put.send().await.unwrap().status().is_success());

    let complete = &signed["complete"];
    assert_eq!(complete["url"], "/api/upload/complete");
    let receipt = json!({"key": key, "receipt": complete["receipt"]});
    let (status, verdict) = post("/api/upload/complete", ALICE, receipt.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verdict["status"], "quarantined", "{verdict}");
    assert_eq!(
        verdict["reason"],
        "its content is application/pdf, not the image/png declared"
    );
    let kept = verdict["key"].as_str().unwrap();
    assert_eq!(kept, key.replacen("incoming/", "quarantine/", 1));
    assert_eq!(h.stored(kept).unwrap(), pdf);
    let note: Value =
        serde_json::from_slice(&h.stored(&format!("{kept}.reason.json")).unwrap()).unwrap();
    assert_eq!(note["reason"], verdict["reason"]);
    assert_eq!(note["user"], "alice");
    let mut keys = h.store_keys();
    keys.sort();
    assert_eq!(keys, vec![kept.to_string(), format!("{kept}.reason.json")]);

    // Completing again (an answer lost on the way) gives the same verdict.
    assert_eq!(
        post("/api/upload/complete", ALICE, receipt.clone()).await,
        (StatusCode::OK, verdict.clone())
    );
    // The receipt is Alice's: Bob cannot complete (or move) her upload.
    let (status, _) = post("/api/upload/complete", crate::BOB, receipt).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn clamav_finds_the_tests_signature_and_hoist_shows_the_quarantine() {
    let clamd = Clamd::start();
    let h = Harness::with_verifier(PolicyConfig::default(), verifier(Some(&clamd), None)).await;
    let base = crate::listen(h.router.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let session = staff_session(&base);

    let clean = write(dir.path(), "notes.txt", b"minutes of the meeting\n");
    let r = session
        .upload(&clean, &no_progress())
        .await
        .expect("clean file verified");
    assert!(r.verified);

    let infected = write(dir.path(), "sample.txt", SAMPLE);
    let e = session
        .upload(&infected, &no_progress())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("quarantined by the backend: malware found: Hoist.Test.Sample"),
        "{e}"
    );
    let kept: Vec<String> = h
        .store_keys()
        .into_iter()
        .filter(|k| k.starts_with("quarantine/uploads/alice/") && k.ends_with("sample.txt"))
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", h.store_keys());
    assert_eq!(h.stored(&kept[0]).unwrap(), SAMPLE);
    assert!(!h.store_keys().iter().any(|k| k.starts_with("incoming/")));

    // Regression (#29, finding 2): past its limits clamd answers OK without scanning, and a
    // 3 MB file was "verified" and announced. Larger than the scanner checks, it is not.
    let big = write(dir.path(), "big.txt", &vec![b'a'; 3 * SCAN_LIMIT as usize]);
    let e = session
        .upload(&big, &no_progress())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("quarantined by the backend") && e.contains("not scanned"),
        "{e}"
    );
    assert!(!h
        .store_keys()
        .iter()
        .any(|k| k.starts_with("uploads/") && k.ends_with("big.txt")));
}

#[tokio::test]
async fn a_scanner_that_is_down_keeps_the_upload_unchecked_and_says_to_complete_later() {
    // A clamd socket nobody listens on.
    let dir = tempfile::tempdir().unwrap();
    let fake = Clamd {
        socket: dir.path().join("nobody.sock"),
        child: Command::new("true").spawn().unwrap(),
        conf: PathBuf::new(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let h = Harness::with_verifier(PolicyConfig::default(), verifier(Some(&fake), None)).await;
    let base = crate::listen(h.router.clone()).await;
    let file = write(dir.path(), "notes.txt", b"minutes\n");
    let e = crate::end_to_end::staff_session_retrying(&base, completes_once_more())
        .upload(&file, &no_progress())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot verify uploads right now: its malware scanner is unavailable"),
        "{e}"
    );
    let keys = h.store_keys();
    assert!(keys.iter().all(|k| k.starts_with("incoming/")), "{keys:?}");
}

/// #30: with the scanner down the client is told why, and keeps what it sent; once the scanner
/// is back, the next run completes that same object (the ticket journaled in the queue) — no
/// second upload, nothing left in `incoming/`.
#[tokio::test]
async fn after_a_scanner_outage_the_resume_lands_the_pending_object_not_a_second_one() {
    let mut clamd = Clamd::start();
    let h = Harness::with_verifier(PolicyConfig::default(), verifier(Some(&clamd), None)).await;
    let base = crate::listen(h.router.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "minutes.txt", b"the minutes of the meeting\n");
    let queue = Arc::new(hoist::queue::Queue::open(&dir.path().join("q.sqlite3")).unwrap());
    clamd.stop();
    let e = crate::end_to_end::staff_session_retrying(&base, completes_once_more())
        .with_queue(Arc::clone(&queue))
        .upload(&file, &no_progress())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the backend cannot verify uploads right now"),
        "{e}"
    );
    let pending = h.store_keys();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(pending[0].starts_with("incoming/"), "{pending:?}");

    clamd.restart();
    let receipt = crate::end_to_end::staff_session_retrying(&base, completes_once_more())
        .with_queue(Arc::clone(&queue))
        .upload(&file, &no_progress())
        .await
        .expect("verified once the scanner is back");
    assert!(receipt.verified, "{receipt:?}");
    assert_eq!(
        receipt.bytes_sent, 0,
        "the pending object is not sent again"
    );
    let keys = h.store_keys();
    assert_eq!(
        keys,
        vec![receipt.key.clone()],
        "one object, out of incoming/"
    );
    assert!(receipt.key.starts_with("uploads/"), "{}", receipt.key);
    assert_eq!(
        h.stored(&receipt.key).as_deref(),
        Some(&b"the minutes of the meeting\n"[..])
    );
}

#[tokio::test]
async fn an_accepted_upload_is_announced_to_the_webhook_signed_and_retried() {
    #[derive(Clone, Default)]
    struct Received(Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>);
    let received = Received::default();
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut all = seen.0.lock().unwrap();
                all.push((headers, body));
                // The first delivery fails: the server tries again.
                if all.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let hook = crate::listen(app).await;
    let h = Harness::with_verifier(
        PolicyConfig::default(),
        verifier(None, Some(&format!("{hook}/hook"))),
    )
    .await;
    let base = crate::listen(h.router.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "report.pdf", b"%PDF-1.7\nreport\n");
    let r = staff_session(&base)
        .upload(&file, &no_progress())
        .await
        .unwrap();
    assert!(r.verified);

    let deadline = Instant::now() + Duration::from_secs(20);
    while received.0.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the webhook was retried");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (headers, body) = received.0.lock().unwrap()[1].clone();
    let timestamp = headers["x-hoist-timestamp"].to_str().unwrap();
    let expected =
        hoist_server::verify::webhook_signature(WEBHOOK_SECRET.as_bytes(), timestamp, &body);
    assert_eq!(
        headers["x-hoist-signature"].to_str().unwrap(),
        format!("sha256={expected}")
    );
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["event"], "upload.accepted");
    assert_eq!(event["key"], r.key.as_str());
    assert_eq!(event["size"], 16);
    assert_eq!(event["type"], "application/pdf");
    assert_eq!(event["user"], "alice");
    assert_eq!(event["checksum"]["algorithm"], "CRC64NVME", "{event}");
}

#[tokio::test]
async fn a_multipart_upload_is_verified_at_its_complete() {
    let h = Harness::with_verifier(PolicyConfig::default(), verifier(None, None)).await;
    let base = crate::listen(h.router.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let file = write(dir.path(), "footage.bin", &content);
    let r = crate::companion_session(&base)
        .upload(&file, &no_progress())
        .await
        .expect("multipart upload verified");
    assert!(r.verified);
    assert!(r.key.starts_with("uploads/alice/"), "{}", r.key);
    assert_eq!(sha256(&h.stored(&r.key).unwrap()), sha256(&content));
    assert_eq!(h.store_keys(), vec![r.key.clone()]);
}

/// Regression (#29, finding 1): with `allow_overwrite = true`, malware PUT over an object while
/// it was being scanned landed at the final key as "verified" (8 of 30 rounds). Only the
/// version that was checked may move: 30 rounds of a swap racing the completion, 0 swaps land.
#[tokio::test]
async fn an_object_swapped_while_it_is_scanned_never_lands_as_verified() {
    let clamd = Clamd::start();
    let policy = PolicyConfig {
        allow_overwrite: true,
        ..PolicyConfig::default()
    };
    let h = Harness::with_verifier(policy, verifier(Some(&clamd), None)).await;
    let base = crate::listen(h.router.clone()).await;
    let http = reqwest::Client::new();
    // The same length as the sample, so the signed URL takes either.
    let mut clean = SAMPLE.to_vec();
    clean[0] = b'h';
    let (mut landed_swapped, mut verified, mut refused) = (0, 0, 0);
    for round in 0..30u64 {
        let signed: Value = http
            .post(format!("{base}/api/upload"))
            .bearer_auth(ALICE)
            .json(&json!({"fileName": format!("notes-{round}.txt"), "contentType": "text/plain", "size": clean.len()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = signed["key"].as_str().unwrap().to_string();
        let put = |body: Vec<u8>| {
            let mut put = http.put(signed["url"].as_str().unwrap()).body(body);
            for (n, v) in signed["headers"].as_object().unwrap() {
                put = put.header(n.as_str(), v.as_str().unwrap());
            }
            async move { put.send().await.unwrap().status() }
        };
        assert!(put(clean.clone()).await.is_success());
        let complete = http
            .post(format!("{base}/api/upload/complete"))
            .bearer_auth(ALICE)
            .json(&json!({"key": key, "receipt": signed["complete"]["receipt"]}))
            .send();
        // The swap comes a little later each round, to cross every step of the check.
        let swap = async {
            tokio::time::sleep(Duration::from_micros(round * 400)).await;
            put(SAMPLE.to_vec()).await
        };
        let (answer, _) = tokio::join!(complete, swap);
        let answer = answer.unwrap();
        let status = answer.status();
        let verdict: Value = answer.json().await.unwrap_or(Value::Null);
        let final_key = key.replacen("incoming/", "", 1);
        if h.stored(&final_key).as_deref() == Some(SAMPLE) {
            landed_swapped += 1;
        }
        match (status, verdict["status"].as_str()) {
            (StatusCode::OK, Some("verified")) => verified += 1,
            (StatusCode::CONFLICT, _) => {
                assert!(
                    verdict["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("replaced while it was being checked"),
                    "{verdict}"
                );
                refused += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        landed_swapped, 0,
        "malware swapped in during the check landed as verified ({verified} verified, {refused} refused as replaced)"
    );
}

/// #30: `/readyz` checked only the store, and stayed ready while every verified upload got 503
/// (the scanner down). It now asks each dependency: the scanner down makes it unready, with
/// why, unless `[readiness] required` leaves the scanner out.
#[tokio::test]
async fn readyz_asks_the_scanner_and_is_unready_while_it_is_down() {
    let clamd = Clamd::start();
    let up = Harness::with_verifier(PolicyConfig::default(), verifier(Some(&clamd), None)).await;
    let (status, r, _) = up.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        r["checks"]["scanner"],
        json!({"ok": true, "required": true}),
        "{r}"
    );
    assert_eq!(r["checks"]["store"]["ok"], true, "{r}");

    let dir = tempfile::tempdir().unwrap();
    let down = Clamd {
        socket: dir.path().join("nobody.sock"),
        child: Command::new("true").spawn().unwrap(),
        conf: PathBuf::new(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let h = Harness::with_verifier(PolicyConfig::default(), verifier(Some(&down), None)).await;
    let (status, r, _) = h.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert_eq!(r["ready"], false);
    assert_eq!(r["checks"]["scanner"]["ok"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect to clamd"),
        "{r}"
    );

    // An admin who would rather keep the replica in rotation (uploads then wait, 503 each).
    let router = hoist_server::app(hoist_server::AppConfig {
        verifier: Some(verifier(Some(&down), None)),
        readiness: hoist_server::config::ReadinessConfig {
            required: vec![hoist_server::config::Dependency::Store],
        },
        ..crate::bare_config(h.store.signer())
    });
    let (status, r, _) = h.call_on(router, "GET", "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["checks"]["scanner"]["ok"], false, "{r}");
    assert_eq!(r["checks"]["scanner"]["required"], false, "{r}");
}
