//! Staff mode: a company backend signs, and Hoist never holds a storage credential.
//!
//! * [`simple::BackendSigner`] — protocol `simple`: one `POST` per file for a presigned PUT.
//! * [`companion::CompanionClient`] — protocol `companion` (Uppy Companion's S3 endpoints):
//!   single PUTs and every multipart step, so it also implements
//!   [`crate::remote::MultipartApi`].
//!
//! Both talk to the backend through [`crate::remote::http::client`] (redirects never followed,
//! so a bearer token cannot reach another host).

pub mod companion;
pub mod simple;
