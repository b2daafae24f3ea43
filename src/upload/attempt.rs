//! The retry loop every request of an upload runs in: AWS "standard" backoff and the shared
//! retry budget ([`crate::retry`]) for transient failures, the session's pace for a server that
//! asks to wait (no attempt or budget spent), an immediate new attempt (so a new signature) for
//! an expired URL, and at once an error for a permanent failure.

use super::types::{ProgressFn, TransferError, TransferEvent};
use crate::remote::RemoteFailure;
use crate::retry::{FailureKind, RetryPolicy};

/// How often an expired URL is signed again for one request before giving up.
pub(crate) const MAX_RESIGNS: u32 = 2;

/// A failed attempt: retried per the policy, or fatal at once.
#[derive(Debug)]
pub(crate) enum AttemptError {
    Retry(RemoteFailure),
    Fatal(TransferError),
}

impl From<RemoteFailure> for AttemptError {
    fn from(f: RemoteFailure) -> Self {
        Self::Retry(f)
    }
}

impl From<TransferError> for AttemptError {
    fn from(e: TransferError) -> Self {
        Self::Fatal(e)
    }
}

/// Runs `attempt` (sign + send once) under `policy`; `progress` hears of each retry. Returns
/// the value and the number of attempts made.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    progress: Option<&ProgressFn>,
    mut attempt: F,
) -> Result<(T, u32), TransferError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, AttemptError>>,
{
    let mut attempts = 0u32;
    let mut resigns = 0u32;
    let mut spent = 0u32;
    let mut waited = std::time::Duration::ZERO;
    loop {
        // A server asked the session to wait: every request holds until then.
        if let Some(d) = policy.pacer.wait_at(policy.clock.now()) {
            policy.clock.sleep(d).await;
        }
        attempts += 1;
        let failure = match attempt(attempts).await {
            Ok(v) => {
                policy.budget.on_success(spent);
                return Ok((v, attempts));
            }
            Err(AttemptError::Fatal(e)) => return Err(e),
            Err(AttemptError::Retry(f)) => f,
        };
        tracing::warn!(attempt = attempts, kind = ?failure.kind, reason = %failure.message, "attempt failed");
        if let (FailureKind::Throttling, Some(after)) = (failure.kind, failure.retry_after) {
            // A pace, not a failure: no attempt and no budget spent, up to a limit in all.
            attempts -= 1;
            waited += after;
            if waited > policy.max_throttle_wait {
                return Err(TransferError::RetriesExhausted {
                    out_of_reach: true,
                    attempts: attempts + 1,
                    last: format!(
                        "{} (the server kept asking to wait, over {} s in all)",
                        failure.message,
                        policy.max_throttle_wait.as_secs()
                    ),
                });
            }
            policy.pacer.hold_until(policy.clock.now() + after);
            if let Some(progress) = progress {
                progress(TransferEvent::Waiting {
                    delay_ms: after.as_millis() as u64,
                    reason: failure.message.clone(),
                });
            }
            continue;
        }
        match failure.kind {
            FailureKind::Permanent => return Err(TransferError::Rejected(failure.message)),
            FailureKind::Expired if resigns >= MAX_RESIGNS => {
                return Err(TransferError::ExpiredAgain {
                    last: failure.message,
                })
            }
            FailureKind::Expired => {
                resigns += 1;
                attempts -= 1; // signing again is not a retry of a failed transfer
                continue;
            }
            _ => {}
        }
        if attempts >= policy.max_attempts {
            return Err(TransferError::RetriesExhausted {
                attempts,
                out_of_reach: failure.status.is_none_or(|s| s >= 500 || s == 429),
                last: failure.message,
            });
        }
        let Some(cost) = policy.budget.acquire(failure.kind) else {
            return Err(TransferError::BudgetExhausted {
                last: failure.message,
            });
        };
        spent += cost;
        let delay = policy.backoff(attempts);
        if let Some(progress) = progress {
            progress(TransferEvent::Retrying {
                attempt: attempts,
                delay_ms: delay.as_millis() as u64,
                reason: failure.message.clone(),
            });
        }
        policy.clock.sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{Clock, RetryBudget, RetryPolicy};
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    /// A clock that moves only when slept on, and records each sleep.
    #[derive(Default)]
    struct SteppingClock {
        now: Mutex<Duration>,
        sleeps: Mutex<Vec<Duration>>,
    }

    impl Clock for SteppingClock {
        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + *self.now.lock().unwrap()
        }
        fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            *self.now.lock().unwrap() += d;
            self.sleeps.lock().unwrap().push(d);
            Box::pin(async {})
        }
    }

    fn throttled(secs: u64) -> AttemptError {
        AttemptError::Retry(RemoteFailure {
            retry_after: Some(Duration::from_secs(secs)),
            status: Some(429),
            ..RemoteFailure::local(FailureKind::Throttling, "rate limit reached")
        })
    }

    fn policy(clock: Arc<SteppingClock>) -> RetryPolicy {
        RetryPolicy {
            clock,
            // Less than one retry costs: a wait that spent budget would fail at once.
            budget: Arc::new(RetryBudget::new(4)),
            max_throttle_wait: Duration::from_secs(60),
            ..RetryPolicy::default()
        }
    }

    /// Five answers "wait 2 s" then success: more waits than attempts allowed, no budget spent
    /// (it cannot pay for a single retry), each wait exactly as asked and reported as one.
    #[tokio::test]
    async fn a_server_that_asks_to_wait_sets_the_pace_without_spending_retries() {
        let clock = Arc::new(SteppingClock::default());
        let p = policy(Arc::clone(&clock));
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let progress: ProgressFn = Arc::new(move |e| seen.lock().unwrap().push(e));
        let calls = Mutex::new(0u32);
        let (v, attempts) = with_retry(&p, Some(&progress), |_| {
            let n = {
                let mut c = calls.lock().unwrap();
                *c += 1;
                *c
            };
            async move {
                match n {
                    1..=5 => Err(throttled(2)),
                    _ => Ok("landed"),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!((v, attempts), ("landed", 1));
        assert_eq!(
            *clock.sleeps.lock().unwrap(),
            vec![Duration::from_secs(2); 5]
        );
        assert_eq!(p.budget.available(), 4, "no retry was paid for");
        let waits = events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, TransferEvent::Waiting { delay_ms: 2000, .. }))
            .count();
        assert_eq!(waits, 5);
        // Another request of the session, started within the pause, waits for its end.
        p.pacer.hold_until(p.clock.now() + Duration::from_secs(3));
        with_retry(&p, None, |_| async { Ok::<_, AttemptError>(()) })
            .await
            .unwrap();
        assert_eq!(
            clock.sleeps.lock().unwrap().last(),
            Some(&Duration::from_secs(3))
        );
    }

    /// A server that keeps asking to wait is given up on once the waits pass the limit.
    #[tokio::test]
    async fn waiting_has_a_limit() {
        let clock = Arc::new(SteppingClock::default());
        let p = policy(Arc::clone(&clock));
        let err = with_retry(&p, None, |_| async { Err::<(), _>(throttled(25)) })
            .await
            .unwrap_err();
        match err {
            TransferError::RetriesExhausted { last, .. } => {
                assert!(last.contains("kept asking to wait"), "{last}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            *clock.sleeps.lock().unwrap(),
            vec![Duration::from_secs(25); 2],
            "two waits of 25 s fit in 60 s, a third does not"
        );
    }
}
