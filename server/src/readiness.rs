//! `/readyz`: whether this replica can serve uploads now. Each dependency is asked — the store
//! (with the server's credentials), the malware scanner (`[verify] clamd`), the identity provider
//! (`[oidc]`), Redis (`[rate_limit]`) — and the answer says which answer and which do not, with
//! why. Those `[readiness] required` lists (by default the store, the scanner and the provider:
//! without any of them uploads fail) make it 503; Redis is optional by default, since replicas
//! then limit on their own. With `[cors]`, it also says which origins' pages the bucket's CORS
//! rule refuses (browsers send bytes to the bucket itself), which never makes it unready.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::config::{Dependency, ReadinessConfig};
use crate::oidc::OidcVerifier;
use crate::rate::RateLimiter;
use crate::s3::Bucket;
use crate::verify::Verifier;

/// What `/readyz` asks: the server's parts, as its state holds them.
pub(crate) struct Probes<'a> {
    /// The bucket and the server's credentials for it.
    pub(crate) bucket: &'a Bucket,
    /// A prefix the server's credentials may list (the first token's), for the probes' keys.
    pub(crate) prefix: &'a str,
    pub(crate) verifier: Option<&'a Verifier>,
    pub(crate) oidc: Option<&'a OidcVerifier>,
    pub(crate) limiter: &'a RateLimiter,
    /// The origins of `[cors]`.
    pub(crate) origins: &'a [String],
}

/// What one probe found.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    /// Each configured dependency and its answer (`Err`: why it failed).
    checks: Vec<(Dependency, Result<(), String>)>,
    /// The browser origins configured (`[cors]`).
    origins: Vec<String>,
    /// Those the bucket's CORS rule refuses, with why.
    refused_origins: Vec<(String, String)>,
}

/// Asks every configured dependency, at once.
pub(crate) async fn probe(s: &Probes<'_>) -> Report {
    let (store, scanner, provider, redis) = tokio::join!(
        probe_store(s),
        async {
            match s.verifier {
                Some(v) => v.scanner_up().await,
                None => None,
            }
        },
        async {
            match s.oidc {
                Some(o) => Some(o.reachable().await),
                None => None,
            }
        },
        s.limiter.ping_shared(),
    );
    let mut checks = vec![(Dependency::Store, store)];
    for (d, answer) in [
        (Dependency::Scanner, scanner),
        (Dependency::Provider, provider),
        (Dependency::Redis, redis),
    ] {
        if let Some(answer) = answer {
            if let Err(why) = &answer {
                tracing::warn!(dependency = d.name(), %why, "readiness: a dependency failed");
            }
            checks.push((d, answer));
        }
    }
    // Only a store that answers can be asked about its CORS rule.
    let refused_origins = if checks[0].1.is_ok() {
        probe_browser_origins(s).await
    } else {
        Vec::new()
    };
    Report {
        checks,
        origins: s.origins.to_vec(),
        refused_origins,
    }
}

impl Report {
    /// 200 `{"ready": true, "checks": …}`, or 503 with the first required failure as the
    /// error (`error` and `message`, as every refusal) beside the same checks.
    pub(crate) fn answer(&self, config: &ReadinessConfig) -> Response {
        let mut checks = Map::new();
        let mut failing = None;
        for (d, answer) in &self.checks {
            let required = config.required.contains(d);
            let mut entry = json!({ "ok": answer.is_ok(), "required": required });
            if let Err(why) = answer {
                entry["why"] = Value::String(why.clone());
                if required && failing.is_none() {
                    failing = Some(format!("not ready: {why}"));
                }
            }
            checks.insert(d.name().to_string(), entry);
        }
        let mut body = json!({ "ready": failing.is_none(), "checks": checks });
        if let Some(why) = &failing {
            body["error"] = Value::String(why.clone());
            body["message"] = Value::String(why.clone());
        }
        if !self.origins.is_empty() {
            let refused: Vec<Value> = self
                .refused_origins
                .iter()
                .map(|(origin, why)| json!({ "origin": origin, "why": why }))
                .collect();
            body["browsers"] = json!({
                "allowed": self.origins,
                "refused_by_the_bucket": refused,
            });
        }
        let status = if failing.is_some() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (status, Json(body)).into_response()
    }
}

/// Sends the bucket the preflight a page of each configured origin sends before a PUT; the
/// origins it refuses, with why.
async fn probe_browser_origins(s: &Probes<'_>) -> Vec<(String, String)> {
    if s.origins.is_empty() {
        return Vec::new();
    }
    let url = s.bucket.location(&format!("{}.hoist-readyz", s.prefix));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let mut refused = Vec::new();
    for origin in s.origins {
        let answer = client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
            .await;
        let why = match answer {
            Err(e) => Some(format!(
                "the bucket did not answer a browser's preflight: {}",
                hoist::redact::redact(&e.to_string())
            )),
            Ok(r) => {
                let allowed = r
                    .headers()
                    .get("access-control-allow-origin")
                    .and_then(|v| v.to_str().ok());
                match allowed {
                    Some(o) if o == origin || o == "*" => None,
                    _ => Some(format!(
                        "the bucket's CORS rule does not let this origin PUT (preflight answered \
                         HTTP {}): add it to the rule's AllowedOrigins (server/README.md, \
                         \"Browsers\")",
                        r.status().as_u16()
                    )),
                }
            }
        };
        if let Some(why) = why {
            tracing::warn!(%origin, %why, "browsers of a configured origin cannot upload");
            refused.push((origin.clone(), why));
        }
    }
    refused
}

/// Asks the store; `Err` says why it is not ready, in words fit for anyone to read.
async fn probe_store(s: &Probes<'_>) -> Result<(), String> {
    let probe = format!("{}.hoist-readyz", s.prefix);
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        s.bucket
            .client
            .list_parts(&probe, "hoist-readyz", std::time::SystemTime::now()),
    )
    .await
    .map_err(|_| "the store did not answer within 5 s".to_string())?;
    match answer {
        Ok(_) => Ok(()),
        Err(f) if matches!(f.status, Some(400 | 404)) => Ok(()),
        // The store's own text can name accounts and ARNs: it goes to the log, and the caller
        // (no token needed here) gets the code only, as on every other route.
        Err(f) => {
            tracing::warn!(code = %f.code, status = ?f.status, message = %f.message, "readiness probe failed");
            Err(match f.status {
                Some(status) => format!(
                    "the store refused the server's request ({} HTTP {status}); the server's log has the details",
                    if f.code.is_empty() { "no error code," } else { f.code.as_str() }
                ),
                // No answer: Hoist's own sentence (connect, DNS, timeout; already redacted),
                // its advice an operator's (the client is made for the server's config).
                None => format!("no answer from the store: {}", f.message),
            })
        }
    }
}
