//! The command line: every command and option (clap), documented for `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use hoist::profile::{self, Protocol};
use hoist::secret::SecretKind;

/// Hoist streams files into S3 through presigned URLs, with retries and proof of integrity.
///
/// With no profile configured, uploads go to the embedded `local` store under the data
/// directory, so everything works without a cloud account.
#[derive(Parser)]
#[command(name = "hoist", version, propagate_version = true)]
pub(crate) struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); HOIST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Keep uploads started less than this long ago (another machine's may still be
        /// running): a number with s, m, h or d.
        #[arg(long, default_value = "24h", value_parser = parse_age)]
        older_than: std::time::Duration,
    },
    /// Manage bucket profiles (stored in HOIST_CONFIG_DIR or the platform config dir).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Manage a profile's secrets in the OS keychain.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Sign in with the company's identity provider, for a backend profile added with
    /// --issuer and --client-id: opens the system browser (or, with --device, shows a code
    /// to enter on any device). The sign-in is kept in the keychain and renewed as needed.
    Login {
        /// The profile [default: the default profile].
        #[arg(env = "HOIST_PROFILE")]
        profile: Option<String>,
        /// Sign in on another device: for a terminal without a browser (RFC 8628).
        #[arg(long)]
        device: bool,
        /// Minutes to wait for the browser sign-in.
        #[arg(long, default_value_t = 5)]
        timeout_minutes: u64,
    },
    /// Sign out: the sign-in is revoked at the identity provider and deleted from the keychain.
    Logout {
        /// The profile [default: the default profile].
        #[arg(env = "HOIST_PROFILE")]
        profile: Option<String>,
    },
}

#[derive(Args)]
pub(crate) struct UploadArgs {
    /// Profile to use [default: the default profile, else `local`].
    #[arg(long, short, env = "HOIST_PROFILE")]
    pub(crate) profile: Option<String>,
    /// Print one JSON object per file (path, key, size, checksum, status, error) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Files and folders to upload (folders keep their structure in the keys). With none,
    /// the profile's unfinished uploads are resumed.
    #[arg(value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Send at most this many bytes per second over all files and parts, e.g. 5MB or 500KiB
    /// (the profile's own limit applies too).
    #[arg(long, value_name = "RATE", value_parser = profile::parse_rate, env = "HOIST_LIMIT_RATE")]
    pub(crate) limit_rate: Option<u64>,
}

#[derive(Subcommand)]
pub(crate) enum ProfileCommand {
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
pub(crate) struct AddArgs {
    /// Profile name: letters, digits, '-' and '_'.
    pub(crate) name: String,
    /// Self-sign: the bucket.
    #[arg(long, conflicts_with = "backend", requires_all = ["region", "access_key_id"])]
    pub(crate) bucket: Option<String>,
    /// Self-sign: the bucket's region, e.g. eu-west-1.
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// Self-sign: an S3-compatible endpoint URL instead of AWS.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Self-sign: path-style URLs (endpoint/bucket/key), as most S3-compatible stores want.
    #[arg(long)]
    pub(crate) path_style: bool,
    /// Self-sign: the access key id (the secret key goes in the keychain: `hoist secret set`).
    #[arg(long)]
    pub(crate) access_key_id: Option<String>,
    /// Staff: the presign backend's URL, e.g. https://uploads.example.com/api/upload.
    #[arg(long, required_unless_present = "bucket")]
    pub(crate) backend: Option<String>,
    /// Staff: the backend's protocol.
    #[arg(long, value_enum, default_value = "simple")]
    pub(crate) protocol: ProtocolArg,
    /// Staff: send a bearer token (store it with `hoist secret set NAME`).
    #[arg(long, conflicts_with = "issuer")]
    pub(crate) token: bool,
    /// Staff: sign in with the company's identity provider at this issuer URL (OpenID
    /// Connect) instead of a stored token; then `hoist login NAME`.
    #[arg(long, requires_all = ["backend", "client_id"])]
    pub(crate) issuer: Option<String>,
    /// Staff: Hoist's client id at the identity provider (a public client).
    #[arg(long, requires = "issuer")]
    pub(crate) client_id: Option<String>,
    /// Key prefix, e.g. `uploads/` (self-sign only; a backend picks its own keys).
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    /// Key template with {yyyy} {mm} {dd} {date} {uuid} {name}.
    #[arg(long, default_value = profile::DEFAULT_KEY_TEMPLATE)]
    pub(crate) key_template: String,
    /// Largest file accepted, e.g. 100MB or 5GiB.
    #[arg(long, value_parser = profile::parse_size)]
    pub(crate) max_size: Option<u64>,
    /// An allowed MIME type, e.g. image/* (repeat for more; none means any).
    #[arg(long = "allow-type", value_name = "TYPE")]
    pub(crate) allow_types: Vec<String>,
    /// Files uploaded at once.
    #[arg(long, default_value_t = profile::DEFAULT_CONCURRENCY)]
    pub(crate) concurrency: usize,
    /// The checksum signed into each upload and verified by the store: crc64nvme (the AWS
    /// SDKs' default), crc32c, crc32 or sha256 (self-sign and local).
    #[arg(long, default_value = "crc64nvme", value_parser = parse_checksum)]
    pub(crate) checksum: hoist::checksum::ChecksumAlgorithm,
    /// Server-side encryption each object gets: AES256 (SSE-S3), aws:kms or aws:kms:dsse
    /// (self-sign and local; signed, so a bucket policy requiring it accepts the uploads).
    #[arg(long, value_name = "ALGORITHM")]
    pub(crate) sse: Option<String>,
    /// The KMS key for --sse aws:kms (id, ARN or alias).
    #[arg(long)]
    pub(crate) kms_key_id: Option<String>,
    /// Use an S3 Bucket Key with SSE-KMS.
    #[arg(long)]
    pub(crate) bucket_key: bool,
    /// Storage class, e.g. STANDARD_IA or INTELLIGENT_TIERING.
    #[arg(long)]
    pub(crate) storage_class: Option<String>,
    /// Cache-Control stored with each object.
    #[arg(long)]
    pub(crate) cache_control: Option<String>,
    /// Content-Disposition stored with each object, e.g. attachment.
    #[arg(long)]
    pub(crate) content_disposition: Option<String>,
    /// User metadata NAME=VALUE stored with each object (repeat for more).
    #[arg(long = "meta", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub(crate) metadata: Vec<(String, String)>,
    /// A tag KEY=VALUE for each object (repeat for more, at most 10).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub(crate) tags: Vec<(String, String)>,
    /// A proxy for every request, e.g. http://proxy.corp:3128 or http://alice@proxy.corp:3128
    /// (its password: `hoist secret set NAME --kind proxy-password`) [default: HTTPS_PROXY,
    /// HTTP_PROXY and NO_PROXY, then the system's proxy settings].
    #[arg(long, value_name = "URL")]
    pub(crate) proxy: Option<String>,
    /// A PEM file of root certificates to trust besides the system's (a company CA).
    #[arg(long, value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Bytes per second this profile's uploads may send, e.g. 5MB.
    #[arg(long, value_name = "RATE", value_parser = profile::parse_rate)]
    pub(crate) limit_rate: Option<u64>,
    /// Also make it the default profile.
    #[arg(long)]
    pub(crate) default: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ProtocolArg {
    /// POST URL {fileName, contentType, size} -> {url, ...}; single PUTs up to 5 GiB.
    Simple,
    /// Uppy Companion's /s3/params and /s3/multipart endpoints under URL; large files in parts.
    Companion,
}

#[derive(Subcommand)]
pub(crate) enum SecretCommand {
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
pub(crate) enum KindArg {
    SecretAccessKey,
    SessionToken,
    BearerToken,
    ProxyPassword,
}

impl From<KindArg> for SecretKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::SecretAccessKey => Self::SecretAccessKey,
            KindArg::SessionToken => Self::SessionToken,
            KindArg::BearerToken => Self::BearerToken,
            KindArg::ProxyPassword => Self::ProxyPassword,
        }
    }
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Simple => Self::Simple,
            ProtocolArg::Companion => Self::Companion,
        }
    }
}

/// An age such as `30m`, `24h` or `7d` (a bare number is seconds).
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not an age like 30m, 24h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{s}': the unit must be s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(seconds)))
}

/// An age as `--older-than` takes it.
pub(crate) fn format_age(age: std::time::Duration) -> String {
    let s = age.as_secs();
    match s {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn parse_checksum(s: &str) -> Result<hoist::checksum::ChecksumAlgorithm, String> {
    hoist::checksum::ChecksumAlgorithm::parse(s)
        .ok_or_else(|| format!("'{s}' is not one of crc64nvme, crc32c, crc32, sha256"))
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))
}
