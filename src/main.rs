//! `hoist`: upload files to S3 from the command line.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use hoist::profile::{self, Mode, Profile, ProfileStore, Protocol};
use hoist::queue::{ItemState, Queue};
use hoist::retry::RetryPolicy;
use hoist::secret::{Keychain, Secret, SecretKind};
use hoist::session::{CancelError, FileOutcome, Session, UploadError};
use hoist::upload::{ProgressFn, TransferEvent};
use hoist::{ErrorKind, HasKind};

/// Hoist streams files into S3 through presigned URLs, with retries and proof of integrity.
///
/// With no profile configured, uploads go to the embedded `local` store under the data
/// directory, so everything works without a cloud account.
#[derive(Parser)]
#[command(name = "hoist", version, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); HOIST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload files and folders; exits 0 when every file landed, 1 otherwise (the failed files
    /// are listed), 130 when paused with Ctrl-C. Large files go in parts and resume where they
    /// stopped, even after a crash: run `hoist upload` again.
    Upload(UploadArgs),
    /// Show the upload queue: recent uploads with their state and reason.
    Queue {
        /// How many items to show.
        #[arg(long, default_value_t = 30)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel unfinished uploads: abort their multipart upload so no parts stay behind.
    Cancel {
        #[arg(long, short, env = "HOIST_PROFILE")]
        profile: Option<String>,
        /// Files whose unfinished upload to cancel.
        #[arg(value_name = "PATH", required_unless_present = "all")]
        paths: Vec<PathBuf>,
        /// Cancel every unfinished upload of the profile.
        #[arg(long)]
        all: bool,
    },
    /// List and abort stale multipart uploads under the profile's prefix (self-sign and local
    /// profiles); uploads the queue can still resume are left alone.
    Sweep {
        #[arg(long, short, env = "HOIST_PROFILE")]
        profile: Option<String>,
        /// Only list what would be aborted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Manage bucket profiles (stored in HOIST_CONFIG_DIR or the platform config dir).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Manage a profile's secrets in the OS keychain.
    #[command(subcommand)]
    Secret(SecretCommand),
}

#[derive(Args)]
struct UploadArgs {
    /// Profile to use [default: the default profile, else `local`].
    #[arg(long, short, env = "HOIST_PROFILE")]
    profile: Option<String>,
    /// Print one JSON object per file (path, key, size, checksum, status, error) instead of text.
    #[arg(long)]
    json: bool,
    /// Files and folders to upload (folders keep their structure in the keys). With none,
    /// the profile's unfinished uploads are resumed.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Add a profile: either self-signing (--bucket, --region, --access-key-id) or staff (--backend).
    Add(Box<AddArgs>),
    /// List profiles.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one profile and whether its secrets are in the keychain.
    Show {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile and its keychain secrets.
    Remove { name: String },
    /// Make a profile the default (`local` for the embedded store).
    Default { name: String },
}

#[derive(Args)]
struct AddArgs {
    /// Profile name: letters, digits, '-' and '_'.
    name: String,
    /// Self-sign: the bucket.
    #[arg(long, conflicts_with = "backend", requires_all = ["region", "access_key_id"])]
    bucket: Option<String>,
    /// Self-sign: the bucket's region, e.g. eu-west-1.
    #[arg(long)]
    region: Option<String>,
    /// Self-sign: an S3-compatible endpoint URL instead of AWS.
    #[arg(long)]
    endpoint: Option<String>,
    /// Self-sign: path-style URLs (endpoint/bucket/key), as most S3-compatible stores want.
    #[arg(long)]
    path_style: bool,
    /// Self-sign: the access key id (the secret key goes in the keychain: `hoist secret set`).
    #[arg(long)]
    access_key_id: Option<String>,
    /// Staff: the presign backend's URL, e.g. https://uploads.example.com/api/upload.
    #[arg(long, required_unless_present = "bucket")]
    backend: Option<String>,
    /// Staff: the backend's protocol.
    #[arg(long, value_enum, default_value = "simple")]
    protocol: ProtocolArg,
    /// Staff: send a bearer token (store it with `hoist secret set NAME`).
    #[arg(long)]
    token: bool,
    /// Key prefix, e.g. `uploads/` (self-sign only; a backend picks its own keys).
    #[arg(long, default_value = "")]
    prefix: String,
    /// Key template with {yyyy} {mm} {dd} {date} {uuid} {name}.
    #[arg(long, default_value = profile::DEFAULT_KEY_TEMPLATE)]
    key_template: String,
    /// Largest file accepted, e.g. 100MB or 5GiB.
    #[arg(long, value_parser = profile::parse_size)]
    max_size: Option<u64>,
    /// An allowed MIME type, e.g. image/* (repeat for more; none means any).
    #[arg(long = "allow-type", value_name = "TYPE")]
    allow_types: Vec<String>,
    /// Files uploaded at once.
    #[arg(long, default_value_t = profile::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Also make it the default profile.
    #[arg(long)]
    default: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtocolArg {
    /// POST URL {fileName, contentType, size} -> {url, ...}; single PUTs up to 5 GiB.
    Simple,
    /// Uppy Companion's /s3/params and /s3/multipart endpoints under URL; large files in parts.
    Companion,
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Store a secret: read from stdin when piped, else asked for without echo.
    Set {
        profile: String,
        /// Which secret [default: secret-access-key for self-sign, bearer-token for backend].
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// Delete a secret from the keychain.
    Remove {
        profile: String,
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    SecretAccessKey,
    SessionToken,
    BearerToken,
}

impl From<KindArg> for SecretKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::SecretAccessKey => SecretKind::SecretAccessKey,
            KindArg::SessionToken => SecretKind::SessionToken,
            KindArg::BearerToken => SecretKind::BearerToken,
        }
    }
}

fn main() -> ExitCode {
    hoist::memory::limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", hoist::redact::redact(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        // The embedded store logs the answers it gives as errors; Hoist reports them itself.
        0 => "error,s3s=off",
        1 => "hoist=info",
        2 => "hoist=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| hoist::redact::RedactingWriter::new(std::io::stderr()))
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let store = ProfileStore::open_default();
    let keychain = Keychain::default();
    match cli.command {
        Command::Upload(args) => upload(&store, &keychain, args),
        Command::Queue { limit, json } => queue_command(limit, json),
        Command::Cancel {
            profile,
            paths,
            all,
        } => cancel_command(&store, &keychain, profile, paths, all),
        Command::Sweep { profile, dry_run } => sweep_command(&store, &keychain, profile, dry_run),
        Command::Profile(cmd) => profile_command(&store, &keychain, cmd),
        Command::Secret(cmd) => secret_command(&store, &keychain, cmd),
    }
}

fn upload(store: &ProfileStore, keychain: &Keychain, args: UploadArgs) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(args.profile.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let session = Session::open(profile, keychain, RetryPolicy::default()).await?;
        let jobs = if args.paths.is_empty() {
            let jobs = session.unfinished_jobs()?;
            if jobs.is_empty() {
                bail!("nothing to upload: give files or folders (there are no unfinished uploads to resume)");
            }
            if !args.json {
                eprintln!("resuming {} unfinished upload(s)", jobs.len());
            }
            jobs
        } else {
            hoist::session::expand(&args.paths)
        };
        let control = session.control().clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\npausing: parts already sent are kept; run `hoist upload` to resume");
                control.pause();
            }
        });
        let paths: Vec<PathBuf> = jobs.iter().map(|j| j.path.clone()).collect();
        let bars = Bars::new(&paths, args.json);
        let outcomes = session.upload_jobs(&jobs, |i| bars.progress_for(i)).await;
        bars.finish();
        let code = report(&session, &outcomes, args.json)?;
        Ok(if session.control().is_stopped() { ExitCode::from(130) } else { code })
    })
}

/// Per-file and total progress bars on stderr (hidden when stderr is not a terminal).
struct Bars {
    multi: MultiProgress,
    files: Vec<ProgressBar>,
    total: ProgressBar,
}

impl Bars {
    fn new(paths: &[PathBuf], quiet: bool) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
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
        let files = paths
            .iter()
            .map(|p| {
                let bar = multi.add(ProgressBar::new(0).with_style(style.clone()));
                bar.set_prefix(
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
                bar
            })
            .collect();
        let total = multi.add(ProgressBar::new(0).with_style(style));
        total.set_prefix(format!("total ({} files)", paths.len()));
        Bars {
            multi,
            files,
            total,
        }
    }

    fn progress_for(&self, i: usize) -> ProgressFn {
        let bar = self.files[i].clone();
        let total = self.total.clone();
        let last = Arc::new(std::sync::atomic::AtomicU64::new(0));
        Arc::new(move |event| match event {
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
            TransferEvent::Acknowledged { .. } => bar.finish_with_message("done"),
            TransferEvent::Restarted { reason } => bar.set_message(format!("restarted: {reason}")),
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
}

fn report(session: &Session, outcomes: &[FileOutcome], json: bool) -> anyhow::Result<ExitCode> {
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    for o in outcomes {
        let path = o.path.display().to_string();
        match (&o.result, json) {
            (Ok(r), true) => println!(
                "{}",
                serde_json::to_string(&JsonLine {
                    path,
                    key: Some(&r.key),
                    size: Some(r.size),
                    checksum: Some(format!("sha256:{}", r.sha256)),
                    status: "uploaded",
                    error: None,
                    location: Some(&r.location),
                    bytes_sent: Some(r.bytes_sent),
                })?
            ),
            (Err(e), true) => println!(
                "{}",
                serde_json::to_string(&JsonLine {
                    path,
                    key: None,
                    size: None,
                    checksum: None,
                    status: if e.kind() == ErrorKind::Paused { "paused" } else { "failed" },
                    error: Some(describe(e)),
                    location: None,
                    bytes_sent: None,
                })?
            ),
            (Ok(r), false) => println!(
                "uploaded  {path}\n          key     {}\n          size    {} bytes\n          sha256  {}",
                r.key, r.size, r.sha256
            ),
            (Err(e), false) => println!("FAILED    {path}: {}", describe(e)),
        }
    }
    if !json {
        #[cfg(feature = "embedded-store")]
        if let Some(local) = session.local_store() {
            println!(
                "\nThe `local` profile stores files in the embedded store: {}",
                local.bucket_dir().display()
            );
        }
        let _ = session;
        println!("\n{} uploaded, {} failed", outcomes.len() - failed, failed);
        if failed > 0 {
            eprintln!("failed files:");
            for o in outcomes.iter().filter(|o| o.result.is_err()) {
                eprintln!("  {}", o.path.display());
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// An upload's error with the command line's advice for its kind.
fn describe(e: &UploadError) -> String {
    match e.kind() {
        ErrorKind::Paused => format!("{e}; run `hoist upload` again to resume"),
        _ => e.to_string(),
    }
}

fn profile_command(
    store: &ProfileStore,
    keychain: &Keychain,
    cmd: ProfileCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        ProfileCommand::Add(a) => {
            let mode = match (a.bucket, a.backend) {
                (Some(bucket), None) => Mode::SelfSign {
                    bucket,
                    region: a.region.context("--region is required with --bucket")?,
                    endpoint: a.endpoint,
                    path_style: a.path_style,
                    access_key_id: a
                        .access_key_id
                        .context("--access-key-id is required with --bucket")?,
                },
                (None, Some(url)) => Mode::Backend {
                    url,
                    protocol: match a.protocol {
                        ProtocolArg::Simple => Protocol::Simple,
                        ProtocolArg::Companion => Protocol::Companion,
                    },
                    token: a.token,
                },
                _ => bail!("give either --bucket (self-sign) or --backend (staff)"),
            };
            let mut p = Profile::new(&a.name, mode);
            p.prefix = a.prefix;
            p.key_template = a.key_template;
            p.max_size = a.max_size;
            p.allowed_types = a.allow_types;
            p.concurrency = a.concurrency;
            let needs_secret = match &p.mode {
                Mode::SelfSign { .. } => Some("secret access key"),
                Mode::Backend { token: true, .. } => Some("bearer token"),
                _ => None,
            };
            store.add(p, a.default)?;
            println!("added profile '{}' to {}", a.name, store.path().display());
            if let Some(what) = needs_secret {
                println!(
                    "next: store its {what} in the keychain with `hoist secret set {}`",
                    a.name
                );
            }
        }
        ProfileCommand::List { json } => {
            let default = store.default_name()?;
            let profiles = store.list()?;
            if json {
                let rows: Vec<_> = profiles
                    .iter()
                    .map(|p| serde_json::json!({"name": p.name, "default": default.as_deref() == Some(&p.name), "profile": p}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if profiles.is_empty() {
                println!("no profiles configured; uploads use the built-in `local` embedded store");
            } else {
                for p in profiles {
                    let mark = if default.as_deref() == Some(&p.name) {
                        "*"
                    } else {
                        " "
                    };
                    println!("{mark} {:<20} {}", p.name, p.mode.describe());
                }
            }
        }
        ProfileCommand::Show { name, json } => {
            let p = store.get(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!("name           {}", p.name);
                println!("target         {}", p.mode.describe());
                println!(
                    "prefix         {}",
                    if p.prefix.is_empty() {
                        "(none)"
                    } else {
                        &p.prefix
                    }
                );
                println!("key template   {}", p.key_template);
                println!(
                    "max size       {}",
                    p.max_size
                        .map(|s| format!("{s} bytes"))
                        .unwrap_or("(S3's limit)".into())
                );
                println!(
                    "allowed types  {}",
                    if p.allowed_types.is_empty() {
                        "any".to_string()
                    } else {
                        p.allowed_types.join(", ")
                    }
                );
                println!("concurrency    {}", p.concurrency);
                for (kind, _) in p.mode.secrets() {
                    let state = match keychain.get(&p.name, kind) {
                        Ok(Some(_)) => "stored in the keychain".to_string(),
                        Ok(None) => format!(
                            "not set (`hoist secret set {} --kind {}`)",
                            p.name,
                            kind.as_str()
                        ),
                        Err(e) => format!("unknown: {e}"),
                    };
                    println!("{:<14} {state}", kind.as_str());
                }
            }
        }
        ProfileCommand::Remove { name } => {
            for left in hoist::app::profiles::remove_profile(store, keychain, &name)? {
                eprintln!(
                    "warning: could not delete {} from the keychain: {}",
                    left.kind.as_str(),
                    left.error
                );
            }
            println!("removed profile '{name}'");
        }
        ProfileCommand::Default { name } => {
            store.set_default(&name)?;
            println!("'{name}' is now the default profile");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn secret_command(
    store: &ProfileStore,
    keychain: &Keychain,
    cmd: SecretCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretCommand::Set { profile, kind } => {
            let p = store.get(&profile)?;
            let kind = kind.map(SecretKind::from).unwrap_or(match p.mode {
                Mode::Backend { .. } => SecretKind::BearerToken,
                _ => SecretKind::SecretAccessKey,
            });
            let value = read_secret_input(kind)?;
            keychain.set(&p.name, kind, &value)?;
            if let (
                SecretKind::BearerToken,
                Mode::Backend {
                    url,
                    protocol,
                    token: false,
                },
            ) = (kind, &p.mode)
            {
                let mut updated = p.clone();
                updated.mode = Mode::Backend {
                    url: url.clone(),
                    protocol: *protocol,
                    token: true,
                };
                store.update(updated)?;
            }
            println!(
                "stored the {} of '{}' in the OS keychain",
                kind.as_str(),
                p.name
            );
        }
        SecretCommand::Remove { profile, kind } => {
            let p = store.get(&profile)?;
            let kind = kind.map(SecretKind::from).unwrap_or(match p.mode {
                Mode::Backend { .. } => SecretKind::BearerToken,
                _ => SecretKind::SecretAccessKey,
            });
            keychain.delete(&p.name, kind)?;
            println!(
                "removed the {} of '{}' from the OS keychain",
                kind.as_str(),
                p.name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_secret_input(kind: SecretKind) -> anyhow::Result<Secret> {
    let raw = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{} (input hidden): ", kind.as_str()))
            .context("cannot read from the terminal")?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read stdin")?;
        s
    };
    let value = raw.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        bail!("empty {}: nothing stored", kind.as_str());
    }
    Ok(Secret::new(value))
}

fn queue_command(limit: usize, json: bool) -> anyhow::Result<ExitCode> {
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

fn cancel_command(
    store: &ProfileStore,
    keychain: &Keychain,
    profile: Option<String>,
    paths: Vec<PathBuf>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(profile.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let session = Session::open(profile, keychain, RetryPolicy::default()).await?;
        let queue = session.queue().clone();
        let wanted: Vec<PathBuf> = paths
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
            .collect();
        let mut cancelled = 0;
        for item in queue.unfinished(&session.profile().name)? {
            if !all && !wanted.contains(&item.path) {
                continue;
            }
            match session.cancel_stopped(&item).await {
                Err(CancelError::Abort(e)) => eprintln!(
                    "warning: could not abort the upload of {}: {e}",
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

fn sweep_command(
    store: &ProfileStore,
    keychain: &Keychain,
    profile: Option<String>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(profile.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let session = Session::open(profile, keychain, RetryPolicy::default()).await?;
        let report = hoist::sweep::sweep(&session, dry_run).await?;
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
            "{} stale upload(s) {}, {} kept because the queue can resume them",
            report.aborted.len(),
            if dry_run { "found" } else { "aborted" },
            report.kept
        );
        Ok(ExitCode::SUCCESS)
    })
}
