//! SigV4 presigning with `aws-sigv4`, configured for S3.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{parse_exact_url, PresignedPut, PutRequest, SignError, Signer};
use crate::key;
use crate::secret::Secret;

/// The longest expiry Hoist signs uploads for.
pub const MAX_PUT_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// SigV4's own limit for presigned URLs.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// RFC 3986 unreserved characters stay, everything else is encoded (as SigV4 canonicalises).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Where a bucket is and the credentials to sign for it.
#[derive(Clone, Debug)]
pub struct SigV4Signer {
    bucket: String,
    region: String,
    endpoint: Option<url::Url>,
    path_style: bool,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    expires_in: Duration,
}

impl SigV4Signer {
    /// A signer for `bucket` in `region` with these credentials, for AWS.
    pub fn new(
        bucket: impl Into<String>,
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: Secret,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            region: region.into(),
            endpoint: None,
            path_style: false,
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
            expires_in: MAX_PUT_EXPIRY,
        }
    }

    /// An S3-compatible endpoint instead of AWS.
    pub fn with_endpoint(mut self, endpoint: url::Url, path_style: bool) -> Self {
        self.endpoint = Some(endpoint);
        self.path_style = path_style;
        self
    }

    /// Addresses the bucket as `host/bucket/key`.
    pub fn with_path_style(mut self, path_style: bool) -> Self {
        self.path_style = path_style;
        self
    }

    /// Signs with temporary credentials' session token.
    pub fn with_session_token(mut self, token: Option<Secret>) -> Self {
        self.session_token = token;
        self
    }

    /// Expiry of upload URLs; capped at [`MAX_PUT_EXPIRY`].
    pub fn with_expiry(mut self, expires_in: Duration) -> Self {
        self.expires_in = expires_in.min(MAX_PUT_EXPIRY);
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The unsigned URL of an object (`key` is percent-encoded here).
    pub fn object_url(&self, object_key: &str) -> String {
        let path = key::encode_path(object_key);
        // Buckets with dots break TLS on virtual hosts, so they go path-style.
        let path_style = self.path_style || self.bucket.contains('.');
        match &self.endpoint {
            Some(e) => {
                let scheme = e.scheme();
                let host = e.host_str().unwrap_or("localhost");
                let port = e.port().map(|p| format!(":{p}")).unwrap_or_default();
                let base = e.path().trim_end_matches('/');
                if path_style {
                    format!("{scheme}://{host}{port}{base}/{}/{path}", self.bucket)
                } else {
                    format!("{scheme}://{}.{host}{port}{base}/{path}", self.bucket)
                }
            }
            None if path_style => format!(
                "https://s3.{}.amazonaws.com/{}/{path}",
                self.region, self.bucket
            ),
            None => format!(
                "https://{}.s3.{}.amazonaws.com/{path}",
                self.bucket, self.region
            ),
        }
    }

    /// Presigns any request: `url` is already encoded, `headers` are signed (`host` is added).
    /// Returns the URL with the `X-Amz-*` query parameters.
    pub fn presign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        expires_in: Duration,
        now: SystemTime,
    ) -> Result<String, SignError> {
        if expires_in > MAX_PRESIGN_EXPIRY || expires_in.is_zero() {
            return Err(SignError::Signing(
                "expiry must be between 1 second and 7 days".into(),
            ));
        }
        let identity = Credentials::new(
            &self.access_key_id,
            self.secret_access_key.expose(),
            self.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "hoist",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| SignError::Signing(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| SignError::Signing(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SignError::Signing(e.to_string()))?
            .into_parts();
        let mut out = url.to_string();
        let mut sep = if out.contains('?') { '&' } else { '?' };
        for (name, value) in instructions.params() {
            out.push(sep);
            out.push_str(name);
            out.push('=');
            out.push_str(&utf8_percent_encode(value, QUERY_VALUE).to_string());
            sep = '&';
        }
        Ok(out)
    }
}

impl SigV4Signer {
    /// Presigns a PutObject of `object_key` whose request will carry exactly `headers` (all
    /// signed, `host` added). `content-length` among them is signed but left to the transport.
    pub fn presign_put_with(
        &self,
        object_key: &str,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        key::validate_key(object_key).map_err(|e| SignError::Signing(e.to_string()))?;
        let mut sorted: Vec<(&str, &str)> = headers.to_vec();
        sorted.sort();
        let unsigned = self.object_url(object_key);
        let signed = self.presign("PUT", &unsigned, &sorted, self.expires_in, now)?;
        let url = parse_exact_url(&signed).map_err(SignError::Signing)?;
        Ok(PresignedPut {
            url,
            headers: sorted
                .iter()
                .filter(|(n, _)| *n != "content-length")
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            key: object_key.to_string(),
            expires_at: Some(now + self.expires_in),
            form: None,
            completion: None,
            ticket: None,
            landed: false,
        })
    }

    /// Signs S3's POST Object form for exactly `object_key` with exactly `object_fields` (the
    /// headers a PUT would carry, `content-type` among them), whose body must be `length` bytes
    /// long (`content-length-range`: the store refuses any other size). The answer's URL is the
    /// bucket's; `form` holds the fields to send before the file.
    ///
    /// Browsers that cannot say a file's size up front (Uppy) get this instead of a PUT: the
    /// policy, not the client, then bounds what may land.
    pub fn presign_post_form(
        &self,
        object_key: &str,
        object_fields: &[(&str, &str)],
        length: std::ops::RangeInclusive<u64>,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        use base64::Engine as _;
        key::validate_key(object_key).map_err(|e| SignError::Signing(e.to_string()))?;
        let at = time::OffsetDateTime::from(now);
        let day = format!("{:04}{:02}{:02}", at.year(), u8::from(at.month()), at.day());
        let amz_date = format!(
            "{day}T{:02}{:02}{:02}Z",
            at.hour(),
            at.minute(),
            at.second()
        );
        let until = time::OffsetDateTime::from(now + self.expires_in);
        let expiration = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            until.year(),
            u8::from(until.month()),
            until.day(),
            until.hour(),
            until.minute(),
            until.second()
        );
        let credential = format!(
            "{}/{day}/{}/s3/aws4_request",
            self.access_key_id, self.region
        );
        let mut fields = vec![("key".to_string(), object_key.to_string())];
        fields.extend(
            object_fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        fields.extend([
            (
                "x-amz-algorithm".to_string(),
                "AWS4-HMAC-SHA256".to_string(),
            ),
            ("x-amz-credential".to_string(), credential),
            ("x-amz-date".to_string(), amz_date),
        ]);
        if let Some(token) = &self.session_token {
            fields.push((
                "x-amz-security-token".to_string(),
                token.expose().to_string(),
            ));
        }
        let mut conditions = vec![serde_json::json!({ "bucket": self.bucket })];
        conditions.extend(
            fields
                .iter()
                .map(|(name, value)| serde_json::json!({ name.as_str(): value })),
        );
        conditions.push(serde_json::json!([
            "content-length-range",
            length.start(),
            length.end()
        ]));
        let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions });
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signing_key =
            v4::generate_signing_key(self.secret_access_key.expose(), now, &self.region, "s3");
        let signature = v4::calculate_signature(signing_key, policy.as_bytes());
        fields.push(("policy".to_string(), policy));
        fields.push(("x-amz-signature".to_string(), signature));
        let url = parse_exact_url(&self.object_url("")).map_err(SignError::Signing)?;
        Ok(PresignedPut {
            url,
            headers: Vec::new(),
            key: object_key.to_string(),
            expires_at: Some(now + self.expires_in),
            form: Some(fields),
            completion: None,
            ticket: None,
            landed: false,
        })
    }

    /// How long URLs it signs stay valid.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }
}

#[async_trait::async_trait]
impl Signer for SigV4Signer {
    async fn presign_put(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<PresignedPut, SignError> {
        let size = req.size.to_string();
        // S3 takes one flexible checksum per request: the chosen one, else the SHA-256.
        let checksum = match &req.checksum {
            Some(c) => (c.algorithm.header(), c.value.as_str()),
            None => ("x-amz-checksum-sha256", req.sha256_b64.as_str()),
        };
        let mut headers = vec![
            ("content-length", size.as_str()),
            ("content-md5", req.md5_b64.as_str()),
            ("content-type", req.content_type.as_str()),
            checksum,
        ];
        headers.extend(req.object.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.presign_put_with(&req.key, &headers, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_example_signer() -> SigV4Signer {
        SigV4Signer::new(
            "examplebucket",
            "us-east-1",
            "AKIAIOSFODNN7EXAMPLE",
            Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        )
    }

    fn may_24_2013() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    /// AWS's published example "Authenticating Requests: Using Query Parameters" (S3 docs).
    #[test]
    fn matches_the_aws_published_presigned_url_example() {
        let url = aws_example_signer()
            .presign(
                "GET",
                "https://examplebucket.s3.amazonaws.com/test.txt",
                &[],
                Duration::from_secs(86400),
                may_24_2013(),
            )
            .unwrap();
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[tokio::test]
    async fn put_urls_sign_size_type_and_checksums_and_expire_within_15_minutes() {
        let signer = aws_example_signer().with_expiry(Duration::from_secs(3600));
        let req = PutRequest {
            key: "uploads/a b.txt".into(),
            file_name: "a b.txt".into(),
            content_type: "text/plain".into(),
            size: 5,
            sha256_b64: "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=".into(),
            md5_b64: "XUFAKrxLKna5cZ2REBfFkg==".into(),
            part_size: None,
            checksum: None,
            object: vec![],
            ..Default::default()
        };
        let p = signer.presign_put(&req, may_24_2013()).await.unwrap();
        let q: std::collections::HashMap<_, _> = p.url.query_pairs().into_owned().collect();
        assert_eq!(q["X-Amz-Expires"], "900");
        assert_eq!(
            q["X-Amz-SignedHeaders"],
            "content-length;content-md5;content-type;host;x-amz-checksum-sha256"
        );
        assert_eq!(p.url.path(), "/uploads/a%20b.txt");
        assert_eq!(
            p.url.host_str(),
            Some("examplebucket.s3.us-east-1.amazonaws.com")
        );
    }

    #[test]
    fn endpoint_and_path_style_urls() {
        let s = aws_example_signer()
            .with_endpoint(url::Url::parse("http://127.0.0.1:9000").unwrap(), true);
        assert_eq!(
            s.object_url("k/é"),
            "http://127.0.0.1:9000/examplebucket/k/%C3%A9"
        );
        let v = aws_example_signer()
            .with_endpoint(url::Url::parse("https://s3.example.net").unwrap(), false);
        assert_eq!(v.object_url("k"), "https://examplebucket.s3.example.net/k");
    }
}
