//! Server configuration: a TOML file, environment variables, and the standard AWS credential
//! sources. Nothing here is ever logged with its secret.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::token::{parse_hex32, Token, MIN_TOKEN_LEN};

/// The longest expiry the server signs for; a config may only lower it.
pub const MAX_EXPIRY_SECS: u64 = 900;
/// Default key template under a token's prefix.
pub const DEFAULT_TEMPLATE: &str = "{yyyy}/{mm}/{uuid}-{name}";
/// Requests per minute per token when the config does not say: a ceiling against runaway
/// clients, above what real work needs (a 10 GiB upload signs 1,280 parts of 8 MiB).
pub const DEFAULT_RATE_PER_MINUTE: u32 = 3000;
/// New uploads per minute per token when the config does not say, after the burst.
pub const DEFAULT_FILES_PER_MINUTE: u32 = 600;
/// New uploads a token may start at once when the config does not say: a folder drop.
pub const DEFAULT_FILES_BURST: u32 = 1000;

/// Why the server cannot start with this configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid config: {message}")]
    /// The config file is not valid.
    Parse {
        /// The config file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A setting is not acceptable; the message says which.
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a credentials file \
         (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), or use --embedded-store DIR"
    )]
    /// No AWS credentials were found.
    NoCredentials,
}

/// The file format (see `server/hoist-server.example.toml`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the API listens (default 127.0.0.1:8787).
    pub listen: Option<SocketAddr>,
    /// The bucket uploads go to.
    pub bucket: Option<BucketConfig>,
    /// What may be uploaded.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Who may upload.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Where audit lines go (default: stdout).
    pub audit_log: Option<PathBuf>,
    /// Connection limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Where the per-token rate limits are kept.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Staff signed in with the company's identity provider (OpenID Connect).
    pub oidc: Option<OidcConfig>,
    /// Uploads checked after they land (type, size, malware) before they reach their key.
    pub verify: Option<crate::verify::VerifyConfig>,
    /// Pages of other origins (the company's web app) that may call the API from a browser.
    #[serde(default)]
    pub cors: crate::cors::CorsConfig,
    /// Which dependencies make `/readyz` answer 503.
    #[serde(default)]
    pub readiness: ReadinessConfig,
}

/// The `[oidc]` section: access tokens of the company's identity provider (see `oidc`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL, exactly as its discovery document and tokens state it
    /// (`https://login.example.com/realms/staff`).
    pub issuer: String,
    /// The audience (`aud`) its access tokens carry for this server: the API or resource
    /// registered for hoist-server at the provider.
    pub audience: String,
    /// Seconds of clock difference allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The longest a token may still be valid when it arrives (`exp` this far ahead at most):
    /// a token that lives for years is a stolen credential that never ends (default 24 h).
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_secs: u64,
    /// The claim that lists a user's groups (an array, or a space-separated string).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Who may upload what: the first entry covering one of the user's groups applies.
    #[serde(default)]
    pub policies: Vec<OidcPolicyConfig>,
}

/// One `[[oidc.policies]]` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcPolicyConfig {
    /// Members of this group (absent: every signed-in user).
    pub group: Option<String>,
    /// Keys signed for them start with this; `{sub}` is the user's subject.
    pub prefix: String,
    /// The largest upload, in bytes.
    pub max_size: Option<u64>,
    /// MIME types accepted (`image/*`); empty means any.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// Their own rate; the policy's when absent.
    pub rate_limit_per_minute: Option<u32>,
    /// Their own new uploads a minute; the policy's when absent.
    pub files_per_minute: Option<u32>,
    /// Their own declared bytes a minute; the policy's when absent.
    pub bytes_per_minute: Option<u64>,
}

fn default_leeway() -> u64 {
    60
}
fn default_max_token_lifetime() -> u64 {
    24 * 3600
}
fn default_groups_claim() -> String {
    "groups".into()
}

impl OidcConfig {
    /// Checks the section: an `https` issuer (plain `http` only on a loopback address), an
    /// audience, and at least one policy with a valid prefix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(format!("oidc.{m}")));
        let Ok(issuer) = url::Url::parse(&self.issuer) else {
            return invalid(format!("issuer {} is not a URL", self.issuer));
        };
        let loopback = match issuer.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if issuer.scheme() != "https" && !(issuer.scheme() == "http" && loopback) {
            return invalid(format!(
                "issuer {} must be an https URL (plain http only on this machine, for tests)",
                self.issuer
            ));
        }
        if self.audience.is_empty() {
            return invalid("audience is empty: set the audience the provider puts in access tokens for this server".into());
        }
        if self.leeway_secs > 300 {
            return invalid("leeway_secs is above 300: fix the clocks instead".into());
        }
        if self.max_token_lifetime_secs < 300 {
            return invalid("max_token_lifetime_secs is below 300: access tokens of a few minutes at least must pass".into());
        }
        if self.policies.is_empty() {
            return invalid("policies is empty: add an [[oidc.policies]] entry (a prefix, and optionally a group), or nobody signed in may upload".into());
        }
        for p in &self.policies {
            hoist::key::validate_prefix(&p.prefix.replace("{sub}", "user")).map_err(|e| {
                ConfigError::Invalid(format!("oidc.policies prefix {}: {e}", p.prefix))
            })?;
        }
        Ok(())
    }
}

/// The `[rate_limit]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// A Redis every replica shares (`redis://10.0.0.5:6379/0`): the limits then hold across
    /// replicas. Unset: each instance keeps its own. `HOIST_SERVER_REDIS_URL` overrides (keep
    /// a password there rather than in the file).
    pub redis_url: Option<String>,
}

/// The bucket section of the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// The bucket.
    pub name: String,
    /// Its region.
    pub region: String,
    /// An S3-compatible endpoint; AWS when absent.
    pub endpoint: Option<String>,
    /// Address the bucket as `host/bucket/key`.
    #[serde(default)]
    pub path_style: bool,
}

/// The policy section: what every token may do, unless its own entry narrows it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// How keys are made under a token's prefix (see `hoist::key`).
    #[serde(default = "default_template")]
    pub key_template: String,
    /// The largest upload, in bytes.
    pub max_size: Option<u64>,
    /// MIME types accepted (`image/*`); empty means any.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// How long signed URLs live (at most 900 s).
    #[serde(default = "default_expiry")]
    pub expiry_secs: u64,
    /// Allow a signed upload to replace an existing object (off: `If-None-Match: *` is signed).
    #[serde(default)]
    pub allow_overwrite: bool,
    /// Keep the folders of a dropped folder in keys (a client's `relativePath`, sanitised, under
    /// the template's `{name}`); off: every file lands by its name alone.
    #[serde(default = "default_true")]
    pub keep_folders: bool,
    /// Let browsers show uploads in place (off: `Content-Disposition: attachment` is signed, so
    /// a bucket served to browsers downloads them instead of rendering them).
    #[serde(default)]
    pub allow_inline: bool,
    /// Requests a minute per token (every request; a ceiling against runaway clients).
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
    /// New uploads (single PUTs signed, multipart uploads created) a minute per token, once
    /// its burst is spent.
    #[serde(default = "default_files_rate")]
    pub files_per_minute: u32,
    /// New uploads a token may start at once (a folder drop), refilled at `files_per_minute`.
    #[serde(default = "default_files_burst")]
    pub files_burst: u32,
    /// Declared bytes a minute per token, if limited (a minute's worth at once).
    pub bytes_per_minute: Option<u64>,
    /// What S3 stores with every object, signed so that no client can leave it out:
    /// `[policy.object]` with `encryption` (`AES256`, `aws:kms`, `aws:kms:dsse`), `kms_key_id`,
    /// `bucket_key`, `storage_class`, `cache_control`, `content_disposition`, `metadata`,
    /// `tags`.
    #[serde(default)]
    pub object: hoist::object::ObjectSettings,
    /// Failed authentications a minute per client address (IPv6: per /64) that are answered
    /// 401 and audited one by one; past it, 429 and one summary line.
    #[serde(default = "default_failed_auth")]
    pub failed_auth_per_minute: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            key_template: default_template(),
            max_size: None,
            allowed_types: Vec::new(),
            expiry_secs: MAX_EXPIRY_SECS,
            allow_overwrite: false,
            keep_folders: true,
            allow_inline: false,
            rate_limit_per_minute: DEFAULT_RATE_PER_MINUTE,
            files_per_minute: DEFAULT_FILES_PER_MINUTE,
            files_burst: DEFAULT_FILES_BURST,
            bytes_per_minute: None,
            failed_auth_per_minute: DEFAULT_FAILED_AUTH_PER_MINUTE,
            object: hoist::object::ObjectSettings::default(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_template() -> String {
    DEFAULT_TEMPLATE.into()
}
fn default_expiry() -> u64 {
    MAX_EXPIRY_SECS
}
fn default_rate() -> u32 {
    DEFAULT_RATE_PER_MINUTE
}
fn default_files_rate() -> u32 {
    DEFAULT_FILES_PER_MINUTE
}
fn default_files_burst() -> u32 {
    DEFAULT_FILES_BURST
}
fn default_failed_auth() -> u32 {
    DEFAULT_FAILED_AUTH_PER_MINUTE
}

/// Failed authentications a minute per client address audited one by one, by default.
pub const DEFAULT_FAILED_AUTH_PER_MINUTE: u32 = 20;

/// The `[limits]` section: connections, before anyone has authenticated.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections per client address (IPv6: per /64); 0 for none (behind a reverse
    /// proxy, where every client has the proxy's address).
    pub connections_per_address: usize,
    /// Seconds a client has to send a request's head (also how long an idle connection stays).
    pub header_timeout_secs: u64,
    /// Seconds requests in flight get to finish on shutdown.
    pub shutdown_grace_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = crate::serve::Limits::default();
        Self {
            max_connections: d.max_connections,
            connections_per_address: d.connections_per_address,
            header_timeout_secs: d.header_timeout.as_secs(),
            shutdown_grace_secs: d.shutdown_grace.as_secs(),
        }
    }
}

impl LimitsConfig {
    /// The limits `serve` applies, or what is wrong with them.
    pub fn limits(&self) -> Result<crate::serve::Limits, ConfigError> {
        if self.max_connections == 0 || self.header_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_connections and limits.header_timeout_secs must be at least 1".into(),
            ));
        }
        Ok(crate::serve::Limits {
            max_connections: self.max_connections,
            connections_per_address: self.connections_per_address,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_secs),
        })
    }
}

/// One token entry of the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for the audit log, e.g. the person or team.
    pub id: String,
    /// Hex SHA-256 of the token (`hoist-server hash-token` prints it).
    pub sha256: String,
    /// Keys signed for this token start with this prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The largest upload, in bytes.
    pub max_size: Option<u64>,
    /// MIME types accepted (`image/*`); empty means any.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// Its own rate; the policy's when absent.
    pub rate_limit_per_minute: Option<u32>,
    /// Its own new uploads a minute; the policy's when absent.
    pub files_per_minute: Option<u32>,
    /// Its own declared bytes a minute; the policy's when absent.
    pub bytes_per_minute: Option<u64>,
}

fn default_prefix() -> String {
    "uploads/".into()
}

impl FileConfig {
    /// Reads the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The tokens of the file plus those of `HOIST_SERVER_TOKENS` (comma-separated plain tokens,
    /// given ids `env-1`, `env-2`, …), validated.
    pub fn tokens(&self, env_tokens: Option<&str>) -> Result<Vec<Token>, ConfigError> {
        let mut out = Vec::new();
        for t in &self.tokens {
            let sha256 = parse_hex32(&t.sha256.to_ascii_lowercase()).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "token '{}': sha256 must be 64 hex digits: run `hoist-server hash-token`, which \
                     makes a long random token and prints its hash, and paste the hash here",
                    t.id
                ))
            })?;
            hoist::key::validate_prefix(&t.prefix)
                .map_err(|e| ConfigError::Invalid(format!("token '{}': prefix: {e}", t.id)))?;
            if t.id.starts_with("oidc:") {
                return Err(ConfigError::Invalid(format!(
                    "token '{}': ids starting with oidc: name signed-in users in the audit log; choose another",
                    t.id
                )));
            }
            out.push(Token {
                id: t.id.clone(),
                email: None,
                sha256,
                prefix: normalise_prefix(&t.prefix),
                max_size: t.max_size,
                allowed_types: t.allowed_types.clone(),
                rate_per_minute: t
                    .rate_limit_per_minute
                    .unwrap_or(self.policy.rate_limit_per_minute),
                files_per_minute: t.files_per_minute.unwrap_or(self.policy.files_per_minute),
                files_burst: self.policy.files_burst,
                bytes_per_minute: t.bytes_per_minute.or(self.policy.bytes_per_minute),
            });
        }
        for (i, plain) in env_tokens
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            if plain.len() < MIN_TOKEN_LEN {
                return Err(ConfigError::Invalid(format!(
                    "HOIST_SERVER_TOKENS entry {} is shorter than {MIN_TOKEN_LEN} characters; use long \
                     random tokens (`hoist-server hash-token` makes one)",
                    i + 1
                )));
            }
            out.push(Token {
                id: format!("env-{}", i + 1),
                email: None,
                sha256: Sha256::digest(plain.as_bytes()).into(),
                prefix: "uploads/".into(),
                max_size: None,
                allowed_types: Vec::new(),
                rate_per_minute: self.policy.rate_limit_per_minute,
                files_per_minute: self.policy.files_per_minute,
                files_burst: self.policy.files_burst,
                bytes_per_minute: self.policy.bytes_per_minute,
            });
        }
        // The audit log names tokens by id, and a token must say whose it is.
        for (i, t) in out.iter().enumerate() {
            if let Some(twin) = out[..i]
                .iter()
                .find(|o| o.id == t.id || o.sha256 == t.sha256)
            {
                let what = if twin.id == t.id { "id" } else { "token" };
                return Err(ConfigError::Invalid(format!(
                    "tokens '{}' and '{}' have the same {what}: every token needs its own id and value",
                    twin.id, t.id
                )));
            }
        }
        Ok(out)
    }

    /// The key that seals upload ids: `HOIST_SERVER_UPLOAD_ID_SECRET` when set (32 bytes at
    /// least), else one derived from the storage secret.
    pub fn upload_id_secret(
        env: Option<&str>,
        storage_secret: &[u8],
    ) -> Result<Vec<u8>, ConfigError> {
        match env.filter(|s| !s.is_empty()) {
            Some(s) if s.len() < 32 => Err(ConfigError::Invalid(
                "HOIST_SERVER_UPLOAD_ID_SECRET is shorter than 32 bytes; use a long random value \
                 (e.g. `openssl rand -hex 32`)"
                    .into(),
            )),
            Some(s) => Ok(s.as_bytes().to_vec()),
            None => Ok(Sha256::digest(
                [b"hoist-server upload ids:".as_slice(), storage_secret].concat(),
            )
            .to_vec()),
        }
    }

    /// Checks the policy section (and the origins browsers may call from).
    pub fn validate_policy(&self) -> Result<(), ConfigError> {
        self.cors.validate().map_err(ConfigError::Invalid)?;
        let p = &self.policy;
        if p.expiry_secs == 0 || p.expiry_secs > MAX_EXPIRY_SECS {
            return Err(ConfigError::Invalid(format!(
                "policy.expiry_secs must be 1..={MAX_EXPIRY_SECS} (S3 URLs for uploads live at most 15 minutes here)"
            )));
        }
        hoist::key::validate_template(&p.key_template)
            .map_err(|e| ConfigError::Invalid(format!("policy.key_template: {e}")))?;
        p.object
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("policy.object: {e}")))?;
        let zero = [
            ("rate_limit_per_minute", p.rate_limit_per_minute as u64),
            ("files_per_minute", p.files_per_minute as u64),
            ("files_burst", p.files_burst as u64),
            ("bytes_per_minute", p.bytes_per_minute.unwrap_or(1)),
        ]
        .into_iter()
        .find(|(_, v)| *v == 0);
        if let Some((name, _)) = zero {
            return Err(ConfigError::Invalid(format!(
                "policy.{name} must be at least 1"
            )));
        }
        Ok(())
    }
}

pub(crate) fn normalise_prefix(p: &str) -> String {
    if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// A dependency `/readyz` asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dependency {
    /// The bucket, with the server's credentials.
    Store,
    /// ClamAV's clamd (`[verify] clamd`).
    Scanner,
    /// The identity provider (`[oidc]`).
    Provider,
    /// Redis, for limits shared by replicas (`[rate_limit]`).
    Redis,
}

impl Dependency {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Scanner => "scanner",
            Self::Provider => "provider",
            Self::Redis => "redis",
        }
    }
}

/// The `[readiness]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadinessConfig {
    /// The dependencies that make the server unready when they fail (those not configured are
    /// not asked).
    #[serde(default = "default_required")]
    pub required: Vec<Dependency>,
}

fn default_required() -> Vec<Dependency> {
    vec![Dependency::Store, Dependency::Scanner, Dependency::Provider]
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        Self {
            required: default_required(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::hash_token;

    /// Regression (security review): two tokens with one id made the audit log ambiguous.
    #[test]
    fn token_ids_and_values_must_be_unique() {
        let entry = |id: &str, hash: &str| TokenConfig {
            id: id.into(),
            sha256: hash.into(),
            prefix: "uploads/".into(),
            max_size: None,
            allowed_types: vec![],
            rate_limit_per_minute: None,
            files_per_minute: None,
            bytes_per_minute: None,
        };
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let same_id = FileConfig {
            tokens: vec![entry("alice", &a), entry("alice", &b)],
            ..FileConfig::default()
        };
        let e = same_id.tokens(None).unwrap_err().to_string();
        assert!(e.contains("same id"), "{e}");
        let same_value = FileConfig {
            tokens: vec![entry("alice", &a), entry("bob", &a)],
            ..FileConfig::default()
        };
        let e = same_value.tokens(None).unwrap_err().to_string();
        assert!(e.contains("same token"), "{e}");
        let fine = FileConfig {
            tokens: vec![entry("alice", &a), entry("bob", &b)],
            ..FileConfig::default()
        };
        assert_eq!(fine.tokens(None).unwrap().len(), 2);
    }

    #[test]
    fn an_upload_id_secret_must_be_long() {
        assert!(FileConfig::upload_id_secret(Some("short"), b"s").is_err());
        let long = "x".repeat(32);
        assert_eq!(
            FileConfig::upload_id_secret(Some(&long), b"s").unwrap(),
            long.as_bytes()
        );
        assert_eq!(FileConfig::upload_id_secret(None, b"s").unwrap().len(), 32);
    }

    #[test]
    fn env_tokens_must_be_long_and_get_ids() {
        let f = FileConfig::default();
        let t = f
            .tokens(Some(
                "0123456789abcdef0123456789abcdef, fedcba9876543210fedcba9876543210",
            ))
            .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].id, "env-2");
        assert_eq!(
            t[0].sha256.to_vec(),
            parse_hex32(&hash_token("0123456789abcdef0123456789abcdef"))
                .unwrap()
                .to_vec()
        );
        assert!(f.tokens(Some("short")).is_err());
        assert!(
            f.tokens(Some(&"y".repeat(31))).is_err(),
            "31 characters are too few"
        );
    }

    /// The sample's `[rate_limit]` lines, uncommented, are a valid config.
    #[test]
    fn the_sample_redis_url_loads_when_uncommented() {
        let text = include_str!("../hoist-server.example.toml")
            .replace("# [rate_limit]", "[rate_limit]")
            .replace("# redis_url", "redis_url");
        let f: FileConfig = toml::from_str(&text).unwrap();
        assert_eq!(
            f.rate_limit.redis_url.as_deref(),
            Some("redis://10.0.0.5:6379/0")
        );
    }

    /// The sample's `[oidc]` lines, uncommented, are a valid section.
    #[test]
    fn the_sample_oidc_section_loads_when_uncommented() {
        let text = include_str!("../hoist-server.example.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with("[oidc]")
                        || rest.starts_with("[[oidc.policies]]")
                        || [
                            "issuer",
                            "audience",
                            "leeway_secs",
                            "groups_claim",
                            "group ",
                            "prefix",
                            "allowed_types = [\"image/*\", \"application/pdf\"]",
                            "max_size = 1073741824",
                        ]
                        .iter()
                        .any(|k| rest.starts_with(k)) =>
                {
                    rest.to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let f: FileConfig = toml::from_str(&text).unwrap();
        let oidc = f.oidc.expect("[oidc] uncommented");
        oidc.validate().unwrap();
        assert_eq!(oidc.policies.len(), 2);
        assert_eq!(oidc.policies[0].group.as_deref(), Some("design"));
        assert_eq!(oidc.policies[1].max_size, Some(1 << 30));
    }

    /// The sample's `[verify]` lines, uncommented, are a valid section.
    #[test]
    fn the_sample_verify_section_loads_when_uncommented() {
        let text = include_str!("../hoist-server.example.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with("[verify")
                        || [
                            "incoming_prefix",
                            "quarantine_prefix",
                            "clamd",
                            "scan_limit_bytes",
                            "url",
                        ]
                        .iter()
                        .any(|k| rest.starts_with(k)) =>
                {
                    rest.to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let f: FileConfig = toml::from_str(&text).unwrap();
        let v = f.verify.expect("[verify] uncommented");
        assert_eq!(v.clamd.as_deref(), Some("unix:/run/clamav/clamd.ctl"));
        assert_eq!(v.scan_limit_bytes, Some(25 << 20));
        // clamd without the scanner's limit refuses to start (#29, finding 2).
        let mut unlimited = v.clone();
        unlimited.scan_limit_bytes = None;
        assert!(unlimited
            .validate(Some(&"s".repeat(32)))
            .unwrap_err()
            .contains("scan_limit_bytes"));
        assert!(v
            .validate(None)
            .unwrap_err()
            .contains("HOIST_SERVER_WEBHOOK_SECRET"));
        v.validate(Some(&"s".repeat(32))).unwrap();
    }

    #[test]
    fn an_oidc_issuer_must_be_https_and_policies_must_exist() {
        let mut o = OidcConfig {
            issuer: "http://login.example.com".into(),
            audience: "hoist-server".into(),
            leeway_secs: 60,
            max_token_lifetime_secs: 24 * 3600,
            groups_claim: "groups".into(),
            policies: vec![OidcPolicyConfig {
                prefix: "uploads/{sub}/".into(),
                ..OidcPolicyConfig::default()
            }],
        };
        assert!(o.validate().unwrap_err().to_string().contains("https"));
        o.issuer = "http://127.0.0.1:8080".into();
        o.validate().unwrap();
        o.policies[0].prefix = "../{sub}".into();
        assert!(o.validate().is_err());
        o.policies.clear();
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("[[oidc.policies]]"));
    }

    /// Regression (security review): the sample config's hashes were those of `test` and
    /// `test2`, so a server run with it as the README said accepted those tokens.
    #[test]
    fn the_example_config_is_valid_but_its_placeholder_tokens_refuse_to_load() {
        let f: FileConfig = toml::from_str(include_str!("../hoist-server.example.toml")).unwrap();
        f.validate_policy().unwrap();
        assert_eq!(f.bucket.as_ref().unwrap().name, "company-uploads");
        let e = f.tokens(None).unwrap_err().to_string();
        assert!(e.contains("hoist-server hash-token"), "{e}");
        let mut filled = f;
        for t in &mut filled.tokens {
            t.sha256 = hash_token(&format!("{}-{}", t.id, "x".repeat(32)));
        }
        let tokens = filled.tokens(None).unwrap();
        assert_eq!(tokens.len(), 2);
        // A token's own limits, and the policy's where it has none.
        assert_eq!(
            (tokens[1].files_per_minute, tokens[1].rate_per_minute),
            (30, 600)
        );
        assert_eq!(
            (tokens[0].files_per_minute, tokens[0].files_burst),
            (DEFAULT_FILES_PER_MINUTE, DEFAULT_FILES_BURST)
        );
    }

    #[test]
    fn expiry_may_only_be_lowered() {
        let mut f = FileConfig::default();
        f.policy.expiry_secs = 3600;
        assert!(f.validate_policy().is_err());
        f.policy.expiry_secs = 60;
        assert!(f.validate_policy().is_ok());
    }
}
