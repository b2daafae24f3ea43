//! The health check: proves a profile works before staff depend on it — it can sign, it can
//! put (a small probe object is written and deleted), this machine's clock agrees with the
//! server's, and which addressing style it uses. Failures are reported per check, not as an
//! error.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::error::ManagerError;
use super::Manager;
use crate::profile::Mode;
use crate::remote::network::{explain, Cause};
use crate::remote::s3::S3Client;
use crate::retry::Clock;
use crate::sign::{PresignedPut, PutRequest};
use crate::upload::FileDigest;

/// Clock differences beyond this fail the health check (S3 itself refuses 15 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// How one check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum CheckStatus {
    /// It worked.
    Pass,
    /// It did not; the detail says why.
    Fail,
    /// It does not apply, or needs an earlier check to pass.
    Skipped,
}

/// One check of a health report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct HealthCheck {
    /// What was checked (`profile`, `sign`, `put`, `clock`, `path style`).
    pub name: String,
    /// How it went.
    pub status: CheckStatus,
    /// What was found, in a sentence.
    pub detail: String,
}

/// What a health check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct HealthReport {
    /// The profile checked.
    pub profile: String,
    /// No check failed.
    pub ok: bool,
    /// Every check, in order.
    pub checks: Vec<HealthCheck>,
}

impl Manager {
    /// Checks profile `name`; see the [module docs](self).
    pub async fn health_check(&self, name: &str) -> Result<HealthReport, ManagerError> {
        let profile = self.config.profiles.get(name)?;
        let mut checks = Vec::new();
        let report = |checks: Vec<HealthCheck>| HealthReport {
            profile: name.to_string(),
            ok: checks.iter().all(|c| c.status != CheckStatus::Fail),
            checks,
        };
        // A fresh session, so secrets changed since are read again.
        self.forget_session(name).await;
        let session = match self.session(name).await {
            Ok(s) => {
                checks.push(pass("profile", "complete; its secrets are in the keychain"));
                s
            }
            Err(e) => {
                checks.push(fail("profile", e));
                return Ok(report(checks));
            }
        };
        let probe = Probe::new(&profile.prefix);
        let now = self.config.retry.clock.now();
        let signed = match session.signer().presign_put(&probe.request(), now).await {
            Ok(s) => {
                checks.push(pass("sign", "a presigned PUT was issued"));
                s
            }
            Err(e) => {
                checks.push(fail("sign", e));
                return Ok(report(checks));
            }
        };
        let Some(client) = session.s3_client() else {
            checks.push(skipped(
                "put",
                "a backend profile cannot delete a test object, so none is written: upload a \
                 small file to try it",
            ));
            checks.push(skipped("clock", "the backend signs with its own clock"));
            checks.push(skipped("path style", "the backend chooses the address"));
            return Ok(report(checks));
        };
        let addressing = match &profile.mode {
            Mode::SelfSign {
                path_style,
                endpoint,
                region,
                ..
            } => Addressing {
                path_style: *path_style,
                endpoint_host: endpoint_host(endpoint.as_deref(), region),
            },
            _ => Addressing {
                path_style: true,
                endpoint_host: None,
            },
        };
        checks.extend(
            probe
                .put_and_delete(
                    client,
                    &signed,
                    &addressing,
                    self.config.retry.clock.as_ref(),
                )
                .await?,
        );
        Ok(report(checks))
    }
}

/// How a self-sign profile addresses its bucket.
struct Addressing {
    path_style: bool,
    /// The endpoint's own host and port (without the bucket's label), when known.
    endpoint_host: Option<(String, u16)>,
}

/// The host and port of `endpoint`, or AWS's regional endpoint.
fn endpoint_host(endpoint: Option<&str>, region: &str) -> Option<(String, u16)> {
    match endpoint {
        Some(e) => {
            let url = url::Url::parse(e).ok()?;
            Some((url.host_str()?.to_string(), url.port_or_known_default()?))
        }
        None => Some((format!("s3.{region}.amazonaws.com"), 443)),
    }
}

/// Whether `host` resolves (within a few seconds).
async fn resolves((host, port): &(String, u16)) -> bool {
    let lookup = tokio::net::lookup_host((host.as_str(), *port));
    match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().is_some(),
        _ => false,
    }
}

/// The path-style check after a put failed for `cause`: only a bucket's virtual-hosted name
/// (bucket.host) that does not resolve while the endpoint's own host does can be the
/// addressing's fault (#31: path style was suggested for an endpoint that resolves nowhere).
fn addressing_after_failure(
    cause: Option<Cause>,
    addressing: &Addressing,
    endpoint_resolves: bool,
    style: &str,
) -> HealthCheck {
    match (cause, addressing.path_style, &addressing.endpoint_host) {
        (Some(Cause::Dns), false, Some(_)) if endpoint_resolves => fail(
            "path style",
            format!(
                "{style}: the bucket's own host name did not resolve, though the endpoint's \
                 does; if the endpoint is not AWS, try path-style addresses"
            ),
        ),
        (Some(Cause::Dns), false, Some((host, _))) => skipped(
            "path style",
            format!(
                "the endpoint's own host {host} does not resolve either: path style cannot help"
            ),
        ),
        _ => skipped("path style", "needs a successful put"),
    }
}

/// The small object a health check writes and deletes.
struct Probe {
    body: &'static [u8],
    digest: FileDigest,
    key: String,
}

impl Probe {
    fn new(prefix: &str) -> Self {
        let body: &[u8] = b"Hoist health check: this object is deleted right away.\n";
        Self {
            body,
            digest: FileDigest {
                sha256: <sha2::Sha256 as sha2::Digest>::digest(body).into(),
                md5: <md5::Md5 as md5::Digest>::digest(body).into(),
                checksum: crate::checksum::ChecksumAlgorithm::default().of(body),
                len: body.len() as u64,
            },
            key: format!("{prefix}.hoist-health/{}.txt", uuid::Uuid::new_v4()),
        }
    }

    fn request(&self) -> PutRequest {
        PutRequest {
            key: self.key.clone(),
            file_name: "hoist-health-check.txt".into(),
            content_type: "text/plain".into(),
            size: self.digest.len,
            sha256_b64: self.digest.sha256_b64(),
            md5_b64: self.digest.md5_b64(),
            part_size: None,
            checksum: None,
            object: vec![],
            ..Default::default()
        }
    }

    /// The put, clock and path-style checks: PUTs the probe to `signed`, then deletes it
    /// (whose answer carries the server's clock).
    async fn put_and_delete(
        &self,
        client: &S3Client,
        signed: &PresignedPut,
        addressing: &Addressing,
        clock: &dyn Clock,
    ) -> Result<Vec<HealthCheck>, ManagerError> {
        let path_style = addressing.path_style;
        let style = if path_style {
            "path-style addresses (host/bucket/key)"
        } else {
            "virtual-hosted addresses (bucket.host/key)"
        };
        if let Some((reason, cause)) = self.put(client, signed, clock.now()).await {
            let endpoint_resolves = match (&cause, &addressing.endpoint_host) {
                (Some(Cause::Dns), Some(host)) if !path_style => resolves(host).await,
                _ => false,
            };
            let addressing = addressing_after_failure(cause, addressing, endpoint_resolves, style);
            return Ok(vec![
                fail("put", reason),
                skipped("clock", "needs a successful put"),
                addressing,
            ]);
        }
        let now = clock.now();
        let mut checks = match client.delete_object(&self.key, now).await {
            Ok(server_time) => vec![
                pass(
                    "put",
                    format!(
                        "wrote {} bytes to {} and deleted them",
                        self.digest.len, self.key
                    ),
                ),
                clock_check(now, server_time),
            ],
            Err(e) => vec![
                fail(
                    "put",
                    format!(
                        "wrote {} but could not delete it ({e}); delete it by hand",
                        self.key
                    ),
                ),
                skipped("clock", "needs a successful delete"),
            ],
        };
        checks.push(pass("path style", style));
        Ok(checks)
    }

    /// PUTs the probe through the profile's network; returns why it failed, and what stopped
    /// it when no server answered.
    async fn put(
        &self,
        client: &S3Client,
        signed: &PresignedPut,
        now: SystemTime,
    ) -> Option<(String, Option<Cause>)> {
        let mut put = client
            .http()
            .put(signed.url.clone())
            .body(self.body.to_vec());
        for (n, v) in &signed.headers {
            put = put.header(n, v);
        }
        match put.send().await {
            Ok(resp) if resp.status().is_success() => None,
            Ok(resp) => {
                let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
                let text = resp.text().await.unwrap_or_default();
                let failure =
                    crate::remote::failure::classify_response(status, &headers, &text, now);
                Some((failure.to_string(), None))
            }
            Err(e) => {
                let explained = explain(&e, "the storage server");
                Some((explained.message, Some(explained.cause)))
            }
        }
    }
}

fn clock_check(now: SystemTime, server: Option<SystemTime>) -> HealthCheck {
    let Some(server) = server else {
        return skipped("clock", "the server sent no Date header");
    };
    let (skew, direction) = match now.duration_since(server) {
        Ok(d) => (d, "ahead of"),
        Err(e) => (e.duration(), "behind"),
    };
    // The Date header has one-second resolution.
    let secs = skew.as_secs();
    if skew > MAX_CLOCK_SKEW {
        fail(
            "clock",
            format!(
                "this machine's clock is {secs} s {direction} the server's; S3 refuses \
                 signatures more than 15 minutes off: set the clock right (enable NTP)"
            ),
        )
    } else {
        pass("clock", format!("within {} s of the server's", secs.max(1)))
    }
}

fn pass(name: &str, detail: impl ToString) -> HealthCheck {
    check(name, CheckStatus::Pass, detail)
}

fn fail(name: &str, detail: impl ToString) -> HealthCheck {
    check(name, CheckStatus::Fail, detail)
}

fn skipped(name: &str, detail: impl ToString) -> HealthCheck {
    check(name, CheckStatus::Skipped, detail)
}

fn check(name: &str, status: CheckStatus, detail: impl ToString) -> HealthCheck {
    HealthCheck {
        name: name.to_string(),
        status,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_beyond_five_minutes_fails_and_says_which_way() {
        let server = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ok = clock_check(server + Duration::from_secs(2), Some(server));
        assert_eq!(ok.status, CheckStatus::Pass);
        let ahead = clock_check(server + Duration::from_secs(301), Some(server));
        assert_eq!(ahead.status, CheckStatus::Fail);
        assert!(ahead.detail.contains("301 s ahead of"), "{}", ahead.detail);
        let behind = clock_check(server - Duration::from_secs(900), Some(server));
        assert!(behind.detail.contains("900 s behind"), "{}", behind.detail);
        assert_eq!(clock_check(server, None).status, CheckStatus::Skipped);
    }

    /// Path style is suggested only where it can help: the bucket's virtual-hosted name does
    /// not resolve while the endpoint's own host does (#31).
    #[test]
    fn path_style_is_suggested_only_where_the_endpoint_itself_resolves() {
        let virtual_hosted = Addressing {
            path_style: false,
            endpoint_host: Some(("minio.corp".into(), 9000)),
        };
        let style = "virtual-hosted addresses (bucket.host/key)";
        let helps = addressing_after_failure(Some(Cause::Dns), &virtual_hosted, true, style);
        assert_eq!(helps.status, CheckStatus::Fail);
        assert!(helps.detail.contains("try path-style"), "{}", helps.detail);
        let cannot = addressing_after_failure(Some(Cause::Dns), &virtual_hosted, false, style);
        assert_eq!(cannot.status, CheckStatus::Skipped);
        assert!(
            cannot.detail.contains("minio.corp does not resolve either"),
            "{}",
            cannot.detail
        );
        let path = Addressing {
            path_style: true,
            ..virtual_hosted
        };
        assert_eq!(
            addressing_after_failure(Some(Cause::Dns), &path, true, style).status,
            CheckStatus::Skipped
        );
        let refused = addressing_after_failure(Some(Cause::Refused), &path, true, style);
        assert_eq!(refused.detail, "needs a successful put");
        assert_eq!(
            endpoint_host(None, "eu-west-1"),
            Some(("s3.eu-west-1.amazonaws.com".into(), 443))
        );
        assert_eq!(
            endpoint_host(Some("http://127.0.0.1:9000"), "x"),
            Some(("127.0.0.1".into(), 9000))
        );
    }
}
