//! A session: one profile made ready to upload (secrets read from the keychain, the signer
//! chosen, the embedded store started for `local`), and batches of files sent under the
//! profile's concurrency limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use crate::key::{self, KeyContext, KeyError};
use crate::profile::{Mode, Profile, ProfileError};
use crate::retry::RetryPolicy;
use crate::secret::{Keychain, KeychainError, SecretKind};
use crate::sign::backend::BackendSigner;
use crate::sign::sigv4::SigV4Signer;
use crate::sign::{SignError, Signer};
use crate::transfer::{ProgressFn, TransferError, UploadReceipt, Uploader};
use crate::validate::{self, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[cfg(feature = "embedded-store")]
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
    #[error("the 'local' profile needs Hoist built with the `embedded-store` feature")]
    NoEmbeddedStore,
}

/// Why one file did not upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("{0}")]
    Transfer(#[from] TransferError),
}

/// The result for one file of a batch.
#[derive(Debug)]
pub struct FileOutcome {
    pub path: PathBuf,
    pub result: Result<UploadReceipt, UploadError>,
}

/// A profile ready to upload.
pub struct Session {
    profile: Profile,
    signer: Arc<dyn Signer>,
    uploader: Uploader,
    #[cfg(feature = "embedded-store")]
    local: Option<crate::local::EmbeddedStore>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("profile", &self.profile.name)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Prepares `profile`: reads its secrets from `keychain` (not for `local`), builds its signer.
    pub async fn open(
        profile: Profile,
        keychain: &Keychain,
        retry: RetryPolicy,
    ) -> Result<Self, SessionError> {
        profile.validate()?;
        let uploader = Uploader::new(retry);
        let signer: Arc<dyn Signer> = match &profile.mode {
            Mode::Backend { url, token, .. } => {
                let url = url::Url::parse(url)
                    .map_err(|e| ProfileError::Invalid(format!("backend URL: {e}")))?;
                let token = if *token {
                    Some(
                        read_secret(keychain, &profile.name, SecretKind::BearerToken)
                            .await?
                            .ok_or_else(|| KeychainError::Missing {
                                profile: profile.name.clone(),
                                kind: SecretKind::BearerToken.as_str(),
                            })?,
                    )
                } else {
                    None
                };
                Arc::new(BackendSigner::new(url, token)?)
            }
            Mode::SelfSign {
                bucket,
                region,
                endpoint,
                path_style,
                access_key_id,
            } => {
                let secret = read_secret(keychain, &profile.name, SecretKind::SecretAccessKey)
                    .await?
                    .ok_or_else(|| KeychainError::Missing {
                        profile: profile.name.clone(),
                        kind: SecretKind::SecretAccessKey.as_str(),
                    })?;
                let token = read_secret(keychain, &profile.name, SecretKind::SessionToken).await?;
                let mut s = SigV4Signer::new(bucket, region, access_key_id, secret)
                    .with_session_token(token)
                    .with_path_style(*path_style);
                if let Some(e) = endpoint {
                    let e = url::Url::parse(e)
                        .map_err(|err| ProfileError::Invalid(format!("endpoint: {err}")))?;
                    s = s.with_endpoint(e, *path_style);
                }
                Arc::new(s)
            }
            Mode::Local => return Self::open_local(profile, uploader).await,
        };
        Ok(Session {
            profile,
            signer,
            uploader,
            #[cfg(feature = "embedded-store")]
            local: None,
        })
    }

    #[cfg(feature = "embedded-store")]
    async fn open_local(profile: Profile, uploader: Uploader) -> Result<Self, SessionError> {
        let store =
            crate::local::EmbeddedStore::start(&crate::profile::data_dir().join("store")).await?;
        Ok(Session {
            profile,
            signer: Arc::new(store.signer()),
            uploader,
            local: Some(store),
        })
    }

    #[cfg(not(feature = "embedded-store"))]
    async fn open_local(_profile: Profile, _uploader: Uploader) -> Result<Self, SessionError> {
        Err(SessionError::NoEmbeddedStore)
    }

    /// A session with a signer and uploader of the caller's choosing.
    pub fn with_signer(profile: Profile, signer: Arc<dyn Signer>, uploader: Uploader) -> Self {
        Session {
            profile,
            signer,
            uploader,
            #[cfg(feature = "embedded-store")]
            local: None,
        }
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// For the `local` profile, the embedded store files land in.
    #[cfg(feature = "embedded-store")]
    pub fn local_store(&self) -> Option<&crate::local::EmbeddedStore> {
        self.local.as_ref()
    }

    /// Validates and uploads one file.
    pub async fn upload(
        &self,
        path: &Path,
        progress: &ProgressFn,
    ) -> Result<UploadReceipt, UploadError> {
        let checked = validate::check_file(path, &self.profile).await?;
        let key = key::build_key(
            &self.profile.prefix,
            &self.profile.key_template,
            &checked.file_name,
            KeyContext::now_random(),
        )?;
        Ok(self
            .uploader
            .upload(&checked, &key, self.signer.as_ref(), progress)
            .await?)
    }

    /// Uploads `paths`, at most the profile's concurrency at once; `progress_for(i)` gives the
    /// callback for `paths[i]`. Outcomes come back in the order of `paths`.
    pub async fn upload_all(
        &self,
        paths: &[PathBuf],
        progress_for: impl Fn(usize) -> ProgressFn,
    ) -> Vec<FileOutcome> {
        let mut outcomes: Vec<(usize, FileOutcome)> = stream::iter(paths.iter().enumerate())
            .map(|(i, p)| {
                let progress = progress_for(i);
                async move {
                    let result = self.upload(p, &progress).await;
                    (
                        i,
                        FileOutcome {
                            path: p.clone(),
                            result,
                        },
                    )
                }
            })
            .buffer_unordered(self.profile.concurrency.max(1))
            .collect()
            .await;
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, o)| o).collect()
    }
}

/// Reads a secret on a blocking thread (the keychain client blocks on D-Bus).
async fn read_secret(
    keychain: &Keychain,
    profile: &str,
    kind: SecretKind,
) -> Result<Option<crate::secret::Secret>, KeychainError> {
    let keychain = keychain.clone();
    let profile = profile.to_string();
    tokio::task::spawn_blocking(move || keychain.get(&profile, kind))
        .await
        .map_err(|e| KeychainError::Failed {
            detail: e.to_string(),
        })?
}
