//! How Hoist reaches its servers from a company network, and what it says when it cannot.
//!
//! - **Proxy.** A profile may name one (`proxy = "http://alice@proxy.corp:3128"`, the password
//!   in the keychain); otherwise `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` apply, then the proxy in
//!   Windows' or macOS' settings (reqwest's `system-proxy`).
//! - **Trust.** The OS trust store (rustls-platform-verifier: the certificates IT deploys to
//!   staff machines count), plus the roots in a profile's `ca_file`.
//! - **Diagnosis.** A certificate the verifier refuses is reported with its issuer, so a
//!   TLS-inspecting proxy shows up by name ("issued by CN=Corp Inspection CA") instead of as
//!   "invalid peer certificate: UnknownIssuer". [`explain`] turns any connection failure into
//!   what failed (DNS, connect, proxy, TLS, timeout), what staff can do, and what to tell IT.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::error::{ErrorKind, HasKind};
use crate::profile::NetworkSettings;
use crate::redact::redact;
use crate::secret::Secret;

/// Why a profile's network settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The CA file cannot be read or holds no certificate.
    #[error(
        "cannot use the CA file {path}: {message}; set the profile's ca_file to a PEM file of \
         root certificates (IT can give you the company's)"
    )]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The proxy URL cannot be used.
    #[error("cannot use the proxy {proxy}: {message}")]
    Proxy {
        /// The proxy URL (never with a password).
        proxy: String,
        /// What went wrong.
        message: String,
    },
    /// The proxy names a user but no password is stored.
    #[error(
        "the proxy {proxy} names user '{user}' but profile '{profile}' has no proxy password \
         in the keychain: store it as the profile's proxy-password secret"
    )]
    ProxyPasswordMissing {
        /// The proxy URL.
        proxy: String,
        /// Its user.
        user: String,
        /// The profile.
        profile: String,
    },
    /// TLS could not be set up (the OS trust store cannot be read).
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::ProxyPasswordMissing { profile, .. } => Some(crate::error::Hint::StoreSecret {
                profile: profile.clone(),
                kind: "proxy-password",
            }),
            _ => None,
        }
    }
}

/// What to do when a proxy answers 407 (to a plain-HTTP request, or to CONNECT).
pub(crate) const PROXY_WANTS_CREDENTIALS: &str =
    "the proxy asks for a user name and password (HTTP 407): put the user in the profile's proxy \
     URL (http://user@proxy:port) and store the password in the keychain as the profile's \
     proxy-password secret; IT can tell you which account the proxy accepts";

/// The proxy and TLS every client of a session uses.
#[derive(Clone)]
pub struct Network {
    proxy: Option<reqwest::Proxy>,
    tls: rustls::ClientConfig,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("proxy", &self.proxy.is_some())
            .finish_non_exhaustive()
    }
}

impl Network {
    /// The system's proxy and trust store, with certificate diagnosis.
    pub fn system() -> Result<Self, NetworkError> {
        static SYSTEM: OnceLock<Result<Network, String>> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                Ok(Self {
                    proxy: None,
                    tls: tls_config(Vec::new()).map_err(|e| e.to_string())?,
                })
            })
            .clone()
            .map_err(NetworkError::Tls)
    }

    /// `settings` of profile `profile`, with the proxy's password when one is stored.
    pub fn for_profile(
        profile: &str,
        settings: &NetworkSettings,
        proxy_password: Option<&Secret>,
    ) -> Result<Self, NetworkError> {
        let tls = match &settings.ca_file {
            Some(path) => tls_config(read_ca_file(path)?)?,
            None => Self::system()?.tls,
        };
        let proxy = match &settings.proxy {
            Some(raw) => Some(proxy(profile, raw, proxy_password)?),
            None => None,
        };
        Ok(Self { proxy, tls })
    }

    /// Applies this network to a client being built.
    pub(crate) fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let builder = builder.tls_backend_preconfigured(self.tls.clone());
        match &self.proxy {
            Some(p) => builder.proxy(p.clone()),
            None => builder,
        }
    }
}

fn proxy(
    profile: &str,
    raw: &str,
    password: Option<&Secret>,
) -> Result<reqwest::Proxy, NetworkError> {
    let fail = |message: String| NetworkError::Proxy {
        proxy: crate::redact::url_password(raw),
        message,
    };
    let mut url = url::Url::parse(raw).map_err(|e| fail(e.to_string()))?;
    let user = percent_encoding::percent_decode_str(url.username())
        .decode_utf8_lossy()
        .into_owned();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    // A custom proxy, not `Proxy::all`: `basic_auth` on `all` writes the password into the
    // proxy's URL, which reqwest's `Debug` of a client prints; on a custom one it is a header
    // marked sensitive.
    reqwest::Proxy::all(url.as_str()).map_err(|e| fail(e.to_string()))?;
    let target = url.clone();
    let proxy = reqwest::Proxy::custom(move |_| Some(target.clone()))
        .no_proxy(reqwest::NoProxy::from_env());
    if user.is_empty() {
        return Ok(proxy);
    }
    let password = password.ok_or_else(|| NetworkError::ProxyPasswordMissing {
        proxy: url.to_string(),
        user: user.clone(),
        profile: profile.to_string(),
    })?;
    Ok(proxy.basic_auth(&user, password.expose()))
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetworkError> {
    let fail = |message: String| NetworkError::CaFile {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(fail(
            "it holds no certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

fn tls_config(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, NetworkError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = |e: rustls::Error| NetworkError::Tls(e.to_string());
    let inner = if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(Arc::clone(&provider)).map_err(tls)?
    } else {
        new_with_extra_roots(extra_roots, Arc::clone(&provider)).map_err(tls)?
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NamingVerifier { inner }))
        .with_no_client_auth();
    // What reqwest offers when it builds TLS itself.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(any(all(unix, not(target_os = "android")), target_os = "windows"))]
fn new_with_extra_roots(
    roots: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, rustls::Error> {
    rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider)
}

#[cfg(not(any(all(unix, not(target_os = "android")), target_os = "windows")))]
fn new_with_extra_roots(
    _roots: Vec<CertificateDer<'static>>,
    _provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls_platform_verifier::Verifier, rustls::Error> {
    Err(rustls::Error::General(
        "a CA file is not supported on this platform: add the CA to the system's trust store"
            .into(),
    ))
}

/// A certificate the OS verifier refused, with who issued it.
#[derive(Debug, Clone)]
pub struct RefusedCertificate {
    /// The server name asked for.
    pub host: String,
    /// The issuer of the certificate presented (its distinguished name).
    pub issuer: String,
    /// Why it was refused.
    pub reason: CertificateError,
}

impl std::fmt::Display for RefusedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the certificate of {} (issued by \"{}\") was refused: {}",
            self.host, self.issuer, self.reason
        )
    }
}

impl std::error::Error for RefusedCertificate {}

/// The platform verifier, naming the issuer of what it refuses.
#[derive(Debug)]
struct NamingVerifier {
    inner: rustls_platform_verifier::Verifier,
}

impl ServerCertVerifier for NamingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(reason) => {
                    let refused = RefusedCertificate {
                        host: server_name.to_str().into_owned(),
                        issuer: issuer_of(end_entity),
                        reason,
                    };
                    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                        Arc::new(refused),
                    )))
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn issuer_of(cert: &CertificateDer<'_>) -> String {
    match x509_parser::parse_x509_certificate(cert.as_ref()) {
        Ok((_, c)) => c.issuer().to_string(),
        Err(_) => "an unreadable certificate".into(),
    }
}

/// The certificate our verifier refused, if `e` is that refusal: a `rustls::Error`, or an
/// `io::Error` carrying one (tokio-rustls wraps it so, and `io::Error::source` skips it).
fn refused_in(e: &(dyn std::error::Error + 'static)) -> Option<RefusedCertificate> {
    if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
        e.downcast_ref::<rustls::Error>()
    {
        return other.0.downcast_ref::<RefusedCertificate>().cloned();
    }
    let inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    refused_in(inner)
}

/// What stopped a request before any server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The name did not resolve.
    Dns,
    /// Nothing accepted the connection.
    Refused,
    /// No answer in time.
    Timeout,
    /// The proxy wants credentials (HTTP 407 to CONNECT).
    ProxyAuth,
    /// The proxy would not open a tunnel.
    ProxyRefused,
    /// A certificate was refused (intercepted, expired, for another name).
    Certificate,
    /// Anything else (reset, TLS alert, …).
    Other,
}

/// A connection failure explained: its cause, whether trying again may help, and a message
/// that says what failed, what staff can do and what to tell IT.
#[derive(Clone, Debug)]
pub struct Explained {
    /// What failed.
    pub cause: Cause,
    /// Whether the same request may succeed later without a change of settings.
    pub retryable: bool,
    /// For people (redacted).
    pub message: String,
}

/// Where the address a failing request went to is set: a staff member's profile, or a
/// server's configuration (hoist-server's own calls to its bucket). Advice names the one the
/// reader can change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddressSetIn {
    /// A profile (the app and the CLI).
    #[default]
    Profile,
    /// hoist-server's config file (`[bucket] endpoint`).
    ServerConfig,
}

impl AddressSetIn {
    fn address(self) -> &'static str {
        match self {
            Self::Profile => "the address in the profile",
            Self::ServerConfig => "the [bucket] endpoint in the server's config",
        }
    }
}

/// Explains `e`, a failure talking to `server` ("the backend", "the storage server").
pub fn explain(e: &reqwest::Error, server: &str) -> Explained {
    explain_for(e, server, AddressSetIn::Profile)
}

/// [`explain`], with advice for whoever sets the address in `set_in`.
pub fn explain_for(e: &reqwest::Error, server: &str, set_in: AddressSetIn) -> Explained {
    let address = set_in.address();
    let name = e
        .url()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the server".into());
    let host = e
        .url()
        .and_then(|u| {
            u.host_str()
                .map(|h| (h.to_string(), u.port_or_known_default()))
        })
        .map(|(h, port)| match port {
            Some(p) => format!("{h}:{p}"),
            None => h,
        })
        .unwrap_or_else(|| "the server".into());
    let mut chain = Vec::new();
    let mut refused_certificate = None;
    let mut refused_connection = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused_connection |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        if refused_certificate.is_none() {
            refused_certificate = refused_in(s);
        }
        chain.push(s.to_string());
        source = s.source();
    }
    let said = |needle: &str| chain.iter().any(|c| c.contains(needle));
    let (cause, retryable, message) = if let Some(c) = refused_certificate {
        let message = if c.reason == CertificateError::UnknownIssuer {
            format!(
                "the connection to {} is intercepted, or the server uses a private CA: its \
                 certificate was issued by \"{}\", which this computer does not trust. If your \
                 company inspects TLS traffic or runs its own CA, ask IT for the root CA \
                 certificate (a PEM file) and set it as the profile's CA file (ca_file); \
                 otherwise tell IT that connections to {} are being intercepted, and do not \
                 upload from this network",
                c.host, c.issuer, c.host
            )
        } else {
            format!(
                "the TLS certificate of {} is not valid ({}; issued by \"{}\"): tell IT, or the \
                 server's owner, that its certificate must be renewed or fixed",
                c.host, c.reason, c.issuer
            )
        };
        (Cause::Certificate, false, message)
    } else if said("proxy authorization required") {
        (Cause::ProxyAuth, false, PROXY_WANTS_CREDENTIALS.to_string())
    } else if said("tunnel error") {
        (
            Cause::ProxyRefused,
            false,
            format!(
                "the proxy would not connect to {host}: tell IT that Hoist needs to reach \
                 {host} through the proxy"
            ),
        )
    } else if said("dns error") {
        (
            Cause::Dns,
            true,
            format!(
                "{server}'s name {name} could not be resolved (DNS): check {address} and that \
                 you are online; if both are right, tell IT that {name} does not resolve on your \
                 network"
            ),
        )
    } else if refused_connection {
        (
            Cause::Refused,
            true,
            format!(
                "nothing accepts connections at {host} (connection refused): {server} may be \
                 down, or the port in {address} is wrong (or, with a proxy, the proxy's)"
            ),
        )
    } else if e.is_timeout() {
        (
            Cause::Timeout,
            true,
            format!(
                "{server} at {host} did not answer in time: the network may be slow or \
                 blocking it; if it keeps happening, tell IT that connections to {host} time out"
            ),
        )
    } else {
        let what = if e.is_connect() {
            format!("cannot connect to {server} at {host}")
        } else {
            format!("the connection to {server} at {host} failed")
        };
        let detail = chain.get(1..).map(|d| d.join(": ")).unwrap_or_default();
        let message = if detail.is_empty() {
            what
        } else {
            format!("{what} ({detail})")
        };
        (Cause::Other, true, message)
    };
    Explained {
        cause,
        retryable,
        message: redact(&message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_password_is_refused_in_the_url_and_required_from_the_keychain() {
        let settings = NetworkSettings {
            proxy: Some("http://alice@127.0.0.1:3128".into()),
            ..NetworkSettings::default()
        };
        let missing = Network::for_profile("corp", &settings, None).unwrap_err();
        assert!(
            matches!(missing, NetworkError::ProxyPasswordMissing { ref user, .. } if user == "alice")
        );
        assert!(missing.to_string().contains("proxy-password secret"));
        assert_eq!(
            missing.hint(),
            Some(crate::error::Hint::StoreSecret {
                profile: "corp".into(),
                kind: "proxy-password"
            })
        );
        let ok = Network::for_profile("corp", &settings, Some(&Secret::new("pw")));
        assert!(ok.is_ok());
        let with_password = NetworkSettings {
            proxy: Some("http://alice:pw@127.0.0.1:3128".into()),
            ..NetworkSettings::default()
        };
        let refused = with_password.validate().unwrap_err().to_string();
        assert!(refused.contains("keychain"), "{refused}");
        assert!(
            !refused.contains("pw@"),
            "the password is not repeated: {refused}"
        );
    }

    /// Regression (review): with `Proxy::all(..).basic_auth(..)` the password sat in the
    /// proxy's URL, which `Debug` of the proxy (and so of a derived `Debug`) printed.
    #[test]
    fn the_proxy_password_never_shows_in_a_client() {
        let settings = NetworkSettings {
            proxy: Some("http://alice@127.0.0.1:3128".into()),
            ..NetworkSettings::default()
        };
        let secret = Secret::new("s3cret-proxy-pw");
        let network = Network::for_profile("corp", &settings, Some(&secret)).unwrap();
        let client =
            crate::remote::http::client_on(crate::remote::http::Purpose::Backend, &network)
                .unwrap();
        let proxy = format!("{:?}", network.proxy);
        for shown in [format!("{client:?}"), format!("{network:?}"), proxy] {
            assert!(!shown.contains("s3cret-proxy-pw"), "{shown}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_says_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let settings = NetworkSettings {
            ca_file: Some(path.clone()),
            ..NetworkSettings::default()
        };
        let e = Network::for_profile("corp", &settings, None).unwrap_err();
        assert!(e.to_string().contains("PEM"), "{e}");
        let missing = NetworkSettings {
            ca_file: Some(dir.path().join("absent.pem")),
            ..NetworkSettings::default()
        };
        let e = Network::for_profile("corp", &missing, None).unwrap_err();
        assert!(e.to_string().contains("absent.pem"), "{e}");
    }
}
