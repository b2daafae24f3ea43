//! Signing: the [`Signer`] abstraction and what it signs ([`PutRequest`] → [`PresignedPut`]).
//!
//! * [`sigv4::SigV4Signer`] — admin and local modes: Hoist signs presigned PUT URLs itself with
//!   `aws-sigv4`, with S3's settings (single percent-encoding, no path normalisation), an expiry
//!   of at most 15 minutes, and `content-type`, `content-length`, `content-md5` and
//!   `x-amz-checksum-sha256` among the signed headers so that S3 refuses any other body.
//! * Staff mode's signers, where a company backend signs, live in [`crate::backend`].
//!
//! Signing takes the time as a parameter so it can be checked against AWS's published examples.

use std::fmt;
use std::time::SystemTime;

use crate::error::{ErrorKind, HasKind};
use crate::secret::KeychainError;

pub mod sigv4;

/// What is about to be uploaded, as the signer needs to know it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutRequest {
    /// The key Hoist built from the profile (a backend chooses its own).
    pub key: String,
    /// The sanitised file name, sent to a backend.
    pub file_name: String,
    /// The MIME type, signed where the signer can.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// Base64 SHA-256 of the content.
    pub sha256_b64: String,
    /// Base64 MD5 of the content (`Content-MD5`).
    pub md5_b64: String,
    /// For a multipart upload, how long every part but the last is: a backend that binds
    /// each part's length (hoist-server) needs it at create.
    pub part_size: Option<u64>,
    /// The flexible checksum to sign (a PUT: its value; a multipart create: its algorithm).
    pub checksum: Option<crate::checksum::Checksum>,
    /// Headers that set what the store keeps with the object (encryption, storage class, …;
    /// see [`crate::object`]): a self-signing signer signs them; a backend applies its own.
    pub object: Vec<(String, String)>,
    /// The file's path inside the folder it was dropped in (`Photos/2026/beach.jpg`), sent to a
    /// backend, which keeps the folders in the key it chooses.
    pub relative_path: Option<String>,
    /// The id of the drop the file came in, sent to a backend: every file of one drop lands
    /// under one id.
    pub drop_id: Option<String>,
    /// What a backend assigned this file before (its key and ticket): it is asked for the
    /// same key again, so a file resumed after a crash lands once.
    pub assigned: Option<Assigned>,
}

pub use crate::key::Assigned;

/// A presigned upload, ready to send: a PUT of the body, or (where `form` is set) a POST of a
/// form whose last field is the body.
#[derive(Clone, PartialEq, Eq)]
pub struct PresignedPut {
    /// The presigned URL (secret: redact before showing).
    pub url: url::Url,
    /// Headers to send with the body; `content-type` among them when the signer fixed it.
    pub headers: Vec<(String, String)>,
    /// The object key the upload lands at.
    pub key: String,
    /// When the URL stops working, when known.
    pub expires_at: Option<SystemTime>,
    /// S3's POST Object with a signed policy (what Uppy Companion's `/s3/params` answers): the
    /// form fields to send, in order, before the file (secret: the policy's signature).
    pub form: Option<Vec<(String, String)>>,
    /// The backend's completion step, when it verifies what landed (hoist-server's `[verify]`):
    /// after the PUT, the signer's [`Signer::complete`] is called with it.
    pub completion: Option<CompletionStep>,
    /// The backend's ticket for this key ([`Assigned`]), when it issues them.
    pub ticket: Option<String>,
    /// The backend found the object already landed at `key` as asked (a file resumed with its
    /// ticket after a crash): nothing is sent, and only the completion step (if any) runs.
    pub landed: bool,
}

impl PresignedPut {
    /// What to journal before sending, when the backend issued a ticket.
    pub fn assigned(&self) -> Option<Assigned> {
        self.ticket.as_ref().map(|ticket| Assigned {
            key: self.key.clone(),
            ticket: ticket.clone(),
        })
    }
}

/// A backend's completion step: where to report the upload done, with what receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletionStep {
    /// On the backend's own origin.
    pub url: url::Url,
    /// What the backend sealed when it signed (no secret: it names the upload).
    pub receipt: String,
}

/// What the backend concluded about an upload it checked (hoist-server answers it, Hoist
/// reads it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verdict {
    /// Checked and moved to its final key.
    Verified {
        /// The final key.
        key: String,
    },
    /// Failed a check; the backend keeps it aside.
    Quarantined {
        /// Where it is kept.
        key: String,
        /// Which check it failed.
        reason: String,
    },
}

impl fmt::Debug for PresignedPut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignedPut")
            .field("url", &crate::redact::redact(self.url.as_str()))
            .field("headers", &self.headers)
            .field("key", &self.key)
            .field("expires_at", &self.expires_at)
            .field("landed", &self.landed)
            .field(
                "form",
                &self
                    .form
                    .as_ref()
                    .map(|f| f.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()),
            )
            .finish()
    }
}

/// Why no presigned URL could be had.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the backend refused to sign (HTTP {status}): {message}")]
    /// The backend refused for good.
    BackendRejected {
        /// The HTTP status.
        status: u16,
        /// What the backend said.
        message: String,
    },
    #[error("the backend is unavailable (HTTP {status}): {message}")]
    /// The backend failed in a way that may pass.
    BackendUnavailable {
        /// The HTTP status.
        status: u16,
        /// What the backend said.
        message: String,
        /// How long it asked to wait (`Retry-After`), when it did.
        retry_after: Option<std::time::Duration>,
    },
    /// The backend could not be reached (for now: the network may come back).
    #[error("cannot reach the backend: {0}")]
    BackendUnreachable(String),
    /// The backend cannot be reached until a setting changes (a refused certificate, a proxy
    /// that wants credentials): the message says which.
    #[error("cannot reach the backend: {0}")]
    BackendBlocked(String),
    #[error(
        "the backend answered with a redirect (HTTP {status}); Hoist does not follow redirects so \
         the bearer token never reaches another host: set the profile's backend URL to the final address"
    )]
    /// The backend answered with a redirect, which is never followed.
    BackendRedirect {
        /// The HTTP status.
        status: u16,
    },
    /// The backend's answer is not one Hoist can use.
    #[error("the backend's answer is not usable: {0}")]
    BadResponse(String),
    /// Signing itself failed.
    #[error("cannot sign: {0}")]
    Signing(String),
    /// A secret could not be read.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// Nobody is signed in to the profile's identity provider, or the sign-in expired: the
    /// message says how to sign in.
    #[error("{0}")]
    SignedOut(String),
    /// The identity provider failed to renew the sign-in (the message says how).
    #[error("{message}")]
    IdentityProvider {
        /// What went wrong.
        message: String,
        /// It may pass (the provider could not be reached).
        retryable: bool,
    },
}

impl HasKind for SignError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Keychain(k) => k.kind(),
            Self::SignedOut(_) => ErrorKind::SignedOut,
            e if e.is_retryable() => ErrorKind::RemoteTransient,
            _ => ErrorKind::RemotePermanent,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Keychain(k) => k.hint(),
            Self::BackendRejected { status: 401, .. } => Some(crate::error::Hint::CheckToken),
            Self::SignedOut(_) => Some(crate::error::Hint::SignIn),
            _ => None,
        }
    }
}

impl SignError {
    /// Whether signing again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::BackendUnavailable { .. }
                | Self::BackendUnreachable(_)
                | Self::IdentityProvider {
                    retryable: true,
                    ..
                }
        )
    }
}

/// Produces presigned PUT requests.
#[async_trait::async_trait]
pub trait Signer: Send + Sync {
    /// Signs an upload of `req` valid from `now`.
    async fn presign_put(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError>;

    /// Whether signing takes a round trip (a backend): then files are signed ahead of sending,
    /// several at once ([`Signer::presign_many`]).
    fn signs_remotely(&self) -> bool {
        false
    }

    /// Signs every request, answers in order: in one round trip where the backend offers
    /// batches, else one request each, all at once.
    async fn presign_many(
        &self,
        reqs: &[PutRequest],
        now: SystemTime,
    ) -> Vec<Result<PresignedPut, SignError>> {
        presign_each(self, reqs, now).await
    }

    /// Reports the upload of `key` done at the backend's completion step; the backend's
    /// verdict. Only backends offer one.
    async fn complete(&self, key: &str, completion: &CompletionStep) -> Result<Verdict, SignError> {
        let _ = (key, completion);
        Err(SignError::Signing(
            "this signer has no completion step".into(),
        ))
    }
}

/// [`Signer::presign_many`] one request each, all at once.
pub async fn presign_each<S: Signer + ?Sized>(
    signer: &S,
    reqs: &[PutRequest],
    now: SystemTime,
) -> Vec<Result<PresignedPut, SignError>> {
    futures_util::future::join_all(reqs.iter().map(|r| signer.presign_put(r, now))).await
}

/// The path of `raw` exactly as written, for checking that the `url` crate did not rewrite it.
pub(crate) fn raw_path(raw: &str) -> &str {
    let after_scheme = raw.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &raw[after_scheme..];
    let start = rest.find('/').unwrap_or(rest.len());
    let path = &rest[start..];
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

/// Parses a URL and refuses it if parsing changed its path (dot segments, backslashes):
/// the request sent must be the request signed.
pub(crate) fn parse_exact_url(raw: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme '{}' is not http or https", parsed.scheme()));
    }
    let written = raw_path(raw);
    let written = if written.is_empty() { "/" } else { written };
    if parsed.path() != written {
        return Err(
            "its path would be rewritten before sending (dot segments or backslashes), so it \
                    would not match its signature"
                .to_string(),
        );
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_urls_the_url_crate_would_rewrite() {
        assert!(parse_exact_url("http://h/b/uploads/x.txt?X-Amz-Signature=1").is_ok());
        for bad in [
            "http://h/b/uploads/../x",
            "http://h/b/%2e%2e/x",
            "http://h/b/a\\..\\x",
            "http://h/b/./x",
        ] {
            assert!(parse_exact_url(bad).is_err(), "{bad}");
        }
        assert!(parse_exact_url("file:///etc/passwd").is_err());
    }
}
