//! Company networks: uploads through a real proxy (tinyproxy, with basic authentication and a
//! log of every request), to a TLS store whose CA only the profile trusts, through a
//! TLS-intercepting proxy (mitmproxy), and under a bandwidth limit changed mid-upload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist::profile::{NetworkSettings, Profile};
use hoist::queue::Queue;
use hoist::retry::RetryPolicy;
use hoist::secret::{Keychain, Secret, SecretKind};
use hoist::session::Session;
use hoist::upload::TransferEvent;

use crate::support::network::{Mitmproxy, Tinyproxy, TlsFront, TEST_CA_NAME};
use crate::support::{self, Store};

/// A keychain of the test's own holding the store's secret (and `proxy_password`).
struct Secrets {
    keychain: Keychain,
    profile: String,
}

impl Secrets {
    fn new(profile: &str, proxy_password: Option<&str>) -> Self {
        let keychain = Keychain::new(format!("hoist-net-test-{}", uuid::Uuid::new_v4()));
        keychain
            .set(
                profile,
                SecretKind::SecretAccessKey,
                &Secret::new(support::SECRET_ACCESS_KEY),
            )
            .expect("a Secret Service must be running");
        if let Some(p) = proxy_password {
            keychain
                .set(profile, SecretKind::ProxyPassword, &Secret::new(p))
                .unwrap();
        }
        Self {
            keychain,
            profile: profile.to_string(),
        }
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        for kind in SecretKind::ALL {
            let _ = self.keychain.delete(&self.profile, kind);
        }
    }
}

/// A self-sign profile of `store`'s bucket reached at `endpoint` (a TLS front of it).
fn at_endpoint(store: &Store, name: &str, endpoint: &str) -> Profile {
    let mut p = store.self_sign_profile(name);
    if let hoist::profile::Mode::SelfSign { endpoint: e, .. } = &mut p.mode {
        *e = Some(endpoint.to_string());
    }
    p
}

async fn session(profile: Profile, secrets: &Secrets) -> Result<Session, String> {
    let data = tempfile::tempdir().unwrap();
    Session::open_in(
        profile,
        &secrets.keychain,
        RetryPolicy::default(),
        Arc::new(Queue::in_memory().unwrap()),
        data.path(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Uploads `content` through `profile`; the key it landed at, or the error a user sees.
async fn upload(profile: Profile, secrets: &Secrets, content: &[u8]) -> Result<String, String> {
    let session = session(profile, secrets).await?;
    let files = tempfile::tempdir().unwrap();
    let path = support::write(files.path(), "report.bin", content);
    let (progress, _) = support::recorder();
    session
        .upload(&path, &progress)
        .await
        .map(|r| r.key)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn uploads_go_through_the_profiles_proxy_with_its_password_from_the_keychain() {
    let store = Store::start().await;
    let proxy = Tinyproxy::start(Some(("alice", "s3cret-pw")));
    let mut profile = store.self_sign_profile("corp-proxy");
    let port = proxy.url.rsplit(':').next().unwrap().to_string();
    profile.network = NetworkSettings {
        proxy: Some(format!("http://alice@127.0.0.1:{port}")),
        ..NetworkSettings::default()
    };
    let secrets = Secrets::new("corp-proxy", Some("s3cret-pw"));
    let content = support::bytes(700_000, 3);
    let key = upload(profile, &secrets, &content).await.expect("uploads");
    assert_eq!(
        store.stored_sha256(&key),
        Some(support::sha256_hex(&content))
    );
    let requests = proxy.requests();
    let store_url = store.store.endpoint().to_string();
    let store_url = store_url.trim_end_matches('/');
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("PUT {store_url}/test-bucket/{key}"))),
        "the PUT went through the proxy: {requests:?}"
    );
    assert!(
        requests.iter().all(|r| r.contains(store_url)),
        "every request went to the store through the proxy: {requests:?}"
    );
}

#[tokio::test]
async fn a_proxy_that_wants_a_password_says_how_to_give_it() {
    let store = Store::start().await;
    let proxy = Tinyproxy::start(Some(("alice", "s3cret-pw")));
    let mut profile = store.self_sign_profile("corp-noauth");
    profile.network.proxy = Some(proxy.url.clone());
    let secrets = Secrets::new("corp-noauth", None);
    let error = upload(profile, &secrets, b"hello\n").await.unwrap_err();
    assert!(
        error.contains("proxy asks for a user name and password (HTTP 407)")
            && error.contains("proxy-password secret"),
        "{error}"
    );
    assert!(
        store.keys().is_empty(),
        "nothing landed: {:?}",
        store.keys()
    );

    // A user in the URL with no password stored is caught before anything is sent.
    let mut profile = store.self_sign_profile("corp-noauth");
    let port = proxy.url.rsplit(':').next().unwrap().to_string();
    profile.network.proxy = Some(format!("http://alice@127.0.0.1:{port}"));
    let data = tempfile::tempdir().unwrap();
    let queue = Arc::new(Queue::in_memory().unwrap());
    let error = Session::open_in(
        profile,
        &secrets.keychain,
        RetryPolicy::default(),
        queue,
        data.path(),
    )
    .await
    .map(|_| ())
    .map_err(hoist::Error::from)
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no proxy password in the keychain"),
        "{error}"
    );
    // The core names what to store; each front end says how (#28: no CLI command in core text).
    assert!(!error.to_string().contains("hoist "), "{error}");
    assert_eq!(
        error.hint(),
        Some(&hoist::Hint::StoreSecret {
            profile: "corp-noauth".into(),
            kind: "proxy-password"
        })
    );
}

#[tokio::test]
async fn a_company_ca_file_lets_uploads_reach_a_tls_store_and_without_it_the_issuer_is_named() {
    let store = Store::start().await;
    let front = TlsFront::start(store.store.endpoint().as_str()).await;
    let on_tls = |ca_file: Option<std::path::PathBuf>| {
        let mut p = at_endpoint(&store, "corp-tls", &front.url);
        p.network.ca_file = ca_file;
        p
    };
    let secrets = Secrets::new("corp-tls", None);
    let content = support::bytes(300_000, 9);

    let error = upload(on_tls(None), &secrets, &content).await.unwrap_err();
    assert!(
        error.contains(&format!("issued by \"CN={TEST_CA_NAME}\""))
            && error.contains("does not trust")
            && error.contains("ca_file"),
        "{error}"
    );

    let key = upload(on_tls(Some(front.ca_file.clone())), &secrets, &content)
        .await
        .expect("uploads over TLS with the company CA trusted");
    assert_eq!(
        store.stored_sha256(&key),
        Some(support::sha256_hex(&content))
    );
}

#[tokio::test]
async fn an_intercepting_proxy_is_named_and_uploads_pass_once_its_ca_is_trusted() {
    let store = Store::start().await;
    let front = TlsFront::start(store.store.endpoint().as_str()).await;
    let mitm = Mitmproxy::start(&front.ca_file);
    let through_mitm = |ca_file: std::path::PathBuf| {
        let mut p = at_endpoint(&store, "corp-mitm", &front.url);
        p.network.proxy = Some(mitm.url.clone());
        p.network.ca_file = Some(ca_file);
        p
    };
    let secrets = Secrets::new("corp-mitm", None);
    let content = support::bytes(200_000, 4);

    // Trusting the store's own CA is not enough: the proxy re-signs the connection.
    let error = upload(through_mitm(front.ca_file.clone()), &secrets, &content)
        .await
        .unwrap_err();
    assert!(
        error.contains("is intercepted") && error.contains("mitmproxy"),
        "{error}"
    );
    assert!(store.keys().is_empty());

    let key = upload(through_mitm(mitm.ca_file.clone()), &secrets, &content)
        .await
        .expect("uploads through the inspecting proxy once its CA is trusted");
    assert_eq!(
        store.stored_sha256(&key),
        Some(support::sha256_hex(&content))
    );
}

#[tokio::test]
async fn a_bandwidth_limit_holds_and_can_be_lifted_while_the_upload_runs() {
    let store = Store::start().await;
    let mut profile = store.self_sign_profile("corp-slow");
    const RATE: u64 = 400_000;
    profile.network.limit_rate = Some(RATE);
    let secrets = Secrets::new("corp-slow", None);
    let session = Arc::new(session(profile, &secrets).await.unwrap());
    let files = tempfile::tempdir().unwrap();
    // 12 s at the limit.
    let content = support::bytes(4_800_000, 6);
    let path = support::write(files.path(), "big.bin", &content);
    let (progress, events) = support::recorder();
    let started = Instant::now();
    let running = {
        let session = Arc::clone(&session);
        tokio::spawn(async move { session.upload(&path, &progress).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = |events: &[TransferEvent]| {
        events
            .iter()
            .filter_map(|e| match e {
                TransferEvent::Sent { bytes, .. } => Some(*bytes),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    };
    let sent_while_limited = sent(&events.lock().unwrap());
    let limited_for = started.elapsed().as_secs_f64();
    session.profile_limit().set(None);
    let receipt = running.await.unwrap().expect("uploads");
    // The bucket holds 0.1 s of the rate; a piece may be on its way.
    let allowed = RATE as f64 * (limited_for + 0.1) + RATE as f64 / 8.0;
    assert!(
        (sent_while_limited as f64) <= allowed,
        "{sent_while_limited} bytes sent in {limited_for:.2} s under a limit of {RATE} B/s"
    );
    assert!(sent_while_limited > 0, "the upload moved while limited");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "lifting the limit let the rest go at once ({:?})",
        started.elapsed()
    );
    assert_eq!(
        store.stored_sha256(&receipt.key),
        Some(support::sha256_hex(&content))
    );
}
