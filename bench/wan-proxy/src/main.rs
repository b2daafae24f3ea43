//! A TCP relay that makes loopback look like a wide-area link, for benchmarks (`tc netem` is not
//! available on the benchmark machines).
//!
//! ```text
//! wan-proxy --rtt-ms 80 --conn-mbps 25 --total-mbps 120 \
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
//! waiting callers queue fairly), then delayed. What it does not model: loss, and TCP's slow
//! start (the kernel's loopback TCP ramps up at once), so a tool is never penalised for opening
//! new connections beyond the handshake round trip.
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

struct Link {
    one_way: Duration,
    conn_rate: f64,
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
    eprintln!("wan-proxy: {why}\nusage: wan-proxy --rtt-ms MS [--conn-mbps MB] [--total-mbps MB] --relay LISTEN=TARGET [--relay ...]\n(0 or absent: no cap)");
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
                    link.connections.fetch_add(1, Ordering::Relaxed);
                    // The handshake's round trip.
                    tokio::time::sleep(link.one_way * 2).await;
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let up = tokio::spawn(pipe(cr, sw, link.clone(), true));
                    let down = tokio::spawn(pipe(sr, cw, link.clone(), false));
                    let _ = tokio::join!(up, down);
                });
            }
        });
    }
    eprintln!("wan-proxy: ready (rtt {rtt_ms} ms)");
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
) {
    let conn = Bucket::new(link.conn_rate);
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
