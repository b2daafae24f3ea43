//! Bucket profiles: where uploads go and under which rules.
//!
//! One concept, one file: the profile, its file format and every rule it is checked by.
//!
//! Profiles live in `profiles.toml` in the config directory (`HOIST_CONFIG_DIR`, else the
//! platform's config dir + `hoist`). The file never holds a secret: secret access keys, session
//! tokens and bearer tokens are in the OS keychain ([`crate::secret`]). With no profile
//! configured, the built-in [`Profile::local`] is used: an in-process S3 store on 127.0.0.1.

use crate::checksum::ChecksumAlgorithm;
use crate::object::ObjectSettings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::secret::SecretKind;

mod managed;
pub use managed::managed_dir;
use managed::Managed;

/// Name of the built-in embedded profile.
pub const LOCAL_PROFILE: &str = "local";
/// Default key template: `{prefix}` is prepended separately, see [`crate::key`].
pub const DEFAULT_KEY_TEMPLATE: &str = "{yyyy}/{mm}/{dd}/{uuid}-{name}";
/// Files uploaded at once when a profile does not say.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Why a profile or the profiles file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profiles file cannot be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The profiles file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid profile file: {message}")]
    /// The profiles file is not valid TOML of the expected shape.
    Parse {
        /// The profiles file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    #[error("no profile named '{name}' (configured: {available})")]
    /// No profile has this name.
    NotFound {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        available: String,
    },
    #[error("a profile named '{0}' exists already")]
    /// A profile of this name exists already.
    Exists(String),
    /// A field is not acceptable; the message says which and why.
    #[error("invalid profile: {0}")]
    Invalid(String),
    /// The profile is managed by the organisation: staff cannot change or remove it, nor
    /// add one of its name.
    #[error(
        "the profile '{name}' is managed by your organisation ({path}): it cannot be changed \
         or removed here, nor another of its name added; ask your administrator"
    )]
    Managed {
        /// The profile.
        name: String,
        /// The managed file it comes from.
        path: PathBuf,
    },
    /// The organisation set the default profile: staff cannot choose another.
    #[error(
        "your organisation made '{0}' the default profile, so it cannot be changed here; \
         another profile can still be named for an upload (`hoist upload --profile NAME`)"
    )]
    ManagedDefault(String),
    /// Several profiles exist, none is the default, and none was named.
    #[error("several profiles are configured ({available}) and none is the default")]
    NoDefault {
        /// The names that exist, comma-separated.
        available: String,
    },
}

impl crate::error::HasKind for ProfileError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            Self::Io { .. } => crate::error::ErrorKind::Local,
            _ => crate::error::ErrorKind::InvalidInput,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        use crate::error::Hint;
        match self {
            Self::NotFound { .. } => Some(Hint::AddProfile),
            Self::Exists(name) => Some(Hint::RemoveProfile {
                profile: name.clone(),
            }),
            Self::NoDefault { .. } => Some(Hint::ChooseProfile),
            _ => None,
        }
    }
}

/// How presigned URLs are obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(tag = "mode", rename_all = "kebab-case")]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum Mode {
    /// Staff mode: a company backend signs each upload.
    Backend {
        /// The backend's presign endpoint, e.g. `https://uploads.example.com/api/upload`.
        url: String,
        /// How Hoist talks to the backend.
        #[serde(default)]
        protocol: Protocol,
        /// Send the bearer token stored in the keychain for this profile.
        #[serde(default)]
        token: bool,
    },
    /// Admin mode: Hoist signs with SigV4, the secret key being in the keychain.
    SelfSign {
        /// The bucket.
        bucket: String,
        /// The bucket's region (signed into every request).
        region: String,
        /// For S3-compatible stores; AWS when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// Address the bucket as `host/bucket/key` rather than `bucket.host/key`.
        #[serde(default)]
        path_style: bool,
        /// The access key id; its secret is in the keychain.
        access_key_id: String,
    },
    /// The embedded default: an in-process store under the data dir.
    Local,
}

impl Mode {
    /// Where files of this mode go, as a queue item records it: an unfinished upload resumes
    /// only while its profile still sends files there.
    pub fn destination(&self) -> String {
        self.describe()
    }

    /// Whether a [`Self::destination`] is a backend's, which chooses each file's key itself:
    /// the key Hoist builds for such a file is provisional until the backend names its own.
    pub fn destination_chooses_keys(destination: &str) -> bool {
        destination.starts_with("backend ")
    }

    /// The mode's name as profile files and the UI write it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Backend { .. } => "backend",
            Self::SelfSign { .. } => "self-sign",
            Self::Local => "local",
        }
    }

    /// Where files go, in one line.
    pub fn describe(&self) -> String {
        match self {
            Self::Backend { url, .. } => format!("backend {url}"),
            Self::SelfSign {
                bucket,
                region,
                endpoint: Some(e),
                ..
            } => format!("self-sign s3://{bucket} ({region}) via {e}"),
            Self::SelfSign { bucket, region, .. } => format!("self-sign s3://{bucket} ({region})"),
            Self::Local => "embedded store on 127.0.0.1".to_string(),
        }
    }

    /// The secret a command means when it names none: a backend's bearer token, else the
    /// secret access key.
    pub fn main_secret(&self) -> SecretKind {
        match self {
            Self::Backend { .. } => SecretKind::BearerToken,
            _ => SecretKind::SecretAccessKey,
        }
    }

    /// The secrets stored for a profile of mode `self` that must go when it changes to `new`:
    /// those `new` does not use, a bearer token whose backend moves to another host, and a
    /// session token whose endpoint moves (both travel with every request, to the new host).
    pub fn stale_secrets(&self, new: &Self) -> Vec<SecretKind> {
        let host = |u: &str| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
        };
        let moved = match (self, new) {
            (Self::Backend { url: a, .. }, Self::Backend { url: b, .. }) => host(a) != host(b),
            (Self::SelfSign { endpoint: a, .. }, Self::SelfSign { endpoint: b, .. }) => {
                a.as_deref().map(host) != b.as_deref().map(host)
            }
            _ => false,
        };
        let kept = new.secrets();
        SecretKind::ALL
            .into_iter()
            .filter(|k| {
                let used = kept.iter().any(|(u, _)| u == k);
                let travels = matches!(k, SecretKind::BearerToken | SecretKind::SessionToken);
                // The proxy's password belongs to the profile's network, not to its mode.
                let network = *k == SecretKind::ProxyPassword;
                // A sign-in belongs to the profile's identity provider ([`Profile::stale_secrets`]);
                // its access tokens would travel to a backend's new host.
                if *k == SecretKind::SignIn {
                    return moved;
                }
                !network && (!used || (moved && travels))
            })
            .collect()
    }

    /// The secrets this mode reads from the keychain, each with whether it is required.
    pub fn secrets(&self) -> Vec<(SecretKind, bool)> {
        match self {
            Self::Backend { token: true, .. } => vec![(SecretKind::BearerToken, true)],
            Self::Backend { .. } | Self::Local => vec![],
            Self::SelfSign { .. } => vec![
                (SecretKind::SecretAccessKey, true),
                (SecretKind::SessionToken, false),
            ],
        }
    }
}

/// The backend's wire protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum Protocol {
    /// `POST url {fileName, contentType, size}` → `{url, method?, headers?, key?, expiresAt?}`.
    #[default]
    Simple,
    /// Uppy Companion's S3 endpoints under the URL (`/s3/params`, `/s3/multipart/...`): large
    /// files go multipart through the backend.
    Companion,
}

/// A named destination: where files go, how requests are signed, and the rules files must meet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct Profile {
    /// The profile's name (the key in the profiles file).
    #[serde(skip)]
    pub name: String,
    /// Where files go and who signs.
    #[serde(flatten)]
    pub mode: Mode,
    /// Prepended to every key (self-sign and local modes); a backend chooses its own keys.
    #[serde(default)]
    pub prefix: String,
    /// How keys are made (see [`crate::key`]).
    #[serde(default = "default_template")]
    pub key_template: String,
    /// Largest file accepted, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(type = "number", optional))]
    pub max_size: Option<u64>,
    /// MIME types accepted (`image/png`, `image/*`); empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_types: Vec<String>,
    /// Uploads (single PUTs or parts) in flight at once, over all files.
    #[serde(default = "default_concurrency")]
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub concurrency: usize,
    /// Accept empty files (refused by default: they are usually a mistake).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
    /// The checksum signed into each request and verified by the store (self-sign and local
    /// modes; a backend signs what it signs).
    #[serde(default, skip_serializing_if = "is_default_checksum")]
    pub checksum: ChecksumAlgorithm,
    /// What the store keeps with each object: encryption, storage class, headers, metadata,
    /// tags (self-sign and local modes; a backend sets its own, by its policy).
    #[serde(default, skip_serializing_if = "ObjectSettings::is_empty")]
    pub object: ObjectSettings,
    /// How this profile reaches its servers: proxy, company CA, bandwidth limit.
    #[serde(flatten)]
    pub network: NetworkSettings,
    /// A backend profile whose staff sign in with the company's identity provider (`hoist
    /// login`): its access tokens are the bearer, instead of a stored token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub sign_in: Option<SignInSettings>,
}

/// The identity provider a backend profile signs in with (OpenID Connect).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct SignInSettings {
    /// The provider's issuer URL (`https://login.example.com/realms/staff`).
    pub issuer: String,
    /// Hoist's client id there: a public client (no secret) with the loopback redirect
    /// `http://127.0.0.1/callback` and, for terminals, the device grant.
    pub client_id: String,
}

impl SignInSettings {
    /// Checks the issuer (https, or http on this machine) and the client id.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let u = url::Url::parse(&self.issuer).map_err(|e| {
            ProfileError::Invalid(format!("issuer '{}' is not a URL: {e}", self.issuer))
        })?;
        let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(u.scheme() == "https" || (u.scheme() == "http" && loopback)) {
            return Err(ProfileError::Invalid(format!(
                "issuer '{}' must use https:// (plain http only on this machine)",
                self.issuer
            )));
        }
        if self.client_id.trim().is_empty() {
            return Err(ProfileError::Invalid(
                "the sign-in needs the client id registered for Hoist at the identity provider"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// How a profile reaches its backend and store from a company network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
pub struct NetworkSettings {
    /// The proxy every request goes through (`http://proxy.corp:3128`, a user name may be
    /// given as `http://alice@proxy.corp:3128`; its password lives in the keychain as the
    /// `proxy-password` secret). Unset: `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, then the
    /// system's proxy settings (Windows, macOS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(optional))]
    pub proxy: Option<String>,
    /// A PEM file of root certificates trusted besides the OS trust store (a company CA, or
    /// the CA of a TLS-inspecting proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(type = "string", optional))]
    pub ca_file: Option<PathBuf>,
    /// Bytes per second this profile's uploads may send, over all files and parts in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ipc", ts(type = "number", optional))]
    pub limit_rate: Option<u64>,
}

impl NetworkSettings {
    /// Checks the proxy URL (no password in it) and that a CA file is named by a path.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if let Some(proxy) = &self.proxy {
            let u = url::Url::parse(proxy).map_err(|e| {
                ProfileError::Invalid(format!(
                    "proxy '{}' is not a URL such as http://proxy.example:3128: {e}",
                    crate::redact::url_password(proxy)
                ))
            })?;
            if !matches!(u.scheme(), "http" | "https" | "socks5" | "socks5h")
                || u.host_str().is_none()
            {
                return Err(ProfileError::Invalid(format!(
                    "proxy '{}' must be an http://, https:// or socks5:// URL with a host",
                    crate::redact::url_password(proxy)
                )));
            }
            if u.password().is_some() {
                return Err(ProfileError::Invalid(
                    "the proxy URL holds a password: keep only the user name in it \
                     (http://alice@proxy.example:3128) and store the password in the keychain \
                     as the profile's proxy-password secret"
                        .into(),
                ));
            }
        }
        if let Some(0) = self.limit_rate {
            return Err(ProfileError::Invalid(
                "limit_rate must be at least 1 byte per second (leave it out for no limit)".into(),
            ));
        }
        if self
            .ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ProfileError::Invalid(
                "ca_file is empty: name a PEM file of root certificates, or leave it out".into(),
            ));
        }
        Ok(())
    }
}

fn is_default_checksum(c: &ChecksumAlgorithm) -> bool {
    *c == ChecksumAlgorithm::default()
}

fn default_template() -> String {
    DEFAULT_KEY_TEMPLATE.to_string()
}

fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}

impl Profile {
    /// The secrets this profile reads from the keychain, each with whether it is required:
    /// its mode's, and the proxy's password when its proxy URL names a user.
    pub fn secrets(&self) -> Vec<(SecretKind, bool)> {
        let mut kinds = self.mode.secrets();
        let proxy_user = self
            .network
            .proxy
            .as_deref()
            .and_then(|p| url::Url::parse(p).ok())
            .is_some_and(|u| !u.username().is_empty());
        if proxy_user {
            kinds.push((SecretKind::ProxyPassword, true));
        }
        if self.sign_in.is_some() {
            kinds.push((SecretKind::SignIn, true));
        }
        kinds
    }

    /// The secrets stored for this profile that must go when it changes to `new`: those of
    /// [`Mode::stale_secrets`] (a sign-in among them when the backend moves to another host),
    /// and a sign-in whose identity provider or client changes.
    pub fn stale_secrets(&self, new: &Self) -> Vec<SecretKind> {
        let mut stale = self.mode.stale_secrets(&new.mode);
        if self.sign_in.is_some()
            && self.sign_in != new.sign_in
            && !stale.contains(&SecretKind::SignIn)
        {
            stale.push(SecretKind::SignIn);
        }
        stale
    }

    /// A profile with the given mode and default rules.
    pub fn new(name: impl Into<String>, mode: Mode) -> Self {
        Self {
            name: name.into(),
            mode,
            prefix: String::new(),
            key_template: default_template(),
            max_size: None,
            allowed_types: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            allow_empty: false,
            checksum: ChecksumAlgorithm::default(),
            object: ObjectSettings::default(),
            network: NetworkSettings::default(),
            sign_in: None,
        }
    }

    /// The built-in embedded profile.
    pub fn local() -> Self {
        let mut p = Self::new(LOCAL_PROFILE, Mode::Local);
        p.prefix = "uploads/".to_string();
        p
    }

    /// Checks every field; called before a profile is saved and after one is loaded.
    pub fn validate(&self) -> Result<(), ProfileError> {
        validate_name(&self.name)?;
        self.object.validate().map_err(ProfileError::Invalid)?;
        self.network.validate()?;
        if let Some(s) = &self.sign_in {
            if !matches!(self.mode, Mode::Backend { token: false, .. }) {
                return Err(ProfileError::Invalid(
                    "only a backend profile without a stored token can sign in with an identity \
                     provider"
                        .into(),
                ));
            }
            s.validate()?;
        }
        match &self.mode {
            Mode::Backend { url, .. } => validate_backend_url(url)?,
            Mode::SelfSign {
                bucket,
                region,
                endpoint,
                access_key_id,
                ..
            } => {
                validate_bucket(bucket)?;
                if region.is_empty()
                    || !region
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return Err(ProfileError::Invalid(format!(
                        "region '{region}' is not a region name such as us-east-1"
                    )));
                }
                if let Some(e) = endpoint {
                    let u = url::Url::parse(e).map_err(|err| {
                        ProfileError::Invalid(format!("endpoint '{e}' is not a URL: {err}"))
                    })?;
                    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                        return Err(ProfileError::Invalid(format!(
                            "endpoint '{e}' must be an http:// or https:// URL with a host"
                        )));
                    }
                }
                if access_key_id.is_empty()
                    || !access_key_id.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(ProfileError::Invalid(
                        "access key id must be letters and digits (e.g. AKIA...); the secret key goes in \
                         the keychain, not in the profile"
                            .into(),
                    ));
                }
            }
            Mode::Local => {}
        }
        crate::key::validate_prefix(&self.prefix)
            .map_err(|e| ProfileError::Invalid(e.to_string()))?;
        crate::key::validate_template(&self.key_template)
            .map_err(|e| ProfileError::Invalid(e.to_string()))?;
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err(ProfileError::Invalid(
                "concurrency must be between 1 and 64".into(),
            ));
        }
        for t in &self.allowed_types {
            if !t.contains('/') {
                return Err(ProfileError::Invalid(format!(
                    "allowed type '{t}' is not a MIME type such as image/png or image/*"
                )));
            }
        }
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ProfileError::Invalid(format!(
            "profile name '{name}' must be 1-64 letters, digits, '-' or '_'"
        )))
    }
}

fn validate_bucket(bucket: &str) -> Result<(), ProfileError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(ProfileError::Invalid(format!(
            "bucket '{bucket}' is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' and '.')"
        )))
    }
}

fn validate_backend_url(raw: &str) -> Result<(), ProfileError> {
    let u = url::Url::parse(raw)
        .map_err(|e| ProfileError::Invalid(format!("backend URL '{raw}': {e}")))?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ProfileError::Invalid(format!(
            "backend URL '{raw}' must use https:// (plain http is accepted only on this machine, \
             because the bearer token would travel in clear)"
        ))),
    }
}

/// Parses a size such as `1048576`, `512KiB`, `100MB`, `5GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size such as 100MB or 5GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit '{other}' in '{s}' (use B, KB, MB, GB, KiB, MiB, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// A size as people read it, in the unit it is exact in where there is one (`100 MB` for a
/// limit written `100MB`, `300 MiB` for 314572800), else in binary units with one decimal.
pub fn format_size(n: u64) -> String {
    const UNITS: [(u64, &str); 8] = [
        (1 << 40, "TiB"),
        (1_000_000_000_000, "TB"),
        (1 << 30, "GiB"),
        (1_000_000_000, "GB"),
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "KB"),
    ];
    if let Some((size, unit)) = UNITS
        .iter()
        .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
    {
        return format!("{} {unit}", n / size);
    }
    match [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ]
    .iter()
    .find(|(size, _)| n >= *size)
    {
        Some((size, unit)) => format!("{:.1} {unit}", n as f64 / *size as f64),
        None => format!("{n} B"),
    }
}

/// A rate such as `5MB`, `5MB/s` or `500KiB`: bytes per second, at least 1.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let size = parse_size(s.trim().trim_end_matches("/s"))?;
    if size == 0 {
        return Err("a limit must be at least 1 byte per second".into());
    }
    Ok(size)
}

/// Where Hoist keeps its configuration (`HOIST_CONFIG_DIR` overrides).
pub fn config_dir() -> PathBuf {
    std::env::var_os("HOIST_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::config_dir().map(|d| d.join("hoist")))
        .unwrap_or_else(|| PathBuf::from(".hoist"))
}

/// Where Hoist keeps its data: the embedded store, later the queue (`HOIST_DATA_DIR` overrides).
pub fn data_dir() -> PathBuf {
    std::env::var_os("HOIST_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs::data_dir().map(|d| d.join("hoist")))
        .unwrap_or_else(|| PathBuf::from(".hoist-data"))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ProfileFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    /// Bytes per second over all uploads of all profiles (the app's limit, and the CLI's
    /// unless `--limit-rate` says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit_rate: Option<u64>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The profiles file in one config directory, and the organisation's managed profiles.
#[derive(Clone, Debug)]
pub struct ProfileStore {
    path: PathBuf,
    /// The machine-wide directory of managed profiles ([`managed_dir`]), if read.
    managed_dir: Option<PathBuf>,
}

impl ProfileStore {
    /// The store in [`config_dir`], with the managed profiles of [`managed_dir`].
    pub fn open_default() -> Self {
        Self::in_dir(&config_dir()).with_managed(&managed_dir())
    }

    /// The profiles file in `dir` (and no managed profiles).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("profiles.toml"),
            managed_dir: None,
        }
    }

    /// This store with the managed profiles in `dir`.
    pub fn with_managed(mut self, dir: &Path) -> Self {
        self.managed_dir = Some(dir.to_path_buf());
        self
    }

    fn managed(&self) -> Result<Managed, ProfileError> {
        match &self.managed_dir {
            Some(dir) => Managed::load(dir),
            None => Ok(Managed::default()),
        }
    }

    /// The profiles the organisation manages, each with the file it comes from.
    pub fn managed_sources(&self) -> Result<BTreeMap<String, PathBuf>, ProfileError> {
        Ok(self
            .managed()?
            .profiles
            .into_iter()
            .map(|(name, (_, path))| (name, path))
            .collect())
    }

    /// The user's file with the managed profiles over it: a managed profile hides a user's
    /// of the same name, and a managed default wins.
    fn load_all(&self) -> Result<ProfileFile, ProfileError> {
        let mut file = self.load()?;
        let managed = self.managed()?;
        if managed.default.is_some() {
            file.default = managed.default;
        }
        for (name, (profile, _)) in managed.profiles {
            file.profiles.insert(name, profile);
        }
        Ok(file)
    }

    /// The profiles file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<ProfileFile, ProfileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileFile::default()),
            Err(source) => {
                return Err(ProfileError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut file: ProfileFile = toml::from_str(&text).map_err(|e| ProfileError::Parse {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        for (name, p) in &mut file.profiles {
            p.name = name.clone();
        }
        Ok(file)
    }

    fn save(&self, file: &ProfileFile) -> Result<(), ProfileError> {
        let io = |source| ProfileError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text =
            toml::to_string_pretty(file).map_err(|e| ProfileError::Invalid(e.to_string()))?;
        // Owner-only, and whole or not at all: see `crate::files`.
        crate::files::write_private(&self.path, text.as_bytes()).map_err(io)
    }

    /// All configured profiles, by name.
    pub fn list(&self) -> Result<Vec<Profile>, ProfileError> {
        Ok(self.load_all()?.profiles.into_values().collect())
    }

    /// The name of the default profile, if one is set.
    pub fn default_name(&self) -> Result<Option<String>, ProfileError> {
        Ok(self.load_all()?.default)
    }

    /// Profile `name` (also the built-in `local`).
    pub fn get(&self, name: &str) -> Result<Profile, ProfileError> {
        if name == LOCAL_PROFILE {
            return Ok(Profile::local());
        }
        let file = self.load_all()?;
        file.profiles
            .get(name)
            .cloned()
            .ok_or_else(|| ProfileError::NotFound {
                name: name.to_string(),
                available: available(&file),
            })
    }

    /// The profile to use: `name` if given, else the default, else the first and only one,
    /// else the built-in `local`.
    pub fn resolve(&self, name: Option<&str>) -> Result<Profile, ProfileError> {
        if let Some(n) = name {
            return self.get(n);
        }
        let file = self.load_all()?;
        if let Some(d) = &file.default {
            return self.get(d);
        }
        if file.profiles.len() == 1 {
            if let Some(p) = file.profiles.values().next() {
                return Ok(p.clone());
            }
        }
        if file.profiles.is_empty() {
            return Ok(Profile::local());
        }
        Err(ProfileError::NoDefault {
            available: available(&file),
        })
    }

    /// Adds a new profile; `make_default` also makes it the default.
    pub fn add(&self, profile: Profile, make_default: bool) -> Result<(), ProfileError> {
        profile.validate()?;
        if profile.name == LOCAL_PROFILE {
            return Err(ProfileError::Invalid(
                "'local' is the built-in embedded profile; choose another name".into(),
            ));
        }
        self.managed()?.refuse_change(&profile.name)?;
        let mut file = self.load()?;
        if file.profiles.contains_key(&profile.name) {
            return Err(ProfileError::Exists(profile.name));
        }
        if make_default {
            file.default = Some(profile.name.clone());
        }
        file.profiles.insert(profile.name.clone(), profile);
        self.save(&file)
    }

    /// Replaces an existing profile.
    pub fn update(&self, profile: Profile) -> Result<(), ProfileError> {
        profile.validate()?;
        self.managed()?.refuse_change(&profile.name)?;
        let mut file = self.load()?;
        if !file.profiles.contains_key(&profile.name) {
            return Err(ProfileError::NotFound {
                name: profile.name.clone(),
                available: available(&file),
            });
        }
        file.profiles.insert(profile.name.clone(), profile);
        self.save(&file)
    }

    /// The overall bandwidth limit (bytes per second), if one is set.
    pub fn limit_rate(&self) -> Result<Option<u64>, ProfileError> {
        Ok(self.load()?.limit_rate)
    }

    /// Sets (or with `None` removes) the overall bandwidth limit.
    pub fn set_limit_rate(&self, bytes_per_second: Option<u64>) -> Result<(), ProfileError> {
        let mut file = self.load()?;
        file.limit_rate = bytes_per_second.filter(|b| *b > 0);
        self.save(&file)
    }

    /// Makes profile `name` the one uploads use when none is named.
    pub fn set_default(&self, name: &str) -> Result<(), ProfileError> {
        let managed = self.managed()?;
        match &managed.default {
            Some(d) if d != name => return Err(ProfileError::ManagedDefault(d.clone())),
            Some(_) => return Ok(()),
            None => {}
        }
        let mut file = self.load()?;
        if name != LOCAL_PROFILE
            && !file.profiles.contains_key(name)
            && !managed.profiles.contains_key(name)
        {
            return Err(ProfileError::NotFound {
                name: name.to_string(),
                available: available(&file),
            });
        }
        file.default = Some(name.to_string());
        self.save(&file)
    }

    /// Removes a profile (its keychain secrets are the caller's to delete).
    pub fn remove(&self, name: &str) -> Result<Profile, ProfileError> {
        self.managed()?.refuse_change(name)?;
        let mut file = self.load()?;
        let removed = file
            .profiles
            .remove(name)
            .ok_or_else(|| ProfileError::NotFound {
                name: name.to_string(),
                available: available(&file),
            })?;
        if file.default.as_deref() == Some(name) {
            file.default = None;
        }
        self.save(&file)?;
        Ok(removed)
    }
}

fn available(file: &ProfileFile) -> String {
    if file.profiles.is_empty() {
        "none".to_string()
    } else {
        file.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (orphaned secrets, security review): a bearer token stayed in the keychain
    /// when a profile changed mode or moved to another backend host, and was later sent there.
    #[test]
    fn a_sign_in_goes_when_the_identity_provider_or_client_changes() {
        let mut a = Profile::new(
            "staff",
            Mode::Backend {
                url: "https://uploads.example.com/api/upload".into(),
                protocol: Protocol::Simple,
                token: false,
            },
        );
        a.sign_in = Some(SignInSettings {
            issuer: "https://login.example.com".into(),
            client_id: "hoist".into(),
        });
        let mut same = a.clone();
        same.concurrency = 8;
        assert!(!a.stale_secrets(&same).contains(&SecretKind::SignIn));
        let mut other_client = a.clone();
        other_client.sign_in.as_mut().unwrap().client_id = "other".into();
        assert!(a.stale_secrets(&other_client).contains(&SecretKind::SignIn));
        let mut none = a.clone();
        none.sign_in = None;
        assert!(a.stale_secrets(&none).contains(&SecretKind::SignIn));
        // Its access tokens would reach the new host.
        let mut moved = a.clone();
        moved.mode = Mode::Backend {
            url: "https://elsewhere.example.org/api/upload".into(),
            protocol: Protocol::Simple,
            token: false,
        };
        assert!(a.stale_secrets(&moved).contains(&SecretKind::SignIn));
    }

    #[test]
    fn secrets_that_would_travel_to_a_new_host_or_mode_are_stale() {
        let backend = |url: &str, token: bool| Mode::Backend {
            url: url.into(),
            protocol: Protocol::Simple,
            token,
        };
        let self_sign = |endpoint: Option<&str>| Mode::SelfSign {
            bucket: "b".into(),
            region: "us-east-1".into(),
            endpoint: endpoint.map(str::to_string),
            path_style: true,
            access_key_id: "AKID".into(),
        };
        let a = backend("https://a.example.com/api/upload", true);
        assert!(a
            .stale_secrets(&backend("https://a.example.com/v2/upload", true))
            .iter()
            .all(|k| *k != SecretKind::BearerToken));
        assert!(a
            .stale_secrets(&backend("https://b.example.com/api/upload", true))
            .contains(&SecretKind::BearerToken));
        assert!(a
            .stale_secrets(&backend("https://a.example.com/api/upload", false))
            .contains(&SecretKind::BearerToken));
        let to_self_sign = a.stale_secrets(&self_sign(None));
        assert!(to_self_sign.contains(&SecretKind::BearerToken));
        assert!(!to_self_sign.contains(&SecretKind::SecretAccessKey));
        let s = self_sign(Some("https://minio.example.com"));
        let moved = s.stale_secrets(&self_sign(Some("https://other.example.com")));
        assert!(moved.contains(&SecretKind::SessionToken));
        assert!(!moved.contains(&SecretKind::SecretAccessKey));
    }

    fn self_sign(name: &str) -> Profile {
        Profile::new(
            name,
            Mode::SelfSign {
                bucket: "my-bucket".into(),
                region: "eu-west-1".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                path_style: true,
                access_key_id: "AKIDEXAMPLE".into(),
            },
        )
    }

    #[test]
    fn round_trips_through_the_file_and_resolves_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::in_dir(dir.path());
        assert_eq!(store.resolve(None).unwrap().mode, Mode::Local);
        store.add(self_sign("admin"), false).unwrap();
        let mut staff = Profile::new(
            "staff",
            Mode::Backend {
                url: "https://uploads.example.com/api/upload".into(),
                protocol: Protocol::Simple,
                token: true,
            },
        );
        staff.max_size = Some(10 << 20);
        staff.allowed_types = vec!["image/*".into()];
        store.add(staff.clone(), true).unwrap();
        assert_eq!(store.get("staff").unwrap(), staff);
        assert_eq!(store.resolve(None).unwrap().name, "staff");
        assert_eq!(store.get("admin").unwrap(), self_sign("admin"));
        assert!(matches!(
            store.add(self_sign("admin"), false),
            Err(ProfileError::Exists(_))
        ));
        store.remove("staff").unwrap();
        assert_eq!(store.resolve(None).unwrap().name, "admin");
    }

    #[test]
    fn rejects_bad_fields_with_a_reason() {
        let mut p = self_sign("x");
        if let Mode::SelfSign { bucket, .. } = &mut p.mode {
            *bucket = "Bad_Bucket".into();
        }
        assert!(p.validate().unwrap_err().to_string().contains("bucket"));
        let p = Profile::new(
            "y",
            Mode::Backend {
                url: "http://uploads.example.com/x".into(),
                protocol: Protocol::Simple,
                token: false,
            },
        );
        assert!(p.validate().unwrap_err().to_string().contains("https"));
        let mut p = self_sign("z");
        p.prefix = "../escape/".into();
        assert!(p.validate().is_err());
    }

    #[test]
    fn parses_human_sizes() {
        assert_eq!(parse_size("5GiB").unwrap(), 5 << 30);
        // Regression (#31, defect 6): a refusal read "314572800 bytes, over … 100000000".
        assert_eq!(format_size(314_572_800), "300 MiB");
        assert_eq!(format_size(parse_size("100MB").unwrap()), "100 MB");
        assert_eq!(format_size(1500), "1.5 KiB");
        assert_eq!(format_size(999), "999 B");
        assert_eq!(format_size(0), "0 B");
        assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_size("42").unwrap(), 42);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5XB").is_err());
    }
}
