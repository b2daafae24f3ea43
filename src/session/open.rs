//! A profile made ready: its network (proxy, trust), its [`Destination`] (signer, multipart
//! API and reader chosen by mode, secrets read from the keychain on a blocking thread, the
//! embedded store started for `local`), the queue.

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
        let destination = Destination::connect(&profile, keychain, &network, data_dir).await?;
        Ok(Self::assemble(profile, destination, uploader, queue))
    }

    pub(super) fn assemble(
        profile: Profile,
        destination: Destination,
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
            destination,
            queue,
            control: Control::default(),
            threshold: env_size("HOIST_MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD),
            part_size: env_size("HOIST_PART_SIZE", DEFAULT_PART_SIZE),
        }
    }
}

/// Reads a secret on a blocking thread (the keychain client blocks on D-Bus).
pub(super) async fn read_secret(
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
