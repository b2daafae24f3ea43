//! A file in one PUT: hashed first (SHA-256 and MD5; a small file is read once and sent from
//! the bytes read), signed afresh for every attempt, and checked against what the store says
//! it stored.

use super::attempt::{with_retry, AttemptError};
use super::digest::{read_and_digest, FileDigest};
use super::parts::FileRange;
use super::put::{baked_checksums, Answer, Payload, PutBody};
use super::types::{CheckedBy, Integrity, ProgressFn, TransferError, TransferEvent, UploadReceipt};
use super::Uploader;
use crate::checksum::ChecksumAlgorithm;
use crate::redact::redact;
use crate::remote::RemoteFailure;
use crate::sign::{PresignedPut, PutRequest, Signer};
use crate::validate::CheckedFile;

/// A file made ready for its PUT before its turn: hashed, its request built and, when the
/// signer takes a round trip, signed ahead (see `Session`). A URL signed ahead is used for
/// the first attempt only, and only while it has a minute left.
pub struct Ahead {
    digest: FileDigest,
    payload: Payload,
    request: PutRequest,
    /// Signed (or refused) ahead, for the first attempt.
    presigned: Option<Result<PresignedPut, crate::sign::SignError>>,
}

impl Ahead {
    /// What the signer is asked to sign.
    pub fn request(&self) -> &PutRequest {
        &self.request
    }

    /// The URL signed ahead for the first attempt.
    pub fn signed(&mut self, presigned: PresignedPut) {
        self.presigned = Some(Ok(presigned));
    }

    /// The backend refused this file when it was signed ahead (its policy: a type, a size):
    /// the attempt fails with that refusal instead of asking again, so one decision makes one
    /// answer (and one line in the backend's audit log). Other failures (the batch as a whole,
    /// a backend busy or out of reach) leave the attempt to ask for itself.
    pub fn refused(&mut self, refusal: crate::sign::SignError) {
        if matches!(refusal, crate::sign::SignError::BackendRejected { .. }) {
            self.presigned = Some(Err(refusal));
        }
    }

    /// What the backend assigned this file (its key and ticket) has been journaled: every
    /// later attempt asks for it again, and it is not journaled twice.
    pub fn journaled(&mut self, assigned: crate::sign::Assigned) {
        self.request.assigned = Some(assigned);
    }
}

/// Where a file goes, as far as Hoist knows before a backend answers: the key Hoist built (a
/// backend chooses its own), the file's place in a dropped folder, and what a backend assigned
/// it before a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The key Hoist built from the profile.
    pub key: String,
    /// The file's path inside the folder it was dropped in (`Photos/2026/beach.jpg`).
    pub relative_path: Option<String>,
    /// The drop it came in (its files share one id in their keys).
    pub drop_id: Option<String>,
    /// The key and ticket a backend assigned it before.
    pub assigned: Option<crate::sign::Assigned>,
}

impl Placement {
    /// A lone file going to `key`.
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            ..Default::default()
        }
    }
}

/// A URL signed ahead that would expire within this is signed again.
const AHEAD_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

impl Uploader {
    /// Uploads `file` to `key` with URLs from `signer`, in one PUT (journaling nothing).
    pub async fn upload(
        &self,
        file: &CheckedFile,
        key: &str,
        signer: &dyn Signer,
        progress: &ProgressFn,
    ) -> Result<UploadReceipt, TransferError> {
        let ahead = self
            .hash_for_put(file, &Placement::key(key), progress)
            .await?;
        self.upload_hashed(file, ahead, signer, &super::NoJournal, progress)
            .await
    }

    /// Hashes `file` for a PUT placed as `place` says (a small file is read once and kept).
    pub async fn hash_for_put(
        &self,
        file: &CheckedFile,
        place: &Placement,
        progress: &ProgressFn,
    ) -> Result<Ahead, TransferError> {
        progress(TransferEvent::Hashing { total: file.size });
        let (digest, content) = read_and_digest(file, self.checksum).await?;
        let payload = match content {
            Some(c) => Payload::Bytes(c.bytes),
            None => Payload::Range(FileRange {
                offset: 0,
                len: file.size,
            }),
        };
        let request = PutRequest {
            key: place.key.clone(),
            file_name: crate::key::sanitize_name(&file.file_name),
            content_type: file.content_type.clone(),
            size: file.size,
            sha256_b64: digest.sha256_b64(),
            md5_b64: digest.md5_b64(),
            part_size: None,
            checksum: Some(digest.checksum.clone()),
            object: self.object.headers(),
            relative_path: place.relative_path.clone(),
            drop_id: place.drop_id.clone(),
            assigned: place.assigned.clone(),
        };
        Ok(Ahead {
            digest,
            payload,
            request,
            presigned: None,
        })
    }

    /// [`Uploader::upload`] of a file already hashed (and maybe signed) by
    /// [`Uploader::hash_for_put`]. A key a backend assigns (with its ticket) goes to `journal`
    /// before a byte is sent, and every later attempt asks for that key again; a backend that
    /// finds the object already there (a resume after a crash) is taken at its word, and
    /// nothing is sent.
    pub async fn upload_hashed(
        &self,
        file: &CheckedFile,
        ahead: Ahead,
        signer: &dyn Signer,
        journal: &dyn super::Journal,
        progress: &ProgressFn,
    ) -> Result<UploadReceipt, TransferError> {
        let Ahead {
            digest,
            payload,
            request,
            presigned: signed_ahead,
        } = ahead;
        let signed_ahead = std::sync::Mutex::new(signed_ahead.filter(|p| match p {
            Ok(p) => p.expires_at.is_none_or(|t| t > self.now() + AHEAD_MARGIN),
            Err(_) => true,
        }));
        let signed_ahead = &signed_ahead;
        let request = std::sync::Mutex::new(request);
        let (request, payload) = (&request, &payload);
        let ((answer, presigned), attempts) =
            with_retry(&self.retry, Some(progress), |attempt| async move {
                // Signed afresh for every attempt (but a first one signed ahead): an expired URL
                // is never reused.
                let ahead = signed_ahead.lock().unwrap_or_else(|p| p.into_inner()).take();
                let asked = request.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let presigned = match ahead {
                    Some(answer) => answer,
                    None => signer.presign_put(&asked, self.now()).await,
                }
                .map_err(|e| {
                        if e.is_retryable() {
                            // Keeps a backend's "wait" (429, Retry-After) a pace.
                            AttemptError::Retry(RemoteFailure::from(e))
                        } else {
                            AttemptError::Fatal(e.into())
                        }
                    })?;
                // Journaled before a byte goes; `asked.assigned` is what was journaled already.
                if let Some(assigned) = presigned.assigned() {
                    if asked.assigned.as_ref() != Some(&assigned) {
                        journal.assigned(&assigned).map_err(AttemptError::Fatal)?;
                        request.lock().unwrap_or_else(|p| p.into_inner()).assigned = Some(assigned);
                    }
                }
                tracing::debug!(url = %redact(presigned.url.as_str()), key = %presigned.key, attempt, landed = presigned.landed, "signed");
                if presigned.landed {
                    return Ok((Answer::landed_before(), presigned));
                }
                progress(TransferEvent::Attempt { attempt });
                let body = PutBody {
                    file,
                    payload: payload.clone(),
                    content_type: Some(&asked.content_type),
                    md5_b64: Some(&asked.md5_b64),
                    checksum: asked.checksum.as_ref(),
                };
                let answer = self.put(body, &presigned, progress).await?;
                Ok((answer, presigned))
            })
            .await?;
        let integrity = verify_answer(&answer, &digest, &Sent::by(&presigned))?;
        // A backend that verifies what landed moves it once told: its verdict, retried like
        // the signing (a scanner that is busy answers 503).
        let verdict = match &presigned.completion {
            Some(step) => {
                let (key, step) = (&presigned.key, step);
                let (verdict, _) = with_retry(&self.retry, Some(progress), |_| async move {
                    signer.complete(key, step).await.map_err(|e| {
                        if e.is_retryable() {
                            AttemptError::Retry(RemoteFailure::from(e))
                        } else {
                            AttemptError::Fatal(e.into())
                        }
                    })
                })
                .await?;
                Some(verdict)
            }
            None => None,
        };
        progress(TransferEvent::Acknowledged { bytes: file.size });
        let mut location = presigned.url.clone();
        location.set_query(None);
        let (key, verified) = super::verdict::landed(presigned.key.clone(), verdict)?;
        let location = super::verdict::moved_location(&location, &presigned.key, &key);
        Ok(UploadReceipt {
            key,
            verified,
            size: file.size,
            sha256: Some(digest.sha256_hex()),
            etag: answer.etag,
            integrity,
            encryption: answer.encryption,
            attempts,
            location,
            bytes_sent: if presigned.landed { 0 } else { file.size },
        })
    }
}

/// What went with the bytes for the store to check.
pub(crate) struct Sent {
    /// The flexible checksum the request carried (signed), if any.
    checksum: Option<ChecksumAlgorithm>,
    /// Whether `Content-MD5` went with the bytes (not in a POST form).
    content_md5: bool,
}

impl Sent {
    pub(crate) fn by(presigned: &PresignedPut) -> Self {
        Self {
            checksum: baked_checksums(presigned)
                .find_map(|(alg, _)| ChecksumAlgorithm::parse(&alg)),
            content_md5: presigned.form.is_none(),
        }
    }
}

/// Compares what the store answered with the file's digest, and says what proved the upload:
/// a flexible checksum the store echoed, else an ETag that is the MD5, else the Content-MD5 the
/// store checked. A mismatch is an error.
pub(crate) fn verify_answer(
    answer: &Answer,
    digest: &FileDigest,
    sent: &Sent,
) -> Result<Option<Integrity>, TransferError> {
    let mut proof = None;
    for echoed in &answer.checksums {
        let ours = if echoed.algorithm == digest.checksum.algorithm {
            digest.checksum.value.clone()
        } else if echoed.algorithm == ChecksumAlgorithm::Sha256 {
            digest.sha256_b64()
        } else {
            continue;
        };
        if echoed.value != ours {
            return Err(TransferError::Integrity(format!(
                "the storage reports {} {}, the file has {ours}",
                echoed.algorithm, echoed.value
            )));
        }
        proof.get_or_insert(Integrity {
            algorithm: echoed.algorithm.name().to_string(),
            value: echoed.value.clone(),
            checked_by: match sent.checksum == Some(echoed.algorithm) {
                true => CheckedBy::Storage,
                false => CheckedBy::Hoist,
            },
        });
    }
    // An ETag is the MD5 of the content unless the object is encrypted with KMS or a
    // customer key (S3's rules), or multipart.
    let md5 = hex::encode(digest.md5);
    if let Some(etag) = &answer.etag {
        if answer.etag_is_md5 && !etag.contains('-') && etag.len() == 32 {
            if *etag != md5 {
                return Err(TransferError::Integrity(format!(
                    "S3 reports ETag {etag}, the file's MD5 is {md5}"
                )));
            }
            proof.get_or_insert(Integrity {
                algorithm: "md5".into(),
                value: md5.clone(),
                checked_by: match sent.content_md5 {
                    true => CheckedBy::Storage,
                    false => CheckedBy::Hoist,
                },
            });
        }
    }
    if proof.is_none() && sent.content_md5 {
        proof = Some(Integrity {
            algorithm: "md5".into(),
            value: md5,
            checked_by: CheckedBy::Storage,
        });
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;

    fn digest() -> FileDigest {
        FileDigest {
            sha256: [1; 32],
            md5: [2; 16],
            checksum: Checksum {
                algorithm: ChecksumAlgorithm::Crc64nvme,
                value: "AAAAAAAAAAE=".into(),
            },
            len: 1,
        }
    }

    const SIGNED_CRC: Sent = Sent {
        checksum: Some(ChecksumAlgorithm::Crc64nvme),
        content_md5: true,
    };

    #[test]
    fn an_echoed_checksum_proves_the_upload_and_a_mismatch_is_an_error() {
        let d = digest();
        let good = Answer {
            etag: Some(hex::encode([2; 16])),
            checksums: vec![d.checksum.clone()],
            etag_is_md5: true,
            encryption: None,
        };
        let proof = verify_answer(&good, &d, &SIGNED_CRC).unwrap().unwrap();
        assert_eq!(proof.algorithm, "crc64nvme");
        assert_eq!(proof.checked_by, CheckedBy::Storage);
        let bad = Answer {
            checksums: vec![Checksum {
                algorithm: ChecksumAlgorithm::Crc64nvme,
                value: "AAAAAAAAAAI=".into(),
            }],
            ..good
        };
        assert!(matches!(
            verify_answer(&bad, &d, &SIGNED_CRC),
            Err(TransferError::Integrity(_))
        ));
    }

    #[test]
    fn an_etag_that_is_an_md5_is_compared_and_otherwise_content_md5_stands() {
        let d = digest();
        let bad = Answer {
            etag: Some(hex::encode([3; 16])),
            checksums: vec![],
            etag_is_md5: true,
            encryption: None,
        };
        assert!(matches!(
            verify_answer(&bad, &d, &SIGNED_CRC),
            Err(TransferError::Integrity(_))
        ));
        let kms = Answer {
            etag_is_md5: false,
            ..bad
        };
        let proof = verify_answer(&kms, &d, &SIGNED_CRC).unwrap().unwrap();
        assert_eq!(
            (proof.algorithm.as_str(), proof.checked_by),
            ("md5", CheckedBy::Storage)
        );
        let form = Sent {
            checksum: None,
            content_md5: false,
        };
        assert_eq!(
            verify_answer(&kms, &d, &form).unwrap(),
            None,
            "nothing proved it"
        );
    }
}
