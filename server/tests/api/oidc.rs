//! Staff signed in with the company's identity provider: the real oidc-provider issues the
//! access tokens Hoist's core sends (signed in through the provider's pages), and a hand-made
//! issuer on 127.0.0.1 issues the tokens no provider should: expired, for another audience,
//! from another issuer, unsigned, HMAC-signed with the public key, and signed with a rotated
//! key.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use hoist::backend::sign_in::{self, Via};
use hoist::profile::{Mode, Profile, Protocol, SignInSettings};
use hoist::secret::{Keychain, SecretKind};
use hoist_server::config::{OidcConfig, OidcPolicyConfig, PolicyConfig};
use hoist_server::oidc::OidcVerifier;
use serde_json::{json, Value};

use crate::oidc_provider::{OidcProvider, ProviderOptions};
use crate::{sha256, Harness};

fn oidc_config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: issuer.to_string(),
        audience: "hoist-server".into(),
        leeway_secs: 0,
        max_token_lifetime_secs: 24 * 3600,
        groups_claim: "groups".into(),
        policies: vec![OidcPolicyConfig {
            group: Some("design".into()),
            prefix: "uploads/design/{sub}/".into(),
            ..OidcPolicyConfig::default()
        }],
    }
}

async fn harness_for(issuer: &str) -> Harness {
    let verifier = OidcVerifier::new(oidc_config(issuer))
        .unwrap()
        .with_refresh_cool_down(Duration::ZERO);
    Harness::with_oidc(PolicyConfig::default(), vec![], Some(verifier)).await
}

/// A staff profile at hoist-server `base` that signs in with `provider`, and its keychain.
fn staff(base: &str, protocol: Protocol, provider: &OidcProvider) -> (Profile, Keychain) {
    let url = match protocol {
        Protocol::Simple => format!("{base}/api/upload"),
        Protocol::Companion => base.to_string(),
    };
    let mut p = Profile::new(
        "staff",
        Mode::Backend {
            url,
            protocol,
            token: false,
        },
    );
    p.sign_in = Some(SignInSettings {
        issuer: provider.issuer.clone(),
        client_id: "hoist".into(),
    });
    (
        p,
        Keychain::new(format!("hoist-server-test-{}", uuid::Uuid::new_v4())),
    )
}

/// Signs `user` in for `profile` through the provider's pages; who the sign-in names.
async fn sign_in_as(
    provider: &Arc<OidcProvider>,
    profile: &Profile,
    keychain: &Keychain,
    user: &str,
) -> String {
    let (p, user) = (Arc::clone(provider), user.to_string());
    let open = Box::new(move |url: &str| {
        let url = url.to_string();
        tokio::spawn(async move { p.sign_in_as(&url, &user).await });
    });
    sign_in::sign_in(
        profile,
        keychain,
        Via::Browser {
            open,
            timeout: Duration::from_secs(60),
        },
        &hoist::retry::SystemClock,
    )
    .await
    .expect("signed in")
}

async fn session(
    profile: Profile,
    keychain: &Keychain,
    dir: &std::path::Path,
) -> hoist::session::Session {
    let queue = Arc::new(hoist::queue::Queue::open(&dir.join("queue.db")).unwrap());
    hoist::session::Session::open_in(
        profile,
        keychain,
        hoist::retry::RetryPolicy::default(),
        queue,
        dir,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_designer_uploads_under_their_groups_prefix_and_the_audit_names_them() {
    let provider = Arc::new(OidcProvider::start(ProviderOptions::default()));
    let h = harness_for(&provider.issuer).await;
    let base = crate::listen(h.router.clone()).await;
    let (profile, keychain) = staff(&base, Protocol::Simple, &provider);
    assert_eq!(
        sign_in_as(&provider, &profile, &keychain, "alice").await,
        "alice@example.com"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("poster.png");
    let content = b"\x89PNG\r\n\x1a\n a poster".to_vec();
    std::fs::write(&file, &content).unwrap();
    let s = session(profile, &keychain, dir.path()).await;
    let r = s
        .upload(&file, &(Arc::new(|_| {}) as hoist::upload::ProgressFn))
        .await
        .expect("uploaded with the provider's access token");
    assert!(r.key.starts_with("uploads/design/alice/"), "{}", r.key);
    assert_eq!(sha256(&h.stored(&r.key).unwrap()), sha256(&content));

    let audit = String::from_utf8(h.audit.lock().unwrap().clone()).unwrap();
    let line = h
        .audit_lines()
        .into_iter()
        .find(|l| l["outcome"] == "signed")
        .unwrap();
    assert_eq!(line["token"], "oidc:alice");
    assert_eq!(line["email"], "alice@example.com");
    assert!(!audit.contains("eyJ"), "no token in the audit log: {audit}");
    keychain.delete("staff", SecretKind::SignIn).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_user_no_policy_covers_is_told_whom_to_ask() {
    let provider = Arc::new(OidcProvider::start(ProviderOptions::default()));
    let h = harness_for(&provider.issuer).await;
    let base = crate::listen(h.router.clone()).await;
    let (profile, keychain) = staff(&base, Protocol::Simple, &provider);
    sign_in_as(&provider, &profile, &keychain, "bob").await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"bob's notes").unwrap();
    let s = session(profile, &keychain, dir.path()).await;
    let e = s
        .upload(&file, &(Arc::new(|_| {}) as hoist::upload::ProgressFn))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("403") && e.contains("bob@example.com is signed in, but no upload policy"),
        "{e}"
    );
    assert!(h.store_keys().is_empty());
    keychain.delete("staff", SecretKind::SignIn).unwrap();
}

/// Regression (#30): a backend that does not accept the provider's tokens (here: issued for
/// another audience) told a signed-in user to run `hoist secret set … --kind bearer-token`, a
/// token they never had. A sign-in's 401 (after one renewal) now says to sign in again, and
/// who can tell why it goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_the_backend_refuses_says_to_sign_in_not_to_store_a_token() {
    let provider = Arc::new(OidcProvider::start(ProviderOptions {
        audience: "another-api",
        ..ProviderOptions::default()
    }));
    let h = harness_for(&provider.issuer).await;
    let base = crate::listen(h.router.clone()).await;
    for protocol in [Protocol::Simple, Protocol::Companion] {
        let (profile, keychain) = staff(&base, protocol, &provider);
        sign_in_as(&provider, &profile, &keychain, "alice").await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, b"notes").unwrap();
        let s = session(profile, &keychain, dir.path()).await;
        let e = s
            .upload(&file, &(Arc::new(|_| {}) as hoist::upload::ProgressFn))
            .await
            .unwrap_err();
        let hint = hoist::error::HasKind::hint(&e);
        let text = e.to_string();
        assert_eq!(
            hint,
            Some(hoist::error::Hint::SignIn),
            "{protocol:?}: {text}"
        );
        assert!(text.contains("sign in again"), "{protocol:?}: {text}");
        assert!(
            !text.contains("stored for this profile"),
            "{protocol:?}: {text}"
        );
        keychain.delete("staff", SecretKind::SignIn).unwrap();
    }
    assert!(h.store_keys().is_empty());
}

/// Access tokens living 2 s, no leeway, an upload of several parts taking longer: every
/// request carries a token valid at that moment.
#[tokio::test(flavor = "multi_thread")]
async fn a_multipart_upload_outlasting_its_access_token_keeps_going_on_refreshed_ones() {
    let provider = Arc::new(OidcProvider::start(ProviderOptions {
        access_token_ttl: Duration::from_secs(2),
        alg: "ES256",
        ..ProviderOptions::default()
    }));
    let h = harness_for(&provider.issuer).await;
    let base = crate::listen(h.router.clone()).await;
    let (mut profile, keychain) = staff(&base, Protocol::Companion, &provider);
    profile.network.limit_rate = Some(4 * 1024 * 1024);
    sign_in_as(&provider, &profile, &keychain, "alice").await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("footage.bin");
    let content: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let s = session(profile, &keychain, dir.path()).await;
    let started = std::time::Instant::now();
    let r = s
        .upload(&file, &(Arc::new(|_| {}) as hoist::upload::ProgressFn))
        .await
        .expect("uploaded across several access tokens");
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the upload outlasted two access tokens ({:?})",
        started.elapsed()
    );
    assert_eq!(sha256(&h.stored(&r.key).unwrap()), sha256(&content));
    // Created with the first token, completed seconds after it expired, and no request was
    // refused on the way: tokens were renewed before they expired, not after a 401.
    let lines = h.audit_lines();
    let outcomes: Vec<_> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["created", "completed"], "{lines:?}");
    assert!(
        lines.iter().all(|l| l["token"] == "oidc:alice"),
        "every step was the signed-in user's: {lines:?}"
    );
    keychain.delete("staff", SecretKind::SignIn).unwrap();
}

/// An issuer whose keys the test controls (ES256, rcgen-made), to mint the tokens no real
/// provider issues.
struct TestIssuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
}

struct SigningKey {
    kid: String,
    der: Vec<u8>,
    jwk: Value,
}

impl SigningKey {
    fn new(kid: &str) -> Self {
        use base64::Engine as _;
        let kp = rcgen::KeyPair::generate().unwrap();
        let raw = kp.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Self {
            kid: kid.into(),
            der: kp.serialize_der(),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
                "kid": kid, "use": "sig", "alg": "ES256"}),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_typed(claims, "JWT")
    }

    /// A token whose header says it is of type `typ`.
    fn sign_typed(&self, claims: &Value, typ: &str) -> String {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.der),
        )
        .unwrap()
    }
}

impl TestIssuer {
    async fn start(keys: &[&SigningKey]) -> Self {
        use axum::routing::get;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let published: Arc<Mutex<Vec<Value>>> =
            Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()));
        let (doc_url, jwks) = (url.clone(), Arc::clone(&published));
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let u = doc_url.clone();
                    async move { axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks")})) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let keys = jwks.lock().unwrap().clone();
                    async move { axum::Json(json!({ "keys": keys })) }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            keys: published,
        }
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn claims(&self, sub: &str) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({"iss": self.url, "aud": "hoist-server", "sub": sub, "iat": now, "exp": now + 300,
            "groups": ["design"]})
    }
}

#[tokio::test]
async fn tokens_no_provider_should_issue_are_refused_with_the_reason() {
    let (a, b) = (SigningKey::new("key-a"), SigningKey::new("key-b"));
    let issuer = TestIssuer::start(&[&a]).await;
    let h = harness_for(&issuer.url).await;
    let ask = r#"{"fileName":"a.txt","contentType":"text/plain","size":3}"#;
    let post = |token: String| {
        let h = &h;
        async move { h.call("POST", "/api/upload", Some(&token), Some(ask)).await }
    };

    let (status, body, _) = post(a.sign(&issuer.claims("carol"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["key"]
        .as_str()
        .unwrap()
        .starts_with("uploads/design/carol/"));

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let with = |patch: Value| {
        let mut c = issuer.claims("carol");
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let refused = [
        (a.sign(&with(json!({"exp": now - 60}))), "expired"),
        (
            a.sign(&with(json!({"aud": "another-app"}))),
            "another application",
        ),
        (
            a.sign(&with(json!({"iss": "https://login.example.org"}))),
            "another identity provider",
        ),
        (a.sign(&with(json!({"nbf": now + 600}))), "not valid yet"),
        // Regression (#29, finding 12): a token valid for a hundred years was accepted, and
        // so was a token of another type.
        (
            a.sign(&with(json!({"exp": now + 100 * 365 * 24 * 3600}))),
            "valid for longer than this server accepts",
        ),
        (
            a.sign_typed(&issuer.claims("carol"), "logout+jwt"),
            "not an access token",
        ),
        (
            // Unsigned: `alg: none`, an empty signature.
            {
                use base64::Engine as _;
                let b64 = |v: Value| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
                };
                format!(
                    "{}.{}.",
                    b64(json!({"alg": "none"})),
                    b64(issuer.claims("carol"))
                )
            },
            "neither a known token nor a signed access token",
        ),
        (
            // The public key as an HMAC secret: anyone has it.
            {
                let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                header.kid = Some("key-a".into());
                jsonwebtoken::encode(
                    &header,
                    &issuer.claims("carol"),
                    &jsonwebtoken::EncodingKey::from_secret(a.jwk.to_string().as_bytes()).unwrap(),
                )
                .unwrap()
            },
            "are not accepted",
        ),
        (
            // Another key claiming to be key-a.
            {
                let mut forged = SigningKey::new("key-a");
                forged.kid = "key-a".into();
                forged.sign(&issuer.claims("carol"))
            },
            "signature does not verify",
        ),
    ];
    for (token, reason) in refused {
        let (status, body, headers) = post(token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(reason),
            "{reason}: {body}"
        );
        assert_eq!(headers["www-authenticate"], "Bearer");
    }

    // The provider rotates to key-b: a token of key-b is accepted at once (its kid is
    // unknown, so the keys are fetched again), and key-a no longer is.
    issuer.publish(&[&b]);
    let (status, body, _) = post(b.sign(&issuer.claims("carol"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = post(a.sign(&issuer.claims("carol"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("does not publish"),
        "{body}"
    );

    let audit = String::from_utf8(h.audit.lock().unwrap().clone()).unwrap();
    assert!(!audit.contains("eyJ"), "no token in the audit log");
    assert!(
        audit.contains("denied 401: the token has expired"),
        "{audit}"
    );
}

#[tokio::test]
async fn an_identity_provider_that_cannot_be_reached_is_a_503_not_a_refusal() {
    let key = SigningKey::new("k");
    // Nothing listens there.
    let issuer = format!(
        "http://{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );
    let h = harness_for(&issuer).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = key.sign(
        &json!({"iss": issuer, "aud": "hoist-server", "sub": "carol",
        "exp": now + 300}),
    );
    let (status, body, headers) = h
        .call(
            "POST",
            "/api/upload",
            Some(&token),
            Some(r#"{"fileName":"a.txt","size":3}"#),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("cannot reach the company's identity provider"));
    assert!(headers.contains_key("retry-after"));

    // #30: and `/readyz` says so, rather than staying ready while every signed-in user gets 503.
    let (status, r, _) = h.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert_eq!(r["checks"]["provider"]["ok"], false, "{r}");
    assert!(
        r["checks"]["provider"]["why"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{r}"
    );
    assert_eq!(r["checks"]["store"]["ok"], true, "{r}");
}

/// Regression (#29, finding 4): while the provider failed, every token naming an unknown key
/// made the server fetch the provider's documents again: 60 forged tokens, 60 fetches in 0.6 s.
#[tokio::test]
async fn a_failing_provider_is_asked_again_only_after_the_cool_down() {
    use std::sync::atomic::Ordering;
    // A provider that answers every request 500, counting them.
    let (addr, asked) = crate::counting_server("500 Internal Server Error").await;
    let issuer = format!("http://{addr}");
    let verifier = OidcVerifier::new(oidc_config(&issuer))
        .unwrap()
        .with_refresh_cool_down(Duration::from_secs(30));
    let h = Harness::with_oidc(PolicyConfig::default(), vec![], Some(verifier)).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let forger = SigningKey::new("made-up");
    for i in 0..60 {
        let token = forger.sign(
            &json!({"iss": issuer, "aud": "hoist-server", "sub": format!("mallory-{i}"), "exp": now + 300}),
        );
        let (status, body, headers) = h
            .call(
                "POST",
                "/api/upload",
                Some(&token),
                Some(r#"{"fileName":"a.txt","size":3}"#),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(headers.contains_key("retry-after"));
    }
    let asked = asked.load(Ordering::SeqCst);
    // Once; twice only if this machine stalled for the whole cool-down mid-test.
    assert!(
        (1..=2).contains(&asked),
        "the provider was asked {asked} times for 60 tokens"
    );
}
