//! Reading and hashing files: a file's SHA-256, MD5 and checksum for a single PUT (side by
//! side on two threads), a part's checksum and MD5, and a cheap content sample for resume. Files are read in [`CHUNK_SIZE`] pieces, so memory stays flat.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::parts::PartPlan;
use super::types::TransferError;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::validate::{open_source, CheckedFile, FileIdentity, ValidationError};

/// Bytes read from disk per chunk (and so the most of a file held in memory per upload).
pub const CHUNK_SIZE: usize = 256 * 1024;

/// Files up to this size are read whole and hashed on one thread: for them a second thread
/// and large buffers cost more than the hashing.
pub(crate) const SMALL_FILE: u64 = 1 << 20;

/// Checksums of a file's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// MD5 of the content (what `Content-MD5` carries).
    pub md5: [u8; 16],
    /// The flexible checksum signed into the request (the profile's algorithm).
    pub checksum: Checksum,
    /// Bytes hashed.
    pub len: u64,
}

impl FileDigest {
    /// The SHA-256 in hex, as receipts show it.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
    /// The SHA-256 in base64, as `x-amz-checksum-sha256` carries it.
    pub fn sha256_b64(&self) -> String {
        base64_of(&self.sha256)
    }
    /// The MD5 in base64, as `Content-MD5` carries it.
    pub fn md5_b64(&self) -> String {
        base64_of(&self.md5)
    }
}

/// Standard base64 of `bytes`.
pub(crate) fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn read_err(e: std::io::Error) -> TransferError {
    TransferError::Read(e.to_string())
}

/// Opens the checked file again: the same regular file (see [`CheckedFile::reopen`]), or
/// [`TransferError::SourceChanged`].
pub(crate) fn reopen(file: &CheckedFile) -> Result<std::fs::File, TransferError> {
    file.reopen().map_err(|e| match e {
        ValidationError::NotFound | ValidationError::PermissionDenied | ValidationError::Io(_) => {
            TransferError::Read(e.to_string())
        }
        _ => TransferError::SourceChanged,
    })
}

/// Returns a file's SHA-256 and MD5 (on blocking threads); reads a regular file only, and no
/// more than the size it had when opened.
pub async fn digest_file(path: &Path) -> Result<FileDigest, TransferError> {
    let path = path.to_path_buf();
    let file = tokio::task::spawn_blocking(move || {
        let (_, meta) = open_source(&path).map_err(|e| TransferError::Read(e.to_string()))?;
        Ok::<_, TransferError>(CheckedFile {
            path,
            file_name: String::new(),
            size: meta.len(),
            content_type: String::new(),
            modified: meta.modified().ok(),
            identity: FileIdentity::of(&meta),
        })
    })
    .await
    .map_err(|e| TransferError::Read(e.to_string()))??;
    Ok(read_and_digest(&file, ChecksumAlgorithm::default())
        .await?
        .0)
}

/// A small file's bytes as read for its checksums: sending them saves reading the file again.
pub(crate) struct SmallContent {
    pub bytes: bytes::Bytes,
}

/// The checked file's SHA-256 and MD5, keeping the content of a small file. Reads exactly the
/// size checked; a file that is no longer the one checked is [`TransferError::SourceChanged`].
pub(crate) async fn read_and_digest(
    file: &CheckedFile,
    algorithm: ChecksumAlgorithm,
) -> Result<(FileDigest, Option<SmallContent>), TransferError> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        if file.size > SMALL_FILE {
            return Ok((digest_large(&file, algorithm)?, None));
        }
        let f = reopen(&file)?;
        let mut bytes = Vec::with_capacity(file.size as usize);
        // One byte more than checked would show a file that grew.
        f.take(file.size + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
        if bytes.len() as u64 != file.size {
            return Err(TransferError::SourceChanged);
        }
        let digest = FileDigest {
            sha256: Sha256::digest(&bytes).into(),
            md5: Md5::digest(&bytes).into(),
            checksum: algorithm.of(&bytes),
            len: bytes.len() as u64,
        };
        Ok((
            digest,
            Some(SmallContent {
                bytes: bytes.into(),
            }),
        ))
    })
    .await
    .map_err(|e| TransferError::Read(e.to_string()))?
}

/// SHA-256 and MD5 of a large file. MD5 is the slower hash: on a second thread (reading the file
/// beside SHA-256, from the page cache) the pass takes about as long as MD5 alone.
fn digest_large(
    file: &CheckedFile,
    algorithm: ChecksumAlgorithm,
) -> Result<FileDigest, TransferError> {
    let never = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let md5 = scope.spawn(|| hash_range::<Md5>(file, 0, file.size, &never));
        let whole = whole_file(file, algorithm, &never);
        let md5 = md5
            .join()
            .map_err(|_| TransferError::Read("the MD5 thread panicked".into()))?;
        let (
            WholeFile {
                sha256,
                checksum,
                len,
            },
            (md5, md5_len),
        ) = (whole?, md5?);
        if md5_len != len || len != file.size {
            return Err(TransferError::SourceChanged);
        }
        Ok(FileDigest {
            sha256,
            md5: md5.into(),
            checksum,
            len,
        })
    })
}

/// What one pass over the whole file gives: its SHA-256 and its flexible checksum.
struct WholeFile {
    pub sha256: [u8; 32],
    pub checksum: Checksum,
    pub len: u64,
}

/// The whole file's SHA-256 and checksum in one read (the checksum is the SHA-256 itself when
/// that is the algorithm).
fn whole_file(
    file: &CheckedFile,
    algorithm: ChecksumAlgorithm,
    stop: &AtomicBool,
) -> Result<WholeFile, TransferError> {
    let mut sha = Sha256::new();
    let mut checksum = (algorithm != ChecksumAlgorithm::Sha256).then(|| algorithm.hasher());
    let len = read_range(file, 0, file.size, stop, |chunk| {
        sha.update(chunk);
        if let Some(c) = checksum.as_mut() {
            c.update(chunk);
        }
    })?;
    let sha256: [u8; 32] = sha.finalize().into();
    let checksum = match checksum {
        Some(c) => c.finish(),
        None => Checksum {
            algorithm,
            value: base64_of(&sha256),
        },
    };
    Ok(WholeFile {
        sha256,
        checksum,
        len,
    })
}

/// Hashes up to `len` bytes of the checked file from `offset` (fewer at its end); returns the
/// digest and how many bytes it read. Stops with [`TransferError::Cancelled`] once `stop` is set.
pub(crate) fn hash_range<D: Digest>(
    file: &CheckedFile,
    offset: u64,
    len: u64,
    stop: &AtomicBool,
) -> Result<(sha2::digest::Output<D>, u64), TransferError> {
    let mut h = D::new();
    let read = read_range(file, offset, len, stop, |chunk| h.update(chunk))?;
    Ok((h.finalize(), read))
}

/// Reads up to `len` bytes of the checked file from `offset` (fewer at its end) into `sink`,
/// chunk by chunk; returns how many. Stops with [`TransferError::Cancelled`] once `stop` is set.
fn read_range(
    file: &CheckedFile,
    offset: u64,
    len: u64,
    stop: &AtomicBool,
    mut sink: impl FnMut(&[u8]),
) -> Result<u64, TransferError> {
    use std::io::{Seek, SeekFrom};
    let mut f = reopen(file)?;
    f.seek(SeekFrom::Start(offset)).map_err(read_err)?;
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut read = 0u64;
    let len = len.min(file.size.saturating_sub(offset));
    while read < len {
        if stop.load(Ordering::Relaxed) {
            return Err(TransferError::Cancelled);
        }
        let want = (buf.len() as u64).min(len - read) as usize;
        let got = f.read(&mut buf[..want]).map_err(read_err)?;
        if got == 0 {
            break;
        }
        sink(&buf[..got]);
        read += got as u64;
    }
    Ok(read)
}

/// What one read of a part gives: its flexible checksum and, when asked for, its MD5 (for
/// `Content-MD5` and the ETag rule); and the part's bytes when it is small enough to keep.
#[derive(Clone, Debug)]
pub(crate) struct PartDigest {
    pub md5: Option<[u8; 16]>,
    pub checksum: Checksum,
    /// The bytes hashed, kept to be sent (so each byte is read once, and what is sent is
    /// exactly what was hashed); `None` for a part over [`KEEP_PART_MAX`].
    pub bytes: Option<bytes::Bytes>,
}

/// Parts up to this size are read once and sent from memory (parts in flight are capped by
/// the session's concurrency, so a few of these at most); larger ones are read again to send.
pub(crate) const KEEP_PART_MAX: u64 = 16 * 1024 * 1024;

/// The digests of part `n` of `file` cut by `plan`, read once on a blocking thread; the MD5
/// only `with_md5`; the bytes kept when `keep` and the part is at most [`KEEP_PART_MAX`].
pub(crate) async fn part_digest(
    file: &CheckedFile,
    plan: PartPlan,
    n: u32,
    algorithm: ChecksumAlgorithm,
    with_md5: bool,
    keep: bool,
) -> Result<PartDigest, TransferError> {
    let file = file.clone();
    let range = plan.range(n);
    let keep = keep && range.len <= KEEP_PART_MAX;
    tokio::task::spawn_blocking(move || {
        let mut md5 = with_md5.then(Md5::new);
        let mut checksum = algorithm.hasher();
        let mut kept = keep.then(|| Vec::with_capacity(range.len as usize));
        let read = read_range(
            &file,
            range.offset,
            range.len,
            &AtomicBool::new(false),
            |c| {
                if let Some(m) = md5.as_mut() {
                    m.update(c);
                }
                checksum.update(c);
                if let Some(k) = kept.as_mut() {
                    k.extend_from_slice(c);
                }
            },
        )?;
        if read < range.len {
            return Err(TransferError::SourceChanged);
        }
        Ok(PartDigest {
            md5: md5.map(|m| m.finalize().into()),
            checksum: checksum.finish(),
            bytes: kept.map(bytes::Bytes::from),
        })
    })
    .await
    .map_err(|e| TransferError::Read(e.to_string()))?
}

/// A cheap content sample: SHA-256 over the size and five 64 KiB windows spread over the file.
pub(crate) fn fingerprint(file: &CheckedFile) -> Result<String, TransferError> {
    use std::io::{Seek, SeekFrom};
    const WINDOW: u64 = 64 * 1024;
    let size = file.size;
    let mut f = reopen(file)?;
    let mut h = Sha256::new();
    h.update(size.to_be_bytes());
    let mut buf = vec![0u8; WINDOW.min(size) as usize];
    for i in 0..5u64 {
        let offset = (size.saturating_sub(WINDOW)) * i / 4;
        f.seek(SeekFrom::Start(offset)).map_err(read_err)?;
        let n = f.read(&mut buf).map_err(read_err)?;
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Fails with [`TransferError::SourceChanged`] when the file is no longer the one checked, or
/// its size or modification time moved.
pub(crate) async fn source_unchanged(file: &CheckedFile) -> Result<(), TransferError> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || reopen(&file).map(drop))
        .await
        .map_err(|e| TransferError::Read(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of hashing (a small file read whole; a larger one read by two threads) give
    /// the checksums of the file's bytes.
    #[tokio::test]
    async fn digest_file_matches_the_bytes_below_and_above_the_small_file_size() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1000,
            SMALL_FILE as usize,
            SMALL_FILE as usize + 1,
            3 * CHUNK_SIZE + 17,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &bytes).unwrap();
            let digest = digest_file(&path).await.unwrap();
            assert_eq!(digest.len, len as u64);
            assert_eq!(
                digest.sha256,
                <[u8; 32]>::from(Sha256::digest(&bytes)),
                "{len}"
            );
            assert_eq!(digest.md5, <[u8; 16]>::from(Md5::digest(&bytes)), "{len}");
        }
    }
}
