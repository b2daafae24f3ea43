//! Reading and hashing files: the whole file's SHA-256 and MD5 (side by side on two threads),
//! a part's MD5, a cheap content sample for resume, and the whole-file SHA-256 that runs beside
//! a multipart upload. Files are read in [`CHUNK_SIZE`] pieces, so memory stays flat.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::parts::PartPlan;
use super::types::TransferError;
use crate::validate::CheckedFile;

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
    /// Bytes hashed.
    pub len: u64,
}

impl FileDigest {
    /// The SHA-256 in hex, as receipts show it.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
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

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 of `bytes`.
pub(crate) fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn read_err(e: std::io::Error) -> TransferError {
    TransferError::Read(e.to_string())
}

/// Returns a file's SHA-256 and MD5 (on blocking threads).
pub async fn digest_file(path: &Path) -> Result<FileDigest, TransferError> {
    Ok(read_and_digest(path).await?.0)
}

/// A small file's bytes as read for its checksums, with the file's metadata then: sending them
/// saves reading the file again.
pub(crate) struct SmallContent {
    pub bytes: bytes::Bytes,
    pub meta: std::fs::Metadata,
}

/// [`digest_file`], keeping the content of a small file.
pub(crate) async fn read_and_digest(
    path: &Path,
) -> Result<(FileDigest, Option<SmallContent>), TransferError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path).map_err(read_err)?;
        let meta = f.metadata().map_err(read_err)?;
        if meta.len() <= SMALL_FILE {
            let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
            f.read_to_end(&mut bytes).map_err(read_err)?;
            let digest = FileDigest {
                sha256: Sha256::digest(&bytes).into(),
                md5: Md5::digest(&bytes).into(),
                len: bytes.len() as u64,
            };
            let content = SmallContent {
                bytes: bytes.into(),
                meta,
            };
            return Ok((digest, Some(content)));
        }
        drop(f);
        Ok((digest_large(&path)?, None))
    })
    .await
    .map_err(|e| TransferError::Read(e.to_string()))?
}

/// SHA-256 and MD5 of a large file. MD5 is the slower hash: on a second thread (reading the file
/// beside SHA-256, from the page cache) the pass takes about as long as MD5 alone.
fn digest_large(path: &Path) -> Result<FileDigest, TransferError> {
    let never = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let md5 = scope.spawn(|| hash_range::<Md5>(path, 0, u64::MAX, &never));
        let sha256 = hash_range::<Sha256>(path, 0, u64::MAX, &never);
        let md5 = md5
            .join()
            .map_err(|_| TransferError::Read("the MD5 thread panicked".into()))?;
        let ((sha256, len), (md5, md5_len)) = (sha256?, md5?);
        if md5_len != len {
            return Err(TransferError::SourceChanged);
        }
        Ok(FileDigest {
            sha256: sha256.into(),
            md5: md5.into(),
            len,
        })
    })
}

/// Hashes up to `len` bytes of the file from `offset` (fewer at its end); returns the digest
/// and how many bytes it read. Stops with [`TransferError::Cancelled`] once `stop` is set.
pub(crate) fn hash_range<D: Digest>(
    path: &Path,
    offset: u64,
    len: u64,
    stop: &AtomicBool,
) -> Result<(sha2::digest::Output<D>, u64), TransferError> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    f.seek(SeekFrom::Start(offset)).map_err(read_err)?;
    let mut h = D::new();
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut read = 0u64;
    while read < len {
        if stop.load(Ordering::Relaxed) {
            return Err(TransferError::Cancelled);
        }
        let want = (buf.len() as u64).min(len - read) as usize;
        let got = f.read(&mut buf[..want]).map_err(read_err)?;
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
        read += got as u64;
    }
    Ok((h.finalize(), read))
}

/// The MD5 of part `n` of `file` cut by `plan`, read on a blocking thread.
pub(crate) async fn part_md5(
    file: &CheckedFile,
    plan: PartPlan,
    n: u32,
) -> Result<[u8; 16], TransferError> {
    let path = file.path.clone();
    let range = plan.range(n);
    tokio::task::spawn_blocking(move || {
        let (md5, read) =
            hash_range::<Md5>(&path, range.offset, range.len, &AtomicBool::new(false))?;
        if read < range.len {
            return Err(TransferError::SourceChanged);
        }
        Ok(md5.into())
    })
    .await
    .map_err(|e| TransferError::Read(e.to_string()))?
}

/// A cheap content sample: SHA-256 over the size and five 64 KiB windows spread over the file.
pub(crate) fn fingerprint(path: &Path, size: u64) -> Result<String, TransferError> {
    use std::io::{Seek, SeekFrom};
    const WINDOW: u64 = 64 * 1024;
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let mut h = Sha256::new();
    h.update(size.to_be_bytes());
    let mut buf = vec![0u8; WINDOW as usize];
    for i in 0..5u64 {
        let offset = (size.saturating_sub(WINDOW)) * i / 4;
        f.seek(SeekFrom::Start(offset)).map_err(read_err)?;
        let n = f.read(&mut buf).map_err(read_err)?;
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Fails with [`TransferError::SourceChanged`] when the file's size or modification time moved.
pub(crate) async fn source_unchanged(file: &CheckedFile) -> Result<(), TransferError> {
    let meta = tokio::fs::metadata(&file.path).await.map_err(read_err)?;
    if file.is_unchanged(&meta) {
        Ok(())
    } else {
        Err(TransferError::SourceChanged)
    }
}

/// The whole file's SHA-256, computed on its own thread while the parts are sent. Dropping it
/// (a failed or stopped upload) stops the reading.
pub(crate) struct Sha256Pass {
    handle: tokio::task::JoinHandle<Result<([u8; 32], u64), TransferError>>,
    stop: Arc<AtomicBool>,
}

impl Sha256Pass {
    pub(crate) fn start(file: &CheckedFile) -> Self {
        let path = file.path.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let (sha256, len) = hash_range::<Sha256>(&path, 0, u64::MAX, &stopped)?;
            Ok((sha256.into(), len))
        });
        Sha256Pass { handle, stop }
    }

    /// The digest and how many bytes it covered.
    pub(crate) async fn finish(mut self) -> Result<([u8; 32], u64), TransferError> {
        (&mut self.handle)
            .await
            .map_err(|e| TransferError::Read(e.to_string()))?
    }
}

impl Drop for Sha256Pass {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
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
