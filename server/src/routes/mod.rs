//! The router: the simple protocol ([`simple`]), Uppy Companion's ([`companion`]) and Uppy 6's
//! `signRequest` ([`sign`]) over one state, and the audit layer that records every refused
//! request once, at the error boundary.
//!
//! Handlers tell their [`Call`] what they learn (the action, the token, the key); when the
//! answer is an error, [`audit_denials`] writes one audit line from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use hoist::checksum::{Checksum, ChecksumAlgorithm};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::audit::Call;
use crate::error::{ApiError, Denial};
use crate::guard::ClientKey;
use crate::state::{AppConfig, AppState, Shared};

mod companion;
mod sign;
mod simple;

/// `/readyz`: each dependency's state, 503 while a required one fails ([`crate::readiness`]).
async fn readyz(State(s): State<Shared>) -> Response {
    // One probe at a time, its answer reused for a few seconds: the route needs no token, so
    // a flood of calls must not become a flood of signed store calls and warnings (#29).
    let mut last = s.readiness.lock().await;
    let fresh = last
        .as_ref()
        .filter(|(at, _)| at.elapsed() < crate::state::READINESS_TTL);
    let report = match fresh {
        Some((_, report)) => report.clone(),
        None => {
            let probes = crate::readiness::Probes {
                bucket: &s.bucket,
                prefix: s.tokens.first().map_or("", |t| t.prefix.as_str()),
                verifier: s.verifier.as_ref(),
                oidc: s.oidc.as_ref(),
                limiter: &s.limiter,
                origins: &s.browser_origins,
            };
            let report = crate::readiness::probe(&probes).await;
            *last = Some((std::time::Instant::now(), report.clone()));
            report
        }
    };
    report.answer(&s.readiness_config)
}

/// The HTTP API.
pub fn app(config: AppConfig) -> Router {
    let cors = config.cors.layer();
    let state: Shared = Arc::new(AppState::new(config));
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(s): State<Shared>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    s.metrics.render(s.limiter.fallbacks()),
                )
            }),
        )
        .route("/api/upload", post(simple::upload))
        .route("/api/upload/batch", post(simple::upload_batch))
        .route("/api/upload/complete", post(simple::complete))
        .route("/s3/params", get(companion::params))
        .route("/s3/sign", post(sign::sign))
        .route("/s3/multipart", post(companion::create))
        .route(
            "/s3/multipart/{upload_id}",
            get(companion::list_parts).delete(companion::abort),
        )
        .route(
            "/s3/multipart/{upload_id}/batch",
            get(companion::sign_batch),
        )
        .route(
            "/s3/multipart/{upload_id}/complete",
            post(companion::complete),
        )
        .route(
            "/s3/multipart/{upload_id}/{part_number}",
            get(companion::sign_part),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            audit_denials,
        ))
        .with_state(state);
    // Outermost: a browser's preflight is answered before anything else runs.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Audits `e`, the refusal of one part of a request that itself succeeds (a file of a batch),
/// as the router audits a refused request.
pub(crate) fn audit_refused(s: &AppState, call: &Call, e: &ApiError) {
    if !e.is_audited() {
        return;
    }
    let info = call.info();
    s.audit_denied(
        crate::audit::Caller::of(&info),
        info.action.unwrap_or("unknown"),
        info.key.as_deref(),
        e.status,
        &e.message,
    );
}

/// Gives each request a [`Call`], audits its answer when that is an error from a route, and
/// counts it (by action and status) and its latency in the metrics.
async fn audit_denials(State(s): State<Shared>, mut request: Request, next: Next) -> Response {
    let call = Call::default();
    call.info().client = crate::serve::peer_of(request.extensions()).map(|a| ClientKey::of(a.ip()));
    request.extensions_mut().insert(call.clone());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    if let Some(action) = call.info().action {
        s.metrics
            .answered(action, response.status().as_u16(), started.elapsed());
    }
    if let Some(denial) = response.extensions().get::<Denial>() {
        let info = call.info();
        if let Some(action) = info.action {
            s.audit_denied(
                crate::audit::Caller::of(&info),
                action,
                info.key.as_deref(),
                response.status(),
                &denial.message,
            );
        }
    }
    response
}

/// A client's checksum for an upload of `algorithm`, or a 400 that says what is wrong.
pub(super) fn client_checksum(
    algorithm: Option<ChecksumAlgorithm>,
    value: &str,
    what: &str,
) -> Result<Checksum, ApiError> {
    let Some(algorithm) = algorithm else {
        return Err(ApiError::bad_request(format!(
            "{what}: this upload was created without a checksum algorithm (send checksumAlgorithm at create)"
        )));
    };
    Checksum::parse(algorithm, value).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{what} must be a base64 {} of {} bytes",
            algorithm.s3_name(),
            algorithm.digest_len()
        ))
    })
}

/// The checksum algorithm a request names, or a 400.
pub(super) fn named_algorithm(name: Option<&str>) -> Result<Option<ChecksumAlgorithm>, ApiError> {
    name.map(|n| {
        ChecksumAlgorithm::parse(n).ok_or_else(|| {
            ApiError::bad_request(format!(
                "checksumAlgorithm '{}' is not one of CRC64NVME, CRC32C, CRC32, SHA256",
                n.escape_debug()
            ))
        })
    })
    .transpose()
}

/// The one flexible checksum a request declares (`checksumAlgorithm` with `checksum`), or a 400.
pub(super) fn declared_checksum(
    algorithm: Option<&str>,
    value: Option<&str>,
) -> Result<Option<Checksum>, ApiError> {
    match (named_algorithm(algorithm)?, value) {
        (Some(a), Some(v)) => Ok(Some(client_checksum(Some(a), v, "checksum")?)),
        (None, None) => Ok(None),
        _ => Err(ApiError::bad_request(
            "checksumAlgorithm and checksum go together",
        )),
    }
}

/// The most a signing request's body may hold (a file name, a type, a size, two checksums).
const SIGN_BODY_LIMIT: usize = 16 * 1024;
/// The most a Complete's body may hold (10,000 parts of `{PartNumber, ETag}`).
const COMPLETE_BODY_LIMIT: usize = 1024 * 1024;

/// How long a body of at most [`COMPLETE_BODY_LIMIT`] may take to arrive (35 KB/s at worst).
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a body of at most `limit` bytes within [`BODY_TIMEOUT`]. Handlers call it only after
/// the request is admitted, so nobody without a valid token makes the server read (or hold) a
/// byte of body.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {limit} bytes, or was cut off"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// A JSON body as `T`, or a 400 that says what is wrong with it (and where).
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    // Serde would also read a struct from an array of its fields: only an object is accepted.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => ApiError::bad_request("the body must be a JSON object"),
                Err(e) => ApiError::bad_request(format!("the body is not valid JSON: {e}")),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request(format!("the body is not valid JSON: {inner}"));
        }
        let path = e.path().to_string();
        if inner.to_string().starts_with(&path) {
            ApiError::bad_request(inner.to_string())
        } else {
            ApiError::bad_request(format!("{path}: {inner}"))
        }
    })
}

fn query_map(raw: Option<String>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn expires_at(p: &hoist::sign::PresignedPut) -> String {
    p.expires_at
        .map(time::OffsetDateTime::from)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Name–value pairs (signed headers, a POST form's fields) as the JSON object answers carry.
fn header_object(headers: &[(String, String)]) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Serde helpers for the fields clients send.
mod de {
    use serde::{Deserialize, Deserializer};

    /// A size in bytes: a non-negative integer or a string of one; absent or null is `None`.
    pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        crate::policy::json_size(v.as_ref()).map_err(|e| serde::de::Error::custom(e.message))
    }
}
