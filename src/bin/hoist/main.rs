//! `hoist`: upload files to S3 from the command line. This binary is argument parsing and
//! printing only: the work is the core's (`hoist::session` for uploads, `hoist::app::profiles`
//! for profiles and secrets).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use hoist::profile::ProfileStore;
use hoist::secret::Keychain;

mod args;
mod profiles;
mod queue;
mod upload;

use args::{Cli, Command};

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
        Command::Upload(args) => upload::upload(&store, &keychain, args),
        Command::Queue { limit, json } => queue::queue_command(limit, json),
        Command::Cancel {
            profile,
            paths,
            all,
        } => queue::cancel_command(&store, &keychain, profile, paths, all),
        Command::Sweep { profile, dry_run } => {
            queue::sweep_command(&store, &keychain, profile, dry_run)
        }
        Command::Profile(cmd) => profiles::profile_command(&store, &keychain, cmd),
        Command::Secret(cmd) => profiles::secret_command(&store, &keychain, cmd),
    }
}

/// A runtime for one command's async work.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}
