//! Staff mode through the real Uppy Companion (`@uppy/companion` 6.2.2) in front of the
//! SigV4-verifying store: small files go up as S3 POST forms (what Companion's `/s3/params`
//! answers), large ones in parts.

use std::sync::Arc;

use hoist::backend::companion::CompanionClient;
use hoist::profile::{Mode, Profile, Protocol};
use hoist::remote::MultipartApi;
use hoist::session::Session;
use hoist::upload::Uploader;

use crate::support::companion::{Checksums, Companion};
use crate::support::{self, Store};

const MIB: usize = 1024 * 1024;

fn session_through(companion: &Companion) -> Session {
    let client =
        Arc::new(CompanionClient::new(url::Url::parse(&companion.url).unwrap(), None).unwrap());
    let profile = Profile::new(
        "companion",
        Mode::Backend {
            url: companion.url.clone(),
            protocol: Protocol::Companion,
            token: false,
        },
    );
    let (policy, _) = support::recorded_policy();
    Session::with_signer(
        profile,
        Arc::clone(&client) as Arc<dyn hoist::sign::Signer>,
        Uploader::new(policy),
    )
    .with_multipart(
        client as Arc<dyn MultipartApi>,
        16 * MIB as u64,
        8 * MIB as u64,
    )
}

/// Regression (field report): every file under the multipart threshold failed with "403
/// AccessDenied: Signature is required": Companion answers a POST form, and Hoist PUT to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_companion_takes_a_post_form_and_a_multipart_upload() {
    let store = Store::start().await;
    let companion = Companion::start(&store, Checksums::WhenRequired);
    let s = session_through(&companion);
    let dir = tempfile::tempdir().unwrap();

    let small = support::bytes(2 * MIB, 21);
    let path = support::write(dir.path(), "brochure.pdf.bin", &small);
    let (progress, events) = support::recorder();
    let r = s
        .upload(&path, &progress)
        .await
        .expect("a POST form upload");
    assert_eq!(
        store.stored_sha256(&r.key),
        Some(support::sha256_hex(&small))
    );
    assert!(r.key.ends_with("brochure.pdf.bin"), "{}", r.key);
    let sent = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            hoist::upload::TransferEvent::Sent { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .max();
    assert_eq!(
        sent,
        Some(small.len() as u64),
        "progress counts the file's bytes"
    );

    let big = support::bytes(40 * MIB + 3, 22);
    let path = support::write(dir.path(), "footage.bin", &big);
    let (progress, _) = support::recorder();
    let r = s
        .upload(&path, &progress)
        .await
        .expect("a multipart upload");
    assert_eq!(store.stored_sha256(&r.key), Some(support::sha256_hex(&big)));
    assert_eq!(store.pending_uploads(), 0);
}

/// With the AWS SDK's default checksums, Companion signs every part for an empty body, which S3
/// refuses: Hoist says so before sending, naming the setting to change, instead of failing
/// part after part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companion_on_sdk_defaults_is_explained() {
    let store = Store::start().await;
    let companion = Companion::start(&store, Checksums::SdkDefault);
    let s = session_through(&companion);
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "footage.bin", &support::bytes(20 * MIB, 23));
    let (progress, _) = support::recorder();
    let err = s.upload(&path, &progress).await.unwrap_err().to_string();
    assert!(
        err.contains("signed for an empty body")
            && err.contains("AWS_REQUEST_CHECKSUM_CALCULATION"),
        "{err}"
    );
    assert_eq!(store.pending_uploads(), 0, "the upload was aborted");
}
