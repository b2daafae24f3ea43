//! Staff mode over Uppy Companion's S3 protocol: the backend signs single PUTs
//! (`GET /s3/params`) and every multipart step (`/s3/multipart/...`), so large files upload in
//! parts through a backend too. The profile's URL is the backend's base (e.g.
//! `https://uploads.example.com`); redirects are never followed.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::redact::redact;
use crate::remote::http::{self, Purpose};
use crate::remote::{
    CompletedPart, Completion, MultipartApi, MultipartTarget, ObjectInfo, PartToSign,
    RemoteFailure, RemotePart,
};
use crate::retry::FailureKind;
use crate::secret::Secret;
use crate::sign::{parse_exact_url, PresignedPut, PutRequest, SignError, Signer};

/// The steps of the Companion protocol, named in every failure.
#[derive(Clone, Copy, Debug)]
enum Step {
    Params,
    Create,
    SignPart,
    ListParts,
    Complete,
    Abort,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Self::Params => "signing the upload (GET /s3/params)",
            Self::Create => "starting the multipart upload (POST /s3/multipart)",
            Self::SignPart => "signing a part (GET /s3/multipart/…/N)",
            Self::ListParts => "listing the parts (GET /s3/multipart/…)",
            Self::Complete => "completing the upload (POST /s3/multipart/…/complete)",
            Self::Abort => "aborting the upload (DELETE /s3/multipart/…)",
        }
    }
}

/// A Companion-protocol backend.
#[derive(Clone, Debug)]
pub struct CompanionClient {
    http: reqwest::Client,
    base: url::Url,
    bearer: super::Bearer,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl CompanionClient {
    /// A client of the Companion backend at `base`, sending `token` as a bearer token.
    pub fn new(base: url::Url, token: Option<Secret>) -> Result<Self, SignError> {
        let http = http::client(Purpose::Backend).map_err(SignError::Signing)?;
        Ok(Self {
            http,
            base,
            bearer: token.into(),
        })
    }

    /// This client sending `bearer` (a sign-in's access tokens) instead.
    pub fn with_bearer(mut self, bearer: super::Bearer) -> Self {
        self.bearer = bearer;
        self
    }

    /// This client through `network` (a profile's proxy and trust).
    pub fn with_network(
        mut self,
        network: &crate::remote::network::Network,
    ) -> Result<Self, SignError> {
        self.http = http::client_on(Purpose::Backend, network).map_err(SignError::Signing)?;
        Ok(self)
    }

    fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.base.as_str().trim_end_matches('/')
        )
    }

    /// Sends a request to the backend and reads its JSON answer; failures are classified like
    /// S3's (401/403/4xx permanent, 429 throttling, 5xx and network transient, 404 `NoSuchUpload`).
    async fn call(
        &self,
        step: Step,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Result<Value, RemoteFailure> {
        self.call_once(method, path_and_query, body)
            .await
            .map_err(|f| RemoteFailure {
                message: format!("Companion backend, {}: {}", step.name(), f.message),
                ..f
            })
    }

    async fn call_once(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Result<Value, RemoteFailure> {
        let build = || {
            let request = self.http.request(method.clone(), self.url(path_and_query));
            match &body {
                Some(b) => request.json(b),
                None => request,
            }
        };
        let resp = self
            .bearer
            .send(
                build,
                |e| RemoteFailure::local(sign_in_failure(&e), e.to_string()),
                |e| {
                    let explained = crate::remote::network::explain(&e, "the backend");
                    let kind = if explained.retryable {
                        FailureKind::Transient
                    } else {
                        FailureKind::Permanent
                    };
                    RemoteFailure::local(
                        kind,
                        format!("cannot reach the backend: {}", explained.message),
                    )
                },
            )
            .await?;
        let status = resp.status().as_u16();
        let retry_after = http::retry_after(resp.headers(), SystemTime::now());
        let text = resp.text().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| {
                RemoteFailure::local(
                    FailureKind::Transient,
                    format!("the backend's answer is not JSON: {e}"),
                )
            });
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(200).collect());
        let message = redact(&message);
        let (kind, code) = match status {
            300..=399 => (FailureKind::Permanent, "Redirect"),
            404 => (FailureKind::Permanent, "NoSuchUpload"),
            429 => (FailureKind::Throttling, ""),
            503 if retry_after.is_some() => (FailureKind::Throttling, ""),
            500..=599 => (FailureKind::Transient, ""),
            _ => (FailureKind::Permanent, ""),
        };
        let signed_in = self.bearer.renews();
        let advice = match status {
            300..=399 => "the backend answered with a redirect, which Hoist does not follow",
            // Already renewed once by `send`: signing in again is what is left to try.
            401 if signed_in => {
                "the backend refused the company sign-in's token, even renewed: sign in again; \
                 if it goes on, the backend does not accept this identity provider's tokens \
                 (its admin can tell why)"
            }
            401 => "the backend wants a valid bearer token: check the one stored for this profile",
            _ => "the backend refused",
        };
        let code = if status == 401 && signed_in {
            SIGN_IN_REFUSED
        } else {
            code
        };
        Err(RemoteFailure {
            kind,
            code: code.to_string(),
            status: Some(status),
            message: format!("{advice} (HTTP {status}): {message}"),
            retry_after: retry_after.filter(|_| kind == FailureKind::Throttling),
        })
    }
}

/// The failure code of a 401 to a sign-in's (renewed) token: the user is to sign in again.
const SIGN_IN_REFUSED: &str = "SignInRefused";

/// A sign-in that failed, as a failure of the step that needed it.
fn sign_in_failure(e: &super::sign_in::SignInError) -> FailureKind {
    match e {
        super::sign_in::SignInError::Unreachable(_) => FailureKind::Transient,
        _ => FailureKind::Permanent,
    }
}

fn presigned(
    url: &str,
    headers: Option<&Value>,
    key: &str,
    now: SystemTime,
    expires: u64,
) -> Result<PresignedPut, RemoteFailure> {
    let url = parse_exact_url(url).map_err(|e| {
        RemoteFailure::local(FailureKind::Permanent, format!("the backend's URL {e}"))
    })?;
    let headers = headers
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter(|(n, _)| {
                    !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("host")
                })
                .map(|(n, v)| {
                    (
                        n.to_ascii_lowercase(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(PresignedPut {
        url,
        headers,
        key: key.to_string(),
        expires_at: Some(now + Duration::from_secs(expires)),
        form: None,
        completion: None,
        ticket: None,
        landed: false,
    })
}

#[async_trait::async_trait]
impl Signer for CompanionClient {
    fn signs_remotely(&self) -> bool {
        true
    }

    async fn presign_put(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        let mut q = format!(
            "/s3/params?filename={}&type={}&size={}",
            enc(&req.file_name),
            enc(&req.content_type),
            req.size
        );
        // A Hoist extension that hoist-server signs (Companion ignores it).
        if let Some(c) = &req.checksum {
            q.push_str(&format!(
                "&checksumAlgorithm={}&checksum={}",
                c.algorithm.s3_name(),
                enc(&c.value)
            ));
        }
        // Uppy's metadata names, for the folders and the drop; the ticket of an earlier
        // answer (hoist-server signs the same key again, or says it landed).
        if let Some(path) = &req.relative_path {
            q.push_str(&format!("&metadata%5BrelativePath%5D={}", enc(path)));
        }
        if let Some(drop) = &req.drop_id {
            q.push_str(&format!("&metadata%5BdropId%5D={}", enc(drop)));
        }
        if let Some(a) = &req.assigned {
            q.push_str(&format!("&key={}&ticket={}", enc(&a.key), enc(&a.ticket)));
        }
        let v = self
            .call(Step::Params, reqwest::Method::GET, &q, None)
            .await
            .map_err(|f| match f.kind {
                FailureKind::Permanent if f.code == SIGN_IN_REFUSED => {
                    SignError::SignedOut(f.message)
                }
                FailureKind::Permanent => SignError::BackendRejected {
                    status: f.status.unwrap_or(400),
                    message: f.message,
                },
                _ => SignError::BackendUnavailable {
                    status: f.status.unwrap_or(503),
                    message: f.message,
                    retry_after: f.retry_after,
                },
            })?;
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| SignError::BadResponse("no \"url\" in the answer".into()))?;
        let expires = v.get("expires").and_then(Value::as_u64).unwrap_or(300);
        let method = v.get("method").and_then(Value::as_str).unwrap_or("PUT");
        if method.eq_ignore_ascii_case("POST") {
            return post_form(url, v.get("fields"), &req.key, now, expires);
        }
        if !method.eq_ignore_ascii_case("PUT") {
            return Err(SignError::BadResponse(format!(
                "the backend answered method {method}; Hoist uploads with a PUT or a POST form"
            )));
        }
        let key = v
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or(&req.key)
            .to_string();
        let mut p = presigned(url, v.get("headers"), &key, now, expires)
            .map_err(|f| SignError::BadResponse(f.message))?;
        p.completion = super::completion_in(&v, &self.base)?;
        p.ticket = v.get("ticket").and_then(Value::as_str).map(str::to_string);
        p.landed = v.get("landed").and_then(Value::as_bool).unwrap_or(false);
        Ok(p)
    }

    async fn complete(
        &self,
        key: &str,
        completion: &crate::sign::CompletionStep,
    ) -> Result<crate::sign::Verdict, SignError> {
        super::post_completion(&self.http, &self.bearer, completion, key).await
    }
}

/// A POST Object form from `/s3/params` (what `@uppy/companion` answers): the URL, the fields
/// to send before the file, and the key among them.
fn post_form(
    url: &str,
    fields: Option<&Value>,
    fallback_key: &str,
    now: SystemTime,
    expires: u64,
) -> Result<PresignedPut, SignError> {
    let fields = fields.and_then(Value::as_object).ok_or_else(|| {
        SignError::BadResponse("a POST upload without \"fields\" in the answer".into())
    })?;
    let form: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            (n.clone(), v)
        })
        .collect();
    let key = form
        .iter()
        .find(|(n, _)| n == "key")
        .map(|(_, k)| k.clone())
        .unwrap_or_else(|| fallback_key.to_string());
    if key.contains("${filename}") {
        return Err(SignError::BadResponse(
            "the backend's POST form leaves the key to the browser (${filename}); Hoist needs a fixed key".into(),
        ));
    }
    let mut p =
        presigned(url, None, &key, now, expires).map_err(|f| SignError::BadResponse(f.message))?;
    p.form = Some(form);
    Ok(p)
}

#[async_trait::async_trait]
impl MultipartApi for CompanionClient {
    async fn create(
        &self,
        req: &PutRequest,
        _now: SystemTime,
    ) -> Result<MultipartTarget, RemoteFailure> {
        // Uppy's metadata names: the path inside a dropped folder, and Hoist's drop id.
        let mut metadata = serde_json::Map::new();
        if let Some(path) = &req.relative_path {
            metadata.insert("relativePath".into(), Value::String(path.clone()));
        }
        if let Some(drop) = &req.drop_id {
            metadata.insert("dropId".into(), Value::String(drop.clone()));
        }
        let mut body = json!({"filename": req.file_name, "type": req.content_type, "metadata": metadata, "size": req.size, "partSize": req.part_size});
        // A Hoist extension: hoist-server creates the upload with the algorithm and then signs
        // each part's checksum (Companion ignores it).
        if let Some(c) = &req.checksum {
            body["checksumAlgorithm"] = Value::String(c.algorithm.s3_name().into());
        }
        let v = self
            .call(
                Step::Create,
                reqwest::Method::POST,
                "/s3/multipart",
                Some(body),
            )
            .await?;
        match (
            v.get("key").and_then(Value::as_str),
            v.get("uploadId").and_then(Value::as_str),
        ) {
            (Some(key), Some(id)) => Ok(MultipartTarget {
                key: key.to_string(),
                upload_id: id.to_string(),
            }),
            _ => Err(RemoteFailure::local(
                FailureKind::Permanent,
                "the backend did not return a key and an uploadId",
            )),
        }
    }

    /// The part's checksum goes along (a Hoist extension): hoist-server signs it into the
    /// URL's headers when the upload has that algorithm; Companion signs none, and the part
    /// then goes with its Content-MD5 only.
    async fn sign_part(
        &self,
        t: &MultipartTarget,
        part: &PartToSign<'_>,
        now: SystemTime,
    ) -> Result<PresignedPut, RemoteFailure> {
        let mut path = format!(
            "/s3/multipart/{}/{}?key={}",
            enc(&t.upload_id),
            part.number,
            enc(&t.key)
        );
        if let Some(c) = part.checksum {
            path.push_str(&format!("&checksum={}", enc(&c.value)));
        }
        let v = self
            .call(Step::SignPart, reqwest::Method::GET, &path, None)
            .await?;
        let url = v.get("url").and_then(Value::as_str).ok_or_else(|| {
            RemoteFailure::local(
                FailureKind::Permanent,
                "the backend did not return a part URL",
            )
        })?;
        let expires = v.get("expires").and_then(Value::as_u64).unwrap_or(300);
        presigned(url, v.get("headers"), &t.key, now, expires)
    }

    async fn list_parts(
        &self,
        t: &MultipartTarget,
        _now: SystemTime,
    ) -> Result<Vec<RemotePart>, RemoteFailure> {
        let v = self
            .call(
                Step::ListParts,
                reqwest::Method::GET,
                &format!("/s3/multipart/{}?key={}", enc(&t.upload_id), enc(&t.key)),
                None,
            )
            .await?;
        let parts = v.as_array().cloned().unwrap_or_default();
        Ok(parts
            .iter()
            .filter_map(|p| {
                Some(RemotePart {
                    part_number: p.get("PartNumber")?.as_u64()? as u32,
                    etag: p
                        .get("ETag")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    size: p.get("Size")?.as_u64()?,
                })
            })
            .collect())
    }

    async fn complete(
        &self,
        t: &MultipartTarget,
        parts: &[CompletedPart],
        whole: Option<&Checksum>,
        _now: SystemTime,
    ) -> Result<Completion, RemoteFailure> {
        let parts: Vec<Value> = parts
            .iter()
            .map(|p| {
                let mut v = json!({"PartNumber": p.number, "ETag": p.etag});
                if let Some(c) = &p.checksum {
                    v[format!("Checksum{}", c.algorithm.s3_name())] =
                        Value::String(c.value.clone());
                }
                v
            })
            .collect();
        let mut body = json!({ "parts": parts });
        if let Some(c) = whole {
            body["checksum"] = Value::String(c.value.clone());
        }
        let v = self
            .call(
                Step::Complete,
                reqwest::Method::POST,
                &format!(
                    "/s3/multipart/{}/complete?key={}",
                    enc(&t.upload_id),
                    enc(&t.key)
                ),
                Some(body),
            )
            .await?;
        // hoist-server answers the checksum the store recorded; Companion none.
        let checksum = v
            .get("checksumAlgorithm")
            .and_then(Value::as_str)
            .and_then(ChecksumAlgorithm::parse)
            .zip(v.get("checksum").and_then(Value::as_str))
            .map(|(algorithm, value)| Checksum {
                algorithm,
                value: value.to_string(),
            });
        Ok(Completion {
            etag: v
                .get("etag")
                .and_then(Value::as_str)
                .map(|e| e.trim_matches('"').to_string()),
            checksum,
            encryption: v
                .get("serverSideEncryption")
                .and_then(Value::as_str)
                .map(str::to_string),
            verdict: v
                .get("verification")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
        })
    }

    async fn abort(&self, t: &MultipartTarget, _now: SystemTime) -> Result<(), RemoteFailure> {
        self.call(
            Step::Abort,
            reqwest::Method::DELETE,
            &format!("/s3/multipart/{}?key={}", enc(&t.upload_id), enc(&t.key)),
            None,
        )
        .await
        .map(|_| ())
    }

    async fn head(
        &self,
        _key: &str,
        _now: SystemTime,
    ) -> Result<Option<ObjectInfo>, RemoteFailure> {
        Ok(None)
    }

    fn location(&self, key: &str) -> String {
        key.to_string()
    }
}
