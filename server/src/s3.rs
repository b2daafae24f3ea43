//! The bucket as the server uses it: presigned PUTs and parts for clients, and the multipart
//! calls the server makes itself (create, list, complete, abort) — each a request presigned with
//! the core's SigV4 signer and sent with redirects off. Only PutObject and multipart operations on
//! this one bucket are ever signed here.

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use hoist::redact::redact;
use hoist::sign::sigv4::SigV4Signer;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::ApiError;

const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How long a URL the server signs for its own call lives.
const SELF_CALL_EXPIRY: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Part {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "Size")]
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Bucket {
    pub signer: SigV4Signer,
    client: reqwest::Client,
}

fn q(v: &str) -> String {
    utf8_percent_encode(v, QUERY).to_string()
}

fn xml_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].trim())
}

impl Bucket {
    pub fn new(signer: SigV4Signer) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Bucket { signer, client }
    }

    pub fn name(&self) -> &str {
        self.signer.bucket()
    }

    /// The object URL without a signature.
    pub fn location(&self, key: &str) -> String {
        self.signer.object_url(key)
    }

    /// A presigned UploadPart URL for a client.
    pub fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let url = format!(
            "{}?partNumber={part}&uploadId={}",
            self.signer.object_url(key),
            q(upload_id)
        );
        self.signer
            .presign("PUT", &url, &[], self.signer.expires_in(), now)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    async fn call(
        &self,
        method: &str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let url = format!("{}?{query}", self.signer.object_url(key));
        let signed = self
            .signer
            .presign(method, &url, headers, SELF_CALL_EXPIRY, now)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let mut req = self.client.request(method, signed);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.map_err(|e| {
            ApiError::upstream(format!(
                "storage unreachable: {}",
                redact(&e.without_url().to_string())
            ))
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| {
            ApiError::upstream(format!(
                "storage answer lost: {}",
                redact(&e.without_url().to_string())
            ))
        })?;
        // CompleteMultipartUpload may answer 200 with an <Error> body.
        let error_in_body = text.contains("<Error>");
        if status.is_success() && !error_in_body {
            return Ok(text);
        }
        let code = xml_text(&text, "Code").unwrap_or("");
        let message = redact(xml_text(&text, "Message").unwrap_or(""));
        Err(match code {
            "NoSuchUpload" => ApiError::new(
                StatusCode::NOT_FOUND,
                "no such upload: it was completed or aborted",
            ),
            "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" => {
                ApiError::bad_request(format!("the storage refused the parts ({code}): {message}"))
            }
            "PreconditionFailed" => {
                ApiError::new(StatusCode::CONFLICT, "an object already exists at this key")
            }
            _ => ApiError::upstream(format!(
                "the storage answered HTTP {} {code}: {message}",
                status.as_u16()
            )),
        })
    }

    /// CreateMultipartUpload; returns S3's upload id.
    pub async fn create_multipart(
        &self,
        key: &str,
        content_type: &str,
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let text = self
            .call(
                "POST",
                key,
                "uploads=",
                &[("content-type", content_type)],
                None,
                now,
            )
            .await?;
        xml_text(&text, "UploadId")
            .map(str::to_string)
            .ok_or_else(|| ApiError::upstream("the storage did not return an upload id"))
    }

    /// ListParts, following pagination.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
        now: SystemTime,
    ) -> Result<Vec<Part>, ApiError> {
        let mut parts = Vec::new();
        let mut marker = 0u32;
        loop {
            let query = format!("part-number-marker={marker}&uploadId={}", q(upload_id));
            let text = self.call("GET", key, &query, &[], None, now).await?;
            for block in text.split("<Part>").skip(1) {
                let part_number = xml_text(block, "PartNumber").and_then(|n| n.parse().ok());
                let etag = xml_text(block, "ETag")
                    .map(|e| e.replace("&quot;", "\"").trim_matches('"').to_string());
                let size = xml_text(block, "Size").and_then(|n| n.parse().ok());
                // Some S3-compatible stores (s3s-fs) list parts without an ETag.
                if let (Some(part_number), Some(size)) = (part_number, size) {
                    parts.push(Part {
                        part_number,
                        etag: etag.map(|e| format!("\"{e}\"")).unwrap_or_default(),
                        size,
                    });
                }
            }
            let truncated = xml_text(&text, "IsTruncated") == Some("true");
            let next = xml_text(&text, "NextPartNumberMarker").and_then(|n| n.parse().ok());
            match (truncated, next) {
                (true, Some(n)) if n > marker => marker = n,
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }

    /// CompleteMultipartUpload with the given parts (ascending).
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        if_none_match: bool,
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (n, etag) in parts {
            let etag = etag.trim_matches('"').replace(['<', '>', '&'], "");
            body.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>\"{etag}\"</ETag></Part>"
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let mut headers = vec![("content-type", "application/xml")];
        if if_none_match {
            headers.push(("if-none-match", "*"));
        }
        let query = format!("uploadId={}", q(upload_id));
        self.call("POST", key, &query, &headers, Some(body), now)
            .await
            .map(|_| ())
    }

    /// AbortMultipartUpload.
    pub async fn abort(&self, key: &str, upload_id: &str, now: SystemTime) -> Result<(), ApiError> {
        let query = format!("uploadId={}", q(upload_id));
        self.call("DELETE", key, &query, &[], None, now)
            .await
            .map(|_| ())
    }
}
