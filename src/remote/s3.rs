//! Self-signed S3: [`S3Client`], the calls Hoist and hoist-server make themselves — multipart create, list,
//! complete, abort, HEAD and the listing of unfinished uploads — each presigned with
//! [`SigV4Signer`] and sent with redirects off. [`S3Client`] is the self-sign implementation
//! of the [`MultipartApi`] contract.
//!
//! One concept, one file: the S3 calls Hoist signs itself.

use std::time::{Duration, SystemTime};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::failure::{classify_response, network_failure_for};
use super::http::{self, Purpose};
use super::network::AddressSetIn;
use super::network::Network;
use super::{
    CompletedPart, Completion, MultipartApi, MultipartTarget, ObjectInfo, PartToSign,
    RemoteFailure, RemotePart,
};
use crate::checksum::Checksum;
use crate::retry::FailureKind;
use crate::sign::sigv4::SigV4Signer;
use crate::sign::{PresignedPut, PutRequest, SignError};

const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How long a URL signed for one of Hoist's own calls lives.
const CALL_EXPIRY: Duration = Duration::from_secs(60);

/// An answer that is not the XML it should be: worth another try (a proxy's page, a cut-off
/// body), and said as such.
fn bad_answer(e: super::xml::XmlError) -> RemoteFailure {
    RemoteFailure::local(FailureKind::Transient, e.to_string())
}

/// The largest object one CopyObject copies.
const MAX_COPY_OBJECT: u64 = 5 * 1024 * 1024 * 1024;
/// The part size of a copy in parts.
const COPY_PART: u64 = 512 * 1024 * 1024;
fn q(v: &str) -> String {
    utf8_percent_encode(v, QUERY).to_string()
}

pub use super::xml::PendingUpload;

/// S3 calls signed with SigV4.
#[derive(Clone, Debug)]
pub struct S3Client {
    signer: SigV4Signer,
    http: reqwest::Client,
    /// Whose setting a network failure's advice names.
    address_set_in: AddressSetIn,
}

impl S3Client {
    /// A client signing with `signer`.
    pub fn new(signer: SigV4Signer) -> Self {
        // reqwest fails to build a client only when its TLS backend cannot start, which no input
        // or network can cause; the default client then stops with reqwest's own message.
        let http = http::client(Purpose::S3Call).unwrap_or_default();
        Self {
            signer,
            http,
            address_set_in: AddressSetIn::Profile,
        }
    }

    /// This client for a server whose config sets the store's address: network failures
    /// advise checking that, not a profile.
    pub fn for_server_config(mut self) -> Self {
        self.address_set_in = AddressSetIn::ServerConfig;
        self
    }

    fn network_failure(&self, e: reqwest::Error) -> RemoteFailure {
        network_failure_for(e, self.address_set_in)
    }

    /// This client through `network` (a profile's proxy and trust).
    pub fn with_network(mut self, network: &Network) -> Result<Self, String> {
        self.http = http::client_on(Purpose::S3Call, network)?;
        Ok(self)
    }

    /// The HTTP client (the profile's proxy and trust).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The signer (bucket, region, endpoint, credentials).
    pub fn signer(&self) -> &SigV4Signer {
        &self.signer
    }

    /// A presigned UploadPart URL; `headers` (e.g. `content-md5`, `content-length`) are signed.
    pub fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Result<String, SignError> {
        let query = format!("partNumber={part}&uploadId={}", q(upload_id));
        self.presign_multipart("PUT", key, &query, headers, now)
    }

    /// A presigned URL for a browser to send one multipart call itself (Uppy 6's
    /// `signRequest`): `query` names the call (`uploads=`, `uploadId=…`, its values not yet
    /// encoded but `upload_id` through [`Self::upload_id_query`]); `headers` are signed.
    pub fn presign_multipart(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Result<String, SignError> {
        let url = format!("{}?{query}", self.signer.object_url(key));
        let mut sorted = headers.to_vec();
        sorted.sort();
        self.signer
            .presign(method, &url, &sorted, self.signer.expires_in(), now)
    }

    /// `uploadId=…`, encoded for a query.
    pub fn upload_id_query(upload_id: &str) -> String {
        format!("uploadId={}", q(upload_id))
    }

    async fn call(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
        now: SystemTime,
    ) -> Result<(reqwest::header::HeaderMap, String), RemoteFailure> {
        let resp = self.send(method, key, query, headers, body, now).await?;
        let resp_headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| self.network_failure(e))?;
        // CompleteMultipartUpload may answer 200 with an <Error> body: that is a failure.
        if super::xml::error(&text).is_none() {
            return Ok((resp_headers, text));
        }
        Err(classify_response(500, &resp_headers, &text, now))
    }

    /// A signed request; its answer when it succeeded (the caller reads the body), else the
    /// failure classified.
    async fn send(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
        now: SystemTime,
    ) -> Result<reqwest::Response, RemoteFailure> {
        let base = self.signer.object_url(key);
        let url = if query.is_empty() {
            base
        } else {
            format!("{base}?{query}")
        };
        let signed = self
            .signer
            .presign(method, &url, headers, CALL_EXPIRY, now)?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| RemoteFailure::local(FailureKind::Permanent, e.to_string()))?;
        let mut req = self.http.request(method, signed);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.map_err(|e| self.network_failure(e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let resp_headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| self.network_failure(e))?;
        Err(classify_response(status, &resp_headers, &text, now))
    }

    /// CreateMultipartUpload; returns the upload id.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        now: SystemTime,
    ) -> Result<String, RemoteFailure> {
        self.create_multipart_with(key, &[("content-type", content_type)], now)
            .await
    }

    /// CreateMultipartUpload with these headers signed and sent (the object's content type,
    /// disposition, …); returns the upload id.
    pub async fn create_multipart_with(
        &self,
        key: &str,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Result<String, RemoteFailure> {
        let (_, text) = self
            .call("POST", key, "uploads=", headers, None, now)
            .await?;
        super::xml::upload_id(&text).map_err(|e| {
            RemoteFailure::local(
                FailureKind::Transient,
                format!("the storage did not return an upload id: {e}"),
            )
        })
    }

    /// ListParts, every page, sorted by part number.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
        now: SystemTime,
    ) -> Result<Vec<RemotePart>, RemoteFailure> {
        let mut parts = Vec::new();
        let mut marker = 0u32;
        loop {
            let query = format!("part-number-marker={marker}&uploadId={}", q(upload_id));
            let (_, text) = self.call("GET", key, &query, &[], None, now).await?;
            let page = super::xml::parts_page(&text).map_err(bad_answer)?;
            parts.extend(page.parts);
            match page.next_marker {
                Some(n) if n > marker => marker = n,
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// CompleteMultipartUpload with `(part number, ETag)` in ascending order; returns the ETag.
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        if_none_match: bool,
        now: SystemTime,
    ) -> Result<Option<String>, RemoteFailure> {
        let parts: Vec<CompletedPart> = parts
            .iter()
            .map(|(number, etag)| CompletedPart {
                number: *number,
                etag: etag.clone(),
                checksum: None,
            })
            .collect();
        let done = self
            .complete_with(key, upload_id, &parts, None, if_none_match, now)
            .await?;
        Ok(done.etag)
    }

    /// CompleteMultipartUpload with parts (ascending) and their checksums, and, for a
    /// full-object checksum, the whole object's (`x-amz-checksum-*`, which the store verifies).
    pub async fn complete_with(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        whole: Option<&Checksum>,
        if_none_match: bool,
        now: SystemTime,
    ) -> Result<Completion, RemoteFailure> {
        let clean = |v: &str| v.trim_matches('"').replace(['<', '>', '&', '"'], "");
        let mut body = String::from("<CompleteMultipartUpload>");
        for p in parts {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag>",
                p.number,
                clean(&p.etag)
            ));
            if let Some(c) = &p.checksum {
                let element = format!("Checksum{}", c.algorithm.s3_name());
                body.push_str(&format!("<{element}>{}</{element}>", clean(&c.value)));
            }
            body.push_str("</Part>");
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut headers = vec![("content-type", "application/xml")];
        if if_none_match {
            headers.push(("if-none-match", "*"));
        }
        if let Some(c) = whole {
            headers.push((c.algorithm.header(), c.value.as_str()));
            headers.push(("x-amz-checksum-type", "FULL_OBJECT"));
        }
        let query = format!("uploadId={}", q(upload_id));
        let (answer_headers, text) = self
            .call("POST", key, &query, &headers, Some(body), now)
            .await?;
        let mut completion = super::xml::completed(&text).map_err(bad_answer)?;
        completion.encryption = answer_headers
            .get("x-amz-server-side-encryption")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(completion)
    }

    /// AbortMultipartUpload.
    pub async fn abort(
        &self,
        key: &str,
        upload_id: &str,
        now: SystemTime,
    ) -> Result<(), RemoteFailure> {
        let query = format!("uploadId={}", q(upload_id));
        self.call("DELETE", key, &query, &[], None, now)
            .await
            .map(|_| ())
    }

    /// DeleteObject; returns the server's clock from the answer's `Date` header, if it sent one.
    pub async fn delete_object(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<SystemTime>, RemoteFailure> {
        let (headers, _) = self.call("DELETE", key, "", &[], None, now).await?;
        Ok(headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok()))
    }

    /// HEAD of an object: `None` when there is none.
    pub async fn head(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<ObjectInfo>, RemoteFailure> {
        self.head_asking(key, &[], now).await
    }

    /// HEAD of an object with its checksum (`x-amz-checksum-mode: ENABLED`). Some stores
    /// refuse a presigned HEAD that asks for it (LocalStack answers 403, Garage 400, neither
    /// with a code: docs/INTEROP.md): then a plain HEAD, and the object without a checksum.
    pub async fn head_with_checksum(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<Option<ObjectInfo>, RemoteFailure> {
        match self
            .head_asking(key, &[("x-amz-checksum-mode", "ENABLED")], now)
            .await
        {
            Err(f) if matches!(f.status, Some(400 | 403)) && f.code.is_empty() => {
                self.head(key, now).await
            }
            other => other,
        }
    }

    async fn head_asking(
        &self,
        key: &str,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Result<Option<ObjectInfo>, RemoteFailure> {
        match self.call("HEAD", key, "", headers, None, now).await {
            Ok((headers, _)) => {
                let get = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                Ok(Some(ObjectInfo {
                    size: get("content-length").parse().unwrap_or(0),
                    etag: get("etag").trim_matches('"').to_string(),
                    content_type: get("content-type"),
                    checksum: crate::checksum::ChecksumAlgorithm::ALL
                        .iter()
                        .find_map(|a| {
                            let v = get(a.header());
                            Checksum::parse(*a, &v)
                        }),
                }))
            }
            Err(f) if f.is_not_found() => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// GetObject of bytes `first..=last` (fewer when the object is shorter).
    pub async fn get_range(
        &self,
        key: &str,
        first: u64,
        last: u64,
        now: SystemTime,
    ) -> Result<bytes::Bytes, RemoteFailure> {
        let range = format!("bytes={first}-{last}");
        let resp = self
            .send("GET", key, "", &[("range", &range)], None, now)
            .await?;
        resp.bytes().await.map_err(|e| self.network_failure(e))
    }

    /// GetObject, its body streamed.
    pub async fn get(
        &self,
        key: &str,
        now: SystemTime,
    ) -> Result<reqwest::Response, RemoteFailure> {
        self.send("GET", key, "", &[], None, now).await
    }

    /// PutObject of a small body (a note beside an object).
    pub async fn put_small(
        &self,
        key: &str,
        body: String,
        content_type: &str,
        now: SystemTime,
    ) -> Result<(), RemoteFailure> {
        self.call(
            "PUT",
            key,
            "",
            &[("content-type", content_type)],
            Some(body),
            now,
        )
        .await
        .map(|_| ())
    }

    /// Copies object `from` (of `size` bytes) to `to` in this bucket, its type, metadata and
    /// tags with it; `headers` are the destination's settings a copy does not carry over
    /// (encryption, storage class). Up to 5 GiB in one CopyObject, beyond in parts
    /// (UploadPartCopy), as S3 requires.
    ///
    /// With `source_etag`, the store copies only while the source still has that ETag
    /// (`x-amz-copy-source-if-match`, on every part of a large copy too): a source replaced
    /// since it was read fails with `PreconditionFailed` instead of being copied.
    pub async fn copy_object(
        &self,
        from: &str,
        to: &str,
        size: u64,
        source_etag: Option<&str>,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Result<(), RemoteFailure> {
        // `/bucket/key`, the key URL-encoded with its slashes kept.
        let source = format!(
            "/{}/{}",
            self.signer.bucket(),
            crate::key::encode_path(from)
        );
        let mut conditions = vec![("x-amz-copy-source", source.as_str())];
        if let Some(etag) = source_etag {
            conditions.push(("x-amz-copy-source-if-match", etag));
        }
        if size <= MAX_COPY_OBJECT {
            let mut all = conditions.clone();
            all.extend_from_slice(headers);
            return self.call("PUT", to, "", &all, None, now).await.map(|_| ());
        }
        let head = self.head(from, now).await?.ok_or_else(|| {
            RemoteFailure::local(FailureKind::Permanent, format!("{from} is gone"))
        })?;
        let mut create = vec![("content-type", head.content_type.as_str())];
        create.extend_from_slice(headers);
        let upload_id = self.create_multipart_with(to, &create, now).await?;
        let mut parts = Vec::new();
        let mut first = 0u64;
        while first < size {
            let last = (first + COPY_PART - 1).min(size - 1);
            let number = parts.len() as u32 + 1;
            let range = format!("bytes={first}-{last}");
            let query = format!("partNumber={number}&uploadId={}", q(&upload_id));
            let mut part_headers = conditions.clone();
            part_headers.push(("x-amz-copy-source-range", range.as_str()));
            let copied = self.call("PUT", to, &query, &part_headers, None, now).await;
            let etag = match copied
                .and_then(|(_, text)| super::xml::copy_part_etag(&text).map_err(bad_answer))
            {
                Ok(etag) => etag,
                Err(e) => {
                    let _ = self.abort(to, &upload_id, now).await;
                    return Err(e);
                }
            };
            parts.push(CompletedPart {
                number,
                etag,
                checksum: None,
            });
            first = last + 1;
        }
        if let Err(e) = self
            .complete_with(to, &upload_id, &parts, None, false, now)
            .await
        {
            let _ = self.abort(to, &upload_id, now).await;
            return Err(e);
        }
        Ok(())
    }

    /// ListMultipartUploads under `prefix`, every page.
    pub async fn list_multipart_uploads(
        &self,
        prefix: &str,
        now: SystemTime,
    ) -> Result<Vec<PendingUpload>, RemoteFailure> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        loop {
            let mut query = format!("prefix={}&uploads=", q(prefix));
            if !key_marker.is_empty() {
                query = format!(
                    "key-marker={}&prefix={}&upload-id-marker={}&uploads=",
                    q(&key_marker),
                    q(prefix),
                    q(&id_marker)
                );
            }
            let (_, text) = self.call_bucket("GET", &query, now).await?;
            let page = super::xml::uploads_page(&text).map_err(bad_answer)?;
            out.extend(page.uploads);
            match page.next {
                Some((next_key, next_id)) if next_key != key_marker => {
                    (key_marker, id_marker) = (next_key, next_id);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// ListObjectsV2 under `prefix`, every page.
    pub async fn list_objects(
        &self,
        prefix: &str,
        now: SystemTime,
    ) -> Result<Vec<super::xml::ListedObject>, RemoteFailure> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let query = match &token {
                Some(t) => format!(
                    "continuation-token={}&list-type=2&prefix={}",
                    q(t),
                    q(prefix)
                ),
                None => format!("list-type=2&prefix={}", q(prefix)),
            };
            let (_, text) = self.call_bucket("GET", &query, now).await?;
            let page = super::xml::objects_page(&text).map_err(bad_answer)?;
            out.extend(page.objects);
            match page.next {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }

    /// A request on the bucket itself (no key).
    async fn call_bucket(
        &self,
        method: &str,
        query: &str,
        now: SystemTime,
    ) -> Result<(reqwest::header::HeaderMap, String), RemoteFailure> {
        let base = self.signer.object_url("");
        let url = format!("{base}?{query}");
        let signed = self.signer.presign(method, &url, &[], CALL_EXPIRY, now)?;
        // The method sent is the one signed (a HEAD signed and sent as GET would not verify).
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| RemoteFailure::local(FailureKind::Permanent, e.to_string()))?;
        let resp = self
            .http
            .request(method, signed)
            .send()
            .await
            .map_err(|e| self.network_failure(e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| self.network_failure(e))?;
        if status.is_success() {
            Ok((headers, text))
        } else {
            Err(classify_response(status.as_u16(), &headers, &text, now))
        }
    }
}

/// Self-signed multipart: Hoist signs every call with SigV4.
#[async_trait::async_trait]
impl MultipartApi for S3Client {
    async fn create(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<MultipartTarget, RemoteFailure> {
        let mut headers = vec![("content-type", req.content_type.as_str())];
        headers.extend(req.object.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        if let Some(c) = &req.checksum {
            headers.push(("x-amz-checksum-algorithm", c.algorithm.s3_name()));
            headers.push((
                "x-amz-checksum-type",
                if c.algorithm.full_object() {
                    "FULL_OBJECT"
                } else {
                    "COMPOSITE"
                },
            ));
        }
        let upload_id = self.create_multipart_with(&req.key, &headers, now).await?;
        Ok(MultipartTarget {
            key: req.key.clone(),
            upload_id,
        })
    }

    async fn sign_part(
        &self,
        target: &MultipartTarget,
        part: &PartToSign<'_>,
        now: SystemTime,
    ) -> Result<PresignedPut, RemoteFailure> {
        let len = part.len.to_string();
        let mut signed = vec![("content-length", len.as_str())];
        if let Some(m) = part.md5_b64 {
            signed.push(("content-md5", m));
        }
        if let Some(c) = part.checksum {
            signed.push((c.algorithm.header(), c.value.as_str()));
        }
        let url = self.presign_part(&target.key, &target.upload_id, part.number, &signed, now)?;
        let url = url::Url::parse(&url)
            .map_err(|e| RemoteFailure::local(FailureKind::Permanent, e.to_string()))?;
        Ok(PresignedPut {
            url,
            headers: signed
                .iter()
                .filter(|(n, _)| *n != "content-length")
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            key: target.key.clone(),
            expires_at: Some(now + self.signer().expires_in()),
            form: None,
            completion: None,
            ticket: None,
            landed: false,
        })
    }

    async fn list_parts(
        &self,
        target: &MultipartTarget,
        now: SystemTime,
    ) -> Result<Vec<RemotePart>, RemoteFailure> {
        Self::list_parts(self, &target.key, &target.upload_id, now).await
    }

    async fn complete(
        &self,
        target: &MultipartTarget,
        parts: &[CompletedPart],
        whole: Option<&Checksum>,
        now: SystemTime,
    ) -> Result<Completion, RemoteFailure> {
        self.complete_with(&target.key, &target.upload_id, parts, whole, false, now)
            .await
    }

    async fn abort(&self, target: &MultipartTarget, now: SystemTime) -> Result<(), RemoteFailure> {
        Self::abort(self, &target.key, &target.upload_id, now).await
    }

    async fn head(&self, key: &str, now: SystemTime) -> Result<Option<ObjectInfo>, RemoteFailure> {
        Self::head(self, key, now).await
    }

    fn location(&self, key: &str) -> String {
        self.signer().object_url(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, code: &str, message: &str) -> RemoteFailure {
        let body = format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>");
        classify_response(
            status,
            &reqwest::header::HeaderMap::new(),
            &body,
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn classifies_s3_errors_like_the_sdks() {
        assert_eq!(classify(503, "SlowDown", "").kind, FailureKind::Throttling);
        assert_eq!(classify(429, "", "").kind, FailureKind::Throttling);
        assert_eq!(
            classify(500, "InternalError", "").kind,
            FailureKind::Transient
        );
        assert_eq!(
            classify(400, "RequestTimeout", "").kind,
            FailureKind::Transient
        );
        assert_eq!(
            classify(403, "AccessDenied", "Request has expired").kind,
            FailureKind::Expired
        );
        assert_eq!(classify(400, "ExpiredToken", "").kind, FailureKind::Expired);
        let f = classify(403, "SignatureDoesNotMatch", "x");
        assert_eq!(f.kind, FailureKind::Permanent);
        assert_eq!(f.code, "SignatureDoesNotMatch");
        assert!(
            f.message.contains("does not match its signature"),
            "{}",
            f.message
        );
        assert_eq!(
            classify(301, "PermanentRedirect", "").kind,
            FailureKind::Permanent
        );
        assert_eq!(classify(400, "BadDigest", "").kind, FailureKind::Transient);
        // Regression (Garage, interop): its checksum mismatch is InvalidDigest, and was taken
        // for a permanent failure.
        assert_eq!(
            classify(400, "InvalidDigest", "").kind,
            FailureKind::Transient
        );
        // Found by scripts/interop (s3s-fs offers no STANDARD_IA): the message names the fix.
        let f = classify(400, "InvalidStorageClass", "");
        assert_eq!(f.kind, FailureKind::Permanent);
        assert!(f.message.contains("storage class"), "{}", f.message);
        assert_eq!(
            classify(501, "NotImplemented", "").kind,
            FailureKind::Permanent
        );
    }
}
