//! Uppy Companion's S3 endpoints: `GET /s3/params` for a single PUT, and
//! `/s3/multipart/...` to create, sign parts (one or a batch), list, complete and abort a
//! multipart upload. Upload ids handed out are sealed ([`crate::upload_id::UploadIds`]), so a
//! token can only continue its own upload, for its key, within the size it declared.
//!
//! One concept, one file: the Companion protocol's routes.

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
    client_checksum, declared_checksum, expires_at, header_object, named_algorithm, parse_body,
    query_map, read_body, COMPLETE_BODY_LIMIT, SIGN_BODY_LIMIT,
};
use crate::audit::Call;
use crate::error::ApiError;
use crate::policy::{self, Ask, PartPlan, Resume};
use crate::state::{header_refs, Checksums, Granted, Landing, Shared};
use crate::token::Token;
use crate::upload_id::Sealed;
use hoist::checksum::{Checksum, ChecksumAlgorithm, ChecksumFields};
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
    /// A flexible checksum algorithm (`CRC64NVME`, `CRC32C`, `CRC32`, `SHA256`; a Hoist
    /// extension): the upload is created with it, and its parts' URLs sign the checksums the
    /// client sends, so the store verifies every part and the whole object.
    #[serde(rename = "checksumAlgorithm")]
    checksum_algorithm: Option<String>,
}

/// Uppy puts the size among the file's metadata, and the path inside a dropped folder; Hoist
/// adds its drop's id.
#[derive(Debug, Default, Deserialize)]
struct Metadata {
    #[serde(rename = "relativePath")]
    relative_path: Option<String>,
    #[serde(rename = "dropId")]
    drop_id: Option<String>,
    #[serde(default, deserialize_with = "super::de::size")]
    size: Option<u64>,
    #[serde(rename = "partSize", default, deserialize_with = "super::de::size")]
    part_size: Option<u64>,
}

/// `POST /s3/multipart/:id/complete`: the parts to join and, for an upload created with a
/// full-object checksum algorithm, optionally the whole object's checksum (`checksum`).
#[derive(Debug, Deserialize)]
struct CompleteRequest {
    #[serde(default)]
    parts: Vec<CompletedPart>,
    checksum: Option<String>,
}

/// A part as the AWS SDK names it, checksums included.
#[derive(Debug, Deserialize)]
struct CompletedPart {
    #[serde(rename = "PartNumber")]
    number: u64,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(flatten)]
    checksums: ChecksumFields,
}

/// The 400 for a part URL asked without the checksum its upload's algorithm needs.
fn checksum_needed(algorithm: ChecksumAlgorithm) -> ApiError {
    ApiError::bad_request(format!(
        "this upload was created with checksumAlgorithm {}: sign each part with its checksum \
         (GET /s3/multipart/ID/N?key=KEY&checksum=BASE64)",
        algorithm.s3_name()
    ))
}

pub(super) async fn params(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "companion.params").await?;
    let token = &*token;
    let q = query_map(q);
    // Hoist sends `size`; Uppy, where it sends one, `metadata[size]`.
    let declared = q.get("size").or_else(|| q.get("metadata[size]"));
    let size = policy::json_size(declared.map(|v| Value::String(v.clone())).as_ref())?;
    // Uppy sends its metadata as `metadata[name]`; Hoist sends the same names.
    let meta = |name: &str| {
        q.get(&format!("metadata[{name}]"))
            .or_else(|| q.get(name))
            .map(String::as_str)
    };
    // Hoist declares `size` and takes a PUT (its checksums go in the headers). A browser says
    // no size of its own (Uppy's `metadata[size]` at most) and gets a POST form: Uppy 6 can
    // send nothing else, and the form's length range bounds what the store takes.
    let form = !q.contains_key("size")
        && !q.contains_key("ticket")
        && !q.contains_key("checksumAlgorithm");
    let ask = Ask {
        relative_path: meta("relativePath"),
        drop_id: meta("dropId"),
        bounded_elsewhere: form,
        resume: q
            .get("key")
            .zip(q.get("ticket"))
            .map(|(key, ticket)| Resume {
                key: key.as_str(),
                ticket: ticket.as_str(),
            }),
        ..Ask::file(
            q.get("filename").map(String::as_str),
            q.get("type").map(String::as_str),
            size,
        )
    };
    if form {
        let (plan, p) = s.sign_form(token, &call, &ask).await?;
        let fields = header_object(p.form.as_deref().unwrap_or_default());
        let mut answer = json!({
            "method": "POST",
            "url": p.url.as_str(),
            "fields": fields,
            "headers": {},
            "key": plan.key,
            "expiresAt": expires_at(&p),
        });
        if let Some(c) = s.completion(token, &plan, None) {
            answer["complete"] = c;
        }
        return Ok(Json(answer));
    }
    // A Hoist extension: `checksumAlgorithm` and `checksum` are signed, so the store verifies
    // the body against them.
    let flexible = declared_checksum(
        q.get("checksumAlgorithm").map(String::as_str),
        q.get("checksum").map(String::as_str),
    )?;
    let checksums = Checksums {
        flexible: flexible.as_ref(),
        md5_b64: None,
    };
    let (plan, p, landing) = s.sign_single(token, &call, &ask, checksums).await?;
    let mut answer = json!({
        "method": "PUT",
        "url": p.url.as_str(),
        "fields": {},
        "headers": header_object(&p.headers),
        "key": plan.key,
        "expiresAt": expires_at(&p),
        "ticket": s.ticket(token, &plan),
    });
    if landing == Landing::Landed {
        answer["landed"] = Value::Bool(true);
    }
    // A Hoist extension (Uppy ignores it): the completion step of a verified upload.
    if let Some(c) = s.completion(token, &plan, flexible.as_ref()) {
        answer["complete"] = c;
    }
    Ok(Json(answer))
}

pub(super) async fn create(
    State(s): State<Shared>,
    Extension(call): Extension<Call>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let token = s.admit(&headers, &call, "multipart.create").await?;
    let token = &*token;
    let req: CreateRequest = parse_body(&read_body(body, SIGN_BODY_LIMIT).await?)?;
    let ask = Ask {
        relative_path: req.metadata.relative_path.as_deref(),
        drop_id: req.metadata.drop_id.as_deref(),
        ..Ask::file(
            req.filename.as_deref(),
            req.content_type.as_deref(),
            req.size.or(req.metadata.size),
        )
    };
    let plan = s.plan(token, &call, &ask, true)?;
    s.limiter
        .check_file(token, plan.size, std::time::Instant::now())
        .await?;
    // A file of a drop gets the same key each time it is asked: a create asked again (the
    // client crashed, or its answer was lost, before it journaled the first) supersedes the
    // unfinished upload the first one left.
    if ask.drop_id.is_some() {
        s.supersede_unfinished(&plan.key).await;
    }
    let parts = plan
        .size
        .map(|size| policy::part_plan(size, req.part_size.or(req.metadata.part_size)))
        .transpose()?;
    let checksum = named_algorithm(req.checksum_algorithm.as_deref())?;
    call.key(&plan.key);
    let object = s.object_headers(&plan);
    let mut headers = header_refs(&object);
    if let Some(a) = checksum {
        headers.push(("x-amz-checksum-algorithm", a.s3_name()));
        headers.push((
            "x-amz-checksum-type",
            if a.full_object() {
                "FULL_OBJECT"
            } else {
                "COMPOSITE"
            },
        ));
    }
    let s3_id = s
        .bucket
        .client
        .create_multipart_with(&plan.key, &headers, SystemTime::now())
        .await?;
    let upload_id = s.ids.seal(&token.id, &plan.key, parts, checksum, &s3_id);
    s.audit_ok(token, &call, Granted::plan(&plan), "created");
    let mut answer = json!({ "key": plan.key, "uploadId": upload_id, "bucket": s.bucket.name() });
    if let Some(a) = checksum {
        answer["checksumAlgorithm"] = Value::String(a.s3_name().into());
    }
    Ok(Json(answer))
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
        Ok(Self {
            s: std::sync::Arc::clone(s),
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
    async fn target(&self, action: &'static str) -> Result<(Token, String, Sealed), ApiError> {
        let token = self.s.admit(&self.headers, &self.call, action).await?;
        let token = &*token;
        let key = self
            .query
            .get("key")
            .ok_or_else(|| ApiError::bad_request("the key query parameter is required"))?;
        self.call.key(key);
        self.s.check_key(token, key)?;
        let upload_id = self
            .params
            .get("upload_id")
            .map(String::as_str)
            .unwrap_or("");
        let sealed = self.s.ids.open(&token.id, key, upload_id)?;
        // A ticket or a single PUT's receipt is sealed the same way, but names no upload.
        if sealed.s3_upload_id == crate::placement::TICKET
            || sealed.s3_upload_id.starts_with(crate::state::SINGLE_PUT)
        {
            return Err(ApiError::forbidden("not a multipart upload id"));
        }
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
    let (_, key, sealed) = req.target("multipart.sign-part").await?;
    let s = &req.s;
    let raw_part = req
        .params
        .get("part_number")
        .map(String::as_str)
        .unwrap_or("");
    let n = part_number(raw_part, &sealed)?;
    // A part checksum is signed for an upload created with an algorithm (and ignored
    // otherwise, as Companion ignores it: S3 refuses part checksums such an upload lacks).
    // Such an upload needs one on every part (Garage refuses a part without).
    let checksum = match (sealed.checksum, req.query.get("checksum")) {
        (Some(a), Some(v)) => Some(client_checksum(Some(a), v, "checksum")?),
        (Some(a), None) => return Err(checksum_needed(a)),
        (None, _) => None,
    };
    let p = s
        .bucket
        .presign_part(&key, &sealed, n, checksum.as_ref(), SystemTime::now())?;
    Ok(Json(json!({
        "url": p.url,
        "headers": header_object(&p.headers),
        "expires": s.bucket.signer.expires_in().as_secs(),
    })))
}

pub(super) async fn sign_batch(req: UploadRequest) -> Result<Json<Value>, ApiError> {
    let (_, key, sealed) = req.target("multipart.sign-batch").await?;
    let s = &req.s;
    if let Some(a) = sealed.checksum {
        return Err(checksum_needed(a));
    }
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
            Value::String(s.bucket.presign_part(&key, &sealed, n, None, now)?.url),
        );
    }
    Ok(Json(json!({ "presignedUrls": urls })))
}

pub(super) async fn list_parts(req: UploadRequest) -> Result<Json<Value>, ApiError> {
    let (_, key, sealed) = req.target("multipart.list").await?;
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

/// What a Complete names: (part number, ETag) in order, and the checksums by part number.
type RequestedParts = (Vec<(u32, String)>, BTreeMap<u32, Checksum>);

/// The parts a Complete names: 1 to 10,000 of them, ascending, none repeated; with their
/// checksums when the upload has an algorithm (by part number).
fn requested_parts(
    req: &CompleteRequest,
    algorithm: Option<ChecksumAlgorithm>,
) -> Result<RequestedParts, ApiError> {
    if req.parts.is_empty() {
        return Err(ApiError::bad_request(
            "parts must be a non-empty list of {PartNumber, ETag}",
        ));
    }
    let mut checksums = BTreeMap::new();
    let mut parts = Vec::with_capacity(req.parts.len());
    for p in &req.parts {
        let n = match p.number {
            n @ 1..=10_000 => n as u32,
            _ => {
                return Err(ApiError::bad_request(
                    "each part needs a PartNumber in 1..=10000 and an ETag",
                ))
            }
        };
        if let Some(v) = algorithm.and_then(|a| p.checksums.get(a)) {
            checksums.insert(
                n,
                client_checksum(algorithm, v, &format!("part {n}'s checksum"))?,
            );
        }
        parts.push((n, p.etag.clone()));
    }
    if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ApiError::bad_request(
            "parts must be in ascending PartNumber order without repeats",
        ));
    }
    Ok((parts, checksums))
}

pub(super) async fn complete(req: UploadRequest, body: Body) -> Result<Json<Value>, ApiError> {
    let (token, key, sealed) = req.target("multipart.complete").await?;
    let (s, call) = (&req.s, &req.call);
    let body: CompleteRequest = parse_body(&read_body(body, COMPLETE_BODY_LIMIT).await?)?;
    let (mut requested, checksums) = requested_parts(&body, sealed.checksum)?;
    // S3 verifies a full-object checksum given at Complete against the parts it holds.
    let whole = match (&body.checksum, sealed.checksum) {
        (Some(v), Some(a)) if a.full_object() => Some(client_checksum(Some(a), v, "checksum")?),
        _ => None,
    };
    let now = SystemTime::now();
    let completed = async {
        if let Some(plan) = sealed.parts {
            requested = stored_parts(s, &key, &sealed.s3_upload_id, plan, &requested, now).await?;
        }
        let parts: Vec<hoist::remote::CompletedPart> = requested
            .into_iter()
            .map(|(number, etag)| hoist::remote::CompletedPart {
                number,
                etag,
                checksum: checksums.get(&number).cloned(),
            })
            .collect();
        Ok::<_, ApiError>(
            s.bucket
                .client
                .complete_with(
                    &key,
                    &sealed.s3_upload_id,
                    &parts,
                    whole.as_ref(),
                    !s.policy.allow_overwrite,
                    now,
                )
                .await?,
        )
    }
    .await;
    let done = match completed {
        Ok(done) => done,
        // Completed before, its answer lost (or its verification failed on the way): the
        // verification below gives the verdict on what is there.
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND && s.verifier.is_some() => {
            hoist::remote::Completion::default()
        }
        // Completed before, and the client crashed or lost the answer: the object of the
        // declared size is there, so Complete says so again (a client resuming after a crash
        // must not send the file a second time under another key).
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            match s.bucket.client.head_with_checksum(&key, now).await? {
                Some(info) if sealed.parts.is_none_or(|p| p.size == info.size) => {
                    hoist::remote::Completion {
                        etag: Some(info.etag),
                        checksum: info.checksum,
                        ..Default::default()
                    }
                }
                _ => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    s.audit_ok(
        &token,
        call,
        Granted {
            size: sealed.parts.map(|p| p.size),
            ..Granted::key(&key)
        },
        "completed",
    );
    let verdict = s
        .verify(
            &token,
            call,
            crate::verify::Expected {
                key: &key,
                size: sealed.parts.map(|p| p.size),
                // S3 checked the parts' checksums and the whole object's at Complete.
                checksum: None,
            },
            None,
        )
        .await?;
    let landed = match &verdict {
        Some(
            crate::verify::Verdict::Verified { key }
            | crate::verify::Verdict::Quarantined { key, .. },
        ) => key.clone(),
        None => key.clone(),
    };
    let mut answer = json!({ "location": s.bucket.location(&landed), "key": landed, "bucket": s.bucket.name(), "etag": done.etag });
    if let Some(v) = verdict {
        answer["verification"] = serde_json::to_value(v).unwrap_or(Value::Null);
    }
    if let Some(c) = done.checksum {
        answer["checksumAlgorithm"] = Value::String(c.algorithm.s3_name().into());
        answer["checksum"] = Value::String(c.value);
    }
    if let Some(e) = done.encryption {
        answer["serverSideEncryption"] = Value::String(e);
    }
    Ok(Json(answer))
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
    let (token, key, sealed) = req.target("multipart.abort").await?;
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
