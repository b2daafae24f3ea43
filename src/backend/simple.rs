//! Staff mode: a company backend signs each upload.
//!
//! Protocol `simple` (the seed's API route): `POST <url>` with JSON
//! `{"fileName", "contentType", "size", "checksumAlgorithm", "checksum", "contentMd5"}` (and
//! `checksumSha256` when the algorithm is SHA-256, as older backends read it) and, when the
//! profile has one, `Authorization: Bearer <token>`. The answer is `{"url"}` plus optionally `method` (must be
//! `PUT`), `headers` (sent with the body), `key` and `expiresAt` (RFC 3339 or Unix seconds).
//! A backend that reads only `fileName` and returns only `{url}` works unchanged.
//! Hoist also sends `relativePath` and `dropId` for a file of a dropped folder, and, for a file
//! resumed after a crash, `resume: {key, ticket}` from the earlier answer's `key` and `ticket`:
//! hoist-server then signs the same key again, or answers `landed: true` (nothing to send).
//! Files signed ahead of sending go in batches, `POST <url>/batch {"files": [...]}` answered
//! `{"uploads": [...]}` in order (hoist-server offers it); a backend that answers 404 or 405
//! there is asked one file a request from then on.
//! Redirects are never followed, so the token cannot reach another host.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::checksum::ChecksumAlgorithm;
use crate::redact::redact;
use crate::remote::http::{self, Purpose};
use crate::secret::Secret;
use crate::sign::{parse_exact_url, PresignedPut, PutRequest, SignError, Signer};

/// Signs through a `simple`-protocol backend: one `POST` per file.
#[derive(Clone, Debug)]
pub struct BackendSigner {
    client: reqwest::Client,
    url: url::Url,
    bearer: super::Bearer,
    /// The backend answered a batch 404/405: sign one file a request.
    no_batch: std::sync::Arc<AtomicBool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SimpleRequest<'a> {
    file_name: &'a str,
    content_type: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_algorithm: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum_sha256: Option<&'a str>,
    content_md5: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    relative_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<ResumeTicket<'a>>,
}

/// A key a backend assigned before, asked for again.
#[derive(Serialize)]
struct ResumeTicket<'a> {
    key: &'a str,
    ticket: &'a str,
}

impl<'a> SimpleRequest<'a> {
    fn of(req: &'a PutRequest) -> Self {
        SimpleRequest {
            file_name: &req.file_name,
            content_type: &req.content_type,
            size: req.size,
            checksum_algorithm: req.checksum.as_ref().map(|c| c.algorithm.s3_name()),
            checksum: req.checksum.as_ref().map(|c| c.value.as_str()),
            // One flexible checksum per request (S3 refuses two): the SHA-256 field only
            // repeats it for backends that know no other.
            checksum_sha256: match &req.checksum {
                Some(c) if c.algorithm == ChecksumAlgorithm::Sha256 => Some(c.value.as_str()),
                Some(_) => None,
                None => Some(req.sha256_b64.as_str()),
            },
            content_md5: &req.md5_b64,
            relative_path: req.relative_path.as_deref(),
            drop_id: req.drop_id.as_deref(),
            resume: req.assigned.as_ref().map(|a| ResumeTicket {
                key: &a.key,
                ticket: &a.ticket,
            }),
        }
    }
}

/// A request to the backend that failed before it answered.
fn unreached(e: &reqwest::Error) -> SignError {
    let explained = crate::remote::network::explain(e, "the backend");
    if explained.retryable {
        SignError::BackendUnreachable(explained.message)
    } else {
        SignError::BackendBlocked(explained.message)
    }
}

impl BackendSigner {
    /// A signer that asks the backend at `url`, sending `token` as a bearer token.
    pub fn new(url: url::Url, token: Option<Secret>) -> Result<Self, SignError> {
        let client = http::client(Purpose::Backend).map_err(SignError::Signing)?;
        Ok(Self {
            client,
            url,
            bearer: token.into(),
            no_batch: Default::default(),
        })
    }

    /// This signer sending `bearer` (a sign-in's access tokens) instead.
    pub fn with_bearer(mut self, bearer: super::Bearer) -> Self {
        self.bearer = bearer;
        self
    }

    /// This signer through `network` (a profile's proxy and trust).
    pub fn with_network(
        mut self,
        network: &crate::remote::network::Network,
    ) -> Result<Self, SignError> {
        self.client = http::client_on(Purpose::Backend, network).map_err(SignError::Signing)?;
        Ok(self)
    }
}

#[async_trait::async_trait]
impl Signer for BackendSigner {
    async fn presign_put(
        &self,
        req: &PutRequest,
        _now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        let body = SimpleRequest::of(req);
        let resp = self
            .bearer
            .send(
                || self.client.post(self.url.clone()).json(&body),
                SignError::from,
                |e| unreached(&e),
            )
            .await?;
        let status = resp.status();
        let retry_after = http::retry_after(resp.headers(), SystemTime::now());
        let text = resp.text().await.map_err(|e| unreached(&e))?;
        if status.is_redirection() {
            return Err(SignError::BackendRedirect {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(self
                .bearer
                .refusal(status.as_u16(), error_message(&text), retry_after));
        }
        let mut presigned = parse_simple_answer(&text)?;
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            presigned.completion = super::completion_in(&v, &self.url)?;
        }
        Ok(presigned)
    }

    fn signs_remotely(&self) -> bool {
        true
    }

    async fn presign_many(
        &self,
        reqs: &[PutRequest],
        now: SystemTime,
    ) -> Vec<Result<PresignedPut, SignError>> {
        if reqs.len() < 2 || self.no_batch.load(Ordering::Relaxed) {
            return crate::sign::presign_each(self, reqs, now).await;
        }
        match self.presign_batch(reqs).await {
            Ok(answers) => answers,
            Err(BatchRefused::NotOffered) => {
                tracing::debug!("the backend signs no batches: one request a file from now on");
                self.no_batch.store(true, Ordering::Relaxed);
                crate::sign::presign_each(self, reqs, now).await
            }
            Err(BatchRefused::Failed(e)) => {
                let message = e.to_string();
                reqs.iter()
                    .map(|_| Err(SignError::BadResponse(message.clone())))
                    .collect()
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        completion: &crate::sign::CompletionStep,
    ) -> Result<crate::sign::Verdict, SignError> {
        super::post_completion(&self.client, &self.bearer, completion, key).await
    }
}

/// Why a batch brought no answers.
enum BatchRefused {
    /// The backend has no batch endpoint (404, 405): sign one file a request.
    NotOffered,
    /// The request failed as a whole.
    Failed(SignError),
}

impl BackendSigner {
    /// `POST <url>/batch {"files": [...]}`: every request signed in one round trip (see
    /// hoist-server's `routes::simple`), answers in order.
    async fn presign_batch(
        &self,
        reqs: &[PutRequest],
    ) -> Result<Vec<Result<PresignedPut, SignError>>, BatchRefused> {
        let mut url = self.url.clone();
        let path = format!("{}/batch", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let files: Vec<SimpleRequest<'_>> = reqs.iter().map(SimpleRequest::of).collect();
        let body = serde_json::json!({ "files": files });
        let resp = self
            .bearer
            .send(
                || self.client.post(url.clone()).json(&body),
                SignError::from,
                |e| unreached(&e),
            )
            .await
            .map_err(BatchRefused::Failed)?;
        let status = resp.status();
        if matches!(status.as_u16(), 404 | 405) {
            return Err(BatchRefused::NotOffered);
        }
        let retry_after = http::retry_after(resp.headers(), SystemTime::now());
        let text = resp
            .text()
            .await
            .map_err(|e| BatchRefused::Failed(unreached(&e)))?;
        if !status.is_success() {
            return Err(BatchRefused::Failed(self.bearer.refusal(
                status.as_u16(),
                error_message(&text),
                retry_after,
            )));
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| BatchRefused::Failed(SignError::BadResponse(format!("not JSON ({e})"))))?;
        let uploads = v
            .get("uploads")
            .and_then(|u| u.as_array())
            .filter(|u| u.len() == reqs.len())
            .ok_or_else(|| {
                BatchRefused::Failed(SignError::BadResponse(
                    "the batch answer has no \"uploads\" for every file".into(),
                ))
            })?;
        Ok(uploads
            .iter()
            .map(|one| {
                if let Some(status) = one.get("status").and_then(|s| s.as_u64()) {
                    let status = u16::try_from(status).unwrap_or(500);
                    let message = one
                        .get("error")
                        .and_then(|m| m.as_str())
                        .map_or_else(|| "no reason given".into(), redact);
                    let retry_after = one
                        .get("retryAfter")
                        .and_then(|s| s.as_u64())
                        .map(Duration::from_secs);
                    return Err(self.bearer.refusal(status, message, retry_after));
                }
                let mut presigned = parse_simple_value(one)?;
                presigned.completion = super::completion_in(one, &self.url)?;
                Ok(presigned)
            })
            .collect())
    }
}

/// The `error` (or `message`) field of a JSON error body, else the start of the body.
pub(crate) fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_string))
        });
    let msg = from_json.unwrap_or_else(|| body.chars().take(200).collect());
    let msg = redact(msg.trim());
    if msg.is_empty() {
        "no reason given".into()
    } else {
        msg
    }
}

fn parse_simple_answer(text: &str) -> Result<PresignedPut, SignError> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| SignError::BadResponse(format!("not JSON ({e})")))?;
    parse_simple_value(&v)
}

fn parse_simple_value(v: &serde_json::Value) -> Result<PresignedPut, SignError> {
    let raw_url = v
        .get("url")
        .and_then(|u| u.as_str())
        .ok_or_else(|| SignError::BadResponse("no \"url\" in the answer".into()))?;
    let url =
        parse_exact_url(raw_url).map_err(|e| SignError::BadResponse(format!("the URL {e}")))?;
    if let Some(m) = v.get("method").and_then(|m| m.as_str()) {
        if !m.eq_ignore_ascii_case("PUT") {
            return Err(SignError::BadResponse(format!(
                "method {m} is not supported by the simple protocol (only PUT)"
            )));
        }
    }
    let mut headers = Vec::new();
    if let Some(h) = v.get("headers").and_then(|h| h.as_object()) {
        for (name, value) in h {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // Hoist sets the length from the file itself.
            if !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("host") {
                headers.push((name.to_ascii_lowercase(), value));
            }
        }
    }
    let key = match v.get("key").and_then(|k| k.as_str()) {
        Some(k) => k.to_string(),
        None => key_from_url(&url),
    };
    let expires_at = match v.get("expiresAt") {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
        Some(serde_json::Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(SystemTime::from)
        }
        _ => None,
    }
    .or_else(|| expiry_from_query(&url));
    Ok(PresignedPut {
        url,
        headers,
        key,
        expires_at,
        form: None,
        completion: None,
        ticket: v.get("ticket").and_then(|t| t.as_str()).map(str::to_string),
        landed: v.get("landed").and_then(|l| l.as_bool()).unwrap_or(false),
    })
}

/// Best effort when the backend does not say: the decoded URL path.
fn key_from_url(url: &url::Url) -> String {
    let path = url.path().trim_start_matches('/');
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// `X-Amz-Date` + `X-Amz-Expires` of a SigV4 presigned URL.
fn expiry_from_query(url: &url::Url) -> Option<SystemTime> {
    let mut date = None;
    let mut expires = None;
    for (k, v) in url.query_pairs() {
        if k.eq_ignore_ascii_case("x-amz-date") {
            date = Some(v.into_owned());
        } else if k.eq_ignore_ascii_case("x-amz-expires") {
            expires = v.parse::<u64>().ok();
        }
    }
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed = time::PrimitiveDateTime::parse(&date?, &fmt)
        .ok()?
        .assume_utc();
    Some(SystemTime::from(signed) + Duration::from_secs(expires?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_bare_url_answer() {
        let p = parse_simple_answer(
            r#"{"url":"https://b.s3.amazonaws.com/uploads/x.png?X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-Signature=s"}"#,
        )
        .unwrap();
        assert_eq!(p.key, "uploads/x.png");
        assert!(p.headers.is_empty());
        assert_eq!(
            p.expires_at,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 60))
        );
    }

    #[test]
    fn reads_the_full_answer() {
        let p = parse_simple_answer(
            r#"{"url":"https://h/k","method":"PUT","headers":{"Content-Type":"image/png","Content-Length":"9"},"key":"k","expiresAt":"2026-01-01T00:15:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            p.headers,
            vec![("content-type".to_string(), "image/png".to_string())]
        );
        assert_eq!(p.key, "k");
        assert!(p.expires_at.is_some());
    }

    #[test]
    fn refuses_unusable_answers() {
        for bad in [
            "not json",
            r#"{"nourl":1}"#,
            r#"{"url":"https://h/a/../b"}"#,
            r#"{"url":"https://h/k","method":"POST"}"#,
        ] {
            assert!(
                matches!(parse_simple_answer(bad), Err(SignError::BadResponse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_messages_come_from_json_and_are_redacted() {
        assert_eq!(
            error_message(r#"{"error":"type not allowed"}"#),
            "type not allowed"
        );
        assert_eq!(
            error_message("see http://h/k?X-Amz-Signature=abc"),
            "see http://h/k?X-Amz-Signature=[redacted]"
        );
    }
}
