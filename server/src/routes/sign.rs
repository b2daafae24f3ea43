//! `POST /s3/sign`: Uppy 6's `signRequest` mode. The company's page passes each S3 request
//! Uppy wants to send (`{method, key, uploadId?, partNumber?, contentType?}`) here with the
//! signed-in user's bearer token, and gets back what Uppy sends it with: a POST form for a
//! whole file, or a presigned URL (and the headers it was signed with) for each multipart call.
//! The browser then talks to the store itself.
//!
//! Nothing is signed that the policy would not sign through Companion's routes: the key is the
//! server's own (the browser's `key` is read as a file name), the type is signed, a whole file's
//! form is bounded by the size limit, each multipart call must name a key under the caller's
//! prefix, and Complete is signed only after the server has listed the parts and found them
//! within the limit (past it, the upload is aborted). Deleting an object is never signed.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use hoist::remote::s3::S3Client;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{header_object, parse_body, read_body, SIGN_BODY_LIMIT};
use crate::audit::Call;
use crate::error::ApiError;
use crate::policy::{self, Ask};
use crate::state::{header_refs, Granted, Shared};
use crate::token::Token;

/// One S3 request Uppy 6 asks to have signed (its `PresignableRequest`).
#[derive(Debug, Deserialize)]
struct SignRequest {
    method: String,
    key: String,
    #[serde(rename = "uploadId")]
    upload_id: Option<String>,
    #[serde(rename = "partNumber")]
    part_number: Option<u32>,
    #[serde(rename = "contentType")]
    content_type: Option<String>,
}

pub(super) async fn sign(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "sign").await?;
    let token = &*token;
    let req: SignRequest = parse_body(&read_body(body, SIGN_BODY_LIMIT).await?)?;
    if s.verifier.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this server verifies uploads before they reach their key ([verify]), which Uppy's \
             signRequest mode cannot complete: use Uppy's Companion endpoints (@uppy/aws-s3's \
             `endpoint` option) instead",
        ));
    }
    let method = req.method.to_ascii_uppercase();
    match (method.as_str(), req.upload_id.as_deref(), req.part_number) {
        ("PUT", None, None) => whole_file(&s, token, &call, &req).await,
        ("POST", None, None) => create(&s, token, &call, &req).await,
        ("PUT", Some(id), Some(n)) => part(&s, token, &call, &req.key, id, n),
        ("GET", Some(id), None) => {
            multipart_call(&s, token, &call, "multipart.list", "GET", &req.key, id)
        }
        ("POST", Some(id), None) => complete(&s, token, &call, &req.key, id).await,
        ("DELETE", Some(id), None) => {
            multipart_call(&s, token, &call, "multipart.abort", "DELETE", &req.key, id)
        }
        ("DELETE", None, _) => Err(ApiError::forbidden(
            "hoist-server never signs the deletion of an object",
        )),
        _ => Err(ApiError::bad_request(format!(
            "cannot sign {} for key {:?}: expected one of Uppy's S3 requests (PUT a file; POST \
             to create; PUT a part with uploadId and partNumber; GET, POST or DELETE with \
             uploadId)",
            req.method, req.key
        ))),
    }
}

/// What the browser's `key` names: the file, by its last path segment.
fn file_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// PutObject: a POST form for the server's key, bounded by the limit.
async fn whole_file(
    s: &Shared,
    token: &Token,
    call: &Call,
    req: &SignRequest,
) -> Result<Json<Value>, ApiError> {
    call.action("sign.put");
    let ask = Ask {
        bounded_elsewhere: true,
        ..Ask::file(Some(file_name(&req.key)), req.content_type.as_deref(), None)
    };
    let (plan, p) = s.sign_form(token, call, &ask).await?;
    let fields = header_object(p.form.as_deref().unwrap_or_default());
    Ok(Json(
        json!({ "url": p.url.as_str(), "fields": fields, "key": plan.key }),
    ))
}

/// CreateMultipartUpload for the server's key, its type and object headers signed (and
/// answered, so Uppy sends them as signed).
async fn create(
    s: &Shared,
    token: &Token,
    call: &Call,
    req: &SignRequest,
) -> Result<Json<Value>, ApiError> {
    call.action("sign.create");
    let ask = Ask {
        bounded_elsewhere: true,
        ..Ask::file(Some(file_name(&req.key)), req.content_type.as_deref(), None)
    };
    let plan = s.plan(token, call, &ask, true)?;
    let most = policy::size_limit(&s.policy, token);
    s.limiter
        .check_file(token, most, std::time::Instant::now())
        .await?;
    let object = s.object_headers(&plan);
    let signed = header_refs(&object);
    let url = s
        .bucket
        .client
        .presign_multipart("POST", &plan.key, "uploads=", &signed, SystemTime::now())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    s.audit_ok(token, call, Granted::plan(&plan), "signed (create)");
    Ok(Json(json!({
        "url": url,
        "key": plan.key,
        "headers": header_object(&object),
    })))
}

/// UploadPart of an upload under the caller's prefix.
fn part(
    s: &Shared,
    token: &Token,
    call: &Call,
    key: &str,
    upload_id: &str,
    n: u32,
) -> Result<Json<Value>, ApiError> {
    call.action("sign.part");
    call.key(key);
    s.check_key(token, key)?;
    if !(1..=policy::MAX_PARTS).contains(&n) {
        return Err(ApiError::bad_request(format!(
            "part number {n} is outside 1 to {}",
            policy::MAX_PARTS
        )));
    }
    let url = s
        .bucket
        .client
        .presign_part(key, upload_id, n, &[], SystemTime::now())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "url": url })))
}

/// ListParts or AbortMultipartUpload of an upload under the caller's prefix.
fn multipart_call(
    s: &Shared,
    token: &Token,
    call: &Call,
    action: &'static str,
    method: &str,
    key: &str,
    upload_id: &str,
) -> Result<Json<Value>, ApiError> {
    call.action(action);
    call.key(key);
    s.check_key(token, key)?;
    let url = s
        .bucket
        .client
        .presign_multipart(
            method,
            key,
            &S3Client::upload_id_query(upload_id),
            &[],
            SystemTime::now(),
        )
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "url": url })))
}

/// CompleteMultipartUpload, signed once the server has listed the parts and found them within
/// the limit; past it the upload is aborted, so nothing oversized lands or stays.
async fn complete(
    s: &Shared,
    token: &Token,
    call: &Call,
    key: &str,
    upload_id: &str,
) -> Result<Json<Value>, ApiError> {
    call.action("sign.complete");
    call.key(key);
    s.check_key(token, key)?;
    let now = SystemTime::now();
    let parts = s.bucket.client.list_parts(key, upload_id, now).await?;
    let total: u64 = parts.iter().map(|p| p.size).sum();
    if let Some(limit) = policy::size_limit(&s.policy, token) {
        if total > limit {
            let _ = s.bucket.client.abort(key, upload_id, now).await;
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("size {total} is over the limit of {limit} bytes; the upload was aborted"),
            ));
        }
    }
    let url = s
        .bucket
        .client
        .presign_multipart("POST", key, &S3Client::upload_id_query(upload_id), &[], now)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    s.audit_ok(
        token,
        call,
        Granted {
            size: Some(total),
            ..Granted::key(key)
        },
        "signed (complete)",
    );
    Ok(Json(json!({ "url": url })))
}
