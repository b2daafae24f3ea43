//! `hoist queue`, `hoist cancel` and `hoist sweep`: the queue and what is left on the store.

use std::path::PathBuf;
use std::process::ExitCode;

use hoist::profile::ProfileStore;
use hoist::queue::{ItemState, Queue};
use hoist::retry::RetryPolicy;
use hoist::secret::Keychain;
use hoist::session::{CancelError, Session};
use hoist::sweep::SweepOptions;

pub(crate) fn queue_command(limit: usize, json: bool) -> anyhow::Result<ExitCode> {
    let queue = Queue::open_default()?;
    let items = queue.recent(limit)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if items.is_empty() {
        println!("the queue is empty");
    } else {
        for i in items {
            let state = serde_json::to_value(i.state)?
                .as_str()
                .unwrap_or("")
                .to_string();
            println!(
                "{:<10} {:<10} {}  ->  {}",
                state,
                i.profile,
                i.path.display(),
                i.key
            );
            if let Some(e) = i.error.filter(|_| i.state != ItemState::Done) {
                println!("{:<21} {e}", "");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn cancel_command(
    store: &ProfileStore,
    keychain: &Keychain,
    profile: Option<String>,
    paths: Vec<PathBuf>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(profile.as_deref())?;
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let session = Session::open(profile, keychain, RetryPolicy::default()).await?;
        let queue = std::sync::Arc::clone(session.queue());
        let wanted: Vec<PathBuf> = paths
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .collect();
        let mut cancelled = 0;
        let profile = session.profile();
        for item in queue.unfinished(&profile.name, &profile.mode.destination())? {
            if !all && !wanted.contains(&item.path) {
                continue;
            }
            match session.cancel_stopped(&item).await {
                Err(CancelError::Abort(e)) => eprintln!(
                    "warning: could not abort the upload of {}: {e}; `hoist sweep` removes it later",
                    item.path.display()
                ),
                other => other?,
            }
            println!("cancelled {}", item.path.display());
            cancelled += 1;
        }
        if cancelled == 0 {
            println!("no unfinished upload matched");
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn sweep_command(
    store: &ProfileStore,
    keychain: &Keychain,
    profile: Option<String>,
    options: SweepOptions,
) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(profile.as_deref())?;
    let runtime = crate::runtime()?;
    let dry_run = options.dry_run;
    runtime.block_on(async {
        let session = Session::open(profile, keychain, RetryPolicy::default()).await?;
        let report = hoist::sweep::sweep(&session, &options).await?;
        for u in &report.aborted {
            println!(
                "{} {}  (upload {}, started {})",
                if dry_run { "would abort" } else { "aborted" },
                u.key,
                u.upload_id,
                u.initiated
            );
        }
        println!(
            "{} {}, {} kept because the queue can resume them, {} kept because \
             they started less than {} ago (--older-than)",
            hoist::app::count(report.aborted.len() as u64, "stale upload"),
            if dry_run { "found" } else { "aborted" },
            report.kept,
            report.recent,
            crate::args::format_age(options.min_age),
        );
        Ok(ExitCode::SUCCESS)
    })
}
