//! Staff signed in with the company's identity provider: hoist-server accepts the provider's
//! access tokens (JWTs, RFC 9068) beside its static tokens, and maps their claims to policies.
//!
//! The provider is found from its issuer URL (OpenID Connect Discovery: the document's `issuer`
//! must be that URL exactly) and its signing keys from the document's `jwks_uri`. Keys are
//! cached for an hour and fetched again as soon as a token names a key id the cache does not
//! hold (a provider rotating its keys), at most once per cool-down so that made-up key ids
//! cannot make the server hammer the provider. Only asymmetric algorithms are accepted (RS*,
//! PS*, ES256/ES384): `alg: none` and HMAC, which would let anyone holding the public key sign,
//! are refused before any key is looked at. `iss`, `aud`, `exp` and `nbf` are checked with a
//! small leeway; `sub` is required.
//!
//! Claims become a [`Token`]: the first `[[oidc.policies]]` entry whose `group` is among the
//! user's groups (or that names no group) gives the prefix (`{sub}` replaced by the user's
//! subject), size limit, types and rates. The audit log then names the user (`oidc:<sub>` and
//! the email when the token carries one), never the token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{OidcConfig, OidcPolicyConfig, PolicyConfig};
use crate::error::ApiError;
use crate::token::Token;

/// How long fetched keys are trusted before they are fetched again (a key the provider
/// withdrew stops working within this time).
const KEYS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches caused by unknown key ids.
const DEFAULT_REFRESH_COOL_DOWN: Duration = Duration::from_secs(30);
/// How long the provider gets to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The algorithms providers sign access tokens with. Symmetric ones are never accepted.
const ACCEPTED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Why the provider's keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The issuer is not a URL the server may use.
    #[error("oidc.issuer {0}")]
    Issuer(String),
    /// The provider did not answer as OpenID Connect says.
    #[error("the identity provider at {url}: {message}")]
    Provider {
        /// What was fetched.
        url: String,
        /// What went wrong.
        message: String,
    },
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    /// Keys without a `kid`, tried when a token names none.
    unnamed: Vec<DecodingKey>,
    fetched: Option<Instant>,
}

/// Checks access tokens of one issuer.
pub struct OidcVerifier {
    config: OidcConfig,
    http: reqwest::Client,
    keys: tokio::sync::RwLock<Keys>,
    /// One fetch at a time (the others wait for its keys), and when the last one failed: the
    /// provider is then not asked again within the cool-down, however many tokens arrive.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    refresh_cool_down: Duration,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl OidcVerifier {
    /// A verifier for `config` (checked by [`OidcConfig::validate`]); nothing is fetched
    /// until the first token arrives.
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| OidcError::Issuer(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self {
            config,
            http,
            keys: tokio::sync::RwLock::new(Keys::default()),
            fetching: tokio::sync::Mutex::new(None),
            refresh_cool_down: DEFAULT_REFRESH_COOL_DOWN,
        })
    }

    /// Whether the provider answers its discovery document (`Err`: why not, in words for an
    /// admin): without it, no signed-in user can upload.
    pub async fn reachable(&self) -> Result<(), String> {
        let issuer = self.config.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        match self.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!(
                "the identity provider answered HTTP {} for {url}",
                r.status().as_u16()
            )),
            Err(e) => Err(format!(
                "the identity provider at {issuer} did not answer: {}",
                hoist::redact::redact(&e.to_string())
            )),
        }
    }

    /// The least time between fetches caused by unknown key ids (30 s by default).
    pub fn with_refresh_cool_down(mut self, d: Duration) -> Self {
        self.refresh_cool_down = d;
        self
    }

    /// Checks `jwt` and returns the token its claims map to: 401 when it is not a valid token
    /// of this issuer for this audience, 403 when no policy covers the user, 503 when the
    /// provider's keys cannot be fetched.
    pub async fn verify(&self, jwt: &str, policy: &PolicyConfig) -> Result<Token, ApiError> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| {
            ApiError::unauthorized(
                "the token is neither a known token nor a signed access token of the company's \
                 identity provider: sign in again",
            )
        })?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(ApiError::unauthorized(format!(
                "tokens signed with {:?} are not accepted: the identity provider must sign with \
                 RS256, PS256 or ES256",
                header.alg
            )));
        }
        // RFC 9068 marks access tokens `at+jwt`; many providers say `JWT`; another type (a
        // logout token, an ID token typed as such) is no access token (#29, finding 12).
        if let Some(typ) = header.typ.as_deref() {
            let t = typ.to_ascii_lowercase();
            if !matches!(t.as_str(), "jwt" | "at+jwt" | "application/at+jwt") {
                return Err(ApiError::unauthorized(format!(
                    "a token of type '{}' is not an access token: sign in again",
                    typ.escape_debug()
                )));
            }
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway_secs;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(jwt, &key, &validation)
            .map_err(|e| ApiError::unauthorized(refusal(e.kind())))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let exp = data.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let longest = self.config.max_token_lifetime_secs + self.config.leeway_secs;
        if exp.saturating_sub(now) > longest {
            return Err(ApiError::unauthorized(format!(
                "the token is valid for longer than this server accepts ({} hours at most): the \
                 identity provider must issue shorter-lived access tokens",
                self.config.max_token_lifetime_secs / 3600
            )));
        }
        self.token_for(&data.claims, policy)
    }

    /// The policy entry for these claims, as a [`Token`].
    fn token_for(
        &self,
        claims: &serde_json::Map<String, Value>,
        policy: &PolicyConfig,
    ) -> Result<Token, ApiError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the token names no user (no `sub` claim)"))?;
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_string);
        let groups: Vec<&str> = match claims.get(&self.config.groups_claim) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => s.split_whitespace().collect(),
            _ => Vec::new(),
        };
        let who = email.as_deref().unwrap_or(sub);
        let entry = self
            .config
            .policies
            .iter()
            .find(|p| p.group.as_deref().is_none_or(|g| groups.contains(&g)))
            .ok_or_else(|| {
                ApiError::forbidden(format!(
                    "{who} is signed in, but no upload policy of this server covers their \
                     groups: ask the administrator to add one to [[oidc.policies]]"
                ))
            })?;
        let token = token_from(entry, sub, email.clone(), policy);
        let safe = sub
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+=".contains(c));
        if !safe || hoist::key::validate_prefix(&token.prefix).is_err() {
            return Err(ApiError::forbidden(format!(
                "the user id of {who} has characters a key prefix cannot hold: ask the \
                 administrator to use a prefix without {{sub}}"
            )));
        }
        Ok(token)
    }

    /// The key for `kid`, fetching the provider's keys when they are old or lack it.
    async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, ApiError> {
        if let Some(k) = self.cached(kid, false).await {
            return Ok(k);
        }
        let mut last_failure = self.fetching.lock().await;
        // Another request may have fetched them while this one waited.
        if let Some(k) = self.cached(kid, false).await {
            return Ok(k);
        }
        let unreachable = |retry_after: u64| {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server cannot reach the company's identity provider to check the token: \
                 try again in a minute",
            );
            err.retry_after = Some(retry_after.max(1));
            err
        };
        // #29: while the provider fails, forged tokens with made-up key ids once made the
        // server fetch again for each of them (60 tokens, 60 fetches in 0.6 s).
        if let Some(left) = last_failure
            .and_then(|t| self.refresh_cool_down.checked_sub(t.elapsed()))
            .filter(|left| !left.is_zero())
        {
            return Err(unreachable(left.as_secs()));
        }
        let recently = self
            .keys
            .read()
            .await
            .fetched
            .is_some_and(|t| t.elapsed() < self.refresh_cool_down);
        if !recently {
            let fresh = self.fetch().await.map_err(|e| {
                tracing::warn!("cannot fetch the identity provider's keys: {e}");
                *last_failure = Some(Instant::now());
                unreachable(self.refresh_cool_down.as_secs().max(30))
            })?;
            *last_failure = None;
            *self.keys.write().await = fresh;
        }
        self.cached(kid, true).await.ok_or_else(|| {
            ApiError::unauthorized(
                "the token is signed with a key the identity provider does not publish: sign in \
                 again",
            )
        })
    }

    /// The cached key for `kid`, unless the cache is older than [`KEYS_TTL`] (`stale_ok`
    /// takes it anyway, right after a fetch).
    async fn cached(&self, kid: Option<&str>, stale_ok: bool) -> Option<DecodingKey> {
        let keys = self.keys.read().await;
        let fresh = keys.fetched.is_some_and(|t| t.elapsed() < KEYS_TTL);
        if !fresh && !stale_ok {
            return None;
        }
        match kid {
            Some(kid) => keys.by_kid.get(kid).cloned(),
            None if keys.unnamed.len() + keys.by_kid.len() == 1 => keys
                .unnamed
                .first()
                .or_else(|| keys.by_kid.values().next())
                .cloned(),
            None => None,
        }
    }

    async fn fetch(&self) -> Result<Keys, OidcError> {
        let issuer = self.config.issuer.trim_end_matches('/');
        let discovery_url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        if discovery.issuer != self.config.issuer {
            return Err(OidcError::Provider {
                url: discovery_url,
                message: format!(
                    "its discovery document names issuer {}, not {}: set oidc.issuer to the \
                     provider's issuer exactly",
                    discovery.issuer, self.config.issuer
                ),
            });
        }
        let set: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        let mut keys = Keys {
            fetched: Some(Instant::now()),
            ..Keys::default()
        };
        for jwk in &set.keys {
            // Signing keys only, and never a shared secret published as a key.
            let usable = matches!(
                jwk.algorithm,
                AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
            ) && !matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            );
            let Some(key) = usable.then(|| DecodingKey::from_jwk(jwk).ok()).flatten() else {
                continue;
            };
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid.clone(), key);
                }
                None => keys.unnamed.push(key),
            }
        }
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let failed = |message: String| OidcError::Provider {
            url: url.to_string(),
            message,
        };
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| failed(hoist::remote::network::explain(&e, "it").message))?;
        if !resp.status().is_success() {
            return Err(failed(format!("answered HTTP {}", resp.status().as_u16())));
        }
        resp.json()
            .await
            .map_err(|e| failed(format!("answered something that is not its JSON: {e}")))
    }
}

/// The token an OIDC user is treated as.
fn token_from(
    entry: &OidcPolicyConfig,
    sub: &str,
    email: Option<String>,
    policy: &PolicyConfig,
) -> Token {
    Token {
        id: format!("oidc:{sub}"),
        email,
        sha256: [0; 32],
        prefix: crate::config::normalise_prefix(&entry.prefix.replace("{sub}", sub)),
        max_size: entry.max_size,
        allowed_types: entry.allowed_types.clone(),
        rate_per_minute: entry
            .rate_limit_per_minute
            .unwrap_or(policy.rate_limit_per_minute),
        files_per_minute: entry.files_per_minute.unwrap_or(policy.files_per_minute),
        files_burst: policy.files_burst,
        bytes_per_minute: entry.bytes_per_minute.or(policy.bytes_per_minute),
    }
}

/// What a user is told about a refused token (never the token itself).
fn refusal(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "the token has expired: sign in again".into(),
        K::ImmatureSignature => {
            "the token is not valid yet (check this computer's clock and the server's)".into()
        }
        K::InvalidAudience => {
            "the token was issued for another application (its audience is not this server's)"
                .into()
        }
        K::InvalidIssuer => "the token was issued by another identity provider".into(),
        K::InvalidSignature => "the token's signature does not verify".into(),
        K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        other => format!("the token is not valid ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        OidcConfig {
            issuer: "https://login.example.com".into(),
            audience: "hoist-server".into(),
            leeway_secs: 60,
            max_token_lifetime_secs: 24 * 3600,
            groups_claim: "groups".into(),
            policies: vec![
                OidcPolicyConfig {
                    group: Some("design".into()),
                    prefix: "uploads/design/{sub}/".into(),
                    max_size: Some(10),
                    ..OidcPolicyConfig::default()
                },
                OidcPolicyConfig {
                    group: None,
                    prefix: "uploads/staff/{sub}".into(),
                    ..OidcPolicyConfig::default()
                },
            ],
        }
    }

    fn claims(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_first_policy_covering_a_group_gives_the_prefix_and_limits() {
        let v = OidcVerifier::new(config()).unwrap();
        let p = PolicyConfig::default();
        let designer = v
            .token_for(
                &claims(
                    serde_json::json!({"sub": "u1", "email": "a@x", "groups": ["x", "design"]}),
                ),
                &p,
            )
            .unwrap();
        assert_eq!(designer.prefix, "uploads/design/u1/");
        assert_eq!(designer.max_size, Some(10));
        assert_eq!(designer.id, "oidc:u1");
        assert_eq!(designer.email.as_deref(), Some("a@x"));
        let other = v
            .token_for(&claims(serde_json::json!({"sub": "u2"})), &p)
            .unwrap();
        assert_eq!(other.prefix, "uploads/staff/u2/");
        assert_eq!(other.max_size, None);
    }

    #[test]
    fn a_user_no_policy_covers_or_with_an_unsafe_subject_is_refused() {
        let mut c = config();
        c.policies.pop();
        let v = OidcVerifier::new(c).unwrap();
        let p = PolicyConfig::default();
        let e = v
            .token_for(
                &claims(serde_json::json!({"sub": "u2", "email": "b@x"})),
                &p,
            )
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.contains("b@x is signed in"), "{}", e.message);
        let e = v
            .token_for(
                &claims(serde_json::json!({"sub": "../u", "groups": ["design"]})),
                &p,
            )
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }
}
