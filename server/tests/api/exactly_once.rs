//! Issue #27: a staff folder keeps its structure under one id, and a file lands once under one
//! key whatever is killed when (tickets, idempotent completion, the journal before the first
//! byte). Real HTTP into the SigV4-verifying embedded store.

use std::sync::Arc;

use base64::Engine;
use serde_json::json;

use crate::end_to_end::staff_session;
use crate::{companion_session, listen, sha256, Harness, ALICE, BOB};

fn file_tree(root: &std::path::Path, files: &[(&str, Vec<u8>)]) {
    for (rel, content) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

fn quiet() -> hoist::upload::ProgressFn {
    Arc::new(|_| {})
}

/// The `{uuid}` of a key made by the default template (`…/{uuid}-{folder}/…`).
fn drop_id_of<'k>(key: &'k str, folder: &str) -> &'k str {
    let at = key
        .find(&format!("-{folder}/"))
        .expect("the folder is in the key");
    &key[at - 36..at]
}

#[tokio::test]
async fn a_dropped_folder_keeps_its_structure_under_one_id_in_staff_mode() {
    let h = Harness::new().await;
    let base = listen(h.router.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("Photos");
    let big = (0..6 * 1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>();
    file_tree(
        &photos,
        &[
            ("2026/beach.jpg", b"beach".to_vec()),
            ("2026/summer/dune.jpg", b"dune".to_vec()),
            ("notes.txt", b"notes".to_vec()),
        ],
    );
    let simple = staff_session(&base);
    let outcomes = simple
        .upload_all(std::slice::from_ref(&photos), |_| quiet())
        .await;
    let keys: Vec<String> = outcomes
        .into_iter()
        .map(|o| o.result.expect("uploaded").key)
        .collect();
    assert_eq!(keys.len(), 3);
    let id = drop_id_of(&keys[0], "Photos").to_string();
    for (key, tail) in keys.iter().zip([
        "Photos/2026/beach.jpg",
        "Photos/2026/summer/dune.jpg",
        "Photos/notes.txt",
    ]) {
        assert!(key.starts_with("uploads/alice/"), "{key}");
        assert!(
            key.ends_with(&format!("{id}-{tail}")),
            "{key} is not …/{id}-{tail}"
        );
    }
    // The Companion protocol keeps them too, a multipart file among them.
    let companion = companion_session(&base);
    let dir2 = tempfile::tempdir().unwrap();
    let other = dir2.path().join("Photos");
    file_tree(
        &other,
        &[("a/small.txt", b"s".to_vec()), ("a/big.bin", big.clone())],
    );
    let outcomes = companion.upload_all(&[other], |_| quiet()).await;
    let keys: Vec<String> = outcomes
        .into_iter()
        .map(|o| o.result.expect("uploaded").key)
        .collect();
    let id2 = drop_id_of(&keys[0], "Photos").to_string();
    assert_ne!(id2, id, "another drop, another id");
    assert!(
        keys[0].ends_with(&format!("{id2}-Photos/a/big.bin")),
        "{keys:?}"
    );
    assert!(
        keys[1].ends_with(&format!("{id2}-Photos/a/small.txt")),
        "{keys:?}"
    );
    assert_eq!(sha256(&h.stored(&keys[0]).unwrap()), sha256(&big));
}

#[tokio::test]
async fn hostile_relative_paths_are_refused_with_the_reason() {
    let h = Harness::new().await;
    for path in [
        "../../etc/cron.d/x.txt",
        "Photos/../../../x.txt",
        "C:\\Windows\\x.txt",
        "Photos\u{202E}txt.exe/x.txt",
        "a\u{0}b/x.txt",
    ] {
        let body = json!({"fileName": "x.txt", "size": 1, "relativePath": path}).to_string();
        let (status, answer, _) = h
            .call("POST", "/api/upload", Some(ALICE), Some(&body))
            .await;
        assert_eq!(status.as_u16(), 400, "{path:?}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("relativePath"),
            "{answer}"
        );
    }
    // Not a UUID: refused, not used as a key segment.
    let body = json!({"fileName": "x.txt", "size": 1, "dropId": "../x"}).to_string();
    let (status, _, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status.as_u16(), 400);
    // Sanitised, folder by folder: nothing outside the caller's prefix.
    let body = json!({"fileName": "x.txt", "size": 1, "relativePath": "/Ünïcode <dir>/x.txt",
        "dropId": "6f1c2e9a-1b2c-4d5e-8f90-112233445566"})
    .to_string();
    let (status, answer, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status.as_u16(), 200, "{answer}");
    let key = answer["key"].as_str().unwrap();
    assert!(key.starts_with("uploads/alice/"), "{key}");
    assert!(key.ends_with("-\u{dc}n\u{ef}code_dir_/x.txt"), "{key}");
    // The same drop of another caller lands under another id.
    let (_, bobs, _) = h.call("POST", "/api/upload", Some(BOB), Some(&body)).await;
    let bob_key = bobs["key"].as_str().unwrap();
    let folder = "\u{dc}n\u{ef}code_dir_";
    assert_ne!(drop_id_of(key, folder), drop_id_of(bob_key, folder));
}

#[tokio::test]
async fn a_ticket_signs_the_same_key_again_and_a_landed_file_is_not_sent_twice() {
    let h = Harness::new().await;
    let base = listen(h.router.clone()).await;
    let content = b"exactly once".to_vec();
    let md5 = base64::engine::general_purpose::STANDARD
        .encode(<md5::Md5 as md5::Digest>::digest(&content));
    let ask = json!({"fileName": "once.txt", "contentType": "text/plain",
        "size": content.len(), "contentMd5": md5});
    let (status, first, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&ask.to_string()))
        .await;
    assert_eq!(status.as_u16(), 200, "{first}");
    let (key, ticket) = (
        first["key"].as_str().unwrap(),
        first["ticket"].as_str().unwrap(),
    );
    let resume = |size: usize, key: &str, ticket: &str| {
        let mut a = ask.clone();
        a["size"] = json!(size);
        a["resume"] = json!({"key": key, "ticket": ticket});
        a.to_string()
    };
    let ask_again = |token: &'static str, body: String| {
        let h = &h;
        async move {
            h.call("POST", "/api/upload", Some(token), Some(&body))
                .await
        }
    };
    // Not landed yet: the same key, signed again.
    let (status, again, _) = ask_again(ALICE, resume(content.len(), key, ticket)).await;
    assert_eq!(status.as_u16(), 200, "{again}");
    assert_eq!(again["key"], first["key"]);
    assert_eq!(again.get("landed"), None);
    // Sent with the URL of the second answer (as a client that crashed would).
    let headers = again["headers"].as_object().unwrap();
    let mut put = reqwest::Client::new().put(again["url"].as_str().unwrap());
    for (n, v) in headers {
        put = put.header(n, v.as_str().unwrap());
    }
    let sent = put.body(content.clone()).send().await.unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());
    // Asked again after the PUT landed: nothing to send.
    let (status, landed, _) = ask_again(ALICE, resume(content.len(), key, ticket)).await;
    assert_eq!(status.as_u16(), 200, "{landed}");
    assert_eq!(landed["landed"], json!(true));
    assert_eq!(landed["key"], first["key"]);
    // Another size is another file: the ticket does not stretch to it.
    let (status, _, _) = ask_again(ALICE, resume(99, key, ticket)).await;
    assert_eq!(status.as_u16(), 409);
    // Another caller, or another key, cannot use it.
    let (status, _, _) = ask_again(BOB, resume(content.len(), key, ticket)).await;
    assert_eq!(status.as_u16(), 403);
    let other = format!("{key}2");
    let (status, _, _) = ask_again(ALICE, resume(content.len(), &other, ticket)).await;
    assert_eq!(status.as_u16(), 403);
    assert_eq!(h.store_keys(), vec![key.to_string()]);
    let _ = base;
}

/// The bug: a staff upload whose PUT had landed when the client was killed (SIGKILL before it
/// recorded the outcome) was signed a new key on resume and landed a second time.
#[tokio::test]
async fn a_file_resumed_after_its_put_landed_is_not_sent_again_under_another_key() {
    let h = Harness::new().await;
    let base = listen(h.router.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    let content = (0..300_000).map(|i| (i % 253) as u8).collect::<Vec<u8>>();
    std::fs::write(&path, &content).unwrap();
    let queue = Arc::new(hoist::queue::Queue::open(&dir.path().join("q.sqlite3")).unwrap());

    // The first run: the backend assigns a key, the journal records it, the PUT lands — and
    // the process dies before it records the outcome (its queue item stays `uploading`).
    let session = staff_session(&base).with_queue(Arc::clone(&queue));
    let prepared = session
        .prepare(&hoist::session::Job::file(&path), &quiet())
        .await
        .unwrap();
    let id = prepared.item_id;
    let first = session.upload(&path, &quiet()).await.expect("uploaded");
    // What the queue held at the kill: the key and ticket journaled, the item unfinished.
    let journaled = queue.get(id).unwrap().unwrap();
    assert_eq!(journaled.key, first.key, "the assigned key is journaled");
    let ticket = journaled.ticket.clone().expect("the ticket is journaled");
    queue.lifecycle().started(id).unwrap();

    // The next run resumes it: the backend says it landed, nothing is sent.
    let session = staff_session(&base).with_queue(Arc::clone(&queue));
    let again = session.upload(&path, &quiet()).await.expect("resumed");
    assert_eq!(again.key, first.key);
    assert_eq!(again.bytes_sent, 0, "nothing was sent again");
    assert_eq!(
        h.store_keys(),
        vec![first.key.clone()],
        "one object, one key"
    );
    assert_eq!(sha256(&h.stored(&first.key).unwrap()), sha256(&content));
    let done = queue.get(id).unwrap().unwrap();
    assert_eq!(done.state, hoist::queue::ItemState::Done);
    assert_eq!(done.ticket.as_deref(), Some(ticket.as_str()));
}
