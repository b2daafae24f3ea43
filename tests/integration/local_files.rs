//! The local side: a file is the one that was checked, or it is not uploaded. Regression tests
//! for the security review's finding 10 — the path was opened again after validation and
//! symlinks were followed, so a swap to `/dev/zero` or a FIFO made the read grow without bound
//! (or hang), and a swap to another file of the same size and time uploaded that file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hoist::upload::{TransferError, Uploader};
use hoist::validate::{check_file, CheckedFile, ValidationError};

use crate::support::{self, recorder, Store};

/// Checks `path`, lets `swap` replace it, then uploads what was checked; the outcome, within a
/// bound (a read of `/dev/zero` or a FIFO would otherwise run forever).
async fn check_swap_upload(
    store: &Store,
    path: &Path,
    swap: impl FnOnce(&Path),
) -> (
    CheckedFile,
    Result<hoist::upload::UploadReceipt, TransferError>,
) {
    let profile = store.self_sign_profile("local");
    let checked = check_file(path, &profile)
        .await
        .expect("valid when checked");
    swap(path);
    let (policy, _) = support::recorded_policy();
    let uploader = Uploader::new(policy);
    let (progress, _) = recorder();
    let signer = store.store.signer();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        uploader.upload(&checked, "k/swapped.bin", &signer, &progress),
    )
    .await
    .expect("the upload ends instead of reading without bound");
    (checked, result)
}

/// The upload was refused as a changed source, and nothing reached the store.
fn assert_refused(store: &Store, result: &Result<hoist::upload::UploadReceipt, TransferError>) {
    assert!(
        matches!(result, Err(TransferError::SourceChanged)),
        "{result:?}"
    );
    assert!(store.keys().is_empty(), "nothing stored");
}

fn replace_with_symlink(path: &Path, target: &Path) {
    std::fs::remove_file(path).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

#[tokio::test]
async fn a_file_swapped_for_a_symlink_to_dev_zero_is_not_read() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "small.bin", &support::bytes(1000, 1));
    let (_, result) = check_swap_upload(&store, &path, |p| {
        replace_with_symlink(p, Path::new("/dev/zero"))
    })
    .await;
    assert_refused(&store, &result);
}

#[tokio::test]
async fn a_file_swapped_for_a_fifo_is_refused_without_waiting_for_a_writer() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = support::write(dir.path(), "small.bin", &support::bytes(1000, 2));
    let (_, result) = check_swap_upload(&store, &path, |p| {
        std::fs::remove_file(p).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(status.success());
    })
    .await;
    assert_refused(&store, &result);
}

#[tokio::test]
async fn another_file_of_the_same_size_and_time_is_not_uploaded_in_its_place() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(3 * 1024 * 1024, 3);
    let path = support::write(dir.path(), "report.bin", &content);
    let other = support::write(dir.path(), "secret.bin", &support::bytes(content.len(), 9));
    let (checked, result) = check_swap_upload(&store, &path, |p| {
        // Same size, same modification time: only the inode tells them apart.
        let mtime = std::fs::metadata(p).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::rename(&other, p).unwrap();
    })
    .await;
    assert_eq!(checked.size, content.len() as u64);
    assert_refused(&store, &result);
}

#[tokio::test]
async fn a_dropped_symlink_is_followed_once_at_the_check() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    let content = support::bytes(2000, 4);
    let real = support::write(dir.path(), "stored-as-abc123", &content);
    let link = dir.path().join("holiday.bin");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (checked, result) = check_swap_upload(&store, &link, |_| {}).await;
    assert_eq!(checked.file_name, "holiday.bin", "the name the user gave");
    assert_eq!(
        checked.path,
        real.canonicalize().unwrap(),
        "the file it named"
    );
    result.expect("uploads the file the link named");
    assert_eq!(
        store.stored_sha256("k/swapped.bin"),
        Some(support::sha256_hex(&content))
    );

    // Pointing the link elsewhere later changes nothing: the checked file is read.
    let profile = store.self_sign_profile("local");
    let fifo = dir.path().join("pipe");
    std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert_eq!(
        check_file(&fifo, &profile).await.unwrap_err(),
        ValidationError::NotRegularFile,
        "a FIFO is refused at the check, without blocking"
    );
}

/// Issue #27: a run killed while it was queueing a dropped folder (only some of its files in
/// the queue) resumes the folder whole, under the drop's one id: the drop is recorded first.
#[tokio::test]
async fn a_folder_killed_before_it_was_queued_whole_resumes_whole_under_one_id() {
    let store = Store::start().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Invoices");
    std::fs::create_dir_all(folder.join("2026")).unwrap();
    for i in 0..5 {
        support::write(
            &folder.join("2026"),
            &format!("i{i}.txt"),
            format!("{i}").as_bytes(),
        );
    }
    let db = dir.path().join("queue.sqlite3");
    let session = |queue: std::sync::Arc<hoist::queue::Queue>| {
        let profile = store.self_sign_profile("admin");
        hoist::session::Session::with_signer(
            profile,
            std::sync::Arc::new(store.store.signer()),
            Uploader::new(hoist::retry::RetryPolicy::default()),
        )
        .with_queue(queue)
    };
    // The first run records the drop, queues three of its files, uploads two, and dies.
    let first = session(std::sync::Arc::new(hoist::queue::Queue::open(&db).unwrap()));
    let jobs = first.expand(std::slice::from_ref(&folder)).unwrap();
    assert_eq!(jobs.len(), 5);
    let (quiet, _) = recorder();
    let queued = first.prepare_many(&jobs[..3], |_| Arc::clone(&quiet)).await;
    for p in queued.into_iter().take(2) {
        let control = first.control().child();
        first
            .send(p.unwrap(), &quiet, control)
            .await
            .expect("landed");
    }
    drop(first);

    // The folder given again (or `hoist upload` alone, or the app's restart) goes on with the
    // drop: the two files that landed are not queued again.
    let second = session(std::sync::Arc::new(hoist::queue::Queue::open(&db).unwrap()));
    let again = second.expand(std::slice::from_ref(&folder)).unwrap();
    assert_eq!(
        again.len(),
        2,
        "only the files the drop never queued: {again:?}"
    );
    let resumed = second.unfinished_jobs().unwrap();
    assert_eq!(
        resumed.len(),
        3,
        "the one queued and the two never queued: {resumed:?}"
    );
    let outcomes = second.upload_jobs(&resumed, |_| Arc::clone(&quiet)).await;
    let keys: Vec<String> = outcomes
        .into_iter()
        .map(|o| o.result.expect("landed").key)
        .collect();
    let id_of = |k: &str| {
        k[k.find("-Invoices/").unwrap() - 36..]
            .split_at(36)
            .0
            .to_string()
    };
    let ids: std::collections::BTreeSet<String> = keys.iter().map(|k| id_of(k)).collect();
    assert_eq!(ids.len(), 1, "one id for the whole drop: {keys:?}");
    assert_eq!(store.keys().len(), 5, "each file once");
    let all: std::collections::BTreeSet<String> = store.keys().iter().map(|k| id_of(k)).collect();
    assert_eq!(all, ids, "the first run's files under the same id");
    // Queued whole now: nothing more to resume.
    assert!(second.unfinished_jobs().unwrap().is_empty());
}
