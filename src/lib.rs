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
//!
//! # Uploading a file from a program
//!
//! Open a [`Session`] for a profile and upload; the receipt says where the file landed and
//! what proved it. The built-in `local` profile needs no cloud account and no keychain entry:
//! it serves an S3-compatible store (which checks SigV4 signatures as S3 does) on 127.0.0.1.
//!
//! ```
//! use std::sync::Arc;
//!
//! use hoist::queue::Queue;
//! use hoist::retry::RetryPolicy;
//! use hoist::{Keychain, Profile, ProgressFn, Session};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("report.txt");
//! std::fs::write(&file, "quarterly numbers\n")?;
//!
//! let session = Session::open_in(
//!     Profile::local(),
//!     &Keychain::new("hoist"),
//!     RetryPolicy::default(),
//!     Arc::new(Queue::in_memory()?),
//!     dir.path(), // where the local store keeps its objects
//! )
//! .await?;
//! let progress: ProgressFn = Arc::new(|event| println!("{event:?}"));
//! let receipt = session.upload(&file, &progress).await?;
//! assert!(receipt.key.ends_with("report.txt"));
//! println!("landed at {} ({} bytes)", receipt.key, receipt.size);
//! # Ok(())
//! # }
//! ```
//!
//! An error converts into [`Error`]: branch on [`Error::kind`], and word the advice of
//! [`Error::hint`] in the front end's own terms.

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
pub use error::{Error, ErrorKind, HasKind, Hint};
pub use profile::{Mode, Profile, ProfileStore};
pub use secret::{Keychain, Secret, SecretKind};
pub use session::{Job, Session};
pub use upload::{Control, ProgressFn, TransferError, TransferEvent, UploadReceipt, Uploader};
