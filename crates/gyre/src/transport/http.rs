//! Serving HTTP/1.1 connections with the limits a public server needs
//! (docs/configuration.md "Connection limits"):
//!
//! * `http_server.read_header_timeout` (default 10s, as Centrifugo's
//!   `ReadHeaderTimeout`): a connection must deliver a complete request head
//!   within this time, on a fresh connection and again between keep-alive
//!   requests, or it is closed. This is what stops idle sockets and
//!   slowloris headers from holding file descriptors forever.
//! * `http_server.max_pending_connections`: at most this many connections
//!   may be waiting for their first request head at once. When one more
//!   arrives, the *oldest* waiting connection is closed rather than the new
//!   one refused: an honest client sends its request within a round trip,
//!   so a flood of silent sockets cannot crowd it out (it would have to
//!   open more than the cap within one round trip of the honest client).
//! * `Transfer-Encoding` other than plain `chunked` is answered 501, as
//!   RFC 9112 §6.1 requires (and Go's net/http, Centrifugo's server, does).
//!
//! The request body timeout is applied where bodies are read (the server
//! API, `api::http`), after the API key was checked on the headers alone.
//!
//! HTTP/1.1 only: on plain TCP Centrifugo's Go server speaks HTTP/1.1 too
//! (no h2c), and hyper's protocol detection for HTTP/2 prior knowledge has
//! no read timeout of its own (docs/design-notes.md).

use crate::metrics::Metrics;
use crate::node::Node;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The limits of one listener, from `http_server.*`.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Time allowed for a request head (fresh and keep-alive connections).
    pub read_header_timeout: Duration,
    /// Connections allowed to wait for their first request head at once.
    pub max_pending: usize,
}

/// One connection's place among those waiting for a first request head.
#[derive(Debug)]
struct Slot {
    /// Still waiting for its first request head.
    pending: AtomicBool,
    /// Cancelled to close the connection when it is evicted.
    evict: CancellationToken,
}

/// Connections waiting for their first request head, oldest first.
#[derive(Debug)]
struct Pending {
    max: usize,
    inner: Mutex<PendingInner>,
}

#[derive(Debug, Default)]
struct PendingInner {
    /// In accept order; slots that stopped pending stay until they reach
    /// the front or the queue is compacted.
    queue: VecDeque<Arc<Slot>>,
    /// Slots still pending.
    live: usize,
}

impl Pending {
    /// Registers a new connection, evicting the oldest waiting ones over the cap.
    fn admit(&self, metrics: &Metrics) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            pending: AtomicBool::new(true),
            evict: CancellationToken::new(),
        });
        let mut g = self.inner.lock();
        g.queue.push_back(slot.clone());
        g.live += 1;
        while g.live > self.max {
            let Some(old) = g.queue.pop_front() else {
                break;
            };
            if old.pending.swap(false, Ordering::AcqRel) {
                g.live -= 1;
                old.evict.cancel();
                Metrics::inc(&metrics.http_pending_evicted);
            }
        }
        // Slots that left (served or closed) are dropped lazily; keep the
        // queue from growing past a small multiple of what is live.
        while g
            .queue
            .front()
            .is_some_and(|s| !s.pending.load(Ordering::Acquire))
        {
            g.queue.pop_front();
        }
        if g.queue.len() > 2 * g.live + 64 {
            g.queue.retain(|s| s.pending.load(Ordering::Acquire));
        }
        slot
    }

    /// The connection got its first request head, or ended.
    fn leave(&self, slot: &Slot) {
        if slot.pending.swap(false, Ordering::AcqRel) {
            self.inner.lock().live -= 1;
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, each connection in a
/// task tracked by `tracker` (so shutdown can wait for in-flight requests).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    node: Arc<Node>,
    tracker: TaskTracker,
) {
    let shutdown = node.lifecycle().shutdown().clone();
    let pending = Arc::new(Pending {
        max: limits.max_pending.max(1),
        inner: Mutex::new(PendingInner::default()),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_header_timeout);
    loop {
        let tcp = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Per-connection errors (reset before accept) are not the
                    // listener's; out of descriptors (EMFILE/ENFILE) eases as
                    // the timeouts above close idle sockets, so retry soon.
                    if !matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::Interrupted
                    ) {
                        tracing::warn!(error = %e, "accept failed; retrying in 50ms");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let slot = pending.admit(node.metrics());
        let conn = http.serve_connection(
            TokioIo::new(tcp),
            ConnService {
                router: router.clone(),
                slot: slot.clone(),
                pending: pending.clone(),
                node: node.clone(),
            },
        );
        let shutdown = shutdown.clone();
        let pending = pending.clone();
        tracker.spawn(async move {
            let conn = conn.with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = slot.evict.cancelled() => {} // dropping `conn` closes the socket
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            pending.leave(&slot);
        });
    }
}

/// The per-connection service: leaves the pending set on the first request,
/// refuses transfer codings other than `chunked`, then routes.
#[derive(Clone)]
struct ConnService {
    router: Router,
    slot: Arc<Slot>,
    pending: Arc<Pending>,
    node: Arc<Node>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>,
    >;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.pending.leave(&self.slot);
        if !transfer_encoding_supported(req.headers()) {
            Metrics::inc(&self.node.metrics().http_bad_transfer_encoding);
            return Box::pin(async { Ok(not_implemented()) });
        }
        let mut router = self.router.clone();
        Box::pin(async move { router.call(req.map(Body::new)).await })
    }
}

/// True unless the request names a transfer coding other than `chunked`.
/// Only `chunked` alone is understood (RFC 9112 §6.1: an unknown coding is
/// answered 501); `gzip, chunked` would otherwise be read as plain chunked
/// and hand compressed bytes to the API as if they were JSON.
pub(crate) fn transfer_encoding_supported(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all(header::TRANSFER_ENCODING).iter().all(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .map(str::trim)
                .all(|c| c.is_empty() || c.eq_ignore_ascii_case("chunked"))
        })
    })
}

fn not_implemented() -> Response<Body> {
    let mut r = Response::new(Body::from("Unsupported transfer encoding\n"));
    *r.status_mut() = StatusCode::NOT_IMPLEMENTED;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // The body framing is unknown, so the connection cannot be reused.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Raises the soft open-files limit to the hard one, as Go's runtime does
/// for Centrifugo since Go 1.19: the default soft limit (often 1,024) is
/// far below what a real-time server holds. Returns the limit in force.
pub(crate) fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::debug!(error = %e, "could not raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn te(v: &str) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn only_plain_chunked_is_supported() {
        assert!(transfer_encoding_supported(&axum::http::HeaderMap::new()));
        assert!(transfer_encoding_supported(&te("chunked")));
        assert!(transfer_encoding_supported(&te("Chunked")));
        assert!(!transfer_encoding_supported(&te("gzip, chunked")));
        assert!(!transfer_encoding_supported(&te("chunked, gzip")));
        assert!(!transfer_encoding_supported(&te("identity")));
    }

    #[test]
    fn the_oldest_pending_connection_is_evicted() {
        let stats = Metrics::default();
        let p = Pending {
            max: 2,
            inner: Mutex::new(PendingInner::default()),
        };
        let a = p.admit(&stats);
        let b = p.admit(&stats);
        p.leave(&b); // b was served: no longer counts
        let c = p.admit(&stats);
        assert!(!a.evict.is_cancelled() && !c.evict.is_cancelled());
        let d = p.admit(&stats);
        assert!(a.evict.is_cancelled(), "oldest waiting one goes first");
        assert!(!b.evict.is_cancelled() && !c.evict.is_cancelled() && !d.evict.is_cancelled());
        assert_eq!(stats.http_pending_evicted.load(Ordering::Relaxed), 1);
        assert_eq!(p.inner.lock().live, 2);
    }
}
