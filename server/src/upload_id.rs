//! Sealed upload ids: the multipart upload id handed to clients carries its declared size,
//! part size and checksum algorithm under a MAC bound to the token and the key, so the server
//! keeps no state and a client cannot use another's upload or change its terms.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;
use hoist::checksum::ChecksumAlgorithm;
use hoist::upload::parts::{PartPlan, MAX_PARTS};

/// The upload id handed to clients: `{declared size}~{part size}~{mac}~{S3 upload id}`. The MAC
/// binds the S3 id to the token, the key, the declared size and the part size, so a client can
/// neither use someone else's upload nor change its size or its parts' lengths, and the server
/// needs no state to enforce it.
#[derive(Clone)]
pub struct UploadIds {
    key: Vec<u8>,
}

impl std::fmt::Debug for UploadIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadIds([redacted])")
    }
}

/// A verified client upload id.
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The store's upload id inside it.
    pub s3_upload_id: String,
    /// How the declared size is cut into parts; `None` only when the client declared no size
    /// and no size limit applied then (a declared 0 is 0, never "undeclared").
    pub parts: Option<PartPlan>,
    /// The flexible checksum the upload was created with: its parts may carry only that one.
    pub checksum: Option<ChecksumAlgorithm>,
}

impl Sealed {
    /// The highest part number that may be signed.
    pub fn max_part(&self) -> u32 {
        self.parts.map_or(MAX_PARTS, |p| p.count())
    }

    /// The exact length part `n` must have, when the size was declared.
    pub fn part_len(&self, n: u32) -> Option<u64> {
        self.parts.map(|p| p.range(n).len)
    }
}

impl UploadIds {
    /// Ids sealed with a key derived from `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        // v4: the checksum algorithm is sealed too (v3 ids, from before part checksums were
        // signed, no longer open: such an upload starts again).
        mac.update(b"hoist-server upload ids v4");
        Self {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    /// The key every seal of this server is made with.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.key
    }

    fn mac(&self, token: &str, key: &str, sizes: &str, s3_id: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [token, key, sizes, s3_id] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The id a client gets: size and part size (`-~-` when no size was declared), the checksum
    /// algorithm (`-` for none), a MAC over token, key, those and the store id, and the store id.
    pub fn seal(
        &self,
        token: &str,
        key: &str,
        parts: Option<PartPlan>,
        checksum: Option<ChecksumAlgorithm>,
        s3_id: &str,
    ) -> String {
        let sizes = parts.map_or_else(
            || "-~-".to_string(),
            |p| format!("{}~{}", p.size, p.part_size),
        );
        let terms = format!("{sizes}~{}", checksum.map_or("-", ChecksumAlgorithm::name));
        format!("{terms}~{}~{s3_id}", self.mac(token, key, &terms, s3_id))
    }

    /// Checks a client's id against its token and key (403 if it is not theirs).
    pub fn open(&self, token: &str, key: &str, sealed: &str) -> Result<Sealed, ApiError> {
        let foreign = || ApiError::forbidden("unknown upload id for this key and token");
        let mut it = sealed.splitn(5, '~');
        let (Some(size), Some(part_size), Some(checksum), Some(mac), Some(s3_id)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err(foreign());
        };
        let checksum = match checksum {
            "-" => None,
            name => Some(ChecksumAlgorithm::parse(name).ok_or_else(foreign)?),
        };
        let parts = match (size, part_size) {
            ("-", "-") => None,
            (s, p) => Some(PartPlan {
                size: s.parse().map_err(|_| foreign())?,
                part_size: p.parse().map_err(|_| foreign())?,
            }),
        };
        let terms = format!(
            "{size}~{part_size}~{}",
            checksum.map_or("-", ChecksumAlgorithm::name)
        );
        let expected = self.mac(token, key, &terms, s3_id);
        let same = expected.len() == mac.len()
            && expected
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0;
        if !same || s3_id.is_empty() || parts.is_some_and(|p| p.part_size == 0) {
            return Err(foreign());
        }
        Ok(Sealed {
            s3_upload_id: s3_id.to_string(),
            parts,
            checksum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist::upload::parts::MIN_PART_SIZE;

    #[test]
    fn sealed_upload_ids_bind_token_key_and_sizes() {
        let ids = UploadIds::new(b"secret");
        let plan = PartPlan {
            size: 100,
            part_size: MIN_PART_SIZE,
        };
        let crc = Some(ChecksumAlgorithm::Crc64nvme);
        let s = ids.seal("t", "uploads/t/a", Some(plan), crc, "abc~def");
        assert_eq!(
            ids.open("t", "uploads/t/a", &s).unwrap(),
            Sealed {
                s3_upload_id: "abc~def".into(),
                parts: Some(plan),
                checksum: crc,
            }
        );
        let other_checksum = s.replacen("crc64nvme", "crc32", 1);
        assert!(ids.open("t", "uploads/t/a", &other_checksum).is_err());
        let no_checksum = s.replacen("crc64nvme", "-", 1);
        assert!(ids.open("t", "uploads/t/a", &no_checksum).is_err());
        assert!(ids.open("u", "uploads/t/a", &s).is_err());
        assert!(ids.open("t", "uploads/t/b", &s).is_err());
        assert!(ids
            .open("t", "uploads/t/a", &s.replacen("100", "999", 1))
            .is_err());
        let other_parts = s.replacen(&MIN_PART_SIZE.to_string(), "6000000", 1);
        assert!(ids.open("t", "uploads/t/a", &other_parts).is_err());
        assert!(ids.open("t", "uploads/t/a", "garbage").is_err());
        let undeclared = ids.seal("t", "uploads/t/a", None, None, "x");
        let opened = ids.open("t", "uploads/t/a", &undeclared).unwrap();
        assert_eq!((opened.parts, opened.checksum), (None, None));
    }
}
