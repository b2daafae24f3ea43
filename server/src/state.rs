//! What every request shares: the bucket, the policy, the tokens, the audit log, the sealing
//! of upload ids and the rate limiter; and the steps every route takes (admit, plan, sign).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::http::{HeaderMap, StatusCode};

use crate::audit::{self, AuditEvent, AuditLog};
use crate::audit::{Call, Caller};
use crate::config::PolicyConfig;
use crate::error::ApiError;
use crate::guard::{AuthFailures, ClientKey, FailureVerdict};
use crate::policy::{self, Ask, Plan};
use crate::rate::RateLimiter;
use crate::s3::Bucket;
use crate::token;
use crate::token::Token;
use crate::upload_id::UploadIds;
use hoist::checksum::Checksum;

/// Everything the router needs.
pub struct AppConfig {
    /// The bucket uploads go to, and the signer for it.
    pub bucket: Bucket,
    /// What may be uploaded.
    pub policy: PolicyConfig,
    /// Who may upload.
    pub tokens: Vec<Token>,
    /// Where decisions are recorded.
    pub audit: AuditLog,
    /// Keys the MAC of upload ids handed to clients.
    pub upload_id_secret: Vec<u8>,
    /// Where the rate limits are kept: this process, or Redis shared by every replica.
    pub rate_limiter: RateLimiter,
    /// Access tokens of the company's identity provider, when `[oidc]` is configured.
    pub oidc: Option<crate::oidc::OidcVerifier>,
    /// Checks of what landed, when `[verify]` is configured.
    pub verifier: Option<crate::verify::Verifier>,
    /// The origins whose pages may call the API from a browser.
    pub cors: crate::cors::CorsConfig,
    /// Which dependencies make `/readyz` answer 503 (`[readiness]`).
    pub readiness: crate::config::ReadinessConfig,
}

/// The state behind every route.
pub(crate) struct AppState {
    pub(crate) bucket: Bucket,
    pub(crate) policy: PolicyConfig,
    pub(crate) tokens: Vec<Token>,
    pub(crate) audit: AuditLog,
    pub(crate) ids: UploadIds,
    pub(crate) limiter: RateLimiter,
    pub(crate) auth_failures: AuthFailures,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) oidc: Option<crate::oidc::OidcVerifier>,
    pub(crate) verifier: Option<crate::verify::Verifier>,
    /// The last readiness probe and when it ran: `/readyz` (no token needed) asks the store at
    /// most once per [`READINESS_TTL`], however often it is called.
    pub(crate) readiness:
        tokio::sync::Mutex<Option<(std::time::Instant, crate::readiness::Report)>>,
    /// Which dependencies make `/readyz` answer 503.
    pub(crate) readiness_config: crate::config::ReadinessConfig,
    /// The origins of `[cors]`, whose pages send bytes to the bucket itself.
    pub(crate) browser_origins: Vec<String>,
}

/// How long a readiness probe's answer is reused.
pub(crate) const READINESS_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The state as axum hands it to handlers.
pub(crate) type Shared = Arc<AppState>;

impl AppState {
    pub(crate) fn new(config: AppConfig) -> Self {
        Self {
            readiness: tokio::sync::Mutex::new(None),
            browser_origins: config.cors.allowed_origins.clone(),
            readiness_config: config.readiness,
            ids: UploadIds::new(&config.upload_id_secret),
            auth_failures: AuthFailures::new(config.policy.failed_auth_per_minute),
            metrics: crate::metrics::Metrics::default(),
            bucket: config.bucket,
            policy: config.policy,
            tokens: config.tokens,
            audit: config.audit,
            limiter: config.rate_limiter,
            oidc: config.oidc,
            verifier: config.verifier,
        }
    }

    /// Authentication and rate limiting, in that order; `call` learns the action and, once
    /// known, the token. A bearer that is none of the configured tokens is checked as an
    /// access token of the identity provider, when one is configured.
    pub(crate) async fn admit(
        &self,
        headers: &HeaderMap,
        call: &Call,
        action: &'static str,
    ) -> Result<Cow<'_, Token>, ApiError> {
        call.action(action);
        // An address past its failed authentications is answered before its token is looked
        // at (#29: the limit once throttled the log, not the guessing).
        if let Some(client) = call.client() {
            if self
                .auth_failures
                .locked_out(client, Instant::now())
                .is_some()
            {
                let e = ApiError::unauthorized("too many failed authentications");
                return Err(self.failed_authentication(Some(client), e));
            }
        }
        let token = match token::authenticate(&self.tokens, headers) {
            Ok(t) => Cow::Borrowed(t),
            Err(e) => match (&self.oidc, token::bearer(headers)) {
                (Some(oidc), Some(jwt)) if jwt.matches('.').count() == 2 => {
                    match oidc.verify(jwt, &self.policy).await {
                        Ok(t) => Cow::Owned(t),
                        // The provider being down is no failed authentication of the client.
                        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => return Err(e),
                        Err(e) => return Err(self.failed_authentication(call.client(), e)),
                    }
                }
                _ => return Err(self.failed_authentication(call.client(), e)),
            },
        };
        call.token(&token.id);
        if let Some(email) = &token.email {
            call.email(email);
        }
        self.limiter.check(&token, Instant::now()).await?;
        Ok(token)
    }

    /// Counts a failed authentication against its client: within the allowance the 401 stands;
    /// past it, a 429 that is audited once and then not at all, until a summary line says how
    /// many went unlogged.
    fn failed_authentication(&self, client: Option<ClientKey>, e: ApiError) -> ApiError {
        let Some(client) = client else {
            return e;
        };
        let now = Instant::now();
        for s in self.auth_failures.sweep(now) {
            let outcome = format!(
                "denied 429: {} more failed authentications within a minute, not logged one by one",
                s.count
            );
            self.audit.record(AuditEvent {
                time: audit::now_rfc3339(),
                token: None,
                email: None,
                action: "authenticate",
                key: None,
                size: None,
                content_type: None,
                outcome: &outcome,
                client: Some(s.client.to_string()),
            });
        }
        let (retry_after, quiet) = match self.auth_failures.record(client, now) {
            FailureVerdict::Audit => return e,
            FailureVerdict::AuditAndThrottle { retry_after } => (retry_after, false),
            FailureVerdict::Throttle { retry_after } => (retry_after, true),
        };
        let mut throttled = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed authentications from this address: retry in {retry_after} s \
                 with a valid token (further failures within the minute are not logged one by one)"
            ),
        );
        throttled.retry_after = Some(retry_after);
        if quiet {
            throttled = throttled.quiet();
        }
        throttled
    }

    /// Records a refused request (the router's audit layer calls it once per error answer).
    pub(crate) fn audit_denied(
        &self,
        caller: Caller<'_>,
        action: &str,
        key: Option<&str>,
        status: StatusCode,
        message: &str,
    ) {
        let Caller {
            client,
            token,
            email,
            size,
            content_type,
        } = caller;
        let outcome = format!("denied {}: {message}", status.as_u16());
        self.audit.record(AuditEvent {
            time: audit::now_rfc3339(),
            token,
            email,
            action,
            key,
            size,
            content_type,
            outcome: &outcome,
            client: client.map(|c| c.to_string()),
        });
    }

    /// Records a granted request: what it was for, and its outcome.
    pub(crate) fn audit_ok(&self, token: &Token, call: &Call, what: Granted<'_>, outcome: &str) {
        self.audit.record(AuditEvent {
            time: audit::now_rfc3339(),
            token: Some(&token.id),
            email: token.email.as_deref(),
            action: call.action_name(),
            key: Some(what.key),
            size: what.size,
            content_type: what.content_type,
            outcome,
            client: None,
        });
    }

    /// Plans, presigns and audits a single PUT (both protocols). A resumed ask (a ticket with
    /// its key) whose object has already landed comes back [`Landing::Landed`]: nothing needs
    /// sending, and the client goes on to completion.
    pub(crate) async fn sign_single(
        &self,
        token: &Token,
        call: &Call,
        ask: &Ask<'_>,
        checksums: Checksums<'_>,
    ) -> Result<(Plan, hoist::sign::PresignedPut, Landing), ApiError> {
        let plan = self.plan(token, call, ask, false)?;
        let landing = match ask.resume {
            Some(_) => self.landing(&plan, checksums).await?,
            None => Landing::Pending,
        };
        if landing == Landing::Pending {
            self.limiter
                .check_file(token, plan.size, Instant::now())
                .await?;
        }
        let presigned = self.presign_single(&plan, checksums)?;
        let outcome = match landing {
            Landing::Pending => "signed",
            Landing::Landed => "landed before",
        };
        self.audit_ok(token, call, Granted::plan(&plan), outcome);
        Ok((plan, presigned, landing))
    }

    /// Plans, presigns and audits S3's POST form for a browser (Companion's `/s3/params` when
    /// the client declared no size of its own): the store admits the declared size exactly, or
    /// up to the limit. A byte rate is charged the most the form admits.
    pub(crate) async fn sign_form(
        &self,
        token: &Token,
        call: &Call,
        ask: &Ask<'_>,
    ) -> Result<(Plan, hoist::sign::PresignedPut), ApiError> {
        let plan = self.plan(token, call, ask, false)?;
        let length = policy::form_length(&self.policy, token, &plan);
        self.limiter
            .check_file(token, Some(*length.end()), Instant::now())
            .await?;
        let object = self.object_headers(&plan);
        let presigned = self
            .bucket
            .signer
            .presign_post_form(&plan.key, &header_refs(&object), length, SystemTime::now())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        self.audit_ok(token, call, Granted::plan(&plan), "signed (form)");
        Ok((plan, presigned))
    }

    /// What may be signed for `ask`: the policy's plan — its folders and its drop's id kept,
    /// its key under the incoming prefix when uploads are verified — or, for a resumed ask, the
    /// key its ticket names (the policy still applies to the rest).
    /// `call` learns what the file declared (for a refusal's audit line) and then its key.
    pub(crate) fn plan(
        &self,
        token: &Token,
        call: &Call,
        ask: &Ask<'_>,
        multipart: bool,
    ) -> Result<Plan, ApiError> {
        call.declared(ask.size, ask.content_type);
        let plan = self.plan_for(token, ask, multipart)?;
        call.key(&plan.key);
        Ok(plan)
    }

    fn plan_for(&self, token: &Token, ask: &Ask<'_>, multipart: bool) -> Result<Plan, ApiError> {
        let folders = crate::placement::folders(ask.relative_path)?;
        let context = match ask.drop_id {
            Some(drop) => hoist::key::KeyContext {
                now: time::OffsetDateTime::now_utc(),
                uuid: self.ids.drop_uuid(&token.id, drop)?,
            },
            None => hoist::key::KeyContext::now_random(),
        };
        let place = policy::Place {
            folders: &folders,
            context,
        };
        let mut plan = policy::plan(&self.policy, token, ask, multipart, place)?;
        if let Some(v) = &self.verifier {
            plan.key = v.incoming(&plan.key);
        }
        if let Some(resume) = ask.resume {
            let declared = self.ids.open_ticket(&token.id, resume.key, resume.ticket)?;
            if declared != plan.size {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "this ticket was issued for a file of another size: the file changed since, \
                     so ask for a new upload (without the ticket)",
                ));
            }
            self.check_key(token, resume.key)?;
            // Uploads are verified: a ticket names an incoming key, never a final one (one
            // issued before `[verify]` was turned on signs nothing past the checks).
            if self
                .verifier
                .as_ref()
                .is_some_and(|v| !v.is_incoming(resume.key))
            {
                return Err(ApiError::forbidden(
                    "this ticket names a key uploads no longer go to: ask for a new upload",
                ));
            }
            plan.key = resume.key.to_string();
        }
        Ok(plan)
    }

    /// Aborts the unfinished multipart uploads of exactly `key`, so that a create asked again
    /// leaves nothing behind. A store that cannot list uploads (s3s-fs) keeps them for its
    /// lifecycle rule (`AbortIncompleteMultipartUpload`, which every bucket should have).
    pub(crate) async fn supersede_unfinished(&self, key: &str) {
        let now = SystemTime::now();
        let uploads = match self.bucket.client.list_multipart_uploads(key, now).await {
            Ok(uploads) => uploads,
            Err(e) => {
                tracing::debug!(key, "cannot list unfinished uploads: {}", e.message);
                return;
            }
        };
        for upload in uploads.into_iter().filter(|u| u.key == key) {
            if let Err(e) = self.bucket.client.abort(key, &upload.upload_id, now).await {
                tracing::warn!(key, "cannot abort a superseded upload: {}", e.message);
            }
        }
    }

    /// The ticket a client keeps to ask for `plan`'s key again.
    pub(crate) fn ticket(&self, token: &Token, plan: &Plan) -> String {
        self.ids.ticket(&token.id, &plan.key, plan.size)
    }

    /// Whether the upload `plan` names has already landed: its object (or, when uploads are
    /// verified, its final or quarantined copy) is in the bucket with the declared size and,
    /// where the store says it, the declared content.
    async fn landing(&self, plan: &Plan, checksums: Checksums<'_>) -> Result<Landing, ApiError> {
        let now = SystemTime::now();
        let mut keys = vec![plan.key.clone()];
        if let Some(v) = &self.verifier {
            let final_key = v.final_key(&plan.key).to_string();
            keys.push(v.quarantined(&final_key));
            keys.push(final_key);
        }
        // A bucket that encrypts with KMS makes ETags that are not the MD5 (S3's rules).
        let etag_is_md5 = !self
            .policy
            .object
            .encryption
            .as_deref()
            .is_some_and(|e| e.starts_with("aws:kms"));
        for key in keys {
            let Some(info) = self.bucket.client.head_with_checksum(&key, now).await? else {
                continue;
            };
            return Ok(
                match landed_as_declared(&info, plan.size, checksums, etag_is_md5) {
                    true => Landing::Landed,
                    false => Landing::Pending,
                },
            );
        }
        Ok(Landing::Pending)
    }

    /// Checks that `key` is one `token` may name: under its prefix (once the incoming prefix
    /// is taken off, when uploads are verified).
    pub(crate) fn check_key(&self, token: &Token, key: &str) -> Result<(), ApiError> {
        let own = match &self.verifier {
            Some(v) if v.is_incoming(key) => v.final_key(key),
            _ => key,
        };
        policy::check_key(token, own)
    }

    /// Verifies an upload the client completed (when `[verify]` is on): checks it and moves it
    /// to its final key or to quarantine; the verdict is audited and counted.
    pub(crate) async fn verify(
        &self,
        token: &Token,
        call: &Call,
        expected: crate::verify::Expected<'_>,
        content_type: Option<&str>,
    ) -> Result<Option<crate::verify::Verdict>, ApiError> {
        let Some(v) = &self.verifier else {
            return Ok(None);
        };
        let object = self.object_headers(&Plan {
            key: expected.key.to_string(),
            content_type: content_type.unwrap_or_default().to_string(),
            size: expected.size,
        });
        let verdict = v.verify(&self.bucket, &expected, &object, token).await?;
        let (key, outcome) = match &verdict {
            crate::verify::Verdict::Verified { key } => (key.as_str(), "verified".to_string()),
            crate::verify::Verdict::Quarantined { key, reason } => {
                (key.as_str(), format!("quarantined: {reason}"))
            }
        };
        self.metrics.verified(if outcome == "verified" {
            "verified"
        } else {
            "quarantined"
        });
        self.audit_ok(
            token,
            call,
            Granted {
                key,
                size: expected.size,
                content_type,
            },
            &outcome,
        );
        Ok(Some(verdict))
    }

    /// The completion step a single PUT's answer offers when uploads are verified:
    /// `{"url": "/api/upload/complete", "receipt": …}`, the receipt sealing the token, key,
    /// size and checksum signed (the server keeps no state between the two).
    pub(crate) fn completion(
        &self,
        token: &Token,
        plan: &Plan,
        checksum: Option<&Checksum>,
    ) -> Option<serde_json::Value> {
        self.verifier.as_ref()?;
        let sizes = plan.size.map(|size| policy::PartPlan {
            size,
            part_size: size,
        });
        // The checksum's value rides in the sealed part, to be compared with the stored one.
        let what = match checksum {
            Some(c) => format!("{SINGLE_PUT}:{}", c.value),
            None => SINGLE_PUT.to_string(),
        };
        let receipt = self.ids.seal(
            &token.id,
            &plan.key,
            sizes,
            checksum.map(|c| c.algorithm),
            &what,
        );
        Some(serde_json::json!({ "url": "/api/upload/complete", "receipt": receipt }))
    }

    /// The headers an object is created with: its type, the policy's object settings
    /// (encryption, storage class, …) and, unless the policy sets its own or allows inline
    /// display, `Content-Disposition: attachment`. All are signed: a client cannot drop them.
    pub(crate) fn object_headers(&self, plan: &Plan) -> Vec<(String, String)> {
        let mut headers = vec![("content-type".to_string(), plan.content_type.clone())];
        if !self.policy.allow_inline && self.policy.object.content_disposition.is_none() {
            headers.push(("content-disposition".into(), "attachment".into()));
        }
        headers.extend(self.policy.object.headers());
        headers
    }

    /// Presigns a PutObject for a plan; returns the URL and the headers the client must send.
    fn presign_single(
        &self,
        plan: &Plan,
        checksums: Checksums<'_>,
    ) -> Result<hoist::sign::PresignedPut, ApiError> {
        let size = plan.size.map(|s| s.to_string());
        let object = self.object_headers(plan);
        let mut headers = header_refs(&object);
        if let Some(s) = &size {
            headers.push(("content-length", s));
        }
        if !self.policy.allow_overwrite {
            headers.push(("if-none-match", "*"));
        }
        if let Some(c) = checksums.flexible {
            headers.push((c.algorithm.header(), c.value.as_str()));
        }
        if let Some(m) = checksums.md5_b64 {
            headers.push(("content-md5", m));
        }
        self.bucket
            .signer
            .presign_put_with(&plan.key, &headers, SystemTime::now())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

/// Whether an upload asked again had already landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Landing {
    /// Not there yet: the answer's URL is to be used.
    Pending,
    /// Its object is in the bucket as declared: nothing to send.
    Landed,
}

/// Whether `info` is the object declared: its size, and its content where the store says it
/// (the flexible checksum, or an ETag that is the MD5 of a single PUT).
fn landed_as_declared(
    info: &hoist::remote::ObjectInfo,
    size: Option<u64>,
    checksums: Checksums<'_>,
    etag_is_md5: bool,
) -> bool {
    use base64::Engine;
    if size.is_some_and(|s| s != info.size) {
        return false;
    }
    if let (Some(declared), Some(stored)) = (checksums.flexible, &info.checksum) {
        if declared.algorithm == stored.algorithm {
            return declared.value == stored.value;
        }
    }
    let declared_md5 = checksums
        .md5_b64
        .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
        .map(hex::encode);
    match declared_md5 {
        Some(md5) if etag_is_md5 => info.etag.trim_matches('"').eq_ignore_ascii_case(&md5),
        _ => true,
    }
}

/// What a receipt names instead of an S3 upload id.
pub(crate) const SINGLE_PUT: &str = "single-put";

/// Owned headers as the signer takes them.
pub(crate) fn header_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// Checksums a client declared, to be signed so that S3 checks them: at most one flexible
/// checksum (S3 refuses a request with two) and the MD5.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Checksums<'a> {
    pub(crate) flexible: Option<&'a Checksum>,
    pub(crate) md5_b64: Option<&'a str>,
}

/// What a granted request was for, as the audit log records it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Granted<'a> {
    pub(crate) key: &'a str,
    pub(crate) size: Option<u64>,
    pub(crate) content_type: Option<&'a str>,
}

impl<'a> Granted<'a> {
    pub(crate) fn plan(plan: &'a Plan) -> Self {
        Granted {
            key: &plan.key,
            size: plan.size,
            content_type: Some(&plan.content_type),
        }
    }

    pub(crate) fn key(key: &'a str) -> Self {
        Granted {
            key,
            size: None,
            content_type: None,
        }
    }
}
