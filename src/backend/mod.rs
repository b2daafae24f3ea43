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
//! Both talk to the backend through [`crate::remote::http::client`] (redirects never followed,
//! so a bearer token cannot reach another host).

pub mod companion;
pub mod sign_in;
pub mod simple;

use std::sync::Arc;

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
        token.map_or(Bearer::None, Bearer::Token)
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
            Bearer::None => Ok(None),
            Bearer::Token(t) => Ok(Some(t.clone())),
            Bearer::SignedIn(s) => s.bearer(refused).await.map(Some),
        }
    }

    /// Whether a 401 is worth one more try with a new token.
    pub(crate) fn renews(&self) -> bool {
        matches!(self, Bearer::SignedIn(_))
    }
}
