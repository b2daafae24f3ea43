//! What a store's answer means: an S3 error answer or a network failure turned into a retry
//! decision ([`FailureKind`]) and a sentence a person can act on. Both signing paths and the
//! engine classify through here.

use std::time::SystemTime;

use super::network::{self, Cause, PROXY_WANTS_CREDENTIALS};
use super::RemoteFailure;
use crate::redact::redact;
use crate::retry::FailureKind;

/// A network error with its causes, the URL (and so the signature) left out.
pub(crate) fn network_failure(e: reqwest::Error) -> RemoteFailure {
    network_failure_for(e, network::AddressSetIn::Profile)
}

/// [`network_failure`], with advice for whoever sets the store's address in `set_in`.
pub(crate) fn network_failure_for(
    e: reqwest::Error,
    set_in: network::AddressSetIn,
) -> RemoteFailure {
    let explained = network::explain_for(&e, "the storage server", set_in);
    let kind = match explained.cause {
        _ if !explained.retryable => FailureKind::Permanent,
        Cause::Timeout => FailureKind::Timeout,
        _ => FailureKind::Transient,
    };
    RemoteFailure::local(kind, explained.message)
}

/// Whether a store's error code says the body does not match a checksum it was sent with.
/// Garage names it InvalidDigest (S3: BadDigest, or InvalidDigest for a malformed digest —
/// the digests Hoist sends are always well formed, so for them it is a mismatch too).
pub(crate) fn is_checksum_mismatch(code: &str) -> bool {
    matches!(
        code,
        "BadDigest"
            | "InvalidDigest"
            | "InvalidChecksum"
            | "XAmzContentChecksumMismatch"
            | "XAmzContentSHA256Mismatch"
    )
}

/// Turns an S3 error answer into a retry decision and a sentence a person understands.
pub(crate) fn classify_response(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    now: SystemTime,
) -> RemoteFailure {
    let error = super::xml::error(body).unwrap_or_default();
    let (code, s3_message) = (error.code.as_str(), error.message.as_str());
    let expired_message = s3_message.to_ascii_lowercase().contains("expired");
    let (kind, advice) = match (status, code) {
        (300..=399, _) => {
            let to = headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(|l| format!(" to {}", redact(l)))
                .unwrap_or_default();
            return RemoteFailure {
                kind: FailureKind::Permanent,
                code: code.to_string(),
                status: Some(status),
                message: format!(
                    "the storage server redirected the upload{to} (HTTP {status} {code}); Hoist does not \
                     follow redirects: check the profile's region and endpoint"
                ),
                retry_after: None,
            };
        }
        (_, "ExpiredToken" | "TokenRefreshRequired") => (
            FailureKind::Expired,
            "the temporary credentials behind the URL have expired",
        ),
        (400 | 403, _) if expired_message => (FailureKind::Expired, "the upload URL has expired"),
        (_, "RequestTimeout") => (FailureKind::Transient, "S3 timed out waiting for the body"),
        (_, c) if is_checksum_mismatch(c) => (
            FailureKind::Transient,
            "the bytes S3 received do not match the file's checksum (corrupted in transit)",
        ),
        (_, "NotImplemented") => (
            FailureKind::Permanent,
            "the storage server does not support this operation",
        ),
        (429, _) | (503, "SlowDown") => (FailureKind::Throttling, "S3 asks to slow down"),
        (500..=599, _) => (FailureKind::Transient, "the storage server had an internal error"),
        (_, "SignatureDoesNotMatch") => (
            FailureKind::Permanent,
            "the request does not match its signature: the URL, size, type or checksum differs from \
             what was signed, or the signing key is wrong",
        ),
        (_, "InvalidAccessKeyId") => (
            FailureKind::Permanent,
            "the access key id is unknown to this storage server: check the profile",
        ),
        (_, "NoSuchBucket") => (FailureKind::Permanent, "the bucket does not exist: check the profile"),
        (412, _) | (_, "PreconditionFailed") => (
            FailureKind::Permanent,
            "an object already exists at this key and may not be overwritten",
        ),
        (_, "InvalidStorageClass") => (
            FailureKind::Permanent,
            "the storage server does not offer the profile's storage class: choose another one \
             (or none) in the profile",
        ),
        (_, "EntityTooLarge" | "EntityTooSmall" | "MaxMessageLengthExceeded") => {
            (FailureKind::Permanent, "the storage server refused the size of the file")
        }
        (403, _) => (
            FailureKind::Permanent,
            "access denied: these credentials may not write to this bucket or key",
        ),
        (407, _) => (FailureKind::Permanent, PROXY_WANTS_CREDENTIALS),
        _ => (FailureKind::Permanent, "the storage server refused the request"),
    };
    let detail = match (code.is_empty(), s3_message.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!(" {code}"),
        (false, false) => format!(" {code}: {}", redact(s3_message)),
    };
    RemoteFailure {
        kind,
        code: code.to_string(),
        status: Some(status),
        message: format!("{advice} (HTTP {status}{detail})"),
        retry_after: super::http::retry_after(headers, now)
            .filter(|_| kind == FailureKind::Throttling),
    }
}
