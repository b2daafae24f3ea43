//! Events on their way to a UI, coalesced: a folder of 100,000 files makes hundreds of
//! thousands of [`ManagerEvent`]s, and a webview that received each on its own would spend its
//! main thread on messages. A [`Coalescer`] keeps only the newest word on each upload until
//! the front end takes the lot (the desktop shell does every 50 ms), in the order they came.

use std::collections::HashMap;
use std::sync::Mutex;

use super::views::ManagerEvent;

/// Pending events: per upload the newest row or progress, and every batch end.
#[derive(Debug, Default)]
pub struct Coalescer {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    events: Vec<ManagerEvent>,
    /// Where each upload's event sits in `events`.
    slot: HashMap<i64, usize>,
}

impl Coalescer {
    /// Adds `event`, replacing what is pending for the same upload: a newer row replaces an
    /// older one or its progress; progress updates a pending row's bytes, or replaces older
    /// progress.
    pub fn push(&self, event: ManagerEvent) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let id = match &event {
            ManagerEvent::Changed { row } => Some(row.id),
            ManagerEvent::Progress { id, .. } => Some(*id),
            ManagerEvent::BatchFinished { .. } => None,
        };
        let Some(id) = id else {
            p.events.push(event);
            return;
        };
        match p.slot.get(&id).copied() {
            Some(i) => {
                let merged = match (&mut p.events[i], event) {
                    (ManagerEvent::Changed { row }, ManagerEvent::Progress { sent, total, .. }) => {
                        row.sent = sent;
                        row.size = total;
                        None
                    }
                    (_, newer) => Some(newer),
                };
                if let Some(newer) = merged {
                    p.events[i] = newer;
                }
            }
            None => {
                let i = p.events.len();
                p.events.push(event);
                p.slot.insert(id, i);
            }
        }
    }

    /// Everything pending, oldest first; empty when nothing happened.
    pub fn take(&self) -> Vec<ManagerEvent> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.slot.clear();
        std::mem::take(&mut p.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::views::{Phase, UploadRow};

    fn row(id: i64, phase: Phase, sent: u64) -> UploadRow {
        UploadRow {
            id,
            profile: "local".into(),
            path: format!("/tmp/f{id}"),
            name: format!("f{id}"),
            key: format!("uploads/f{id}"),
            size: 100,
            phase,
            sent,
            error: None,
            sha256: None,
            location: None,
            verified: false,
        }
    }

    #[test]
    fn keeps_the_newest_word_on_each_upload_in_order() {
        let c = Coalescer::default();
        c.push(ManagerEvent::Changed {
            row: row(1, Phase::Queued, 0),
        });
        c.push(ManagerEvent::Changed {
            row: row(2, Phase::Queued, 0),
        });
        c.push(ManagerEvent::Progress {
            id: 1,
            sent: 40,
            total: 100,
        });
        c.push(ManagerEvent::BatchFinished { done: 0, failed: 0 });
        c.push(ManagerEvent::Changed {
            row: row(2, Phase::Done, 100),
        });
        let events = c.take();
        assert_eq!(
            events,
            vec![
                ManagerEvent::Changed {
                    row: row(1, Phase::Queued, 40)
                },
                ManagerEvent::Changed {
                    row: row(2, Phase::Done, 100)
                },
                ManagerEvent::BatchFinished { done: 0, failed: 0 },
            ]
        );
        assert!(c.take().is_empty());
        c.push(ManagerEvent::Progress {
            id: 1,
            sent: 50,
            total: 100,
        });
        c.push(ManagerEvent::Progress {
            id: 1,
            sent: 60,
            total: 100,
        });
        assert_eq!(
            c.take(),
            vec![ManagerEvent::Progress {
                id: 1,
                sent: 60,
                total: 100
            }]
        );
    }
}
