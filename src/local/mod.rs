//! The embedded default: an S3-compatible store (`s3s-fs`) served in-process on 127.0.0.1.
//!
//! With no profile configured, Hoist starts this store under the data dir and signs for it
//! with the same [`SigV4Signer`] that admin mode uses, with fresh random credentials each run.
//! The store verifies every signature, so the embedded default takes the same path as a real
//! bucket: same validation, same signing, same checks by the server — including each part's
//! `Content-MD5` and checksum, which s3s-fs alone does not check (`checked`). Tests use it as
//! their SigV4-verifying S3 server.

use std::path::{Path, PathBuf};

mod checked;
mod cors;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use rand::distr::{Alphanumeric, SampleString};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::secret::Secret;
use crate::sign::sigv4::SigV4Signer;

/// The bucket of the embedded store.
pub const LOCAL_BUCKET: &str = "hoist-local";
/// The access key id of the embedded store.
pub const LOCAL_ACCESS_KEY_ID: &str = "HOISTLOCALSTORE";
/// The region the embedded store is signed for.
pub const LOCAL_REGION: &str = "us-east-1";

/// Why the embedded store did not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Its folder cannot be made or used.
    #[error("cannot prepare the embedded store at {path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The server could not start (e.g. no port).
    #[error("cannot start the embedded store: {0}")]
    Start(String),
}

impl crate::error::HasKind for LocalError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Local
    }
}

/// A running embedded store; stops when dropped or on [`EmbeddedStore::shutdown`].
#[derive(Debug)]
pub struct EmbeddedStore {
    endpoint: url::Url,
    root: PathBuf,
    bucket: String,
    access_key_id: String,
    secret_access_key: Secret,
    stop: watch::Sender<bool>,
}

impl EmbeddedStore {
    /// Starts a store rooted at `root` on a free port of 127.0.0.1 with a fresh random secret
    /// key. The access key id is fixed because the store ties unfinished multipart uploads to it,
    /// and they must survive a restart to be resumed; the secret is never written anywhere.
    pub async fn start(root: &Path) -> Result<Self, LocalError> {
        let sk = Alphanumeric.sample_string(&mut rand::rng(), 40);
        Self::start_with(root, LOCAL_BUCKET, LOCAL_ACCESS_KEY_ID, Secret::new(sk)).await
    }

    /// Starts a store with the given bucket and credentials.
    pub async fn start_with(
        root: &Path,
        bucket: &str,
        access_key_id: &str,
        secret: Secret,
    ) -> Result<Self, LocalError> {
        Self::start_at(
            root,
            ([127, 0, 0, 1], 0).into(),
            bucket,
            access_key_id,
            secret,
        )
        .await
    }

    /// Starts a store with the given bucket and credentials that, like s3s-fs alone (and some
    /// S3-compatible stores), checks no part's `Content-MD5` or checksum and answers none: what
    /// clients meet on such stores.
    pub async fn start_without_part_checks(
        root: &Path,
        bucket: &str,
        access_key_id: &str,
        secret: Secret,
    ) -> Result<Self, LocalError> {
        let addr = ([127, 0, 0, 1], 0).into();
        Self::serve(root, addr, bucket, access_key_id, secret, false, &[]).await
    }

    /// Starts a store listening on `addr` (keep it on loopback) with the given bucket and
    /// credentials: for hoist-server's `--store-listen`, so other S3 tools can reach it too.
    pub async fn start_at(
        root: &Path,
        addr: std::net::SocketAddr,
        bucket: &str,
        access_key_id: &str,
        secret: Secret,
    ) -> Result<Self, LocalError> {
        Self::serve(root, addr, bucket, access_key_id, secret, true, &[]).await
    }

    /// As [`Self::start_at`], answering CORS for pages from `cors_origins` (exact origins, as a
    /// browser sends them), so a web app's browser can upload straight to the store.
    pub async fn start_for_browsers(
        root: &Path,
        addr: std::net::SocketAddr,
        bucket: &str,
        access_key_id: &str,
        secret: Secret,
        cors_origins: &[String],
    ) -> Result<Self, LocalError> {
        Self::serve(
            root,
            addr,
            bucket,
            access_key_id,
            secret,
            true,
            cors_origins,
        )
        .await
    }

    async fn serve(
        root: &Path,
        addr: std::net::SocketAddr,
        bucket: &str,
        access_key_id: &str,
        secret: Secret,
        check_parts: bool,
        cors_origins: &[String],
    ) -> Result<Self, LocalError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LocalError::Io { path, source }
        };
        std::fs::create_dir_all(root.join(bucket)).map_err(io(root))?;
        let root = std::fs::canonicalize(root).map_err(io(root))?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| LocalError::Start(format!("{e:?}")))?;
        let service = {
            let mut b = S3ServiceBuilder::new(checked::CheckedParts::new(fs, check_parts, &root));
            b.set_auth(SimpleAuth::from_single(access_key_id, secret.expose()));
            cors::WithCors {
                inner: b.build(),
                origins: cors_origins.into(),
            }
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| LocalError::Start(format!("{e:?}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| LocalError::Start(format!("{e:?}")))?;
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let socket = tokio::select! {
                    r = listener.accept() => match r {
                        Ok((s, _)) => s,
                        Err(e) => {
                            tracing::warn!("embedded store: accept failed: {e}");
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                let mut stop_conn = stopped.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        _ = stop_conn.changed() => {}
                    }
                });
            }
        });
        let endpoint = url::Url::parse(&format!("http://{addr}"))
            .map_err(|e| LocalError::Start(format!("{e:?}")))?;
        tracing::info!(%endpoint, root = %root.display(), "embedded store started");
        Ok(Self {
            endpoint,
            root,
            bucket: bucket.to_string(),
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret,
            stop,
        })
    }

    /// A signer for this store (path-style, region [`LOCAL_REGION`]).
    pub fn signer(&self) -> SigV4Signer {
        SigV4Signer::new(
            &self.bucket,
            LOCAL_REGION,
            &self.access_key_id,
            self.secret_access_key.clone(),
        )
        .with_endpoint(self.endpoint.clone(), true)
    }

    /// Where the store listens (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> &url::Url {
        &self.endpoint
    }

    /// The bucket files land in.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key id the store accepts.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key the store accepts (random per run unless given).
    pub fn secret_access_key(&self) -> &Secret {
        &self.secret_access_key
    }

    /// Where the store keeps an object on disk.
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.join(&self.bucket).join(key)
    }

    /// The folder holding the bucket's objects.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.join(&self.bucket)
    }

    /// Stops serving; dropping the store does the same.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}
