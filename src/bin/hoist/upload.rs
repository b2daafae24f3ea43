//! `hoist upload`: progress bars while files go, each file reported as it finishes (text or JSON
//! lines), then a summary.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use hoist::profile::ProfileStore;
use hoist::retry::RetryPolicy;
use hoist::secret::Keychain;
use hoist::session::{FileOutcome, Session, UploadError};
use hoist::upload::{ProgressFn, TransferEvent};
use hoist::{ErrorKind, HasKind, Hint};

use crate::args::UploadArgs;

pub(crate) fn upload(
    store: &ProfileStore,
    keychain: &Keychain,
    args: UploadArgs,
) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(args.profile.as_deref())?;
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let mut session = Session::open(profile, keychain, RetryPolicy::default()).await?;
        // The flag, else the overall limit the app (or an earlier run) keeps.
        if let Some(rate) = args.limit_rate.or(store.limit_rate()?) {
            session.obey(hoist::upload::throttle::RateLimit::new(Some(rate)));
        }
        let jobs = if args.paths.is_empty() {
            let jobs = session.unfinished_jobs()?;
            if jobs.is_empty() {
                bail!("nothing to upload: give files or folders (there are no unfinished uploads to resume)");
            }
            if !args.json {
                eprintln!(
                    "resuming {}",
                    hoist::app::count(jobs.len() as u64, "unfinished upload")
                );
            }
            jobs
        } else {
            session.expand(&args.paths)?
        };
        let control = session.control().clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\npausing: parts already sent are kept; run `hoist upload` to resume");
                control.pause();
            }
        });
        let bars = Bars::new(jobs.len(), args.json);
        let (mut uploaded, mut failed) = (0usize, Vec::new());
        session
            .upload_jobs_each(
                &jobs,
                |i| bars.progress_for(&jobs[i].path),
                |_, o| {
                    print_outcome(&session, &o, args.json, &bars);
                    match o.result {
                        Ok(_) => uploaded += 1,
                        Err(_) => failed.push(o.path),
                    }
                },
            )
            .await;
        bars.finish();
        let code = report(&session, uploaded, &failed, args.json)?;
        Ok(if session.control().is_stopped() { ExitCode::from(130) } else { code })
    })
}

/// Per-file and total progress bars on stderr (hidden when stderr is not a terminal). A file's
/// bar appears when its upload starts; in a batch of more than [`KEEP_BARS`] files it goes when
/// the file is done, so that a folder of 100,000 files holds a bar per file in flight, not one
/// per file (each costs kilobytes, and no terminal shows them all).
struct Bars {
    multi: MultiProgress,
    style: ProgressStyle,
    total: ProgressBar,
    /// Draw nothing per file (JSON, or stderr not a terminal).
    hidden: bool,
    keep_done: bool,
}

/// Batches up to this many files keep each file's bar when it is done.
const KEEP_BARS: usize = 50;

impl Bars {
    fn new(files: usize, quiet: bool) -> Self {
        let hidden = quiet || !std::io::stderr().is_terminal();
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template(
            "{prefix:30!} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let total = multi.add(ProgressBar::new(0).with_style(style.clone()));
        total.set_prefix(format!("total ({files} files)"));
        Self {
            multi,
            style,
            total,
            hidden,
            keep_done: files <= KEEP_BARS,
        }
    }

    fn progress_for(&self, path: &std::path::Path) -> ProgressFn {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (multi, style, hidden) = (self.multi.clone(), self.style.clone(), self.hidden);
        let (total, keep_done) = (self.total.clone(), self.keep_done);
        // The bar appears with the file's first event, not when it is queued.
        let slot = std::sync::OnceLock::<ProgressBar>::new();
        let make = {
            let (multi, total) = (multi.clone(), total.clone());
            move || match hidden {
                true => ProgressBar::hidden(),
                false => {
                    let bar = multi.insert_before(&total, ProgressBar::new(0).with_style(style));
                    bar.set_prefix(name);
                    bar
                }
            }
        };
        let last = Arc::new(std::sync::atomic::AtomicU64::new(0));
        Arc::new(move |event| {
            let bar = slot.get_or_init(|| make.clone()());
            match event {
                TransferEvent::Hashing { total: size } => {
                    bar.set_length(size);
                    total.inc_length(size);
                    bar.set_message("checksumming");
                }
                TransferEvent::Attempt { .. } => {
                    let before = last.swap(0, std::sync::atomic::Ordering::Relaxed);
                    total.set_position(total.position().saturating_sub(before));
                    bar.set_position(0);
                    bar.set_message("");
                }
                TransferEvent::Sent { bytes, .. } => {
                    let before = last.swap(bytes, std::sync::atomic::Ordering::Relaxed);
                    total.inc(bytes.saturating_sub(before));
                    bar.set_position(bytes);
                }
                TransferEvent::Retrying {
                    delay_ms, reason, ..
                } => {
                    bar.set_message(format!(
                        "retry in {:.1}s: {reason}",
                        delay_ms as f64 / 1000.0
                    ));
                }
                TransferEvent::Waiting { delay_ms, .. } => bar.set_message(format!(
                    "waiting for the server: {:.0}s",
                    (delay_ms as f64 / 1000.0).ceil()
                )),
                TransferEvent::Acknowledged { .. } if keep_done => bar.finish_with_message("done"),
                TransferEvent::Acknowledged { .. } => {
                    bar.finish_and_clear();
                    multi.remove(bar);
                }
                TransferEvent::Restarted { reason } => {
                    bar.set_message(format!("restarted: {reason}"))
                }
            }
        })
    }

    fn finish(&self) {
        self.total.finish();
        let _ = self.multi.clear();
    }
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    path: String,
    key: Option<&'a str>,
    size: Option<u64>,
    checksum: Option<String>,
    status: &'static str,
    error: Option<String>,
    location: Option<&'a str>,
    bytes_sent: Option<u64>,
    integrity: Option<&'a hoist::upload::Integrity>,
    encryption: Option<&'a str>,
    /// The backend checked what landed and moved it to `key`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    verified: bool,
}

/// What one file came to, printed as soon as it is known (a folder of 100,000 files reports as
/// it goes, not at the end): a JSON line, or a few lines of text above the progress bars.
fn print_outcome(session: &Session, o: &FileOutcome, json: bool, bars: &Bars) {
    let path = o.path.display().to_string();
    let text = match (&o.result, json) {
        (Ok(r), true) => serde_json::to_string(&JsonLine {
            path,
            key: Some(&r.key),
            size: Some(r.size),
            // The SHA-256 where there is one, else the checksum the store verified.
            checksum: r
                .sha256
                .as_ref()
                .map(|s| format!("sha256:{s}"))
                .or_else(|| {
                    r.integrity
                        .as_ref()
                        .map(|i| format!("{}:{}", i.algorithm, i.value))
                }),
            status: "uploaded",
            error: None,
            location: Some(&r.location),
            bytes_sent: Some(r.bytes_sent),
            integrity: r.integrity.as_ref(),
            encryption: r.encryption.as_deref(),
            verified: r.verified,
        })
        .unwrap_or_default(),
        (Err(e), true) => serde_json::to_string(&JsonLine {
            path,
            key: None,
            size: None,
            checksum: None,
            status: if e.kind() == ErrorKind::Paused {
                "paused"
            } else {
                "failed"
            },
            error: Some(describe(e, &session.profile().name)),
            location: None,
            bytes_sent: None,
            integrity: None,
            encryption: None,
            verified: false,
        })
        .unwrap_or_default(),
        (Ok(r), false) => {
            let mut t = format!(
                "uploaded  {path}\n          key     {}\n          size    {} bytes",
                r.key, r.size
            );
            if let Some(sha256) = &r.sha256 {
                t.push_str(&format!("\n          sha256  {sha256}"));
            }
            if let Some(i) = &r.integrity {
                t.push_str(&format!("\n          proof   {i}"));
            }
            if let Some(e) = &r.encryption {
                t.push_str(&format!("\n          sse     {e}"));
            }
            if r.verified {
                t.push_str("\n          checked verified by the backend (type, size, scan)");
            }
            t
        }
        (Err(e), false) => format!("FAILED    {path}: {}", describe(e, &session.profile().name)),
    };
    bars.multi.suspend(|| {
        println!("{text}");
        if let (Ok(r), Some(asked)) = (&o.result, &session.profile().object.encryption) {
            if r.encryption.as_deref() != Some(asked.as_str()) {
                eprintln!(
                    "warning: the storage did not confirm {asked} encryption for {} (it reported {}): \
                     it may ignore server-side encryption; check the object or the store",
                    r.key,
                    r.encryption.as_deref().unwrap_or("none")
                );
            }
        }
    });
}

/// The summary after every file: where the embedded store keeps files, the counts, the failed.
/// The summary after a batch: counts, and the files that failed (each was reported as it ended).
fn report(
    session: &Session,
    uploaded: usize,
    failed: &[std::path::PathBuf],
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !json {
        #[cfg(feature = "embedded-store")]
        if let Some(local) = session.local_store() {
            println!(
                "\nThe `local` profile stores files in the embedded store: {}",
                local.bucket_dir().display()
            );
        }
        let _ = session;
        println!("\n{} uploaded, {} failed", uploaded, failed.len());
        if !failed.is_empty() {
            eprintln!("failed files:");
            for path in failed {
                eprintln!("  {}", path.display());
            }
        }
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// An upload's error with the command line's advice for it.
fn describe(e: &UploadError, profile: &str) -> String {
    match (e.kind(), e.hint()) {
        (ErrorKind::Paused, _) => format!("{e}; run `hoist upload` again to resume"),
        (_, Some(Hint::SignIn)) => format!("{e}: sign in with `hoist login {profile}`"),
        (_, Some(hint)) => format!("{e}{}", crate::advice(&hint)),
        _ => e.to_string(),
    }
}
