//! The application layer's error: every domain's error it can meet, plus its own.

use std::path::{Path, PathBuf};

use crate::profile::ProfileError;
use crate::queue::QueueError;
use crate::secret::KeychainError;
use crate::session::{CancelError, SessionError};

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    #[error(transparent)]
    Cancel(#[from] CancelError),
    #[error("there is no upload #{0} in the queue")]
    NotFound(i64),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot use {path}: {message}")]
    Io { path: PathBuf, message: String },
}

impl crate::error::HasKind for ManagerError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            ManagerError::Profile(e) => e.kind(),
            ManagerError::Session(e) => e.kind(),
            ManagerError::Queue(e) => e.kind(),
            ManagerError::Keychain(e) => e.kind(),
            ManagerError::Cancel(e) => e.kind(),
            ManagerError::NotFound(_) | ManagerError::Invalid(_) => ErrorKind::InvalidInput,
            ManagerError::Io { .. } => ErrorKind::Local,
        }
    }
}

impl ManagerError {
    pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        ManagerError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Writes via a temporary file and a rename, so a crash never leaves half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ManagerError> {
    let tmp = path.with_extension("hoist-tmp");
    std::fs::write(&tmp, bytes).map_err(|e| ManagerError::io(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ManagerError::io(path, e)
    })
}
