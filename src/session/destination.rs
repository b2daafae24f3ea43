//! Where a session's files go, as one value: a profile's [`Destination`] holds everything that
//! reaches its bucket — the signer of single PUTs, the multipart API, the SigV4 client that
//! reads (list, sweep, share links) for profiles that hold the bucket's credentials, and the
//! embedded store for `local`. [`Destination::connect`] builds it from the profile's mode (its
//! secrets read from the keychain); a [`Session`] holds one.

use super::open::read_secret;
use super::*;

/// Everything that reaches a profile's bucket.
pub struct Destination {
    pub(super) signer: Arc<dyn Signer>,
    pub(super) multipart: Option<Arc<dyn MultipartApi>>,
    /// The SigV4 client of self-sign and local profiles (reads, sweeps, share links).
    pub(super) s3: Option<S3Client>,
    #[cfg(feature = "embedded-store")]
    pub(super) local: Option<crate::local::EmbeddedStore>,
}

impl Destination {
    /// A destination reached through `signer` alone (single PUTs; no multipart, no reads).
    pub fn signing(signer: Arc<dyn Signer>) -> Self {
        Self {
            signer,
            multipart: None,
            s3: None,
            #[cfg(feature = "embedded-store")]
            local: None,
        }
    }

    /// `profile`'s destination through `network`: a backend's signer (and multipart API for
    /// Companion), a self-sign profile's SigV4 signer and client, or the embedded store
    /// started in `data_dir` for `local`.
    pub async fn connect(
        profile: &Profile,
        keychain: &Keychain,
        network: &Network,
        data_dir: &Path,
    ) -> Result<Self, SessionError> {
        let (signer, multipart): (Arc<dyn Signer>, Option<Arc<dyn MultipartApi>>) = match &profile
            .mode
        {
            Mode::Backend {
                url,
                token,
                protocol,
            } => {
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
                let bearer = match &profile.sign_in {
                    Some(settings) => {
                        let http = crate::remote::http::client_on(
                            crate::remote::http::Purpose::Backend,
                            network,
                        )
                        .map_err(SignError::Signing)?;
                        crate::backend::Bearer::SignedIn(Arc::new(
                            crate::backend::sign_in::SignedIn::new(
                                &profile.name,
                                settings.clone(),
                                http,
                                keychain.clone(),
                                Arc::new(crate::retry::SystemClock),
                            ),
                        ))
                    }
                    None => token.into(),
                };
                match protocol {
                    Protocol::Simple => (
                        Arc::new(
                            BackendSigner::new(url, None)?
                                .with_network(network)?
                                .with_bearer(bearer),
                        ),
                        None,
                    ),
                    Protocol::Companion => {
                        let c = Arc::new(
                            CompanionClient::new(url, None)?
                                .with_network(network)?
                                .with_bearer(bearer),
                        );
                        (Arc::clone(&c) as Arc<dyn Signer>, Some(c))
                    }
                }
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
                let client = S3Client::new(s.clone())
                    .with_network(network)
                    .map_err(|e| SessionError::Network(NetworkError::Tls(e)))?;
                return Ok(Self {
                    signer: Arc::new(s),
                    multipart: Some(Arc::new(client.clone())),
                    s3: Some(client),
                    #[cfg(feature = "embedded-store")]
                    local: None,
                });
            }
            Mode::Local => return Self::local(data_dir).await,
        };
        Ok(Self {
            signer,
            multipart,
            s3: None,
            #[cfg(feature = "embedded-store")]
            local: None,
        })
    }

    #[cfg(feature = "embedded-store")]
    async fn local(data_dir: &Path) -> Result<Self, SessionError> {
        let store = crate::local::EmbeddedStore::start(&data_dir.join("store")).await?;
        let signer = store.signer();
        let client = S3Client::new(signer.clone());
        Ok(Self {
            signer: Arc::new(signer),
            multipart: Some(Arc::new(client.clone())),
            s3: Some(client),
            local: Some(store),
        })
    }

    #[cfg(not(feature = "embedded-store"))]
    async fn local(_data_dir: &Path) -> Result<Self, SessionError> {
        Err(SessionError::NoEmbeddedStore)
    }

    /// Signs PUTs for single-request uploads.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// The multipart API, when the destination offers one.
    pub fn multipart(&self) -> Option<&Arc<dyn MultipartApi>> {
        self.multipart.as_ref()
    }

    /// The SigV4 client of self-sign and local profiles.
    pub fn s3_client(&self) -> Option<&S3Client> {
        self.s3.as_ref()
    }

    /// For the `local` profile, the embedded store files land in.
    #[cfg(feature = "embedded-store")]
    pub fn local_store(&self) -> Option<&crate::local::EmbeddedStore> {
        self.local.as_ref()
    }
}
