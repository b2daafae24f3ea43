//! The audit log: one JSON object per line — time, token id (`oidc:<sub>` and the email for a
//! user signed in with the identity provider), action, key, size, type, outcome. It never
//! holds a token, a signature or a credential. A request's `Call` gathers what its handler
//! learnt (client, action, caller, key) for the line written when it is refused.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::guard::ClientKey;

/// One decision, as one JSON line.
#[derive(Debug, Serialize)]
pub struct AuditEvent<'a> {
    /// When (UTC, RFC 3339).
    pub time: String,
    /// The token's id (never the token), when one was presented and known.
    pub token: Option<&'a str>,
    /// A signed-in user's email, when their token carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    /// What was asked (`simple.put`, `multipart.complete`, …).
    pub action: &'a str,
    /// The object key, when known.
    pub key: Option<&'a str>,
    /// The declared size, when known.
    pub size: Option<u64>,
    /// The content type, when known.
    #[serde(rename = "type")]
    pub content_type: Option<&'a str>,
    /// `signed`, `created`, `completed`, `aborted`, or `denied STATUS: reason`.
    pub outcome: &'a str,
    /// The client's address (IPv6: its /64), on refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// Where audit lines go.
#[derive(Clone)]
pub struct AuditLog {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    /// Audit lines to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// Appends to a file, creating it readable by its owner only (it names people and keys).
    pub fn file(path: &std::path::Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Self::new(Box::new(options.open(path)?)))
    }

    /// Lines on stdout.
    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    /// Lines kept in memory, for tests.
    pub fn memory() -> (Self, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (Self::new(Box::new(SharedBuf(Arc::clone(&buf)))), buf)
    }

    /// Writes one line (a failed write is logged, never fatal).
    pub fn record(&self, event: AuditEvent<'_>) {
        let Ok(mut line) = serde_json::to_vec(&event) else {
            return;
        };
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(&line).and_then(|_| out.flush()) {
            tracing::error!("cannot write the audit log: {e}");
        }
    }
}

struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Now, UTC, RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What one request was, as far as its handler got: the audit context of an error answer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Call(Arc<Mutex<CallInfo>>);

#[derive(Debug, Default)]
pub(crate) struct CallInfo {
    pub(crate) client: Option<ClientKey>,
    pub(crate) action: Option<&'static str>,
    pub(crate) token: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) key: Option<String>,
    /// The size the file declared, when it declared one.
    pub(crate) size: Option<u64>,
    /// The content type the file declared.
    pub(crate) content_type: Option<String>,
}

impl Call {
    pub(crate) fn info(&self) -> MutexGuard<'_, CallInfo> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the request came from, when the server knows.
    pub(crate) fn client(&self) -> Option<ClientKey> {
        self.info().client
    }

    /// The request is this action (`simple.put`, `multipart.complete`, …).
    pub(crate) fn action(&self, action: &'static str) {
        self.info().action = Some(action);
    }

    /// The action named so far.
    pub(crate) fn action_name(&self) -> &'static str {
        self.info().action.unwrap_or("unknown")
    }

    /// The request was made with this token.
    pub(crate) fn token(&self, id: &str) {
        self.info().token = Some(id.to_string());
    }

    /// The request was made by a signed-in user with this email.
    pub(crate) fn email(&self, email: &str) {
        self.info().email = Some(email.to_string());
    }

    /// The file declared this size and type.
    pub(crate) fn declared(&self, size: Option<u64>, content_type: Option<&str>) {
        let mut info = self.info();
        info.size = size;
        info.content_type = content_type.map(str::to_string);
    }

    /// The request is about this key.
    pub(crate) fn key(&self, key: &str) {
        self.info().key = Some(key.to_string());
    }

    /// A part of `parent`'s request (one file of a batch): the same client, action and caller.
    pub(crate) fn inherit(&self, parent: &Self) {
        let p = parent.info();
        let mut me = self.info();
        me.client = p.client;
        me.action = p.action;
        me.token = p.token.clone();
        me.email = p.email.clone();
    }
}

/// Who made a request, as far as the server knows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller<'a> {
    pub(crate) client: Option<ClientKey>,
    pub(crate) token: Option<&'a str>,
    pub(crate) email: Option<&'a str>,
    /// What the file declared, when the request got that far.
    pub(crate) size: Option<u64>,
    pub(crate) content_type: Option<&'a str>,
}

impl<'a> Caller<'a> {
    /// Who made the request `info` describes, and what its file declared.
    pub(crate) fn of(info: &'a CallInfo) -> Self {
        Self {
            client: info.client,
            token: info.token.as_deref(),
            email: info.email.as_deref(),
            size: info.size,
            content_type: info.content_type.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (security review): the audit log was created world-readable.
    #[cfg(unix)]
    #[test]
    fn a_new_audit_log_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::file(&path).unwrap();
        log.record(AuditEvent {
            time: now_rfc3339(),
            token: Some("alice"),
            email: None,
            action: "simple.put",
            key: None,
            size: None,
            content_type: None,
            outcome: "signed",
            client: None,
        });
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(std::fs::read_to_string(&path).unwrap().contains("alice"));
    }
}
