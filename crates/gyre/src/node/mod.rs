//! The node: the one place that combines the hub, the broker, presence,
//! the token verifier, the protective sets and stores, and the proxies
//! (design.md §3.2, architecture.md §2.4). Its fields are private: client
//! sessions and the API executor call `Node` methods, and the methods that
//! will do I/O with a Redis or PostgreSQL backend are already `async` and
//! return [`NodeError`], so adding a backend fills in a variant instead of
//! reshaping callers.
//!
//! * `pubsub.rs`: publish, history, presence, subscribe/unsubscribe.
//! * `actions.rs`: server API actions on connections and node-wide reads.
//! * `protect.rs`: protective changes (store → sets → live connections) and checks.
//! * `lifecycle.rs`: owned background tasks and staged shutdown.

mod actions;
mod cluster;
mod emulation;
pub mod error;
pub mod handle;
pub mod hub;
mod lifecycle;
pub mod outbox;
mod protect;
#[cfg(test)]
pub(crate) mod protect_conformance;
mod protect_sync;
mod pubsub;

pub use actions::{ChannelsInfo, ConnectionItems, NodeInfo, Targets};
pub use cluster::ClusterStartError;
pub use emulation::{EmulationError, EmulationRegistration};
pub use error::NodeError;
pub(crate) use lifecycle::Lifecycle;
pub use protect_sync::StartError;

use crate::auth::TokenVerifier;
use crate::broker::Broker;
use crate::codes::Disconnect;
use crate::config::{Channels, Config, ConfigError};
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::protect::{Protect, Store};
use crate::proxy::ProxyClient;
use hub::Hub;
use std::sync::Arc;

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

/// One store per protective feature: each has its own `storage_type` in
/// Centrifugo PRO's config.
pub(crate) struct Stores {
    user_block: Store,
    token_revoke: Store,
    user_tokens_invalidate: Store,
}

/// Shared server state.
pub struct Node {
    cfg: Arc<Config>,
    channels: Channels,
    hub: Hub,
    broker: Broker,
    presence: Presence,
    verifier: TokenVerifier,
    protect: Protect,
    stores: Stores,
    protect_codes: ProtectCodes,
    proxy: ProxyClient,
    id: String,
    name: String,
    started: std::time::Instant,
    lifecycle: Lifecycle,
    metrics: Metrics,
    /// The Redis engine's state (`engine.type: redis`), else `None`.
    cluster: Option<cluster::ClusterState>,
    /// Emulated sessions (`sse`, `http_stream`) of this node.
    emulation: emulation::Sessions,
}

impl Node {
    /// Builds a node with every backend in memory (no I/O). A config with
    /// persistent protective storage needs [`Node::start`].
    pub fn new(cfg: Config) -> Result<Arc<Self>, ConfigError> {
        for (key, f) in [
            ("user_block", &cfg.user_block),
            ("token_revoke", &cfg.token_revoke),
            ("user_tokens_invalidate", &cfg.user_tokens_invalidate),
        ] {
            if f.storage_type != crate::config::StorageType::Memory {
                return Err(ConfigError::invalid(
                    &format!("{key}.storage_type"),
                    "persistent storage is connected and loaded by Node::start",
                ));
            }
        }
        if cfg.engine.kind != crate::config::EngineType::Memory
            || (cfg.broker.enabled && cfg.broker.kind == "redis")
            || (cfg.presence_manager.enabled && cfg.presence_manager.kind == "redis")
        {
            return Err(ConfigError::invalid(
                "engine.type",
                "the Redis engine is connected by Node::start",
            ));
        }
        Self::build(cfg, Stores::memory())
    }

    /// Starts a node: connects the protective stores and loads every
    /// unexpired entry before returning (so before any client connects),
    /// then keeps them current in the background. Fails, naming the
    /// feature, when a store cannot be loaded (unless the feature has
    /// `start_without_storage`).
    pub async fn start(cfg: Config) -> Result<Arc<Self>, StartError> {
        let stores = Stores::from_config(&cfg)?;
        let protect = Protect::new();
        let (loaded, pending) = protect_sync::initial_load(&cfg, &stores, &protect).await?;
        let node = Self::build_with(cfg, stores, protect)?;
        node.spawn_protect_sync(loaded, pending);
        node.spawn_maintenance();
        let started = match node.start_presence().await {
            Ok(()) => node.start_cluster().await,
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            node.lifecycle.stop_background().await;
            return Err(e.into());
        }
        Ok(node)
    }

    fn build(cfg: Config, stores: Stores) -> Result<Arc<Self>, ConfigError> {
        Self::build_with(cfg, stores, Protect::new())
    }

    fn build_with(cfg: Config, stores: Stores, protect: Protect) -> Result<Arc<Self>, ConfigError> {
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
        let (cluster, broker, presence) = cluster::backends(&cfg)?;
        let name = if cfg.node.name.is_empty() {
            format!("gyre_{}", cfg.http_server.port)
        } else {
            cfg.node.name.clone()
        };
        Ok(Arc::new(Node {
            channels: Channels::new(&cfg.channel),
            hub: Hub::new(),
            broker,
            presence,
            verifier,
            protect,
            stores,
            protect_codes,
            proxy,
            id: uuid::Uuid::new_v4().to_string(),
            name,
            started: std::time::Instant::now(),
            lifecycle: Lifecycle::new(),
            metrics: Default::default(),
            cluster,
            emulation: Default::default(),
            cfg: Arc::new(cfg),
        }))
    }

    /// The configuration.
    pub fn cfg(&self) -> &Arc<Config> {
        &self.cfg
    }

    /// Channel rules (namespaces, private and user-limited channels).
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// JWT verification.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The connect and refresh proxy client.
    pub fn proxy(&self) -> &ProxyClient {
        &self.proxy
    }

    /// Close codes of the protective features.
    pub fn protect_codes(&self) -> &ProtectCodes {
        &self.protect_codes
    }

    /// Counters for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Connection tasks and shutdown signals.
    pub(crate) fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// This node's id (a UUID made at start).
    pub fn id(&self) -> &str {
        &self.id
    }
}
