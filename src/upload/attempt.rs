//! The retry loop every request of an upload runs in: AWS "standard" backoff and the shared
//! retry budget ([`crate::retry`]) for transient failures, an immediate new attempt (so a new
//! signature) for an expired URL, and at once an error for a permanent failure.

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
        AttemptError::Retry(f)
    }
}

impl From<TransferError> for AttemptError {
    fn from(e: TransferError) -> Self {
        AttemptError::Fatal(e)
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
    loop {
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
