//! hoist-server as several replicas: three instances on 127.0.0.1 behind a front that sends
//! each request to the next one in turn, one store, one upload-id secret. Sealed upload ids
//! carry everything a later step needs, so one multipart upload can be created on one replica,
//! signed on others and completed on another. Rate limits hold across replicas when they share
//! a real Redis (Debian's redis-server, started here), and are per instance otherwise.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hoist_server::audit::AuditLog;
use hoist_server::config::{FileConfig, PolicyConfig};
use hoist_server::rate::RateLimiter;
use hoist_server::s3::Bucket;
use hoist_server::{app, AppConfig};

use crate::{sha256, token, Harness, ALICE};

/// A redis-server on 127.0.0.1, stopped when dropped.
struct Redis {
    url: String,
    process: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        let mut process = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/deps test installs Debian's)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                process.try_wait().unwrap().is_none(),
                "redis-server exited at start"
            );
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            url: format!("redis://127.0.0.1:{port}/0"),
            process,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Three replicas of one configuration, and the front that spreads requests over them.
struct Replicas {
    /// The front's URL (what clients are given).
    front: String,
    /// Each replica's own URL (for its `/metrics`).
    replicas: Vec<String>,
}

#[derive(Clone)]
struct RoundRobin {
    replicas: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
}

/// Forwards one request, unchanged, to the next replica.
async fn forward(State(rr): State<RoundRobin>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let replica = &rr.replicas[rr.next.fetch_add(1, Ordering::SeqCst) % rr.replicas.len()];
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut req = rr
        .http
        .request(parts.method.clone(), format!("{replica}{target}"))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" {
            req = req.header(name, value);
        }
    }
    let Ok(answer) = req.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body: Bytes = answer.bytes().await.unwrap_or_default();
    let mut response = (status, body).into_response();
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

impl Replicas {
    /// Three replicas writing to `h`'s store, their limits made by `limiter`.
    async fn start(h: &Harness, policy: PolicyConfig, redis: Option<&Redis>) -> Self {
        Self::start_with(h, policy, redis.map(|r| r.url.as_str())).await
    }

    /// As [`Self::start`], with limits in the Redis at `redis_url` whether or not it answers.
    async fn start_with(h: &Harness, policy: PolicyConfig, redis_url: Option<&str>) -> Self {
        let file = FileConfig {
            policy,
            tokens: vec![token("alice", ALICE, "uploads/alice/")],
            ..FileConfig::default()
        };
        file.validate_policy().unwrap();
        let mut replicas = Vec::new();
        for _ in 0..3 {
            let rate_limiter = match redis_url {
                Some(url) => RateLimiter::shared(url).await.expect("a Redis URL"),
                None => RateLimiter::local(),
            };
            let router = app(AppConfig {
                bucket: Bucket::new(h.store.signer()),
                tokens: file.tokens(None).unwrap(),
                policy: file.policy.clone(),
                audit: AuditLog::memory().0,
                upload_id_secret: b"one secret for every replica".to_vec(),
                rate_limiter,
                oidc: None,
                verifier: None,
                cors: Default::default(),
                readiness: Default::default(),
            });
            replicas.push(crate::listen(router).await);
        }
        let rr = RoundRobin {
            replicas: Arc::new(replicas.clone()),
            next: Arc::new(AtomicUsize::new(0)),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let front = crate::listen(axum::Router::new().fallback(forward).with_state(rr)).await;
        Self { front, replicas }
    }

    /// Each replica's `/metrics`.
    async fn metrics(&self) -> Vec<String> {
        let mut texts = Vec::new();
        for r in &self.replicas {
            let answer = reqwest::get(format!("{r}/metrics")).await.unwrap();
            texts.push(answer.text().await.unwrap());
        }
        texts
    }

    /// The value of `series` (a metric with its labels) on each replica, 0 where it is absent.
    async fn counts(&self, series: &str) -> Vec<u64> {
        let prefix = format!("{series} ");
        self.metrics()
            .await
            .iter()
            .map(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map_or(0, |n| n.trim().parse::<f64>().unwrap() as u64)
            })
            .collect()
    }

    /// How many requests of `action` answered 200 each replica served.
    async fn served(&self, action: &str) -> Vec<u64> {
        self.counts(&format!(
            "hoist_server_requests_total{{action=\"{action}\",status=\"200\"}}"
        ))
        .await
    }

    async fn fallbacks(&self) -> u64 {
        self.counts("hoist_server_rate_limit_fallbacks_total")
            .await
            .iter()
            .sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_multipart_upload_is_created_signed_and_completed_across_three_replicas() {
    let h = Harness::new().await;
    let replicas = Replicas::start(&h, PolicyConfig::default(), None).await;
    let session = crate::companion_session(&replicas.front);
    let mib = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..17 * mib + 3).map(|i| (i % 251) as u8).collect();
    let path = dir.path().join("footage.bin");
    std::fs::write(&path, &content).unwrap();
    let progress: hoist::upload::ProgressFn = Arc::new(|_| {});
    let receipt = session
        .upload(&path, &progress)
        .await
        .expect("the upload lands however its steps are spread");
    assert_eq!(
        sha256(&h.stored(&receipt.key).expect("stored")),
        sha256(&content)
    );
    assert_eq!(h.pending_parts(), 0, "no parts left behind");

    let create = replicas.served("multipart.create").await;
    let parts = replicas.served("multipart.sign-part").await;
    let complete = replicas.served("multipart.complete").await;
    let on = |counts: &[u64]| counts.iter().position(|n| *n > 0).unwrap();
    assert_eq!(create.iter().sum::<u64>(), 1, "{create:?}");
    assert_eq!(complete.iter().sum::<u64>(), 1, "{complete:?}");
    assert_eq!(parts.iter().sum::<u64>(), 4, "{parts:?}");
    assert_ne!(
        on(&create),
        on(&complete),
        "created and completed on different replicas"
    );
    assert!(
        (0..3).all(|r| create[r] + parts[r] + complete[r] > 0),
        "every replica took part: create {create:?}, parts {parts:?}, complete {complete:?}"
    );
}

/// A policy of 4 new files at once and (practically) no refill during the test.
fn four_files() -> PolicyConfig {
    PolicyConfig {
        files_burst: 4,
        files_per_minute: 1,
        ..PolicyConfig::default()
    }
}

/// Asks for `n` single-PUT signatures through the front; the statuses in order.
async fn sign_files(front: &str, n: usize) -> Vec<u16> {
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..n {
        let answer = http
            .post(format!("{front}/api/upload"))
            .bearer_auth(ALICE)
            .json(&serde_json::json!({"fileName": format!("f{i}.txt"), "contentType": "text/plain", "size": 5}))
            .send()
            .await
            .unwrap();
        if answer.status() == 429 {
            assert!(answer.headers().contains_key("retry-after"));
        }
        statuses.push(answer.status().as_u16());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_across_replicas_that_share_redis_and_survive_its_loss() {
    let h = Harness::new().await;
    let redis = Redis::start();
    let shared = Replicas::start(&h, four_files(), Some(&redis)).await;
    let statuses = sign_files(&shared.front, 7).await;
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429, 429, 429],
        "a burst of 4 files, whichever replica is asked"
    );

    // Without Redis each replica keeps its own buckets: three times the burst.
    let apart = Replicas::start(&h, four_files(), None).await;
    let statuses = sign_files(&apart.front, 13).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 12);

    // Redis gone: each replica limits on its own instead of refusing, and says so.
    drop(redis);
    let statuses = sign_files(&shared.front, 3).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(shared.fallbacks().await >= 3);
}

/// Regression (#30): a replica started while Redis was unreachable refused to start, and during
/// an outage every request waited on a connection attempt. It now starts with its own limits,
/// says so in `/readyz` (still ready: Redis is not required by default), and shares the limits
/// once Redis answers, found again in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starts_without_redis_and_shares_its_limits_once_redis_answers() {
    let h = Harness::new().await;
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let replicas = Replicas::start_with(&h, four_files(), Some(&url)).await;
    let statuses = sign_files(&replicas.front, 13).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        12,
        "each of the 3 replicas limits on its own: {statuses:?}"
    );
    let http = reqwest::Client::new();
    let readiness = |replica: String| {
        let http = http.clone();
        async move {
            let r = http.get(format!("{replica}/readyz")).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, r) = readiness(replicas.replicas[0].clone()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["checks"]["redis"]["ok"], false, "{r}");
    assert!(
        r["checks"]["redis"]["why"]
            .as_str()
            .unwrap()
            .contains("limits on its own"),
        "{r}"
    );

    let _redis = Redis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(90);
    for replica in &replicas.replicas {
        loop {
            let (_, r) = readiness(replica.clone()).await;
            if r["checks"]["redis"]["ok"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "Redis was not found again: {r}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let statuses = sign_files(&replicas.front, 7).await;
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429, 429, 429],
        "one burst of 4 files, shared again"
    );
}
