//! hoist-server's tests: router rules with `oneshot`; uploads end to end over real HTTP into
//! the SigV4-verifying embedded store (s3s-fs); and the server under abuse (`limits`).

mod chaos;
mod deploy;
mod end_to_end;
mod exactly_once;
mod limits;
mod oidc;
/// The company's identity provider (oidc-provider), shared with the core's tests.
#[path = "../../../tests/oidc-provider/harness.rs"]
mod oidc_provider;
mod replicas;
mod router;
mod verify;
mod window;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use hoist::local::EmbeddedStore;
use hoist_server::audit::AuditLog;
use hoist_server::config::{FileConfig, PolicyConfig, TokenConfig};
use hoist_server::s3::Bucket;
use hoist_server::{app, AppConfig};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub(crate) const ALICE: &str = "alice-token-0123456789";
pub(crate) const BOB: &str = "bob-token-9876543210xyz";

pub(crate) struct Harness {
    pub dir: tempfile::TempDir,
    pub store: EmbeddedStore,
    pub router: Router,
    pub audit: Arc<Mutex<Vec<u8>>>,
}

/// A server for `signer`'s bucket with no tokens and every setting at its default: what the
/// readiness tests vary one field of.
pub(crate) fn bare_config(signer: hoist::sign::sigv4::SigV4Signer) -> AppConfig {
    AppConfig {
        bucket: Bucket::new(signer),
        tokens: vec![],
        policy: PolicyConfig::default(),
        audit: AuditLog::memory().0,
        upload_id_secret: b"test upload id secret".to_vec(),
        rate_limiter: hoist_server::rate::RateLimiter::local(),
        oidc: None,
        verifier: None,
        cors: Default::default(),
        readiness: Default::default(),
    }
}

pub(crate) fn token(id: &str, plain: &str, prefix: &str) -> TokenConfig {
    TokenConfig {
        id: id.into(),
        sha256: hoist_server::token::hash_token(plain),
        prefix: prefix.into(),
        max_size: None,
        allowed_types: vec![],
        rate_limit_per_minute: None,
        files_per_minute: None,
        bytes_per_minute: None,
    }
}

impl Harness {
    pub(crate) async fn new() -> Self {
        Self::with(
            PolicyConfig::default(),
            vec![
                token("alice", ALICE, "uploads/alice/"),
                token("bob", BOB, "uploads/bob/"),
            ],
        )
        .await
    }

    pub(crate) async fn with(policy: PolicyConfig, tokens: Vec<TokenConfig>) -> Self {
        Self::with_oidc(policy, tokens, None).await
    }

    /// A harness that also accepts the access tokens `oidc` checks.
    pub(crate) async fn with_oidc(
        policy: PolicyConfig,
        tokens: Vec<TokenConfig>,
        oidc: Option<hoist_server::oidc::OidcVerifier>,
    ) -> Self {
        Self::build(policy, tokens, oidc, None, Default::default()).await
    }

    /// Alice's and Bob's harness, answering browsers of `origins` (CORS).
    pub(crate) async fn with_cors(origins: &[&str]) -> Self {
        Self::with_cors_and_bucket_cors(origins, origins).await
    }

    /// Alice's and Bob's harness whose API answers CORS for `origins` and whose store (the
    /// bucket's own CORS rule) for `bucket_origins`.
    pub(crate) async fn with_cors_and_bucket_cors(
        origins: &[&str],
        bucket_origins: &[&str],
    ) -> Self {
        let owned = |list: &[&str]| list.iter().map(|o| o.to_string()).collect::<Vec<_>>();
        let cors = hoist_server::cors::CorsConfig {
            allowed_origins: owned(origins),
        };
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::start_for_browsers(
            dir.path(),
            ([127, 0, 0, 1], 0).into(),
            hoist::local::LOCAL_BUCKET,
            hoist::local::LOCAL_ACCESS_KEY_ID,
            hoist::secret::Secret::new("harness-store-secret"),
            &owned(bucket_origins),
        )
        .await
        .unwrap();
        Self::build_on(
            dir,
            store,
            PolicyConfig::default(),
            vec![
                token("alice", ALICE, "uploads/alice/"),
                token("bob", BOB, "uploads/bob/"),
            ],
            None,
            None,
            cors,
        )
    }

    /// Alice's and Bob's harness, whose uploads `verifier` checks.
    pub(crate) async fn with_verifier(
        policy: PolicyConfig,
        verifier: hoist_server::verify::Verifier,
    ) -> Self {
        Self::build(
            policy,
            vec![
                token("alice", ALICE, "uploads/alice/"),
                token("bob", BOB, "uploads/bob/"),
            ],
            None,
            Some(verifier),
            Default::default(),
        )
        .await
    }

    async fn build(
        policy: PolicyConfig,
        tokens: Vec<TokenConfig>,
        oidc: Option<hoist_server::oidc::OidcVerifier>,
        verifier: Option<hoist_server::verify::Verifier>,
        cors: hoist_server::cors::CorsConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::start(dir.path()).await.unwrap();
        Self::build_on(dir, store, policy, tokens, oidc, verifier, cors)
    }

    fn build_on(
        dir: tempfile::TempDir,
        store: EmbeddedStore,
        policy: PolicyConfig,
        tokens: Vec<TokenConfig>,
        oidc: Option<hoist_server::oidc::OidcVerifier>,
        verifier: Option<hoist_server::verify::Verifier>,
        cors: hoist_server::cors::CorsConfig,
    ) -> Self {
        let file = FileConfig {
            policy,
            tokens,
            cors,
            ..FileConfig::default()
        };
        file.validate_policy().unwrap();
        let (audit_log, audit) = AuditLog::memory();
        let expiry = std::time::Duration::from_secs(file.policy.expiry_secs);
        let router = app(AppConfig {
            bucket: Bucket::new(store.signer().with_expiry(expiry)),
            tokens: file.tokens(None).unwrap(),
            policy: file.policy,
            audit: audit_log,
            upload_id_secret: b"test upload id secret".to_vec(),
            rate_limiter: hoist_server::rate::RateLimiter::local(),
            oidc,
            verifier,
            cors: file.cors,
            readiness: file.readiness,
        });
        Self {
            dir,
            store,
            router,
            audit,
        }
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        (status, json, headers)
    }

    /// A request without a body or token to another router than the harness's.
    pub(crate) async fn call_on(
        &self,
        router: Router,
        method: &str,
        uri: &str,
    ) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json, headers)
    }

    pub(crate) fn audit_lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.audit.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Parts of unfinished multipart uploads the store still holds (s3s-fs keeps them as
    /// `.upload_id-*` files in its root).
    pub(crate) fn pending_parts(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".upload_id-"))
            .count()
    }

    /// Every object the store holds.
    pub(crate) fn store_keys(&self) -> Vec<String> {
        let root = self.store.bucket_dir();
        walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                let rel = e
                    .path()
                    .strip_prefix(&root)
                    .ok()?
                    .to_string_lossy()
                    .into_owned();
                (!rel.starts_with('.')).then_some(rel)
            })
            .collect()
    }

    pub(crate) fn stored(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.store.object_path(key)).ok()
    }
}

pub(crate) fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Hoist's core as staff run it against the Companion protocol at `base` with Alice's token:
/// parts of 5 MiB from 5 MiB on.
pub(crate) fn companion_session(base: &str) -> hoist::session::Session {
    use hoist::remote::MultipartApi;
    let companion = Arc::new(
        hoist::backend::companion::CompanionClient::new(
            url::Url::parse(base).unwrap(),
            Some(hoist::secret::Secret::new(ALICE)),
        )
        .unwrap(),
    );
    let profile = hoist::profile::Profile::new(
        "staff",
        hoist::profile::Mode::Backend {
            url: base.to_string(),
            protocol: hoist::profile::Protocol::Companion,
            token: true,
        },
    );
    let mib = 1024 * 1024;
    hoist::session::Session::with_signer(
        profile,
        Arc::clone(&companion) as Arc<dyn hoist::sign::Signer>,
        hoist::upload::Uploader::new(hoist::retry::RetryPolicy::default()),
    )
    .with_multipart(companion as Arc<dyn MultipartApi>, 5 * mib, 5 * mib)
}

/// Serves `router` on a free port of 127.0.0.1 (as `hoist-server` does); its URL.
pub(crate) async fn listen(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(hoist_server::serve::serve(
        listener,
        router,
        hoist_server::serve::Limits::default(),
        std::future::pending(),
    ));
    url
}

/// A TCP relay in front of a server whose connections can be cut at once (what a flaky link
/// or a restarted load balancer does to requests in flight), and which can go down (refusing
/// every connection, as a stopped server does) and come back on the same address.
pub(crate) struct Relay {
    pub addr: std::net::SocketAddr,
    cut: Arc<tokio::sync::Notify>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    pub(crate) async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(tokio::sync::Notify::new());
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (all, is_down) = (Arc::clone(&cut), Arc::clone(&down));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is reset
                }
                let cut = Arc::clone(&all);
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Self { addr, cut, down }
    }

    /// Drops every connection open now.
    pub(crate) fn cut_all(&self) {
        self.cut.notify_waiters();
    }

    /// Refuses every connection from now on, and drops those open.
    pub(crate) fn go_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut_all();
    }

    /// Serves again.
    pub(crate) fn come_back(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A server on 127.0.0.1 that answers every request with `status_line` (e.g. `404 Not Found`)
/// and an empty body, counting the requests: a store or provider whose calls a test counts.
/// Its address (`127.0.0.1:PORT`) and the count.
pub(crate) async fn counting_server(
    status_line: &'static str,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let answer = format!("HTTP/1.1 {status_line}\r\ncontent-length: 0\r\n\r\n");
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, asked)
}
