//! Transfer events of a running upload turned into its phase, its note and throttled progress
//! events for the window.

use std::sync::atomic::Ordering;

use super::*;

impl Manager {
    pub(super) fn set_phase(&self, id: i64, phase: Phase) {
        let changed = {
            let mut live = lock(&self.live);
            match live.get_mut(&id) {
                Some(l) if l.phase != phase => {
                    l.phase = phase;
                    true
                }
                _ => false,
            }
        };
        if changed {
            self.changed(id);
        }
    }

    pub(super) fn set_note(&self, id: i64, note: String) {
        if let Some(l) = lock(&self.live).get_mut(&id) {
            l.note = Some(note);
        }
        self.changed(id);
    }

    pub(super) fn on_transfer(&self, id: i64, event: TransferEvent) {
        match event {
            TransferEvent::Hashing { .. } | TransferEvent::Attempt { .. } => {
                self.set_phase(id, Phase::Signing)
            }
            TransferEvent::Sent { bytes, total } => {
                self.set_phase(
                    id,
                    if bytes >= total {
                        Phase::Verifying
                    } else {
                        Phase::Uploading
                    },
                );
                let due = {
                    let mut live = lock(&self.live);
                    let Some(l) = live.get_mut(&id) else { return };
                    self.sent_ever
                        .fetch_add(bytes.saturating_sub(l.sent), Ordering::Relaxed);
                    l.sent = bytes;
                    let now = Instant::now();
                    let due = l
                        .last_progress
                        .is_none_or(|t| now.duration_since(t) >= PROGRESS_INTERVAL)
                        || bytes >= total;
                    if due {
                        l.last_progress = Some(now);
                    }
                    due
                };
                if due {
                    self.emit(ManagerEvent::Progress {
                        id,
                        sent: bytes,
                        total,
                    });
                }
            }
            TransferEvent::Retrying {
                attempt,
                delay_ms,
                reason,
            } => self.set_note(
                id,
                format!(
                    "attempt {attempt} failed ({reason}); retrying in {:.1} s",
                    delay_ms as f64 / 1000.0
                ),
            ),
            TransferEvent::Waiting { delay_ms, reason } => self.set_note(
                id,
                format!(
                    "waiting for the server ({reason}); going on in {:.0} s",
                    (delay_ms as f64 / 1000.0).ceil()
                ),
            ),
            TransferEvent::Acknowledged { .. } => self.set_phase(id, Phase::Verifying),
            TransferEvent::Restarted { reason } => {
                self.set_note(id, format!("started over: {reason}"))
            }
        }
    }
}
