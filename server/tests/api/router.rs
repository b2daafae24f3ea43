//! Every rule of the API, through the router with `oneshot`.

use axum::http::StatusCode;
use hoist_server::config::PolicyConfig;
use serde_json::json;

use crate::{token, Harness, ALICE, BOB};

fn simple(body: serde_json::Value) -> String {
    body.to_string()
}

#[tokio::test]
async fn healthz_answers_without_a_token() {
    let h = Harness::new().await;
    let (status, body, _) = h.call("GET", "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok");
}

/// Ready only when the store answers and takes the server's credentials: with the store up;
/// not with credentials it refuses, nor with the store gone.
#[tokio::test]
async fn readyz_checks_the_store_and_the_credentials() {
    use hoist::secret::Secret;
    use hoist::sign::sigv4::SigV4Signer;
    let h = Harness::new().await;
    let (status, body, _) = h.call("GET", "/readyz", None, None).await;
    assert_eq!(
        (status, &body["ready"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );

    let endpoint = h.store.endpoint().clone();
    let router_with = |signer: SigV4Signer| hoist_server::app(crate::bare_config(signer));
    let wrong_secret = SigV4Signer::new(
        hoist::local::LOCAL_BUCKET,
        "us-east-1",
        hoist::local::LOCAL_ACCESS_KEY_ID,
        Secret::new("not-the-stores-secret-0123456789abcdef"),
    )
    .with_endpoint(endpoint, true);
    let gone = SigV4Signer::new("b", "us-east-1", "AKID", Secret::new("s"))
        .with_endpoint(url::Url::parse("http://127.0.0.1:9").unwrap(), true);
    for (router, why) in [
        (router_with(wrong_secret), "the store refused"),
        (
            router_with(gone),
            "(connection refused): the storage server may be down, or the port in the [bucket] \
             endpoint in the server's config is wrong",
        ),
    ] {
        let (status, body, _) = h.call_on(router, "GET", "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.starts_with("not ready") && error.contains(why),
            "{error}"
        );
        // Regression (review of this probe): the store's own message, which can name accounts
        // and ARNs, stays in the server's log; the caller gets its code.
        let store_text = ["signature", "calculated", "arn:"];
        assert!(!store_text.iter().any(|t| error.contains(t)), "{error}");
        // Regression (#30): the store-down reason told the operator to check "the profile".
        assert!(!error.contains("profile"), "{error}");
    }
}

/// `/metrics` counts each request by action and status (signatures given, denials by their
/// status) and times each action, in Prometheus's text format.
#[tokio::test]
async fn metrics_count_signatures_and_denials_by_status() {
    let h = Harness::new().await;
    let ok = simple(json!({"fileName": "a.txt", "contentType": "text/plain", "size": 1}));
    let refused =
        simple(json!({"fileName": "a.exe", "contentType": "application/x-msdownload", "size": 1}));
    for _ in 0..2 {
        let (status, _, _) = h.call("POST", "/api/upload", Some(ALICE), Some(&ok)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&refused))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = h
        .call(
            "POST",
            "/api/upload",
            Some("wrong-token-0123456789abcdef0123"),
            Some(&ok),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, text, headers) = h.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = text.as_str().unwrap().to_string();
    let count = |status: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("hoist_server_requests_total{")
                    && l.contains("action=\"simple.put\"")
                    && l.contains(&format!("status=\"{status}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no count for {status}:\n{text}"))
            .to_string()
    };
    assert_eq!(
        (count("200"), count("415"), count("401")),
        ("2".into(), "1".into(), "1".into())
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("hoist_server_request_seconds_count{")
                && l.contains("simple.put")
                && l.ends_with(" 4")),
        "{text}"
    );
}

#[tokio::test]
async fn no_token_or_a_wrong_one_is_401_and_audited() {
    let h = Harness::new().await;
    let body = simple(json!({"fileName": "a.txt", "contentType": "text/plain", "size": 1}));
    let (status, err, headers) = h.call("POST", "/api/upload", None, Some(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(err["error"].as_str().unwrap().contains("Bearer"));
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, err, _) = h
        .call(
            "POST",
            "/api/upload",
            Some("not-a-token-at-all"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"], "unknown or revoked token");
    let audit = h.audit_lines();
    assert_eq!(audit.len(), 2);
    assert!(audit
        .iter()
        .all(|l| l["outcome"].as_str().unwrap().starts_with("denied 401")));
}

#[tokio::test]
async fn simple_protocol_signs_type_size_and_no_overwrite_under_the_token_prefix() {
    let h = Harness::new().await;
    let sha = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
    let body = simple(
        json!({"fileName": "Report Q3.pdf", "contentType": "application/pdf", "size": 5, "checksumSha256": sha}),
    );
    let (status, r, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let key = r["key"].as_str().unwrap();
    assert!(
        key.starts_with("uploads/alice/") && key.ends_with("-Report_Q3.pdf"),
        "{key}"
    );
    assert_eq!(r["method"], "PUT");
    assert_eq!(r["headers"]["content-type"], "application/pdf");
    assert_eq!(r["headers"]["if-none-match"], "*");
    assert_eq!(r["headers"]["content-disposition"], "attachment");
    assert_eq!(r["headers"]["x-amz-checksum-sha256"], sha);
    let url = url::Url::parse(r["url"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        q["X-Amz-SignedHeaders"],
        "content-disposition;content-length;content-type;host;if-none-match;x-amz-checksum-sha256"
    );
    assert_eq!(q["X-Amz-Expires"], "900");
    let expires = time::OffsetDateTime::parse(
        r["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires - time::OffsetDateTime::now_utc() <= time::Duration::seconds(900));
    let audit = h.audit_lines();
    assert_eq!(audit[0]["token"], "alice");
    assert_eq!(audit[0]["key"], key);
    assert_eq!(audit[0]["size"], 5);
    assert_eq!(audit[0]["outcome"], "signed");
    let raw = String::from_utf8(h.audit.lock().unwrap().clone()).unwrap();
    assert!(
        !raw.contains(ALICE)
            && !raw.contains("X-Amz-Signature")
            && !raw.contains(&q["X-Amz-Signature"])
    );
}

#[tokio::test]
async fn hostile_file_names_never_escape_the_prefix() {
    let h = Harness::new().await;
    let long = "x".repeat(3000);
    let names = [
        "../../etc/passwd",
        "/abs/path.txt",
        "a\\..\\..\\b.txt",
        "%2e%2e/%2e%2e/x.txt",
        "..",
        ".",
        "a\u{0}b.txt",
        "bell\u{7}.txt",
        // Shown as "evilexe.pdf": the override is kept out of the key. (As `…fdp.exe` it is an
        // executable by name, refused: see active_content_and_malformed_types_are_refused.)
        "evil\u{202E}fdp.txt",
        "name/with/slashes.txt",
        long.as_str(),
    ];
    for name in names {
        let body = simple(json!({"fileName": name, "contentType": "text/plain", "size": 3}));
        let (status, r, _) = h
            .call("POST", "/api/upload", Some(ALICE), Some(&body))
            .await;
        assert_eq!(status, StatusCode::OK, "{name:?}: {r}");
        let key = r["key"].as_str().unwrap();
        assert!(key.starts_with("uploads/alice/"), "{name:?} -> {key}");
        assert!(key.len() <= 1024);
        hoist::key::validate_key(key).unwrap_or_else(|e| panic!("{name:?} -> {key}: {e}"));
        let url = url::Url::parse(r["url"].as_str().unwrap()).unwrap();
        assert!(
            url.path().starts_with("/hoist-local/uploads/alice/"),
            "{name:?} -> {}",
            url.path()
        );
    }
    for (name, expected) in [
        ("", "fileName is required"),
        ("   ", "fileName is required"),
    ] {
        let (status, r, _) = h
            .call(
                "POST",
                "/api/upload",
                Some(ALICE),
                Some(&simple(json!({"fileName": name}))),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(r["error"], expected);
    }
    let huge = "y".repeat(5000);
    let (status, _, _) = h
        .call(
            "POST",
            "/api/upload",
            Some(ALICE),
            Some(&simple(json!({"fileName": huge}))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_types_sizes_and_bodies_get_clear_errors() {
    let policy = PolicyConfig {
        allowed_types: vec!["image/*".into(), "application/pdf".into()],
        max_size: Some(1000),
        ..PolicyConfig::default()
    };
    let h = Harness::with(policy, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            simple(
                json!({"fileName": "a.exe", "contentType": "application/x-msdownload", "size": 10}),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not allowed",
        ),
        (
            simple(json!({"fileName": "a.sh", "size": 10})),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not allowed",
        ),
        (
            simple(json!({"fileName": "a.png", "contentType": "image/png", "size": -1})),
            StatusCode::BAD_REQUEST,
            "whole number",
        ),
        (
            simple(json!({"fileName": "a.png", "contentType": "image/png", "size": "ten"})),
            StatusCode::BAD_REQUEST,
            "whole number",
        ),
        (
            simple(json!({"fileName": "a.png", "contentType": "image/png", "size": 1.5})),
            StatusCode::BAD_REQUEST,
            "whole number",
        ),
        (
            simple(json!({"fileName": "a.png", "contentType": "image/png", "size": 1001})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "over the limit",
        ),
        (
            simple(
                json!({"fileName": "a.png", "contentType": "image/png", "size": 99_999_999_999_999_999u64}),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "over the limit",
        ),
        (
            simple(json!({"fileName": "a.png", "contentType": "image/png"})),
            StatusCode::BAD_REQUEST,
            "size is required",
        ),
        (
            simple(json!({"fileName": "a.png", "contentType": "not a type", "size": 1})),
            StatusCode::BAD_REQUEST,
            "not a MIME type",
        ),
        (
            simple(json!({"fileName": 42, "size": 1})),
            StatusCode::BAD_REQUEST,
            "fileName: invalid type: integer `42`, expected a string",
        ),
        (
            simple(
                json!({"fileName": "a.png", "contentType": "image/png", "size": 1, "checksumSha256": "nope"}),
            ),
            StatusCode::BAD_REQUEST,
            "base64",
        ),
        (
            "{not json".to_string(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        ("[1,2]".to_string(), StatusCode::BAD_REQUEST, "JSON object"),
    ];
    let refused = cases.len();
    for (body, status, needle) in cases {
        let (got, r, _) = h
            .call("POST", "/api/upload", Some(ALICE), Some(&body))
            .await;
        assert_eq!(got, status, "{body}: {r}");
        assert!(
            r["error"].as_str().unwrap_or("").contains(needle),
            "{body}: {r}"
        );
    }
    // Each refusal is audited once, with the token and action, wherever it was decided.
    let audit = h.audit_lines();
    assert_eq!(audit.len(), refused, "{audit:?}");
    for line in &audit {
        assert_eq!(line["token"], "alice", "{line}");
        assert_eq!(line["action"], "simple.put", "{line}");
        assert!(
            line["outcome"].as_str().unwrap().starts_with("denied 4"),
            "{line}"
        );
    }
    let (ok, r, _) = h
        .call(
            "POST",
            "/api/upload",
            Some(ALICE),
            Some(&simple(json!({"fileName": "cat.png", "size": 10}))),
        )
        .await;
    assert_eq!(ok, StatusCode::OK, "{r}");
    assert_eq!(
        r["headers"]["content-type"], "image/png",
        "type guessed from the name"
    );
}

#[tokio::test]
async fn a_client_sending_only_the_file_name_gets_a_url() {
    let h = Harness::new().await;
    let (status, r, _) = h
        .call(
            "POST",
            "/api/upload",
            Some(ALICE),
            Some(&simple(json!({"fileName": "photo.jpg"}))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["url"].as_str().unwrap().contains("X-Amz-Signature="));
    assert_eq!(r["headers"]["content-type"], "image/jpeg");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut t = token("alice", ALICE, "uploads/alice/");
    t.rate_limit_per_minute = Some(2);
    let h = Harness::with(PolicyConfig::default(), vec![t]).await;
    let body = simple(json!({"fileName": "a.txt", "size": 1}));
    for _ in 0..2 {
        assert_eq!(
            h.call("POST", "/api/upload", Some(ALICE), Some(&body))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, r, headers) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "30");
    assert!(r["error"].as_str().unwrap().contains("rate limit"));
}

#[tokio::test]
async fn a_lower_expiry_from_the_config_is_used() {
    let h = Harness::with(
        PolicyConfig {
            expiry_secs: 60,
            ..PolicyConfig::default()
        },
        vec![token("alice", ALICE, "uploads/alice/")],
    )
    .await;
    let (_, r, _) = h
        .call(
            "POST",
            "/api/upload",
            Some(ALICE),
            Some(&simple(json!({"fileName": "a.txt", "size": 1}))),
        )
        .await;
    assert!(
        r["url"].as_str().unwrap().contains("X-Amz-Expires=60&"),
        "{r}"
    );
}

#[tokio::test]
async fn companion_params_answers_method_url_and_headers() {
    let h = Harness::new().await;
    // Hoist declares `size`: a PUT, its length signed.
    let (status, r, _) = h
        .call(
            "GET",
            "/s3/params?filename=..%2F..%2Fx.png&type=image%2Fpng&size=5",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["method"], "PUT");
    assert_eq!(r["headers"]["content-type"], "image/png");
    assert!(r["key"].as_str().unwrap().starts_with("uploads/alice/"));
    assert_eq!(r["fields"], json!({}));
}

/// The conditions of a POST form's policy.
fn form_conditions(r: &serde_json::Value) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    let policy = r["fields"]["policy"].as_str().expect("a signed policy");
    let policy = base64::engine::general_purpose::STANDARD
        .decode(policy)
        .unwrap();
    let policy: serde_json::Value = serde_json::from_slice(&policy).unwrap();
    policy["conditions"].as_array().unwrap().clone()
}

/// Posts a form answer as a browser does; the store's status.
async fn post_form(r: &serde_json::Value, body: Vec<u8>) -> u16 {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in r["fields"].as_object().unwrap() {
        form = form.text(name.clone(), value.as_str().unwrap().to_string());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(body).file_name("f"));
    let url = r["url"].as_str().unwrap();
    reqwest::Client::new()
        .post(url)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Regression (#33): Uppy showed "Bad Request" for every refusal: it reads Companion's
/// `message`, and hoist-server answered only `error`. Uppy also sends a file's size as
/// `metadata[size]`, and Uppy 6 can send nothing but a POST form: a browser gets a form
/// whose length range is that size exactly.
#[tokio::test]
async fn companion_refusals_carry_companion_s_message_and_uppy_s_size_is_read() {
    let h = Harness::new().await;
    let (status, r, _) = h
        .call(
            "GET",
            "/s3/params?filename=page.html&type=text%2Fhtml",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{r}");
    let message = r["message"].as_str().expect("a message for Uppy");
    assert!(message.contains("text/html"), "{r}");
    assert_eq!(
        r["error"], r["message"],
        "earlier clients read `error`: {r}"
    );

    let (status, r, _) = h
        .call(
            "GET",
            "/s3/params?filename=a.png&type=image%2Fpng&metadata%5Bsize%5D=4",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["method"], "POST", "{r}");
    let key = r["key"].as_str().unwrap();
    assert_eq!(r["fields"]["key"], key, "{r}");
    assert_eq!(r["fields"]["content-type"], "image/png", "{r}");
    assert!(
        form_conditions(&r).contains(&json!(["content-length-range", 4, 4])),
        "{r}"
    );
    assert_ne!(
        post_form(&r, b"12345".to_vec()).await / 100,
        2,
        "a byte more"
    );
    assert!(h.stored(key).is_none());
    assert_eq!(post_form(&r, b"1234".to_vec()).await / 100, 2);
    assert_eq!(h.stored(key).as_deref(), Some(&b"1234"[..]));
}

/// Regression (#33): with a size limit, every Uppy upload was refused ("size is required"):
/// a browser that declares no size gets a form the store holds to the limit.
#[tokio::test]
async fn a_browser_declaring_no_size_gets_a_form_bounded_by_the_limit() {
    let policy = PolicyConfig {
        max_size: Some(10),
        ..PolicyConfig::default()
    };
    let h = Harness::with(policy, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let ask = || h.call("GET", "/s3/params?filename=a.txt", Some(ALICE), None);
    let (status, r, _) = ask().await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(
        form_conditions(&r).contains(&json!(["content-length-range", 0, 10])),
        "{r}"
    );
    assert_ne!(
        post_form(&r, vec![b'x'; 11]).await / 100,
        2,
        "over the limit"
    );
    assert!(h.store_keys().is_empty(), "{:?}", h.store_keys());
    let (_, r, _) = ask().await;
    assert_eq!(post_form(&r, vec![b'x'; 10]).await / 100, 2);
    assert_eq!(h.store_keys().len(), 1);

    // A declared size over the limit is still refused up front.
    let (status, r, _) = h
        .call(
            "GET",
            "/s3/params?filename=a.txt&metadata%5Bsize%5D=11",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("limit of 10"),
        "{r}"
    );
}

#[tokio::test]
async fn multipart_ids_keys_and_part_numbers_are_checked() {
    let h = Harness::new().await;
    let (status, created, _) = h
        .call("POST", "/s3/multipart", Some(ALICE), Some(&simple(json!({"filename": "big.bin", "type": "application/octet-stream", "metadata": {}, "size": 12 * 1024 * 1024}))))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["uploadId"].as_str().unwrap().to_string();
    assert_eq!(created["bucket"], "hoist-local");
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let path_id = enc(&id);
    let k = enc(&key);

    let (status, r, _) = h
        .call(
            "GET",
            &format!("/s3/multipart/{path_id}/1?key={k}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["url"].as_str().unwrap().contains("partNumber=1"));
    assert_eq!(r["expires"], 900);

    // 12 MiB declared allows parts 1..=3.
    for (part, status) in [
        ("0", StatusCode::BAD_REQUEST),
        ("4", StatusCode::BAD_REQUEST),
        ("10001", StatusCode::BAD_REQUEST),
        ("x", StatusCode::BAD_REQUEST),
        ("3", StatusCode::OK),
    ] {
        let (got, r, _) = h
            .call(
                "GET",
                &format!("/s3/multipart/{path_id}/{part}?key={k}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(got, status, "part {part}: {r}");
    }
    let (status, r, _) = h
        .call(
            "GET",
            &format!("/s3/multipart/{path_id}/batch?key={k}&partNumbers=1,2,3"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["presignedUrls"].as_object().unwrap().len(), 3);

    // Another token, another key, a forged id, a key outside the prefix.
    let (status, _, _) = h
        .call(
            "GET",
            &format!("/s3/multipart/{path_id}/1?key={k}"),
            Some(BOB),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "bob may not use alice's upload"
    );
    let other = enc("uploads/alice/other.bin");
    let (status, _, _) = h
        .call(
            "GET",
            &format!("/s3/multipart/{path_id}/1?key={other}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let forged = enc(&id.replacen(&(12 * 1024 * 1024).to_string(), "999999999999", 1));
    let (status, _, _) = h
        .call(
            "GET",
            &format!("/s3/multipart/{forged}/1?key={k}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a raised declared size is refused"
    );
    let outside = enc("secret/thing.bin");
    let (status, r, _) = h
        .call(
            "GET",
            &format!("/s3/multipart/{path_id}/1?key={outside}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{r}");
    let (status, _, _) = h
        .call(
            "GET",
            &format!("/s3/multipart/{path_id}/1"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "key is required");

    let (status, r, _) = h
        .call(
            "POST",
            &format!("/s3/multipart/{path_id}/complete?key={k}"),
            Some(ALICE),
            Some(&simple(
                json!({"parts": [{"PartNumber": 2, "ETag": "a"}, {"PartNumber": 1, "ETag": "b"}]}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{r}");
    let (status, r, _) = h
        .call(
            "DELETE",
            &format!("/s3/multipart/{path_id}?key={k}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r, json!({}));
    assert_eq!(
        h.pending_parts(),
        0,
        "an aborted upload leaves nothing behind"
    );
}

#[tokio::test]
async fn unknown_endpoints_answer_json() {
    let h = Harness::new().await;
    let (status, r, _) = h.call("GET", "/nope", Some(ALICE), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(r["error"], "no such endpoint");
}

/// #29, finding 3: a declared type that contradicts the name is refused before anything is
/// signed, in both protocols (a `.pdf` declared `image/png` passed an `image/*` policy and
/// landed as a PDF); a type Windows really sends for a name still signs.
#[tokio::test]
async fn a_declared_type_that_contradicts_the_name_is_refused_before_signing() {
    let images = PolicyConfig {
        allowed_types: vec![
            "image/*".into(),
            "text/*".into(),
            "application/vnd.ms-excel".into(),
        ],
        ..PolicyConfig::default()
    };
    let h = Harness::with(images, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let simple_call =
        |name: &str, t: &str| simple(json!({"fileName": name, "contentType": t, "size": 10}));
    let (status, r, _) = h
        .call(
            "POST",
            "/api/upload",
            Some(ALICE),
            Some(&simple_call("report.pdf", "image/png")),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{r}");
    let why = r["error"].as_str().unwrap();
    assert!(
        why.contains("contradicts the name") && why.contains("application/pdf"),
        "{why}"
    );
    let companion =
        json!({"filename": "report.pdf", "type": "image/png", "metadata": {"size": 10}});
    let (status, r, _) = h
        .call(
            "POST",
            "/s3/multipart",
            Some(ALICE),
            Some(&companion.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{r}");
    for (name, t) in [
        ("figures.csv", "application/vnd.ms-excel"),
        ("photo.png", "image/png"),
    ] {
        let (status, r, _) = h
            .call(
                "POST",
                "/api/upload",
                Some(ALICE),
                Some(&simple_call(name, t)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name} as {t}: {r}");
    }
    assert!(h.store_keys().is_empty(), "nothing was written");
}

/// Regression (type confusion and active content, security review): with `image/*` allowed,
/// `image/svg+xml`, `image/png,text/html` and `image/x; a=b, text/html` were signed; with no
/// types configured, an `.exe` and `text/html` were.
#[tokio::test]
async fn active_content_and_malformed_types_are_refused() {
    let images = PolicyConfig {
        allowed_types: vec!["image/*".into()],
        ..PolicyConfig::default()
    };
    let h = Harness::with(images, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let cases = [
        (
            json!({"fileName": "a.svg", "contentType": "image/svg+xml"}),
            415,
        ),
        (
            json!({"fileName": "a.png", "contentType": "image/png,text/html"}),
            400,
        ),
        (
            json!({"fileName": "a.png", "contentType": "image/x; a=b, text/html"}),
            400,
        ),
        (
            json!({"fileName": "a.html", "contentType": "image/png"}),
            415,
        ),
        (
            json!({"fileName": "a.png", "contentType": "image/png"}),
            200,
        ),
    ];
    for (body, want) in cases {
        let (status, r, _) = h
            .call(
                "POST",
                "/api/upload",
                Some(ALICE),
                Some(&simple(body.clone())),
            )
            .await;
        assert_eq!(status.as_u16(), want, "{body}: {r}");
    }
    let open = Harness::new().await;
    for (name, t) in [
        ("setup.exe", "application/x-msdownload"),
        ("page.html", "text/html"),
        ("run.sh", "application/x-sh"),
    ] {
        let body = simple(json!({"fileName": name, "contentType": t}));
        let (status, r, _) = open
            .call("POST", "/api/upload", Some(ALICE), Some(&body))
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {r}");
        let why = r["error"].as_str().unwrap();
        assert!(
            why.contains("policy.allowed_types"),
            "says how to allow it: {why}"
        );
    }
    // Regression (#29, #33): a name alone makes an executable, whatever type is declared (or
    // none, or one a browser sniffs), a trailing dot included (Windows drops it).
    let images = PolicyConfig {
        allowed_types: vec!["image/*".into()],
        ..PolicyConfig::default()
    };
    let picky = Harness::with(images, vec![token("alice", ALICE, "uploads/alice/")]).await;
    for (h, name, t) in [
        (&open, "setup.exe", Some("application/octet-stream")),
        (&open, "setup.exe", None),
        (&open, "Setup.EXE.", Some("application/octet-stream")),
        (&open, "x.html.", None),
        // As a desktop shows them: fullwidth letters, and an invisible character in the name.
        (
            &open,
            "setup.\u{ff45}\u{ff58}\u{ff45}",
            Some("application/octet-stream"),
        ),
        (&open, "setup.ex\u{200b}e", Some("application/octet-stream")),
        // Cyrillic letters that read as Latin ones (NFKC keeps them apart): `.ехе`, `.һtml`.
        (
            &open,
            "invoice.\u{0435}\u{0445}\u{0435}",
            Some("application/octet-stream"),
        ),
        (&open, "page.\u{04bb}tml", None),
        (&open, "tool.msi", Some("application/octet-stream")),
        (&open, "page.html", Some("application/unknown")),
        (&open, "page.html", Some("*/*")),
        (&picky, "x.scr", Some("image/png")),
        (&picky, "x.ps1", Some("image/png")),
        (&picky, "x.lnk", Some("image/png")),
        (&picky, "x.dmg", Some("image/png")),
        (&picky, "x.apk", Some("image/png")),
        (&picky, "x.mht", Some("image/png")),
    ] {
        let mut ask = json!({"fileName": name});
        if let Some(t) = t {
            ask["contentType"] = json!(t);
        }
        let (status, r, _) = h
            .call("POST", "/api/upload", Some(ALICE), Some(&simple(ask)))
            .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{name} as {t:?}: {r}"
        );
        assert!(
            r["message"].as_str().unwrap().contains("allowed_types"),
            "{r}"
        );
    }
    // A sniffable type says nothing: the name's type is used (and a text file passes).
    let body = simple(json!({"fileName": "notes.txt", "contentType": "unknown/unknown"}));
    let (status, r, _) = open
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["headers"]["content-type"], "text/plain", "{r}");
    // An extension listed exactly is allowed.
    let installers = PolicyConfig {
        allowed_types: vec![".exe".into()],
        ..PolicyConfig::default()
    };
    let h = Harness::with(installers, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let body = simple(json!({"fileName": "setup.exe", "contentType": "application/octet-stream"}));
    let (status, r, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");

    // Listed exactly, it is allowed; and a policy may let browsers show uploads inline.
    let html = PolicyConfig {
        allowed_types: vec!["text/html".into()],
        allow_inline: true,
        ..PolicyConfig::default()
    };
    let h = Harness::with(html, vec![token("alice", ALICE, "uploads/alice/")]).await;
    let body = simple(json!({"fileName": "page.html", "contentType": "text/html"}));
    let (status, r, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["headers"].get("content-disposition").is_none(), "{r}");
}

/// A browser's request from `origin` (a preflight when `method` is OPTIONS, asking for GET
/// with an Authorization header, as Uppy's first call does).
async fn from_browser(
    h: &Harness,
    method: &str,
    uri: &str,
    origin: &str,
) -> (StatusCode, axum::http::HeaderMap) {
    use tower::ServiceExt as _;
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("origin", origin);
    if method == "OPTIONS" {
        req = req
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization");
    } else {
        req = req.header("authorization", format!("Bearer {ALICE}"));
    }
    let req = req.body(axum::body::Body::empty()).unwrap();
    let resp = h.router.clone().oneshot(req).await.unwrap();
    (resp.status(), resp.headers().clone())
}

/// Regression (#33): the browser's preflight got 405 with no CORS headers, so the company's
/// web app (Uppy on its own origin) could not call hoist-server at all.
#[tokio::test]
async fn browsers_of_the_listed_origins_may_call_the_api_and_no_others() {
    let app = "https://app.example.com";
    let h = Harness::with_cors(&[app]).await;
    let (status, headers) = from_browser(&h, "OPTIONS", "/s3/params?filename=a.png", app).await;
    assert!(status.is_success(), "{status} {headers:?}");
    assert_eq!(headers["access-control-allow-origin"], app);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed.to_ascii_lowercase().contains("authorization"),
        "{allowed}"
    );

    let (status, headers) = from_browser(
        &h,
        "GET",
        "/s3/params?filename=a.png&type=image%2Fpng&size=3",
        app,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], app);
    let exposed = headers["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.to_ascii_lowercase().contains("etag"), "{exposed}");

    // Another origin's page gets no grant (its browser then refuses the answer).
    let (_, headers) = from_browser(&h, "OPTIONS", "/s3/params", "https://evil.example").await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );
    // With none listed, none is granted.
    let (_, headers) = from_browser(&Harness::new().await, "OPTIONS", "/s3/params", app).await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );
}

#[test]
fn cors_origins_must_be_exact_origins() {
    let with = |o: &str| hoist_server::cors::CorsConfig {
        allowed_origins: vec![o.into()],
    };
    for bad in [
        "*",
        "https://app.example.com/",
        "https://app.example.com/upload",
        "app.example.com",
        "ftp://x.example",
    ] {
        let e = with(bad).validate().unwrap_err();
        assert!(e.contains("scheme, host and port"), "{bad}: {e}");
    }
    for good in ["https://app.example.com", "http://127.0.0.1:5173"] {
        assert!(with(good).validate().is_ok(), "{good}");
    }
}

/// Regression (#29, finding 7): `bytes_per_minute` counts declared sizes, so leaving the size
/// out passed any amount (130 MiB under a 1 MiB a minute limit).
#[tokio::test]
async fn a_byte_rate_needs_a_declared_size() {
    let limited = PolicyConfig {
        bytes_per_minute: Some(1 << 20),
        ..PolicyConfig::default()
    };
    let h = Harness::with(limited, vec![token("alice", ALICE, "uploads/alice/")]).await;
    for (method, uri, body) in [
        (
            "POST",
            "/api/upload",
            Some(simple(json!({"fileName": "a.bin"}))),
        ),
        (
            "GET",
            "/s3/params?filename=a.bin&type=application%2Foctet-stream",
            None,
        ),
        (
            "POST",
            "/s3/multipart",
            Some(simple(
                json!({"filename": "big.bin", "type": "application/octet-stream", "metadata": {}}),
            )),
        ),
    ] {
        let (status, r, _) = h.call(method, uri, Some(ALICE), body.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {r}");
        assert!(
            r["message"].as_str().unwrap().contains("size is required"),
            "{r}"
        );
    }
    let body = simple(json!({"fileName": "a.bin", "size": 1000}));
    let (status, r, _) = h
        .call("POST", "/api/upload", Some(ALICE), Some(&body))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
}

/// Regression (#29, finding 5): `/readyz` needs no token, and each call made a signed call to
/// the store (500 calls: 501 store calls and 500 warnings). Its answer is now reused for a few
/// seconds (and concurrent calls wait for one probe).
#[tokio::test]
async fn readyz_asks_the_store_at_most_once_per_few_seconds() {
    use std::sync::atomic::Ordering;
    // A store that answers every request 404 (as S3 answers ListParts of no upload), counting.
    let (addr, asked) = crate::counting_server("404 Not Found").await;
    let port = addr.port();
    let signer = hoist::sign::sigv4::SigV4Signer::new(
        "b",
        "us-east-1",
        "AKID",
        hoist::secret::Secret::new("s"),
    )
    .with_endpoint(
        url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        true,
    );
    let router = hoist_server::app(crate::bare_config(signer));
    let h = Harness::new().await;
    for _ in 0..100 {
        let (status, body, _) = h.call_on(router.clone(), "GET", "/readyz").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let asked = asked.load(Ordering::SeqCst);
    // One probe; a few more only if this machine stalled for seconds mid-test.
    assert!(
        (1..5).contains(&asked),
        "the store was asked {asked} times for 100 calls"
    );
}

/// Uppy 6's `signRequest` (#33): the page asks hoist-server to sign each S3 request. Only what
/// the policy would sign through Companion's routes is signed: the server's key, a form bounded
/// by the limit, multipart calls under the caller's prefix, and never an object's deletion.
#[tokio::test]
async fn uppy6_sign_requests_sign_only_what_the_policy_allows() {
    let policy = PolicyConfig {
        max_size: Some(100),
        ..PolicyConfig::default()
    };
    let h = Harness::with(
        policy,
        vec![
            token("alice", ALICE, "uploads/alice/"),
            token("bob", BOB, "uploads/bob/"),
        ],
    )
    .await;
    let h = &h;
    let sign = |token: &'static str, body: serde_json::Value| async move {
        h.call("POST", "/s3/sign", Some(token), Some(&body.to_string()))
            .await
    };

    // A whole file: a form for the server's key, whatever path the page gave.
    let (status, r, _) = sign(
        ALICE,
        json!({"method": "PUT", "key": "../../etc/notes.txt", "contentType": "text/plain"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let key = r["key"].as_str().unwrap();
    assert!(
        key.starts_with("uploads/alice/") && key.ends_with("notes.txt"),
        "{r}"
    );
    assert_eq!(r["fields"]["key"], key);
    assert!(
        form_conditions(&r).contains(&json!(["content-length-range", 0, 100])),
        "{r}"
    );
    assert_eq!(post_form(&r, b"hello".to_vec()).await / 100, 2);
    assert_eq!(h.stored(key).as_deref(), Some(&b"hello"[..]));

    // Active content by name, whatever the type.
    let (status, r, _) = sign(ALICE, json!({"method": "PUT", "key": "setup.exe"})).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{r}");

    // A multipart upload: created under the server's key, its type signed and answered.
    let (status, created, _) = sign(ALICE, json!({"method": "POST", "key": "clip.mp4"})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("uploads/alice/"), "{created}");
    assert_eq!(created["headers"]["content-type"], "video/mp4", "{created}");
    assert!(
        created["url"].as_str().unwrap().contains("uploads="),
        "{created}"
    );

    // Bob may not sign calls for Alice's upload; nobody may sign an object's deletion.
    for body in [
        json!({"method": "PUT", "key": key, "uploadId": "u1", "partNumber": 1}),
        json!({"method": "GET", "key": key, "uploadId": "u1"}),
        json!({"method": "POST", "key": key, "uploadId": "u1"}),
        json!({"method": "DELETE", "key": key, "uploadId": "u1"}),
    ] {
        let (status, r, _) = sign(BOB, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {r}");
    }
    let (status, r, _) = sign(ALICE, json!({"method": "DELETE", "key": key})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("never signs"),
        "{r}"
    );
    let (status, r, _) = sign(
        ALICE,
        json!({"method": "PUT", "key": key, "uploadId": "u1", "partNumber": 10001}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{r}");
    let (status, r, _) = sign(
        ALICE,
        json!({"method": "PUT", "key": key, "uploadId": "u1", "partNumber": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["url"].as_str().unwrap().contains("partNumber=1"), "{r}");
}

/// #33: browsers send bytes to the bucket, not to hoist-server, so `[cors]` alone is not enough:
/// `/readyz` sends the bucket each configured origin's preflight and names the origins its CORS
/// rule refuses, and what to change (the server stays ready for the desktop).
#[tokio::test]
async fn readyz_names_the_origins_the_bucket_s_cors_rule_refuses() {
    let both = Harness::with_cors(&["https://app.example.com"]).await;
    let (status, r, _) = both.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        r["browsers"]["allowed"],
        json!(["https://app.example.com"]),
        "{r}"
    );
    assert_eq!(r["browsers"]["refused_by_the_bucket"], json!([]), "{r}");

    let api_only = Harness::with_cors_and_bucket_cors(
        &["https://app.example.com", "https://intranet.example.com"],
        &["https://intranet.example.com"],
    )
    .await;
    let (status, r, _) = api_only.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "the desktop still uploads: {r}");
    let refused = r["browsers"]["refused_by_the_bucket"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{r}");
    assert_eq!(refused[0]["origin"], "https://app.example.com", "{r}");
    assert!(
        refused[0]["why"]
            .as_str()
            .unwrap()
            .contains("AllowedOrigins"),
        "{r}"
    );
}
