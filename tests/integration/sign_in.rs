//! Staff sign in with the company's identity provider (the real oidc-provider on 127.0.0.1):
//! `hoist login` through the browser and with a device code, uploads carrying the provider's
//! access token, and `hoist logout` revoking it. hoist-server's checks of those tokens are in
//! `server/tests/api/oidc.rs`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;

use hoist::secret::{Keychain, SecretKind};

use crate::cli::{text, Env};
use crate::support::backend::{Backend, Flavour};
use crate::support::oidc::{OidcProvider, ProviderOptions};
use crate::support::{self, Store};

/// A backend profile `staff` at `backend` that signs in with `provider`.
fn staff_profile(env: &Env, backend: &Backend, provider: &OidcProvider) {
    let out = env.run(&[
        "profile",
        "add",
        "staff",
        "--backend",
        &backend.url,
        "--issuer",
        &provider.issuer,
        "--client-id",
        "hoist",
        "--default",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("hoist login staff"),
        "{}",
        text(&out.stdout)
    );
}

/// Runs `hoist` with `args` and hands each line it writes to stderr to `on_line` (on a
/// thread), until it exits; its exit status, stdout and stderr.
async fn run_reading_stderr(
    env: &Env,
    args: &[&str],
    on_line: impl Fn(&str) + Send + 'static,
) -> (std::process::ExitStatus, String, String) {
    let mut child = env
        .cmd(args)
        // The browser is the test: `hoist` prints the address, and opens nothing.
        .env("BROWSER", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hoist runs");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            on_line(&line);
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = reader.join().unwrap();
    (out.status, text(&out.stdout), err)
}

/// `hoist login staff` with `user` signing in on the provider's pages (as the browser the
/// CLI would open); its exit status, stdout and stderr.
async fn login_in_browser_as(
    env: &Env,
    provider: &std::sync::Arc<OidcProvider>,
    user: &'static str,
) -> (std::process::ExitStatus, String, String) {
    let handle = tokio::runtime::Handle::current();
    let p = Arc::clone(provider);
    run_reading_stderr(env, &["login", "staff"], move |line| {
        if line.starts_with(&format!("{}/auth?", p.issuer)) {
            let (p, url) = (Arc::clone(&p), line.to_string());
            handle.spawn(async move { p.sign_in_as(&url, user).await });
        }
    })
    .await
}

/// The claims of a JWT, unverified (the backend here only records what it was sent).
fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn hoist_login_signs_in_through_the_browser_and_uploads_carry_the_providers_token() {
    let provider = std::sync::Arc::new(OidcProvider::start(ProviderOptions::default()));
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::Careful, None, "").await;
    let env = Env::new();
    staff_profile(&env, &backend, &provider);

    let (status, stdout, stderr) = login_in_browser_as(&env, &provider, "alice").await;
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("signed in to 'staff' as alice@example.com"),
        "{stdout}"
    );
    assert!(
        stderr.contains("code_challenge_method=S256"),
        "PKCE: {stderr}"
    );
    let show = env.run(&["profile", "show", "staff"]);
    assert!(
        text(&show.stdout).contains("signed in as   alice@example.com"),
        "{}",
        text(&show.stdout)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "report.pdf", b"%PDF-1.7 signed in");
    let out = env.run(&["upload", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        store.stored_sha256("staff/report.pdf"),
        Some(support::sha256_hex(b"%PDF-1.7 signed in"))
    );
    let seen = backend.seen_auth.lock().unwrap().clone();
    let bearer = seen[0]
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap();
    let c = claims(bearer);
    assert_eq!(
        (c["sub"].as_str(), c["iss"].as_str()),
        (Some("alice"), Some(provider.issuer.as_str()))
    );
    assert_eq!(c["aud"], "hoist-server");

    // Nothing but the keychain holds the sign-in.
    let profiles = std::fs::read_to_string(env.config.path().join("profiles.toml")).unwrap();
    assert!(
        !profiles.contains(bearer) && !profiles.contains("refresh"),
        "{profiles}"
    );
    Keychain::new(&env.keychain_service)
        .delete("staff", SecretKind::SignIn)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hoist_login_device_shows_a_code_to_enter_elsewhere() {
    let provider = std::sync::Arc::new(OidcProvider::start(ProviderOptions::default()));
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::Careful, None, "").await;
    let env = Env::new();
    staff_profile(&env, &backend, &provider);

    let handle = tokio::runtime::Handle::current();
    let p = Arc::clone(&provider);
    let (status, stdout, stderr) =
        run_reading_stderr(&env, &["login", "staff", "--device"], move |line| {
            // "To sign in, open URL on any device and enter the code CODE"
            if let Some(rest) = line.strip_prefix("To sign in, open ") {
                let (uri, rest) = rest.split_once(' ').unwrap();
                let code = rest.rsplit(' ').next().unwrap().to_string();
                let (p, uri) = (Arc::clone(&p), uri.to_string());
                handle.spawn(async move { p.enter_device_code(&uri, &code, "bob").await });
            }
        })
        .await;
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("signed in to 'staff' as bob@example.com"),
        "{stdout}"
    );
    assert!(stderr.contains("/device"), "{stderr}");
    Keychain::new(&env.keychain_service)
        .delete("staff", SecretKind::SignIn)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hoist_logout_revokes_the_sign_in_and_uploads_then_ask_to_sign_in() {
    let provider = std::sync::Arc::new(OidcProvider::start(ProviderOptions::default()));
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::Careful, None, "").await;
    let env = Env::new();
    staff_profile(&env, &backend, &provider);
    let (status, _, stderr) = login_in_browser_as(&env, &provider, "alice").await;
    assert!(status.success(), "{stderr}");
    let keychain = Keychain::new(&env.keychain_service);
    let refresh = stored_refresh_token(&keychain);

    let out = env.run(&["logout", "staff"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("signed out of 'staff'"));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert!(keychain.get("staff", SecretKind::SignIn).unwrap().is_none());
    // Revoked at the provider: the refresh token no longer gets a token.
    let answer = refresh_at(&provider, &refresh).await;
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await.unwrap().contains("invalid_grant"));

    let dir = tempfile::tempdir().unwrap();
    let file = support::write(dir.path(), "a.txt", b"after sign-out");
    let out = env.run(&["upload", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr) + &text(&out.stdout);
    assert!(
        err.contains("nobody is signed in") && err.contains("hoist login staff"),
        "{err}"
    );
    assert!(
        store.keys().is_empty(),
        "nothing landed: {:?}",
        store.keys()
    );
    // Queued with its reason, to go once signed in again.
    let queue = env.run(&["queue"]);
    assert!(
        text(&queue.stdout).contains("nobody is signed in"),
        "{}",
        text(&queue.stdout)
    );
}

/// Regression (#29, finding 9): `hoist profile remove` of a signed-in profile deleted the
/// refresh token here but left it valid at the provider (logout revoked it).
#[tokio::test(flavor = "multi_thread")]
async fn removing_a_signed_in_profile_revokes_its_sign_in_as_logout_does() {
    let provider = std::sync::Arc::new(OidcProvider::start(ProviderOptions::default()));
    let store = Store::start().await;
    let backend = Backend::start(store.store.signer(), Flavour::Careful, None, "").await;
    let env = Env::new();
    staff_profile(&env, &backend, &provider);
    let (status, _, stderr) = login_in_browser_as(&env, &provider, "alice").await;
    assert!(status.success(), "{stderr}");
    let keychain = Keychain::new(&env.keychain_service);
    let refresh = stored_refresh_token(&keychain);

    let out = env.run(&["profile", "remove", "staff"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert!(keychain.get("staff", SecretKind::SignIn).unwrap().is_none());
    let answer = refresh_at(&provider, &refresh).await;
    assert_eq!(answer.status(), 400, "the refresh token still works");
    assert!(answer.text().await.unwrap().contains("invalid_grant"));
}

/// The refresh token of profile `staff`'s sign-in, as the keychain holds it.
fn stored_refresh_token(keychain: &Keychain) -> String {
    let stored = keychain.get("staff", SecretKind::SignIn).unwrap().unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.expose()).unwrap();
    stored["refresh_token"].as_str().unwrap().to_string()
}

/// The provider's answer to `refresh` at its token endpoint (400 `invalid_grant` once revoked).
async fn refresh_at(provider: &OidcProvider, refresh: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(crate::support::oidc::form_body(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "hoist"),
        ]))
        .send()
        .await
        .unwrap()
}
