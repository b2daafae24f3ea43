//! Hoist's reference presign backend: the server side that staff-mode Hoist (and Uppy) talk to.
//!
//! [`app`] builds the `axum::Router`; the `hoist-server` binary loads [`config`], finds AWS
//! credentials, and serves it (optionally beside an embedded S3 store). Two protocols share one
//! [`policy`]:
//!
//! * **simple** — `POST /api/upload {fileName, contentType, size, checksumSha256?, contentMd5?}`
//!   → `{url, method, headers, key, expiresAt}` (a client sending only `fileName` and reading
//!   only `url` still works, within the policy);
//! * **companion** — Uppy Companion's `/s3/params` and `/s3/multipart/...` endpoints.
//!
//! Every request is authenticated (bearer token, stored hashed), rate limited per token, and
//! checked before anything is signed; keys are generated here under the token's prefix;
//! `content-type`, `content-length`, `If-None-Match: *` and any checksum the client sent are
//! signed so that S3 enforces them. An [`audit`] line records each decision.

pub mod audit;
pub mod config;
pub mod error;
pub mod policy;
pub mod s3;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use crate::audit::{AuditEvent, AuditLog};
use crate::config::{PolicyConfig, Token};
use crate::error::ApiError;
use crate::policy::{Ask, Plan, RateLimiter, UploadIds};
use crate::s3::Bucket;

/// Everything the router needs.
pub struct AppConfig {
    pub bucket: Bucket,
    pub policy: PolicyConfig,
    pub tokens: Vec<Token>,
    pub audit: AuditLog,
    /// Keys the MAC of upload ids handed to clients.
    pub upload_id_secret: Vec<u8>,
}

struct AppState {
    bucket: Bucket,
    policy: PolicyConfig,
    tokens: Vec<Token>,
    audit: AuditLog,
    ids: UploadIds,
    limiter: RateLimiter,
}

type Shared = Arc<AppState>;

/// The HTTP API.
pub fn app(config: AppConfig) -> Router {
    let state = Arc::new(AppState {
        ids: UploadIds::new(&config.upload_id_secret),
        bucket: config.bucket,
        policy: config.policy,
        tokens: config.tokens,
        audit: config.audit,
        limiter: RateLimiter::default(),
    });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/upload", post(simple_upload))
        .route("/s3/params", get(companion_params))
        .route("/s3/multipart", post(create_multipart))
        .route(
            "/s3/multipart/{upload_id}",
            get(list_parts).delete(abort_multipart),
        )
        .route("/s3/multipart/{upload_id}/batch", get(sign_batch))
        .route(
            "/s3/multipart/{upload_id}/complete",
            post(complete_multipart),
        )
        .route("/s3/multipart/{upload_id}/{part_number}", get(sign_part))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(state)
}

impl AppState {
    /// Authentication and rate limiting, in that order.
    fn admit(&self, headers: &HeaderMap, action: &str) -> Result<&Token, ApiError> {
        let token = match policy::authenticate(&self.tokens, headers) {
            Ok(t) => t,
            Err(e) => {
                self.audit_denied(None, action, None, &e);
                return Err(e);
            }
        };
        if let Err(e) = self.limiter.check(token, Instant::now()) {
            self.audit_denied(Some(&token.id), action, None, &e);
            return Err(e);
        }
        Ok(token)
    }

    fn audit_denied(&self, token: Option<&str>, action: &str, key: Option<&str>, e: &ApiError) {
        let outcome = format!("denied {}: {}", e.status.as_u16(), e.message);
        self.audit.record(AuditEvent {
            time: audit::now_rfc3339(),
            token,
            action,
            key,
            size: None,
            content_type: None,
            outcome: &outcome,
        });
    }

    fn audit_ok(
        &self,
        token: &Token,
        action: &str,
        key: &str,
        size: Option<u64>,
        content_type: Option<&str>,
        outcome: &str,
    ) {
        self.audit.record(AuditEvent {
            time: audit::now_rfc3339(),
            token: Some(&token.id),
            action,
            key: Some(key),
            size,
            content_type,
            outcome,
        });
    }

    fn planned(
        &self,
        token: &Token,
        action: &str,
        ask: &Ask<'_>,
        multipart: bool,
    ) -> Result<Plan, ApiError> {
        policy::plan(&self.policy, token, ask, multipart)
            .inspect_err(|e| self.audit_denied(Some(&token.id), action, None, e))
    }

    /// Plans, presigns and audits a single PUT (both protocols).
    fn sign_single(
        &self,
        token: &Token,
        action: &str,
        ask: &Ask<'_>,
        sha256_b64: Option<&str>,
        md5_b64: Option<&str>,
    ) -> Result<(Plan, hoist::sign::PresignedPut), ApiError> {
        let plan = self.planned(token, action, ask, false)?;
        let presigned = self.presign_single(&plan, sha256_b64, md5_b64)?;
        self.audit_ok(
            token,
            action,
            &plan.key,
            plan.size,
            Some(&plan.content_type),
            "signed",
        );
        Ok((plan, presigned))
    }

    /// Presigns a PutObject for a plan; returns the URL and the headers the client must send.
    fn presign_single(
        &self,
        plan: &Plan,
        sha256_b64: Option<&str>,
        md5_b64: Option<&str>,
    ) -> Result<hoist::sign::PresignedPut, ApiError> {
        let size = plan.size.map(|s| s.to_string());
        let mut headers: Vec<(&str, &str)> = vec![("content-type", &plan.content_type)];
        if let Some(s) = &size {
            headers.push(("content-length", s));
        }
        if !self.policy.allow_overwrite {
            headers.push(("if-none-match", "*"));
        }
        if let Some(c) = sha256_b64 {
            headers.push(("x-amz-checksum-sha256", c));
        }
        if let Some(m) = md5_b64 {
            headers.push(("content-md5", m));
        }
        self.bucket
            .signer
            .presign_put_with(&plan.key, &headers, SystemTime::now())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    Ok(v)
}

fn query_map(raw: Option<String>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn opt_str<'a>(v: &'a Value, field: &str) -> Result<Option<&'a str>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be a string"))),
    }
}

/// A base64 digest of the expected length, or a 400 naming the field.
fn digest_field<'a>(v: &'a Value, field: &str, len: usize) -> Result<Option<&'a str>, ApiError> {
    let Some(s) = opt_str(v, field)? else {
        return Ok(None);
    };
    match base64::engine::general_purpose::STANDARD.decode(s) {
        Ok(b) if b.len() == len => Ok(Some(s)),
        _ => Err(ApiError::bad_request(format!(
            "{field} must be a base64 digest of {len} bytes"
        ))),
    }
}

fn expires_at(p: &hoist::sign::PresignedPut) -> String {
    p.expires_at
        .map(time::OffsetDateTime::from)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn header_object(headers: &[(String, String)]) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

async fn simple_upload(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "simple.put";
    let token = s.admit(&headers, ACTION)?;
    let v = parse_json(&body).inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, None, e))?;
    let ask_fields = (|| {
        Ok::<_, ApiError>((
            Ask {
                file_name: opt_str(&v, "fileName")?,
                content_type: opt_str(&v, "contentType")?,
                size: policy::json_size(v.get("size"))?,
            },
            digest_field(&v, "checksumSha256", 32)?,
            digest_field(&v, "contentMd5", 16)?,
        ))
    })();
    let (ask, sha, md5) =
        ask_fields.inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, None, e))?;
    let (plan, p) = s.sign_single(token, ACTION, &ask, sha, md5)?;
    Ok(Json(json!({
        "url": p.url.as_str(),
        "method": "PUT",
        "headers": header_object(&p.headers),
        "key": plan.key,
        "expiresAt": expires_at(&p),
    })))
}

async fn companion_params(
    State(s): State<Shared>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "companion.params";
    let token = s.admit(&headers, ACTION)?;
    let q = query_map(q);
    let size = q
        .get("size")
        .map(|v| policy::json_size(Some(&Value::String(v.clone()))))
        .transpose()
        .map(Option::flatten)
        .inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, None, e))?;
    let ask = Ask {
        file_name: q.get("filename").map(String::as_str),
        content_type: q.get("type").map(String::as_str),
        size,
    };
    let (plan, p) = s.sign_single(token, ACTION, &ask, None, None)?;
    Ok(Json(json!({
        "method": "PUT",
        "url": p.url.as_str(),
        "fields": {},
        "headers": header_object(&p.headers),
        "key": plan.key,
        "expiresAt": expires_at(&p),
    })))
}

async fn create_multipart(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "multipart.create";
    let token = s.admit(&headers, ACTION)?;
    let v = parse_json(&body).inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, None, e))?;
    let size_field = v
        .get("size")
        .or_else(|| v.get("metadata").and_then(|m| m.get("size")));
    let ask = (|| {
        Ok::<_, ApiError>(Ask {
            file_name: opt_str(&v, "filename")?,
            content_type: opt_str(&v, "type")?,
            size: policy::json_size(size_field)?,
        })
    })()
    .inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, None, e))?;
    let plan = s.planned(token, ACTION, &ask, true)?;
    let s3_id = s
        .bucket
        .create_multipart(&plan.key, &plan.content_type, SystemTime::now())
        .await?;
    let upload_id = s
        .ids
        .seal(&token.id, &plan.key, plan.size.unwrap_or(0), &s3_id);
    s.audit_ok(
        token,
        ACTION,
        &plan.key,
        plan.size,
        Some(&plan.content_type),
        "created",
    );
    Ok(Json(
        json!({ "key": plan.key, "uploadId": upload_id, "bucket": s.bucket.name() }),
    ))
}

/// Token, key and upload id of a multipart request, all checked.
fn multipart_target(
    s: &AppState,
    headers: &HeaderMap,
    action: &str,
    upload_id: &str,
    q: &BTreeMap<String, String>,
) -> Result<(Token, String, policy::Sealed), ApiError> {
    let token = s.admit(headers, action)?;
    let checked = (|| {
        let key = q
            .get("key")
            .ok_or_else(|| ApiError::bad_request("the key query parameter is required"))?;
        policy::check_key(token, key)?;
        let sealed = s.ids.open(&token.id, key, upload_id)?;
        Ok((key.clone(), sealed))
    })();
    match checked {
        Ok((key, sealed)) => Ok((token.clone(), key, sealed)),
        Err(e) => {
            s.audit_denied(
                Some(&token.id),
                action,
                q.get("key").map(String::as_str),
                &e,
            );
            Err(e)
        }
    }
}

fn part_number(raw: &str, declared: u64) -> Result<u32, ApiError> {
    let n: u32 = raw.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "part number '{}' is not a number",
            raw.escape_debug()
        ))
    })?;
    let max = policy::max_part_for(declared);
    if n == 0 || n > max {
        return Err(ApiError::bad_request(format!(
            "part number {n} is outside 1..={max}"
        )));
    }
    Ok(n)
}

async fn sign_part(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((upload_id, raw_part)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "multipart.sign-part";
    let q = query_map(q);
    let (token, key, sealed) = multipart_target(&s, &headers, ACTION, &upload_id, &q)?;
    let n = part_number(&raw_part, sealed.declared_size)
        .inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, Some(&key), e))?;
    let url = s
        .bucket
        .presign_part(&key, &sealed.s3_upload_id, n, SystemTime::now())?;
    Ok(Json(
        json!({ "url": url, "expires": s.bucket.signer.expires_in().as_secs() }),
    ))
}

async fn sign_batch(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(upload_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "multipart.sign-batch";
    let q = query_map(q);
    let (token, key, sealed) = multipart_target(&s, &headers, ACTION, &upload_id, &q)?;
    let numbers = q.get("partNumbers").map(String::as_str).unwrap_or("");
    let parsed: Result<Vec<u32>, ApiError> = numbers
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| part_number(n.trim(), sealed.declared_size))
        .collect();
    let parsed = parsed.inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, Some(&key), e))?;
    if parsed.is_empty() || parsed.len() > 1000 {
        return Err(ApiError::bad_request(
            "partNumbers must list 1 to 1000 part numbers",
        ));
    }
    let now = SystemTime::now();
    let mut urls = serde_json::Map::new();
    for n in parsed {
        urls.insert(
            n.to_string(),
            Value::String(s.bucket.presign_part(&key, &sealed.s3_upload_id, n, now)?),
        );
    }
    Ok(Json(json!({ "presignedUrls": urls })))
}

async fn list_parts(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(upload_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query_map(q);
    let (_token, key, sealed) = multipart_target(&s, &headers, "multipart.list", &upload_id, &q)?;
    let parts = s
        .bucket
        .list_parts(&key, &sealed.s3_upload_id, SystemTime::now())
        .await?;
    Ok(Json(
        serde_json::to_value(parts).unwrap_or(Value::Array(vec![])),
    ))
}

async fn complete_multipart(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(upload_id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    const ACTION: &str = "multipart.complete";
    let q = query_map(q);
    let (token, key, sealed) = multipart_target(&s, &headers, ACTION, &upload_id, &q)?;
    let requested = (|| {
        let v = parse_json(&body)?;
        let parts = v
            .get("parts")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("parts must be a non-empty list of {PartNumber, ETag}")
            })?;
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            let n = p
                .get("PartNumber")
                .and_then(Value::as_u64)
                .filter(|n| (1..=policy::MAX_PARTS as u64).contains(n));
            let etag = p.get("ETag").and_then(Value::as_str);
            match (n, etag) {
                (Some(n), Some(e)) => out.push((n as u32, e.to_string())),
                _ => {
                    return Err(ApiError::bad_request(
                        "each part needs a PartNumber in 1..=10000 and an ETag",
                    ))
                }
            }
        }
        if out.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ApiError::bad_request(
                "parts must be in ascending PartNumber order without repeats",
            ));
        }
        Ok(out)
    })()
    .inspect_err(|e| s.audit_denied(Some(&token.id), ACTION, Some(&key), e))?;
    let now = SystemTime::now();
    if sealed.declared_size > 0 {
        let stored = s.bucket.list_parts(&key, &sealed.s3_upload_id, now).await?;
        let total: u64 = stored
            .iter()
            .filter(|p| requested.iter().any(|(n, _)| *n == p.part_number))
            .map(|p| p.size)
            .sum();
        if total != sealed.declared_size {
            // Nothing torn or oversized may stay behind: the upload is aborted.
            let _ = s.bucket.abort(&key, &sealed.s3_upload_id, now).await;
            let e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the parts hold {total} bytes but {} were declared; the upload was aborted",
                    sealed.declared_size
                ),
            );
            s.audit_denied(Some(&token.id), ACTION, Some(&key), &e);
            return Err(e);
        }
    }
    let etag = s
        .bucket
        .complete(
            &key,
            &sealed.s3_upload_id,
            &requested,
            !s.policy.allow_overwrite,
            now,
        )
        .await?;
    s.audit_ok(
        &token,
        ACTION,
        &key,
        Some(sealed.declared_size).filter(|n| *n > 0),
        None,
        "completed",
    );
    Ok(Json(
        json!({ "location": s.bucket.location(&key), "key": key, "bucket": s.bucket.name(), "etag": etag }),
    ))
}

async fn abort_multipart(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(upload_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query_map(q);
    let (token, key, sealed) = multipart_target(&s, &headers, "multipart.abort", &upload_id, &q)?;
    s.bucket
        .abort(&key, &sealed.s3_upload_id, SystemTime::now())
        .await?;
    s.audit_ok(&token, "multipart.abort", &key, None, None, "aborted");
    Ok(Json(json!({})))
}
