//! API errors: an HTTP status and a JSON body that says what to do, as
//! `{"error": "...", "message": "..."}`: `message` is the field Uppy's Companion client shows
//! (Companion's own shape), `error` the one earlier clients read.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An API error: a status and a message that says what to do.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `{"error"}` text.
    pub message: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
    /// Not audited line by line (failures already summarised, see `guard`).
    quiet: bool,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            quiet: false,
        }
    }
    /// The same error, kept out of the audit log.
    pub(crate) fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }
    /// Whether the audit log records this error.
    pub(crate) fn is_audited(&self) -> bool {
        !self.quiet
    }
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    /// 401 (with `WWW-Authenticate: Bearer`).
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, m)
    }
    /// 403.
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    /// 502: the storage failed.
    pub fn upstream(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, m)
    }
}

/// Marks an answer as a refusal, with its message, for the router's audit layer.
#[derive(Clone, Debug)]
pub(crate) struct Denial {
    pub(crate) message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message, "message": self.message })),
        )
            .into_response();
        if !self.quiet {
            r.extensions_mut().insert(Denial {
                message: self.message.clone(),
            });
        }
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert("retry-after", v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        r
    }
}
