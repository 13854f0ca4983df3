//! A small Prometheus endpoint (`prometheus.enabled`, path `/metrics`):
//! node gauges under Centrifugo's `centrifugo_node_*` names, and Gyre's own
//! counters for the protective features. Counters are plain atomics bumped
//! on the relevant paths; rendering reads them once per scrape.

use crate::node::Node;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters kept by the node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Successful connects.
    pub connects: AtomicU64,
    /// Connects refused because the user is blocked.
    pub refused_blocked: AtomicU64,
    /// Connects, refreshes and subscribes refused for a revoked or invalidated token.
    pub refused_token: AtomicU64,
    /// Live connections closed by `block_user`.
    pub closed_blocked: AtomicU64,
    /// Live connections asked to re-check after a revocation or invalidation.
    pub rechecks: AtomicU64,
    /// Publications handed to local subscribers.
    pub deliveries: AtomicU64,
    /// Connections closed because `http_server.max_pending_connections`
    /// newer connections were waiting for their first request head.
    pub http_pending_evicted: AtomicU64,
    /// Requests answered 501 for a `Transfer-Encoding` other than `chunked`.
    pub http_bad_transfer_encoding: AtomicU64,
    /// Protective store operations that failed (writes answered 100, loads,
    /// version checks).
    pub protect_store_errors: AtomicU64,
    /// Protective changes heard from another node through a store.
    pub protect_notifications: AtomicU64,
    /// Full reloads of a feature's entries from its store.
    pub protect_reloads: AtomicU64,
    /// Server API requests whose body did not arrive within `http_server.read_timeout`.
    pub http_body_timeouts: AtomicU64,
    /// Connections closed with 3008 because replies and queued pushes
    /// exceeded `client.queue_max_size`.
    pub slow_disconnects: AtomicU64,
    /// Channels where the Redis engine saw missed publications (a gap in
    /// offsets or a new epoch): positioned subscribers were told to recover.
    pub cluster_insufficient_state: AtomicU64,
    /// Control messages (heartbeats, actions, protective changes) that
    /// could not be published to Redis.
    pub cluster_control_errors: AtomicU64,
    /// Time from a disconnect request (API `disconnect`, `block_user`, slow
    /// client) to the close frame written on the socket.
    pub forced_close: Histogram,
}

/// Bucket bounds of [`Histogram`], in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// A fixed-bucket latency histogram with atomic counters.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

impl Metrics {
    /// Adds one.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// Renders the text exposition format.
pub(crate) fn render(node: &Node) -> String {
    let m = node.metrics();
    let (blocks, revoked, invalidations) = node.protect_sizes();
    let (clients, users, channels, subs) = node.local_counts();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, v: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge(
        "centrifugo_node_num_clients",
        "Connections on this node.",
        clients as u64,
    );
    gauge(
        "centrifugo_node_num_users",
        "Distinct users on this node.",
        users as u64,
    );
    gauge(
        "centrifugo_node_num_channels",
        "Channels with subscribers on this node.",
        channels as u64,
    );
    gauge(
        "centrifugo_node_num_subscriptions",
        "Subscriptions on this node.",
        subs as u64,
    );
    gauge(
        "gyre_protect_blocked_users",
        "Stored user blocks (including expired ones not yet swept).",
        blocks as u64,
    );
    gauge(
        "gyre_protect_revoked_tokens",
        "Stored token revocations.",
        revoked as u64,
    );
    gauge(
        "gyre_protect_user_invalidations",
        "Stored per-user token invalidations.",
        invalidations as u64,
    );
    let mut counter = |name: &str, help: &str, v: &AtomicU64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            v.load(Ordering::Relaxed)
        );
    };
    counter(
        "gyre_client_connects_total",
        "Successful client connects.",
        &m.connects,
    );
    counter(
        "gyre_protect_refused_blocked_total",
        "Connects refused for a blocked user.",
        &m.refused_blocked,
    );
    counter(
        "gyre_protect_refused_token_total",
        "Connects, refreshes and subscribes refused for a revoked or invalidated token.",
        &m.refused_token,
    );
    counter(
        "gyre_protect_closed_blocked_total",
        "Live connections closed by block_user.",
        &m.closed_blocked,
    );
    counter(
        "gyre_protect_rechecks_total",
        "Live connections re-checked after revoke_token or invalidate_user_tokens.",
        &m.rechecks,
    );
    counter(
        "gyre_publication_deliveries_total",
        "Publications handed to local subscribers' queues.",
        &m.deliveries,
    );
    counter(
        "gyre_protect_store_errors_total",
        "Protective store operations that failed (writes answered with error 100, loads, version checks).",
        &m.protect_store_errors,
    );
    counter(
        "gyre_protect_notifications_total",
        "Protective changes heard from other nodes through the store.",
        &m.protect_notifications,
    );
    counter(
        "gyre_cluster_insufficient_state_total",
        "Channels where missed publications were detected; positioned subscribers recovered.",
        &m.cluster_insufficient_state,
    );
    counter(
        "gyre_cluster_control_errors_total",
        "Control messages that could not be published to Redis.",
        &m.cluster_control_errors,
    );
    counter(
        "gyre_protect_reloads_total",
        "Full reloads of protective entries from a store.",
        &m.protect_reloads,
    );
    counter(
        "gyre_http_pending_evicted_total",
        "Connections closed while waiting for their first request head, to make room (http_server.max_pending_connections).",
        &m.http_pending_evicted,
    );
    counter(
        "gyre_http_unsupported_transfer_encoding_total",
        "Requests answered 501 for a Transfer-Encoding other than chunked.",
        &m.http_bad_transfer_encoding,
    );
    counter(
        "gyre_http_body_timeouts_total",
        "Server API requests whose body did not arrive within http_server.read_timeout.",
        &m.http_body_timeouts,
    );
    counter(
        "gyre_client_slow_disconnects_total",
        "Connections closed with 3008 slow: queued pushes and replies over client.queue_max_size.",
        &m.slow_disconnects,
    );
    m.forced_close.render(
        &mut out,
        "gyre_forced_close_latency_seconds",
        "Time from a disconnect request (API disconnect, block_user, slow client) to the close frame written.",
    );
    out
}
