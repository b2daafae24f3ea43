//! Profile administration, shared by the CLI and the app: list with secret states, save
//! (secrets straight into the keychain), remove, choose the active profile, export a profile
//! without secrets, import one.
//!
//! Secrets only travel one way: in from a password field (or the CLI's prompt) as a [`Secret`]
//! and into the keychain. What goes back is whether each one is stored, never its value.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{write_atomically, ManagerError};
use super::Manager;
use crate::profile::{Profile, ProfileError, LOCAL_PROFILE};
use crate::secret::{Keychain, KeychainError, Secret, SecretKind};

/// The `hoist-profile` version this build writes and reads.
pub const PROFILE_EXPORT_VERSION: u32 = 1;

/// A profile as the UI lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct ProfileEntry {
    /// The profile's name.
    pub name: String,
    /// New files go to it.
    pub active: bool,
    /// The built-in `local` profile: it cannot be edited or removed.
    pub builtin: bool,
    /// The organisation manages it (a machine-wide file, named here): staff cannot edit or
    /// remove it.
    #[cfg_attr(feature = "ipc", ts(optional))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    /// The profile (never a secret).
    pub profile: Profile,
    /// The secrets it uses, and whether each is stored.
    pub secrets: Vec<SecretState>,
}

/// Whether a secret the profile uses is in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct SecretState {
    /// Which secret.
    pub kind: SecretKind,
    /// The profile cannot upload without it.
    pub required: bool,
    /// It is in the keychain.
    pub stored: bool,
}

/// A secret typed into the UI, on its way to the keychain.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct SecretInput {
    /// Which secret.
    pub kind: SecretKind,
    /// The secret, redacted in every `Debug`.
    #[cfg_attr(feature = "ipc", ts(type = "string"))]
    pub value: Secret,
}

/// The file an exported profile is written as.
#[derive(Serialize, Deserialize)]
struct ProfileExport {
    #[serde(rename = "hoist-profile")]
    version: u32,
    name: String,
    #[serde(flatten)]
    profile: Profile,
}

/// What a new profile starts from, and the secrets each mode keeps: the app's profile form takes
/// its defaults and its secret fields from here, not from copies of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct ProfileTemplate {
    /// A profile with every rule at its default (its mode is `local`; the form sets another).
    pub defaults: Profile,
    /// The secrets a `backend` profile that sends a token keeps.
    pub backend_secrets: Vec<SecretKind>,
    /// The secrets a `self-sign` profile keeps.
    pub self_sign_secrets: Vec<SecretKind>,
    /// The secrets any profile with a proxy keeps.
    pub network_secrets: Vec<SecretKind>,
}

/// The [`ProfileTemplate`] of this build.
pub fn profile_template() -> ProfileTemplate {
    let kinds = |mode: crate::profile::Mode| mode.secrets().into_iter().map(|(k, _)| k).collect();
    ProfileTemplate {
        defaults: Profile::new("", crate::profile::Mode::Local),
        backend_secrets: kinds(crate::profile::Mode::Backend {
            url: String::new(),
            protocol: crate::profile::Protocol::Simple,
            token: true,
        }),
        self_sign_secrets: kinds(crate::profile::Mode::SelfSign {
            bucket: String::new(),
            region: String::new(),
            endpoint: None,
            path_style: false,
            access_key_id: String::new(),
        }),
        network_secrets: vec![SecretKind::ProxyPassword],
    }
}

/// Before profile `name` is removed: when it is signed in with the company's identity
/// provider, signs it out as logout does — the refresh token revoked at the provider, not only
/// deleted here (#29: removal once left it valid). Why revoking failed, if it did (the
/// removal goes on: the provider may be out of reach).
pub async fn sign_out_before_removal(
    store: &crate::profile::ProfileStore,
    keychain: &Keychain,
    name: &str,
) -> Option<String> {
    // A managed profile is not removed (the removal refuses it): its sign-in stays.
    if store.managed_sources().ok()?.contains_key(name) {
        return None;
    }
    let profile = store.get(name).ok()?;
    profile.sign_in.as_ref()?;
    match crate::backend::sign_in::sign_out_profile(&profile, keychain).await {
        Ok(crate::backend::sign_in::SignedOut::NotRevoked(why)) => Some(why),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// A secret the keychain did not delete when its profile was removed.
#[derive(Debug)]
pub struct SecretLeftBehind {
    /// Which secret.
    pub kind: SecretKind,
    /// Why it stayed.
    pub error: KeychainError,
}

/// Removes profile `name` from `store`, then every secret stored for it (also ones its mode no
/// longer uses). The CLI and the app share it: a keychain that fails does not undo the
/// removal; the secrets it kept are returned, for the front end to report.
pub fn remove_profile(
    store: &crate::profile::ProfileStore,
    keychain: &Keychain,
    name: &str,
) -> Result<Vec<SecretLeftBehind>, ProfileError> {
    store.remove(name)?;
    Ok(SecretKind::ALL
        .into_iter()
        .filter_map(|kind| {
            keychain
                .delete(name, kind)
                .err()
                .map(|error| SecretLeftBehind { kind, error })
        })
        .collect())
}

/// Whether each secret `profile` uses is in the keychain.
pub fn secret_states(
    keychain: &Keychain,
    profile: &Profile,
) -> Result<Vec<SecretState>, KeychainError> {
    profile
        .secrets()
        .into_iter()
        .map(|(kind, required)| {
            Ok(SecretState {
                kind,
                required,
                stored: keychain.get(&profile.name, kind)?.is_some(),
            })
        })
        .collect()
}

/// Stores `value` as profile `name`'s secret of `kind` (its mode's main secret when `None`);
/// returns the kind stored. A backend profile given a bearer token starts sending it.
pub fn set_secret(
    store: &crate::profile::ProfileStore,
    keychain: &Keychain,
    name: &str,
    kind: Option<SecretKind>,
    value: &Secret,
) -> Result<SecretKind, ManagerError> {
    let mut profile = store.get(name)?;
    let kind = kind.unwrap_or(profile.mode.main_secret());
    // Storing a token turns it on for the profile: a managed profile is not the user's to
    // change, so a token it does not send is refused before anything is stored.
    let turns_token_on = matches!(
        (kind, &profile.mode),
        (
            SecretKind::BearerToken,
            crate::profile::Mode::Backend { token: false, .. }
        )
    );
    if turns_token_on {
        if let Some(path) = store.managed_sources()?.remove(name) {
            return Err(ProfileError::Managed {
                name: name.to_string(),
                path,
            }
            .into());
        }
    }
    keychain.set(&profile.name, kind, value)?;
    if let (SecretKind::BearerToken, crate::profile::Mode::Backend { token, .. }) =
        (kind, &mut profile.mode)
    {
        if !*token {
            *token = true;
            store.update(profile)?;
        }
    }
    Ok(kind)
}

/// Deletes profile `name`'s secret of `kind` (its mode's main secret when `None`); returns the
/// kind deleted.
pub fn remove_secret(
    store: &crate::profile::ProfileStore,
    keychain: &Keychain,
    name: &str,
    kind: Option<SecretKind>,
) -> Result<SecretKind, ManagerError> {
    let profile = store.get(name)?;
    let kind = kind.unwrap_or(profile.mode.main_secret());
    keychain.delete(&profile.name, kind)?;
    Ok(kind)
}

/// Runs a keychain call on a blocking thread (the Secret Service client blocks on D-Bus).
async fn keychain_call<T: Send + 'static>(
    keychain: &Keychain,
    f: impl FnOnce(&Keychain) -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    let keychain = keychain.clone();
    tokio::task::spawn_blocking(move || f(&keychain))
        .await
        .map_err(|e| KeychainError::Failed {
            detail: e.to_string(),
        })?
}

impl Manager {
    /// The built-in `local` profile and every configured one, by name.
    pub async fn profiles(&self) -> Result<Vec<ProfileEntry>, ManagerError> {
        let store = &self.config.profiles;
        let active = store.resolve(None).ok().map(|p| p.name);
        let mut all = vec![Profile::local()];
        all.extend(store.list()?);
        let mut managed = store.managed_sources()?;
        let mut entries = Vec::with_capacity(all.len());
        for profile in all {
            entries.push(ProfileEntry {
                active: active.as_deref() == Some(profile.name.as_str()),
                builtin: profile.name == LOCAL_PROFILE,
                managed_by: managed
                    .remove(&profile.name)
                    .map(|p| p.display().to_string()),
                secrets: self.secret_states(&profile).await?,
                name: profile.name.clone(),
                profile,
            });
        }
        Ok(entries)
    }

    async fn secret_states(&self, profile: &Profile) -> Result<Vec<SecretState>, ManagerError> {
        let profile = profile.clone();
        Ok(keychain_call(&self.config.keychain, move |k| secret_states(k, &profile)).await?)
    }

    async fn entry(&self, name: &str) -> Result<ProfileEntry, ManagerError> {
        self.profiles()
            .await?
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| ProfileError::NotFound {
                name: name.to_string(),
                available: String::new(),
            })
            .map_err(Into::into)
    }

    /// Creates (`create`) or replaces profile `name`, storing the non-empty `secrets` in the
    /// keychain. The profile is checked before anything is written.
    pub async fn save_profile(
        &self,
        name: &str,
        mut profile: Profile,
        secrets: Vec<SecretInput>,
        create: bool,
    ) -> Result<ProfileEntry, ManagerError> {
        // A managed profile is the organisation's: staff store its secrets, nothing else.
        let managed = !create && self.config.profiles.managed_sources()?.contains_key(name);
        if managed {
            profile = self.config.profiles.get(name)?;
        }
        profile.name = name.to_string();
        profile.validate()?;
        let mut allowed = profile.mode.secrets();
        if profile.network.proxy.is_some() {
            allowed.push((SecretKind::ProxyPassword, false));
        }
        for s in &secrets {
            if !allowed.iter().any(|(k, _)| *k == s.kind) {
                return Err(ManagerError::Invalid(format!(
                    "a {} profile has no {}",
                    profile.mode.name(),
                    s.kind.as_str()
                )));
            }
        }
        if !create {
            // Secrets that would reach another host or mode go before the change is saved.
            let old = self.config.profiles.get(name)?;
            for kind in old.stale_secrets(&profile) {
                let owned = name.to_string();
                keychain_call(&self.config.keychain, move |k| k.delete(&owned, kind)).await?;
            }
        }
        if create && self.config.profiles.get(name).is_ok() {
            return Err(ProfileError::Exists(name.to_string()).into());
        }
        // Secrets first: a keychain that stays locked (its unlock prompt dismissed) or absent
        // leaves no profile behind that would then fail for want of them.
        let mut stored = Vec::new();
        for s in secrets {
            if s.value.expose().trim().is_empty() {
                continue;
            }
            let (owned, kind) = (name.to_string(), s.kind);
            let set = keychain_call(&self.config.keychain, move |k| {
                k.set(&owned, s.kind, &s.value)
            })
            .await;
            if let Err(e) = set {
                if create {
                    self.forget_secrets(name, stored).await;
                }
                return Err(e.into());
            }
            stored.push(kind);
        }
        let saved = if create {
            self.pin_active()
                .and_then(|()| Ok(self.config.profiles.add(profile, false)?))
        } else if managed {
            Ok(())
        } else {
            self.config.profiles.update(profile).map_err(Into::into)
        };
        if let Err(e) = saved {
            if create {
                self.forget_secrets(name, stored).await;
            }
            return Err(e);
        }
        self.forget_session(name).await;
        // A token or key just stored may be what the profile's failed uploads lacked (#31:
        // storing the right token retried none of the files refused for the wrong one).
        if !stored.is_empty() {
            self.retry_failed_of(name).await?;
        }
        self.entry(name).await
    }

    /// Deletes the secrets just stored for a profile that was not created after all.
    async fn forget_secrets(&self, name: &str, kinds: Vec<SecretKind>) {
        for kind in kinds {
            let owned = name.to_string();
            if let Err(e) =
                keychain_call(&self.config.keychain, move |k| k.delete(&owned, kind)).await
            {
                tracing::warn!(
                    "could not delete the {} of profile '{name}' not created: {e}",
                    kind.as_str()
                );
            }
        }
    }

    /// With no default set, the only configured profile would silently become the active one:
    /// pins the one in use, so that adding (or importing) a profile never redirects uploads.
    fn pin_active(&self) -> Result<(), ManagerError> {
        if self.config.profiles.default_name()?.is_none() {
            let current = self.config.profiles.resolve(None)?;
            self.config.profiles.set_default(&current.name)?;
        }
        Ok(())
    }

    /// Removes profile `name` and its secrets (a sign-in revoked first); returns the secrets
    /// the keychain kept.
    pub async fn remove_profile(&self, name: &str) -> Result<Vec<SecretLeftBehind>, ManagerError> {
        let (store, keychain) = (self.config.profiles.clone(), self.config.keychain.clone());
        if let Some(why) = sign_out_before_removal(&store, &keychain, name).await {
            tracing::warn!(
                profile = name,
                "the sign-in was deleted but not revoked: {why}"
            );
        }
        let owned = name.to_string();
        let left = tokio::task::spawn_blocking(move || remove_profile(&store, &keychain, &owned))
            .await
            .map_err(|e| ManagerError::Invalid(e.to_string()))??;
        self.forget_session(name).await;
        Ok(left)
    }

    /// Makes `name` the profile new files go to.
    pub fn set_active(&self, name: &str) -> Result<(), ManagerError> {
        Ok(self.config.profiles.set_default(name)?)
    }

    /// Writes profile `name` to `path` without any secret, for staff to import.
    pub fn export_profile(&self, name: &str, path: &Path) -> Result<(), ManagerError> {
        if name == LOCAL_PROFILE {
            return Err(ManagerError::Invalid(
                "the built-in 'local' profile exists on every machine: there is nothing to export"
                    .into(),
            ));
        }
        let profile = self.config.profiles.get(name)?;
        let export = ProfileExport {
            version: PROFILE_EXPORT_VERSION,
            name: name.to_string(),
            profile,
        };
        let body = toml::to_string_pretty(&export)
            .map_err(|e| ManagerError::Invalid(format!("cannot export: {e}")))?;
        let text = format!(
            "# A Hoist profile, exported without secrets. Open it in Hoist or drop it on the window.\n{body}"
        );
        write_atomically(path, text.as_bytes())
    }

    /// Adds the profile in an exported file, without making it active (the user chooses to use
    /// it); its secrets (if it needs any) are for the user to enter next.
    pub async fn import_profile(&self, path: &Path) -> Result<ProfileEntry, ManagerError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManagerError::io(path, e))?;
        let export: ProfileExport = toml::from_str(&text).map_err(|e| {
            ManagerError::Invalid(format!(
                "{} is not a Hoist profile file: {}",
                path.display(),
                e.message()
            ))
        })?;
        if export.version != PROFILE_EXPORT_VERSION {
            return Err(ManagerError::Invalid(format!(
                "{} is a version {} profile; this Hoist reads version {PROFILE_EXPORT_VERSION}: update Hoist",
                path.display(),
                export.version
            )));
        }
        let mut profile = export.profile;
        profile.name = export.name.clone();
        // A file from elsewhere never takes over by itself: it is added, and the user chooses
        // to use it (the app asks, showing where it sends files).
        self.pin_active()?;
        self.config
            .profiles
            .add(profile, false)
            .map_err(|e| match e {
                ProfileError::Exists(n) => ManagerError::Invalid(format!(
                    "a profile named '{n}' already exists: remove it first to import this one"
                )),
                other => other.into(),
            })?;
        self.entry(&export.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::DEFAULT_KEY_TEMPLATE;

    #[test]
    fn the_form_template_is_the_cores_defaults_and_secret_kinds() {
        let t = profile_template();
        assert_eq!(t.defaults.key_template, DEFAULT_KEY_TEMPLATE);
        assert!(!t.defaults.allow_empty);
        assert_eq!(t.backend_secrets, vec![SecretKind::BearerToken]);
        assert_eq!(
            t.self_sign_secrets,
            vec![SecretKind::SecretAccessKey, SecretKind::SessionToken]
        );
    }
}
