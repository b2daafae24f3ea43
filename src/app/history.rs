//! The history of finished uploads, and its export as CSV or JSON.

use std::path::Path;

use super::error::{write_atomically, ManagerError};
use super::views::{
    file_name, ExportFormat, HistoryCursor, HistoryEntry, HistoryPage, HistoryQuery,
};
use super::{Manager, HISTORY_PAGE, HISTORY_PAGE_MAX};
use crate::queue::QueueItem;

fn entry_of(i: QueueItem, shareable: bool) -> HistoryEntry {
    HistoryEntry {
        shareable,
        id: i.id,
        profile: i.profile,
        name: file_name(&i.path),
        key: i.key,
        size: i.size,
        sha256: i.sha256.filter(|s| !s.is_empty()),
        etag: i.etag,
        integrity: i.integrity,
        url: i.location,
        finished_at: i.updated_at,
        verified: i.verified,
    }
}

impl Manager {
    /// Entries of `items`, each told whether its profile can make share links (profiles
    /// looked up once each; a removed profile's uploads cannot).
    fn entries(&self, items: Vec<QueueItem>) -> Vec<HistoryEntry> {
        let mut shareable: std::collections::HashMap<String, bool> = Default::default();
        items
            .into_iter()
            .map(|i| {
                let can = *shareable.entry(i.profile.clone()).or_insert_with(|| {
                    self.config
                        .profiles
                        .get(&i.profile)
                        .is_ok_and(|p| !matches!(p.mode, crate::profile::Mode::Backend { .. }))
                });
                entry_of(i, can)
            })
            .collect()
    }

    /// Every finished upload, newest first (what an export holds).
    pub fn history(&self) -> Result<Vec<HistoryEntry>, ManagerError> {
        Ok(self.entries(self.queue.history(usize::MAX >> 1)?))
    }

    /// A page of finished uploads, newest first, found in the queue's index (the app never
    /// holds the whole history).
    pub fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage, ManagerError> {
        let limit = query
            .limit
            .unwrap_or(HISTORY_PAGE)
            .clamp(1, HISTORY_PAGE_MAX) as usize;
        let before = query
            .before
            .as_ref()
            .map(|c| (c.finished_at.as_str(), c.id));
        let (items, total) = self
            .queue
            .history_page(query.search.as_deref(), before, limit)?;
        let entries = self.entries(items);
        let next = (entries.len() == limit)
            .then(|| entries.last())
            .flatten()
            .map(|e| HistoryCursor {
                finished_at: e.finished_at.clone(),
                id: e.id,
            });
        Ok(HistoryPage {
            entries,
            total,
            next,
        })
    }

    /// A link that downloads finished upload `id` for anyone who has it, for `expires_in`
    /// (see [`crate::session::Session::share_link`]).
    pub async fn share_link(
        &self,
        id: i64,
        expires_in: std::time::Duration,
    ) -> Result<String, ManagerError> {
        let item = self.queue.get(id)?.ok_or(ManagerError::NotFound(id))?;
        if item.state != crate::queue::ItemState::Done {
            return Err(ManagerError::Invalid(
                "only a finished upload can be shared".into(),
            ));
        }
        let session = self.session(&item.profile).await?;
        let now = self.config.retry.clock.now();
        session
            .share_link(&item.key, expires_in, now)
            .map_err(|e| crate::session::SessionError::from(e).into())
    }

    /// Writes the history to `path` as CSV or JSON; returns how many uploads it holds.
    pub fn export_history(&self, format: ExportFormat, path: &Path) -> Result<usize, ManagerError> {
        let entries = self.history()?;
        let text = render_history(&entries, format)?;
        write_atomically(path, text.as_bytes())?;
        Ok(entries.len())
    }
}

/// The history as CSV (one header row) or pretty JSON.
pub fn render_history(
    entries: &[HistoryEntry],
    format: ExportFormat,
) -> Result<String, ManagerError> {
    let fail = |e: &dyn std::fmt::Display| ManagerError::Invalid(format!("cannot export: {e}"));
    match format {
        ExportFormat::Json => {
            let rows: Vec<Exported<'_>> = entries.iter().map(Exported::from).collect();
            serde_json::to_string_pretty(&rows).map_err(|e| fail(&e))
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for e in entries {
                w.serialize(Exported::from(&spreadsheet_safe(e)))
                    .map_err(|e| fail(&e))?;
            }
            let bytes = w.into_inner().map_err(|e| fail(&e))?;
            String::from_utf8(bytes).map_err(|e| fail(&e))
        }
    }
}

/// A finished upload as an export holds it: what landed and where, not what the window offers
/// (`shareable`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Exported<'a> {
    id: i64,
    profile: &'a str,
    name: &'a str,
    key: &'a str,
    size: u64,
    sha256: Option<&'a str>,
    etag: Option<&'a str>,
    integrity: Option<&'a str>,
    url: Option<&'a str>,
    finished_at: &'a str,
    verified: bool,
}

impl<'a> From<&'a HistoryEntry> for Exported<'a> {
    fn from(e: &'a HistoryEntry) -> Self {
        Self {
            id: e.id,
            profile: &e.profile,
            name: &e.name,
            key: &e.key,
            size: e.size,
            sha256: e.sha256.as_deref(),
            etag: e.etag.as_deref(),
            integrity: e.integrity.as_deref(),
            url: e.url.as_deref(),
            finished_at: &e.finished_at,
            verified: e.verified,
        }
    }
}

/// An entry whose text cells cannot run as spreadsheet formulas: a cell starting with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a leading `'` (file names come from anyone).
fn spreadsheet_safe(e: &HistoryEntry) -> HistoryEntry {
    let cell = |s: &str| match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    };
    HistoryEntry {
        profile: cell(&e.profile),
        name: cell(&e.name),
        key: cell(&e.key),
        url: e.url.as_deref().map(cell),
        ..e.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (security review): a file named like a formula ran in a spreadsheet that
    /// opened the CSV export.
    #[test]
    fn csv_cells_never_start_a_formula() {
        let entry = HistoryEntry {
            id: 1,
            profile: "local".into(),
            name: "=HYPERLINK(\"http://x\")".into(),
            key: "uploads/=HYPERLINK.txt".into(),
            size: 1,
            sha256: Some("ab".into()),
            etag: None,
            integrity: None,
            url: None,
            finished_at: "2026-11-30T00:00:00Z".into(),
            verified: false,
            shareable: true,
        };
        let csv = render_history(std::slice::from_ref(&entry), ExportFormat::Csv).unwrap();
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
        assert!(!csv.lines().any(|l| l.contains(",=")), "{csv}");
        let json = render_history(&[entry], ExportFormat::Json).unwrap();
        assert!(
            json.contains("\"=HYPERLINK"),
            "JSON keeps the name as it is: {json}"
        );
    }
}
