//! The one writer of an upload's lifecycle: every change of a queue item's state
//! ([`ItemState`]), of its multipart upload and of its journaled parts goes through
//! [`Lifecycle`], and nowhere else (the statements are private to this module, so the
//! compiler holds the rule).
//!
//! ```text
//!   add ─▶ queued ──started──▶ uploading ──landed──▶ done
//!            ▲  ▲                 │  │  │
//!            │  └──requeued───────┼──┼──┴─paused──▶ paused ─┐
//!            │                    │  └─held (out of reach)─▶ failed, upload kept
//!            └──────requeued──────┴─ended──▶ failed / cancelled, upload forgotten
//! ```
//!
//! While an item uploads, the engine journals through it what must outlive a crash: the key a
//! backend assigned ([`Lifecycle::assigned`]) and a multipart upload's id
//! ([`Lifecycle::multipart_created`]) before the first byte goes, and each acknowledged part
//! ([`Lifecycle::part_acknowledged`]). Each change is one transaction.

use rusqlite::params;

use super::{ItemState, Landed, PartRecord, Queue, QueueError};
use crate::checksum::Checksum;
use crate::key::Assigned;

/// How an upload ended without landing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It failed for good (its multipart upload was aborted).
    Failed,
    /// The user cancelled it (its multipart upload was aborted).
    Cancelled,
}

impl Ending {
    /// The state the item ends in.
    pub fn state(self) -> ItemState {
        match self {
            Self::Failed => ItemState::Failed,
            Self::Cancelled => ItemState::Cancelled,
        }
    }
}

/// What the file was when its upload restarted.
#[derive(Clone, Copy, Debug)]
pub struct Restart<'a> {
    /// Bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: Option<i64>,
    /// The content sample.
    pub fingerprint: &'a str,
    /// Why it restarted, as the queue shows it.
    pub reason: &'a str,
}

/// The only writer of queue items' states and parts ([`Queue::lifecycle`]).
#[derive(Clone, Copy)]
pub struct Lifecycle<'q> {
    queue: &'q Queue,
}

impl Queue {
    /// Where an upload's state changes are recorded.
    pub fn lifecycle(&self) -> Lifecycle<'_> {
        Lifecycle { queue: self }
    }
}

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl Lifecycle<'_> {
    fn set_state(&self, id: i64, state: ItemState, error: Option<&str>) -> Result<(), QueueError> {
        self.queue.conn().execute(
            &format!(
                "UPDATE items SET state = ?2, error = ?3, held = 0, updated_at = {NOW} WHERE id = ?1"
            ),
            params![id, state.as_str(), error],
        )?;
        Ok(())
    }

    /// Item `id`'s transfer began.
    pub fn started(&self, id: i64) -> Result<(), QueueError> {
        self.set_state(id, ItemState::Uploading, None)
    }

    /// Item `id` waits for its turn again (resumed or retried by the user); what it journaled
    /// is kept, so it goes on from there.
    pub fn requeued(&self, id: i64) -> Result<(), QueueError> {
        self.set_state(id, ItemState::Queued, None)
    }

    /// Item `id` was paused, its multipart upload kept for the resume.
    pub fn paused(&self, id: i64) -> Result<(), QueueError> {
        self.set_state(id, ItemState::Paused, Some("paused"))
    }

    /// Item `id` failed for now, with `reason`: its store or backend could not be reached (or
    /// its profile opened), and it keeps its multipart upload and ticket to go on once they can.
    pub fn held(&self, id: i64, reason: &str) -> Result<(), QueueError> {
        self.queue.conn().execute(
            &format!(
                "UPDATE items SET state = 'failed', error = ?2, held = 1, updated_at = {NOW} WHERE id = ?1"
            ),
            params![id, reason],
        )?;
        Ok(())
    }

    /// Item `id` ended without landing: its multipart upload was aborted (its id is dead),
    /// so the upload, its parts and any backend's ticket are forgotten — tried again, it
    /// starts anew. One transaction.
    pub fn ended(&self, id: i64, ending: Ending, reason: &str) -> Result<(), QueueError> {
        let mut c = self.queue.conn();
        let tx = c.transaction()?;
        tx.execute("DELETE FROM parts WHERE item = ?1", [id])?;
        tx.execute(
            &format!(
                "UPDATE items SET upload_id = NULL, part_size = NULL, ticket = NULL, state = ?2,
                 error = ?3, held = 0, updated_at = {NOW} WHERE id = ?1"
            ),
            params![id, ending.state().as_str(), reason],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Item `id`'s file changed (or its upload vanished): the old multipart upload (aborted
    /// where it may exist) and its parts and ticket are forgotten, and the file's new facts
    /// recorded with the reason.
    pub fn restarted(&self, id: i64, restart: &Restart<'_>) -> Result<(), QueueError> {
        let mut c = self.queue.conn();
        let tx = c.transaction()?;
        tx.execute("DELETE FROM parts WHERE item = ?1", [id])?;
        tx.execute(
            &format!(
                "UPDATE items SET upload_id = NULL, part_size = NULL, ticket = NULL, size = ?2,
                 modified_ns = ?3, fingerprint = ?4, error = ?5, updated_at = {NOW} WHERE id = ?1"
            ),
            params![
                id,
                restart.size as i64,
                restart.modified_ns,
                restart.fingerprint,
                restart.reason
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The keys backends assigned (with their tickets), in one commit: before the first byte
    /// of these files goes, so that a resume asks for the same keys.
    pub fn assigned(&self, assigned: &[(i64, &Assigned)]) -> Result<(), QueueError> {
        if assigned.is_empty() {
            return Ok(());
        }
        let mut c = self.queue.conn();
        let tx = c.transaction()?;
        {
            let mut st =
                tx.prepare_cached("UPDATE items SET key = ?2, ticket = ?3 WHERE id = ?1")?;
            for (id, a) in assigned {
                st.execute(params![id, a.key, a.ticket])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A new multipart upload at `key` (a backend chooses its own), before its first part
    /// goes; parts of any earlier one are forgotten.
    pub fn multipart_created(
        &self,
        id: i64,
        key: &str,
        upload_id: &str,
        part_size: u64,
    ) -> Result<(), QueueError> {
        let mut c = self.queue.conn();
        let tx = c.transaction()?;
        tx.execute("DELETE FROM parts WHERE item = ?1", [id])?;
        tx.execute(
            &format!(
                "UPDATE items SET key = ?2, upload_id = ?3, part_size = ?4, updated_at = {NOW} WHERE id = ?1"
            ),
            params![id, key, upload_id, part_size as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Fails, with the reason, the unfinished items of `profile` queued for another
    /// destination than `destination`: a profile removed and made again under the same name
    /// (or edited) to send files elsewhere must not take the old one's files there unasked
    /// (#29, finding 10). Items queued before destinations were recorded have none and are
    /// left as they are.
    pub fn moved_away(&self, profile: &str, destination: &str) -> Result<(), QueueError> {
        self.queue.conn().execute(
            &format!(
                "UPDATE items SET state = 'failed', held = 0,
                     error = 'not resumed: it was queued to go to ' || destination || ', and profile ' ||
                             profile || ' now sends files to ' || ?2 || '; add the file again to send it there',
                     updated_at = {NOW}
                 WHERE profile = ?1 AND destination IS NOT NULL AND destination != ?2 AND {}",
                super::RESUMABLE
            ),
            params![profile, destination],
        )?;
        Ok(())
    }

    /// A part the store acknowledged.
    pub fn part_acknowledged(&self, id: i64, part: &PartRecord) -> Result<(), QueueError> {
        self.queue.conn().execute(
            "INSERT OR REPLACE INTO parts (item, part_number, etag, md5, size, checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                part.part_number,
                part.etag,
                part.md5_hex,
                part.size as i64,
                part.checksum.as_ref().map(Checksum::to_string)
            ],
        )?;
        Ok(())
    }

    /// Item `id` landed, with what landed; its parts are no longer needed.
    pub fn landed(&self, id: i64, landed: &Landed<'_>) -> Result<(), QueueError> {
        let mut c = self.queue.conn();
        let tx = c.transaction()?;
        tx.execute("DELETE FROM parts WHERE item = ?1", [id])?;
        tx.execute(
            &format!(
                "UPDATE items SET state = 'done', key = ?2, sha256 = ?3, etag = ?4, location = ?5,
                 error = NULL, held = 0, upload_id = NULL, integrity = ?6, verified = ?7,
                 updated_at = {NOW} WHERE id = ?1"
            ),
            params![
                id,
                landed.key,
                landed.sha256,
                landed.etag,
                landed.location,
                landed.integrity,
                landed.verified
            ],
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::queue::NewItem;

    fn part(n: u32) -> PartRecord {
        PartRecord {
            part_number: n,
            etag: format!("\"e{n}\""),
            md5_hex: String::new(),
            checksum: None,
            size: 5,
        }
    }

    /// What a resume needs survives a hold and a requeue; an ending forgets it whole, so a
    /// retried upload never continues an aborted upload id or presents a dead ticket.
    #[test]
    fn a_hold_keeps_what_a_resume_needs_and_an_ending_forgets_it_all() {
        let q = Queue::in_memory().unwrap();
        let id = q
            .add(&NewItem {
                size: 10,
                fingerprint: "f",
                ..NewItem::for_test(Path::new("/data/big.bin"), "local")
            })
            .unwrap();
        let life = q.lifecycle();
        life.started(id).unwrap();
        life.assigned(&[(
            id,
            &Assigned {
                key: "uploads/one-id/big.bin".into(),
                ticket: "t1".into(),
            },
        )])
        .unwrap();
        life.multipart_created(id, "uploads/one-id/big.bin", "up-1", 5)
            .unwrap();
        life.part_acknowledged(id, &part(1)).unwrap();

        life.held(id, "the backend cannot be reached").unwrap();
        let held = q.get(id).unwrap().unwrap();
        assert_eq!((held.state, held.held), (ItemState::Failed, true));
        assert_eq!(held.upload_id.as_deref(), Some("up-1"));
        assert_eq!(held.ticket.as_deref(), Some("t1"));
        assert_eq!(q.parts(id).unwrap(), vec![part(1)]);

        life.requeued(id).unwrap();
        let queued = q.get(id).unwrap().unwrap();
        assert_eq!((queued.state, queued.held), (ItemState::Queued, false));
        assert_eq!(queued.upload_id.as_deref(), Some("up-1"));
        assert_eq!(queued.key, "uploads/one-id/big.bin");

        life.ended(id, Ending::Cancelled, "cancelled").unwrap();
        let ended = q.get(id).unwrap().unwrap();
        assert_eq!(ended.state, ItemState::Cancelled);
        assert_eq!(ended.error.as_deref(), Some("cancelled"));
        assert_eq!((ended.upload_id, ended.ticket), (None, None));
        assert!(q.parts(id).unwrap().is_empty());
    }
}
