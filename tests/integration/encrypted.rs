//! Buckets that encrypt with SSE-KMS (DSSE-KMS and SSE-C alike): their ETags are not the MD5 of
//! the content, so integrity cannot rest on them. Through a front that answers as such a bucket
//! does (`aws:kms`, non-MD5 ETags), uploads land intact, each body still checked by the store
//! against its `Content-MD5`.

use std::sync::Arc;

use hoist::profile::{Mode, Profile};
use hoist::remote::s3::S3Client;
use hoist::secret::Secret;
use hoist::session::Session;
use hoist::sign::sigv4::SigV4Signer;
use hoist::upload::Uploader;

use crate::support::kms_front::{kms_etag, KmsFront};
use crate::support::{self, Store, ACCESS_KEY_ID, SECRET_ACCESS_KEY};

const MIB: usize = 1024 * 1024;

async fn session_through_kms(store: &Store) -> (Session, KmsFront) {
    let front = KmsFront::start(store.store.endpoint().as_str()).await;
    let signer = SigV4Signer::new(
        "test-bucket",
        "us-east-1",
        ACCESS_KEY_ID,
        Secret::new(SECRET_ACCESS_KEY),
    )
    .with_endpoint(url::Url::parse(&front.url).unwrap(), true);
    let mut p = Profile::new("kms", Mode::Local);
    p.prefix = "enc/".into();
    let (policy, _) = support::recorded_policy();
    let session = Session::with_signer(p, Arc::new(signer.clone()), Uploader::new(policy))
        .with_multipart(
            Arc::new(S3Client::new(signer)),
            16 * MIB as u64,
            5 * MIB as u64,
        );
    (session, front)
}

/// Regression (field report): a self-signed 40 MiB upload to an SSE-KMS bucket failed with
/// "part 2 arrived with ETag …, not its MD5" after three attempts.
#[tokio::test]
async fn multipart_uploads_to_a_kms_bucket_land_intact() {
    let store = Store::start().await;
    let (s, _front) = session_through_kms(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(40 * MIB + 17, 5);
    let path = support::write(dir.path(), "ledger.bin", &content);
    let (progress, _) = support::recorder();
    let receipt = s.upload(&path, &progress).await.expect("lands");
    assert_eq!(
        store.stored_sha256(&receipt.key),
        Some(support::sha256_hex(&content))
    );
    assert_eq!(store.pending_uploads(), 0);
    // The receipt carries the bucket's ETag, not one computed from MD5s.
    let etag = receipt.etag.expect("an ETag");
    assert!(etag.ends_with("-9"), "{etag}");
    assert_eq!(etag, kms_etag(&etag_of_store(&store, &receipt.key).await));
}

#[tokio::test]
async fn single_uploads_to_a_kms_bucket_land_intact() {
    let store = Store::start().await;
    let (s, _front) = session_through_kms(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(3 * MIB, 6);
    let path = support::write(dir.path(), "memo.bin", &content);
    let (progress, _) = support::recorder();
    let receipt = s.upload(&path, &progress).await.expect("lands");
    assert_eq!(
        store.stored_sha256(&receipt.key),
        Some(support::sha256_hex(&content))
    );
    // Proved by the checksum the store verified, not by the (non-MD5) ETag.
    let proof = receipt.integrity.expect("a proof");
    assert_eq!(proof.algorithm, "crc64nvme");
    assert_eq!(proof.checked_by, hoist::upload::CheckedBy::Storage);
}

/// The ETag the store itself gives the object (HEAD on the store, not through the front).
async fn etag_of_store(store: &Store, key: &str) -> String {
    S3Client::new(store.store.signer())
        .head(key, std::time::SystemTime::now())
        .await
        .unwrap()
        .unwrap()
        .etag
}
