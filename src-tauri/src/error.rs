//! The one error shape that crosses the IPC: `{kind, message}`.

use hoist::app::ManagerError;
use serde::Serialize;
use ts_rs::TS;

/// What the UI branches on; everything else is shown as the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum ErrorKind {
    /// A profile's secret is not in the keychain: the UI asks for it.
    MissingSecret,
    /// Anything else: the message says what.
    Failed,
}

/// The error every command answers with.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct IpcError {
    /// What the UI may branch on.
    pub kind: ErrorKind,
    /// What to show.
    pub message: String,
}

impl IpcError {
    /// An error of the shell itself (no core error behind it).
    pub fn failed(message: String) -> Self {
        IpcError {
            kind: ErrorKind::Failed,
            message,
        }
    }
}

impl From<hoist::ErrorKind> for ErrorKind {
    fn from(kind: hoist::ErrorKind) -> Self {
        match kind {
            hoist::ErrorKind::MissingSecret => ErrorKind::MissingSecret,
            _ => ErrorKind::Failed,
        }
    }
}

impl From<hoist::Error> for IpcError {
    fn from(e: hoist::Error) -> Self {
        IpcError {
            kind: e.kind().into(),
            message: e.to_string(),
        }
    }
}

impl From<ManagerError> for IpcError {
    fn from(e: ManagerError) -> Self {
        hoist::Error::from(e).into()
    }
}

/// A command's result.
pub type Result<T> = std::result::Result<T, IpcError>;

#[cfg(test)]
mod tests {
    use super::*;
    use hoist::secret::KeychainError;
    use hoist::session::SessionError;
    use hoist::sign::SignError;

    fn missing() -> KeychainError {
        KeychainError::Missing {
            profile: "staff".into(),
            kind: "bearer-token",
        }
    }

    /// However deep the domain error sits, a missing secret crosses as `missing-secret` (the UI
    /// then asks for it); everything else as `failed`, with the domain's message.
    #[test]
    fn kinds_cross_the_ipc_from_the_core_kind() {
        let nested = [
            ManagerError::Keychain(missing()),
            ManagerError::Session(SessionError::Keychain(missing())),
            ManagerError::Session(SessionError::Sign(SignError::Keychain(missing()))),
        ];
        for e in nested {
            let message = e.to_string();
            let ipc = IpcError::from(e);
            assert_eq!(ipc.kind, ErrorKind::MissingSecret);
            assert_eq!(ipc.message, message);
        }
        let other = IpcError::from(ManagerError::NotFound(7));
        assert_eq!(other.kind, ErrorKind::Failed);
        assert!(other.message.contains("#7"), "{}", other.message);
        let unavailable = ManagerError::Keychain(KeychainError::Unavailable {
            detail: "no bus".into(),
        });
        assert_eq!(IpcError::from(unavailable).kind, ErrorKind::Failed);
    }
}
