//! Retry in the manner of the AWS SDKs' "standard" mode.
//!
//! * At most [`RetryPolicy::max_attempts`] attempts per request (3 by default).
//! * Full-jitter exponential backoff: `delay = r × min(base × 2^(n-1), max_backoff)`, `r` drawn
//!   uniformly from [0, 1), `n` the number of attempts made so far.
//! * A [`RetryBudget`] shared by every request of a session: a retry costs 5 tokens, a retry
//!   after a timeout 10, a success refunds what its retries cost (or 1 token when it needed
//!   none). When the budget is empty, failures are returned at once instead of piling up retries
//!   against a struggling server.
//!
//! * A server that answers "wait" (429, or 503, with `Retry-After`) sets a pace, not a failure:
//!   the [`Pacer`] holds every request of the session until then (as rclone's pacer does), and
//!   the wait neither counts as an attempt nor costs the budget — up to
//!   [`RetryPolicy::max_throttle_wait`] per request.
//!
//! Time and randomness are passed in ([`Clock`], [`Jitter`]) so tests assert exact delays and
//! never sleep.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Tokens a new budget holds.
pub const INITIAL_RETRY_TOKENS: u32 = 500;
/// Tokens one retry costs.
pub const RETRY_COST: u32 = 5;
/// Tokens one retry after a timeout costs.
pub const TIMEOUT_RETRY_COST: u32 = 10;
/// Tokens a request that succeeded first time gives back.
pub const NO_RETRY_INCREMENT: u32 = 1;

/// Wall-clock time and sleeping, injectable.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
    /// Resolves after `d`.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A source of jitter: a number uniformly drawn from [0, 1).
pub trait Jitter: Send + Sync {
    /// A number in [0, 1).
    fn unit(&self) -> f64;
}

/// Jitter from the thread-local RNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn unit(&self) -> f64 {
        rand::random::<f64>()
    }
}

/// What went wrong, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// 5xx, `RequestTimeout`, connection reset: worth another try.
    Transient,
    /// 503 SlowDown, 429: back off and try again.
    Throttling,
    /// No answer in time, or the transfer stalled.
    Timeout,
    /// The URL or token expired: sign again, never reuse.
    Expired,
    /// Signature mismatch, access denied, bad request: another try would fail the same way.
    Permanent,
}

impl FailureKind {
    /// Whether another attempt may succeed.
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Permanent)
    }
}

/// The retry token bucket shared by a session's requests.
#[derive(Debug)]
pub struct RetryBudget {
    tokens: Mutex<u32>,
    max: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new(INITIAL_RETRY_TOKENS)
    }
}

impl RetryBudget {
    /// A budget of `tokens`.
    pub fn new(tokens: u32) -> Self {
        Self {
            tokens: Mutex::new(tokens),
            max: tokens,
        }
    }

    /// Takes the cost of one retry; `None` when the budget cannot pay for it.
    pub fn acquire(&self, kind: FailureKind) -> Option<u32> {
        let cost = if kind == FailureKind::Timeout {
            TIMEOUT_RETRY_COST
        } else {
            RETRY_COST
        };
        let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if *t < cost {
            return None;
        }
        *t -= cost;
        Some(cost)
    }

    /// Refunds after a success: what its retries cost, or [`NO_RETRY_INCREMENT`].
    pub fn on_success(&self, spent: u32) {
        let refund = if spent == 0 {
            NO_RETRY_INCREMENT
        } else {
            spent
        };
        let mut t = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        *t = (*t + refund).min(self.max);
    }

    /// Tokens left.
    pub fn available(&self) -> u32 {
        *self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pause every request of a session keeps after a server asked to wait, so that requests in
/// parallel slow down together instead of each being refused in turn.
#[derive(Debug, Default)]
pub struct Pacer {
    resume_at: Mutex<Option<SystemTime>>,
}

impl Pacer {
    /// Holds every request until `until` (a later hold extends it, an earlier one does not
    /// shorten it).
    pub fn hold_until(&self, until: SystemTime) {
        let mut at = self.resume_at.lock().unwrap_or_else(|p| p.into_inner());
        if at.is_none_or(|a| a < until) {
            *at = Some(until);
        }
    }

    /// How long a request starting at `now` must still wait, if at all.
    pub fn wait_at(&self, now: SystemTime) -> Option<Duration> {
        let at = *self.resume_at.lock().unwrap_or_else(|p| p.into_inner());
        at.and_then(|a| a.duration_since(now).ok())
            .filter(|d| !d.is_zero())
    }
}

/// Retry settings and the collaborators that make them testable.
#[derive(Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt, at most (before jitter).
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The budget every request of a session draws on.
    pub budget: Arc<RetryBudget>,
    /// The pace every request of a session keeps.
    pub pacer: Arc<Pacer>,
    /// The longest one request waits, in all, for servers that ask it to (then it fails).
    pub max_throttle_wait: Duration,
    /// Time, for signing and sleeping.
    pub clock: Arc<dyn Clock>,
    /// The random factor of each backoff.
    pub jitter: Arc<dyn Jitter>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            budget: Arc::new(RetryBudget::default()),
            pacer: Arc::new(Pacer::default()),
            max_throttle_wait: Duration::from_secs(15 * 60),
            clock: Arc::new(SystemClock),
            jitter: Arc::new(RandomJitter),
        }
    }
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("base_delay", &self.base_delay)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// The delay before the next attempt, after `attempts_made` attempts (≥ 1).
    pub fn backoff(&self, attempts_made: u32) -> Duration {
        let exp = 2u32.saturating_pow(attempts_made.saturating_sub(1));
        let ceiling = self.base_delay.saturating_mul(exp).min(self.max_backoff);
        ceiling.mul_f64(self.jitter.unit().clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64);
    impl Jitter for Fixed {
        fn unit(&self) -> f64 {
            self.0
        }
    }

    #[test]
    fn backoff_is_full_jitter_exponential_and_capped() {
        let p = RetryPolicy {
            jitter: Arc::new(Fixed(0.5)),
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(1));
        assert_eq!(p.backoff(3), Duration::from_secs(2));
        assert_eq!(
            p.backoff(10),
            Duration::from_secs(10),
            "capped at 20 s before jitter"
        );
        let zero = RetryPolicy {
            jitter: Arc::new(Fixed(0.0)),
            ..RetryPolicy::default()
        };
        assert_eq!(zero.backoff(5), Duration::ZERO);
    }

    #[test]
    fn the_pacer_holds_until_the_latest_time_asked() {
        let p = Pacer::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(p.wait_at(t0), None);
        p.hold_until(t0 + Duration::from_secs(5));
        p.hold_until(t0 + Duration::from_secs(2));
        assert_eq!(p.wait_at(t0), Some(Duration::from_secs(5)));
        assert_eq!(
            p.wait_at(t0 + Duration::from_secs(4)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(p.wait_at(t0 + Duration::from_secs(5)), None);
        assert_eq!(p.wait_at(t0 + Duration::from_secs(9)), None);
    }

    #[test]
    fn budget_charges_retries_and_refunds_successes() {
        let b = RetryBudget::new(20);
        assert_eq!(b.acquire(FailureKind::Transient), Some(5));
        assert_eq!(b.acquire(FailureKind::Timeout), Some(10));
        assert_eq!(b.available(), 5);
        assert_eq!(
            b.acquire(FailureKind::Timeout),
            None,
            "a timeout retry needs 10"
        );
        assert_eq!(b.acquire(FailureKind::Throttling), Some(5));
        assert_eq!(b.acquire(FailureKind::Transient), None);
        b.on_success(15);
        assert_eq!(b.available(), 15);
        b.on_success(0);
        assert_eq!(b.available(), 16);
        b.on_success(100);
        assert_eq!(b.available(), 20, "never above the initial amount");
    }
}
