//! The bucket as the server uses it: the core's [`S3Client`] (presigned PUTs and parts for
//! clients; create, list, complete and abort sent by the server itself), its failures mapped to
//! API errors. Only PutObject and multipart operations on this one bucket are ever signed here.

use std::time::SystemTime;

use axum::http::StatusCode;
use hoist::remote::s3::S3Client;
use hoist::remote::RemoteFailure;
use hoist::sign::sigv4::SigV4Signer;

use crate::error::ApiError;

/// The bucket: its signer (for what clients send) and the core's client (for what the server
/// sends itself).
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Signs PUTs and parts for clients.
    pub signer: SigV4Signer,
    /// Create, list, complete and abort, sent by the server; its failures become [`ApiError`]s.
    pub client: S3Client,
}

impl From<RemoteFailure> for ApiError {
    fn from(f: RemoteFailure) -> Self {
        match f.code.as_str() {
            "NoSuchUpload" => ApiError::new(
                StatusCode::NOT_FOUND,
                "no such upload: it was completed or aborted",
            ),
            "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" | "InvalidRequest" => {
                ApiError::bad_request(format!("the storage refused the parts: {}", f.message))
            }
            "PreconditionFailed" => {
                ApiError::new(StatusCode::CONFLICT, "an object already exists at this key")
            }
            _ => ApiError::upstream(format!("the storage failed: {}", f.message)),
        }
    }
}

impl Bucket {
    /// The bucket `signer` signs for.
    pub fn new(signer: SigV4Signer) -> Self {
        Bucket {
            client: S3Client::new(signer.clone()),
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

    /// A presigned UploadPart URL for a client.
    pub fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u32,
        now: SystemTime,
    ) -> Result<String, ApiError> {
        self.client
            .presign_part(key, upload_id, part, &[], now)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}
