//! A file in one PUT: hashed first (SHA-256 and MD5; a small file is read once and sent from
//! the bytes read), signed afresh for every attempt, and checked against what the store says
//! it stored.

use super::attempt::{with_retry, AttemptError};
use super::digest::{hex, read_and_digest, FileDigest};
use super::parts::FileRange;
use super::put::{Answer, Payload, PutBody};
use super::types::{ProgressFn, TransferError, TransferEvent, UploadReceipt};
use super::Uploader;
use crate::redact::redact;
use crate::remote::RemoteFailure;
use crate::retry::FailureKind;
use crate::sign::{PutRequest, Signer};
use crate::validate::CheckedFile;

impl Uploader {
    /// Uploads `file` to `key` with URLs from `signer`, in one PUT.
    pub async fn upload(
        &self,
        file: &CheckedFile,
        key: &str,
        signer: &dyn Signer,
        progress: &ProgressFn,
    ) -> Result<UploadReceipt, TransferError> {
        progress(TransferEvent::Hashing { total: file.size });
        let (digest, content) = read_and_digest(file).await?;
        let payload = match content {
            Some(c) => Payload::Bytes(c.bytes),
            None => Payload::Range(FileRange {
                offset: 0,
                len: file.size,
            }),
        };
        let request = PutRequest {
            key: key.to_string(),
            file_name: crate::key::sanitize_name(&file.file_name),
            content_type: file.content_type.clone(),
            size: file.size,
            sha256_b64: digest.sha256_b64(),
            md5_b64: digest.md5_b64(),
            part_size: None,
        };
        let (request, payload) = (&request, &payload);
        let ((answer, presigned), attempts) =
            with_retry(&self.retry, Some(progress), |attempt| async move {
                // Signed afresh for every attempt: an expired URL is never reused.
                let presigned = signer
                    .presign_put(request, self.now())
                    .await
                    .map_err(|e| {
                        if e.is_retryable() {
                            AttemptError::Retry(RemoteFailure::local(
                                FailureKind::Transient,
                                e.to_string(),
                            ))
                        } else {
                            AttemptError::Fatal(e.into())
                        }
                    })?;
                tracing::debug!(url = %redact(presigned.url.as_str()), key = %presigned.key, attempt, "signed");
                progress(TransferEvent::Attempt { attempt });
                let body = PutBody {
                    file,
                    payload: payload.clone(),
                    content_type: Some(&request.content_type),
                    md5_b64: &request.md5_b64,
                };
                let answer = self.put(body, &presigned, progress).await?;
                Ok((answer, presigned))
            })
            .await?;
        verify_answer(&answer, &digest)?;
        progress(TransferEvent::Acknowledged { bytes: file.size });
        let mut location = presigned.url.clone();
        location.set_query(None);
        Ok(UploadReceipt {
            key: presigned.key,
            size: file.size,
            sha256: digest.sha256_hex(),
            etag: answer.etag,
            attempts,
            location: location.to_string(),
            bytes_sent: file.size,
        })
    }
}

/// Compares what the store answered with the file's digest.
fn verify_answer(answer: &Answer, digest: &FileDigest) -> Result<(), TransferError> {
    if let Some(c) = &answer.checksum_sha256 {
        if *c != digest.sha256_b64() {
            return Err(TransferError::Integrity(format!(
                "S3 reports SHA-256 {c}, the file has {}",
                digest.sha256_b64()
            )));
        }
    }
    // An ETag is the MD5 of the content unless the object is encrypted with KMS or a
    // customer key (S3's rules), or multipart.
    if let Some(etag) = &answer.etag {
        if answer.etag_is_md5
            && !etag.contains('-')
            && etag.len() == 32
            && *etag != hex(&digest.md5)
        {
            return Err(TransferError::Integrity(format!(
                "S3 reports ETag {etag}, the file's MD5 is {}",
                hex(&digest.md5)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_mismatch_is_an_error() {
        let digest = FileDigest {
            sha256: [1; 32],
            md5: [2; 16],
            len: 1,
        };
        let good = Answer {
            etag: Some(hex(&[2; 16])),
            checksum_sha256: Some(digest.sha256_b64()),
            etag_is_md5: true,
        };
        assert!(verify_answer(&good, &digest).is_ok());
        let bad = Answer {
            etag: Some(hex(&[3; 16])),
            checksum_sha256: None,
            etag_is_md5: true,
        };
        assert!(matches!(
            verify_answer(&bad, &digest),
            Err(TransferError::Integrity(_))
        ));
    }
}
