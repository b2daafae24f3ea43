//! Staff mode: uploads signed by a presign backend (protocol `simple`).

use std::sync::Arc;

use hoist::backend::simple::BackendSigner;
use hoist::secret::Secret;
use hoist::session::{Session, UploadError};
use hoist::sign::SignError;
use hoist::upload::{TransferError, Uploader};
use hoist::HasKind;

use crate::support::backend::{Backend, Flavour};
use crate::support::faulty::Faulty;
use crate::support::{self, recorder, Store};

fn staff_session(backend_url: &str, token: Option<&str>) -> Session {
    let (policy, _) = support::recorded_policy();
    let signer = BackendSigner::new(
        url::Url::parse(backend_url).unwrap(),
        token.map(Secret::new),
    )
    .unwrap();
    Session::with_signer(
        crate::self_sign::profile(""),
        Arc::new(signer),
        Uploader::new(policy),
    )
}

#[tokio::test]
async fn careful_backend_with_token_lands_the_file_where_it_says() {
    let store = Store::start().await;
    let backend = Backend::start(
        store.store.signer(),
        Flavour::Careful,
        Some("staff-token-1"),
        "",
    )
    .await;
    let s = staff_session(&backend.url, Some("staff-token-1"));
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(700 * 1024, 9);
    let path = support::write(dir.path(), "Quarterly Report.pdf", &content);
    let (progress, _) = recorder();
    let r = s
        .upload(&path, &progress)
        .await
        .expect("upload through the backend");
    assert_eq!(r.key, "staff/Quarterly_Report.pdf");
    assert_eq!(
        store.stored_sha256(&r.key),
        Some(support::sha256_hex(&content))
    );
    assert_eq!(
        backend.seen_auth.lock().unwrap().as_slice(),
        &[Some("Bearer staff-token-1".to_string())]
    );
}

/// Regression (field report): a backend written as the article shows, on the AWS SDK for
/// JavaScript v3's defaults, bakes the CRC32 of an empty body into every URL; S3 refused each
/// upload with BadDigest, and Hoist retried three times and blamed the network.
#[tokio::test]
async fn a_backend_that_signs_an_empty_body_checksum_is_explained_at_once() {
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::SdkV3Defaults, None, "").await;
    let s = staff_session(&backend.url, None);
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "notes.txt", &support::bytes(5000, 3));
    let (progress, _) = recorder();
    let started = std::time::Instant::now();
    let err = s.upload(&path, &progress).await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let text = err.to_string();
    assert!(
        text.contains("signed for an empty body")
            && text.contains("x-amz-checksum-crc32=AAAAAA==")
            && text.contains("requestChecksumCalculation: \"WHEN_REQUIRED\""),
        "{text}"
    );
    assert!(!text.contains("corrupted"), "{text}");
    assert_eq!(
        backend.seen_auth.lock().unwrap().len(),
        1,
        "asked once, no retries"
    );
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn minimal_backend_that_returns_only_a_url_works_unchanged() {
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::Minimal, None, "").await;
    let s = staff_session(&backend.url, None);
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(5000, 3);
    let path = support::write(dir.path(), "notes.txt", &content);
    let (progress, _) = recorder();
    let r = s
        .upload(&path, &progress)
        .await
        .expect("upload through the minimal backend");
    assert!(
        r.location.ends_with("/test-bucket/staff/notes.txt"),
        "{}",
        r.location
    );
    assert_eq!(
        store.stored_sha256("staff/notes.txt"),
        Some(support::sha256_hex(&content))
    );
    assert_eq!(r.sha256, Some(support::sha256_hex(&content)));
}

#[tokio::test]
async fn missing_token_is_refused_with_what_to_do() {
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::Careful, Some("right"), "").await;
    let s = staff_session(&backend.url, None);
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "a.txt", b"a");
    let (progress, _) = recorder();
    let err = s.upload(&path, &progress).await.unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Transfer(TransferError::Sign(SignError::BackendRejected {
                status: 401,
                ..
            }))
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("missing or wrong token") && msg.contains("valid bearer token"),
        "{msg}"
    );
    assert_eq!(err.hint(), Some(hoist::error::Hint::CheckToken));
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn backend_redirect_is_not_followed_and_the_token_stays_home() {
    let elsewhere = Faulty::start(vec![]).await;
    let store = Store::start().await;
    let backend = Backend::start(
        store.store.signer(),
        Flavour::Redirect,
        None,
        &format!("{}/steal", elsewhere.url),
    )
    .await;
    let s = staff_session(&backend.url, Some("secret-bearer"));
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "a.txt", b"a");
    let (progress, _) = recorder();
    let err = s.upload(&path, &progress).await.unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Transfer(TransferError::Sign(SignError::BackendRedirect {
                status: 307
            }))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not follow redirects"));
    assert_eq!(elsewhere.count(), 0, "the other host must receive nothing");
    assert!(!err.to_string().contains("secret-bearer"));
}
