//! The scripted faulty endpoint: throttling, server errors, resets, stalls, expiry, redirects.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use hoist::retry::RetryBudget;
use hoist::secret::Secret;
use hoist::sign::sigv4::SigV4Signer;
use hoist::sign::{PresignedPut, PutRequest, SignError, Signer};
use hoist::upload::{TransferError, TransferEvent, UploadReceipt, Uploader};
use hoist::validate::CheckedFile;

use crate::support::faulty::{s3_error, Faulty, Step};
use crate::support::{self, recorder};

fn signer_for(f: &Faulty) -> SigV4Signer {
    SigV4Signer::new(
        "bucket",
        "us-east-1",
        "AKIDFAULTY",
        Secret::new("faulty-secret"),
    )
    .with_endpoint(url::Url::parse(&f.url).unwrap(), true)
}

fn file(dir: &std::path::Path, size: usize) -> (CheckedFile, Vec<u8>) {
    let content = support::bytes(size, 7);
    let path = support::write(dir, "data.bin", &content);
    let meta = std::fs::metadata(&path).unwrap();
    let modified = meta.modified().ok();
    (
        CheckedFile {
            path,
            file_name: "data.bin".into(),
            size: size as u64,
            content_type: "application/octet-stream".into(),
            modified,
            identity: hoist::validate::FileIdentity::of(&meta),
        },
        content,
    )
}

struct Run {
    result: Result<UploadReceipt, TransferError>,
    sleeps: Vec<Duration>,
    events: Vec<TransferEvent>,
    content: Vec<u8>,
}

async fn run(
    faulty: &Faulty,
    signer: &dyn Signer,
    budget: RetryBudget,
    size: usize,
    stall: Duration,
) -> Run {
    let (policy, clock) = support::policy_with(support::RecordingClock::default(), budget);
    let uploader = Uploader::new(policy).with_stall_timeout(stall);
    let dir = tempfile::tempdir().unwrap();
    let (f, content) = file(dir.path(), size);
    let (progress, events) = recorder();
    let _ = faulty;
    let result = uploader.upload(&f, "k/data.bin", signer, &progress).await;
    let sleeps = clock.sleeps.lock().unwrap().clone();
    let events = events.lock().unwrap().clone();
    Run {
        result,
        sleeps,
        events,
        content,
    }
}

fn accepted_body(f: &Faulty) -> Vec<u8> {
    f.requests().last().expect("a request").body.clone()
}

#[tokio::test]
async fn slow_down_twice_then_success_with_exact_backoff() {
    let slow = s3_error("SlowDown", "Please reduce your request rate.");
    let f = Faulty::start(vec![
        Step::Respond(503, slow.clone()),
        Step::Respond(503, slow),
        Step::Accept,
    ])
    .await;
    let r = run(
        &f,
        &signer_for(&f),
        RetryBudget::default(),
        100_000,
        Duration::from_secs(10),
    )
    .await;
    let receipt = r.result.expect("third attempt succeeds");
    assert_eq!(receipt.attempts, 3);
    // Full jitter fixed at 0.5: 0.5 × 1 s, then 0.5 × 2 s.
    assert_eq!(
        r.sleeps,
        vec![Duration::from_millis(500), Duration::from_secs(1)]
    );
    assert_eq!(accepted_body(&f), r.content);
    let retries: Vec<_> = r
        .events
        .iter()
        .filter(|e| matches!(e, TransferEvent::Retrying { .. }))
        .collect();
    assert_eq!(retries.len(), 2);
    assert!(format!("{retries:?}").contains("slow down"));
}

#[tokio::test]
async fn persistent_500_gives_up_after_three_attempts_with_a_clear_error() {
    let err500 = s3_error("InternalError", "We encountered an internal error.");
    let f = Faulty::start(vec![Step::Respond(500, err500.clone()); 10]).await;
    let r = run(
        &f,
        &signer_for(&f),
        RetryBudget::default(),
        1000,
        Duration::from_secs(10),
    )
    .await;
    let err = r.result.unwrap_err();
    assert!(
        matches!(err, TransferError::RetriesExhausted { attempts: 3, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("gave up after 3 attempts") && msg.contains("internal error"),
        "{msg}"
    );
    assert_eq!(f.count(), 3);
}

#[tokio::test]
async fn an_empty_retry_budget_stops_retrying() {
    let err500 = s3_error("InternalError", "");
    let f = Faulty::start(vec![Step::Respond(500, err500); 10]).await;
    let r = run(
        &f,
        &signer_for(&f),
        RetryBudget::new(5),
        1000,
        Duration::from_secs(10),
    )
    .await;
    let err = r.result.unwrap_err();
    assert!(
        matches!(err, TransferError::BudgetExhausted { .. }),
        "{err:?}"
    );
    assert_eq!(f.count(), 2, "one retry paid for, then none");
}

#[tokio::test]
async fn connection_reset_mid_body_is_retried_from_the_file() {
    let f = Faulty::start(vec![Step::ResetAfter(64 * 1024), Step::Accept]).await;
    let r = run(
        &f,
        &signer_for(&f),
        RetryBudget::default(),
        1024 * 1024,
        Duration::from_secs(10),
    )
    .await;
    let receipt = r.result.expect("retried after the reset");
    assert_eq!(receipt.attempts, 2);
    assert_eq!(
        accepted_body(&f),
        r.content,
        "the retry re-read the whole file"
    );
}

#[tokio::test]
async fn a_stalled_transfer_times_out_and_is_retried() {
    let f = Faulty::start(vec![Step::StallAfter(16 * 1024), Step::Accept]).await;
    let r = run(
        &f,
        &signer_for(&f),
        RetryBudget::default(),
        4 * 1024 * 1024,
        Duration::from_millis(400),
    )
    .await;
    let receipt = r.result.expect("retried after the stall");
    assert_eq!(receipt.attempts, 2);
    assert_eq!(accepted_body(&f), r.content);
    let reasons = format!("{:?}", r.events);
    assert!(reasons.contains("stalled"), "{reasons}");
}

/// Counts how often it was asked to sign.
struct Counting {
    inner: SigV4Signer,
    calls: AtomicU32,
}

#[async_trait::async_trait]
impl Signer for Counting {
    async fn presign_put(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        // Each signing happens one second later, so a reused URL would be visible.
        self.inner
            .presign_put(req, now + Duration::from_secs(n as u64))
            .await
    }
}

#[tokio::test]
async fn an_expired_url_is_signed_again_never_reused() {
    let expired = s3_error("AccessDenied", "Request has expired");
    let f = Faulty::start(vec![Step::Respond(403, expired), Step::Accept]).await;
    let signer = Counting {
        inner: signer_for(&f),
        calls: AtomicU32::new(0),
    };
    let r = run(
        &f,
        &signer,
        RetryBudget::default(),
        2000,
        Duration::from_secs(10),
    )
    .await;
    r.result.expect("succeeds with a fresh URL");
    assert_eq!(signer.calls.load(Ordering::SeqCst), 2);
    let reqs = f.requests();
    assert_eq!(reqs.len(), 2);
    assert_ne!(
        reqs[0].target, reqs[1].target,
        "the second attempt used a new URL"
    );
    assert!(r.sleeps.is_empty(), "re-signing needs no backoff");
}

#[tokio::test]
async fn a_redirect_from_storage_is_not_followed() {
    let elsewhere = Faulty::start(vec![Step::Accept]).await;
    let f = Faulty::start(vec![Step::Redirect(format!("{}/other", elsewhere.url))]).await;
    let r = run(
        &f,
        &signer_for(&f),
        RetryBudget::default(),
        2000,
        Duration::from_secs(10),
    )
    .await;
    let err = r.result.unwrap_err();
    assert!(matches!(err, TransferError::Rejected(_)), "{err:?}");
    assert!(
        err.to_string().contains("does not follow redirects"),
        "{err}"
    );
    assert_eq!(elsewhere.count(), 0);
    assert!(f.requests()[0].header("authorization").is_none());
}

#[tokio::test]
async fn errors_never_show_the_signature() {
    // A connection refused error from reqwest would print the URL with its signature.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let signer = SigV4Signer::new("bucket", "us-east-1", "AKIDCLOSED", Secret::new("s"))
        .with_endpoint(url::Url::parse(&closed).unwrap(), true);
    let f = Faulty::start(vec![]).await;
    let r = run(
        &f,
        &signer,
        RetryBudget::default(),
        10,
        Duration::from_secs(10),
    )
    .await;
    let msg = r.result.unwrap_err().to_string();
    assert!(
        msg.contains("nothing accepts connections at 127.0.0.1:")
            && msg.contains("(connection refused)"),
        "{msg}"
    );
    assert!(
        !msg.contains("X-Amz-Signature=") || msg.contains("X-Amz-Signature=[redacted]"),
        "{msg}"
    );
    assert!(!msg.contains("AKIDCLOSED"), "{msg}");
    let events = format!("{:?}", r.events);
    assert!(!events.contains("AKIDCLOSED"), "{events}");
}

/// A signer that fixes a checksum in the URL's query, as a backend computing its own would.
struct BakedChecksum {
    inner: SigV4Signer,
}

#[async_trait::async_trait]
impl Signer for BakedChecksum {
    async fn presign_put(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        let mut p = self.inner.presign_put(req, now).await?;
        p.url
            .query_pairs_mut()
            .append_pair("x-amz-sdk-checksum-algorithm", "CRC32")
            .append_pair("x-amz-checksum-crc32", "q83vEg==");
        Ok(p)
    }
}

/// BadDigest on a URL whose checksum the backend fixed is the backend's doing: one attempt,
/// and the error says what the backend must change, not "corrupted in transit".
#[tokio::test]
async fn a_checksum_mismatch_on_a_backend_checksum_is_not_retried() {
    let bad = s3_error(
        "BadDigest",
        "The CRC32 you specified did not match the calculated checksum.",
    );
    let f = Faulty::start(vec![Step::Respond(400, bad); 3]).await;
    let signer = BakedChecksum {
        inner: signer_for(&f),
    };
    let r = run(
        &f,
        &signer,
        RetryBudget::default(),
        1000,
        Duration::from_secs(10),
    )
    .await;
    let msg = r.result.unwrap_err().to_string();
    assert!(
        msg.contains("crc32 checksum the backend put in the URL") && msg.contains("WHEN_REQUIRED"),
        "{msg}"
    );
    assert!(!msg.contains("corrupted"), "{msg}");
    assert_eq!(f.count(), 1, "not retried");
}

/// BadDigest on the checksum Hoist computed itself is corruption on the way: retried, and the
/// next attempt lands.
#[tokio::test]
async fn a_checksum_mismatch_on_hoists_own_checksum_is_retried() {
    let bad = s3_error(
        "BadDigest",
        "The CRC64NVME you specified did not match the calculated checksum.",
    );
    let f = Faulty::start(vec![Step::Respond(400, bad), Step::Accept]).await;
    let r = run(
        &f,
        &signer_for(&f),
        RetryBudget::default(),
        1000,
        Duration::from_secs(10),
    )
    .await;
    r.result.expect("the second attempt lands");
    assert_eq!(f.count(), 2);
    let signed = f.requests()[0].target.clone();
    assert!(
        signed.contains("x-amz-checksum-crc64nvme"),
        "Hoist's own checksum is signed: {signed}"
    );
}

// S3 documents that a part still uploading when an abort arrives may land after it, and that
// freeing its storage takes listing the parts and aborting again. A real store cannot be made
// to lose that race on cue, so the endpoint plays it.
#[tokio::test]
async fn an_abort_is_repeated_while_a_late_part_is_still_listed() {
    use hoist::remote::s3::S3Client;
    use hoist::remote::{MultipartApi, MultipartTarget};
    let late_part = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListPartsResult><IsTruncated>false</IsTruncated>\
        <Part><PartNumber>2</PartNumber><ETag>\"0123\"</ETag><Size>5242880</Size></Part></ListPartsResult>";
    let gone = s3_error("NoSuchUpload", "The specified upload does not exist.");
    let f = Faulty::start(vec![
        Step::Respond(204, String::new()),
        Step::Respond(200, late_part.into()),
        Step::Respond(204, String::new()),
        Step::Respond(404, gone),
    ])
    .await;
    let client = S3Client::new(signer_for(&f));
    let target = MultipartTarget {
        key: "late.bin".into(),
        upload_id: "upload-1".into(),
    };
    let (_, clock) = support::recorded_policy();
    client
        .abort_completely(&target, &*clock)
        .await
        .expect("aborted");
    assert_eq!(
        *clock.sleeps.lock().unwrap(),
        [Duration::from_millis(500)],
        "one wait before the second abort"
    );
    let asked: Vec<String> = f
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target.split('?').next().unwrap_or("")))
        .collect();
    assert_eq!(
        asked,
        [
            "DELETE /bucket/late.bin",
            "GET /bucket/late.bin",
            "DELETE /bucket/late.bin",
            "GET /bucket/late.bin"
        ],
        "abort, list (a late part), abort again, list (gone)"
    );
    assert!(f
        .requests()
        .iter()
        .all(|r| r.target.contains("uploadId=upload-1")));
}
