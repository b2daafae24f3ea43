//! [`Error`]: the one error a front end needs to handle, with an [`ErrorKind`] to branch on
//! and a sentence to show. Each domain keeps its own typed error (`ValidationError`,
//! `TransferError`, `KeychainError`, …); each tells its kind through [`HasKind`], and converts
//! into [`Error`]. Front ends never match on messages: they match on the kind, and choose their
//! own advice (a CLI command, a button) for it, helped by the error's [`Hint`]: what would fix
//! it, with the names a front end needs to say so. Messages in the core never name a front
//! end's commands.

use std::fmt;

/// What kind of failure an [`Error`] is: what a front end may branch on. It crosses the
/// desktop's IPC as is (kebab-case, the names of [`ErrorKind::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[cfg_attr(feature = "ipc", ts(export))]
#[non_exhaustive]
pub enum ErrorKind {
    /// A profile's secret is not in the keychain: ask for it.
    MissingSecret,
    /// The file changed while it was being uploaded.
    SourceChanged,
    /// The upload was paused; it resumes where it stopped.
    Paused,
    /// The upload was cancelled.
    Cancelled,
    /// The store or backend refused, and would refuse again (signature, access, integrity).
    RemotePermanent,
    /// The store or backend kept failing in a way that may pass (unavailable, throttling).
    RemoteTransient,
    /// The input is not acceptable: a file, a profile, a key, a name.
    InvalidInput,
    /// A local resource failed: the keychain, the queue database, a file.
    Local,
    /// A backend profile's sign-in with the identity provider is missing or expired: sign in.
    SignedOut,
}

impl ErrorKind {
    /// A stable kebab-case name (what crosses the IPC and `--json` output).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingSecret => "missing-secret",
            Self::SourceChanged => "source-changed",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::RemotePermanent => "remote-permanent",
            Self::RemoteTransient => "remote-transient",
            Self::InvalidInput => "invalid-input",
            Self::Local => "local",
            Self::SignedOut => "signed-out",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What would fix an error, with the names a front end needs to say so in its own words. It
/// crosses the desktop's IPC as `{"hint": "store-secret", "profile": …, "kind": …}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "hint", rename_all = "kebab-case")]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[cfg_attr(feature = "ipc", ts(export))]
#[non_exhaustive]
pub enum Hint {
    /// Store the profile's secret of this kind in the keychain.
    StoreSecret {
        /// The profile.
        profile: String,
        /// The secret's kind (`bearer-token`, …).
        kind: &'static str,
    },
    /// Add a profile of that name (or use one of those configured).
    AddProfile,
    /// Remove the profile of this name first.
    RemoveProfile {
        /// The profile in the way.
        profile: String,
    },
    /// Name the profile to use, or make one the default.
    ChooseProfile,
    /// Remove the unfinished uploads left on the store (`hoist sweep` in the CLI).
    Sweep,
    /// The backend refused the profile's bearer token: store the right one.
    CheckToken,
    /// Nobody is signed in to the profile's identity provider, or the sign-in expired: sign in.
    SignIn,
}

/// An error that can say what kind it is.
pub trait HasKind {
    /// The kind of this error.
    fn kind(&self) -> ErrorKind;

    /// What would fix it, when something would.
    fn hint(&self) -> Option<Hint> {
        None
    }
}

/// A failure of any of Hoist's domains: its kind, its hint and the domain error itself.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    hint: Option<Hint>,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What would fix it, when something would.
    pub fn hint(&self) -> Option<&Hint> {
        self.hint.as_ref()
    }

    /// The domain error, to downcast when a front end needs its details.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self.source.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

impl<E> From<E> for Error
where
    E: HasKind + std::error::Error + Send + Sync + 'static,
{
    fn from(e: E) -> Self {
        Self {
            kind: e.kind(),
            hint: e.hint(),
            source: Box::new(e),
        }
    }
}
