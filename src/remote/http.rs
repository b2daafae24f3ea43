//! The one place Hoist builds HTTP clients: redirects are never followed (a bearer token or a
//! signed request must not reach another host), each kind of request has its timeouts here,
//! and every client goes through a [`super::network::Network`] (proxy, trust store).

use std::time::Duration;

/// How long Hoist waits for a backend to sign, or for one of its own S3 calls to answer.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long S3 calls with a body to process (CompleteMultipartUpload copies on some stores) may take.
pub(crate) const S3_CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a connection may take to open.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client is for, and so its timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Streaming a body: no overall timeout (a part of 5 GiB takes long); stalls are watched
    /// by the sender instead.
    Transfer,
    /// Hoist's own S3 calls (create, list, complete, abort, HEAD).
    S3Call,
    /// A request to a signing backend, or a short probe.
    Backend,
}

/// How long an answer asks to wait: `Retry-After` in seconds or as an HTTP date (RFC 9110).
pub(crate) fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A client for `purpose` on the system's network (proxy and trust store): see [`client_on`].
pub(crate) fn client(purpose: Purpose) -> Result<reqwest::Client, String> {
    let network = super::network::Network::system().map_err(|e| e.to_string())?;
    client_on(purpose, &network)
}

/// A client for `purpose` through `network`: redirects off, Hoist's user agent, the purpose's
/// timeouts, the network's proxy and trust.
pub(crate) fn client_on(
    purpose: Purpose,
    network: &super::network::Network,
) -> Result<reqwest::Client, String> {
    let builder = network
        .apply(reqwest::Client::builder())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")));
    let builder = match purpose {
        Purpose::Transfer => builder,
        Purpose::S3Call => builder.timeout(S3_CALL_TIMEOUT),
        Purpose::Backend => builder.timeout(CALL_TIMEOUT),
    };
    builder.build().map_err(|e| e.without_url().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            retry_after(&h, now)
        };
        assert_eq!(with("7"), Some(Duration::from_secs(7)));
        let in_30_s = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(with(&in_30_s), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(with(&past), Some(Duration::ZERO));
        assert_eq!(with("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
