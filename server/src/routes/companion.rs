//! Uppy Companion's S3 endpoints: `GET /s3/params` for a single PUT, and
//! `/s3/multipart/...` to create, sign parts (one or a batch), list, complete and abort a
//! multipart upload. Upload ids handed out are sealed ([`crate::policy::UploadIds`]), so a
//! token can only continue its own upload, for its key, within the size it declared.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    expires_at, header_object, parse_body, query_map, read_body, Call, COMPLETE_BODY_LIMIT,
    SIGN_BODY_LIMIT,
};
use crate::config::Token;
use crate::error::ApiError;
use crate::policy::{self, Ask, PartPlan, Sealed};
use crate::state::{header_refs, Checksums, Granted, Shared};
use hoist::remote::RemotePart;

/// `POST /s3/multipart`: what a client asks to upload in parts.
#[derive(Debug, Deserialize)]
struct CreateRequest {
    filename: Option<String>,
    #[serde(rename = "type")]
    content_type: Option<String>,
    #[serde(default, deserialize_with = "super::de::size")]
    size: Option<u64>,
    /// How long every part but the last will be (Hoist sends it; Uppy cuts by its default).
    #[serde(rename = "partSize", default, deserialize_with = "super::de::size")]
    part_size: Option<u64>,
    #[serde(default)]
    metadata: Metadata,
}

/// Uppy puts the size among the file's metadata.
#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "super::de::size")]
    size: Option<u64>,
    #[serde(rename = "partSize", default, deserialize_with = "super::de::size")]
    part_size: Option<u64>,
}

/// `POST /s3/multipart/:id/complete`: the parts to join.
#[derive(Debug, Deserialize)]
struct CompleteRequest {
    #[serde(default)]
    parts: Vec<CompletedPart>,
}

#[derive(Debug, Deserialize)]
struct CompletedPart {
    #[serde(rename = "PartNumber")]
    number: u64,
    #[serde(rename = "ETag")]
    etag: String,
}

pub(super) async fn params(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "companion.params")?;
    let q = query_map(q);
    let size = policy::json_size(q.get("size").map(|v| Value::String(v.clone())).as_ref())?;
    let ask = Ask {
        file_name: q.get("filename").map(String::as_str),
        content_type: q.get("type").map(String::as_str),
        size,
    };
    let (plan, p) = s.sign_single(token, &call, &ask, Checksums::default())?;
    Ok(Json(json!({
        "method": "PUT",
        "url": p.url.as_str(),
        "fields": {},
        "headers": header_object(&p.headers),
        "key": plan.key,
        "expiresAt": expires_at(&p),
    })))
}

pub(super) async fn create(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "multipart.create")?;
    let req: CreateRequest = parse_body(&read_body(body, SIGN_BODY_LIMIT).await?)?;
    let ask = Ask {
        file_name: req.filename.as_deref(),
        content_type: req.content_type.as_deref(),
        size: req.size.or(req.metadata.size),
    };
    let plan = policy::plan(&s.policy, token, &ask, true)?;
    let parts = plan
        .size
        .map(|size| policy::part_plan(size, req.part_size.or(req.metadata.part_size)))
        .transpose()?;
    call.key(&plan.key);
    let s3_id = s
        .bucket
        .client
        .create_multipart_with(
            &plan.key,
            &header_refs(&s.object_headers(&plan)),
            SystemTime::now(),
        )
        .await?;
    let upload_id = s.ids.seal(&token.id, &plan.key, parts, &s3_id);
    s.audit_ok(token, &call, Granted::plan(&plan), "created");
    Ok(Json(
        json!({ "key": plan.key, "uploadId": upload_id, "bucket": s.bucket.name() }),
    ))
}

/// A request about one multipart upload: what every `/s3/multipart/:id…` route extracts.
pub(super) struct UploadRequest {
    s: Shared,
    call: Call,
    headers: HeaderMap,
    params: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
}

impl FromRequestParts<Shared> for UploadRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, ApiError> {
        let Path(params) = Path::<BTreeMap<String, String>>::from_request_parts(parts, s)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let call = parts.extensions.get::<Call>().cloned().unwrap_or_default();
        Ok(UploadRequest {
            s: s.clone(),
            call,
            headers: parts.headers.clone(),
            params,
            query: query_map(parts.uri.query().map(str::to_string)),
        })
    }
}

impl UploadRequest {
    /// Admits the request as `action` and checks its key and sealed upload id: the token, the
    /// key and the store's upload id.
    fn target(&self, action: &'static str) -> Result<(Token, String, Sealed), ApiError> {
        let token = self.s.admit(&self.headers, &self.call, action)?;
        let key = self
            .query
            .get("key")
            .ok_or_else(|| ApiError::bad_request("the key query parameter is required"))?;
        self.call.key(key);
        policy::check_key(token, key)?;
        let upload_id = self
            .params
            .get("upload_id")
            .map(String::as_str)
            .unwrap_or("");
        let sealed = self.s.ids.open(&token.id, key, upload_id)?;
        Ok((token.clone(), key.clone(), sealed))
    }
}

fn part_number(raw: &str, sealed: &Sealed) -> Result<u32, ApiError> {
    let n: u32 = raw.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "part number '{}' is not a number",
            raw.escape_debug()
        ))
    })?;
    let max = sealed.max_part();
    if n == 0 || n > max {
        return Err(ApiError::bad_request(format!(
            "part number {n} is outside 1..={max}"
        )));
    }
    Ok(n)
}

pub(super) async fn sign_part(req: UploadRequest) -> Result<Json<Value>, ApiError> {
    let (_, key, sealed) = req.target("multipart.sign-part")?;
    let s = &req.s;
    let raw_part = req
        .params
        .get("part_number")
        .map(String::as_str)
        .unwrap_or("");
    let n = part_number(raw_part, &sealed)?;
    let url = s.bucket.presign_part(&key, &sealed, n, SystemTime::now())?;
    Ok(Json(
        json!({ "url": url, "expires": s.bucket.signer.expires_in().as_secs() }),
    ))
}

pub(super) async fn sign_batch(req: UploadRequest) -> Result<Json<Value>, ApiError> {
    let (_, key, sealed) = req.target("multipart.sign-batch")?;
    let s = &req.s;
    let numbers = req
        .query
        .get("partNumbers")
        .map(String::as_str)
        .unwrap_or("");
    let parsed = numbers
        .split(',')
        .filter(|n| !n.is_empty())
        .map(|n| part_number(n.trim(), &sealed))
        .collect::<Result<Vec<u32>, ApiError>>()?;
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
            Value::String(s.bucket.presign_part(&key, &sealed, n, now)?),
        );
    }
    Ok(Json(json!({ "presignedUrls": urls })))
}

pub(super) async fn list_parts(req: UploadRequest) -> Result<Json<Value>, ApiError> {
    let (_, key, sealed) = req.target("multipart.list")?;
    let s = &req.s;
    let parts = s
        .bucket
        .client
        .list_parts(&key, &sealed.s3_upload_id, SystemTime::now())
        .await?;
    Ok(Json(
        serde_json::to_value(parts).unwrap_or(Value::Array(vec![])),
    ))
}

/// The parts a Complete names: 1 to 10,000 of them, ascending, none repeated.
fn requested_parts(req: CompleteRequest) -> Result<Vec<(u32, String)>, ApiError> {
    if req.parts.is_empty() {
        return Err(ApiError::bad_request(
            "parts must be a non-empty list of {PartNumber, ETag}",
        ));
    }
    let parts: Vec<(u32, String)> = req
        .parts
        .into_iter()
        .map(|p| match p.number {
            n @ 1..=10_000 => Ok((n as u32, p.etag)),
            _ => Err(ApiError::bad_request(
                "each part needs a PartNumber in 1..=10000 and an ETag",
            )),
        })
        .collect::<Result<_, _>>()?;
    if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ApiError::bad_request(
            "parts must be in ascending PartNumber order without repeats",
        ));
    }
    Ok(parts)
}

pub(super) async fn complete(req: UploadRequest, body: Body) -> Result<Json<Value>, ApiError> {
    let (token, key, sealed) = req.target("multipart.complete")?;
    let (s, call) = (&req.s, &req.call);
    let body = read_body(body, COMPLETE_BODY_LIMIT).await?;
    let mut requested = requested_parts(parse_body(&body)?)?;
    let now = SystemTime::now();
    if let Some(plan) = sealed.parts {
        requested = stored_parts(s, &key, &sealed.s3_upload_id, plan, &requested, now).await?;
    }
    let etag = s
        .bucket
        .client
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
        call,
        Granted {
            size: sealed.parts.map(|p| p.size),
            ..Granted::key(&key)
        },
        "completed",
    );
    Ok(Json(
        json!({ "location": s.bucket.location(&key), "key": key, "bucket": s.bucket.name(), "etag": etag }),
    ))
}

/// The parts to join, as the store holds them (see [`join_parts`]). A part of another length
/// (from a store that does not check the signed length) makes the upload worthless: it is
/// aborted, so nothing oversized stays behind.
async fn stored_parts(
    s: &Shared,
    key: &str,
    upload_id: &str,
    plan: PartPlan,
    requested: &[(u32, String)],
    now: SystemTime,
) -> Result<Vec<(u32, String)>, ApiError> {
    let stored = s.bucket.client.list_parts(key, upload_id, now).await?;
    match join_parts(plan, requested, &stored) {
        Ok(joined) => Ok(joined),
        Err(PartMismatch::Length { n, held, expected }) => {
            let _ = s.bucket.client.abort(key, upload_id, now).await;
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "part {n} holds {held} bytes but {expected} were declared for it; the upload was aborted"
                ),
            ))
        }
        Err(PartMismatch::Count) => {
            let count = plan.count();
            Err(ApiError::bad_request(format!(
                "the upload has {count} parts ({} bytes in parts of {}): list parts 1 to {count}",
                plan.size, plan.part_size
            )))
        }
        Err(PartMismatch::Missing(n)) => Err(ApiError::bad_request(format!(
            "part {n} has not been uploaded"
        ))),
        Err(PartMismatch::ETag(n)) => Err(ApiError::bad_request(format!(
            "part {n}'s ETag is not the stored part's: upload it again or list the parts"
        ))),
    }
}

/// Why the parts a client names cannot be joined.
#[derive(Debug, PartialEq, Eq)]
enum PartMismatch {
    /// Not every part of the plan is named.
    Count,
    /// The store has no such part.
    Missing(u32),
    /// The store holds the part with another length than planned.
    Length { n: u32, held: u64, expected: u64 },
    /// The store lists another ETag for the part than the client reported.
    ETag(u32),
}

/// Joins what a client reports (`requested`, ascending) with what the store lists: every part
/// of the plan, each of its planned length, with the client's ETag equal to the store's; the
/// store's ETags are the ones completed with. A store that lists no ETags (s3s-fs) is taken at
/// the client's word.
fn join_parts(
    plan: PartPlan,
    requested: &[(u32, String)],
    stored: &[RemotePart],
) -> Result<Vec<(u32, String)>, PartMismatch> {
    if requested.len() != plan.count() as usize {
        return Err(PartMismatch::Count);
    }
    requested
        .iter()
        .map(|(n, etag)| {
            let part = stored
                .iter()
                .find(|p| p.part_number == *n)
                .ok_or(PartMismatch::Missing(*n))?;
            let expected = plan.range(*n).len;
            if part.size != expected {
                return Err(PartMismatch::Length {
                    n: *n,
                    held: part.size,
                    expected,
                });
            }
            if part.etag.is_empty() {
                return Ok((*n, etag.clone()));
            }
            if part.etag.trim_matches('"') != etag.trim_matches('"') {
                return Err(PartMismatch::ETag(*n));
            }
            Ok((*n, part.etag.clone()))
        })
        .collect()
}

pub(super) async fn abort(req: UploadRequest) -> Result<Json<Value>, ApiError> {
    let (token, key, sealed) = req.target("multipart.abort")?;
    let (s, call) = (&req.s, &req.call);
    s.bucket
        .client
        .abort(&key, &sealed.s3_upload_id, SystemTime::now())
        .await?;
    s.audit_ok(&token, call, Granted::key(&key), "aborted");
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: u32, size: u64, etag: &str) -> RemotePart {
        RemotePart {
            part_number: n,
            etag: etag.into(),
            size,
        }
    }

    const PLAN: PartPlan = PartPlan {
        size: 12,
        part_size: 5,
    };

    #[test]
    fn parts_join_only_as_planned_and_stored() {
        let asked = |e: &str| {
            vec![
                (1, "\"a\"".to_string()),
                (2, "b".into()),
                (3, e.to_string()),
            ]
        };
        let store = [
            stored(1, 5, "\"a\""),
            stored(2, 5, "\"b\""),
            stored(3, 2, "\"c\""),
        ];
        assert_eq!(
            join_parts(PLAN, &asked("c"), &store).unwrap(),
            vec![
                (1, "\"a\"".into()),
                (2, "\"b\"".into()),
                (3, "\"c\"".into())
            ]
        );
        assert_eq!(
            join_parts(PLAN, &asked("d"), &store),
            Err(PartMismatch::ETag(3))
        );
        assert_eq!(
            join_parts(PLAN, &asked("c")[..2], &store),
            Err(PartMismatch::Count)
        );
        assert_eq!(
            join_parts(PLAN, &asked("c"), &store[..2]),
            Err(PartMismatch::Missing(3))
        );
        let long = [stored(1, 5, ""), stored(2, 5, ""), stored(3, 20, "")];
        assert_eq!(
            join_parts(PLAN, &asked("c"), &long),
            Err(PartMismatch::Length {
                n: 3,
                held: 20,
                expected: 2
            })
        );
        // A store that lists no ETags: the client's are used.
        let bare = [stored(1, 5, ""), stored(2, 5, ""), stored(3, 2, "")];
        assert_eq!(join_parts(PLAN, &asked("c"), &bare).unwrap()[2].1, "c");
    }
}
