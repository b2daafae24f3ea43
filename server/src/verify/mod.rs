//! Proof that what landed is what was declared (`[verify]`). A presigned PUT bypasses every
//! check the server made on the *declared* type and size, so with verification on:
//!
//! 1. keys are signed under `incoming/` (nothing there is trusted yet);
//! 2. when the client completes the upload (the simple protocol's `POST /api/upload/complete`
//!    with the receipt the signature came with, or a Companion multipart Complete), the server
//!    checks the object: it is there, its size is the one signed, its first bytes (a ranged
//!    GET) are of the declared type by their magic bytes (`infer`), and — when `clamd` is set —
//!    ClamAV finds nothing in it (the object streamed to clamd's `INSTREAM`);
//! 3. an object that passes is copied to its final key (the `incoming/` prefix dropped) and
//!    removed from `incoming/`; one that fails goes to `quarantine/` with a note beside it
//!    (`….reason.json`) saying why, and the client is told the reason;
//! 4. an accepted upload is announced to the company's webhook (`[verify.webhook]`): a JSON
//!    POST signed with HMAC-SHA256 (`X-Hoist-Signature: sha256=HEX` over
//!    `TIMESTAMP.BODY`, `X-Hoist-Timestamp`), retried with backoff, never delaying the answer.
//!
//! A scanner that cannot be reached fails closed: the object stays in `incoming/` and the
//! client is told to complete again later (503). Objects nobody completes stay in `incoming/`:
//! a lifecycle rule on that prefix removes them (server/README.md, "Verification of what landed").

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::error::ApiError;
use crate::s3::Bucket;
use crate::token::Token;

mod clamd;
use clamd::scan;

/// Bytes read to find an object's type (infer looks at fewer).
const HEAD_BYTES: u64 = 8192;
/// How long clamd gets for one object.
const SCAN_TIMEOUT: Duration = Duration::from_secs(300);
/// Webhook deliveries tried per accepted upload (waits 1, 2, 4, 8, 16 s between).
const WEBHOOK_ATTEMPTS: u32 = 6;

/// The `[verify]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// Where uploads land until they are checked.
    #[serde(default = "default_incoming")]
    pub incoming_prefix: String,
    /// Where uploads that fail a check go, with a note of why.
    #[serde(default = "default_quarantine")]
    pub quarantine_prefix: String,
    /// ClamAV's clamd: `unix:/run/clamav/clamd.ctl` or `tcp:127.0.0.1:3310`.
    pub clamd: Option<String>,
    /// The largest object clamd scans whole: the least of its `MaxFileSize`, `MaxScanSize` and
    /// `StreamMaxLength`. Required with `clamd`: past its limits clamd answers OK without
    /// scanning, so a larger object is never verified (it goes to quarantine).
    #[serde(default)]
    pub scan_limit_bytes: Option<u64>,
    /// An HMAC-signed POST per accepted upload.
    pub webhook: Option<WebhookConfig>,
}

/// The `[verify.webhook]` section; its key is `HOIST_SERVER_WEBHOOK_SECRET`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where the POSTs go.
    pub url: String,
}

fn default_incoming() -> String {
    "incoming/".into()
}
fn default_quarantine() -> String {
    "quarantine/".into()
}

/// What a verification concluded: the core's type, which Hoist reads from the answer.
pub use hoist::sign::Verdict;

/// What was signed for an upload, as the completion step checks it.
#[derive(Clone, Debug)]
pub struct Expected<'a> {
    /// The `incoming/` key.
    pub key: &'a str,
    /// The size signed, when one was.
    pub size: Option<u64>,
    /// The checksum signed, when one was: compared with the one the store reports.
    pub checksum: Option<hoist::checksum::Checksum>,
}

/// Runs the checks of `[verify]`.
pub struct Verifier {
    config: VerifyConfig,
    webhook_secret: Option<Vec<u8>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl VerifyConfig {
    /// Checks the prefixes, the clamd address and the webhook.
    pub fn validate(&self, webhook_secret: Option<&str>) -> Result<(), String> {
        for (name, p) in [
            ("incoming_prefix", &self.incoming_prefix),
            ("quarantine_prefix", &self.quarantine_prefix),
        ] {
            if p.is_empty() || !p.ends_with('/') {
                return Err(format!(
                    "verify.{name} must end with / (e.g. \"incoming/\")"
                ));
            }
            hoist::key::validate_prefix(p).map_err(|e| format!("verify.{name}: {e}"))?;
        }
        if self.incoming_prefix.starts_with(&self.quarantine_prefix)
            || self.quarantine_prefix.starts_with(&self.incoming_prefix)
        {
            return Err("verify.incoming_prefix and verify.quarantine_prefix must differ".into());
        }
        if self.clamd.is_some() && self.scan_limit_bytes.is_none_or(|l| l == 0) {
            return Err(
                "verify.clamd needs verify.scan_limit_bytes: the least of clamd's MaxFileSize, \
                 MaxScanSize and StreamMaxLength (clamd answers OK past them without scanning)"
                    .into(),
            );
        }
        if let Some(c) = &self.clamd {
            if !(c.starts_with("unix:") || c.starts_with("tcp:")) {
                return Err(format!(
                    "verify.clamd '{c}' must be unix:/path/to/clamd.ctl or tcp:HOST:PORT"
                ));
            }
        }
        if let Some(w) = &self.webhook {
            // The URL is never quoted back: its query may hold the receiver's token.
            let u = url::Url::parse(&w.url).map_err(|e| format!("verify.webhook.url: {e}"))?;
            let here = matches!(
                u.host(),
                Some(url::Host::Ipv4(a)) if a.is_loopback()
            ) || matches!(u.host(), Some(url::Host::Ipv6(a)) if a.is_loopback())
                || u.host_str() == Some("localhost");
            if !(u.scheme() == "https" || (u.scheme() == "http" && here)) {
                return Err(
                    "verify.webhook.url must be an https:// URL (http:// only to a receiver on \
                     this machine: the body names who uploaded what)"
                        .into(),
                );
            }
            if webhook_secret.is_none_or(|s| s.len() < 32) {
                return Err(
                    "verify.webhook needs HOIST_SERVER_WEBHOOK_SECRET (32 characters at least; \
                     the receiver checks the HMAC with it)"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

impl Verifier {
    /// Checks as `config` says; `webhook_secret` keys the webhook's HMAC.
    pub fn new(config: VerifyConfig, webhook_secret: Option<String>) -> Result<Self, String> {
        config.validate(webhook_secret.as_deref())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            config,
            webhook_secret: webhook_secret.map(String::into_bytes),
            http,
        })
    }

    /// Where a planned key is signed: under the incoming prefix.
    pub fn incoming(&self, key: &str) -> String {
        format!("{}{key}", self.config.incoming_prefix)
    }

    /// Whether `key` is an incoming key (one a completion may name).
    pub fn is_incoming(&self, key: &str) -> bool {
        key.starts_with(&self.config.incoming_prefix)
    }

    /// The key an incoming key is moved to once verified.
    pub fn final_key<'k>(&self, key: &'k str) -> &'k str {
        key.strip_prefix(&self.config.incoming_prefix)
            .unwrap_or(key)
    }

    /// Where the object of `final_key` is kept when it fails a check.
    pub fn quarantined(&self, final_key: &str) -> String {
        format!("{}{final_key}", self.config.quarantine_prefix)
    }

    /// Whether the malware scanner answers (`None`: none is configured).
    pub async fn scanner_up(&self) -> Option<Result<(), String>> {
        let clamd = self.config.clamd.as_deref()?;
        Some(
            tokio::time::timeout(Duration::from_secs(5), clamd::ping(clamd))
                .await
                .unwrap_or_else(|_| Err("clamd did not answer PING within 5 s".into())),
        )
    }

    /// Checks the incoming object and moves it to its final key or to quarantine.
    /// `object_headers` are the policy's settings a copy must repeat (encryption, class).
    pub async fn verify(
        &self,
        bucket: &Bucket,
        expected: &Expected<'_>,
        object_headers: &[(String, String)],
        token: &Token,
    ) -> Result<Verdict, ApiError> {
        let now = SystemTime::now();
        let final_key = expected
            .key
            .strip_prefix(&self.config.incoming_prefix)
            .ok_or_else(|| ApiError::bad_request("not an incoming key"))?;
        let head = bucket.client.head_with_checksum(expected.key, now).await?;
        let Some(info) = head else {
            // Completed before (an answer lost on the way): the same verdict again.
            return self.settled(bucket, expected.key, final_key).await;
        };
        let reason = self.check(bucket, expected, &info).await?;
        let copy_headers: Vec<(&str, &str)> = object_headers
            .iter()
            .filter(|(n, _)| {
                n.starts_with("x-amz-server-side-encryption") || n == "x-amz-storage-class"
            })
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // Only the version that was checked moves (#29, finding 1): an object replaced while it
        // was scanned fails the copy's condition, and one replaced during the copy is caught
        // by the second look below.
        let scanned = Some(info.etag.as_str()).filter(|e| !e.is_empty());
        let verdict = match reason {
            None => {
                bucket
                    .client
                    .copy_object(
                        expected.key,
                        final_key,
                        info.size,
                        scanned,
                        &copy_headers,
                        now,
                    )
                    .await
                    .map_err(changed_while_checked)?;
                if !unchanged_since(bucket, expected.key, &info.etag, now).await? {
                    let _ = bucket.client.delete_object(final_key, now).await;
                    return Err(replaced_while_checked());
                }
                Verdict::Verified {
                    key: final_key.to_string(),
                }
            }
            Some(reason) => {
                let kept = format!("{}{final_key}", self.config.quarantine_prefix);
                bucket
                    .client
                    .copy_object(expected.key, &kept, info.size, scanned, &copy_headers, now)
                    .await
                    .map_err(changed_while_checked)?;
                let note = serde_json::json!({
                    "reason": reason,
                    "user": token.id,
                    "email": token.email,
                    "declaredType": info.content_type,
                    "size": info.size,
                    "time": crate::audit::now_rfc3339(),
                });
                bucket
                    .client
                    .put_small(
                        &format!("{kept}.reason.json"),
                        note.to_string(),
                        "application/json",
                        now,
                    )
                    .await?;
                Verdict::Quarantined { key: kept, reason }
            }
        };
        // The incoming copy goes once the object is safe elsewhere; a delete that fails
        // leaves a copy in incoming/, which its lifecycle rule removes.
        if let Err(e) = bucket.client.delete_object(expected.key, now).await {
            tracing::warn!(
                key = expected.key,
                "cannot remove the incoming copy: {}",
                e.message
            );
        }
        if let (Verdict::Verified { key }, Some(w)) = (&verdict, &self.config.webhook) {
            self.announce(w, key, &info, token);
        }
        Ok(verdict)
    }

    /// The verdict on an upload no longer in `incoming/`: at its key (verified), in quarantine
    /// (with its note's reason), or never uploaded (409).
    async fn settled(
        &self,
        bucket: &Bucket,
        incoming: &str,
        final_key: &str,
    ) -> Result<Verdict, ApiError> {
        let now = SystemTime::now();
        if bucket.client.head(final_key, now).await?.is_some() {
            return Ok(Verdict::Verified {
                key: final_key.to_string(),
            });
        }
        let kept = format!("{}{final_key}", self.config.quarantine_prefix);
        if bucket.client.head(&kept, now).await?.is_some() {
            let note = bucket
                .client
                .get_range(&format!("{kept}.reason.json"), 0, 65_535, now)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let reason = note
                .as_ref()
                .and_then(|n| n["reason"].as_str())
                .unwrap_or("it failed a check (its note is missing)")
                .to_string();
            return Ok(Verdict::Quarantined { key: kept, reason });
        }
        Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "nothing was uploaded at {incoming}: upload the file with the URL given, then complete"
            ),
        ))
    }

    /// The reason the object fails a check, if it does.
    async fn check(
        &self,
        bucket: &Bucket,
        expected: &Expected<'_>,
        info: &hoist::remote::ObjectInfo,
    ) -> Result<Option<String>, ApiError> {
        let now = SystemTime::now();
        if let Some(size) = expected.size {
            if info.size != size {
                return Ok(Some(format!(
                    "its size is {} bytes, not the {size} declared",
                    info.size
                )));
            }
        }
        if let (Some(signed), Some(stored)) = (&expected.checksum, &info.checksum) {
            if signed.algorithm == stored.algorithm && signed.value != stored.value {
                return Ok(Some(format!(
                    "its {} checksum is {}, not the {} signed",
                    signed.algorithm.s3_name(),
                    stored.value,
                    signed.value
                )));
            }
        }
        let head = if info.size == 0 {
            bytes::Bytes::new()
        } else {
            bucket
                .client
                .get_range(expected.key, 0, HEAD_BYTES.min(info.size) - 1, now)
                .await?
        };
        if let Some(reason) = type_mismatch(&info.content_type, &head) {
            return Ok(Some(reason));
        }
        if let Some(clamd) = &self.config.clamd {
            // #29: clamd says OK for what it did not scan; "not scanned" is not "clean".
            if let Some(limit) = self.config.scan_limit_bytes.filter(|l| info.size > *l) {
                return Ok(Some(format!(
                    "it is larger than the malware scanner checks ({} bytes, scan_limit_bytes \
                     {limit}): not scanned, so not verified",
                    info.size
                )));
            }
            let resp = bucket.client.get(expected.key, now).await?;
            let answer = tokio::time::timeout(SCAN_TIMEOUT, scan(clamd, resp))
                .await
                .map_err(|_| scanner_down("clamd did not answer within 5 minutes".into()))?
                .map_err(scanner_down)?;
            if let Some(found) = answer.strip_suffix(" FOUND") {
                let signature = found.rsplit(": ").next().unwrap_or(found);
                return Ok(Some(format!("malware found: {signature}")));
            }
            if answer.ends_with("ERROR") {
                return Ok(Some(format!(
                    "the malware scanner could not scan it ({answer})"
                )));
            }
        }
        Ok(None)
    }

    /// Posts the accepted upload to the webhook, in the background, retried with backoff.
    fn announce(
        &self,
        webhook: &WebhookConfig,
        key: &str,
        info: &hoist::remote::ObjectInfo,
        token: &Token,
    ) {
        let Some(secret) = self.webhook_secret.clone() else {
            return;
        };
        let body = serde_json::json!({
            "event": "upload.accepted",
            "key": key,
            "size": info.size,
            "checksum": info.checksum.as_ref().map(|c| serde_json::json!({
                "algorithm": c.algorithm.s3_name(), "value": c.value,
            })),
            "type": info.content_type,
            "user": token.id,
            "email": token.email,
            "time": crate::audit::now_rfc3339(),
        })
        .to_string();
        let (http, url) = (self.http.clone(), webhook.url.clone());
        tokio::spawn(async move {
            for attempt in 0..WEBHOOK_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
                }
                let timestamp = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs()
                    .to_string();
                let signature = webhook_signature(&secret, &timestamp, &body);
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hoist-timestamp", &timestamp)
                    .header("x-hoist-signature", format!("sha256={signature}"))
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(status = r.status().as_u16(), attempt, "webhook refused")
                    }
                    Err(e) => tracing::warn!(attempt, "webhook unreachable: {}", delivery_error(e)),
                }
            }
            tracing::error!("webhook: gave up after {WEBHOOK_ATTEMPTS} attempts");
        });
    }
}

/// The 409 for an object replaced while it was checked: nothing moves, the client uploads again.
fn replaced_while_checked() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "the object was replaced while it was being checked, so it was not verified: upload \
         the file again",
    )
}

/// A copy refused because its source is no longer the version checked, said so.
fn changed_while_checked(f: hoist::remote::RemoteFailure) -> ApiError {
    if f.code == "PreconditionFailed" {
        replaced_while_checked()
    } else {
        ApiError::from(f)
    }
}

/// Whether `key` still has the ETag it had when it was checked.
async fn unchanged_since(
    bucket: &Bucket,
    key: &str,
    etag: &str,
    now: SystemTime,
) -> Result<bool, ApiError> {
    Ok(bucket
        .client
        .head(key, now)
        .await?
        .is_some_and(|now_there| now_there.etag == etag))
}

/// What a failed delivery says in the log: the error and its causes without the URL, whose
/// query may hold the receiver's token.
fn delivery_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Hex HMAC-SHA256 of `TIMESTAMP.BODY` under `secret`: what `X-Hoist-Signature` carries.
pub fn webhook_signature(secret: &[u8], timestamp: &str, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn scanner_down(why: String) -> ApiError {
    tracing::error!("the malware scanner failed: {why}");
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the backend cannot verify uploads right now: its malware scanner is unavailable; the \
         upload is kept, unchecked: complete it again in a minute",
    );
    e.retry_after = Some(60);
    e
}

/// Types that are containers of the ZIP format: infer names some by what is inside.
const ZIP_FAMILY: &[&str] = &[
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/epub+zip",
    "application/java-archive",
    "application/vnd.android.package-archive",
];

/// Why `head` (an object's first bytes) is not of the `declared` type, if it is not: bytes
/// with a recognised signature must be of that type; bytes without one must not claim a type
/// that has a signature.
pub fn type_mismatch(declared: &str, head: &[u8]) -> Option<String> {
    let declared = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let declared = match declared.as_str() {
        "image/jpg" => "image/jpeg".to_string(),
        _ => declared,
    };
    if declared == "application/octet-stream" {
        return None;
    }
    match infer::get(head) {
        Some(kind) => {
            let found = kind.mime_type();
            let same = found == declared
                || (ZIP_FAMILY.contains(&found) && ZIP_FAMILY.contains(&declared.as_str()));
            (!same).then(|| format!("its content is {found}, not the {declared} declared"))
        }
        None if infer::is_mime_supported(&declared) => Some(format!(
            "its content is not {declared} (no {declared} signature in its first bytes)"
        )),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (#29, finding 8): a webhook URL with its query (the receiver's token) was
    /// logged on delivery errors, and an `http://` URL to another host was accepted although
    /// the message said https.
    #[tokio::test]
    async fn webhook_urls_are_https_or_on_this_machine_and_never_quoted() {
        let with = |url: &str| VerifyConfig {
            incoming_prefix: "incoming/".into(),
            quarantine_prefix: "quarantine/".into(),
            clamd: None,
            scan_limit_bytes: None,
            webhook: Some(WebhookConfig { url: url.into() }),
        };
        let secret = Some("s".repeat(32));
        let secret = secret.as_deref();
        for bad in [
            "http://hooks.example.com/in?token=SECRET",
            "ftp://hooks.example.com/?token=SECRET",
            "https://ex ample.com/?token=SECRET",
        ] {
            let e = with(bad).validate(secret).unwrap_err();
            assert!(e.starts_with("verify.webhook.url"), "{e}");
            assert!(!e.contains("SECRET"), "the URL is not quoted: {e}");
        }
        for good in [
            "https://hooks.example.com/in?token=x",
            "http://127.0.0.1:9/in",
            "http://[::1]:9/in",
            "http://localhost:9/in",
        ] {
            assert_eq!(with(good).validate(secret), Ok(()), "{good}");
        }
        // A delivery that fails says why, without the URL.
        let failed = reqwest::Client::new()
            .post("http://127.0.0.1:1/in?token=SECRET")
            .send()
            .await
            .unwrap_err();
        let logged = delivery_error(failed);
        assert!(
            !logged.contains("SECRET") && !logged.contains("127.0.0.1:1/in"),
            "{logged}"
        );
        assert!(logged.to_ascii_lowercase().contains("connect"), "{logged}");
    }

    #[test]
    fn content_must_be_of_the_declared_type() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(type_mismatch("image/png", png), None);
        let pdf = b"%PDF-1.7\n";
        assert_eq!(
            type_mismatch("image/png", pdf).unwrap(),
            "its content is application/pdf, not the image/png declared"
        );
        assert!(type_mismatch("image/png", b"just text")
            .unwrap()
            .contains("no image/png signature"));
        assert_eq!(type_mismatch("text/plain", b"just text"), None);
        assert_eq!(
            type_mismatch("image/jpg", b"\xff\xd8\xff\xe0\0\x10JFIF\0"),
            None
        );
        assert_eq!(type_mismatch("application/octet-stream", pdf), None);
        // An executable posing as a picture.
        assert!(type_mismatch("image/jpeg", b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff").is_some());
    }

    /// The webhook's signature as a receiver computes it (the value from Python's
    /// `hmac.new(b"Jefe", b'1700000000.{"key":"a"}', hashlib.sha256).hexdigest()`).
    #[test]
    fn the_webhook_signature_is_hmac_sha256_of_timestamp_dot_body() {
        assert_eq!(
            webhook_signature(b"Jefe", "1700000000", r#"{"key":"a"}"#),
            "91ab849977823953051a712e79746f1d1428380bf3de31f5d6ee180e94389e82"
        );
    }
}
