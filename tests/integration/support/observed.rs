//! A multipart API that passes every call to a real one and notes, per part signed, whether
//! it carried an MD5: what the engine chose to send, seen without touching the store. It can
//! also complete with another whole-file checksum than the file's: what corruption between the
//! parts and Complete would look like to the store.

use std::sync::Mutex;
use std::time::SystemTime;

use hoist::checksum::Checksum;
use hoist::remote::{
    CompletedPart, Completion, MultipartApi, MultipartTarget, ObjectInfo, PartToSign,
    RemoteFailure, RemotePart,
};
use hoist::sign::{PresignedPut, PutRequest};

pub(crate) struct Observed<A> {
    inner: A,
    /// (part number, signed with an MD5), in signing order.
    pub(crate) signed: Mutex<Vec<(u32, bool)>>,
    wrong_whole_checksum: bool,
}

impl<A> Observed<A> {
    pub(crate) fn new(inner: A) -> Self {
        Self {
            inner,
            signed: Mutex::new(Vec::new()),
            wrong_whole_checksum: false,
        }
    }

    /// Completes with the checksum of other bytes than the file's.
    pub(crate) fn completing_with_a_wrong_checksum(inner: A) -> Self {
        Self {
            wrong_whole_checksum: true,
            ..Self::new(inner)
        }
    }

    /// The part numbers signed with an MD5, and those without.
    pub(crate) fn md5_split(&self) -> (Vec<u32>, Vec<u32>) {
        let signed = self.signed.lock().unwrap();
        let with = signed.iter().filter(|(_, m)| *m).map(|(n, _)| *n).collect();
        let without = signed
            .iter()
            .filter(|(_, m)| !*m)
            .map(|(n, _)| *n)
            .collect();
        (with, without)
    }
}

#[async_trait::async_trait]
impl<A: MultipartApi> MultipartApi for Observed<A> {
    async fn create(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<MultipartTarget, RemoteFailure> {
        self.inner.create(req, now).await
    }
    async fn sign_part(
        &self,
        t: &MultipartTarget,
        part: &PartToSign<'_>,
        now: SystemTime,
    ) -> Result<PresignedPut, RemoteFailure> {
        self.signed
            .lock()
            .unwrap()
            .push((part.number, part.md5_b64.is_some()));
        self.inner.sign_part(t, part, now).await
    }
    async fn list_parts(
        &self,
        t: &MultipartTarget,
        now: SystemTime,
    ) -> Result<Vec<RemotePart>, RemoteFailure> {
        self.inner.list_parts(t, now).await
    }
    async fn complete(
        &self,
        t: &MultipartTarget,
        parts: &[CompletedPart],
        whole: Option<&Checksum>,
        now: SystemTime,
    ) -> Result<Completion, RemoteFailure> {
        let wrong = whole
            .filter(|_| self.wrong_whole_checksum)
            .map(|c| c.algorithm.of(b"other bytes"));
        self.inner
            .complete(t, parts, wrong.as_ref().or(whole), now)
            .await
    }
    async fn abort(&self, t: &MultipartTarget, now: SystemTime) -> Result<(), RemoteFailure> {
        self.inner.abort(t, now).await
    }
    async fn head(&self, key: &str, now: SystemTime) -> Result<Option<ObjectInfo>, RemoteFailure> {
        self.inner.head(key, now).await
    }
    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}
