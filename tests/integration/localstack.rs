//! Against LocalStack, a second SigV4-verifying S3 that implements flexible checksums on every
//! operation: each algorithm, single and multipart, is verified — by the store where S3's rules
//! let it (single PUTs, full-object CRCs on Complete), by Hoist for SHA-256's composite checksum
//! — and a checksum that does not match the bytes is refused.

use std::sync::Arc;
use std::time::SystemTime;

use hoist::checksum::ChecksumAlgorithm;
use hoist::profile::{Mode, Profile};
use hoist::remote::s3::S3Client;
use hoist::remote::MultipartApi;
use hoist::session::Session;
use hoist::upload::{CheckedBy, Uploader};

use crate::support::localstack::LocalStack;
use crate::support::observed::Observed;
use crate::support::{self, sha256_hex};

const MIB: usize = 1024 * 1024;

fn session(
    ls: &LocalStack,
    bucket: &str,
    algorithm: ChecksumAlgorithm,
    api: Arc<dyn MultipartApi>,
) -> Session {
    session_with(ls, bucket, algorithm, api, |_| {})
}

fn session_with(
    ls: &LocalStack,
    bucket: &str,
    algorithm: ChecksumAlgorithm,
    api: Arc<dyn MultipartApi>,
    adjust: impl FnOnce(&mut Profile),
) -> Session {
    let mut p = Profile::new("ls", Mode::Local);
    p.prefix = format!("{algorithm}/");
    p.checksum = algorithm;
    adjust(&mut p);
    let (policy, _) = support::recorded_policy();
    Session::with_signer(p, Arc::new(ls.signer(bucket)), Uploader::new(policy)).with_multipart(
        api,
        8 * MIB as u64,
        5 * MIB as u64,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_verifies_every_checksum_algorithm_single_and_multipart() {
    let ls = LocalStack::start();
    let bucket = "hoist-checksums";
    ls.create_bucket(bucket).await;
    let dir = tempfile::tempdir().unwrap();
    for (i, algorithm) in ChecksumAlgorithm::ALL.into_iter().enumerate() {
        let api = Arc::new(S3Client::new(ls.signer(bucket)));
        let s = session(&ls, bucket, algorithm, api);
        for size in [3 * MIB + 1, 12 * MIB + 5] {
            let content = support::bytes(size, i as u8 + 40);
            let path = support::write(dir.path(), &format!("{algorithm}-{size}.bin"), &content);
            let (progress, _) = support::recorder();
            let r = s
                .upload(&path, &progress)
                .await
                .unwrap_or_else(|e| panic!("{algorithm} {size}: {e}"));
            let stored = ls.get(bucket, &r.key).await.expect("stored");
            assert_eq!(
                sha256_hex(&stored),
                sha256_hex(&content),
                "{algorithm} {size}"
            );
            let proof = r.integrity.expect("a proof");
            assert_eq!(proof.algorithm, algorithm.name(), "{algorithm} {size}");
            let multipart = size > 8 * MIB;
            let expected_by = match (multipart, algorithm.full_object()) {
                (true, false) => CheckedBy::Hoist,
                _ => CheckedBy::Storage,
            };
            assert_eq!(proof.checked_by, expected_by, "{algorithm} {size}: {proof}");
            if !multipart || algorithm.full_object() {
                assert_eq!(
                    proof.value,
                    algorithm.of(&content).value,
                    "{algorithm} {size}"
                );
            } else {
                assert!(proof.value.ends_with("-3"), "{proof}");
            }
        }
    }

    // A whole-object checksum that is not the file's is refused by the store, and nothing of
    // the upload stays behind.
    let api = Arc::new(Observed::completing_with_a_wrong_checksum(S3Client::new(
        ls.signer(bucket),
    )));
    let s = session(&ls, bucket, ChecksumAlgorithm::Crc64nvme, api);
    let path = support::write(dir.path(), "tampered.bin", &support::bytes(12 * MIB, 77));
    let (progress, _) = support::recorder();
    let err = s.upload(&path, &progress).await.unwrap_err();
    let key = s.queue().recent(1).unwrap().remove(0).key;
    assert!(
        ls.get(bucket, &key).await.is_none(),
        "{err}: the object was completed anyway"
    );
    let pending = S3Client::new(ls.signer(bucket))
        .list_multipart_uploads("crc64nvme/", SystemTime::now())
        .await
        .unwrap();
    assert!(
        pending.is_empty(),
        "the refused upload was aborted: {pending:?}"
    );
}

/// A request signed by this LocalStack's credentials; its status, headers and body.
async fn signed(
    ls: &LocalStack,
    bucket: &str,
    method: &str,
    url: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let signed = ls
        .signer(bucket)
        .presign(
            method,
            url,
            &[],
            std::time::Duration::from_secs(60),
            SystemTime::now(),
        )
        .unwrap();
    let r = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            signed,
        )
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().await.unwrap_or_default())
}

/// A profile's object settings are signed into the PUT and the CreateMultipartUpload, and the
/// store keeps them: encryption, storage class, Cache-Control, Content-Disposition, metadata,
/// tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_keeps_the_object_settings_of_a_profile() {
    let ls = LocalStack::start();
    let bucket = "hoist-settings";
    ls.create_bucket(bucket).await;
    let mut p = Profile::new("ls", Mode::Local);
    p.prefix = "settings/".into();
    p.object = hoist::object::ObjectSettings {
        encryption: Some("AES256".into()),
        storage_class: Some("STANDARD_IA".into()),
        cache_control: Some("max-age=60".into()),
        content_disposition: Some("attachment".into()),
        metadata: [("team".to_string(), "design".to_string())].into(),
        tags: [("project".to_string(), "apollo 11".to_string())].into(),
        ..Default::default()
    };
    p.validate().unwrap();
    let (policy, _) = support::recorded_policy();
    let s = Session::with_signer(p, Arc::new(ls.signer(bucket)), Uploader::new(policy))
        .with_multipart(
            Arc::new(S3Client::new(ls.signer(bucket))),
            8 * MIB as u64,
            5 * MIB as u64,
        );
    let dir = tempfile::tempdir().unwrap();
    for size in [3 * MIB, 12 * MIB] {
        let path = support::write(
            dir.path(),
            &format!("s-{size}.bin"),
            &support::bytes(size, 3),
        );
        let (progress, _) = support::recorder();
        let r = s.upload(&path, &progress).await.unwrap();
        let url = ls.signer(bucket).object_url(&r.key);
        let (status, h, _) = signed(&ls, bucket, "HEAD", &url).await;
        assert_eq!(status, 200);
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(get("x-amz-server-side-encryption"), "AES256", "{size}");
        assert_eq!(
            r.encryption.as_deref(),
            Some("AES256"),
            "{size}: the receipt says what the store reported"
        );
        assert_eq!(get("x-amz-storage-class"), "STANDARD_IA", "{size}");
        assert_eq!(get("cache-control"), "max-age=60", "{size}");
        assert_eq!(get("content-disposition"), "attachment", "{size}");
        assert_eq!(get("x-amz-meta-team"), "design", "{size}");
        let (status, _, tagging) = signed(&ls, bucket, "GET", &format!("{url}?tagging")).await;
        assert_eq!(status, 200);
        assert!(
            tagging.contains("<Key>project</Key>") && tagging.contains("<Value>apollo 11</Value>"),
            "{size}: {tagging}"
        );
    }
}

/// MD5 is the costliest digest, and S3 checks each part by its checksum: once LocalStack has
/// answered a part with its checksum, later parts go without an MD5. Paused and resumed, the
/// parts journaled without one are checked against the file by their checksum and kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_go_without_md5_once_the_store_answers_with_their_checksums() {
    use hoist::upload::{ProgressFn, TransferEvent};
    let ls = LocalStack::start();
    let bucket = "hoist-no-md5";
    ls.create_bucket(bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(40 * MIB, 9);
    let path = support::write(dir.path(), "big.bin", &content);
    let crc = ChecksumAlgorithm::Crc64nvme;
    let one_at_a_time = |p: &mut Profile| p.concurrency = 1;

    let first = Arc::new(Observed::new(S3Client::new(ls.signer(bucket))));
    let s = session_with(
        &ls,
        bucket,
        crc,
        Arc::clone(&first) as Arc<dyn hoist::remote::MultipartApi>,
        one_at_a_time,
    );
    let control = s.control().clone();
    let pause_after_five: ProgressFn = Arc::new(move |e| {
        if matches!(e, TransferEvent::Sent { bytes, .. } if bytes >= 5 * 5 * MIB as u64) {
            control.pause();
        }
    });
    s.upload(&path, &pause_after_five)
        .await
        .expect_err("paused");
    let (with, without) = first.md5_split();
    assert_eq!(
        with,
        vec![1],
        "only the first part needs an MD5: {with:?} {without:?}"
    );
    let item = s
        .queue()
        .unfinished("ls", &s.profile().mode.destination())
        .unwrap()
        .remove(0);
    let journaled = s.queue().parts(item.id).unwrap();
    assert!(
        journaled.iter().filter(|p| p.md5_hex.is_empty()).count() >= 2,
        "parts journaled without an MD5: {journaled:?}"
    );

    let second = Arc::new(Observed::new(S3Client::new(ls.signer(bucket))));
    let resumed = session_with(
        &ls,
        bucket,
        crc,
        Arc::clone(&second) as Arc<dyn hoist::remote::MultipartApi>,
        one_at_a_time,
    )
    .with_queue(Arc::clone(s.queue()));
    let (progress, _) = support::recorder();
    let r = resumed.upload(&path, &progress).await.expect("resumed");
    let sent_again: Vec<u32> = second
        .signed
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert!(
        journaled
            .iter()
            .all(|p| !sent_again.contains(&p.part_number)),
        "journaled parts were kept: sent again {sent_again:?}"
    );
    assert_eq!(
        sha256_hex(&ls.get(bucket, &r.key).await.expect("stored")),
        sha256_hex(&content)
    );
    support::assert_proof(&r, "crc64nvme", &crc.of(&content).value, CheckedBy::Storage);
}
