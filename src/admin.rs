//! Profile administration for the desktop app: list, save (secrets straight into the
//! keychain), remove, choose the active profile, export a profile without secrets, import one,
//! and a health check that proves a profile works before staff depend on it.
//!
//! Secrets only travel one way: in from a password field as a [`Secret`] and into the
//! keychain. What goes back to the UI is whether each one is stored, never its value.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::manager::{write_atomically, Manager, ManagerError};
use crate::profile::{Mode, Profile, ProfileError, LOCAL_PROFILE};
use crate::secret::{Keychain, KeychainError, Secret, SecretKind};
use crate::sign::PutRequest;

/// The `hoist-profile` version this build writes and reads.
pub const PROFILE_EXPORT_VERSION: u32 = 1;
/// Clock differences beyond this fail the health check (S3 itself refuses 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// A profile as the UI lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ProfileEntry {
    pub name: String,
    pub active: bool,
    /// The built-in `local` profile: it cannot be edited or removed.
    pub builtin: bool,
    pub profile: Profile,
    pub secrets: Vec<SecretState>,
}

/// Whether a secret the profile uses is in the keychain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct SecretState {
    pub kind: SecretKind,
    pub required: bool,
    pub stored: bool,
}

/// A secret typed into the UI, on its way to the keychain.
#[derive(Clone, Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct SecretInput {
    pub kind: SecretKind,
    #[ts(type = "string")]
    pub value: Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum CheckStatus {
    Pass,
    Fail,
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct HealthCheck {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct HealthReport {
    pub profile: String,
    /// No check failed.
    pub ok: bool,
    pub checks: Vec<HealthCheck>,
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
        let mut entries = Vec::with_capacity(all.len());
        for profile in all {
            entries.push(ProfileEntry {
                active: active.as_deref() == Some(profile.name.as_str()),
                builtin: profile.name == LOCAL_PROFILE,
                secrets: self.secret_states(&profile).await?,
                name: profile.name.clone(),
                profile,
            });
        }
        Ok(entries)
    }

    async fn secret_states(&self, profile: &Profile) -> Result<Vec<SecretState>, ManagerError> {
        let mut states = Vec::new();
        for (kind, required) in profile.mode.secrets() {
            let name = profile.name.clone();
            let stored = keychain_call(&self.config.keychain, move |k| {
                k.get(&name, kind).map(|s| s.is_some())
            })
            .await?;
            states.push(SecretState {
                kind,
                required,
                stored,
            });
        }
        Ok(states)
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
        profile.name = name.to_string();
        profile.validate()?;
        let allowed = profile.mode.secrets();
        for s in &secrets {
            if !allowed.iter().any(|(k, _)| *k == s.kind) {
                return Err(ManagerError::Invalid(format!(
                    "a {} profile has no {}",
                    profile.mode.name(),
                    s.kind.as_str()
                )));
            }
        }
        if create {
            // With no default set, the only configured profile would silently become the
            // active one: pin the one in use, so that adding a profile never redirects uploads.
            if self.config.profiles.default_name()?.is_none() {
                let current = self.config.profiles.resolve(None)?;
                self.config.profiles.set_default(&current.name)?;
            }
            self.config.profiles.add(profile, false)?;
        } else {
            self.config.profiles.update(profile)?;
        }
        for s in secrets {
            if s.value.expose().trim().is_empty() {
                continue;
            }
            let name = name.to_string();
            keychain_call(&self.config.keychain, move |k| {
                k.set(&name, s.kind, &s.value)
            })
            .await?;
        }
        self.forget_session(name).await;
        self.entry(name).await
    }

    /// Removes a profile and its keychain secrets.
    /// Removes profile `name` and its secrets; returns the secrets the keychain kept.
    pub async fn remove_profile(&self, name: &str) -> Result<Vec<SecretLeftBehind>, ManagerError> {
        let (store, keychain) = (self.config.profiles.clone(), self.config.keychain.clone());
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

    /// Adds the profile in an exported file and makes it active; its secrets (if it needs any)
    /// are for the user to enter next.
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
        self.config
            .profiles
            .add(profile, true)
            .map_err(|e| match e {
                ProfileError::Exists(n) => ManagerError::Invalid(format!(
                    "a profile named '{n}' already exists: remove it first to import this one"
                )),
                other => other.into(),
            })?;
        self.entry(&export.name).await
    }

    /// Checks that profile `name` can sign and put (writing and deleting a small probe
    /// object), that this machine's clock agrees with the server's, and which addressing
    /// style it uses. Failures are reported per check, not as an error.
    pub async fn health_check(&self, name: &str) -> Result<HealthReport, ManagerError> {
        let profile = self.config.profiles.get(name)?;
        let mut checks = Vec::new();
        let report = |checks: Vec<HealthCheck>| HealthReport {
            profile: name.to_string(),
            ok: checks.iter().all(|c| c.status != CheckStatus::Fail),
            checks,
        };
        // A fresh session, so secrets changed since are read again.
        self.forget_session(name).await;
        let session = match self.session(name).await {
            Ok(s) => {
                checks.push(pass("profile", "complete; its secrets are in the keychain"));
                s
            }
            Err(e) => {
                checks.push(fail("profile", e));
                return Ok(report(checks));
            }
        };

        let body: &[u8] = b"Hoist health check: this object is deleted right away.\n";
        let digest = crate::upload::FileDigest {
            sha256: <sha2::Sha256 as sha2::Digest>::digest(body).into(),
            md5: <md5::Md5 as md5::Digest>::digest(body).into(),
            len: body.len() as u64,
        };
        let key = format!(
            "{}.hoist-health/{}.txt",
            profile.prefix,
            uuid::Uuid::new_v4()
        );
        let request = PutRequest {
            key: key.clone(),
            file_name: "hoist-health-check.txt".into(),
            content_type: "text/plain".into(),
            size: digest.len,
            sha256_b64: digest.sha256_b64(),
            md5_b64: digest.md5_b64(),
        };
        let signed = match session
            .signer()
            .presign_put(&request, SystemTime::now())
            .await
        {
            Ok(s) => {
                checks.push(pass("sign", "a presigned PUT was issued"));
                s
            }
            Err(e) => {
                checks.push(fail("sign", e));
                return Ok(report(checks));
            }
        };

        let Some(client) = session.s3_client() else {
            checks.push(skipped(
                "put",
                "a backend profile cannot delete a test object, so none is written: upload a \
                 small file to try it",
            ));
            checks.push(skipped("clock", "the backend signs with its own clock"));
            checks.push(skipped("path style", "the backend chooses the address"));
            return Ok(report(checks));
        };
        let path_style = match &profile.mode {
            Mode::SelfSign { path_style, .. } => *path_style,
            _ => true,
        };
        let style = if path_style {
            "path-style addresses (host/bucket/key)"
        } else {
            "virtual-hosted addresses (bucket.host/key)"
        };
        let http = crate::remote::http::client(crate::remote::http::Purpose::Backend)
            .map_err(ManagerError::Invalid)?;
        let mut put = http.put(signed.url.clone()).body(body.to_vec());
        for (n, v) in &signed.headers {
            put = put.header(n, v);
        }
        let put_failure = match put.send().await {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => {
                let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
                let text = resp.text().await.unwrap_or_default();
                Some(crate::remote::s3::classify_response(status, &headers, &text).to_string())
            }
            Err(e) => Some(crate::remote::s3::network_failure(e).to_string()),
        };
        if let Some(reason) = put_failure {
            checks.push(fail("put", reason));
            checks.push(skipped("clock", "needs a successful put"));
            checks.push(HealthCheck {
                name: "path style".into(),
                status: CheckStatus::Fail,
                detail: format!(
                    "{style} did not work; if the endpoint is not AWS, try switching path style"
                ),
            });
            return Ok(report(checks));
        }
        let now = SystemTime::now();
        match client.delete_object(&key, now).await {
            Ok(server_time) => {
                checks.push(pass(
                    "put",
                    format!("wrote {} bytes to {key} and deleted them", digest.len),
                ));
                checks.push(clock_check(now, server_time));
            }
            Err(e) => {
                checks.push(fail(
                    "put",
                    format!("wrote {key} but could not delete it ({e}); delete it by hand"),
                ));
                checks.push(skipped("clock", "needs a successful delete"));
            }
        }
        checks.push(pass("path style", style));
        Ok(report(checks))
    }
}

fn clock_check(now: SystemTime, server: Option<SystemTime>) -> HealthCheck {
    let Some(server) = server else {
        return skipped("clock", "the server sent no Date header");
    };
    let (skew, direction) = match now.duration_since(server) {
        Ok(d) => (d, "ahead of"),
        Err(e) => (e.duration(), "behind"),
    };
    // The Date header has one-second resolution.
    let secs = skew.as_secs();
    if skew > MAX_CLOCK_SKEW {
        fail(
            "clock",
            format!(
                "this machine's clock is {secs} s {direction} the server's; S3 refuses \
                 signatures more than 15 minutes off: set the clock right (enable NTP)"
            ),
        )
    } else {
        pass("clock", format!("within {} s of the server's", secs.max(1)))
    }
}

fn pass(name: &str, detail: impl ToString) -> HealthCheck {
    check(name, CheckStatus::Pass, detail)
}

fn fail(name: &str, detail: impl ToString) -> HealthCheck {
    check(name, CheckStatus::Fail, detail)
}

fn skipped(name: &str, detail: impl ToString) -> HealthCheck {
    check(name, CheckStatus::Skipped, detail)
}

fn check(name: &str, status: CheckStatus, detail: impl ToString) -> HealthCheck {
    HealthCheck {
        name: name.to_string(),
        status,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_beyond_five_minutes_fails_and_says_which_way() {
        let server = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ok = clock_check(server + Duration::from_secs(2), Some(server));
        assert_eq!(ok.status, CheckStatus::Pass);
        let ahead = clock_check(server + Duration::from_secs(301), Some(server));
        assert_eq!(ahead.status, CheckStatus::Fail);
        assert!(ahead.detail.contains("301 s ahead of"), "{}", ahead.detail);
        let behind = clock_check(server - Duration::from_secs(900), Some(server));
        assert!(behind.detail.contains("900 s behind"), "{}", behind.detail);
        assert_eq!(clock_check(server, None).status, CheckStatus::Skipped);
    }
}
