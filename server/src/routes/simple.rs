//! The simple protocol: `POST /api/upload {fileName, contentType, size, checksumAlgorithm?,
//! checksum?, contentMd5?}` → `{url, method, headers, key, expiresAt}`. The checksum
//! (`CRC64NVME`, `CRC32C`, `CRC32` or `SHA256`; `checksumSha256` is the older form of a SHA-256)
//! and the MD5 are signed, so the store verifies the body against them. A client that sends
//! only `fileName` and reads only `url` still works, within the policy.
//!
//! Folders and drops: `relativePath` (the file's path inside the dropped folder) and `dropId`
//! (a UUID shared by the drop's files) place it; every answer carries a `ticket`, and a request
//! with `resume: {key, ticket}` is signed the same key again — or answered `landed: true` when
//! the object is already there as declared (see [`crate::placement`]).
//!
//! `POST /api/upload/batch {files: [...]}` signs up to [`BATCH_LIMIT`] files in one round trip
//! (Hoist signs ahead of sending with it); a client falls back to one request a file where a
//! backend answers it 404.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{expires_at, header_object, parse_body, read_body, SIGN_BODY_LIMIT};
use crate::audit::Call;
use crate::error::ApiError;
use crate::policy::{Ask, Resume};
use crate::state::{Checksums, Landing, Shared};
use hoist::checksum::{Checksum, ChecksumAlgorithm};

/// What a client asks to upload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UploadRequest {
    file_name: Option<String>,
    content_type: Option<String>,
    #[serde(default, deserialize_with = "super::de::size")]
    size: Option<u64>,
    checksum_algorithm: Option<String>,
    checksum: Option<String>,
    checksum_sha256: Option<String>,
    content_md5: Option<String>,
    /// The file's path inside the folder it was dropped in (`Photos/2026/beach.jpg`).
    relative_path: Option<String>,
    /// The client's id for the drop (a UUID every file of it shares).
    drop_id: Option<String>,
    /// The key and ticket of an earlier answer for this file: the same key is signed again,
    /// or the answer says it has landed (see `crate::placement`).
    resume: Option<ResumeRequest>,
}

/// A key asked for again.
#[derive(Debug, Deserialize)]
struct ResumeRequest {
    key: String,
    ticket: String,
}

impl UploadRequest {
    /// The one flexible checksum to sign, or a 400 that says what is wrong.
    fn flexible_checksum(&self) -> Result<Option<Checksum>, ApiError> {
        let named =
            super::declared_checksum(self.checksum_algorithm.as_deref(), self.checksum.as_deref())?;
        let sha256 =
            digest(self.checksum_sha256.as_deref(), "checksumSha256", 32)?.map(|v| Checksum {
                algorithm: ChecksumAlgorithm::Sha256,
                value: v.to_string(),
            });
        match (named, sha256) {
            (Some(n), Some(s)) if n != s => Err(ApiError::bad_request(
                "send one checksum: S3 verifies only one per request (checksum or checksumSha256)",
            )),
            (n, s) => Ok(n.or(s)),
        }
    }
}

/// A base64 digest of the expected length, or a 400 naming the field.
fn digest<'a>(
    value: Option<&'a str>,
    field: &str,
    len: usize,
) -> Result<Option<&'a str>, ApiError> {
    let Some(s) = value else {
        return Ok(None);
    };
    match base64::engine::general_purpose::STANDARD.decode(s) {
        Ok(b) if b.len() == len => Ok(Some(s)),
        _ => Err(ApiError::bad_request(format!(
            "{field} must be a base64 digest of {len} bytes"
        ))),
    }
}

pub(super) async fn upload(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "simple.put").await?;
    let req: UploadRequest = parse_body(&read_body(body, SIGN_BODY_LIMIT).await?)?;
    Ok(Json(sign_one(&s, &token, &call, &req).await?))
}

/// The most files one batch may ask for.
pub(crate) const BATCH_LIMIT: usize = 100;

/// `POST /api/upload/batch {"files": [UploadRequest, ...]}` (at most [`BATCH_LIMIT`]): signs
/// each file as `POST /api/upload` would, in one round trip, and answers `{"uploads": [...]}`
/// in the same order, each an upload or `{"error", "status"}` (with `retryAfter` seconds for a
/// 429). The request is admitted once; every file counts against the files limit, as one
/// request each would. A refused file is audited like a refused request.
#[derive(Debug, Deserialize)]
struct BatchRequest {
    files: Vec<UploadRequest>,
}

pub(super) async fn upload_batch(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "simple.batch").await?;
    let token = &*token;
    let req: BatchRequest =
        parse_body(&read_body(body, SIGN_BODY_LIMIT * BATCH_LIMIT / 16).await?)?;
    if req.files.is_empty() || req.files.len() > BATCH_LIMIT {
        return Err(ApiError::bad_request(format!(
            "a batch holds 1 to {BATCH_LIMIT} files, not {}",
            req.files.len()
        )));
    }
    let mut uploads = Vec::with_capacity(req.files.len());
    for file in &req.files {
        // Each file is audited as its own call: a refusal names its key, not the batch's last.
        let one = Call::default();
        one.inherit(&call);
        one.action("simple.put");
        match sign_one(&s, token, &one, file).await {
            Ok(answer) => uploads.push(answer),
            Err(e) => {
                super::audit_refused(&s, &one, &e);
                let mut refused = json!({ "error": e.message, "status": e.status.as_u16() });
                if let Some(after) = e.retry_after {
                    refused["retryAfter"] = json!(after);
                }
                uploads.push(refused);
            }
        }
    }
    Ok(Json(json!({ "uploads": uploads })))
}

/// One file's signing: the answer of `POST /api/upload`.
async fn sign_one(
    s: &Shared,
    token: &crate::token::Token,
    call: &Call,
    req: &UploadRequest,
) -> Result<Value, ApiError> {
    let flexible = req.flexible_checksum()?;
    let checksums = Checksums {
        flexible: flexible.as_ref(),
        md5_b64: digest(req.content_md5.as_deref(), "contentMd5", 16)?,
    };
    let ask = Ask {
        relative_path: req.relative_path.as_deref(),
        drop_id: req.drop_id.as_deref(),
        resume: req.resume.as_ref().map(|r| Resume {
            key: &r.key,
            ticket: &r.ticket,
        }),
        ..Ask::file(
            req.file_name.as_deref(),
            req.content_type.as_deref(),
            req.size,
        )
    };
    let (plan, p, landing) = s.sign_single(token, call, &ask, checksums).await?;
    let mut answer = json!({
        "url": p.url.as_str(),
        "method": "PUT",
        "headers": header_object(&p.headers),
        "key": plan.key,
        "expiresAt": expires_at(&p),
        "ticket": s.ticket(token, &plan),
    });
    if landing == Landing::Landed {
        answer["landed"] = Value::Bool(true);
    }
    if let Some(c) = s.completion(token, &plan, flexible.as_ref()) {
        answer["complete"] = c;
    }
    Ok(answer)
}

/// `POST /api/upload/complete {key, receipt}`: the upload of `key` is done; with `[verify]`,
/// the server checks it and answers `{status: "verified", key}` (its final key) or
/// `{status: "quarantined", key, reason}`.
#[derive(Debug, Deserialize)]
struct CompleteRequest {
    key: String,
    receipt: String,
}

pub(super) async fn complete(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "simple.complete").await?;
    let token = &*token;
    let req: CompleteRequest = parse_body(&read_body(body, SIGN_BODY_LIMIT).await?)?;
    call.key(&req.key);
    if s.verifier.is_none() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "this server does not verify uploads ([verify] is not configured): nothing to complete",
        ));
    }
    s.check_key(token, &req.key)?;
    let sealed = s.ids.open(&token.id, &req.key, &req.receipt)?;
    let signed_checksum = match sealed.s3_upload_id.strip_prefix(crate::state::SINGLE_PUT) {
        Some("") => None,
        Some(rest) => rest
            .strip_prefix(':')
            .zip(sealed.checksum)
            .map(|(value, algorithm)| Checksum {
                algorithm,
                value: value.to_string(),
            }),
        None => return Err(ApiError::forbidden("not a receipt of a single upload")),
    };
    let expected = crate::verify::Expected {
        key: &req.key,
        size: sealed.parts.map(|p| p.size),
        checksum: signed_checksum,
    };
    let verdict = s.verify(token, &call, expected, None).await?;
    Ok(Json(serde_json::to_value(verdict).unwrap_or(Value::Null)))
}
