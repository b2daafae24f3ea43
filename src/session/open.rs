//! A profile made ready: its secrets read from the keychain (on a blocking thread), its network
//! (proxy, trust), its signer and multipart API chosen by mode, the embedded store started for
//! `local`.

use super::*;

fn env_size(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| crate::profile::parse_size(&v).ok())
        .unwrap_or(default)
}

impl Session {
    /// Prepares `profile`: reads its secrets from `keychain` (not for `local`), builds its signer,
    /// opens the queue in the data dir.
    pub async fn open(
        profile: Profile,
        keychain: &Keychain,
        retry: RetryPolicy,
    ) -> Result<Self, SessionError> {
        let queue = Arc::new(Queue::open_default()?);
        Self::open_in(profile, keychain, retry, queue, &crate::profile::data_dir()).await
    }

    /// [`Session::open`] with a queue and a data dir (where `local` keeps its store) of the
    /// caller's.
    pub async fn open_in(
        profile: Profile,
        keychain: &Keychain,
        retry: RetryPolicy,
        queue: Arc<Queue>,
        data_dir: &Path,
    ) -> Result<Self, SessionError> {
        profile.validate()?;
        let password = match profile.network.proxy {
            Some(_) => read_secret(keychain, &profile.name, SecretKind::ProxyPassword).await?,
            None => None,
        };
        let network = Network::for_profile(&profile.name, &profile.network, password.as_ref())?;
        let uploader = Uploader::new(retry)
            .with_network(&network)
            .map_err(|e| SessionError::Network(NetworkError::Tls(e)))?;
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
                            &network,
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
                                .with_network(&network)?
                                .with_bearer(bearer),
                        ),
                        None,
                    ),
                    Protocol::Companion => {
                        let c = Arc::new(
                            CompanionClient::new(url, None)?
                                .with_network(&network)?
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
                    .with_network(&network)
                    .map_err(|e| SessionError::Network(NetworkError::Tls(e)))?;
                let mut session = Self::assemble(
                    profile.clone(),
                    Arc::new(s),
                    Some(Arc::new(client.clone())),
                    uploader,
                    queue,
                );
                session.s3 = Some(client);
                return Ok(session);
            }
            Mode::Local => return Self::open_local(profile, uploader, queue, data_dir).await,
        };
        Ok(Self::assemble(profile, signer, multipart, uploader, queue))
    }

    pub(super) fn assemble(
        profile: Profile,
        signer: Arc<dyn Signer>,
        multipart: Option<Arc<dyn MultipartApi>>,
        uploader: Uploader,
        queue: Arc<Queue>,
    ) -> Self {
        let profile_limit = RateLimit::new(profile.network.limit_rate);
        Self {
            parts_limit: Arc::new(Semaphore::new(profile.concurrency.max(1))),
            part_memory: Arc::new(Semaphore::new(PART_MEMORY_MIB)),
            uploader: uploader
                .with_checksum(profile.checksum)
                .with_object(profile.object.clone())
                .with_limit(profile_limit.clone()),
            profile_limit,
            profile,
            signer,
            multipart,
            s3: None,
            queue,
            control: Control::default(),
            threshold: env_size("HOIST_MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD),
            part_size: env_size("HOIST_PART_SIZE", DEFAULT_PART_SIZE),
            #[cfg(feature = "embedded-store")]
            local: None,
        }
    }

    #[cfg(feature = "embedded-store")]
    async fn open_local(
        profile: Profile,
        uploader: Uploader,
        queue: Arc<Queue>,
        data_dir: &Path,
    ) -> Result<Self, SessionError> {
        let store = crate::local::EmbeddedStore::start(&data_dir.join("store")).await?;
        let signer = store.signer();
        let client = S3Client::new(signer.clone());
        let mut s = Self::assemble(
            profile,
            Arc::new(signer),
            Some(Arc::new(client.clone())),
            uploader,
            queue,
        );
        s.s3 = Some(client);
        s.local = Some(store);
        Ok(s)
    }

    #[cfg(not(feature = "embedded-store"))]
    async fn open_local(
        _profile: Profile,
        _uploader: Uploader,
        _queue: Arc<Queue>,
        _data_dir: &Path,
    ) -> Result<Self, SessionError> {
        Err(SessionError::NoEmbeddedStore)
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
