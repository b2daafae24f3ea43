//! Hoist's headless core: everything the `hoist` CLI, the desktop app and the tests share.
//!
//! A file flows through the modules in this order:
//!
//! 1. [`profile`] — which bucket, which mode (`backend`, `self-sign`, `local`), which limits.
//! 2. [`validate`] — size, type (magic bytes via `infer`) and readability, before any byte is sent.
//! 3. [`key`] — the object key, built from the profile's template with a sanitised file name.
//! 4. [`sign`] — a presigned PUT, from the company backend or signed here with SigV4.
//! 5. [`transfer`] — the streamed PUT, with [`retry`] (AWS "standard" mode) and re-signing.
//!
//! [`session`] ties them together for a batch of files; [`secret`] keeps credentials in the OS
//! keychain and out of every log line; [`redact`] strips signatures from anything printed.
//! With the `embedded-store` feature, [`local`] serves an S3-compatible store on 127.0.0.1.
//!
//! [`manager`] is the long-lived upload manager the desktop app drives (queue view, pause,
//! resume, retry, history), and [`admin`] its profile administration and health check.

pub mod admin;
pub mod key;
#[cfg(feature = "embedded-store")]
pub mod local;
pub mod manager;
pub mod memory;
pub mod multipart;
pub mod profile;
pub mod queue;
pub mod redact;
pub mod retry;
pub mod s3;
pub mod secret;
pub mod session;
pub mod sign;
pub mod sweep;
pub mod transfer;
pub mod validate;
