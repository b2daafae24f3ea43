//! Self-signed uploads into the SigV4-verifying store, and what the store refuses.

use std::sync::Arc;
use std::time::SystemTime;

use hoist::profile::{Mode, Profile};
use hoist::retry::RetryBudget;
use hoist::session::{Session, UploadError};
use hoist::sign::sigv4::SigV4Signer;
use hoist::sign::{PresignedPut, PutRequest, SignError, Signer};
use hoist::upload::{TransferError, TransferEvent, Uploader};
use hoist::validate::ValidationError;

use crate::support::{self, recorder, Store};

pub(crate) fn profile(prefix: &str) -> Profile {
    let mut p = Profile::new("test", Mode::Local);
    p.prefix = prefix.to_string();
    p
}

fn session(store: &Store, signer: Arc<dyn Signer>, p: Profile) -> Session {
    let _ = store;
    let (policy, _) = support::recorded_policy();
    Session::with_signer(p, signer, Uploader::new(policy))
}

#[tokio::test]
async fn uploads_land_byte_identical_with_progress() {
    let store = Store::start().await;
    let s = session(&store, Arc::new(store.store.signer()), profile("in/"));
    let dir = tempfile::tempdir().unwrap();
    for (i, size) in [1usize, 300 * 1024, 3 * 1024 * 1024 + 7]
        .into_iter()
        .enumerate()
    {
        let content = support::bytes(size, i as u8 + 1);
        let path = support::write(dir.path(), &format!("f{i}.bin"), &content);
        let (progress, events) = recorder();
        let r = s.upload(&path, &progress).await.expect("upload succeeds");
        assert!(r.key.starts_with("in/"), "{}", r.key);
        assert!(r.key.ends_with(&format!("-f{i}.bin")), "{}", r.key);
        assert_eq!(r.size, size as u64);
        assert_eq!(
            store.stored_sha256(&r.key),
            Some(support::sha256_hex(&content)),
            "stored bytes differ"
        );
        // A single PUT's receipt has the SHA-256; a multipart one is proved by its checksum.
        match r.sha256 {
            Some(sha) => assert_eq!(sha, support::sha256_hex(&content)),
            None => assert!(r.integrity.is_some(), "{size}: no proof"),
        }
        assert_eq!(r.attempts, 1);
        assert!(
            !r.location.contains('?'),
            "location carries no signature: {}",
            r.location
        );
        let events = events.lock().unwrap();
        assert_eq!(
            events.last(),
            Some(&TransferEvent::Acknowledged { bytes: size as u64 })
        );
        let last_sent = events.iter().rev().find_map(|e| match e {
            TransferEvent::Sent { bytes, .. } => Some(*bytes),
            _ => None,
        });
        assert_eq!(last_sent, Some(size as u64));
    }
    assert_eq!(store.keys().len(), 3);
}

/// Signs with an inner signer, then changes the request or URL the way a bug or attacker would.
struct Altered {
    inner: SigV4Signer,
    how: Alteration,
}

enum Alteration {
    Signature,
    SignedSizePlusOne,
    SignedType(&'static str),
}

#[async_trait::async_trait]
impl Signer for Altered {
    async fn presign_put(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        let mut signed_req = req.clone();
        match self.how {
            Alteration::SignedSizePlusOne => signed_req.size += 1,
            Alteration::SignedType(t) => signed_req.content_type = t.to_string(),
            Alteration::Signature => {}
        }
        let mut p = self.inner.presign_put(&signed_req, now).await?;
        match self.how {
            Alteration::Signature => {
                let url = p.url.as_str().to_string();
                let i = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
                let flipped = if &url[i..i + 1] == "0" { "1" } else { "0" };
                p.url =
                    url::Url::parse(&format!("{}{}{}", &url[..i], flipped, &url[i + 1..])).unwrap();
            }
            // The client sends the file's real type, not the one signed.
            Alteration::SignedType(_) => {
                for h in p.headers.iter_mut().filter(|(n, _)| n == "content-type") {
                    h.1 = req.content_type.clone();
                }
            }
            Alteration::SignedSizePlusOne => {}
        }
        Ok(p)
    }
}

async fn rejected(how: Alteration) -> String {
    let store = Store::start().await;
    let signer = Altered {
        inner: store.store.signer(),
        how,
    };
    let s = session(&store, Arc::new(signer), profile("in/"));
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "doc.txt", b"hello, signed world\n");
    let (progress, _) = recorder();
    let err = s
        .upload(&path, &progress)
        .await
        .expect_err("the store must refuse");
    assert!(
        store.keys().is_empty(),
        "nothing may be stored: {:?}",
        store.keys()
    );
    assert!(
        matches!(err, UploadError::Transfer(TransferError::Rejected(_))),
        "{err:?}"
    );
    err.to_string()
}

#[tokio::test]
async fn tampered_signature_is_rejected_and_explained() {
    let msg = rejected(Alteration::Signature).await;
    assert!(msg.contains("does not match its signature"), "{msg}");
    assert!(msg.contains("SignatureDoesNotMatch"), "{msg}");
}

#[tokio::test]
async fn size_other_than_signed_is_rejected() {
    let msg = rejected(Alteration::SignedSizePlusOne).await;
    assert!(msg.contains("does not match its signature"), "{msg}");
}

#[tokio::test]
async fn type_other_than_signed_is_rejected() {
    let msg = rejected(Alteration::SignedType("text/html")).await;
    assert!(msg.contains("does not match its signature"), "{msg}");
}

#[tokio::test]
async fn expired_url_is_refused_by_the_store_and_blamed_on_the_clock() {
    let store = Store::start().await;
    let clock = support::RecordingClock {
        shift_back: std::time::Duration::from_secs(3600),
        ..Default::default()
    };
    let (policy, _) = support::policy_with(clock, RetryBudget::default());
    let s = Session::with_signer(
        profile("in/"),
        Arc::new(store.store.signer()),
        Uploader::new(policy),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "late.txt", b"too late\n");
    let (progress, _) = recorder();
    let err = s.upload(&path, &progress).await.unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Transfer(TransferError::ExpiredAgain { .. })
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("expired") && msg.contains("clock"), "{msg}");
    assert!(store.keys().is_empty());
}

#[tokio::test]
async fn bad_files_get_clear_errors_and_send_nothing() {
    let store = Store::start().await;
    let mut p = profile("in/");
    p.max_size = Some(1000);
    p.allowed_types = vec!["text/*".into(), "application/pdf".into()];
    let s = session(&store, Arc::new(store.store.signer()), p);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut elf =
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00".to_vec();
    elf.resize(128, 0);
    let fifo = d.join("pipe.txt");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let cases: Vec<(std::path::PathBuf, ValidationError)> = vec![
        (support::write(d, "empty.txt", b""), ValidationError::Empty),
        (d.join("missing.txt"), ValidationError::NotFound),
        (d.to_path_buf(), ValidationError::Directory),
        (fifo, ValidationError::NotRegularFile),
        (
            support::write(d, "big.txt", &[b'a'; 1001]),
            ValidationError::TooLarge {
                size: 1001,
                limit: 1000,
            },
        ),
        (
            support::write(d, "pic.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            ValidationError::TypeNotAllowed {
                detected: "image/png".into(),
                allowed: "text/*, application/pdf".into(),
            },
        ),
        (
            support::write(d, "invoice.pdf", &elf),
            ValidationError::ContentContradictsExtension {
                detected: "application/x-executable".into(),
                extension: "pdf".into(),
            },
        ),
    ];
    for (path, expected) in cases {
        let (progress, events) = recorder();
        match s.upload(&path, &progress).await {
            Err(UploadError::Validation(v)) => assert_eq!(v, expected, "{}", path.display()),
            other => panic!("{}: expected {expected:?}, got {other:?}", path.display()),
        }
        assert!(
            events.lock().unwrap().is_empty(),
            "nothing may start for {}",
            path.display()
        );
    }
    assert!(store.keys().is_empty());
}

/// A POST form sent as a browser sends it (fields, then the file last).
async fn post_form(p: &PresignedPut, fields: &[(String, String)], body: Vec<u8>) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(body).file_name("f"));
    let r = reqwest::Client::new()
        .post(p.url.clone())
        .multipart(form)
        .send()
        .await
        .expect("the store answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The POST form hoist-server answers browsers with (#33): the real store checks its
/// signature, its key, its type and its `content-length-range`.
#[tokio::test]
async fn post_form_lands_within_its_length_range_and_nowhere_else() {
    let store = Store::start().await;
    let signer = store.store.signer();
    let form = signer
        .presign_post_form(
            "in/photo.jpg",
            &[("content-type", "image/jpeg")],
            0..=10,
            SystemTime::now(),
        )
        .unwrap();
    let fields = form.form.clone().expect("a form");
    assert!(form.url.as_str().ends_with("/test-bucket/"), "{}", form.url);

    let (status, body) = post_form(&form, &fields, b"0123456789A".to_vec()).await;
    assert_eq!(status, 400, "one byte over the range: {body}");
    assert!(body.contains("EntityTooLarge"), "{body}");

    let mut elsewhere = fields.clone();
    elsewhere[0].1 = "in/other.jpg".into();
    let (status, body) = post_form(&form, &elsewhere, b"short".to_vec()).await;
    // AWS answers 403 (AccessDenied), s3s 400 (InvalidPolicyDocument): either way, refused.
    assert!(
        [400, 403].contains(&status),
        "another key than signed: {status} {body}"
    );
    assert!(body.contains("key"), "{body}");

    let mut forged = fields.clone();
    let sig = forged.last_mut().unwrap();
    sig.1 = sig.1.replace(|c| c != '0', "0");
    let (status, body) = post_form(&form, &forged, b"short".to_vec()).await;
    assert_eq!(status, 403, "a signature not from the key: {body}");
    assert!(store.keys().is_empty(), "{:?}", store.keys());

    let (status, body) = post_form(&form, &fields, b"0123456789".to_vec()).await;
    assert!((200..300).contains(&status), "{status} {body}");
    assert_eq!(store.keys(), vec!["in/photo.jpg".to_string()]);
    assert_eq!(
        std::fs::read(store.store.object_path("in/photo.jpg")).unwrap(),
        b"0123456789"
    );
}

/// #33: a page from the company's web app uploads straight to the embedded store, as a
/// bucket's CORS rule allows on S3; a page from any other origin is refused at its preflight.
#[tokio::test]
async fn the_store_answers_cors_for_the_listed_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = hoist::local::EmbeddedStore::start_for_browsers(
        dir.path(),
        ([127, 0, 0, 1], 0).into(),
        "web",
        "WEBKEY",
        hoist::secret::Secret::new("web-secret"),
        &["http://localhost:5173".to_string()],
    )
    .await
    .unwrap();
    let put = store
        .signer()
        .presign_put_with(
            "in/a.txt",
            &[("content-type", "text/plain")],
            SystemTime::now(),
        )
        .unwrap();
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, put.url.clone())
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("http://localhost:5173").await.unwrap();
    assert_eq!(ok.status(), 200);
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "http://localhost:5173");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PUT"));
    assert_eq!(h["access-control-allow-headers"], "content-type");

    let refused = preflight("http://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert!(refused.text().await.unwrap().contains("allowed_origins"));

    let sent = client
        .put(put.url.clone())
        .header("origin", "http://localhost:5173")
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert_eq!(
        sent.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert!(sent.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("ETag"));
    assert_eq!(
        std::fs::read(store.object_path("in/a.txt")).unwrap(),
        b"hello"
    );
}
