//! S3's size limits and the arithmetic of parts: how a file is cut, how long each part is, and
//! the ETag S3 gives a multipart object. Pure and dependency-light, so hoist-server uses the
//! same numbers to bound what it signs.

use md5::{Digest, Md5};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3's most parts per upload.
pub const MAX_PARTS: u32 = 10_000;
/// S3's largest object.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * MIB;
/// S3's largest single PUT.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * MIB;
/// Files from this size on go multipart.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * MIB;
/// The part size Hoist prefers; larger files get larger parts.
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
/// Parts of one file in flight at once (the session's limit caps all files together).
pub const PARTS_IN_FLIGHT_PER_FILE: usize = 8;
/// The parts held in memory at once over all files of a session (each part of up to 16 MiB is
/// read once and sent from memory): 8 parts of the default size, enough to fill a link of
/// 120 MB/s at 25 MB/s a connection.
pub const PART_MEMORY_MIB: usize = 64;

/// A file over S3's object limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the file is {0} bytes, over S3's object limit of 5 TiB")]
pub struct ObjectTooLarge(pub u64);

/// The part size for a file: the preferred size, raised to S3's minimum and to what keeps the
/// count within [`MAX_PARTS`], rounded up to whole MiB.
pub fn part_size_for(size: u64, preferred: u64) -> Result<u64, ObjectTooLarge> {
    if size > MAX_OBJECT_SIZE {
        return Err(ObjectTooLarge(size));
    }
    let needed = size.div_ceil(MAX_PARTS as u64);
    let part = preferred.max(MIN_PART_SIZE).max(needed).div_ceil(MIB) * MIB;
    Ok(part.min(MAX_PART_SIZE))
}

/// How many parts `size` makes with `part_size` (at least one).
pub fn part_count(size: u64, part_size: u64) -> u32 {
    size.div_ceil(part_size).max(1) as u32
}

/// The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, `-`, the count.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", hex::encode(h.finalize()), part_md5s.len())
}

/// Bytes `offset..offset + len` of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRange {
    /// The first byte.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// How one file is cut into parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    /// The file's size.
    pub size: u64,
    /// Every part's size but the last's.
    pub part_size: u64,
}

impl PartPlan {
    /// The plan for a file of `size` with the preferred part size.
    pub fn for_file(size: u64, preferred: u64) -> Result<Self, ObjectTooLarge> {
        Ok(Self {
            size,
            part_size: part_size_for(size, preferred)?,
        })
    }

    /// How many parts.
    pub fn count(&self) -> u32 {
        part_count(self.size, self.part_size)
    }

    /// Whether `n` is one of this plan's part numbers.
    pub fn contains(&self, n: u32) -> bool {
        (1..=self.count()).contains(&n)
    }

    /// The bytes of part `n` (1-based); the last part is the remainder.
    pub fn range(&self, n: u32) -> FileRange {
        let offset = (n as u64).saturating_sub(1) * self.part_size;
        FileRange {
            offset,
            len: self.part_size.min(self.size.saturating_sub(offset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_s3_limits() {
        assert_eq!(
            part_size_for(100 * MIB, DEFAULT_PART_SIZE).unwrap(),
            8 * MIB
        );
        assert_eq!(part_size_for(100 * MIB, MIB).unwrap(), MIN_PART_SIZE);
        // More than 10,000 parts at the minimum size: the part grows.
        let size = 10_001 * MIN_PART_SIZE;
        let p = part_size_for(size, MIN_PART_SIZE).unwrap();
        assert!(p > MIN_PART_SIZE && part_count(size, p) <= MAX_PARTS, "{p}");
        let max = part_size_for(MAX_OBJECT_SIZE, DEFAULT_PART_SIZE).unwrap();
        assert!(part_count(MAX_OBJECT_SIZE, max) <= MAX_PARTS && max <= MAX_PART_SIZE);
        assert!(part_size_for(MAX_OBJECT_SIZE + 1, DEFAULT_PART_SIZE).is_err());
        assert_eq!(part_count(0, MIN_PART_SIZE), 1);
        assert_eq!(part_count(MIN_PART_SIZE + 1, MIN_PART_SIZE), 2);
    }

    #[test]
    fn multipart_etag_follows_s3() {
        // Two parts whose MD5s are known: the ETag is MD5(md5a || md5b) + "-2".
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        let mut joined = a.to_vec();
        joined.extend_from_slice(&b);
        assert_eq!(
            multipart_etag(&[a, b]),
            format!("{}-2", hex::encode(Md5::digest(&joined)))
        );
    }

    #[test]
    fn last_part_is_the_remainder() {
        let plan = PartPlan {
            size: 11,
            part_size: 5,
        };
        assert_eq!(plan.count(), 3);
        assert_eq!(plan.range(1), FileRange { offset: 0, len: 5 });
        assert_eq!(plan.range(3), FileRange { offset: 10, len: 1 });
        assert!(plan.contains(3) && !plan.contains(0) && !plan.contains(4));
    }
}
