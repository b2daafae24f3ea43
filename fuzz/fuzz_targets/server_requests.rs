//! hoist-server's routes with any query and body, authenticated (so parsing, policy and the
//! upload-id seal are reached): every answer is a status with a JSON body, never a panic; a
//! granted key is under the token's prefix.
//!
//! Input: `[route][flags] query \n body`. Routes: 0 simple, 1 params, 2 create, 3 sign part,
//! 4 sign batch, 5 complete, 6 list, 7 abort. For 3–7, flag bit 0 seals a valid upload id
//! (its declared size chosen by the other bits); otherwise the query's `id` is used raw. The
//! bucket's endpoint is a closed port: calls the server would make to S3 fail at once.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use hoist::secret::Secret;
use hoist::sign::sigv4::SigV4Signer;
use hoist_server::audit::AuditLog;
use hoist_server::config::{FileConfig, PolicyConfig, TokenConfig};
use hoist_server::policy::part_plan;
use hoist_server::upload_id::UploadIds;
use hoist_server::s3::Bucket;
use hoist_server::{app, AppConfig};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token-0123456789abcdefghijklmnopqrstuvwxyz";
const PREFIX: &str = "uploads/fuzz/";
const KEY: &str = "uploads/fuzz/k.bin";
const ID_SECRET: &[u8] = b"fuzzing upload id secret, 32+ bytes long";

struct World {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    ids: UploadIds,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let file = FileConfig {
            policy: PolicyConfig {
                max_size: Some(1 << 40),
                rate_limit_per_minute: u32::MAX,
                files_per_minute: u32::MAX,
                files_burst: u32::MAX,
                ..PolicyConfig::default()
            },
            tokens: vec![TokenConfig {
                id: "fuzz".into(),
                sha256: hoist_server::token::hash_token(TOKEN),
                prefix: PREFIX.into(),
                max_size: None,
                allowed_types: vec![],
                rate_limit_per_minute: None,
                files_per_minute: None,
                bytes_per_minute: None,
            }],
            ..FileConfig::default()
        };
        let signer = SigV4Signer::new("bucket", "us-east-1", "AKIDFUZZ", Secret::new("s"))
            .with_endpoint(url::Url::parse("http://127.0.0.1:1").unwrap(), true);
        let router = app(AppConfig {
            bucket: Bucket::new(signer),
            tokens: file.tokens(None).unwrap(),
            policy: file.policy,
            audit: AuditLog::new(Box::new(std::io::sink())),
            upload_id_secret: ID_SECRET.to_vec(),
            rate_limiter: hoist_server::rate::RateLimiter::local(),
            oidc: None,
            // Uploads verified: signs go under incoming/, and the completion route parses
            // receipts (never valid here: the store at 127.0.0.1:1 is never reached).
            verifier: Some(
                hoist_server::verify::Verifier::new(
                    hoist_server::verify::VerifyConfig {
                        incoming_prefix: "incoming/".into(),
                        quarantine_prefix: "quarantine/".into(),
                        clamd: None,
                        scan_limit_bytes: None,
                        webhook: None,
                    },
                    None,
                )
                .unwrap(),
            ),
            // Preflights answered for one origin, so the CORS layer is fuzzed too.
            cors: hoist_server::cors::CorsConfig {
                allowed_origins: vec!["https://app.example.com".into()],
            },
        });
        World {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            router,
            ids: UploadIds::new(ID_SECRET),
        }
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fuzz_target!(|data: &[u8]| {
    let [route, flags, rest @ ..] = data else {
        return;
    };
    let w = world();
    let (query, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let query = String::from_utf8_lossy(query).replace(['#', ' '], "");
    let raw: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    let id = if flags & 1 == 1 {
        let size = [None, Some(0), Some(1), Some(5 << 20 | 1), Some(100 << 20)]
            [usize::from(flags >> 1) % 5];
        let parts = size.map(|s| part_plan(s, None).unwrap());
        // Sealed with and without a checksum algorithm (the next flag bit).
        let checksum = (flags & 0x80 != 0).then_some(hoist::checksum::ChecksumAlgorithm::Crc64nvme);
        w.ids.seal("fuzz", KEY, parts, checksum, "s3-id")
    } else {
        raw.get("id").cloned().unwrap_or_default()
    };
    let id = enc(&id);
    let with_key = if flags & 1 == 1 {
        format!("{query}&key={}", enc(KEY))
    } else {
        query.clone()
    };
    let n = raw.get("n").map(|n| enc(n)).unwrap_or_else(|| "1".into());
    let (method, uri) = match route % 9 {
        0 => ("POST", "/api/upload".to_string()),
        8 => ("POST", "/api/upload/complete".to_string()),
        1 => ("GET", format!("/s3/params?{query}")),
        2 => ("POST", "/s3/multipart".to_string()),
        3 => ("GET", format!("/s3/multipart/{id}/{n}?{with_key}")),
        4 => ("GET", format!("/s3/multipart/{id}/batch?{with_key}")),
        5 => ("POST", format!("/s3/multipart/{id}/complete?{with_key}")),
        6 => ("GET", format!("/s3/multipart/{id}?{with_key}")),
        _ => ("DELETE", format!("/s3/multipart/{id}?{with_key}")),
    };
    let Ok(request) = Request::builder()
        .method(method)
        .uri(&uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    w.rt.block_on(async {
        let response = w.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("every answer is JSON");
        if status.is_success() {
            if let Some(key) = json.get("key").and_then(|k| k.as_str()) {
                // Signed under incoming/ (uploads are verified), then the token's prefix.
                let own = key.strip_prefix("incoming/").expect("a key under incoming/");
                assert!(own.starts_with(PREFIX), "{key}");
                hoist::key::validate_key(key).expect("a granted key is valid");
            }
        } else {
            assert!(json.get("error").is_some_and(|e| e.is_string()), "{json}");
        }
    });
});
