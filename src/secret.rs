//! Secrets: a string type that never prints itself, and the OS keychain that holds them.
//!
//! Hoist keeps secret access keys, session tokens and backend bearer tokens only in the
//! platform keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on
//! Windows) through the `keyring` crate. There is no plaintext fallback: when no keychain is
//! reachable the caller gets [`KeychainError::Unavailable`] with what to do about it.

use std::fmt;

/// A secret value. `Debug` and `Display` print `[redacted]`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call this only where the value is handed to a signer or a header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which secret of a profile an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum SecretKind {
    /// The AWS secret access key of a `self-sign` profile.
    SecretAccessKey,
    /// An optional AWS session token of a `self-sign` profile (temporary credentials).
    SessionToken,
    /// The bearer token a `backend` profile sends to the presign backend.
    BearerToken,
    /// The password of the proxy a profile names (basic authentication).
    ProxyPassword,
    /// A backend profile's sign-in with the identity provider: its refresh token and who
    /// signed in (`hoist login`).
    SignIn,
}

impl SecretKind {
    /// Every kind of secret a profile may have stored.
    pub const ALL: [Self; 5] = [
        Self::SecretAccessKey,
        Self::SessionToken,
        Self::BearerToken,
        Self::ProxyPassword,
        Self::SignIn,
    ];

    /// The kebab-case name (`--kind` and the IPC use it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretAccessKey => "secret-access-key",
            Self::SessionToken => "session-token",
            Self::BearerToken => "bearer-token",
            Self::ProxyPassword => "proxy-password",
            Self::SignIn => "sign-in",
        }
    }
}

/// Why the keychain did not give or take a secret.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error(
        "no OS keychain is available ({detail}); Hoist never keeps secrets in files, so start a \
         keychain service (on Linux a Secret Service such as gnome-keyring in your session) and retry"
    )]
    /// No keychain answers (no Secret Service on Linux, for one).
    Unavailable {
        /// What the platform said.
        detail: String,
    },
    #[error(
        "the keychain stayed locked ({detail}): unlock it when the system asks (on Linux, with \
         your login keyring's password) and try again"
    )]
    /// The keychain is locked and was not unlocked: its prompt was dismissed or could not show.
    Locked {
        /// What the platform said.
        detail: String,
    },
    #[error("no {kind} is stored for profile '{profile}'")]
    /// The profile needs a secret that is not stored.
    Missing {
        /// The profile.
        profile: String,
        /// Which secret (`secret-access-key`, `session-token`, `bearer-token`).
        kind: &'static str,
    },
    #[error("the keychain refused the request: {detail}")]
    /// The keychain refused.
    Failed {
        /// What it said.
        detail: String,
    },
}

impl crate::error::HasKind for KeychainError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            Self::Missing { .. } => crate::error::ErrorKind::MissingSecret,
            _ => crate::error::ErrorKind::Local,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Missing { profile, kind } => Some(crate::error::Hint::StoreSecret {
                profile: profile.clone(),
                kind,
            }),
            _ => None,
        }
    }
}

/// The keychain under one service name. The app and CLI use [`Keychain::default`]: `"hoist"`,
/// or `HOIST_KEYCHAIN_SERVICE` when set (tests use their own name so they never touch a user's
/// entries).
#[derive(Clone, Debug)]
pub struct Keychain {
    service: String,
}

impl Default for Keychain {
    fn default() -> Self {
        Self::new(std::env::var("HOIST_KEYCHAIN_SERVICE").unwrap_or_else(|_| "hoist".to_string()))
    }
}

impl Keychain {
    /// The keychain entries under `service`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, profile: &str, kind: SecretKind) -> Result<keyring::Entry, KeychainError> {
        let user = format!("{profile}/{}", kind.as_str());
        keyring::Entry::new(&self.service, &user).map_err(map_error)
    }

    /// Stores `value` for the profile, replacing any earlier one.
    pub fn set(
        &self,
        profile: &str,
        kind: SecretKind,
        value: &Secret,
    ) -> Result<(), KeychainError> {
        self.entry(profile, kind)?
            .set_password(value.expose())
            .map_err(map_error)
    }

    /// The stored value, or `None` when there is none.
    pub fn get(&self, profile: &str, kind: SecretKind) -> Result<Option<Secret>, KeychainError> {
        match self.entry(profile, kind)?.get_password() {
            Ok(v) => Ok(Some(Secret::new(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    /// The stored value, or [`KeychainError::Missing`] saying how to store it.
    pub fn require(&self, profile: &str, kind: SecretKind) -> Result<Secret, KeychainError> {
        self.get(profile, kind)?
            .ok_or_else(|| KeychainError::Missing {
                profile: profile.to_string(),
                kind: kind.as_str(),
            })
    }

    /// Deletes the value; deleting one that is not there is not an error.
    pub fn delete(&self, profile: &str, kind: SecretKind) -> Result<(), KeychainError> {
        match self.entry(profile, kind)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }
}

fn map_error(e: keyring::Error) -> KeychainError {
    // keyring's messages name the service and account, never the secret.
    match e {
        // The Secret Service answers a locked collection, a dismissed unlock prompt, or one
        // that could not be shown (no prompter) with this one.
        keyring::Error::NoStorageAccess(inner) => KeychainError::Locked {
            detail: inner.to_string(),
        },
        keyring::Error::NoDefaultStore | keyring::Error::PlatformFailure(_) => {
            KeychainError::Unavailable {
                detail: e.to_string(),
            }
        }
        other => KeychainError::Failed {
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
    }
}
