//! A TCP relay that makes loopback look like a wide-area link, for benchmarks (`tc netem` is not
//! available on the benchmark machines).
//!
//! ```text
//! wan-proxy --rtt-ms 80 --conn-mbps 25 --total-mbps 120 \
//!     [--slow-start] [--loss-pct 1] [--seed N] \
//!     --relay 127.0.0.1:9001=127.0.0.1:9000 [--relay LISTEN=TARGET ...]
//! ```
//!
//! Every relayed connection gets:
//! - a round trip of `rtt-ms`: each byte is held half of it on the way in and half on the way
//!   out, and a new connection waits one whole round trip before its first byte goes (the TCP
//!   handshake a real link costs);
//! - a cap of `conn-mbps` megabytes (10^6) per second per connection and direction;
//! - a cap of `total-mbps` per direction over all connections of all relays (one shared link).
//!
//! Bytes are paced in pieces of at most 16 KiB by token buckets that may go into debt (so
//! waiting callers queue fairly), then delayed.
//!
//! With `--slow-start`, each connection and direction also has TCP's congestion window
//! ([`Window`]): it starts at 10 segments (RFC 6928) and doubles every round trip until the
//! connection's cap fills the link (its bandwidth-delay product), and starts again after an
//! idle spell (Linux's `tcp_slow_start_after_idle`), so opening many cold connections costs
//! what it does on a real link. With `--loss-pct P`, each segment is lost with probability P %:
//! a loss stalls its connection one round trip (the fast retransmit) and halves its window,
//! which then grows by one segment a round trip (congestion avoidance). Without these flags
//! the loopback's own TCP ramps up at once and nothing is lost.
//!
//! On SIGINT/SIGTERM it prints the bytes it carried each way, so a run can be checked.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

const PIECE: usize = 16 * 1024;

/// A token bucket that lends: `take(n)` always succeeds and says how long to wait for it.
struct Bucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(bytes_per_sec: f64) -> Arc<Self> {
        // Up to 10 ms of burst.
        Arc::new(Bucket {
            rate: bytes_per_sec,
            state: Mutex::new((bytes_per_sec / 100.0, Instant::now())),
        })
    }

    async fn take(&self, n: usize) {
        if self.rate <= 0.0 {
            return;
        }
        let wait = {
            let mut s = self.state.lock().await;
            let now = Instant::now();
            let burst = self.rate / 100.0;
            s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.rate).min(burst);
            s.1 = now;
            s.0 -= n as f64;
            if s.0 < 0.0 {
                Duration::from_secs_f64(-s.0 / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// One segment (Ethernet's MSS), the unit of TCP's window.
const MSS: f64 = 1460.0;
/// The initial window: 10 segments (RFC 6928, Linux's default).
const INITIAL_WINDOW: f64 = 10.0 * MSS;

/// TCP's congestion window for one connection and direction: how many bytes may go per round
/// trip. Pure (time and chance passed in), so its rules are unit-tested below.
#[derive(Debug)]
struct Window {
    rtt: Duration,
    /// Bytes per round trip now.
    cwnd: f64,
    /// Above it the window grows by a segment a round trip, below it it doubles.
    ssthresh: f64,
    /// The most a round trip can carry at the connection's cap (its bandwidth-delay product).
    max: f64,
    /// When the current round trip began, and the bytes sent in it.
    round_start: Instant,
    sent: f64,
    last_send: Instant,
}

impl Window {
    fn new(rtt: Duration, conn_rate: f64, now: Instant) -> Self {
        let max = if conn_rate > 0.0 {
            (conn_rate * rtt.as_secs_f64()).max(INITIAL_WINDOW)
        } else {
            f64::INFINITY
        };
        Window {
            rtt,
            cwnd: INITIAL_WINDOW,
            ssthresh: f64::INFINITY,
            max,
            round_start: now,
            sent: 0.0,
            last_send: now,
        }
    }

    /// The retransmission timeout an idle spell is compared with: at least 200 ms (Linux's
    /// floor), or a round trip and a half.
    fn rto(&self) -> Duration {
        Duration::from_millis(200).max(self.rtt * 3 / 2)
    }

    /// `n` bytes are to go at `now`, `lost` of their segments lost: how long they wait. A full
    /// window waits for the next round trip, when the window grows; a loss costs a round trip
    /// and halves the window.
    fn admit(&mut self, now: Instant, n: usize, lost: u32) -> Duration {
        if self.rtt.is_zero() {
            return Duration::ZERO;
        }
        if now.duration_since(self.last_send) > self.rto() {
            // Slow start again after idling (RFC 5681, 4.1).
            self.cwnd = INITIAL_WINDOW.min(self.cwnd);
            self.round_start = now;
            self.sent = 0.0;
        }
        let mut at = now.max(self.round_start);
        while self.sent + n as f64 > self.cwnd && self.sent > 0.0 {
            // The window is full: the next round trip begins when the acks come back.
            at = at.max(self.round_start + self.rtt);
            self.round_start += self.rtt;
            self.sent = 0.0;
            self.cwnd = if self.cwnd < self.ssthresh {
                self.cwnd * 2.0
            } else {
                self.cwnd + MSS
            }
            .min(self.max);
        }
        self.sent += n as f64;
        if lost > 0 {
            // Fast retransmit: a round trip to find out, the window halved.
            at += self.rtt;
            self.ssthresh = (self.cwnd / 2.0).max(2.0 * MSS);
            self.cwnd = self.ssthresh;
            self.round_start = at;
            self.sent = 0.0;
        }
        self.last_send = at;
        at.duration_since(now)
    }
}

/// A small generator for losses (xorshift64*): seeded, so a run can be repeated.
struct Chance(u64);

impl Chance {
    fn new(seed: u64) -> Self {
        Chance(seed.max(1))
    }

    /// A number in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// How many of `n` bytes' segments are lost, each with probability `p`.
    fn lost(&mut self, n: usize, p: f64) -> u32 {
        if p <= 0.0 {
            return 0;
        }
        let segments = (n as f64 / MSS).ceil() as u32;
        (0..segments).filter(|_| self.next() < p).count() as u32
    }
}

struct Link {
    one_way: Duration,
    conn_rate: f64,
    /// TCP's slow start and congestion window (`--slow-start`).
    slow_start: bool,
    /// The chance each segment is lost (`--loss-pct` / 100).
    loss: f64,
    seed: u64,
    up: Arc<Bucket>,
    down: Arc<Bucket>,
    carried_up: AtomicU64,
    carried_down: AtomicU64,
    connections: AtomicU64,
}

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn usage(why: &str) -> ! {
    eprintln!("wan-proxy: {why}\nusage: wan-proxy --rtt-ms MS [--conn-mbps MB] [--total-mbps MB] [--slow-start] [--loss-pct P] [--seed N] --relay LISTEN=TARGET [--relay ...]\n(0 or absent: no cap)");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |name: &str| -> f64 {
        arg_value(&args, name)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| usage(&format!("{name} is not a number")))
            })
            .unwrap_or(0.0)
    };
    let rtt_ms = number("--rtt-ms");
    let link = Arc::new(Link {
        one_way: Duration::from_secs_f64(rtt_ms / 2000.0),
        conn_rate: number("--conn-mbps") * 1e6,
        slow_start: args.iter().any(|a| a == "--slow-start"),
        loss: number("--loss-pct") / 100.0,
        seed: number("--seed") as u64,
        up: Bucket::new(number("--total-mbps") * 1e6),
        down: Bucket::new(number("--total-mbps") * 1e6),
        carried_up: AtomicU64::new(0),
        carried_down: AtomicU64::new(0),
        connections: AtomicU64::new(0),
    });
    let relays: Vec<(String, String)> = args
        .windows(2)
        .filter(|w| w[0] == "--relay")
        .map(|w| match w[1].split_once('=') {
            Some((l, t)) => (l.to_string(), t.to_string()),
            None => usage("--relay wants LISTEN=TARGET"),
        })
        .collect();
    if relays.is_empty() {
        usage("no --relay given");
    }
    for (listen, target) in relays {
        let listener = TcpListener::bind(&listen)
            .await
            .unwrap_or_else(|e| usage(&format!("cannot listen on {listen}: {e}")));
        let link = link.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (link, target) = (link.clone(), target.clone());
                tokio::spawn(async move {
                    let number = link.connections.fetch_add(1, Ordering::Relaxed);
                    // The handshake's round trip.
                    tokio::time::sleep(link.one_way * 2).await;
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(pipe(cr, sw, link.clone(), true, number * 2));
                    let down = tokio::spawn(pipe(sr, cw, link.clone(), false, number * 2 + 1));
                    let _ = tokio::join!(up, down);
                });
            }
        });
    }
    eprintln!(
        "wan-proxy: ready (rtt {rtt_ms} ms{}{})",
        if link.slow_start { ", slow start" } else { "" },
        if link.loss > 0.0 {
            format!(", {} % loss", link.loss * 100.0)
        } else {
            String::new()
        }
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| usage(&format!("no signal handler: {e}")));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "wan-proxy: {} connections, {} bytes up, {} bytes down",
        link.connections.load(Ordering::Relaxed),
        link.carried_up.load(Ordering::Relaxed),
        link.carried_down.load(Ordering::Relaxed)
    );
}

/// Carries one direction: paced by the connection's and the link's buckets, then held for the
/// one-way delay. `None` in the channel is the end of the stream.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Arc<Link>,
    up: bool,
    stream: u64,
) {
    let conn = Bucket::new(link.conn_rate);
    let mut window = Window::new(link.one_way * 2, link.conn_rate, Instant::now());
    let mut chance = Chance::new(
        link.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(stream + 1),
    );
    let total = if up {
        link.up.clone()
    } else {
        link.down.clone()
    };
    // In flight at most ~4 MiB: the "wire" holds what the delay and the rate put on it.
    let (tx, mut rx) = mpsc::channel::<(Instant, Option<Vec<u8>>)>(256);
    let one_way = link.one_way;
    let writer = tokio::spawn(async move {
        while let Some((due, piece)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            match piece {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    });
    let mut buf = vec![0u8; PIECE];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if n == 0 {
            let _ = tx.send((Instant::now() + one_way, None)).await;
            break;
        }
        if link.slow_start || link.loss > 0.0 {
            let lost = chance.lost(n, link.loss);
            let wait = window.admit(Instant::now(), n, lost);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        conn.take(n).await;
        total.take(n).await;
        let counter = if up {
            &link.carried_up
        } else {
            &link.carried_down
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if tx
            .send((Instant::now() + one_way, Some(buf[..n].to_vec())))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(80);

    /// Sends `total` bytes in pieces as fast as the window lets; the time it takes.
    fn send(w: &mut Window, start: Instant, total: usize) -> Duration {
        let mut now = start;
        let mut left = total;
        while left > 0 {
            let n = left.min(PIECE);
            now += w.admit(now, n, 0);
            left -= n;
        }
        now - start
    }

    #[test]
    fn the_window_starts_at_ten_segments_and_doubles_each_round_trip() {
        let t0 = Instant::now();
        let mut w = Window::new(RTT, 25e6, t0);
        // 14,600 bytes go at once; 29,200 more in the second round trip; and so on.
        assert_eq!(w.admit(t0, 14_600, 0), Duration::ZERO);
        assert_eq!(w.admit(t0, 1, 0), RTT);
        assert_eq!(w.cwnd, 2.0 * INITIAL_WINDOW);
        // 64 KiB on a cold connection takes 3 round trips (14.6 + 29.2 + 58.4 KB windows).
        let mut cold = Window::new(RTT, 25e6, t0);
        assert_eq!(send(&mut cold, t0, 64 * 1024), RTT * 2);
        // The window stops at the connection's bandwidth-delay product: 25 MB/s × 80 ms.
        let mut long = Window::new(RTT, 25e6, t0);
        send(&mut long, t0, 50_000_000);
        assert!((long.cwnd - 2_000_000.0).abs() < 1.0, "{}", long.cwnd);
    }

    #[test]
    fn an_idle_connection_starts_slow_again_and_a_loss_halves_the_window() {
        let t0 = Instant::now();
        let mut w = Window::new(RTT, 25e6, t0);
        let warm = send(&mut w, t0, 5_000_000);
        assert!(w.cwnd > 100.0 * MSS, "{}", w.cwnd);
        // Idle past the retransmission timeout: back to ten segments.
        let later = t0 + warm + Duration::from_secs(1);
        assert_eq!(w.admit(later, 1000, 0), Duration::ZERO);
        assert_eq!(w.cwnd, INITIAL_WINDOW);
        // A loss: a round trip's stall, the window halved, then linear growth.
        let mut l = Window::new(RTT, 25e6, t0);
        send(&mut l, t0, 1_000_000);
        let before = l.cwnd;
        let now = t0 + Duration::from_secs(5);
        l.last_send = now;
        assert_eq!(l.admit(now, 1000, 1), RTT);
        assert_eq!(l.cwnd, before / 2.0);
        let halved = l.cwnd;
        send(&mut l, now + RTT, (halved * 1.5) as usize);
        assert_eq!(
            l.cwnd,
            halved + MSS,
            "congestion avoidance adds a segment a round trip"
        );
    }

    #[test]
    fn losses_come_at_the_rate_asked_and_repeat_with_the_seed() {
        let mut a = Chance::new(7);
        let lost: u32 = (0..1000).map(|_| a.lost(PIECE, 0.01)).sum();
        // 1000 pieces of 12 segments at 1 %: about 120.
        assert!((80..=160).contains(&lost), "{lost}");
        let mut b = Chance::new(7);
        let again: u32 = (0..1000).map(|_| b.lost(PIECE, 0.01)).sum();
        assert_eq!(lost, again);
        assert_eq!(Chance::new(3).lost(PIECE, 0.0), 0);
    }
}
