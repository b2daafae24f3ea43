//! Bandwidth limits: bytes per second over every part and file in flight, one limit per
//! profile and one over all, each changeable while uploads run.
//!
//! Each limit is a token bucket ([`async_speed_limit::Limiter`], TiKV's) holding 0.1 s of its
//! rate; a body under a limit is sent in pieces of about 1/8 s of that rate, each waiting for
//! the bucket, so bytes flow steadily (a store closes a connection that is idle for ~20 s)
//! and a change of the limit takes effect within a piece.

use std::time::Duration;

use async_speed_limit::clock::Clock;
use async_speed_limit::Limiter;
use bytes::Bytes;

/// Tokio's clock, so the limiter's waits are tokio timers (and tests can pause time).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = tokio::time::Instant;
    type Delay = std::pin::Pin<Box<tokio::time::Sleep>>;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now()
    }

    fn sleep(&self, dur: Duration) -> Self::Delay {
        Box::pin(tokio::time::sleep(dur))
    }
}

/// One bandwidth limit, shared by its clones. `None` is no limit.
#[derive(Clone)]
pub struct RateLimit(Limiter<TokioClock>);

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RateLimit").field(&self.get()).finish()
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(None)
    }
}

fn speed(bytes_per_second: Option<u64>) -> f64 {
    match bytes_per_second {
        Some(b) if b > 0 => b as f64,
        _ => f64::INFINITY,
    }
}

impl RateLimit {
    /// A limit of `bytes_per_second` (none: unlimited).
    pub fn new(bytes_per_second: Option<u64>) -> Self {
        Self(
            Limiter::builder(speed(bytes_per_second))
                .refill(Duration::from_millis(100))
                .build(),
        )
    }

    /// Changes the limit for everything sharing it, from the next piece on.
    pub fn set(&self, bytes_per_second: Option<u64>) {
        self.0.set_speed_limit(speed(bytes_per_second));
    }

    /// The limit now.
    pub fn get(&self) -> Option<u64> {
        let s = self.0.speed_limit();
        s.is_finite().then_some(s as u64)
    }
}

/// The limits one upload obeys (the profile's and the overall one).
#[derive(Clone, Debug, Default)]
pub(crate) struct Throttle {
    limits: Vec<RateLimit>,
}

/// The largest piece a limited body is cut into, and the smallest.
const MAX_PIECE: usize = super::digest::CHUNK_SIZE;
const MIN_PIECE: usize = 1024;

impl Throttle {
    /// Adds a limit to obey.
    pub(crate) fn with(mut self, limit: RateLimit) -> Self {
        self.limits.push(limit);
        self
    }

    /// The tightest limit now, if any.
    fn tightest(&self) -> Option<u64> {
        self.limits.iter().filter_map(RateLimit::get).min()
    }

    /// How large a piece to send under the limits now.
    pub(crate) fn piece_size(&self) -> usize {
        match self.tightest() {
            Some(rate) => ((rate / 8) as usize).clamp(MIN_PIECE, MAX_PIECE),
            None => MAX_PIECE,
        }
    }

    /// Waits until `bytes` more may be sent under every limit.
    pub(crate) async fn admit(&self, bytes: usize) {
        let wait = self
            .limits
            .iter()
            .map(|l| l.0.consume_duration(bytes))
            .max()
            .unwrap_or(Duration::ZERO);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Whether there are limits to obey (set now, or able to be set while sending).
    pub(crate) fn has_limits(&self) -> bool {
        !self.limits.is_empty()
    }

    /// `chunk` cut into pieces of the current piece size.
    pub(crate) fn pieces(&self, chunk: Bytes) -> Vec<Bytes> {
        super::put::slices(chunk, self.piece_size()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `total` bytes through `throttle` in 256 KiB chunks; returns the virtual time taken.
    async fn send(throttle: &Throttle, total: usize) -> Duration {
        let start = tokio::time::Instant::now();
        let mut left = total;
        while left > 0 {
            let chunk = Bytes::from(vec![0u8; left.min(MAX_PIECE)]);
            left -= chunk.len();
            for piece in throttle.pieces(chunk) {
                throttle.admit(piece.len()).await;
            }
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn the_tightest_limit_sets_the_pace_within_its_burst() {
        let overall = RateLimit::new(Some(1_000_000));
        let profile = RateLimit::new(Some(4_000_000));
        let throttle = Throttle::default().with(overall).with(profile);
        let took = send(&throttle, 10_000_000).await.as_secs_f64();
        // 10 MB at 1 MB/s, less the 0.1 s the bucket starts with.
        assert!((9.8..=10.1).contains(&took), "took {took} s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_changed_while_sending_applies_from_the_next_piece() {
        let overall = RateLimit::new(Some(1_000_000));
        let throttle = Throttle::default().with(overall.clone());
        let first = send(&throttle, 2_000_000).await.as_secs_f64();
        overall.set(Some(4_000_000));
        let second = send(&throttle, 4_000_000).await.as_secs_f64();
        overall.set(None);
        let third = send(&throttle, 50_000_000).await.as_secs_f64();
        assert!((1.8..=2.1).contains(&first), "first {first} s");
        assert!((0.9..=1.1).contains(&second), "second {second} s");
        assert!(third < 0.01, "unlimited took {third} s");
        assert_eq!(throttle.tightest(), None);
    }

    #[test]
    fn pieces_are_an_eighth_of_a_second_of_the_rate() {
        let throttle = Throttle::default().with(RateLimit::new(Some(80_000)));
        let pieces = throttle.pieces(Bytes::from(vec![1u8; 25_000]));
        assert_eq!(
            pieces.iter().map(Bytes::len).collect::<Vec<_>>(),
            [10_000, 10_000, 5_000]
        );
        let unlimited = Throttle::default();
        assert_eq!(unlimited.pieces(Bytes::from(vec![1u8; 25_000])).len(), 1);
    }
}
