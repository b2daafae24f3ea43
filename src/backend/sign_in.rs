//! Signing in to a company backend with the company's identity provider (OpenID Connect).
//!
//! One concept, one file: the OpenID Connect sign-in, from discovery to revocation.
//!
//! A `backend` profile may name an issuer and a public client id ([`SignInSettings`]). Then
//! Hoist sends the provider's access token as its bearer instead of a stored token:
//!
//! * [`login_in_browser`] — the authorization code flow with PKCE (RFC 7636) through the system
//!   browser and a redirect to a one-shot listener on 127.0.0.1 (RFC 8252);
//! * [`login_on_device`] — the device authorization grant (RFC 8628), for a terminal without a
//!   browser: a code to type on any other device;
//! * [`SignedIn`] — what a signer asks for its bearer: the access token in memory, refreshed
//!   with the refresh token from the keychain before it expires (also between two parts of an
//!   upload) and again when the backend says it is no longer valid;
//! * [`sign_out`] — the refresh token revoked at the provider (when it offers revocation) and
//!   deleted from the keychain.
//!
//! The OAuth requests are made by the `oauth2` crate over Hoist's own HTTP client (the
//! profile's proxy and trusted CAs, redirects never followed). Only the refresh token and the
//! name of who signed in are kept, in the keychain entry `sign-in`; access tokens live in
//! memory. Who signed in is read from the ID token's claims for display only: that token comes
//! straight from the provider's token endpoint over TLS (OpenID Connect Core 3.1.3.7), and the
//! backend checks every access token itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl, ExtraTokenFields,
    PkceCodeChallenge, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::retry::Clock;
use crate::secret::{Keychain, KeychainError, Secret, SecretKind};

/// The scopes asked for: who the user is, and a refresh token to stay signed in.
const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// An access token is refreshed this long before it expires (at most a quarter of its life).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// How long a provider gets to answer one request.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::profile::SignInSettings;

/// Why signing in, or staying signed in, failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Nobody is signed in, or the sign-in expired or was revoked.
    #[error("{0}")]
    SignedOut(String),
    /// The provider refused or failed; the message says what it said.
    #[error("the identity provider {0}")]
    Provider(String),
    /// The provider could not be reached.
    #[error("cannot reach the identity provider: {0}")]
    Unreachable(String),
    /// The browser sign-in did not finish.
    #[error("{0}")]
    Interrupted(String),
    /// The keychain failed.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
}

impl crate::error::HasKind for SignInError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Self::SignedOut(_) => ErrorKind::SignedOut,
            Self::Unreachable(_) => ErrorKind::RemoteTransient,
            Self::Provider(_) | Self::Interrupted(_) => ErrorKind::RemotePermanent,
            Self::Keychain(k) => k.kind(),
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::SignedOut(_) => Some(crate::error::Hint::SignIn),
            Self::Keychain(k) => k.hint(),
            _ => None,
        }
    }
}

impl From<SignInError> for crate::sign::SignError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::SignedOut(m) => Self::SignedOut(m),
            SignInError::Keychain(k) => Self::Keychain(k),
            e @ SignInError::Unreachable(_) => Self::IdentityProvider {
                message: e.to_string(),
                retryable: true,
            },
            e => Self::IdentityProvider {
                message: e.to_string(),
                retryable: false,
            },
        }
    }
}

/// The provider's endpoints, from its discovery document.
#[derive(Clone, Debug, Deserialize)]
pub struct Provider {
    /// Its issuer.
    pub issuer: String,
    /// Where the browser signs in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens become tokens.
    pub token_endpoint: String,
    /// Where a device asks for a user code (RFC 8628), when offered.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// Where tokens are revoked (RFC 7009), when offered.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// The ID token's claims that name the user.
#[derive(Deserialize)]
struct IdClaims {
    sub: Option<String>,
    email: Option<String>,
    preferred_username: Option<String>,
    name: Option<String>,
}

/// The token answer's `id_token`, beside OAuth's fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

/// What the keychain's `sign-in` entry holds.
#[derive(Serialize, Deserialize)]
struct Stored {
    refresh_token: String,
    #[serde(default)]
    user: Option<String>,
}

/// A finished sign-in.
#[derive(Debug)]
pub struct Signed {
    /// Who signed in (email, user name, name or subject).
    pub user: Option<String>,
    /// The access token, and when it expires.
    access: Access,
}

#[derive(Clone, Debug)]
struct Access {
    token: Secret,
    expires_at: Option<SystemTime>,
    /// When it was issued, to refresh it at the latest three quarters into its life.
    issued_at: SystemTime,
}

impl Access {
    fn fresh_at(&self, now: SystemTime) -> bool {
        let Some(expires_at) = self.expires_at else {
            return true;
        };
        let life = expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default();
        let margin = REFRESH_MARGIN.min(life / 4);
        now + margin < expires_at
    }
}

/// What the device grant asks the user to do.
#[derive(Clone, Debug)]
pub struct DevicePrompt {
    /// The page to open on any device.
    pub verification_uri: String,
    /// The code to type there.
    pub user_code: String,
    /// The page with the code filled in, when the provider offers one.
    pub verification_uri_complete: Option<String>,
}

fn unreached(e: &reqwest::Error) -> SignInError {
    SignInError::Unreachable(crate::remote::network::explain(e, "the identity provider").message)
}

/// Finds the provider's endpoints from its issuer URL (OpenID Connect Discovery); the document
/// must name that issuer exactly.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Provider, SignInError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let resp = http
        .get(&url)
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreached(&e))?;
    if !resp.status().is_success() {
        return Err(SignInError::Provider(format!(
            "at {issuer} has no discovery document ({url} answered HTTP {}): check the profile's \
             issuer",
            resp.status().as_u16()
        )));
    }
    let provider: Provider = resp.json().await.map_err(|e| {
        SignInError::Provider(format!(
            "answered {url} with something else than its JSON: {e}"
        ))
    })?;
    if provider.issuer != issuer {
        return Err(SignInError::Provider(format!(
            "calls itself {}, not {issuer}: set the profile's issuer to {} exactly",
            provider.issuer, provider.issuer
        )));
    }
    Ok(provider)
}

/// A public client (no secret); each flow sets the endpoints it uses.
fn oauth_client(client_id: &str) -> OAuthClient {
    OAuthClient::new(ClientId::new(client_id.to_string()))
}

/// oauth2's requests, made by Hoist's client.
struct OAuthHttp(reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = reqwest::Error;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(&self.0, request))
    }
}

async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .timeout(CALL_TIMEOUT)
        .send()
        .await?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp.bytes().await?;
    Ok(out
        .body(bytes.to_vec())
        .unwrap_or_else(|_| http::Response::new(Vec::new())))
}

fn token_error<T: oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display + 'static>(
    e: RequestTokenError<reqwest::Error, oauth2::StandardErrorResponse<T>>,
) -> SignInError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().as_ref().to_string();
            let detail = r
                .error_description()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            if code == "invalid_grant" {
                SignInError::SignedOut(format!(
                    "your sign-in has expired or was revoked ({code}{detail}): sign in again"
                ))
            } else if code == "access_denied" || code == "expired_token" {
                SignInError::Interrupted(format!(
                    "the sign-in was refused or its code expired ({code}{detail}): sign in again"
                ))
            } else {
                SignInError::Provider(format!("refused ({code}{detail})"))
            }
        }
        RequestTokenError::Request(e) => unreached(&e),
        // Only where the answer went wrong: the parser's message may quote a token's value.
        RequestTokenError::Parse(e, _) => SignInError::Provider(format!(
            "answered something that is not a token response (at `{}`)",
            e.path()
        )),
        RequestTokenError::Other(m) => SignInError::Provider(m),
    }
}

/// The sign-in a token answer makes, and its refresh token when it has one.
fn signed(tokens: &Tokens, now: SystemTime) -> (Signed, Option<Secret>) {
    let user = tokens
        .extra_fields()
        .id_token
        .as_deref()
        .and_then(user_of_id_token);
    let signed = Signed {
        user,
        access: Access {
            token: Secret::new(tokens.access_token().secret().clone()),
            expires_at: tokens.expires_in().map(|d| now + d),
            issued_at: now,
        },
    };
    let refresh = tokens
        .refresh_token()
        .map(|r| Secret::new(r.secret().clone()));
    (signed, refresh)
}

/// The user an ID token names, for display (see the module docs on why it is not verified).
fn user_of_id_token(id_token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = id_token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let c: IdClaims = serde_json::from_slice(&json).ok()?;
    c.email.or(c.preferred_username).or(c.name).or(c.sub)
}

/// Signs in through the system browser: `open` is given the provider's sign-in page (it
/// should open it, and may also print it); the provider sends the browser back to a listener
/// on 127.0.0.1 with a code, which is exchanged (with the PKCE verifier) for tokens. Gives up
/// after `timeout`.
pub async fn login_in_browser(
    http: &reqwest::Client,
    provider: &Provider,
    client_id: &str,
    open: impl FnOnce(&str),
    timeout: Duration,
    clock: &dyn Clock,
) -> Result<(Signed, Option<Secret>), SignInError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| SignInError::Interrupted(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| SignInError::Interrupted(e.to_string()))?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let bad = |e: url::ParseError| SignInError::Provider(format!("publishes an invalid URL: {e}"));
    let client = oauth_client(client_id)
        .set_auth_uri(AuthUrl::new(provider.authorization_endpoint.clone()).map_err(bad)?)
        .set_token_uri(TokenUrl::new(provider.token_endpoint.clone()).map_err(bad)?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(bad)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string())))
        .set_pkce_challenge(challenge)
        .url();
    open(url.as_str());
    let code = tokio::time::timeout(timeout, receive_code(&listener, state.secret()))
        .await
        .map_err(|_| {
            let minutes = timeout.as_secs().div_ceil(60);
            SignInError::Interrupted(format!(
                "the sign-in did not finish within {minutes} minute{}: try again",
                if minutes == 1 { "" } else { "s" }
            ))
        })??;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&OAuthHttp(http.clone()))
        .await
        .map_err(token_error)?;
    Ok(signed(&tokens, clock.now()))
}

/// Waits for the browser to come back to the listener with a code for `state`, answering it
/// with a page that says what happened.
async fn receive_code(
    listener: &tokio::net::TcpListener,
    state: &str,
) -> Result<String, SignInError> {
    loop {
        let (mut conn, _) = listener
            .accept()
            .await
            .map_err(|e| SignInError::Interrupted(e.to_string()))?;
        let mut head = Vec::with_capacity(2048);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let line = String::from_utf8_lossy(&head);
        let target = line
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/");
        let Ok(url) = url::Url::parse(&format!("http://127.0.0.1{target}")) else {
            continue;
        };
        if url.path() != "/callback" {
            let _ = reply(&mut conn, "404 Not Found", "Not the sign-in callback.").await;
            continue;
        }
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        if q.get("state").map(String::as_str) != Some(state) {
            // Not the answer to this sign-in (a stale tab, or another page posing as one).
            let _ = reply(
                &mut conn,
                "400 Bad Request",
                "This is not the sign-in Hoist started. Close this tab and sign in again.",
            )
            .await;
            continue;
        }
        if let Some(error) = q.get("error") {
            let detail = q
                .get("error_description")
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let _ = reply(
                &mut conn,
                "200 OK",
                "Signing in to Hoist failed. You can close this tab.",
            )
            .await;
            return Err(SignInError::Provider(format!(
                "refused the sign-in ({error}{detail})"
            )));
        }
        let Some(code) = q.get("code") else {
            let _ = reply(
                &mut conn,
                "400 Bad Request",
                "The sign-in answer has no code.",
            )
            .await;
            continue;
        };
        let _ = reply(
            &mut conn,
            "200 OK",
            "You are signed in to Hoist. You can close this tab.",
        )
        .await;
        return Ok(code.clone());
    }
}

async fn reply(conn: &mut tokio::net::TcpStream, status: &str, text: &str) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Hoist</title><p style=\"font:16px sans-serif\">{text}</p>"
    );
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(resp.as_bytes()).await?;
    conn.shutdown().await
}

/// Signs in with the device authorization grant: `show` is told the page and code the user
/// must enter on another device; the provider is then polled (at the interval it asks) until
/// the user has signed in, refused, or the code expired.
pub async fn login_on_device(
    http: &reqwest::Client,
    provider: &Provider,
    client_id: &str,
    show: impl FnOnce(&DevicePrompt),
    clock: &dyn Clock,
) -> Result<(Signed, Option<Secret>), SignInError> {
    let endpoint = provider
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| {
            SignInError::Provider(
            "offers no device sign-in (no device_authorization_endpoint): sign in with a browser"
                .into(),
        )
        })?;
    let bad = |e: url::ParseError| SignInError::Provider(format!("publishes an invalid URL: {e}"));
    let client = oauth_client(client_id)
        .set_token_uri(TokenUrl::new(provider.token_endpoint.clone()).map_err(bad)?)
        .set_device_authorization_url(DeviceAuthorizationUrl::new(endpoint).map_err(bad)?);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(SCOPES.iter().map(|s| Scope::new(s.to_string())))
        .request_async(&OAuthHttp(http.clone()))
        .await
        .map_err(token_error)?;
    show(&DevicePrompt {
        verification_uri: details.verification_uri().to_string(),
        user_code: details.user_code().secret().clone(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().clone()),
    });
    let tokens = client
        .exchange_device_access_token(&details)
        .request_async(&OAuthHttp(http.clone()), tokio::time::sleep, None)
        .await
        .map_err(token_error)?;
    Ok(signed(&tokens, clock.now()))
}

/// Keeps a finished sign-in: the refresh token and who signed in, in the profile's keychain
/// entry `sign-in`.
pub fn remember(
    keychain: &Keychain,
    profile: &str,
    signed: &Signed,
    refresh: Option<&Secret>,
) -> Result<(), SignInError> {
    let Some(refresh) = refresh else {
        return Err(SignInError::Provider(
            "gave no refresh token, so Hoist cannot stay signed in: the provider's client for \
             Hoist must allow the refresh_token grant (and the offline_access scope)"
                .into(),
        ));
    };
    store(keychain, profile, refresh.expose(), signed.user.clone())
}

fn store(
    keychain: &Keychain,
    profile: &str,
    refresh: &str,
    user: Option<String>,
) -> Result<(), SignInError> {
    let json = serde_json::to_string(&Stored {
        refresh_token: refresh.to_string(),
        user,
    })
    .map_err(|e| SignInError::Interrupted(e.to_string()))?;
    keychain.set(profile, SecretKind::SignIn, &Secret::new(json))?;
    Ok(())
}

fn stored(keychain: &Keychain, profile: &str) -> Result<Option<Stored>, SignInError> {
    Ok(keychain
        .get(profile, SecretKind::SignIn)?
        .and_then(|s| serde_json::from_str(s.expose()).ok()))
}

/// Who is signed in for `profile`, if anybody (read from the keychain).
pub fn signed_in_user(keychain: &Keychain, profile: &str) -> Result<Option<String>, SignInError> {
    Ok(stored(keychain, profile)?.map(|s| s.user.unwrap_or_else(|| "(signed in)".into())))
}

/// What signing out did.
#[derive(Debug, PartialEq, Eq)]
pub enum SignedOut {
    /// Nobody was signed in.
    NobodyWas,
    /// The sign-in is deleted from the keychain and revoked at the provider.
    Revoked,
    /// The sign-in is deleted from the keychain; the provider did not revoke it (the reason):
    /// it lasts there until it expires.
    NotRevoked(String),
}

/// Signs out: revokes the refresh token at the provider when it offers revocation (a provider
/// that cannot be reached does not keep the user signed in here), and deletes it from the
/// keychain.
pub async fn sign_out(
    http: &reqwest::Client,
    keychain: &Keychain,
    profile: &str,
    settings: &SignInSettings,
) -> Result<SignedOut, SignInError> {
    let Some(s) = stored(keychain, profile)? else {
        return Ok(SignedOut::NobodyWas);
    };
    let revoked = revoke(http, settings, s.refresh_token).await;
    keychain.delete(profile, SecretKind::SignIn)?;
    Ok(match revoked {
        Ok(()) => SignedOut::Revoked,
        Err(why) => SignedOut::NotRevoked(why),
    })
}

async fn revoke(
    http: &reqwest::Client,
    settings: &SignInSettings,
    refresh_token: String,
) -> Result<(), String> {
    let provider = discover(http, &settings.issuer)
        .await
        .map_err(|e| e.to_string())?;
    let url = provider
        .revocation_endpoint
        .ok_or("the identity provider offers no revocation")?;
    // RFC 7009 by hand: oauth2 refuses a plain-http endpoint, and the issuer's scheme is
    // already checked (https, or http on this machine).
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &refresh_token)
        .append_pair("token_type_hint", "refresh_token")
        .append_pair("client_id", &settings.client_id)
        .finish();
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreached(&e).to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the identity provider did not revoke the sign-in (HTTP {})",
            resp.status().as_u16()
        ))
    }
}

/// How the user signs in.
pub enum Via<'a> {
    /// The system browser: `open` is given the provider's page; give up after `timeout`.
    Browser {
        /// Opens (or prints) the sign-in page.
        open: Box<dyn FnOnce(&str) + Send + 'a>,
        /// How long to wait for the browser to come back.
        timeout: Duration,
    },
    /// The device grant: `show` tells the user where to go and which code to type.
    Device {
        /// Shows the page and code.
        show: Box<dyn FnOnce(&DevicePrompt) + Send + 'a>,
    },
}

/// The HTTP client a profile's sign-in uses: its proxy and trusted CAs.
fn profile_http(
    profile: &crate::profile::Profile,
    keychain: &Keychain,
) -> Result<reqwest::Client, SignInError> {
    let password = match profile.network.proxy {
        Some(_) => keychain.get(&profile.name, SecretKind::ProxyPassword)?,
        None => None,
    };
    let network = crate::remote::network::Network::for_profile(
        &profile.name,
        &profile.network,
        password.as_ref(),
    )
    .map_err(|e| SignInError::Unreachable(e.to_string()))?;
    crate::remote::http::client_on(crate::remote::http::Purpose::Backend, &network)
        .map_err(SignInError::Unreachable)
}

fn settings_of(profile: &crate::profile::Profile) -> Result<&SignInSettings, SignInError> {
    profile.sign_in.as_ref().ok_or_else(|| {
        SignInError::Provider(format!(
            "is not set for profile '{}': give the profile the provider's issuer URL and \
             Hoist's client id",
            profile.name
        ))
    })
}

/// Signs `profile` in (see [`Via`]) and keeps the sign-in in the keychain; returns who signed
/// in. The keychain is written only once the provider has answered with tokens: an
/// interrupted sign-in leaves the earlier one (if any) in place.
pub async fn sign_in(
    profile: &crate::profile::Profile,
    keychain: &Keychain,
    via: Via<'_>,
    clock: &dyn Clock,
) -> Result<String, SignInError> {
    let settings = settings_of(profile)?;
    let http = profile_http(profile, keychain)?;
    let provider = discover(&http, &settings.issuer).await?;
    let (signed, refresh) = match via {
        Via::Browser { open, timeout } => {
            login_in_browser(&http, &provider, &settings.client_id, open, timeout, clock).await?
        }
        Via::Device { show } => {
            login_on_device(&http, &provider, &settings.client_id, show, clock).await?
        }
    };
    remember(keychain, &profile.name, &signed, refresh.as_ref())?;
    Ok(signed.user.unwrap_or_else(|| "(signed in)".into()))
}

/// Signs `profile` out (see [`sign_out`]).
pub async fn sign_out_profile(
    profile: &crate::profile::Profile,
    keychain: &Keychain,
) -> Result<SignedOut, SignInError> {
    let settings = settings_of(profile)?;
    let http = profile_http(profile, keychain)?;
    sign_out(&http, keychain, &profile.name, settings).await
}

/// A profile's sign-in as its signers use it: a valid access token on demand.
pub struct SignedIn {
    profile: String,
    settings: SignInSettings,
    http: reqwest::Client,
    keychain: Keychain,
    clock: Arc<dyn Clock>,
    provider: tokio::sync::OnceCell<Provider>,
    access: tokio::sync::Mutex<Option<Access>>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("profile", &self.profile)
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl SignedIn {
    /// The sign-in of `profile` with `settings`, its refresh token in `keychain`.
    pub fn new(
        profile: &str,
        settings: SignInSettings,
        http: reqwest::Client,
        keychain: Keychain,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            profile: profile.to_string(),
            settings,
            http,
            keychain,
            clock,
            provider: tokio::sync::OnceCell::new(),
            access: tokio::sync::Mutex::new(None),
        }
    }

    /// An access token valid for a while yet: the one in memory, or a new one got with the
    /// refresh token. `stale` is a token the backend refused: a new one is got even if it
    /// has not expired.
    pub async fn bearer(&self, stale: Option<&Secret>) -> Result<Secret, SignInError> {
        let mut access = self.access.lock().await;
        let now = self.clock.now();
        if let Some(a) = access.as_ref() {
            if a.fresh_at(now) && stale != Some(&a.token) {
                return Ok(a.token.clone());
            }
        }
        let fresh = self.refresh().await?;
        let token = fresh.token.clone();
        *access = Some(fresh);
        Ok(token)
    }

    async fn refresh(&self) -> Result<Access, SignInError> {
        let (keychain, profile) = (self.keychain.clone(), self.profile.clone());
        let stored = tokio::task::spawn_blocking(move || stored(&keychain, &profile))
            .await
            .map_err(|e| SignInError::Interrupted(e.to_string()))??
            .ok_or_else(|| {
                SignInError::SignedOut(format!(
                    "nobody is signed in for profile '{}'",
                    self.profile
                ))
            })?;
        let provider = self
            .provider
            .get_or_try_init(|| discover(&self.http, &self.settings.issuer))
            .await?;
        let bad =
            |e: url::ParseError| SignInError::Provider(format!("publishes an invalid URL: {e}"));
        let client = oauth_client(&self.settings.client_id)
            .set_token_uri(TokenUrl::new(provider.token_endpoint.clone()).map_err(bad)?);
        let tokens = client
            .exchange_refresh_token(&RefreshToken::new(stored.refresh_token.clone()))
            .request_async(&OAuthHttp(self.http.clone()))
            .await
            .map_err(|e| match token_error(e) {
                SignInError::SignedOut(m) => {
                    SignInError::SignedOut(format!("profile '{}': {m}", self.profile))
                }
                other => other,
            })?;
        let now = self.clock.now();
        let (signed, _) = signed(&tokens, now);
        // A provider that rotates refresh tokens sends a new one: the old one is spent.
        if let Some(rotated) = tokens.refresh_token() {
            if rotated.secret() != &stored.refresh_token {
                let user = signed.user.clone().or(stored.user);
                let (keychain, profile, secret) = (
                    self.keychain.clone(),
                    self.profile.clone(),
                    rotated.secret().clone(),
                );
                tokio::task::spawn_blocking(move || store(&keychain, &profile, &secret, user))
                    .await
                    .map_err(|e| SignInError::Interrupted(e.to_string()))??;
            }
        }
        Ok(signed.access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_is_refreshed_a_minute_or_a_quarter_of_its_life_before_it_expires() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Access {
            token: Secret::new("a"),
            issued_at: t0,
            expires_at: Some(t0 + Duration::from_secs(3600)),
        };
        assert!(hour.fresh_at(t0 + Duration::from_secs(3539)));
        assert!(!hour.fresh_at(t0 + Duration::from_secs(3540)));
        let short = Access {
            token: Secret::new("a"),
            issued_at: t0,
            expires_at: Some(t0 + Duration::from_secs(8)),
        };
        assert!(short.fresh_at(t0 + Duration::from_secs(5)));
        assert!(!short.fresh_at(t0 + Duration::from_secs(6)));
        let forever = Access {
            token: Secret::new("a"),
            issued_at: t0,
            expires_at: None,
        };
        assert!(forever.fresh_at(t0 + Duration::from_secs(1 << 30)));
    }

    /// A token answer that does not parse is reported by where it went wrong, never with the
    /// values the parser quotes (one could be a token).
    #[test]
    fn a_token_answer_that_does_not_parse_is_not_quoted() {
        let body = r#"{"access_token":"a","token_type":"bearer","expires_in":"SECRET-VALUE"}"#;
        let mut de = serde_json::Deserializer::from_str(body);
        let e = serde_path_to_error::deserialize::<_, Tokens>(&mut de).unwrap_err();
        assert!(
            e.to_string().contains("SECRET-VALUE"),
            "the parser quotes it: {e}"
        );
        let shown = token_error::<oauth2::basic::BasicErrorResponseType>(RequestTokenError::Parse(
            e,
            body.as_bytes().to_vec(),
        ))
        .to_string();
        assert!(!shown.contains("SECRET-VALUE"), "{shown}");
        assert!(shown.contains("expires_in"), "{shown}");
    }

    #[test]
    fn the_user_shown_is_the_id_tokens_email_or_else_its_name() {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let tok = |v| {
            format!(
                "{}.{}.sig",
                b64(serde_json::json!({"alg": "RS256"})),
                b64(v)
            )
        };
        assert_eq!(
            user_of_id_token(&tok(serde_json::json!({"sub": "u1", "email": "a@x"}))).as_deref(),
            Some("a@x")
        );
        assert_eq!(
            user_of_id_token(&tok(serde_json::json!({"sub": "u1"}))).as_deref(),
            Some("u1")
        );
        assert_eq!(user_of_id_token("not a token"), None);
    }
}
