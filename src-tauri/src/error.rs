//! The one error shape that crosses the IPC: `{kind, message}`.

use hoist::manager::ManagerError;
use serde::Serialize;
use ts_rs::TS;

/// What the UI branches on; everything else is shown as the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum ErrorKind {
    /// A profile's secret is not in the keychain: the UI asks for it.
    MissingSecret,
    Failed,
}

#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct IpcError {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<ManagerError> for IpcError {
    fn from(e: ManagerError) -> Self {
        let kind = match e.missing_secret() {
            Some(_) => ErrorKind::MissingSecret,
            None => ErrorKind::Failed,
        };
        IpcError {
            kind,
            message: e.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, IpcError>;
