//! The node: the one place that combines the hub, history, presence, the
//! token verifier, the protective sets and the proxies. Client sessions and
//! the API executor call Node methods, never the backends directly
//! (design.md §3.2).

pub mod handle;
pub mod hub;
mod protect;

use crate::auth::TokenVerifier;
use crate::broker::{HistoryError, MemoryBroker, StreamTop};
use crate::codes::Disconnect;
use crate::config::{ChannelOptions, Channels, Config, ConfigError};
use crate::presence::MemoryPresence;
use crate::protect::Protect;
use crate::protocol::{ClientInfo, JoinLeave, Publication, Raw, encode_push};
use crate::proxy::ProxyClient;
use handle::ClientHandle;
use hub::Hub;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Server version reported to clients and by `info` (Centrifugo reports `"<semver> OSS"`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " Gyre");

/// Close codes used by the protective features (configurable, §2.5).
#[derive(Debug, Clone)]
pub struct ProtectCodes {
    /// For blocked users (default 3503 `blocked`).
    pub block: Disconnect,
    /// For revoked tokens (default 3014 `state invalidated`).
    pub revoke: Disconnect,
    /// For invalidated tokens (default 3014 `state invalidated`).
    pub invalidate: Disconnect,
}

/// Shared server state.
pub struct Node {
    /// Configuration.
    pub cfg: Arc<Config>,
    /// Channel rules.
    pub channels: Channels,
    /// Connections and subscriptions.
    pub hub: Hub,
    /// History.
    pub broker: MemoryBroker,
    /// Presence.
    pub presence: MemoryPresence,
    /// JWT verification.
    pub verifier: TokenVerifier,
    /// Blocked users and revoked tokens.
    pub protect: Protect,
    /// Close codes of the protective features.
    pub protect_codes: ProtectCodes,
    /// Connect/refresh proxy client.
    pub proxy: ProxyClient,
    /// Node id.
    pub id: String,
    /// Node name.
    pub name: String,
    /// Process start.
    pub started: std::time::Instant,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Connection tasks, awaited at shutdown.
    pub tracker: TaskTracker,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

impl Node {
    /// Builds a node from a validated config.
    pub fn new(cfg: Config) -> Result<Arc<Self>, ConfigError> {
        let verifier = TokenVerifier::new(&cfg.client)?;
        let proxy = ProxyClient::new(&cfg.client.proxy);
        let code = |f: &crate::config::ProtectFeature, code: u16, reason: &str| {
            Disconnect::new(
                if f.disconnect_code == 0 {
                    code
                } else {
                    f.disconnect_code
                },
                if f.disconnect_reason.is_empty() {
                    reason.to_string()
                } else {
                    f.disconnect_reason.clone()
                },
            )
        };
        let protect_codes = ProtectCodes {
            block: code(&cfg.user_block, 3503, "blocked"),
            revoke: code(&cfg.token_revoke, 3014, "state invalidated"),
            invalidate: code(&cfg.user_tokens_invalidate, 3014, "state invalidated"),
        };
        let name = if cfg.node.name.is_empty() {
            format!("gyre_{}", cfg.http_server.port)
        } else {
            cfg.node.name.clone()
        };
        Ok(Arc::new(Node {
            channels: Channels::new(&cfg.channel),
            hub: Hub::new(),
            broker: MemoryBroker::new(),
            presence: MemoryPresence::new(),
            verifier,
            protect: Protect::new(),
            protect_codes,
            proxy,
            id: uuid::Uuid::new_v4().to_string(),
            name,
            started: std::time::Instant::now(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            metrics: Default::default(),
            cfg: Arc::new(cfg),
        }))
    }

    /// Publishes into a channel: history first (to get the offset), then one
    /// encoding of the push shared by every local subscriber.
    pub fn publish(
        &self,
        channel: &str,
        opts: &ChannelOptions,
        data: Raw,
        info: Option<ClientInfo>,
        tags: Option<Arc<BTreeMap<String, String>>>,
        skip_history: bool,
    ) -> Option<StreamTop> {
        let p = Publication {
            data,
            info,
            offset: 0,
            tags,
        };
        let deliver = |p: &Publication| {
            let frame = encode_push(channel, "pub", p);
            let n = self.hub.broadcast(channel, &frame, false);
            crate::metrics::Metrics::add(&self.metrics.deliveries, n as u64);
        };
        if opts.history_size > 0 && !skip_history {
            // Delivered under the stream's lock so pushes keep offset order.
            Some(self.broker.add(
                channel,
                p,
                opts.history_size,
                opts.history_ttl.0,
                opts.history_meta_ttl.0,
                deliver,
            ))
        } else {
            deliver(&p);
            None
        }
    }

    /// Sends a join or leave push to the subscribers that want it.
    /// Who gets them was decided per subscriber at subscribe time (the
    /// client asked, or the namespace forces them): see `Subscriber::join_leave`.
    pub fn join_leave(&self, channel: &str, kind: &str, info: &ClientInfo) {
        let frame = encode_push(channel, kind, &JoinLeave { info });
        self.hub.broadcast(channel, &frame, true);
    }

    /// History with Centrifugo's limits applied.
    pub fn history(
        &self,
        channel: &str,
        since: Option<&crate::protocol::StreamPosition>,
        limit: i64,
        reverse: bool,
    ) -> Result<(Vec<Publication>, StreamTop), HistoryError> {
        let max = self.cfg.client.history_max_publication_limit;
        let limit = match limit {
            0 => Some(0),
            l if l < 0 => Some(max),
            l => Some((l as usize).min(max)),
        };
        self.broker.history(channel, since, limit, reverse)
    }

    /// Disconnects connections of `user` (or one `client`), except the `whitelist`.
    pub fn disconnect_user(
        &self,
        user: &str,
        client: Option<&str>,
        whitelist: &[String],
        d: &Disconnect,
    ) -> usize {
        let mut n = 0;
        for h in self.hub.user_connections(user) {
            if client.is_some_and(|c| c != &*h.id) || whitelist.iter().any(|w| w.as_str() == &*h.id)
            {
                continue;
            }
            h.outbox.disconnect(d.clone());
            n += 1;
        }
        n
    }

    /// Connections matching an API target (user, optional client).
    pub fn targets(&self, user: &str, client: &str) -> Vec<Arc<ClientHandle>> {
        if user.is_empty() && !client.is_empty() {
            return self
                .hub
                .all_connections()
                .into_iter()
                .filter(|h| &*h.id == client)
                .collect();
        }
        self.hub
            .user_connections(user)
            .into_iter()
            .filter(|h| client.is_empty() || &*h.id == client)
            .collect()
    }

    /// Background upkeep: history and protective-data sweeps.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let node = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = node.shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        node.broker.sweep();
                        let n = node.protect.sweep(crate::auth::now());
                        if n > 0 {
                            tracing::debug!(dropped = n, "expired protective entries dropped");
                        }
                    }
                }
            }
        });
    }
}
