//! The embedded store's UploadPart, checked as S3 checks it. s3s-fs hashes a part only for its
//! ETag: it verifies neither the part's `Content-MD5` nor its `x-amz-checksum-*`, and answers no
//! checksum. Here both are verified against the bytes as they stream in — a mismatch is refused
//! with `BadDigest` before the part replaces anything — and the checksum is answered, as S3
//! answers it. So the embedded default proves every part as S3 does, and a client needs no MD5
//! there either. ListParts answers each part's ETag (the MD5 of its bytes, as UploadPart
//! answered it), which s3s-fs leaves out and resuming clients such as Uppy match parts by.
//! A POST form is answered with its `ETag` and `Location`, as S3 answers it. Every other
//! operation is s3s-fs's own.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{s3_error, S3Request, S3Response, S3Result, StdError, S3};

use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumHasher};

/// s3s-fs with UploadPart checked (unless `check` is off: s3s-fs as it is).
pub(crate) struct CheckedParts {
    inner: s3s_fs::FileSystem,
    check: bool,
    /// The store's root, where s3s-fs keeps a part as `.upload_id-{id}.part-{n}`.
    root: PathBuf,
}

impl CheckedParts {
    pub(crate) fn new(inner: s3s_fs::FileSystem, check: bool, root: &Path) -> Self {
        Self {
            inner,
            check,
            root: root.to_path_buf(),
        }
    }
}

/// The URL of the object a request was sent for, as S3 answers it in `Location`: the request's
/// own URL, or for a POST form (sent to the bucket) the bucket's URL and the form's `key`.
fn object_location(
    headers: &hyper::HeaderMap,
    uri: &hyper::Uri,
    form_key: Option<&str>,
) -> Option<String> {
    let host = headers.get(hyper::header::HOST)?.to_str().ok()?;
    Some(match form_key {
        Some(key) => format!(
            "http://{host}{}/{}",
            uri.path().trim_end_matches('/'),
            crate::key::encode_path(key)
        ),
        None => format!("http://{host}{}", uri.path()),
    })
}

/// The ETag UploadPart gave the part in `path`: the hex MD5 of its bytes.
fn part_etag(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut md5 = Md5::new();
    let mut buf = vec![0; 256 * 1024];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(hex::encode(md5.finalize())),
            n => md5.update(&buf[..n]),
        }
    }
}

/// What a part's bytes came to, once they have all streamed through.
#[derive(Default)]
struct Outcome {
    /// Which digest did not match (`Content-MD5`, `CRC64NVME`, …).
    mismatch: Option<String>,
    /// The checksum computed, when one was asked for.
    checksum: Option<Checksum>,
}

/// A part's body, hashed as it passes; at its end the digests are compared, and a mismatch
/// ends the stream with an error, so the store keeps nothing of it.
struct Checked {
    inner: StreamingBlob,
    md5: Option<(Md5, String)>,
    checksum: Option<(ChecksumHasher, Checksum)>,
    outcome: Arc<Mutex<Outcome>>,
    ended: bool,
}

impl Checked {
    /// Compares what streamed with what the request said; `Err` names the digest that differs.
    fn verdict(&mut self) -> Result<Option<Checksum>, String> {
        if let Some((md5, expected)) = self.md5.take() {
            use base64::Engine as _;
            if base64::engine::general_purpose::STANDARD.encode(md5.finalize()) != expected {
                return Err("Content-MD5".into());
            }
        }
        match self.checksum.take() {
            Some((hasher, expected)) => {
                let got = hasher.finish();
                if got != expected {
                    return Err(expected.algorithm.s3_name().into());
                }
                Ok(Some(got))
            }
            None => Ok(None),
        }
    }
}

impl Stream for Checked {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some((md5, _)) = self.md5.as_mut() {
                    md5.update(&bytes);
                }
                if let Some((hasher, _)) = self.checksum.as_mut() {
                    hasher.update(&bytes);
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(None) => {
                self.ended = true;
                let verdict = self.verdict();
                let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
                match verdict {
                    Ok(checksum) => {
                        outcome.checksum = checksum;
                        Poll::Ready(None)
                    }
                    Err(what) => {
                        outcome.mismatch = Some(what.clone());
                        Poll::Ready(Some(Err(
                            format!("the part does not match its {what}").into()
                        )))
                    }
                }
            }
            other => other,
        }
    }
}

impl ByteStream for Checked {
    fn remaining_length(&self) -> RemainingLength {
        self.inner.remaining_length()
    }
}

/// The flexible checksum a request carries (`x-amz-checksum-*`), when it is one Hoist knows.
fn requested_checksum(input: &UploadPartInput) -> Option<Checksum> {
    [
        (ChecksumAlgorithm::Crc64nvme, &input.checksum_crc64nvme),
        (ChecksumAlgorithm::Crc32c, &input.checksum_crc32c),
        (ChecksumAlgorithm::Crc32, &input.checksum_crc32),
        (ChecksumAlgorithm::Sha256, &input.checksum_sha256),
    ]
    .into_iter()
    .find_map(|(algorithm, v)| {
        v.as_ref().map(|value| Checksum {
            algorithm,
            value: value.clone(),
        })
    })
}

#[async_trait::async_trait]
impl S3 for CheckedParts {
    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let checksum = requested_checksum(&req.input);
        let md5 = req.input.content_md5.clone();
        let body = match req.input.body.take() {
            Some(body) if self.check => body,
            body => {
                req.input.body = body;
                return self.inner.upload_part(req).await;
            }
        };
        if let Some(c) = &checksum {
            if Checksum::parse(c.algorithm, &c.value).is_none() {
                return Err(s3_error!(
                    InvalidDigest,
                    "The {} you specified is not valid.",
                    c.algorithm.s3_name()
                ));
            }
        }
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        req.input.body = Some(StreamingBlob::new(Checked {
            inner: body,
            md5: md5.map(|m| (Md5::new(), m)),
            checksum: checksum.map(|c| (c.algorithm.hasher(), c)),
            outcome: Arc::clone(&outcome),
            ended: false,
        }));
        let answer = self.inner.upload_part(req).await;
        let outcome = std::mem::take(&mut *outcome.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(what) = outcome.mismatch {
            return Err(s3_error!(
                BadDigest,
                "The {what} you specified did not match the calculated checksum."
            ));
        }
        let mut answer = answer?;
        if let Some(c) = outcome.checksum {
            let out = &mut answer.output;
            match c.algorithm {
                ChecksumAlgorithm::Crc64nvme => out.checksum_crc64nvme = Some(c.value),
                ChecksumAlgorithm::Crc32c => out.checksum_crc32c = Some(c.value),
                ChecksumAlgorithm::Crc32 => out.checksum_crc32 = Some(c.value),
                ChecksumAlgorithm::Sha256 => out.checksum_sha256 = Some(c.value),
            }
        }
        Ok(answer)
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }
    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.inner.copy_object(req).await
    }
    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }
    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }
    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.inner.delete_objects(req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.inner.get_object(req).await
    }
    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }
    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.inner.head_object(req).await
    }
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }
    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.inner.list_objects(req).await
    }
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }
    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.inner.put_object(req).await
    }
    /// S3 answers a POST form with the object's `ETag` and `Location`; s3s answers 204 with
    /// neither, and Uppy waits for the `ETag` for ever.
    async fn post_object(
        &self,
        req: S3Request<PostObjectInput>,
    ) -> S3Result<S3Response<PostObjectOutput>> {
        let location = object_location(&req.headers, &req.uri, Some(&req.input.key));
        let mut answer = self.inner.post_object(req).await?;
        let etag = answer
            .output
            .e_tag
            .as_ref()
            .map(|e| format!("\"{}\"", e.value()));
        for (name, value) in [
            (hyper::header::ETAG, etag),
            (hyper::header::LOCATION, location),
        ] {
            if let Some(v) = value.and_then(|v| hyper::header::HeaderValue::from_str(&v).ok()) {
                answer.headers.insert(name, v);
            }
        }
        Ok(answer)
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.inner.create_multipart_upload(req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.inner.upload_part_copy(req).await
    }
    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let id = uuid::Uuid::parse_str(&req.input.upload_id).ok();
        let mut answer = self.inner.list_parts(req).await?;
        let (Some(id), Some(parts)) = (id, answer.output.parts.take()) else {
            return Ok(answer);
        };
        let root = self.root.clone();
        let parts = tokio::task::spawn_blocking(move || {
            let mut parts = parts;
            parts.sort_by_key(|p| p.part_number);
            for part in &mut parts {
                let Some(n) = part.part_number else { continue };
                let path = root.join(format!(".upload_id-{id}.part-{n}"));
                // A part aborted meanwhile has no file: it is listed without an ETag.
                part.e_tag = part_etag(&path).ok().map(ETag::Strong);
            }
            parts
        })
        .await
        .map_err(|e| s3_error!(InternalError, "cannot read the parts: {e}"))?;
        answer.output.parts = Some(parts);
        Ok(answer)
    }
    /// S3 answers a Complete with the object's `Location`; s3s-fs leaves it out, and Uppy 6
    /// takes an answer without it for a failure.
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let location = object_location(&req.headers, &req.uri, None);
        let mut answer = self.inner.complete_multipart_upload(req).await?;
        // s3s-fs answers through a future (S3 keeps the connection alive while it joins).
        match answer.output.future.take() {
            Some(joined) => {
                answer.output.future = Some(Box::pin(async move {
                    let mut output = joined.await?;
                    output.location = output.location.or(location);
                    Ok(output)
                }));
            }
            None => answer.output.location = answer.output.location.take().or(location),
        }
        Ok(answer)
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.inner.abort_multipart_upload(req).await
    }
}
