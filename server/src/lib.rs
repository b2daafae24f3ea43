//! Hoist's reference presign backend: the server side that staff-mode Hoist (and Uppy) talk to.
//!
//! [`app`] builds the `axum::Router` (`routes/`: `simple`, `companion`, and the audit layer that
//! records every refused request once; the shared state is in `state`); the `hoist-server`
//! binary loads [`config`], finds AWS credentials, and serves it (optionally beside an embedded
//! S3 store). Two protocols share one [`policy`]:
//!
//! * **simple** — `POST /api/upload {fileName, contentType, size, checksumSha256?, contentMd5?}`
//!   → `{url, method, headers, key, expiresAt}` (a client sending only `fileName` and reading
//!   only `url` still works, within the policy);
//! * **companion** — Uppy Companion's `/s3/params` and `/s3/multipart/...` endpoints.
//!
//! Every request is authenticated (a static bearer token, stored hashed, or an access token of
//! the company's identity provider: [`oidc`]), rate limited per token ([`rate`]:
//! in the process, or in Redis shared by every replica), and
//! checked before anything is signed; keys are generated here under the token's prefix;
//! `content-type`, `content-length`, `If-None-Match: *` and any checksum the client sent are
//! signed so that S3 enforces them. An [`audit`] line records each decision. [`serve`] runs the
//! router with connection limits and a graceful shutdown; [`guard`] limits failed
//! authentication per client address.

pub mod audit;
pub mod config;
pub mod cors;
pub mod credentials;
pub mod error;
mod file_type;
pub mod guard;
pub mod metrics;
pub mod oidc;
pub mod placement;
pub mod policy;
pub mod rate;
pub mod readiness;
mod routes;
pub mod s3;
pub mod serve;
mod state;
pub mod token;
pub mod upload_id;
pub mod verify;

pub use routes::app;
pub use state::AppConfig;
