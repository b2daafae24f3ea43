//! Serving the router over TCP, with the limits a server on an open port needs before anyone
//! has authenticated: a cap on open connections, overall and per client address; a deadline
//! for each request's head (which also closes idle keep-alive connections); and a graceful
//! shutdown that lets requests in flight finish. Bodies have their own deadline where they are
//! read (`routes`). Each request carries its peer address as [`ConnectInfo`], for the per-address
//! limit on failed authentication.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::guard::{ClientKey, ConnectionCounts};

/// Connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; past it, new ones get a 503 and are closed.
    pub max_connections: usize,
    /// Open connections per client address (IPv6: per /64) at most; 0 for no limit (behind a
    /// reverse proxy every client has the proxy's address: let the proxy limit them).
    pub connections_per_address: usize,
    /// From a connection's start, or the end of its last answer, to the end of the next
    /// request's head.
    pub header_timeout: Duration,
    /// How long requests in flight get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            connections_per_address: 256,
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// The answer to a connection over a limit, written if the socket takes it at once.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\nContent-Length: 56\r\nConnection: close\r\n\r\n{\"error\":\"too many connections: retry in a few seconds\"}";

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits up
/// to [`Limits::shutdown_grace`] for requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let total = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = Arc::new(ConnectionCounts::default());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: the next accept may work.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&total).try_acquire_owned() else {
            refuse(stream, "all connections are in use");
            continue;
        };
        let client = ClientKey::of(peer.ip());
        let Some(slot) = per_address.take(client, limits.connections_per_address) else {
            refuse(stream, "this address has too many connections open");
            continue;
        };
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut r: axum::extract::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(ConnectInfo(peer));
                r
            },
        ));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that vanishes or times out is no error of the server's.
            let _ = connection.await;
            drop((permit, slot));
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still running after {:?} were cut off",
            limits.shutdown_grace
        );
    }
}

fn refuse(stream: TcpStream, why: &str) {
    tracing::debug!("connection refused: {why}");
    let _ = stream.try_write(BUSY);
}

/// The address `serve` gave a request, when it came through `serve`.
pub(crate) fn peer_of(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
}
