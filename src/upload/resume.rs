//! Every decision to resume, restart or forget an unfinished upload lives here.
//!
//! * [`reconcile`] is pure: from what the queue journaled, what the store holds and what the
//!   file is now, it says which parts to keep, or that the upload starts over and why. It asks
//!   for what it lacks (parts to hash, the store's part list) instead of doing I/O, so every
//!   case is unit-tested below.
//! * [`SourceFacts::differs_from`] tells whether a queued item is still the file on disk.
//! * [`settle`] says what the queue records when an upload ends (and whether its multipart
//!   upload id is dead); [`restart`] carries a restart out (abort, then the journal).

use std::collections::{BTreeMap, HashSet};

use super::digest::PartDigest;
use super::journal::Journal;
use super::parts::PartPlan;
use super::types::{ProgressFn, TransferError, TransferEvent, UploadReceipt};
use crate::queue::{Ending, PartRecord, QueueItem, Restart};
use crate::remote::{MultipartApi, MultipartTarget, RemoteFailure, RemotePart};
use crate::retry::Clock;

/// Why an unfinished upload starts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestartReason {
    /// The file is not what was being uploaded: the old upload is aborted.
    SourceChanged,
    /// The store no longer has the upload (expired or aborted): nothing to abort.
    UploadGone,
}

impl RestartReason {
    /// The sentence recorded in the queue and shown to the user.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::SourceChanged => {
                "the file changed since its upload started; the old upload was aborted and it starts over"
            }
            Self::UploadGone => {
                "the unfinished upload is gone from the server (expired or aborted); starting over"
            }
        }
    }

    /// Whether the old upload may still exist on the store, and so must be aborted.
    fn aborts(self) -> bool {
        self == Self::SourceChanged
    }
}

/// What a queue item knew of its file, or what the file is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SourceFacts<'a> {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: Option<i64>,
    /// The content sample ([`super::digest::fingerprint`]); empty for single PUTs.
    pub fingerprint: &'a str,
}

impl<'a> SourceFacts<'a> {
    /// What `item` recorded of its file.
    pub(crate) fn of_item(item: &'a QueueItem) -> Self {
        SourceFacts {
            size: item.size,
            modified_ns: item.modified_ns,
            fingerprint: &item.fingerprint,
        }
    }

    /// Whether `item` was recorded for other content than this.
    pub(crate) fn differs_from(&self, item: &QueueItem) -> bool {
        *self != SourceFacts::of_item(item)
    }
}

/// What the queue journaled of an upload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Journaled<'a> {
    /// The store's id for the upload, once created.
    pub upload_id: Option<&'a str>,
    /// The part size it was cut with.
    pub part_size: Option<u64>,
    /// The parts the store acknowledged.
    pub parts: &'a [PartRecord],
}

/// What the store said of the upload, when asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RemoteParts {
    /// Not asked yet.
    NotAsked,
    /// The parts it holds.
    Listed(Vec<RemotePart>),
    /// It does not have the upload (or could not say).
    Gone,
}

/// What to do with an unfinished upload, or what [`reconcile`] needs to decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResumePlan {
    /// Nothing to resume: create a new upload.
    Start,
    /// Hash these parts of the file, then reconcile again.
    Hash(Vec<u32>),
    /// Ask the store which parts it holds, then reconcile again.
    ListParts,
    /// Start over, for this reason.
    Restart(RestartReason),
    /// Keep these parts (part number → quoted ETag) and send the others.
    Resume(BTreeMap<u32, String>),
}

/// Parts hashed per [`ResumePlan::Hash`]: a changed file is found after a few parts, not after
/// reading all the journaled ones.
const HASH_BATCH: usize = 8;

/// Decides how an upload resumes. `hashed` are the digests (MD5 and checksum) of the parts of
/// the file (cut by `plan`) hashed so far.
pub(crate) fn reconcile(
    journal: &Journaled<'_>,
    remote: &RemoteParts,
    plan: PartPlan,
    hashed: &BTreeMap<u32, PartDigest>,
) -> ResumePlan {
    let (Some(_), Some(old_part_size)) = (journal.upload_id, journal.part_size) else {
        return ResumePlan::Start;
    };
    if old_part_size != plan.part_size
        || journal.parts.iter().any(|p| !plan.contains(p.part_number))
    {
        return ResumePlan::Restart(RestartReason::SourceChanged);
    }
    // Every journaled part must still be the file's: a part rewritten in place keeps the
    // file's size and may keep its sampled fingerprint.
    let journal_changed = journal.parts.iter().any(|p| {
        hashed
            .get(&p.part_number)
            .is_some_and(|h| !journaled_part_is(p, h))
    });
    if journal_changed {
        return ResumePlan::Restart(RestartReason::SourceChanged);
    }
    let unhashed = unhashed_of(journal.parts.iter().map(|p| p.part_number), hashed);
    if !unhashed.is_empty() {
        return ResumePlan::Hash(unhashed);
    }
    let listed = match remote {
        RemoteParts::NotAsked => return ResumePlan::ListParts,
        RemoteParts::Gone => return ResumePlan::Restart(RestartReason::UploadGone),
        RemoteParts::Listed(parts) => parts,
    };
    let journaled: HashSet<u32> = journal.parts.iter().map(|p| p.part_number).collect();
    let journaled_etag = |n: u32| {
        journal
            .parts
            .iter()
            .find(|p| p.part_number == n)
            .map(|p| p.etag.trim_matches('"'))
    };
    // A part the store holds but the journal missed (a crash between the two) is kept when
    // its ETag is this file's part MD5; a journaled part when the store lists the ETag the
    // journal recorded (an encrypting bucket's ETags are not MD5s); a store that lists no
    // ETags is trusted for journaled parts only.
    let candidates: Vec<&RemotePart> = listed
        .iter()
        .filter(|p| plan.contains(p.part_number))
        .filter(|p| p.size == plan.range(p.part_number).len)
        .filter(|p| !p.etag.is_empty() || journaled.contains(&p.part_number))
        .collect();
    let unhashed = unhashed_of(candidates.iter().map(|p| p.part_number), hashed);
    if !unhashed.is_empty() {
        return ResumePlan::Hash(unhashed);
    }
    let done = candidates
        .into_iter()
        .filter_map(|p| {
            let md5 = hex::encode(hashed.get(&p.part_number)?.md5?);
            let etag = p.etag.trim_matches('"');
            match etag.is_empty() {
                true => Some((p.part_number, format!("\"{md5}\""))),
                false if etag == md5 || journaled_etag(p.part_number) == Some(etag) => {
                    Some((p.part_number, p.etag.clone()))
                }
                false => None,
            }
        })
        .collect();
    ResumePlan::Resume(done)
}

/// Whether the file's part (as hashed now) is the one journaled: by its MD5, or by its
/// checksum where the MD5 was not computed (the store checked the checksums).
fn journaled_part_is(journaled: &PartRecord, now: &PartDigest) -> bool {
    match (&journaled.md5_hex, &journaled.checksum) {
        (m, _) if !m.is_empty() => now.md5.is_some_and(|n| hex::encode(n) == *m),
        (_, Some(c)) => *c == now.checksum,
        _ => false,
    }
}

fn unhashed_of(parts: impl Iterator<Item = u32>, hashed: &BTreeMap<u32, PartDigest>) -> Vec<u32> {
    parts
        .filter(|n| !hashed.contains_key(n))
        .take(HASH_BATCH)
        .collect()
}

/// What the queue records when an upload ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// It landed (recorded with its receipt).
    Done,
    /// It stays, to resume later, with its multipart upload.
    Paused,
    /// It could not run at all (its profile cannot be opened), or the store or backend could
    /// not be reached for now: failed with this reason, its multipart upload and its backend's
    /// ticket kept, so that a retry (or the next `upload` of the file) resumes it.
    Held {
        /// Why it could not run.
        reason: String,
    },
    /// It ended without landing, in this state with this reason; its multipart upload was
    /// aborted, so its id is forgotten (some stores still list parts of an aborted upload).
    Ended {
        /// Failed or cancelled.
        ending: Ending,
        /// Why, as the queue shows it.
        reason: String,
    },
}

/// What the queue records for `result`.
pub(crate) fn settle(result: &Result<UploadReceipt, TransferError>) -> Settlement {
    match result {
        Ok(_) => Settlement::Done,
        Err(TransferError::Paused) => Settlement::Paused,
        Err(TransferError::Cancelled) => Settlement::Ended {
            ending: Ending::Cancelled,
            reason: "cancelled".into(),
        },
        // Nothing of it is thrown away while the store or backend is out of reach.
        Err(e) if e.is_out_of_reach() => Settlement::Held {
            reason: e.to_string(),
        },
        Err(e) => Settlement::Ended {
            ending: Ending::Failed,
            reason: e.to_string(),
        },
    }
}

/// Makes `item` start over with the file's new `facts`: aborts its multipart upload when it
/// may still exist on `api`, forgets it and its parts in `journal`, records why, and tells
/// `progress`.
pub(crate) async fn restart(
    api: Option<&dyn MultipartApi>,
    clock: &dyn Clock,
    item: &QueueItem,
    journal: &dyn Journal,
    facts: SourceFacts<'_>,
    reason: RestartReason,
    progress: &ProgressFn,
) -> Result<(), TransferError> {
    if reason.aborts() {
        // A failed abort leaves parts that `hoist sweep` removes; the restart goes on.
        let _ = abort(api, clock, item).await;
    }
    journal.restarted(&Restart {
        size: facts.size,
        modified_ns: facts.modified_ns,
        fingerprint: facts.fingerprint,
        reason: reason.message(),
    })?;
    progress(TransferEvent::Restarted {
        reason: reason.message().into(),
    });
    Ok(())
}

/// Aborts `item`'s multipart upload, if it has one and `api` can reach it.
pub(crate) async fn abort(
    api: Option<&dyn MultipartApi>,
    clock: &dyn Clock,
    item: &QueueItem,
) -> Result<(), RemoteFailure> {
    match (&item.upload_id, api) {
        (Some(upload_id), Some(api)) => {
            let target = MultipartTarget {
                key: item.key.clone(),
                upload_id: upload_id.clone(),
            };
            api.abort_completely(&target, clock).await
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::ItemState;
    use md5::{Digest, Md5};

    const PLAN: PartPlan = PartPlan {
        size: 25,
        part_size: 10,
    };

    fn md5_of(n: u32) -> [u8; 16] {
        Md5::digest(n.to_be_bytes()).into()
    }

    fn crc_of(n: u32) -> crate::checksum::Checksum {
        crate::checksum::ChecksumAlgorithm::Crc64nvme.of(&n.to_be_bytes())
    }

    /// The digests of a part whose content is `n`'s.
    fn hashed_as(n: u32) -> PartDigest {
        PartDigest {
            md5: Some(md5_of(n)),
            checksum: crc_of(n),
            bytes: None,
        }
    }

    fn all_md5s() -> BTreeMap<u32, PartDigest> {
        (1..=3).map(|n| (n, hashed_as(n))).collect()
    }

    fn record(n: u32) -> PartRecord {
        PartRecord {
            part_number: n,
            etag: format!("\"{}\"", hex::encode(md5_of(n))),
            md5_hex: hex::encode(md5_of(n)),
            checksum: Some(crc_of(n)),
            size: PLAN.range(n).len,
        }
    }

    fn remote(n: u32, etag: &str) -> RemotePart {
        RemotePart {
            part_number: n,
            etag: etag.to_string(),
            size: PLAN.range(n).len,
        }
    }

    fn quoted(n: u32) -> String {
        format!("\"{}\"", hex::encode(md5_of(n)))
    }

    fn journal(parts: &[PartRecord]) -> Journaled<'_> {
        Journaled {
            upload_id: Some("u1"),
            part_size: Some(10),
            parts,
        }
    }

    /// Parts sent without an MD5 (the store checked their checksums) are journaled with their
    /// checksum only: the resumed file is checked by it.
    #[test]
    fn parts_journaled_without_an_md5_are_checked_by_their_checksum() {
        let parts: Vec<PartRecord> = (1..=2)
            .map(|n| PartRecord {
                md5_hex: String::new(),
                ..record(n)
            })
            .collect();
        let listed = RemoteParts::Listed(vec![remote(1, &quoted(1)), remote(2, &quoted(2))]);
        assert_eq!(
            reconcile(&journal(&parts), &listed, PLAN, &all_md5s()),
            ResumePlan::Resume([(1, quoted(1)), (2, quoted(2))].into())
        );
        let mut changed = all_md5s();
        changed.insert(2, hashed_as(9));
        assert_eq!(
            reconcile(&journal(&parts), &listed, PLAN, &changed),
            ResumePlan::Restart(RestartReason::SourceChanged)
        );
        // Neither an MD5 nor a checksum journaled: nothing proves the part is the file's.
        let bare = [PartRecord {
            md5_hex: String::new(),
            checksum: None,
            ..record(1)
        }];
        assert_eq!(
            reconcile(&journal(&bare), &listed, PLAN, &all_md5s()),
            ResumePlan::Restart(RestartReason::SourceChanged)
        );
    }

    #[test]
    fn nothing_journaled_starts_a_new_upload() {
        let j = Journaled {
            upload_id: None,
            part_size: None,
            parts: &[],
        };
        let plan = reconcile(&j, &RemoteParts::NotAsked, PLAN, &BTreeMap::new());
        assert_eq!(plan, ResumePlan::Start);
    }

    #[test]
    fn journaled_parts_are_hashed_before_the_store_is_asked() {
        let parts = [record(1), record(2)];
        let j = journal(&parts);
        let none = BTreeMap::new();
        assert_eq!(
            reconcile(&j, &RemoteParts::NotAsked, PLAN, &none),
            ResumePlan::Hash(vec![1, 2])
        );
        assert_eq!(
            reconcile(&j, &RemoteParts::NotAsked, PLAN, &all_md5s()),
            ResumePlan::ListParts
        );
    }

    #[test]
    fn a_part_whose_content_changed_restarts_without_asking_the_store() {
        let parts = [record(1), record(2)];
        let mut md5s = all_md5s();
        md5s.insert(2, hashed_as(9));
        let plan = reconcile(&journal(&parts), &RemoteParts::NotAsked, PLAN, &md5s);
        assert_eq!(plan, ResumePlan::Restart(RestartReason::SourceChanged));
    }

    #[test]
    fn another_part_size_or_an_impossible_part_restarts() {
        let parts = [record(1)];
        let mut j = journal(&parts);
        j.part_size = Some(5);
        let md5s = all_md5s();
        assert_eq!(
            reconcile(&j, &RemoteParts::NotAsked, PLAN, &md5s),
            ResumePlan::Restart(RestartReason::SourceChanged)
        );
        let parts = [record(4)];
        assert_eq!(
            reconcile(&journal(&parts), &RemoteParts::NotAsked, PLAN, &md5s),
            ResumePlan::Restart(RestartReason::SourceChanged)
        );
    }

    #[test]
    fn an_upload_the_store_lost_restarts_without_an_abort() {
        let parts = [record(1)];
        let plan = reconcile(&journal(&parts), &RemoteParts::Gone, PLAN, &all_md5s());
        assert_eq!(plan, ResumePlan::Restart(RestartReason::UploadGone));
        assert!(!RestartReason::UploadGone.aborts() && RestartReason::SourceChanged.aborts());
    }

    #[test]
    fn keeps_the_parts_the_store_holds_for_this_file() {
        let parts = [record(1)];
        // Part 2 was acknowledged but not journaled (a crash between the two): kept once its
        // ETag matches. Part 3 holds other bytes: sent again.
        let listed = RemoteParts::Listed(vec![
            remote(1, &quoted(1)),
            remote(2, &quoted(2)),
            remote(3, &quoted(7)),
        ]);
        let j = journal(&parts);
        let mut md5s: BTreeMap<u32, PartDigest> = [(1, hashed_as(1))].into();
        assert_eq!(
            reconcile(&j, &listed, PLAN, &md5s),
            ResumePlan::Hash(vec![2, 3])
        );
        md5s = all_md5s();
        let expected: BTreeMap<u32, String> = [(1, quoted(1)), (2, quoted(2))].into();
        assert_eq!(
            reconcile(&j, &listed, PLAN, &md5s),
            ResumePlan::Resume(expected)
        );
    }

    #[test]
    fn a_store_without_etags_is_trusted_for_journaled_parts_only() {
        let parts = [record(1)];
        let listed = RemoteParts::Listed(vec![remote(1, ""), remote(2, "")]);
        let expected: BTreeMap<u32, String> = [(1, quoted(1))].into();
        assert_eq!(
            reconcile(&journal(&parts), &listed, PLAN, &all_md5s()),
            ResumePlan::Resume(expected)
        );
    }

    /// A bucket encrypting with KMS or a customer key gives ETags that are not MD5s: a
    /// journaled part is kept when the store lists the ETag the journal recorded, and only then.
    #[test]
    fn an_encrypting_bucket_keeps_journaled_parts_by_their_recorded_etag() {
        let mut kms = record(1);
        kms.etag = "\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\"".into();
        let parts = [kms.clone()];
        let listed = RemoteParts::Listed(vec![
            remote(1, &kms.etag),
            remote(2, "\"ffffffffffffffffffffffffffffffff\""),
        ]);
        let expected: BTreeMap<u32, String> = [(1, kms.etag.clone())].into();
        assert_eq!(
            reconcile(&journal(&parts), &listed, PLAN, &all_md5s()),
            ResumePlan::Resume(expected),
            "part 1 kept by its journaled ETag; part 2, never journaled, sent again"
        );
        let other = RemoteParts::Listed(vec![remote(1, "\"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\"")]);
        assert_eq!(
            reconcile(&journal(&parts), &other, PLAN, &all_md5s()),
            ResumePlan::Resume(BTreeMap::new()),
            "another ETag than journaled: sent again"
        );
    }

    #[test]
    fn a_part_of_the_wrong_size_is_sent_again() {
        let parts = [record(1)];
        let mut short = remote(1, &quoted(1));
        short.size = 3;
        let listed = RemoteParts::Listed(vec![short]);
        assert_eq!(
            reconcile(&journal(&parts), &listed, PLAN, &all_md5s()),
            ResumePlan::Resume(BTreeMap::new())
        );
    }

    #[test]
    fn source_facts_tell_a_changed_file() {
        let item = QueueItem {
            id: 1,
            profile: "p".into(),
            path: "/f".into(),
            key: "k".into(),
            size: 10,
            content_type: "text/plain".into(),
            modified_ns: Some(5),
            fingerprint: "abc".into(),
            state: ItemState::Paused,
            upload_id: None,
            part_size: None,
            error: None,
            sha256: None,
            etag: None,
            updated_at: String::new(),
            location: None,
            created_at: String::new(),
            integrity: None,
            acked_bytes: 0,
            verified: false,
            ticket: None,
            relative_path: None,
            drop_id: None,
            held: false,
            destination: None,
        };
        let same = SourceFacts::of_item(&item);
        assert!(!same.differs_from(&item));
        for changed in [
            SourceFacts { size: 11, ..same },
            SourceFacts {
                modified_ns: Some(6),
                ..same
            },
            SourceFacts {
                fingerprint: "abd",
                ..same
            },
        ] {
            assert!(changed.differs_from(&item), "{changed:?}");
        }
    }

    #[test]
    fn settlements_follow_the_outcome() {
        assert_eq!(settle(&Err(TransferError::Paused)), Settlement::Paused);
        assert_eq!(
            settle(&Err(TransferError::Cancelled)),
            Settlement::Ended {
                ending: Ending::Cancelled,
                reason: "cancelled".into()
            }
        );
        match settle(&Err(TransferError::SourceChanged)) {
            Settlement::Ended { ending, reason } => {
                assert_eq!(ending, Ending::Failed);
                assert!(reason.contains("changed"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
