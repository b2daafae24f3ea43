//! End to end over real HTTP: the server, the SigV4-verifying store, Hoist's core as a client
//! and a plain HTTP client acting like the article's browser code.

use std::sync::Arc;

use axum::response::IntoResponse;
use hoist::backend::simple::BackendSigner;
use hoist::profile::{Mode, Profile};
use hoist::retry::RetryPolicy;
use hoist::secret::Secret;
use hoist::session::Session;
use hoist::upload::Uploader;
use serde_json::{json, Value};

use hoist_server::config::PolicyConfig;

use crate::{sha256, token, Harness, ALICE};

async fn serve(h: &Harness) -> String {
    crate::listen(h.router.clone()).await
}

/// Hoist's core as staff run it: the simple protocol against this server, Alice's token.
pub(crate) fn staff_session(base: &str) -> Session {
    staff_session_retrying(base, RetryPolicy::default())
}

/// [`staff_session`] retrying as `retry` says.
pub(crate) fn staff_session_retrying(base: &str, retry: RetryPolicy) -> Session {
    let signer = BackendSigner::new(
        url::Url::parse(&format!("{base}/api/upload")).unwrap(),
        Some(Secret::new(ALICE)),
    )
    .unwrap();
    let profile = Profile::new(
        "staff",
        Mode::Backend {
            url: format!("{base}/api/upload"),
            protocol: Default::default(),
            token: true,
        },
    );
    Session::with_signer(profile, Arc::new(signer), Uploader::new(retry))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn hoist_core_uploads_through_the_server_into_the_store() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let session = staff_session(&base);
    let dir = tempfile::tempdir().unwrap();
    let content = bytes(1_500_000);
    let path = dir.path().join("Quarterly.pdf");
    std::fs::write(&path, &content).unwrap();
    let progress: hoist::upload::ProgressFn = Arc::new(|_| {});
    let r = session
        .upload(&path, &progress)
        .await
        .expect("upload through hoist-server");
    assert!(r.key.starts_with("uploads/alice/"), "{}", r.key);
    assert_eq!(sha256(&h.stored(&r.key).expect("stored")), sha256(&content));
    assert_eq!(r.sha256, Some(sha256(&content)));
}

#[tokio::test]
async fn a_browser_style_client_sending_only_the_name_uploads_too() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let c = client();
    // What the article's React code does: POST {fileName}, read {url}, PUT the file with its type
    // (and the headers the answer lists).
    let answer: Value = c
        .post(format!("{base}/api/upload"))
        .bearer_auth(ALICE)
        .json(&json!({"fileName": "cat.png"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = answer["url"].as_str().unwrap();
    let content = bytes(70_000);
    let put = c
        .put(url)
        .header("content-type", "image/png")
        .header("if-none-match", "*")
        .header("content-disposition", "attachment")
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
    assert_eq!(
        sha256(&h.stored(answer["key"].as_str().unwrap()).unwrap()),
        sha256(&content)
    );
}

async fn signed_for(base: &str, size: u64, content_type: &str) -> Value {
    alice_post(
        &format!("{base}/api/upload"),
        json!({"fileName": "doc.txt", "contentType": content_type, "size": size}),
    )
    .await
}

#[tokio::test]
async fn the_store_refuses_another_size_or_type_than_signed() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let c = client();
    let a = signed_for(&base, 10, "text/plain").await;
    let r = c
        .put(a["url"].as_str().unwrap())
        .header("content-type", "text/plain")
        .header("if-none-match", "*")
        .body(vec![b'x'; 11])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "other size: {:?}", r.text().await);
    let b = signed_for(&base, 10, "text/plain").await;
    let r = c
        .put(b["url"].as_str().unwrap())
        .header("content-type", "text/html")
        .header("if-none-match", "*")
        .body(vec![b'x'; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "other type");
    assert!(
        h.stored(a["key"].as_str().unwrap()).is_none()
            && h.stored(b["key"].as_str().unwrap()).is_none()
    );
}

async fn create(base: &str, size: u64) -> (String, String) {
    let r = alice_post(
        &format!("{base}/s3/multipart"),
        json!({"filename": "big.bin", "type": "application/octet-stream", "metadata": {}, "size": size}),
    )
    .await;
    (
        r["key"].as_str().unwrap().to_string(),
        r["uploadId"].as_str().unwrap().to_string(),
    )
}

/// Completes a Companion multipart upload with `parts` (`{PartNumber, ETag}` objects).
async fn complete(base: &str, key: &str, id: &str, parts: &[Value]) -> reqwest::Response {
    client()
        .post(format!(
            "{base}/s3/multipart/{}/complete?key={}",
            enc(id),
            enc(key)
        ))
        .bearer_auth(ALICE)
        .json(&json!({ "parts": parts }))
        .send()
        .await
        .unwrap()
}

/// POST `body` to `url` with Alice's token; the JSON answer.
async fn alice_post(url: &str, body: Value) -> Value {
    as_alice(client().post(url).json(&body)).await
}

/// GET `url` with Alice's token; the JSON answer.
async fn alice_get(url: &str) -> Value {
    as_alice(client().get(url)).await
}

/// Sends `request` with Alice's token; the JSON answer.
async fn as_alice(request: reqwest::RequestBuilder) -> Value {
    request
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn put_parts(base: &str, key: &str, id: &str, parts: &[&[u8]]) -> Vec<Value> {
    let c = client();
    let numbers: Vec<String> = (1..=parts.len()).map(|n| n.to_string()).collect();
    let batch = alice_get(&format!(
        "{base}/s3/multipart/{}/batch?key={}&partNumbers={}",
        enc(id),
        enc(key),
        numbers.join(",")
    ))
    .await;
    let mut done = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let url = batch["presignedUrls"][(i + 1).to_string()]
            .as_str()
            .unwrap();
        let r = c.put(url).body(body.to_vec()).send().await.unwrap();
        assert!(
            r.status().is_success(),
            "part {}: {:?}",
            i + 1,
            r.text().await
        );
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        done.push(json!({"PartNumber": i + 1, "ETag": etag}));
    }
    done
}

#[tokio::test]
async fn companion_multipart_upload_lands_intact() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let content = bytes(5 * 1024 * 1024 + 4321);
    let (key, id) = create(&base, content.len() as u64).await;
    let (p1, p2) = content.split_at(5 * 1024 * 1024);
    let parts = put_parts(&base, &key, &id, &[p1, p2]).await;
    let c = client();
    let listed: Value = c
        .get(format!(
            "{base}/s3/multipart/{}?key={}",
            enc(&id),
            enc(&key)
        ))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[1]["Size"], p2.len() as u64);
    let r = complete(&base, &key, &id, &parts).await;
    let status = r.status();
    let done: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{done}");
    assert_eq!(done["key"], key);
    assert!(done["location"].as_str().unwrap().ends_with(&key));
    assert_eq!(
        sha256(&h.stored(&key).expect("completed object")),
        sha256(&content)
    );
    assert_eq!(h.pending_parts(), 0);
}

/// Signs part `n` alone and PUTs `body` to it; the store's answer.
async fn put_part(base: &str, key: &str, id: &str, n: u32, body: Vec<u8>) -> reqwest::Response {
    let signed = alice_get(&format!(
        "{base}/s3/multipart/{}/{n}?key={}",
        enc(id),
        enc(key)
    ))
    .await;
    client()
        .put(signed["url"].as_str().unwrap())
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Regression (parts not bound to a length, security review): part URLs signed only `host`, so
/// a 20 MiB part was accepted for a 1-byte upload and stayed in the store.
#[tokio::test]
async fn parts_of_another_length_than_declared_are_refused_by_the_store() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let (key, id) = create(&base, 1).await;
    let r = put_part(&base, &key, &id, 1, bytes(20 * 1024 * 1024)).await;
    assert_eq!(r.status(), 403, "the store checks the signed length");
    assert_eq!(h.pending_parts(), 0, "nothing of the oversized part stays");

    // A part the length of its plan lands; the last part is the remainder.
    let declared = 5 * 1024 * 1024 + 10;
    let (key, id) = create(&base, declared).await;
    let r = put_part(&base, &key, &id, 2, bytes(5000)).await;
    assert_eq!(r.status(), 403, "part 2 of this upload is 10 bytes");
    let content = bytes(declared as usize);
    let (p1, p2) = content.split_at(5 * 1024 * 1024);
    let parts = put_parts(&base, &key, &id, &[p1, p2]).await;
    // Complete needs every part (and, where the store lists ETags, the ones it gave).
    let r = complete(&base, &key, &id, &parts[..1]).await;
    assert_eq!(r.status(), 400, "a missing part is named");
    let r = complete(&base, &key, &id, &parts).await;
    assert!(r.status().is_success(), "{:?}", r.text().await);
    assert_eq!(sha256(&h.stored(&key).unwrap()), sha256(&content));
    assert_eq!(h.pending_parts(), 0);
}

/// A client that cuts its own parts says so at create and gets URLs for that cut.
#[tokio::test]
async fn a_client_part_size_is_sealed_and_bounds_its_parts() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let part = 6 * 1024 * 1024;
    let r: Value = client()
        .post(format!("{base}/s3/multipart"))
        .bearer_auth(ALICE)
        .json(&json!({"filename": "big.bin", "type": "application/octet-stream", "size": part + 1, "partSize": part}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (key, id) = (r["key"].as_str().unwrap(), r["uploadId"].as_str().unwrap());
    let r = put_part(&base, key, id, 1, bytes(5 * 1024 * 1024)).await;
    assert_eq!(r.status(), 403, "part 1 is 6 MiB, not Uppy's 5");
    let r = put_part(&base, key, id, 1, bytes(part as usize)).await;
    assert!(r.status().is_success());
    let r = client()
        .post(format!("{base}/s3/multipart"))
        .bearer_auth(ALICE)
        .json(&json!({"filename": "big.bin", "size": 100 * 1024 * 1024, "partSize": 1024}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "parts under S3's 5 MiB are refused at create"
    );
}

/// Regression (size-limit bypass, security review): a multipart upload declared with size 0 was
/// sealed as "no size", so any part number was signed and Complete skipped the size check; a
/// 15 MiB object was stored under a 10 MiB limit.
#[tokio::test]
async fn a_declared_size_of_zero_is_zero_not_undeclared() {
    let policy = PolicyConfig {
        max_size: Some(10 * 1024 * 1024),
        ..PolicyConfig::default()
    };
    let limited = Harness::with(policy, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let base = serve(&limited).await;
    let r = client()
        .post(format!("{base}/s3/multipart"))
        .bearer_auth(ALICE)
        .json(&json!({"filename": "big.bin", "type": "application/octet-stream", "size": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "a limit applies: 0 bytes in parts is refused"
    );

    // Without a limit, a declared 0 still bounds the upload: one part, of 0 bytes.
    let h = Harness::new().await;
    let base = serve(&h).await;
    let (key, id) = create(&base, 0).await;
    let r = client()
        .get(format!(
            "{base}/s3/multipart/{}/2?key={}",
            enc(&id),
            enc(&key)
        ))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "part 2 of a 0-byte upload is not signed");
    let r = put_part(&base, &key, &id, 1, bytes(5 * 1024 * 1024)).await;
    assert_eq!(r.status(), 403, "a 5 MiB part 1 is refused");
    let r = complete(
        &base,
        &key,
        &id,
        &[json!({"PartNumber": 1, "ETag": "\"x\""})],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(
        limited.stored(&key).is_none() && h.stored(&key).is_none(),
        "nothing stored"
    );
    assert_eq!(h.pending_parts(), 0, "no orphan parts left");
}

#[tokio::test]
async fn hoist_core_uploads_large_files_in_parts_over_the_companion_protocol() {
    use hoist::upload::parts::multipart_etag;
    use md5::Digest;

    let h = Harness::new().await;
    let base = serve(&h).await;
    let session = crate::companion_session(&base);
    let dir = tempfile::tempdir().unwrap();
    let progress: hoist::upload::ProgressFn = Arc::new(|_| {});

    let big = bytes(12 * 1024 * 1024 + 17);
    let path = dir.path().join("footage.bin");
    std::fs::write(&path, &big).unwrap();
    let r = session
        .upload(&path, &progress)
        .await
        .expect("multipart through the companion endpoints");
    assert!(r.key.starts_with("uploads/alice/"), "{}", r.key);
    assert_eq!(sha256(&h.stored(&r.key).expect("stored")), sha256(&big));
    let md5s: Vec<[u8; 16]> = big
        .chunks(5 * 1024 * 1024)
        .map(|c| md5::Md5::digest(c).into())
        .collect();
    assert_eq!(r.etag, Some(multipart_etag(&md5s)));
    assert_eq!(h.pending_parts(), 0);

    let small = bytes(1000);
    let path = dir.path().join("note.txt");
    std::fs::write(&path, &small).unwrap();
    let r = session
        .upload(&path, &progress)
        .await
        .expect("single PUT via /s3/params");
    assert_eq!(sha256(&h.stored(&r.key).expect("stored")), sha256(&small));
}

/// Regression (memory before authentication, security review): the server read a request's
/// whole body before checking its token, so wrong-token clients sending large bodies (or never
/// finishing them) held memory and connections. Now a wrong token is answered before any body.
#[tokio::test]
async fn a_wrong_token_is_refused_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::new().await;
    let base = serve(&h).await;
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Headers that announce 2 MB, and not one byte of them.
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer wrong-token-0123456789abcdef0123\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");

    // Admitted, a body over the limit is refused too.
    let big = format!("{{\"fileName\": \"{}\"}}", "x".repeat(64 * 1024));
    let r = client()
        .post(format!("{base}/api/upload"))
        .bearer_auth(ALICE)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// The policy's object settings are signed into every upload, so a client cannot leave them
/// out (a bucket policy that requires encryption then accepts every upload), and the store
/// keeps them; a client may not replace the server's choice.
#[tokio::test]
async fn the_policys_object_settings_are_signed_into_every_upload() {
    let policy = PolicyConfig {
        object: hoist::object::ObjectSettings {
            encryption: Some("AES256".into()),
            cache_control: Some("private, max-age=0".into()),
            metadata: [("uploaded-by".to_string(), "hoist-server".to_string())].into(),
            ..Default::default()
        },
        ..PolicyConfig::default()
    };
    let h = Harness::with(policy, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let base = serve(&h).await;
    let signed = signed_for(&base, 3, "text/plain").await;
    assert_eq!(signed["headers"]["x-amz-server-side-encryption"], "AES256");
    assert_eq!(signed["headers"]["cache-control"], "private, max-age=0");
    assert_eq!(signed["headers"]["x-amz-meta-uploaded-by"], "hoist-server");
    let url = url::Url::parse(signed["url"].as_str().unwrap()).unwrap();
    let signed_headers = url
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-SignedHeaders")
        .unwrap()
        .1
        .into_owned();
    for h in [
        "x-amz-server-side-encryption",
        "cache-control",
        "x-amz-meta-uploaded-by",
    ] {
        assert!(signed_headers.contains(h), "{h} in {signed_headers}");
    }
    // Sent without the encryption header, the upload is refused by the store.
    let c = client();
    let mut without = c.put(url.clone()).body("abc");
    for (k, v) in signed["headers"].as_object().unwrap() {
        if k != "x-amz-server-side-encryption" {
            without = without.header(k, v.as_str().unwrap());
        }
    }
    assert_eq!(without.send().await.unwrap().status(), 403);
    // Sent as signed, it lands.
    let mut with = c.put(url).body("abc");
    for (k, v) in signed["headers"].as_object().unwrap() {
        with = with.header(k, v.as_str().unwrap());
    }
    let r = with.send().await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    assert_eq!(h.stored(signed["key"].as_str().unwrap()).unwrap(), b"abc");

    // Multipart uploads are created with them too.
    let (key, _) = create(&base, 6 * 1024 * 1024).await;
    assert!(key.starts_with("uploads/alice/"));
}

/// The signed headers of a presigned URL.
fn signed_headers(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-SignedHeaders")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// An upload created with a checksum algorithm gets part URLs that sign each part's checksum,
/// so the store verifies it (and a client cannot send the part with another or none); Complete
/// passes the parts' and the whole object's checksums on.
#[tokio::test]
async fn part_checksums_a_client_sends_are_signed_into_its_part_urls() {
    use hoist::checksum::ChecksumAlgorithm;
    let h = Harness::new().await;
    let base = serve(&h).await;
    let crc = ChecksumAlgorithm::Crc64nvme;
    let content = bytes(5 * 1024 * 1024 + 10);
    let (p1, p2) = content.split_at(5 * 1024 * 1024);
    let created = alice_post(
        &format!("{base}/s3/multipart"),
        json!({"filename": "big.bin", "type": "application/octet-stream", "size": content.len(), "checksumAlgorithm": "CRC64NVME"}),
    )
    .await;
    assert_eq!(created["checksumAlgorithm"], "CRC64NVME", "{created}");
    let (key, id) = (
        created["key"].as_str().unwrap(),
        created["uploadId"].as_str().unwrap(),
    );
    let sign = |n: u32, checksum: String| {
        alice_get_status(format!(
            "{base}/s3/multipart/{}/{n}?key={}&checksum={}",
            enc(id),
            enc(key),
            enc(&checksum)
        ))
    };
    let (status, bad) = sign(1, "not base64".into()).await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"].as_str().unwrap().contains("CRC64NVME"),
        "{bad}"
    );
    // Every part of such an upload needs its checksum: a part URL without one, or a batch of
    // them, is refused with what to send.
    for url in [
        format!("{base}/s3/multipart/{}/1?key={}", enc(id), enc(key)),
        format!(
            "{base}/s3/multipart/{}/batch?key={}&partNumbers=1,2",
            enc(id),
            enc(key)
        ),
    ] {
        let (status, bad) = alice_get_status(url).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            bad["error"].as_str().unwrap().contains("checksum="),
            "{bad}"
        );
    }

    let mut parts = Vec::new();
    for (n, body) in [(1u32, p1), (2, p2)] {
        let value = crc.of(body).value;
        let (status, signed) = sign(n, value.clone()).await;
        assert_eq!(status, 200, "{signed}");
        assert_eq!(signed["headers"][crc.header()], value.as_str(), "{signed}");
        let url = signed["url"].as_str().unwrap();
        assert!(
            signed_headers(url).contains(crc.header()),
            "{}",
            signed_headers(url)
        );
        // Another checksum, or none, does not match the signature: the store refuses the part.
        let other = crc.of(b"other bytes").value;
        for header in [Some(other.as_str()), None] {
            let mut put = client().put(url).body(body.to_vec());
            if let Some(v) = header {
                put = put.header(crc.header(), v);
            }
            assert_eq!(put.send().await.unwrap().status(), 403, "{header:?}");
        }
        let r = client()
            .put(url)
            .header(crc.header(), &value)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "part {n}: {:?}", r.text().await);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        parts.push(json!({"PartNumber": n, "ETag": etag, "ChecksumCRC64NVME": value}));
    }
    let r = client()
        .post(format!(
            "{base}/s3/multipart/{}/complete?key={}",
            enc(id),
            enc(key)
        ))
        .bearer_auth(ALICE)
        .json(&json!({ "parts": parts, "checksum": crc.of(&content).value }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    assert_eq!(sha256(&h.stored(key).unwrap()), sha256(&content));

    // An upload created without an algorithm signs no part checksum (S3 would refuse one).
    let (key, id) = create(&base, 10).await;
    let (status, signed) = sign_plain(&base, &key, &id, &crc.of(b"x").value).await;
    assert_eq!(status, 200);
    assert!(
        !signed_headers(signed["url"].as_str().unwrap()).contains("x-amz-checksum"),
        "{signed}"
    );
}

async fn sign_plain(base: &str, key: &str, id: &str, checksum: &str) -> (u16, Value) {
    alice_get_status(format!(
        "{base}/s3/multipart/{}/1?key={}&checksum={}",
        enc(id),
        enc(key),
        enc(checksum)
    ))
    .await
}

/// GET `url` with Alice's token; the status and JSON answer.
async fn alice_get_status(url: String) -> (u16, Value) {
    let r = client().get(url).bearer_auth(ALICE).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The simple protocol signs the one flexible checksum a client sends; two different ones are
/// refused (S3 verifies one per request).
#[tokio::test]
async fn the_simple_protocol_signs_the_clients_flexible_checksum() {
    use hoist::checksum::ChecksumAlgorithm;
    let h = Harness::new().await;
    let base = serve(&h).await;
    let body = bytes(1000);
    let crc = ChecksumAlgorithm::Crc32c.of(&body);
    let ask = |extra: Value| {
        let mut req = json!({"fileName": "a.bin", "contentType": "application/octet-stream", "size": body.len()});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        client()
            .post(format!("{base}/api/upload"))
            .bearer_auth(ALICE)
            .json(&req)
            .send()
    };
    let r = ask(json!({"checksumAlgorithm": "CRC32C", "checksum": crc.value, "checksumSha256": hoist::checksum::ChecksumAlgorithm::Sha256.of(&body).value})).await.unwrap();
    assert_eq!(r.status(), 400, "two checksums");
    let r = ask(json!({"checksumAlgorithm": "CRC32C", "checksum": crc.value}))
        .await
        .unwrap();
    let signed: Value = r.json().await.unwrap();
    assert_eq!(
        signed["headers"]["x-amz-checksum-crc32c"],
        crc.value.as_str()
    );
    assert!(signed_headers(signed["url"].as_str().unwrap()).contains("x-amz-checksum-crc32c"));
    let put = |value: &str| {
        client()
            .put(signed["url"].as_str().unwrap())
            .header("content-type", "application/octet-stream")
            .header("content-disposition", "attachment")
            .header("if-none-match", "*")
            .header("x-amz-checksum-crc32c", value)
            .body(body.clone())
            .send()
    };
    let other = ChecksumAlgorithm::Crc32c.of(b"other").value;
    assert_eq!(put(&other).await.unwrap().status(), 403);
    let r = put(&crc.value).await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let key = signed["key"].as_str().unwrap();
    assert_eq!(sha256(&h.stored(key).unwrap()), sha256(&body));
}

/// Regression (issue #17: a folder of 200 small files through hoist-server gave "92 uploaded,
/// 108 failed … rate limit reached"): a 429 with `Retry-After` is a pace, not a failure. The
/// whole session waits as asked, spends no retry, and every file lands — signed ahead in
/// batches, whose files count against the files limit one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_drop_past_the_rate_limit_waits_and_lands_whole() {
    use hoist::upload::TransferEvent;
    use std::sync::Mutex;
    // Files signed in batches count one by one: a burst of 120 files, then 10 a second. The
    // files past the burst are refused in their batch (429 with Retry-After) and wait.
    let policy = PolicyConfig {
        files_burst: 120,
        files_per_minute: 600,
        ..PolicyConfig::default()
    };
    let h = Harness::with(policy, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let base = serve(&h).await;
    let session = staff_session(&base);
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(std::path::PathBuf, Vec<u8>)> = (0..130)
        .map(|i| {
            let content = format!("file {i}\n").repeat(i + 1).into_bytes();
            let path = dir.path().join(format!("f{i:03}.txt"));
            std::fs::write(&path, &content).unwrap();
            (path, content)
        })
        .collect();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let jobs: Vec<hoist::session::Job> = files
        .iter()
        .map(|(p, _)| hoist::session::Job::file(p))
        .collect();
    let outcomes = session
        .upload_jobs(&jobs, |_| {
            let seen = Arc::clone(&seen);
            Arc::new(move |e| seen.lock().unwrap().push(e))
        })
        .await;
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    for (o, (_, content)) in outcomes.iter().zip(&files) {
        let r = o.result.as_ref().unwrap();
        assert_eq!(sha256(&h.stored(&r.key).expect("stored")), sha256(content));
    }
    let events = events.lock().unwrap();
    let waits = events
        .iter()
        .filter(|e| matches!(e, TransferEvent::Waiting { .. }))
        .count();
    let retries = events
        .iter()
        .filter(|e| matches!(e, TransferEvent::Retrying { .. }))
        .count();
    assert!(waits > 0, "the server's limit was reached and waited for");
    assert_eq!(retries, 0, "a pace spends no retry");
}

/// The `/metrics` line of `series`, 0 where it is absent.
async fn metric(base: &str, series: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse::<f64>().unwrap() as u64)
}

fn small_files(dir: &std::path::Path, n: usize) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let content = format!("file {i}\n").repeat(i + 1).into_bytes();
            let path = dir.join(format!("f{i:03}.txt"));
            std::fs::write(&path, &content).unwrap();
            (path, content)
        })
        .collect()
}

/// Uploads `files` with `session`; every one must land intact.
async fn upload_all_intact(
    h: &Harness,
    session: &Session,
    files: &[(std::path::PathBuf, Vec<u8>)],
) {
    let jobs: Vec<hoist::session::Job> = files
        .iter()
        .map(|(p, _)| hoist::session::Job::file(p))
        .collect();
    let quiet: hoist::upload::ProgressFn = Arc::new(|_| {});
    let outcomes = session.upload_jobs(&jobs, |_| Arc::clone(&quiet)).await;
    for (o, (path, content)) in outcomes.iter().zip(files) {
        let r = o
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(sha256(&h.stored(&r.key).expect("stored")), sha256(content));
    }
}

/// Issue #17 (staff mode waited one backend round trip per file): a folder through the simple
/// protocol is signed ahead in batches — far fewer signing requests than files, each file
/// still signed (and audited) on its own, every file intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_signed_ahead_in_batches() {
    let h = Harness::new().await;
    let base = serve(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let files = small_files(dir.path(), 70);
    upload_all_intact(&h, &staff_session(&base), &files).await;
    let batches = metric(
        &base,
        r#"hoist_server_requests_total{action="simple.batch",status="200"}"#,
    )
    .await;
    let singles = metric(
        &base,
        r#"hoist_server_requests_total{action="simple.put",status="200"}"#,
    )
    .await;
    assert!(batches >= 2, "70 files in batches of at most 50: {batches}");
    assert!(
        batches + singles <= 10,
        "70 files signed in {batches} batches and {singles} single requests"
    );
    let signed = h
        .audit_lines()
        .iter()
        .filter(|l| l["action"] == "simple.put" && l["outcome"] == "signed")
        .count();
    assert_eq!(signed, 70, "each file of a batch is audited");
}

/// A backend without the batch endpoint (404 there, as any other simple-protocol backend
/// answers) is asked one file a request, and every file lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_without_batches_signs_one_file_a_request() {
    let h = Harness::new().await;
    let no_batches = h.router.clone().layer(axum::middleware::from_fn(
        |req: axum::extract::Request, next: axum::middleware::Next| async move {
            if req.uri().path().ends_with("/batch") {
                axum::http::StatusCode::NOT_FOUND.into_response()
            } else {
                next.run(req).await
            }
        },
    ));
    let base = crate::listen(no_batches).await;
    let dir = tempfile::tempdir().unwrap();
    let files = small_files(dir.path(), 40);
    upload_all_intact(&h, &staff_session(&base), &files).await;
    let singles = metric(
        &base,
        r#"hoist_server_requests_total{action="simple.put",status="200"}"#,
    )
    .await;
    assert_eq!(singles, 40);
}

#[tokio::test]
async fn a_batch_signs_each_file_or_says_why_not() {
    let policy = PolicyConfig {
        files_burst: 2,
        files_per_minute: 1,
        allowed_types: vec!["text/*".into()],
        ..PolicyConfig::default()
    };
    let h = Harness::with(policy, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let file = |name: &str, ty: &str| json!({"fileName": name, "contentType": ty, "size": 5});
    let body = json!({"files": [
        file("a.txt", "text/plain"),
        file("b.exe", "application/x-msdownload"),
        file("c.txt", "text/plain"),
        file("d.txt", "text/plain"),
    ]});
    let (status, answer, _) = h
        .call(
            "POST",
            "/api/upload/batch",
            Some(ALICE),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let uploads = answer["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 4);
    assert!(uploads[0]["url"]
        .as_str()
        .unwrap()
        .contains("X-Amz-Signature"));
    assert!(uploads[0]["key"]
        .as_str()
        .unwrap()
        .starts_with("uploads/alice/"));
    assert_eq!(uploads[1]["status"], 415, "{}", uploads[1]);
    assert!(uploads[1]["error"]
        .as_str()
        .unwrap()
        .contains("application/x-msdownload"));
    assert!(uploads[2]["url"].is_string(), "{}", uploads[2]);
    // The burst of 2 files is spent by a.txt and c.txt: d.txt waits, and is told how long.
    assert_eq!(uploads[3]["status"], 429, "{}", uploads[3]);
    assert!(uploads[3]["retryAfter"].as_u64().unwrap() >= 1);
    let refused: Vec<_> = h
        .audit_lines()
        .into_iter()
        .filter(|l| {
            l["outcome"]
                .as_str()
                .unwrap_or("")
                .starts_with("denied 415")
        })
        .collect();
    assert_eq!(refused.len(), 1, "the refused file is audited");
    assert_eq!(refused[0]["action"], "simple.put");
    // Regression (#30): a denial's line said `"type": null`, whatever the file declared.
    assert_eq!(
        refused[0]["type"], "application/x-msdownload",
        "{}",
        refused[0]
    );
    assert_eq!(refused[0]["size"], 5, "{}", refused[0]);

    let too_many = json!({"files": vec![file("x.txt", "text/plain"); 101]});
    let (status, answer, _) = h
        .call(
            "POST",
            "/api/upload/batch",
            Some(ALICE),
            Some(&too_many.to_string()),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("1 to 100"),
        "{answer}"
    );
}

/// Regression (#30): a file the client sent in a batch and the policy refused was asked for
/// again on its own, so one refusal wrote two audit lines (curl's, one request, wrote one).
/// Now the client takes the batch's refusal as the answer: one decision, one line.
#[tokio::test]
async fn a_file_refused_in_a_batch_is_refused_once() {
    let policy = PolicyConfig {
        allowed_types: vec!["text/*".into()],
        ..PolicyConfig::default()
    };
    let h = Harness::with(policy, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let base = serve(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, content) in [
        ("a.txt", b"alpha".to_vec()),
        ("b.txt", b"bravo".to_vec()),
        ("setup.exe", b"MZ\x90\x00 not really a program".to_vec()),
        ("d.txt", b"delta".to_vec()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        paths.push(p);
    }
    let outcomes = staff_session(&base)
        .upload_all(&paths, |_| Arc::new(|_| {}))
        .await;
    let refusal = outcomes[2]
        .result
        .as_ref()
        .expect_err("setup.exe is refused");
    assert!(refusal.to_string().contains("415"), "{refusal}");
    for o in [&outcomes[0], &outcomes[1], &outcomes[3]] {
        assert!(o.result.is_ok(), "{:?}", o.result);
    }
    let denied: Vec<_> = h
        .audit_lines()
        .into_iter()
        .filter(|l| l["outcome"].as_str().unwrap_or("").starts_with("denied"))
        .collect();
    assert_eq!(denied.len(), 1, "one refusal, one line: {denied:#?}");
    assert!(denied[0]["type"].is_string(), "{}", denied[0]);
}
