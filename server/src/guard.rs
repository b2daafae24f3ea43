//! What stands between the open port and the handlers: failed authentications are limited per
//! client address (so nobody without a token can flood the audit log or probe tokens at speed),
//! and connections are counted per address (so one host cannot take every connection).
//!
//! IPv6 clients are counted per /64, the block one host usually owns; an IPv4-mapped address
//! counts as its IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The unit a limit counts: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key `ip` is counted under.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Self(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
            v4 => Self(v4),
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

/// What to do with one failed authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureVerdict {
    /// Within the allowance: answer 401 and audit it.
    Audit,
    /// The failure that used up the allowance: answer 429 and audit that the address is now
    /// refused quietly.
    AuditAndThrottle {
        /// Seconds until the address's minute ends.
        retry_after: u64,
    },
    /// Over the allowance: answer 429 without an audit line.
    Throttle {
        /// Seconds until the address's minute ends.
        retry_after: u64,
    },
}

/// A minute of one address's failures that went partly unlogged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppressed {
    /// Whose.
    pub client: ClientKey,
    /// How many failures got no line of their own.
    pub count: u64,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    failures: u64,
}

/// Failed authentications per client, in fixed one-minute windows.
#[derive(Debug)]
pub struct AuthFailures {
    per_minute: u64,
    windows: Mutex<HashMap<ClientKey, Window>>,
    last_sweep: Mutex<Option<Instant>>,
}

const WINDOW: Duration = Duration::from_secs(60);
/// How often finished windows are looked for (each look walks every client's window).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

impl AuthFailures {
    /// Allows `per_minute` audited failures per client and minute (at least 1).
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: u64::from(per_minute.max(1)),
            windows: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(None),
        }
    }

    /// Counts a failure of `client` at `now` and says how to answer it.
    pub fn record(&self, client: ClientKey, now: Instant) -> FailureVerdict {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows.entry(client).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.saturating_duration_since(w.start) >= WINDOW {
            // The summary of the old window is written by `sweep`, which also drops it; a
            // client that keeps failing starts a new window here.
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures += 1;
        let retry_after = WINDOW
            .saturating_sub(now.saturating_duration_since(w.start))
            .as_secs()
            .max(1);
        match w.failures.cmp(&self.per_minute) {
            std::cmp::Ordering::Less | std::cmp::Ordering::Equal => FailureVerdict::Audit,
            _ if w.failures == self.per_minute + 1 => {
                FailureVerdict::AuditAndThrottle { retry_after }
            }
            _ => FailureVerdict::Throttle { retry_after },
        }
    }

    /// Whether `client` has used up its failures of the current window: then every request of
    /// its is answered 429 before any token is checked, the right one too, so a guesser learns
    /// nothing more until the window ends. The seconds left, if so.
    pub fn locked_out(&self, client: ClientKey, now: Instant) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = windows.get(&client)?;
        let elapsed = now.saturating_duration_since(w.start);
        (elapsed < WINDOW && w.failures > self.per_minute)
            .then(|| WINDOW.saturating_sub(elapsed).as_secs().max(1))
    }

    /// At most every `SWEEP_EVERY`: forgets finished windows and returns those whose failures were
    /// not all logged, for one summary line each.
    pub fn sweep(&self, now: Instant) -> Vec<Suppressed> {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            match *last {
                Some(t) if now.saturating_duration_since(t) < SWEEP_EVERY => return Vec::new(),
                _ => *last = Some(now),
            }
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        windows.retain(|client, w| {
            let done = now.saturating_duration_since(w.start) >= WINDOW;
            // Failures past the allowance, less the one audited as the throttle began.
            if done && w.failures > self.per_minute + 1 {
                out.push(Suppressed {
                    client: *client,
                    count: w.failures - self.per_minute - 1,
                });
            }
            !done
        });
        out
    }
}

/// Open connections per client.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    open: Mutex<HashMap<ClientKey, usize>>,
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionSlot {
    counts: Arc<ConnectionCounts>,
    client: ClientKey,
}

impl ConnectionCounts {
    /// A place for one more connection of `client`, unless it has `limit` open (0: no limit).
    pub fn take(self: &Arc<Self>, client: ClientKey, limit: usize) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(client).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            counts: Arc::clone(self),
            client,
        })
    }

    /// How many connections `client` has open.
    pub fn open(&self, client: ClientKey) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&client).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ClientKey {
        ClientKey::of(s.parse().unwrap())
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn failures_past_the_allowance_are_throttled_and_summarised_once() {
        let f = AuthFailures::new(3);
        let (a, b) = (key("192.0.2.1"), key("192.0.2.2"));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(f.record(a, t0), FailureVerdict::Audit);
        }
        assert_eq!(
            f.record(a, t0),
            FailureVerdict::AuditAndThrottle { retry_after: 60 }
        );
        for _ in 0..100 {
            assert_eq!(
                f.record(a, t0 + Duration::from_secs(15)),
                FailureVerdict::Throttle { retry_after: 45 }
            );
        }
        // Another address has its own allowance.
        assert_eq!(f.record(b, t0), FailureVerdict::Audit);
        assert_eq!(f.sweep(t0 + Duration::from_secs(30)), vec![]);
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(
            f.sweep(t1),
            vec![Suppressed {
                client: a,
                count: 100
            }]
        );
        assert_eq!(f.sweep(t1 + Duration::from_secs(120)), vec![], "said once");
        // A new minute, a new allowance.
        assert_eq!(f.record(a, t1), FailureVerdict::Audit);
    }

    #[test]
    fn connection_slots_are_limited_per_client_and_freed_on_drop() {
        let counts = Arc::new(ConnectionCounts::default());
        let a = key("192.0.2.1");
        let first = counts.take(a, 2).unwrap();
        let _second = counts.take(a, 2).unwrap();
        assert!(counts.take(a, 2).is_none());
        assert!(counts.take(key("192.0.2.2"), 2).is_some());
        drop(first);
        assert_eq!(counts.open(a), 1);
        assert!(counts.take(a, 2).is_some());
        assert!(counts.take(a, 0).is_some(), "0 is no limit");
    }
}
