//! The company's identity provider in tests: the real `oidc-provider` (serve.mjs beside this
//! file, pinned, installed by `scripts/deps test`) on 127.0.0.1, and a user signing in on its
//! pages over HTTP as a browser would (cookies, redirects, forms).
//!
//! Shared by the core's tests (`tests/integration`) and hoist-server's (`server/tests/api`)
//! through `#[path]`, so one harness starts the provider for both.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How the provider is set up.
pub(crate) struct ProviderOptions {
    /// The access tokens' audience.
    pub(crate) audience: &'static str,
    /// Their lifetime.
    pub(crate) access_token_ttl: Duration,
    /// RS256 or ES256.
    pub(crate) alg: &'static str,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        Self {
            audience: "hoist-server",
            access_token_ttl: Duration::from_secs(600),
            alg: "RS256",
        }
    }
}

/// Users the provider knows (any password): alice in `design`, bob in no group.
pub(crate) const USERS: &str = r#"{"alice":{"email":"alice@example.com","groups":["design"]},"bob":{"email":"bob@example.com","groups":[]}}"#;

/// A running provider.
pub(crate) struct OidcProvider {
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub(crate) issuer: String,
    child: Child,
}

impl OidcProvider {
    /// Starts the provider and waits until it listens.
    pub(crate) fn start(options: ProviderOptions) -> Self {
        // At run time, as cargo gives it: see tests/integration/support's manifest_dir.
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
            .ancestors()
            .map(|d| d.join("tests/oidc-provider"))
            .find(|d| d.join("serve.mjs").is_file())
            .expect("tests/oidc-provider/serve.mjs");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run `scripts/deps test` (npm ci in tests/oidc-provider)"
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = Command::new("node")
            .arg("serve.mjs")
            .current_dir(&dir)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_AUDIENCE", options.audience)
            .env(
                "OIDC_ACCESS_TOKEN_TTL",
                options.access_token_ttl.as_secs().to_string(),
            )
            .env("OIDC_SIGNING_ALG", options.alg)
            .env("OIDC_USERS", USERS)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (scripts/deps installs it)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("ready ") {
                    let _ = tx.send(issuer.to_string());
                }
            }
        });
        let issuer = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("oidc-provider did not start within 30 s");
        Self { issuer, child }
    }

    /// Signs in as `user` on the provider's pages, starting at `url` (the authorization URL
    /// Hoist opened), until the provider sends the browser away from itself (to Hoist's
    /// loopback listener, which is then visited as a browser would) or shows a last page.
    /// Returns the last URL.
    pub(crate) async fn sign_in_as(&self, url: &str, user: &str) -> String {
        Browser::new(&self.issuer).walk(url, user, None).await
    }

    /// Enters `user_code` at `verification_uri` and signs in as `user` (the device grant).
    pub(crate) async fn enter_device_code(
        &self,
        verification_uri: &str,
        user_code: &str,
        user: &str,
    ) {
        Browser::new(&self.issuer)
            .walk(verification_uri, user, Some(user_code))
            .await;
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub(crate) fn form_body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
        .finish()
}

/// Just enough of a browser: a cookie jar, redirects, and the provider's forms.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
    origin: String,
}

impl Browser {
    fn new(issuer: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            origin: issuer.trim_end_matches('/').to_string(),
        }
    }

    async fn walk(&mut self, start: &str, user: &str, user_code: Option<&str>) -> String {
        let mut url = start.to_string();
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..30 {
            let mut req = match &form {
                Some(f) => self
                    .http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(f)),
                None => self.http.get(&url),
            };
            if !url.starts_with(&self.origin) {
                // Left the provider: the browser arrives at Hoist's listener, and stops.
                self.http
                    .get(&url)
                    .send()
                    .await
                    .expect("the redirect target answers");
                return url;
            }
            if !self.cookies.is_empty() {
                let jar: Vec<String> = self
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                req = req.header("cookie", jar.join("; "));
            }
            let resp = req.send().await.expect("the provider answers");
            for c in resp.headers().get_all("set-cookie") {
                let c = c.to_str().unwrap_or("");
                if let Some((k, v)) = c.split(';').next().and_then(|kv| kv.split_once('=')) {
                    self.cookies.insert(k.trim().to_string(), v.to_string());
                }
            }
            let status = resp.status();
            if status.is_redirection() {
                let location = resp.headers()["location"].to_str().unwrap().to_string();
                url = reqwest::Url::parse(&url)
                    .unwrap()
                    .join(&location)
                    .unwrap()
                    .to_string();
                form = None;
                continue;
            }
            let html = resp.text().await.unwrap();
            assert!(
                status.is_success(),
                "the provider answered {status}: {html}"
            );
            let action = |html: &str| -> Option<String> {
                let at = html.find("<form")?;
                let rest = &html[at..];
                let a = rest.find("action=\"")? + 8;
                let end = rest[a..].find('"')? + a;
                Some(rest[a..end].replace("&amp;", "&"))
            };
            let hidden = |html: &str, name: &str| -> Option<String> {
                let at = html.find(&format!("name=\"{name}\" value=\""))?;
                let rest = &html[at..];
                let v = rest.find("value=\"")? + 7;
                let end = rest[v..].find('"')? + v;
                Some(rest[v..end].to_string())
            };
            let next = if html.contains("name=\"prompt\" value=\"login\"") {
                Some(vec![
                    ("prompt".into(), "login".into()),
                    ("login".into(), user.into()),
                    ("password".into(), "any password".into()),
                ])
            } else if html.contains("name=\"prompt\" value=\"consent\"") {
                Some(vec![("prompt".into(), "consent".into())])
            } else if html.contains("name=\"user_code\"") && user_code.is_some() {
                let mut f = vec![("user_code".to_string(), user_code.unwrap_or("").to_string())];
                if let Some(x) = hidden(&html, "xsrf") {
                    f.push(("xsrf".into(), x));
                }
                // The confirmation page repeats the code as a hidden field: send it once.
                if html.contains("type=\"hidden\" name=\"user_code\"") {
                    f.retain(|(k, _)| k != "user_code");
                    f.push((
                        "user_code".into(),
                        hidden(&html, "user_code").unwrap_or_default(),
                    ));
                    f.push(("confirm".into(), "yes".into()));
                }
                Some(f)
            } else {
                None
            };
            match (next, action(&html)) {
                (Some(f), Some(a)) => {
                    url = reqwest::Url::parse(&url)
                        .unwrap()
                        .join(&a)
                        .unwrap()
                        .to_string();
                    form = Some(f);
                }
                _ => return url,
            }
        }
        panic!("the sign-in did not finish within 30 pages");
    }
}
