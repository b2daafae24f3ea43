//! S3's flexible checksums: CRC64NVME (what current AWS SDKs use by default), CRC32C, CRC32 and
//! SHA-256. Hoist computes the one a profile chooses while it reads the file, signs it into the
//! request (so the store verifies the bytes against it) and compares the value the store
//! returns. CRCs come from `crc-fast` (SIMD), SHA-256 from `sha2`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// A checksum algorithm S3 verifies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum ChecksumAlgorithm {
    /// CRC-64/NVME: the AWS SDKs' default, always a full-object checksum.
    #[default]
    Crc64nvme,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-32 (ISO-HDLC, as zlib).
    Crc32,
    /// SHA-256 (a multipart object gets a checksum of its parts' checksums).
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm, default first.
    pub const ALL: [Self; 4] = [Self::Crc64nvme, Self::Crc32c, Self::Crc32, Self::Sha256];

    /// The lower-case name (`crc64nvme`), as in profiles and in `x-amz-checksum-*`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc64nvme => "crc64nvme",
            Self::Crc32c => "crc32c",
            Self::Crc32 => "crc32",
            Self::Sha256 => "sha256",
        }
    }

    /// S3's name (`CRC64NVME`), as in `x-amz-checksum-algorithm` and XML elements.
    pub fn s3_name(self) -> &'static str {
        match self {
            Self::Crc64nvme => "CRC64NVME",
            Self::Crc32c => "CRC32C",
            Self::Crc32 => "CRC32",
            Self::Sha256 => "SHA256",
        }
    }

    /// The header that carries it (`x-amz-checksum-crc64nvme`).
    pub fn header(self) -> &'static str {
        match self {
            Self::Crc64nvme => "x-amz-checksum-crc64nvme",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Whether a multipart object can carry a checksum of its whole content (S3's
    /// `FULL_OBJECT` type: the CRCs); otherwise S3 keeps a checksum of the parts' checksums
    /// (`COMPOSITE`).
    pub fn full_object(self) -> bool {
        !matches!(self, Self::Sha256)
    }

    /// The algorithm a name (`crc64nvme`, `CRC32C`, …) stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Bytes of a digest (before base64).
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc64nvme => 8,
            Self::Crc32c | Self::Crc32 => 4,
            Self::Sha256 => 32,
        }
    }

    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            Self::Crc64nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            Self::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            Self::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            Self::Sha256 => None,
        }
    }

    /// The checksum of consecutive pieces, from each piece's checksum and length: CRCs combine
    /// without reading the bytes again (`None` for SHA-256, or a value that is not a digest).
    pub fn combine<'a>(
        self,
        pieces: impl IntoIterator<Item = (&'a Checksum, u64)>,
    ) -> Option<Checksum> {
        let crc = self.crc()?;
        let mut whole: Option<u64> = None;
        for (piece, len) in pieces {
            if piece.algorithm != self {
                return None;
            }
            let value = piece.to_u64()?;
            whole = Some(match whole {
                None => value,
                Some(w) => crc_fast::checksum_combine(crc, w, value, len),
            });
        }
        // The CRC of nothing, when there were no pieces.
        Some(whole.map_or_else(|| self.of(b""), |w| self.checksum_of_crc(w)))
    }

    fn checksum_of_crc(self, v: u64) -> Checksum {
        let b64 = &base64::engine::general_purpose::STANDARD;
        let value = match self {
            Self::Crc64nvme => b64.encode(v.to_be_bytes()),
            _ => b64.encode((v as u32).to_be_bytes()),
        };
        Checksum {
            algorithm: self,
            value,
        }
    }

    /// A fresh hasher.
    pub fn hasher(self) -> ChecksumHasher {
        let inner = match self.crc() {
            Some(crc) => Inner::Crc(crc_fast::Digest::new(crc)),
            None => Inner::Sha256(sha2::Sha256::new()),
        };
        ChecksumHasher {
            algorithm: self,
            inner,
        }
    }

    /// The checksum of `bytes`.
    pub fn of(self, bytes: &[u8]) -> Checksum {
        let mut h = self.hasher();
        h.update(bytes);
        h.finish()
    }
}

impl std::fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A checksum's value, as S3 writes it (base64 of the big-endian digest).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checksum {
    /// Which algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Base64, as in `x-amz-checksum-*`.
    pub value: String,
}

impl Checksum {
    /// `value` as algorithm `algorithm`'s checksum, when it is base64 of a digest of its length.
    pub fn parse(algorithm: ChecksumAlgorithm, value: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        (bytes.len() == algorithm.digest_len()).then(|| Self {
            algorithm,
            value: value.to_string(),
        })
    }

    /// A CRC's value as a number.
    fn to_u64(&self) -> Option<u64> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.value)
            .ok()?;
        match bytes.len() {
            8 => Some(u64::from_be_bytes(bytes.try_into().ok()?)),
            4 => Some(u32::from_be_bytes(bytes.try_into().ok()?) as u64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.algorithm, self.value)
    }
}

/// What [`Checksum`]'s `Display` writes (`crc64nvme BASE64`) read back.
impl std::str::FromStr for Checksum {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = s
            .split_once(' ')
            .ok_or_else(|| format!("'{s}' is not 'algorithm value'"))?;
        let algorithm =
            ChecksumAlgorithm::parse(name).ok_or_else(|| format!("unknown algorithm '{name}'"))?;
        Self::parse(algorithm, value).ok_or_else(|| format!("'{value}' is not a {name}"))
    }
}

/// The `Checksum<ALG>` fields S3 puts beside a part or an object (in XML, and in the AWS SDK's
/// JSON): read with `#[serde(flatten)]`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChecksumFields {
    /// `ChecksumCRC64NVME`.
    #[serde(rename = "ChecksumCRC64NVME")]
    pub crc64nvme: Option<String>,
    /// `ChecksumCRC32C`.
    #[serde(rename = "ChecksumCRC32C")]
    pub crc32c: Option<String>,
    /// `ChecksumCRC32`.
    #[serde(rename = "ChecksumCRC32")]
    pub crc32: Option<String>,
    /// `ChecksumSHA256`.
    #[serde(rename = "ChecksumSHA256")]
    pub sha256: Option<String>,
}

impl ChecksumFields {
    /// The value given for `algorithm`, trimmed, if any.
    pub fn get(&self, algorithm: ChecksumAlgorithm) -> Option<&str> {
        let v = match algorithm {
            ChecksumAlgorithm::Crc64nvme => &self.crc64nvme,
            ChecksumAlgorithm::Crc32c => &self.crc32c,
            ChecksumAlgorithm::Crc32 => &self.crc32,
            ChecksumAlgorithm::Sha256 => &self.sha256,
        };
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }

    /// The first checksum given (a store gives one).
    pub fn first(&self) -> Option<Checksum> {
        ChecksumAlgorithm::ALL.into_iter().find_map(|algorithm| {
            self.get(algorithm).map(|v| Checksum {
                algorithm,
                value: v.to_string(),
            })
        })
    }
}

/// Computes a [`Checksum`] over bytes given in pieces.
#[derive(Clone)]
pub struct ChecksumHasher {
    algorithm: ChecksumAlgorithm,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Crc(crc_fast::Digest),
    Sha256(sha2::Sha256),
}

impl ChecksumHasher {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.inner {
            Inner::Crc(d) => d.update(bytes),
            Inner::Sha256(d) => d.update(bytes),
        }
    }

    /// The checksum of everything added.
    pub fn finish(self) -> Checksum {
        let b64 = &base64::engine::general_purpose::STANDARD;
        let value = match self.inner {
            Inner::Crc(d) => return self.algorithm.checksum_of_crc(d.finalize()),
            Inner::Sha256(d) => b64.encode(d.finalize()),
        };
        Checksum {
            algorithm: self.algorithm,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check values of the CRC catalogue ("123456789") and values S3 documents for an
    /// empty body, base64 as S3 writes them.
    #[test]
    fn checksums_match_the_published_values() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let check = b"123456789";
        assert_eq!(
            ChecksumAlgorithm::Crc32.of(check).value,
            b64(&0xCBF4_3926u32.to_be_bytes())
        );
        assert_eq!(
            ChecksumAlgorithm::Crc32c.of(check).value,
            b64(&0xE306_9283u32.to_be_bytes())
        );
        assert_eq!(
            ChecksumAlgorithm::Crc64nvme.of(check).value,
            b64(&0xAE8B_1486_0A79_9888u64.to_be_bytes())
        );
        assert_eq!(ChecksumAlgorithm::Crc32.of(b"").value, "AAAAAA==");
        assert_eq!(ChecksumAlgorithm::Crc64nvme.of(b"").value, "AAAAAAAAAAA=");
        assert_eq!(
            ChecksumAlgorithm::Sha256.of(b"").value,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        // Pieces give what the whole gives.
        let mut h = ChecksumAlgorithm::Crc64nvme.hasher();
        h.update(b"1234");
        h.update(b"56789");
        assert_eq!(h.finish(), ChecksumAlgorithm::Crc64nvme.of(check));
    }

    /// A full-object CRC from its parts' CRCs (what Complete sends for a FULL_OBJECT upload)
    /// equals the CRC of the whole content.
    #[test]
    fn part_crcs_combine_into_the_whole_files() {
        let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for a in ChecksumAlgorithm::ALL {
            let pieces: Vec<(Checksum, u64)> = content
                .chunks(30_000)
                .map(|c| (a.of(c), c.len() as u64))
                .collect();
            let combined = a.combine(pieces.iter().map(|(c, l)| (c, *l)));
            match a {
                ChecksumAlgorithm::Sha256 => assert_eq!(combined, None),
                _ => assert_eq!(combined, Some(a.of(&content)), "{a}"),
            }
        }
        assert_eq!(
            ChecksumAlgorithm::Crc32c.combine([]),
            Some(ChecksumAlgorithm::Crc32c.of(b""))
        );
        let crc32 = ChecksumAlgorithm::Crc32.of(b"x");
        assert_eq!(ChecksumAlgorithm::Crc32c.combine([(&crc32, 1)]), None);
    }

    #[test]
    fn parsing_wants_a_digest_of_the_algorithms_length() {
        let crc = ChecksumAlgorithm::Crc64nvme.of(b"abc");
        assert_eq!(
            Checksum::parse(ChecksumAlgorithm::Crc64nvme, &crc.value),
            Some(crc.clone())
        );
        assert_eq!(Checksum::parse(ChecksumAlgorithm::Crc32, &crc.value), None);
        assert_eq!(
            Checksum::parse(ChecksumAlgorithm::Crc32, "not base64!"),
            None
        );
    }

    #[test]
    fn names_round_trip() {
        for a in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::parse(a.name()), Some(a));
            assert_eq!(ChecksumAlgorithm::parse(a.s3_name()), Some(a));
            assert!(a.header().ends_with(a.name()));
        }
        assert_eq!(ChecksumAlgorithm::parse("md5"), None);
    }
}
