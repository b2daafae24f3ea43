//! The upload engine: one file from disk to the store, with retries, resume and proof of
//! integrity. It knows nothing of profiles or front ends: it is handed a checked file, a key,
//! a [`crate::sign::Signer`] or a [`crate::remote::MultipartApi`], and a progress callback.
//!
//! | module | what it owns |
//! |---|---|
//! | `types` | [`TransferEvent`], [`ProgressFn`], [`UploadReceipt`], [`TransferError`] |
//! | `digest` | the profile's checksum, SHA-256 and MD5 of files and parts, the resume fingerprint |
//! | [`parts`] | S3's limits, part sizes and ranges, the multipart ETag rule |
//! | `attempt` | the retry loop (backoff, budget, signing again after expiry) |
//! | `control` | [`Control`]: pause and cancel from outside |
//! | `put` | one PUT of a body with progress and a stall watchdog |
//! | [`journal`] | what is recorded before a byte goes (the key a backend assigned): exactly once |
//! | `single` | [`Uploader::upload`]: a file in one PUT |
//! | `multipart` | [`Uploader::upload_multipart`]: a file in parts, journaled in the queue |
//! | `resume` | every decision to resume, restart or forget an unfinished upload |
//!
//! Integrity: the profile's flexible checksum (CRC64NVME by default; [`crate::checksum`]) and
//! MD5 are computed before (or, for parts, just before) sending. Each request carries the
//! checksum (`x-amz-checksum-*`, signed when self-signed or when the backend signs it) and
//! `Content-MD5` until the store has shown it checks the checksum; the answer's ETag and
//! checksum are compared again, and a whole file's SHA-256 goes in its receipt. Redirects are
//! never followed.

use crate::checksum::ChecksumAlgorithm;
use crate::object::ObjectSettings;
use std::time::Duration;

use crate::remote::http::{self, Purpose};
use crate::retry::RetryPolicy;

mod attempt;
mod control;
pub(crate) mod digest;
pub mod journal;
mod multipart;
pub mod parts;
mod put;
pub(crate) mod resume;
mod single;
pub mod throttle;
mod types;
mod verdict;

pub use control::Control;
pub use digest::{digest_file, FileDigest, CHUNK_SIZE};
pub use journal::{ItemJournal, Journal, NoJournal};
pub use multipart::MultipartJob;
pub use single::{Ahead, Placement};
pub use types::{CheckedBy, Integrity, ProgressFn, TransferError, TransferEvent, UploadReceipt};

/// Sends files, with retry and re-signing.
#[derive(Clone, Debug)]
pub struct Uploader {
    client: reqwest::Client,
    retry: RetryPolicy,
    stall_timeout: Duration,
    checksum: ChecksumAlgorithm,
    object: ObjectSettings,
    throttle: throttle::Throttle,
}

impl Uploader {
    /// An uploader that retries per `retry`.
    pub fn new(retry: RetryPolicy) -> Self {
        // reqwest fails to build a client only when its TLS backend cannot start, which no input
        // or network can cause; the default client then stops with reqwest's own message.
        let client = http::client(Purpose::Transfer).unwrap_or_default();
        Self {
            client,
            retry,
            stall_timeout: Duration::from_secs(30),
            checksum: ChecksumAlgorithm::default(),
            object: ObjectSettings::default(),
            throttle: throttle::Throttle::default(),
        }
    }

    /// Sends through `network` (a profile's proxy and trust).
    pub fn with_network(
        mut self,
        network: &crate::remote::network::Network,
    ) -> Result<Self, String> {
        self.client = http::client_on(Purpose::Transfer, network)?;
        Ok(self)
    }

    /// Obeys `limit` as well (bytes per second over everything sharing it).
    pub fn with_limit(mut self, limit: throttle::RateLimit) -> Self {
        self.throttle = self.throttle.with(limit);
        self
    }

    /// Sets what the store keeps with each object (signed where Hoist signs).
    pub fn with_object(mut self, settings: ObjectSettings) -> Self {
        self.object = settings;
        self
    }

    /// Signs and checks this checksum algorithm (CRC64NVME unless told).
    pub fn with_checksum(mut self, algorithm: ChecksumAlgorithm) -> Self {
        self.checksum = algorithm;
        self
    }

    /// An attempt during which no byte moves for this long is abandoned and retried.
    pub fn with_stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = d;
        self
    }

    /// The retry policy (and so the clock) of this uploader.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Now, by the policy's clock.
    fn now(&self) -> std::time::SystemTime {
        self.retry.clock.now()
    }
}
