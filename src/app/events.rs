//! Events on their way to a UI, coalesced: a folder of 100,000 files makes hundreds of
//! thousands of [`ManagerEvent`]s, and a webview that received each on its own would spend its
//! main thread (and its memory) on messages. A [`Coalescer`] keeps only the newest word on each
//! upload in the UI's view until the front end takes the lot (the desktop shell does every
//! 50 ms), in the order they came; the uploads out of view are summed up in one
//! [`ManagerEvent::QueueChanged`], on which the UI fetches its window again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

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
    /// The uploads the UI shows now; `None` until it says (then every event goes through).
    watched: Option<HashSet<i64>>,
    /// An upload out of view changed since the last take.
    elsewhere: bool,
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
            ManagerEvent::BatchFinished { .. }
            | ManagerEvent::QueueChanged
            | ManagerEvent::Added { .. } => None,
        };
        let Some(id) = id else {
            p.events.push(event);
            return;
        };
        if p.watched.as_ref().is_some_and(|w| !w.contains(&id)) {
            p.elsewhere = true;
            return;
        }
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

    /// From now on, only these uploads' own events go through (the rows the UI shows); the
    /// others' become one [`ManagerEvent::QueueChanged`] a take.
    pub fn watch(&self, ids: impl IntoIterator<Item = i64>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.watched = Some(ids.into_iter().collect());
    }

    /// Everything pending, oldest first; empty when nothing happened.
    pub fn take(&self) -> Vec<ManagerEvent> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.slot.clear();
        let mut events = std::mem::take(&mut p.events);
        if std::mem::take(&mut p.elsewhere) {
            events.push(ManagerEvent::QueueChanged);
        }
        events
    }
}

/// The coalescer of the UI's current subscription, told which rows the UI's window shows
/// whenever it fetches one (a new subscription replaces the old).
#[derive(Debug, Default)]
pub struct InView(Mutex<Weak<Coalescer>>);

impl InView {
    /// Makes `pending` the coalescer told from now on.
    pub fn attach(&self, pending: &Arc<Coalescer>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(pending);
    }

    /// Tells the current coalescer, if any, which uploads the UI shows.
    pub fn watch(&self, ids: impl IntoIterator<Item = i64>) {
        let pending = self.0.lock().unwrap_or_else(|e| e.into_inner()).upgrade();
        if let Some(pending) = pending {
            pending.watch(ids);
        }
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
    fn uploads_out_of_view_become_one_queue_changed_a_take() {
        let c = Coalescer::default();
        c.watch([2]);
        for id in [1, 3, 4] {
            c.push(ManagerEvent::Changed {
                row: row(id, Phase::Queued, 0),
            });
            c.push(ManagerEvent::Progress {
                id,
                sent: 5,
                total: 100,
            });
        }
        c.push(ManagerEvent::Progress {
            id: 2,
            sent: 7,
            total: 100,
        });
        c.push(ManagerEvent::BatchFinished { done: 4, failed: 0 });
        assert_eq!(
            c.take(),
            vec![
                ManagerEvent::Progress {
                    id: 2,
                    sent: 7,
                    total: 100
                },
                ManagerEvent::BatchFinished { done: 4, failed: 0 },
                ManagerEvent::QueueChanged,
            ]
        );
        assert!(c.take().is_empty(), "said once");
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
