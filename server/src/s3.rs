//! The bucket as the server uses it: the core's [`S3Client`] (presigned PUTs and parts for
//! clients; create, list, complete and abort sent by the server itself), its failures mapped to
//! API errors. Only PutObject and multipart operations on this one bucket are ever signed here.

use std::time::SystemTime;

use axum::http::StatusCode;
use hoist::remote::s3::S3Client;
use hoist::remote::RemoteFailure;
use hoist::sign::sigv4::SigV4Signer;

use crate::error::ApiError;
use crate::upload_id::Sealed;
use hoist::checksum::Checksum;

/// The bucket: its signer (for what clients send) and the core's client (for what the server
/// sends itself).
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Signs PUTs and parts for clients.
    pub signer: SigV4Signer,
    /// Create, list, complete and abort, sent by the server; its failures become [`ApiError`]s.
    pub client: S3Client,
}

/// A storage failure as a client sees it: what happened, by S3's error code, never S3's own
/// text (which can carry ARNs and account ids); that goes to the server's log.
impl From<RemoteFailure> for ApiError {
    fn from(f: RemoteFailure) -> Self {
        tracing::warn!(code = %f.code, status = ?f.status, message = %f.message, "storage call failed");
        let code = if f.code.is_empty() {
            "no error code"
        } else {
            f.code.as_str()
        };
        match f.code.as_str() {
            "NoSuchUpload" => Self::new(
                StatusCode::NOT_FOUND,
                "no such upload: it was completed or aborted",
            ),
            "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "InvalidRequest" => {
                Self::bad_request(format!(
                    "the storage refused the parts ({code}): check the part numbers, ETags and sizes"
                ))
            }
            "PreconditionFailed" => {
                Self::new(StatusCode::CONFLICT, "an object already exists at this key")
            }
            _ => Self::upstream(format!(
                "the storage failed ({code}); the server's log has the details"
            )),
        }
    }
}

impl Bucket {
    /// The bucket `signer` signs for.
    pub fn new(signer: SigV4Signer) -> Self {
        Self {
            client: S3Client::new(signer.clone()).for_server_config(),
            signer,
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        self.signer.bucket()
    }

    /// The object URL without a signature.
    pub fn location(&self, key: &str) -> String {
        self.signer.object_url(key)
    }

    /// A presigned UploadPart URL for a client: for a declared size, it signs the part's exact
    /// `Content-Length`, so the store refuses any other body, and the part's checksum when the
    /// client sent one (the store then verifies it). Returns the URL and the headers to send.
    pub fn presign_part(
        &self,
        key: &str,
        upload: &Sealed,
        part: u32,
        checksum: Option<&Checksum>,
        now: SystemTime,
    ) -> Result<SignedPart, ApiError> {
        let len = upload.part_len(part).map(|l| l.to_string());
        let mut signed: Vec<(&str, &str)> =
            len.iter().map(|l| ("content-length", l.as_str())).collect();
        let mut headers = Vec::new();
        if let Some(c) = checksum {
            signed.push((c.algorithm.header(), c.value.as_str()));
            headers.push((c.algorithm.header().to_string(), c.value.clone()));
        }
        let url = self
            .client
            .presign_part(key, &upload.s3_upload_id, part, &signed, now)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(SignedPart { url, headers })
    }
}

/// A part URL and the headers a client must send with it (those signed beside the length).
#[derive(Debug)]
pub struct SignedPart {
    /// The presigned URL.
    pub url: String,
    /// Signed headers the client sends (its checksum).
    pub headers: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist::retry::FailureKind;

    /// Regression (security review): S3's error text, which can name ARNs and account ids, was
    /// returned to clients.
    #[test]
    fn storage_error_text_stays_on_the_server() {
        let f = RemoteFailure {
            kind: FailureKind::Permanent,
            code: "AccessDenied".into(),
            status: Some(403),
            message: "User: arn:aws:iam::123456789012:user/uploader is not authorized".into(),
            retry_after: None,
        };
        let e = ApiError::from(f);
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert!(
            !e.message.contains("arn:") && !e.message.contains("123456789012"),
            "{}",
            e.message
        );
        assert!(e.message.contains("AccessDenied"), "{}", e.message);
    }
}
