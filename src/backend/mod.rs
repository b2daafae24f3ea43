//! Staff mode: a company backend signs, and Hoist never holds a storage credential.
//!
//! * [`simple::BackendSigner`] — protocol `simple`: one `POST` per file for a presigned PUT.
//! * [`companion::CompanionClient`] — protocol `companion` (Uppy Companion's S3 endpoints):
//!   single PUTs and every multipart step, so it also implements
//!   [`crate::remote::MultipartApi`].
//!
//! * [`sign_in`] — the bearer, when the profile signs in with the company's identity provider
//!   (OpenID Connect) instead of a stored token.
//!
//! Both talk to the backend through `remote::http::client` (redirects never followed,
//! so a bearer token cannot reach another host).

pub mod companion;
pub mod sign_in;
pub mod simple;

use std::sync::Arc;

use crate::sign::SignError;

use crate::secret::Secret;

/// What a backend request carries as `Authorization: Bearer`.
#[derive(Clone, Debug, Default)]
pub enum Bearer {
    /// Nothing (a backend that authenticates otherwise, or not at all).
    #[default]
    None,
    /// The token stored for the profile.
    Token(Secret),
    /// The identity provider's access token of whoever signed in.
    SignedIn(Arc<sign_in::SignedIn>),
}

impl From<Option<Secret>> for Bearer {
    fn from(token: Option<Secret>) -> Self {
        token.map_or(Self::None, Bearer::Token)
    }
}

impl Bearer {
    /// The token to send; `refused` is one the backend just answered 401 to, which a sign-in
    /// replaces with a new one.
    pub(crate) async fn get(
        &self,
        refused: Option<&Secret>,
    ) -> Result<Option<Secret>, sign_in::SignInError> {
        match self {
            Self::None => Ok(None),
            Self::Token(t) => Ok(Some(t.clone())),
            Self::SignedIn(s) => s.bearer(refused).await.map(Some),
        }
    }

    /// A backend's refusal to sign, by its status: 5xx and 429 may pass (waiting as asked); a
    /// 401 names what to fix — the stored token, or for a sign-in (already renewed once by
    /// [`Self::send`]) signing in again; anything else stands.
    pub(crate) fn refusal(
        &self,
        status: u16,
        message: String,
        retry_after: Option<std::time::Duration>,
    ) -> SignError {
        match status {
            s if s >= 500 || s == 429 => SignError::BackendUnavailable {
                status,
                message,
                retry_after,
            },
            401 if self.renews() => SignError::SignedOut(format!(
                "{message} — the backend refused the company sign-in's token, even renewed: \
                 sign in again; if it goes on, the backend does not accept this identity \
                 provider's tokens (its admin can tell why)"
            )),
            401 => SignError::BackendRejected {
                status,
                message: format!(
                    "{message} — the backend wants a valid bearer token: check the one stored \
                     for this profile"
                ),
            },
            _ => SignError::BackendRejected { status, message },
        }
    }

    /// Whether a 401 is worth one more try with a new token.
    pub(crate) fn renews(&self) -> bool {
        matches!(self, Self::SignedIn(_))
    }

    /// Sends the request `build` makes, with this bearer; when a sign-in's access token is
    /// refused (401: revoked, or clocks apart), once more with a new one.
    pub(crate) async fn send<E>(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        sign_in_failed: impl Fn(sign_in::SignInError) -> E,
        unreached: impl Fn(reqwest::Error) -> E,
    ) -> Result<reqwest::Response, E> {
        let mut refused = None;
        loop {
            let token = self.get(refused.as_ref()).await.map_err(&sign_in_failed)?;
            let mut request = build();
            if let Some(t) = &token {
                request = request.bearer_auth(t.expose());
            }
            let resp = request.send().await.map_err(&unreached)?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED
                && refused.is_none()
                && self.renews()
            {
                refused = token;
                continue;
            }
            return Ok(resp);
        }
    }
}

/// The completion step a backend's answer offers (`"complete": {"url", "receipt"}`), its URL
/// resolved against the backend's: it must stay on the backend's origin, where the bearer
/// token may go.
pub(crate) fn completion_in(
    answer: &serde_json::Value,
    backend: &url::Url,
) -> Result<Option<crate::sign::CompletionStep>, crate::sign::SignError> {
    let Some(c) = answer.get("complete").filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    let (Some(url), Some(receipt)) = (
        c.get("url").and_then(serde_json::Value::as_str),
        c.get("receipt").and_then(serde_json::Value::as_str),
    ) else {
        return Err(SignError::BadResponse(
            "\"complete\" needs \"url\" and \"receipt\"".into(),
        ));
    };
    let url = backend
        .join(url)
        .map_err(|e| SignError::BadResponse(format!("the completion URL: {e}")))?;
    if url.origin() != backend.origin() {
        return Err(SignError::BadResponse(format!(
            "the completion URL {url} is not on the backend's own host: Hoist sends its token \
             to the backend only"
        )));
    }
    Ok(Some(crate::sign::CompletionStep {
        url,
        receipt: receipt.to_string(),
    }))
}

/// Reports the upload of `key` done at `completion`, with `bearer`; the backend's verdict.
pub(crate) async fn post_completion(
    http: &reqwest::Client,
    bearer: &Bearer,
    completion: &crate::sign::CompletionStep,
    key: &str,
) -> Result<crate::sign::Verdict, crate::sign::SignError> {
    let body = serde_json::json!({ "key": key, "receipt": completion.receipt });
    let resp = bearer
        .send(
            || http.post(completion.url.clone()).json(&body),
            SignError::from,
            |e| {
                SignError::BackendUnreachable(
                    crate::remote::network::explain(&e, "the backend").message,
                )
            },
        )
        .await?;
    let status = resp.status();
    let retry_after =
        crate::remote::http::retry_after(resp.headers(), std::time::SystemTime::now());
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| {
            SignError::BadResponse(format!("the completion answer is not a verdict: {e}"))
        });
    }
    Err(bearer.refusal(status.as_u16(), simple::error_message(&text), retry_after))
}
