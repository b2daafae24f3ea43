//! The one error shape that crosses the IPC: `{kind, hint, message}`, the core's [`ErrorKind`]
//! and [`Hint`] as they are (their TypeScript types are generated from the core's), so the UI
//! branches on the same kinds the CLI does and words its own advice from the hint.

use hoist::app::ManagerError;
use hoist::{ErrorKind, Hint};
use serde::Serialize;
use ts_rs::TS;

/// The error every command answers with.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct IpcError {
    /// What the UI may branch on.
    pub kind: ErrorKind,
    /// What would fix it, when something would: the UI says it in its own words.
    pub hint: Option<Hint>,
    /// What to show.
    pub message: String,
}

impl IpcError {
    /// An error of the shell itself (no core error behind it): a local resource failed.
    pub fn failed(message: String) -> Self {
        Self {
            kind: ErrorKind::Local,
            hint: None,
            message,
        }
    }
}

impl From<hoist::Error> for IpcError {
    fn from(e: hoist::Error) -> Self {
        Self {
            kind: e.kind(),
            hint: e.hint().cloned(),
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

    /// However deep the domain error sits, a missing secret crosses as `missing-secret` with the
    /// hint naming the profile and the secret (the UI then asks for it); every other error with
    /// the core's own kind and the domain's message (#28: the IPC once shrank nine kinds to two
    /// and dropped the hint).
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
            assert_eq!(
                ipc.hint,
                Some(Hint::StoreSecret {
                    profile: "staff".into(),
                    kind: "bearer-token"
                })
            );
            assert_eq!(ipc.message, message);
            let json = serde_json::to_value(&ipc).unwrap();
            assert_eq!(json["kind"], "missing-secret");
            assert_eq!(json["hint"]["hint"], "store-secret");
            assert_eq!(json["hint"]["profile"], "staff");
        }
        let other = IpcError::from(ManagerError::NotFound(7));
        assert_eq!(
            other.kind,
            hoist::Error::from(ManagerError::NotFound(7)).kind()
        );
        assert_eq!(other.hint, None);
        assert!(other.message.contains("#7"), "{}", other.message);
        let unavailable = ManagerError::Keychain(KeychainError::Unavailable {
            detail: "no bus".into(),
        });
        assert_eq!(IpcError::from(unavailable).kind, ErrorKind::Local);
    }
}
