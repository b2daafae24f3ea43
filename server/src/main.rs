//! `hoist-server`: the reference presign backend.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hoist::sign::sigv4::SigV4Signer;
use hoist_server::audit::AuditLog;
use hoist_server::config::{ConfigError, FileConfig};
use hoist_server::s3::Bucket;
use hoist_server::token;
use hoist_server::{app, AppConfig};

/// Hoist's presign backend: signs uploads into one S3 bucket for authenticated clients, speaking
/// Hoist's `simple` protocol (POST /api/upload) and Uppy Companion's S3 endpoints (/s3/...).
///
/// Tokens come from the config file (hashed) and from HOIST_SERVER_TOKENS (comma-separated plain
/// tokens). AWS credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
/// AWS_SESSION_TOKEN or the shared credentials file; with --embedded-store none are needed.
#[derive(Parser)]
#[command(name = "hoist-server", version)]
struct Cli {
    /// Address to listen on [default: the config's `listen`, else 127.0.0.1:8787].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// TOML config file (see server/hoist-server.example.toml).
    #[arg(long, env = "HOIST_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// Serve an S3-compatible store on 127.0.0.1 storing under DIR, and sign for it (demos,
    /// the app's embedded default, tests). The config's [bucket] is then ignored.
    #[arg(long, value_name = "DIR")]
    embedded_store: Option<PathBuf>,
    /// Where the embedded store listens [default: a free port of 127.0.0.1]. With
    /// HOIST_STORE_ACCESS_KEY_ID and HOIST_STORE_SECRET_ACCESS_KEY set, other S3 tools can use it
    /// too (benchmarks); otherwise its credentials are random and known only to the server.
    #[arg(long, value_name = "ADDR", requires = "embedded_store")]
    store_listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Make a long random token and print it with its SHA-256, for a `[[tokens]]` entry of the
    /// config (give it to its user; only the hash goes in the config). With a token piped on
    /// stdin, print that token's hash instead.
    HashToken,
}

/// `hoist-server hash-token`: a new random token and its hash, or the hash of a piped token.
fn hash_token() -> ExitCode {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        // Two v4 UUIDs: 244 random bits from the OS.
        let token = format!(
            "hst_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        println!("token   {token}");
        println!("sha256  {}", token::hash_token(&token));
        eprintln!("give the token to its user (`hoist secret set PROFILE`); only the sha256 goes in the config");
        return ExitCode::SUCCESS;
    }
    let mut token = String::new();
    if std::io::stdin().read_line(&mut token).is_err() || token.trim().is_empty() {
        eprintln!("error: give the token on stdin, or run without stdin to make a new one");
        return ExitCode::from(2);
    }
    let token = token.trim();
    if token.len() < token::MIN_TOKEN_LEN {
        eprintln!(
            "error: the token is shorter than {} characters: run `hoist-server hash-token` without stdin to make one",
            token::MIN_TOKEN_LEN
        );
        return ExitCode::from(2);
    }
    println!("{}", token::hash_token(token));
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("hoist_server=info,hoist=warn")
            }),
        )
        .with_writer(|| hoist::redact::RedactingWriter::new(std::io::stderr()))
        .init();
    if let Some(Command::HashToken) = cli.command {
        return hash_token();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hoist::redact::redact(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

async fn serve(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let file = match &cli.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    file.validate_policy()?;
    let limits = file.limits.limits()?;
    let tokens = file.tokens(std::env::var("HOIST_SERVER_TOKENS").ok().as_deref())?;
    let oidc = match &file.oidc {
        Some(o) => {
            o.validate()?;
            Some(hoist_server::oidc::OidcVerifier::new(o.clone())?)
        }
        None => None,
    };
    let verifier = match file.verify.clone() {
        Some(v) => Some(
            hoist_server::verify::Verifier::new(
                v,
                std::env::var("HOIST_SERVER_WEBHOOK_SECRET").ok(),
            )
            .map_err(ConfigError::Invalid)?,
        ),
        None => None,
    };
    if tokens.is_empty() && oidc.is_none() {
        return Err(ConfigError::Invalid(
            "no tokens: add [[tokens]] or an [oidc] section to the config, or set HOIST_SERVER_TOKENS (comma-separated, 32+ characters each)".into(),
        )
        .into());
    }
    let expiry = std::time::Duration::from_secs(file.policy.expiry_secs);
    let (signer, secret_for_ids, _store) = match &cli.embedded_store {
        Some(dir) => {
            // Fixed credentials from the environment (a second process signs for the same
            // store), or fresh ones; the default port is any free one.
            let (access_key_id, secret) = match (
                std::env::var("HOIST_STORE_ACCESS_KEY_ID"),
                std::env::var("HOIST_STORE_SECRET_ACCESS_KEY"),
            ) {
                (Ok(ak), Ok(sk)) if !ak.is_empty() && !sk.is_empty() => {
                    (ak, hoist::secret::Secret::new(sk))
                }
                _ => (
                    hoist::local::LOCAL_ACCESS_KEY_ID.to_string(),
                    hoist::secret::Secret::new(uuid::Uuid::new_v4().simple().to_string()),
                ),
            };
            let addr = cli
                .store_listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            // Browsers upload straight to the store: the same origins as the API may.
            let store = hoist::local::EmbeddedStore::start_for_browsers(
                dir,
                addr,
                hoist::local::LOCAL_BUCKET,
                &access_key_id,
                secret,
                &file.cors.allowed_origins,
            )
            .await?;
            eprintln!(
                "embedded store at {} (bucket {}, files under {})",
                store.endpoint(),
                store.bucket(),
                store.bucket_dir().display()
            );
            let secret = store.secret_access_key().expose().as_bytes().to_vec();
            (store.signer(), secret, Some(store))
        }
        None => {
            let b = file.bucket.clone().ok_or_else(|| {
                ConfigError::Invalid("the config needs a [bucket] section (name, region), or use --embedded-store DIR".into())
            })?;
            let creds = hoist_server::credentials::credentials_from_env()?;
            let secret = creds.secret_access_key.expose().as_bytes().to_vec();
            let mut s = SigV4Signer::new(
                &b.name,
                &b.region,
                &creds.access_key_id,
                creds.secret_access_key,
            )
            .with_session_token(creds.session_token)
            .with_path_style(b.path_style);
            if let Some(e) = &b.endpoint {
                s = s.with_endpoint(url::Url::parse(e)?, b.path_style);
            }
            (s, secret, None)
        }
    };
    let upload_id_secret = FileConfig::upload_id_secret(
        std::env::var("HOIST_SERVER_UPLOAD_ID_SECRET")
            .ok()
            .as_deref(),
        &secret_for_ids,
    )?;
    let audit = match &file.audit_log {
        Some(p) => AuditLog::file(p)?,
        None => AuditLog::stdout(),
    };
    let rate_limiter = match std::env::var("HOIST_SERVER_REDIS_URL")
        .ok()
        .or(file.rate_limit.redis_url.clone())
    {
        Some(url) => hoist_server::rate::RateLimiter::shared(&url).await?,
        None => hoist_server::rate::RateLimiter::local(),
    };
    let router = app(AppConfig {
        bucket: Bucket::new(signer.with_expiry(expiry)),
        policy: file.policy,
        tokens,
        audit,
        upload_id_secret,
        rate_limiter,
        oidc,
        verifier,
        cors: file.cors,
        readiness: file.readiness,
    });
    let listen = cli
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8787)));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!(
        "hoist-server listening on http://{} (simple: POST /api/upload; companion: /s3/...; /healthz)",
        listener.local_addr()?
    );
    hoist_server::serve::serve(listener, router, limits, shutdown_signal()).await;
    eprintln!("hoist-server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
