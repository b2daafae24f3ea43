//! Who is asking: the [`Token`] a request is granted under (a static bearer token of the
//! config, or a signed-in user's), how static tokens are stored (hashed) and how a request's
//! bearer token is found among them (compared in constant time).

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The shortest plain token accepted: a guessable token is a credential anyone has.
pub const MIN_TOKEN_LEN: usize = 32;

/// One token as the server uses it.
#[derive(Clone, Debug)]
pub struct Token {
    /// A name for the audit log (`oidc:<sub>` for a signed-in user).
    pub id: String,
    /// A signed-in user's email, for the audit log.
    pub email: Option<String>,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// Keys signed for it start with this.
    pub prefix: String,
    /// The largest upload, in bytes.
    pub max_size: Option<u64>,
    /// MIME types accepted (`image/*`); empty means any.
    pub allowed_types: Vec<String>,
    /// Requests a minute.
    pub rate_per_minute: u32,
    /// New uploads a minute, after the burst.
    pub files_per_minute: u32,
    /// New uploads at once.
    pub files_burst: u32,
    /// Declared bytes a minute, if limited.
    pub bytes_per_minute: Option<u64>,
}

/// Hex SHA-256 of a token, as stored in the config.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn parse_hex32(digits: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

/// The bearer token a request presents, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Finds the token of a request, or says why there is none (401).
pub fn authenticate<'a>(tokens: &'a [Token], headers: &HeaderMap) -> Result<&'a Token, ApiError> {
    let presented = bearer(headers).ok_or_else(|| {
        ApiError::unauthorized("authentication required: send Authorization: Bearer <token>")
    })?;
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    tokens
        .iter()
        .find(|t| constant_time_eq(&t.sha256, &digest))
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
