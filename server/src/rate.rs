//! Rate limits per token, as token buckets (a bucket holds its burst and refills at its rate):
//! every request, new files (sized for folder drops: a burst, then a steady rate) and,
//! optionally, declared bytes. Past one, 429 with `Retry-After` (clients such as Hoist wait and
//! go on).
//!
//! The buckets live in this process, or — with `[rate_limit] redis_url` — in Redis, shared by
//! every replica: one Lua script takes all of a request's draws or none, on Redis's clock, so
//! the limits hold however requests are spread. If Redis stops answering — or does not answer
//! when a replica starts — each replica falls back to its own buckets rather than refusing
//! every upload: one warning, every such check counted in
//! `hoist_server_rate_limit_fallbacks_total`, `/readyz` saying so, and no request waiting on
//! Redis while it is down — one background task reconnects, with backoff, and the shared
//! buckets are used again once it answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::error::ApiError;
use crate::token::Token;

/// What a token's limits meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Meter {
    /// Every request.
    Requests,
    /// New uploads: a single PUT signed, a multipart upload created.
    Files,
    /// Bytes those uploads declared.
    Bytes,
}

impl Meter {
    fn name(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Files => "files",
            Self::Bytes => "bytes",
        }
    }
}

/// One bucket to draw from: its size, its refill per second, and what this request takes.
struct Draw {
    meter: Meter,
    capacity: f64,
    per_sec: f64,
    cost: f64,
}

/// Why shared limits could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot use Redis for shared rate limits at {url}: {message}")]
pub struct SharedLimitsError {
    /// The URL, without a password.
    pub url: String,
    /// What Redis (or the connection) said.
    pub message: String,
}

/// The rate limiter: local buckets, and the shared ones when configured.
pub struct RateLimiter {
    local: LocalBuckets,
    shared: Option<Arc<SharedLimits>>,
    fallbacks: AtomicU64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::local()
    }
}

/// The longest wait between two attempts to reach Redis again.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Redis, as the limiter holds it: the connection once made, and whether it answers.
struct SharedLimits {
    url: String,
    buckets: Mutex<Option<RedisBuckets>>,
    /// Redis answered last: checks go to it. While false, checks are local and one task
    /// (`reconnecting`) tries again.
    up: AtomicBool,
    reconnecting: AtomicBool,
}

impl SharedLimits {
    fn buckets(&self) -> Option<RedisBuckets> {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Redis failed: checks are local from now on, until the reconnecting task (started here
    /// unless one runs) finds it again.
    fn went_down(self: &Arc<Self>, why: &str) {
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(
                error = why,
                "Redis did not answer: this instance limits on its own until it is back"
            );
        }
        if !self.reconnecting.swap(true, Ordering::AcqRel) {
            tokio::spawn(Arc::clone(self).reconnect());
        }
    }

    async fn reconnect(self: Arc<Self>) {
        let mut wait = Duration::from_secs(1);
        loop {
            tokio::time::sleep(wait).await;
            match RedisBuckets::connect(&self.url).await {
                Ok(buckets) => {
                    *self.buckets.lock().unwrap_or_else(|p| p.into_inner()) = Some(buckets);
                    self.up.store(true, Ordering::Release);
                    self.reconnecting.store(false, Ordering::Release);
                    tracing::info!("Redis answers again: the limits are shared again");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "Redis still does not answer");
                    wait = (wait * 2).min(RECONNECT_BACKOFF_MAX);
                }
            }
        }
    }
}

impl RateLimiter {
    /// Limits kept in this process (per instance).
    pub fn local() -> Self {
        Self {
            local: LocalBuckets::default(),
            shared: None,
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Limits kept in Redis at `url` (`redis://host:port/db`), shared by every instance that
    /// names the same Redis. A URL that is not one is an error; a Redis that does not answer
    /// is not: the instance starts with its own limits and shares them once Redis answers.
    pub async fn shared(url: &str) -> Result<Self, SharedLimitsError> {
        redis::Client::open(url).map_err(|e| SharedLimitsError {
            url: hoist::redact::url_password(url),
            message: e.to_string(),
        })?;
        let shared = Arc::new(SharedLimits {
            url: url.to_string(),
            buckets: Mutex::new(None),
            up: AtomicBool::new(false),
            reconnecting: AtomicBool::new(false),
        });
        match RedisBuckets::connect(url).await {
            Ok(buckets) => {
                *shared.buckets.lock().unwrap_or_else(|p| p.into_inner()) = Some(buckets);
                shared.up.store(true, Ordering::Release);
            }
            Err(e) => {
                tracing::warn!(error = %e, "starting with this instance's own limits; Redis is tried again in the background");
                shared.reconnecting.store(true, Ordering::Release);
                tokio::spawn(Arc::clone(&shared).reconnect());
            }
        }
        Ok(Self {
            local: LocalBuckets::default(),
            shared: Some(shared),
            fallbacks: AtomicU64::new(0),
        })
    }

    /// How many checks fell back to this instance's own buckets because Redis did not answer.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Takes one request from the token's bucket, or answers 429 with `Retry-After`.
    pub async fn check(&self, token: &Token, now: Instant) -> Result<(), ApiError> {
        let capacity = token.rate_per_minute as f64;
        let draw = Draw {
            meter: Meter::Requests,
            capacity,
            per_sec: capacity / 60.0,
            cost: 1.0,
        };
        self.take(&token.id, &[draw], now).await.map_err(|wait| {
            too_many(
                format!(
                    "rate limit of {} requests per minute reached",
                    token.rate_per_minute
                ),
                wait,
            )
        })
    }

    /// Takes a new upload of `size` bytes (when declared) from the token's file and byte
    /// buckets — both or neither — or answers 429 with `Retry-After`.
    pub async fn check_file(
        &self,
        token: &Token,
        size: Option<u64>,
        now: Instant,
    ) -> Result<(), ApiError> {
        let mut draws = vec![Draw {
            meter: Meter::Files,
            capacity: token.files_burst as f64,
            per_sec: token.files_per_minute as f64 / 60.0,
            cost: 1.0,
        }];
        if let Some(bytes) = token.bytes_per_minute {
            draws.push(Draw {
                meter: Meter::Bytes,
                capacity: bytes as f64,
                per_sec: bytes as f64 / 60.0,
                cost: size.unwrap_or(0) as f64,
            });
        }
        self.take(&token.id, &draws, now).await.map_err(|wait| {
            let bytes = token
                .bytes_per_minute
                .map(|b| format!(" or {b} bytes"))
                .unwrap_or_default();
            too_many(
                format!(
                    "upload limit of {} files{bytes} per minute reached (a burst of {} files)",
                    token.files_per_minute, token.files_burst
                ),
                wait,
            )
        })
    }

    /// Whether shared limits answer: `None` without Redis, else Redis's answer to PING (`Err`:
    /// why not; the replicas then limit on their own). While Redis is known to be down, it is
    /// not asked (the reconnecting task is).
    pub async fn ping_shared(&self) -> Option<Result<(), String>> {
        let shared = self.shared.as_ref()?;
        let down = || {
            format!(
                "Redis at {} does not answer: each replica limits on its own until it is back \
                 (it is tried again in the background)",
                hoist::redact::url_password(&shared.url)
            )
        };
        let buckets = match shared.buckets() {
            Some(b) if shared.up.load(Ordering::Acquire) => b,
            _ => return Some(Err(down())),
        };
        let mut connection = buckets.connection.clone();
        Some(
            match redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    shared.went_down(&e.to_string());
                    Err(down())
                }
            },
        )
    }

    /// Takes every draw, or none and the seconds until all could be taken.
    async fn take(&self, id: &str, draws: &[Draw], now: Instant) -> Result<(), u64> {
        if let Some(shared) = &self.shared {
            let buckets = shared
                .buckets()
                .filter(|_| shared.up.load(Ordering::Acquire));
            if let Some(buckets) = buckets {
                match buckets.take(id, draws).await {
                    Ok(taken) => return taken,
                    Err(e) => shared.went_down(&e.to_string()),
                }
            }
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        self.local.take(id, draws, now)
    }
}

/// Buckets in this process.
#[derive(Debug, Default)]
struct LocalBuckets {
    buckets: Mutex<HashMap<(String, Meter), (f64, Instant)>>,
}

impl LocalBuckets {
    /// A cost above a bucket's size needs the bucket full (one huge file still passes, alone).
    fn take(&self, id: &str, draws: &[Draw], now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait: f64 = 0.0;
        for d in draws {
            let (level, last) = buckets
                .entry((id.to_string(), d.meter))
                .or_insert((d.capacity, now));
            *level = (*level + now.saturating_duration_since(*last).as_secs_f64() * d.per_sec)
                .min(d.capacity);
            *last = now;
            let cost = d.cost.min(d.capacity);
            if *level < cost {
                wait = wait.max((cost - *level) / d.per_sec);
            }
        }
        if wait > 0.0 {
            return Err(seconds(wait));
        }
        for d in draws {
            if let Some((level, _)) = buckets.get_mut(&(id.to_string(), d.meter)) {
                *level -= d.cost.min(d.capacity);
            }
        }
        Ok(())
    }
}

fn seconds(wait: f64) -> u64 {
    wait.ceil().max(1.0) as u64
}

/// The same buckets in Redis: one hash per token and meter (`level`, `at`), expiring once
/// it would be full again. KEYS are the buckets; ARGV holds capacity, refill per second and
/// cost for each. Answers the seconds to wait (0: taken), as a string (Lua numbers lose
/// their fraction on the way out).
const TAKE_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local cap, rate, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local state = redis.call('HMGET', key, 'level', 'at')
  local level = tonumber(state[1]) or cap
  local at = tonumber(state[2]) or now
  level = math.min(cap, level + math.max(0, now - at) * rate)
  levels[i] = level
  local c = math.min(cost, cap)
  if level < c then wait = math.max(wait, (c - level) / rate) end
end
for i, key in ipairs(KEYS) do
  local cap, rate, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local level = levels[i]
  if wait == 0 then level = level - math.min(cost, cap) end
  redis.call('HSET', key, 'level', tostring(level), 'at', tostring(now))
  redis.call('EXPIRE', key, math.ceil(cap / rate) + 60)
end
return tostring(wait)
"#;

#[derive(Clone)]
struct RedisBuckets {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
}

impl RedisBuckets {
    async fn connect(url: &str) -> Result<Self, SharedLimitsError> {
        let fail = |e: redis::RedisError| SharedLimitsError {
            url: hoist::redact::url_password(url),
            message: e.to_string(),
        };
        let client = redis::Client::open(url).map_err(fail)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(1)))
            .set_number_of_retries(1);
        let mut connection = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(fail)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(fail)?;
        Ok(Self {
            connection,
            script: redis::Script::new(TAKE_SCRIPT),
        })
    }

    async fn take(&self, id: &str, draws: &[Draw]) -> Result<Result<(), u64>, redis::RedisError> {
        let mut invocation = self.script.prepare_invoke();
        for d in draws {
            invocation
                .key(format!("hoist-server:rate:{id}:{}", d.meter.name()))
                .arg(d.capacity)
                .arg(d.per_sec)
                .arg(d.cost);
        }
        let mut connection = self.connection.clone();
        let wait: String = invocation.invoke_async(&mut connection).await?;
        let wait: f64 = wait.parse().unwrap_or(0.0);
        Ok(if wait > 0.0 {
            Err(seconds(wait))
        } else {
            Ok(())
        })
    }
}

fn too_many(what: String, wait: u64) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("{what}; retry in {wait} s"),
    );
    e.retry_after = Some(wait);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token {
            id: "t".into(),
            email: None,
            sha256: [0; 32],
            prefix: "uploads/t/".into(),
            max_size: None,
            allowed_types: vec![],
            rate_per_minute: 2,
            files_per_minute: 60,
            files_burst: 3,
            bytes_per_minute: Some(600),
        }
    }

    #[tokio::test]
    async fn rate_limit_refills_over_time() {
        let rl = RateLimiter::default();
        let t = token();
        let start = Instant::now();
        assert!(rl.check(&t, start).await.is_ok());
        assert!(rl.check(&t, start).await.is_ok());
        let e = rl.check(&t, start).await.unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(30));
        assert!(rl
            .check(&t, start + std::time::Duration::from_secs(30))
            .await
            .is_ok());
    }

    /// Files come in a burst, then at their rate; declared bytes likewise; a refused file takes
    /// nothing from either bucket; one file larger than the byte bucket passes when it is full.
    #[tokio::test]
    async fn files_and_bytes_are_limited_with_a_burst() {
        let rl = RateLimiter::default();
        let t = token();
        let start = Instant::now();
        let secs = |s: u64| start + std::time::Duration::from_secs(s);
        for _ in 0..3 {
            assert!(rl.check_file(&t, Some(10), start).await.is_ok());
        }
        let e = rl.check_file(&t, Some(10), start).await.unwrap_err();
        assert_eq!(
            (e.status, e.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, Some(1))
        );
        assert!(
            e.message.contains("60 files or 600 bytes per minute"),
            "{}",
            e.message
        );
        assert!(
            rl.check_file(&t, Some(10), secs(1)).await.is_ok(),
            "one file a second"
        );
        // 580 bytes are left at 2 s (10 a second come back): 590 must wait 1 s, and took no
        // file — the next one gets it.
        let e = rl.check_file(&t, Some(590), secs(2)).await.unwrap_err();
        assert_eq!(e.retry_after, Some(1));
        assert!(rl.check_file(&t, Some(10), secs(2)).await.is_ok());
        // A file larger than a minute's bytes passes once the bucket is full, alone.
        assert!(rl.check_file(&t, Some(10_000), secs(2)).await.is_err());
        assert!(rl.check_file(&t, Some(10_000), secs(200)).await.is_ok());
        assert!(rl.check_file(&t, Some(1), secs(200)).await.is_err());
    }

    /// A Redis that does not answer is reported without the password of its URL.
    #[tokio::test]
    async fn a_redis_password_never_reaches_a_message() {
        // Unreachable: the server starts on its own limits and `/readyz` says so.
        let limiter = RateLimiter::shared("redis://:hunter2@127.0.0.1:1/0")
            .await
            .expect("a Redis that does not answer does not stop the server");
        let why = limiter.ping_shared().await.unwrap().unwrap_err();
        assert!(!why.contains("hunter2"), "{why}");
        assert!(why.contains("redis://:[redacted]@127.0.0.1:1/0"), "{why}");
        // Not a Redis URL: an error at start, still without the password.
        let e = RateLimiter::shared("http://:hunter2@127.0.0.1:1/0")
            .await
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
