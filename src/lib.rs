//! Hoist's headless core: everything the `hoist` CLI, the desktop app and the tests share.
//!
//! A file flows through the modules in this order:
//!
//! 1. [`profile`] — which bucket, which mode (`backend`, `self-sign`, `local`), which limits.
//! 2. [`validate`] — size, type (magic bytes via `infer`) and readability, before any byte is sent.
//! 3. [`key`] — the object key, built from the profile's template with a sanitised file name.
//! 4. [`sign`] — a presigned PUT, signed here with SigV4, or by a company backend ([`backend`]).
//! 5. [`upload`] — the engine: a streamed PUT or parts, with [`retry`] (AWS "standard" mode),
//!    re-signing, resume from the [`queue`], and integrity checks; it talks to the store
//!    through the [`remote`] contract.
//!
//! [`session`] ties them together for a batch of files; [`secret`] keeps credentials in the OS
//! keychain and out of every log line; [`redact`] strips signatures from anything printed.
//! With the `embedded-store` feature, [`local`] serves an S3-compatible store on 127.0.0.1.
//!
//! [`app`] is the application layer the front ends share: the long-lived upload manager the
//! desktop app drives (queue view, pause, resume, retry, history), profile administration
//! (also the CLI's) and the health check.
//!
//! Every domain error converts into [`Error`], whose [`ErrorKind`] is what front ends branch on.

pub mod app;
pub mod backend;
pub mod checksum;
pub mod error;
mod files;
pub mod key;
#[cfg(feature = "embedded-store")]
pub mod local;
pub mod memory;
pub mod object;
pub mod profile;
pub mod queue;
pub mod redact;
pub mod remote;
pub mod retry;
pub mod secret;
pub mod session;
pub mod sign;
pub mod sweep;
pub mod upload;
pub mod validate;

// What a library user needs to upload files: open a session for a profile, upload, read the
// receipt or branch on the error's kind.
pub use error::{Error, ErrorKind, HasKind};
pub use profile::{Mode, Profile, ProfileStore};
pub use secret::{Keychain, Secret, SecretKind};
pub use session::{Job, Session};
pub use upload::{Control, ProgressFn, TransferError, TransferEvent, UploadReceipt, Uploader};
