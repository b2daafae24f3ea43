//! `hoist`: upload files to S3 from the command line. This binary is argument parsing and
//! printing only: the work is the core's (`hoist::session` for uploads, `hoist::app::profiles`
//! for profiles and secrets).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use hoist::error::Hint;
use hoist::profile::ProfileStore;
use hoist::secret::Keychain;
use hoist::HasKind;

mod args;
mod login;
mod profiles;
mod queue;
mod upload;

use args::{Cli, Command};

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    hoist::memory::limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let advice = hint_of(&e).map(|h| advice(&h)).unwrap_or_default();
            eprintln!(
                "error: {}{advice}",
                hoist::redact::redact(&format!("{e:#}"))
            );
            ExitCode::from(2)
        }
    }
}

/// A reader that stops early (`hoist queue | head -1`) ends `hoist` as it ends other Unix tools:
/// Rust ignores SIGPIPE, so the next print would panic ("failed printing to stdout").
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at start, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
        Command::Upload(args) => upload::upload(&store, &keychain, args),
        Command::Queue { limit, json } => queue::queue_command(limit, json),
        Command::Cancel {
            profile,
            paths,
            all,
        } => queue::cancel_command(&store, &keychain, profile, paths, all),
        Command::Sweep {
            profile,
            dry_run,
            older_than,
        } => {
            let options = hoist::sweep::SweepOptions {
                dry_run,
                min_age: older_than,
                ..Default::default()
            };
            queue::sweep_command(&store, &keychain, profile, options)
        }
        Command::Profile(cmd) => profiles::profile_command(&store, &keychain, cmd),
        Command::Secret(cmd) => profiles::secret_command(&store, &keychain, cmd),
        Command::Login {
            profile,
            device,
            timeout_minutes,
        } => login::login(&store, &keychain, profile, device, timeout_minutes),
        Command::Logout { profile } => login::logout(&store, &keychain, profile),
    }
}

/// The hint of a core error, whichever domain's it is.
fn hint_of(e: &anyhow::Error) -> Option<Hint> {
    use hoist::app::ManagerError;
    use hoist::profile::ProfileError;
    use hoist::remote::network::NetworkError;
    use hoist::secret::KeychainError;
    use hoist::session::{CancelError, SessionError};
    use hoist::sweep::SweepError;
    e.chain().find_map(|cause| {
        let hint = |h: &dyn HasKind| h.hint();
        None.or_else(|| cause.downcast_ref::<SessionError>().and_then(|e| hint(e)))
            .or_else(|| cause.downcast_ref::<ProfileError>().and_then(|e| hint(e)))
            .or_else(|| cause.downcast_ref::<KeychainError>().and_then(|e| hint(e)))
            .or_else(|| cause.downcast_ref::<ManagerError>().and_then(|e| hint(e)))
            .or_else(|| cause.downcast_ref::<SweepError>().and_then(|e| hint(e)))
            .or_else(|| cause.downcast_ref::<CancelError>().and_then(|e| hint(e)))
            .or_else(|| cause.downcast_ref::<NetworkError>().and_then(|e| hint(e)))
    })
}

/// The command line's advice for a hint, to follow an error's message.
pub(crate) fn advice(hint: &Hint) -> String {
    match hint {
        Hint::StoreSecret { profile, kind } => {
            format!("; store it with `hoist secret set {profile} --kind {kind}`")
        }
        Hint::AddProfile => "; add one with `hoist profile add`".into(),
        Hint::RemoveProfile { profile } => {
            format!("; remove it first with `hoist profile remove {profile}`")
        }
        Hint::ChooseProfile => ": pass --profile NAME or run `hoist profile default NAME`".into(),
        Hint::Sweep => "; `hoist sweep` removes it later".into(),
        Hint::SignIn => "; sign in with `hoist login PROFILE`".into(),
        Hint::CheckToken => {
            "; store the right one with `hoist secret set PROFILE --kind bearer-token`".into()
        }
        _ => String::new(),
    }
}

/// A runtime for one command's async work.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}
