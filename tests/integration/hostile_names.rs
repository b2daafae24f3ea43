//! Hostile file names never produce a key that escapes the prefix or differs from what was
//! signed, and nothing lands outside the bucket.

use std::sync::Arc;

use hoist::backend::simple::BackendSigner;
use hoist::session::Session;
use hoist::upload::Uploader;
use hoist::validate::CheckedFile;

use crate::support::backend::{Backend, Flavour};
use crate::support::{self, recorder, Store};

const HOSTILE: &[&str] = &[
    "../../x",
    "/abs",
    "a\\..\\b",
    "%2e%2e",
    "%2e%2e/%2e%2e/etc",
    "..",
    ".",
    "a\0b",
    "evil\u{202E}fdp.exe",
    "C:\\Windows\\system32",
    "name with spaces & ?query#frag",
];

#[tokio::test]
async fn hostile_names_stay_under_the_prefix_and_match_the_signature() {
    let store = Store::start().await;
    let (policy, _) = support::recorded_policy();
    let uploader = Uploader::new(policy);
    let signer = store.store.signer();
    let dir = tempfile::tempdir().unwrap();
    let long = "n".repeat(1025);
    let names: Vec<&str> = HOSTILE.iter().copied().chain([long.as_str()]).collect();
    for (i, name) in names.iter().enumerate() {
        let content = support::bytes(100 + i, i as u8);
        // The name is what a drop or a folder walk could hand over; the bytes are on disk.
        let path = support::write(dir.path(), &format!("payload{i}"), &content);
        let file = CheckedFile {
            path,
            file_name: name.to_string(),
            size: content.len() as u64,
            content_type: "application/octet-stream".into(),
            modified: None,
            identity: None,
        };
        let key = hoist::key::build_key(
            "safe/",
            "{uuid}-{name}",
            name,
            hoist::key::KeyContext::now_random(),
        )
        .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(key.starts_with("safe/"), "{name:?} -> {key}");
        assert!(key.len() <= 1024, "{name:?} -> {} bytes", key.len());
        hoist::key::validate_key(&key).unwrap();
        let (progress, _) = recorder();
        let r = uploader
            .upload(&file, &key, &signer, &progress)
            .await
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(r.key, key);
        assert!(
            r.location
                .ends_with(&format!("/test-bucket/{}", hoist::key::encode_path(&key))),
            "{name:?}: sent to {} for key {key}",
            r.location
        );
        assert_eq!(
            store.stored_sha256(&key).as_deref(),
            Some(support::sha256_hex(&content).as_str()),
            "{name:?}"
        );
    }
    // Every object is inside the bucket, under the prefix.
    let keys = store.keys();
    assert_eq!(keys.len(), names.len(), "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("safe/")), "{keys:?}");
    let outside: Vec<_> = support::all_files(store.dir.path())
        .into_iter()
        .filter(|p| {
            !p.starts_with(store.store.bucket_dir())
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".bucket-")
        })
        .collect();
    assert!(outside.is_empty(), "files outside the bucket: {outside:?}");
}

#[tokio::test]
async fn a_backend_url_that_would_be_rewritten_is_refused() {
    // The url crate turns /b/../x into /x: the request sent would not be the one signed.
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::DotSegments, None, "").await;
    let (policy, _) = support::recorded_policy();
    let signer = BackendSigner::new(url::Url::parse(&backend.url).unwrap(), None).unwrap();
    let s = Session::with_signer(
        crate::self_sign::profile(""),
        Arc::new(signer),
        Uploader::new(policy),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "x.txt", b"x");
    let (progress, events) = recorder();
    let err = s.upload(&path, &progress).await.unwrap_err().to_string();
    assert!(err.contains("rewritten"), "{err}");
    assert!(!events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, hoist::upload::TransferEvent::Sent { .. })));
    assert!(store.keys().is_empty());
}
