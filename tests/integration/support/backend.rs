//! A presign backend speaking the `simple` protocol on 127.0.0.1, built on Hoist's own signer,
//! in two flavours: a careful one (checks a bearer token, signs type, size and checksums,
//! answers every field) and the article's minimal route (reads only `fileName`, answers `{url}`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hoist::sign::sigv4::SigV4Signer;
use hoist::sign::{PutRequest, Signer};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Careful,
    /// Only `fileName` is read and only `{url}` returned; nothing but `host` is signed.
    Minimal,
    /// Answers 307 to `redirect_to`.
    Redirect,
    /// Answers a URL with `..` segments, which the `url` crate would rewrite.
    DotSegments,
    /// Presigns as the AWS SDK for JavaScript v3 does by default: the CRC32 of an empty body
    /// in the signed query (`x-amz-sdk-checksum-algorithm=CRC32&x-amz-checksum-crc32=AAAAAA==`).
    SdkV3Defaults,
}

#[derive(Clone)]
struct AppState {
    signer: SigV4Signer,
    flavour: Flavour,
    token: Option<String>,
    redirect_to: String,
    seen_auth: Arc<Mutex<Vec<Option<String>>>>,
}

pub(crate) struct Backend {
    pub url: String,
    pub seen_auth: Arc<Mutex<Vec<Option<String>>>>,
}

impl Backend {
    pub(crate) async fn start(
        signer: SigV4Signer,
        flavour: Flavour,
        token: Option<&str>,
        redirect_to: &str,
    ) -> Self {
        let seen_auth = Arc::new(Mutex::new(Vec::new()));
        let state = AppState {
            signer,
            flavour,
            token: token.map(str::to_string),
            redirect_to: redirect_to.to_string(),
            seen_auth: Arc::clone(&seen_auth),
        };
        let app = Router::new()
            .route("/api/upload", post(presign))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/upload", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, seen_auth }
    }
}

async fn presign(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<axum::response::Response, (StatusCode, Json<serde_json::Value>)> {
    use axum::response::IntoResponse;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.seen_auth.lock().unwrap().push(auth.clone());
    if s.flavour == Flavour::Redirect {
        return Ok((
            StatusCode::TEMPORARY_REDIRECT,
            [("location", s.redirect_to.clone())],
        )
            .into_response());
    }
    if let Some(t) = &s.token {
        if auth.as_deref() != Some(&format!("Bearer {t}")) {
            return Err((
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({"error": "missing or wrong token"})),
            ));
        }
    }
    let name = body["fileName"].as_str().unwrap_or("file");
    let key = format!("staff/{}", hoist::key::sanitize_name(name));
    let now = SystemTime::now();
    match s.flavour {
        Flavour::DotSegments => {
            let url = s.signer.object_url("uploads/../../escaped");
            Ok(Json(serde_json::json!({ "url": url })).into_response())
        }
        Flavour::SdkV3Defaults => {
            let url = s
                .signer
                .presign(
                    "PUT",
                    &format!(
                        "{}?x-amz-checksum-crc32=AAAAAA%3D%3D&x-amz-sdk-checksum-algorithm=CRC32",
                        s.signer.object_url(&key)
                    ),
                    &[],
                    Duration::from_secs(300),
                    now,
                )
                .unwrap();
            Ok(Json(serde_json::json!({ "url": url })).into_response())
        }
        Flavour::Minimal => {
            let url = s
                .signer
                .presign(
                    "PUT",
                    &s.signer.object_url(&key),
                    &[],
                    Duration::from_secs(300),
                    now,
                )
                .unwrap();
            Ok(Json(serde_json::json!({ "url": url })).into_response())
        }
        _ => {
            let req = PutRequest {
                key: key.clone(),
                file_name: name.to_string(),
                content_type: body["contentType"].as_str().unwrap_or("").to_string(),
                size: body["size"].as_u64().unwrap_or(0),
                sha256_b64: body["checksumSha256"].as_str().unwrap_or("").to_string(),
                md5_b64: body["contentMd5"].as_str().unwrap_or("").to_string(),
                part_size: None,
                checksum: None,
                object: vec![],
                ..Default::default()
            };
            let p = s.signer.presign_put(&req, now).await.unwrap();
            let headers: serde_json::Map<String, serde_json::Value> =
                p.headers.into_iter().map(|(k, v)| (k, v.into())).collect();
            Ok(Json(serde_json::json!({
                "url": p.url.as_str(), "method": "PUT", "headers": headers, "key": p.key,
                "expiresAt": time::OffsetDateTime::from(p.expires_at.unwrap()).format(&time::format_description::well_known::Rfc3339).unwrap(),
            }))
            .into_response())
        }
    }
}
