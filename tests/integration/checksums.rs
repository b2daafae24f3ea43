//! S3's flexible checksums on the SigV4-verifying store (s3s-fs checks `x-amz-checksum-*` on
//! PutObject): each algorithm is computed while the file is read, signed into the request,
//! verified by the store against the bytes, echoed back and recorded in the receipt.

use std::sync::Arc;
use std::time::SystemTime;

use hoist::checksum::ChecksumAlgorithm;
use hoist::session::Session;
use hoist::sign::sigv4::SigV4Signer;
use hoist::sign::{PresignedPut, PutRequest, SignError, Signer};
use hoist::upload::{CheckedBy, TransferError, Uploader};

use crate::support::{self, Store};

fn session(store: &Store, algorithm: ChecksumAlgorithm, signer: Arc<dyn Signer>) -> Session {
    let mut p = store.self_sign_profile("sums");
    p.checksum = algorithm;
    p.prefix = "sums/".into();
    let (policy, _) = support::recorded_policy();
    Session::with_signer(p, signer, Uploader::new(policy))
}

#[tokio::test]
async fn each_algorithm_is_signed_verified_by_the_store_and_recorded() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    for (i, algorithm) in ChecksumAlgorithm::ALL.into_iter().enumerate() {
        // One file read whole and sent from memory, one streamed from disk.
        for size in [100_000, 3 * 1024 * 1024 + 7] {
            let s = session(&store, algorithm, Arc::new(store.store.signer()));
            let content = support::bytes(size, i as u8);
            let path = support::write(dir.path(), &format!("{algorithm}-{size}.bin"), &content);
            let (progress, _) = support::recorder();
            let r = s.upload(&path, &progress).await.expect("lands");
            assert_eq!(
                store.stored_sha256(&r.key),
                Some(support::sha256_hex(&content))
            );
            let proof = r.integrity.expect("a proof");
            assert_eq!(proof.algorithm, algorithm.name(), "{algorithm}");
            assert_eq!(proof.value, algorithm.of(&content).value, "{algorithm}");
            assert_eq!(proof.checked_by, CheckedBy::Storage);
            // The history keeps it.
            let item = s.queue().recent(1).unwrap().remove(0);
            assert!(
                item.integrity
                    .unwrap()
                    .starts_with(&format!("{algorithm} ")),
                "{algorithm}"
            );
        }
    }
}

/// Signs the request with another body's checksum: what corruption between reading the file
/// and the store would look like.
struct WrongChecksum(SigV4Signer);

#[async_trait::async_trait]
impl Signer for WrongChecksum {
    async fn presign_put(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        let mut req = req.clone();
        if let Some(c) = req.checksum.as_mut() {
            *c = c.algorithm.of(b"other bytes");
        }
        self.0.presign_put(&req, now).await
    }
}

/// A signer that signs another checksum than the one Hoist computed is refused by the store;
/// Hoist blames the signer, once, instead of retrying as if the network had corrupted it.
#[tokio::test]
async fn bytes_that_do_not_match_the_signed_checksum_are_refused_by_the_store() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    let s = session(
        &store,
        ChecksumAlgorithm::Crc64nvme,
        Arc::new(WrongChecksum(store.store.signer())),
    );
    let path = support::write(dir.path(), "x.bin", &support::bytes(5000, 9));
    let (progress, _) = support::recorder();
    let err = s.upload(&path, &progress).await.unwrap_err();
    assert!(
        matches!(
            err,
            hoist::session::UploadError::Transfer(TransferError::Rejected(_))
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("does not match the crc64nvme checksum"),
        "{err}"
    );
    // (s3s-fs moves a PUT's bytes into place before it checks them, so a refused PUT leaves
    // an object there; S3 stores nothing. A store quirk, in docs/INTEROP.md.)
}

/// A multipart upload of `content` in 5 MiB parts through an API that notes each part's MD5;
/// the receipt and which part numbers were signed with an MD5 and which without.
async fn observed_multipart(
    store: &Store,
    content: &[u8],
) -> (hoist::upload::UploadReceipt, (Vec<u32>, Vec<u32>)) {
    use crate::support::observed::Observed;
    use hoist::remote::s3::S3Client;
    let api = Arc::new(Observed::new(S3Client::new(store.store.signer())));
    let mib = 1024 * 1024;
    let mut s = session(
        store,
        ChecksumAlgorithm::Crc64nvme,
        Arc::new(store.store.signer()),
    );
    s = s.with_multipart(
        Arc::clone(&api) as Arc<dyn hoist::remote::MultipartApi>,
        5 * mib,
        5 * mib,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "big.bin", content);
    let (progress, _) = support::recorder();
    let r = s.upload(&path, &progress).await.expect("lands");
    assert_eq!(
        store.stored_sha256(&r.key),
        Some(support::sha256_hex(content))
    );
    let split = api.md5_split();
    (r, split)
}

/// A store that answers parts with neither a checksum nor a check of one (s3s-fs alone): every
/// part keeps its MD5 (sent as `Content-MD5`, compared with the part's ETag), the only proof.
#[tokio::test]
async fn every_part_keeps_its_md5_where_the_store_does_not_answer_part_checksums() {
    let store = Store::start_without_part_checks().await;
    let content = support::bytes(12 * 1024 * 1024, 5);
    let (r, (with, without)) = observed_multipart(&store, &content).await;
    assert_eq!((with.len(), without), (3, vec![]), "{with:?}");
    let proof = r.integrity.expect("a proof");
    assert_eq!(
        (proof.algorithm.as_str(), proof.checked_by),
        ("md5", CheckedBy::Hoist)
    );
}

/// The embedded store checks each part's checksum and answers it, as S3 does: after the first
/// part's answer, parts go without an MD5, each proved by the checksum it came back with.
#[tokio::test]
async fn the_embedded_store_checks_part_checksums_so_parts_need_no_md5() {
    let store = Store::start().await;
    // More parts than go at once: those that start after the store answered need no MD5.
    let parts = hoist::upload::parts::PARTS_IN_FLIGHT_PER_FILE + 4;
    let content = support::bytes(parts * 5 * 1024 * 1024 + 100, 8);
    let (r, (with, without)) = observed_multipart(&store, &content).await;
    assert!(
        with.contains(&1) && !without.is_empty(),
        "{with:?} {without:?}"
    );
    support::assert_proof(
        &r,
        "crc64nvme",
        &ChecksumAlgorithm::Crc64nvme.of(&content).value,
        CheckedBy::Hoist,
    );
}

/// A part whose bytes are not what its signed checksum or its Content-MD5 says is refused by
/// the embedded store (BadDigest), and the part it would have replaced is kept.
#[tokio::test]
async fn the_embedded_store_refuses_a_part_that_does_not_match_its_checksum() {
    use hoist::remote::s3::S3Client;
    use hoist::remote::{MultipartApi, PartToSign};
    use hoist::sign::PutRequest;
    let store = Store::start().await;
    let client = S3Client::new(store.store.signer());
    let crc = ChecksumAlgorithm::Crc32c;
    let target = client
        .create(
            &PutRequest {
                key: "sums/parts.bin".into(),
                file_name: "parts.bin".into(),
                content_type: "application/octet-stream".into(),
                size: 10,
                sha256_b64: String::new(),
                md5_b64: String::new(),
                part_size: Some(10),
                checksum: Some(crc.of(b"")),
                object: vec![],
                ..Default::default()
            },
            SystemTime::now(),
        )
        .await
        .unwrap();
    let body = b"0123456789".to_vec();
    let put = |checksum: hoist::checksum::Checksum, md5: Option<String>, body: Vec<u8>| {
        let (client, target) = (&client, &target);
        async move {
            let p = client
                .sign_part(
                    target,
                    &PartToSign {
                        number: 1,
                        len: body.len() as u64,
                        md5_b64: md5.as_deref(),
                        checksum: Some(&checksum),
                    },
                    SystemTime::now(),
                )
                .await
                .unwrap();
            let mut req = reqwest::Client::new().put(p.url.clone()).body(body);
            for (n, v) in &p.headers {
                req = req.header(n, v);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let echoed = r
                .headers()
                .get(crc.header())
                .map(|v| v.to_str().unwrap().to_string());
            (status, echoed, r.text().await.unwrap())
        }
    };
    let (status, echoed, _) = put(crc.of(&body), None, body.clone()).await;
    assert_eq!((status, echoed), (200, Some(crc.of(&body).value)));
    let other = b"9876543210".to_vec();
    let (status, _, text) = put(crc.of(&body), None, other.clone()).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("BadDigest") && text.contains("CRC32C"),
        "{text}"
    );
    use base64::Engine as _;
    use md5::Digest as _;
    let md5_of = |b: &[u8]| -> [u8; 16] { md5::Md5::digest(b).into() };
    // The MD5 of the first body with the checksum of the second: the MD5 does not match.
    let wrong_md5 = Some(base64::engine::general_purpose::STANDARD.encode(md5_of(&body)));
    let (status, _, text) = put(crc.of(&other), wrong_md5, other.clone()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Content-MD5"), "{text}");
    // The part first sent is the one kept.
    let parts = MultipartApi::list_parts(&client, &target, SystemTime::now())
        .await
        .unwrap();
    assert_eq!((parts.len(), parts[0].size), (1, 10));
    // Regression (#33): the embedded store listed parts with an empty ETag, so Uppy's resume
    // could not tell which parts had landed and sent them all again.
    assert_eq!(parts[0].etag, format!("\"{}\"", hex::encode(md5_of(&body))));
    let done = MultipartApi::complete(
        &client,
        &target,
        &[hoist::remote::CompletedPart {
            number: 1,
            etag: format!(
                "\"{}\"",
                md5_of(&body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
            checksum: Some(crc.of(&body)),
        }],
        None,
        SystemTime::now(),
    )
    .await
    .unwrap();
    assert!(done.etag.is_some());
    assert_eq!(
        store.stored_sha256("sums/parts.bin"),
        Some(support::sha256_hex(&body))
    );
}
