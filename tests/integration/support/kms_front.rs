//! An S3 front that answers like a bucket with SSE-KMS default encryption, in front of the
//! SigV4-verifying store: every request is forwarded unchanged (its `Host` too, so signatures
//! still verify), and every answer says `x-amz-server-side-encryption: aws:kms` and carries
//! ETags that are not the content's MD5 (in headers and in XML), as S3 does for such objects.
//! The rewrite is deterministic, so ListParts agrees with what each part's PUT answered.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::Digest;

pub(crate) struct KmsFront {
    pub url: String,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
}

/// The ETag this bucket gives for the store's `etag`: another 32 hex digits (a multipart
/// object's `-N` kept).
pub(crate) fn kms_etag(etag: &str) -> String {
    let bare = etag.trim_matches('"');
    let (digest, suffix) = match bare.split_once('-') {
        Some((d, n)) => (d, format!("-{n}")),
        None => (bare, String::new()),
    };
    let hashed = md5::Md5::digest(format!("kms:{digest}").as_bytes());
    let hex: String = hashed.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}{suffix}")
}

fn rewrite_xml(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("<ETag>") {
        let inner_start = start + "<ETag>".len();
        let Some(len) = rest[inner_start..].find("</ETag>") else {
            break;
        };
        let inner = rest[inner_start..inner_start + len]
            .replace("&quot;", "")
            .replace("&#34;", "");
        out.push_str(&rest[..inner_start]);
        out.push_str(&format!("&quot;{}&quot;", kms_etag(&inner)));
        rest = &rest[inner_start + len..];
    }
    out.push_str(rest);
    out
}

async fn forward(State(up): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 30).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mut req = up
        .http
        .request(parts.method.clone(), format!("{}{target}", up.base))
        .body(body);
    for (name, value) in &parts.headers {
        req = req.header(name, value);
    }
    let answer = match req.send().await {
        Ok(a) => a,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "etag"
        ) {
            headers.append(name, value.clone());
        }
    }
    if let Some(etag) = answer.headers().get("etag").and_then(|v| v.to_str().ok()) {
        let rewritten = format!("\"{}\"", kms_etag(etag));
        headers.insert("etag", HeaderValue::from_str(&rewritten).unwrap());
    }
    if status.is_success() {
        headers.insert(
            "x-amz-server-side-encryption",
            HeaderValue::from_static("aws:kms"),
        );
    }
    let bytes: Bytes = answer.bytes().await.unwrap_or_default();
    let body = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("<ETag>") => Bytes::from(rewrite_xml(text)),
        _ => bytes,
    };
    (status, headers, body).into_response()
}

impl KmsFront {
    /// A front for the store at `store_endpoint`, on a free port of 127.0.0.1.
    pub(crate) async fn start(store_endpoint: &str) -> Self {
        let up = Upstream {
            base: store_endpoint.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let app = axum::Router::new().fallback(forward).with_state(up);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url }
    }
}
