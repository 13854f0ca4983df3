//! Channel history streams and publication delivery: where publications get
//! their offset and epoch and are kept for `history` and recovery
//! (design.md §3.4). Backends are variants of [`Broker`]; each implements
//! raw operations only, and the node decides what to call (architecture.md
//! §2.4 a): memory (one node) and Redis (a cluster).

pub(crate) mod memory;
pub(crate) mod redis;

#[cfg(test)]
pub(crate) mod conformance;

pub(crate) use crate::node::error::BrokerError;
pub(crate) use memory::MemoryBroker;
pub(crate) use redis::RedisBroker;

use crate::protocol::{Publication, StreamPosition};
use std::time::Duration;

/// Stream position after an operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamTop {
    /// Offset of the newest publication.
    pub offset: u64,
    /// Epoch of the stream.
    pub epoch: String,
}

/// History failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// `since` names another epoch or a position no longer kept: 112.
    #[error("unrecoverable position")]
    Unrecoverable,
    /// The backend failed: 100.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl From<HistoryError> for crate::node::error::NodeError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Unrecoverable => crate::node::error::NodeError::Unrecoverable,
            HistoryError::Broker(b) => b.into(),
        }
    }
}

/// How a channel keeps history (from its namespace options).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryOpts {
    /// Publications kept (`history_size`).
    pub size: usize,
    /// How long each is kept (`history_ttl`).
    pub ttl: Duration,
    /// How long the stream's epoch and offset outlive its last publication
    /// (`history_meta_ttl`; zero = as long as the process).
    pub meta_ttl: Duration,
}

/// The broker backends.
pub(crate) enum Broker {
    /// One process's memory (Centrifugo's memory engine).
    Memory(MemoryBroker),
    /// Redis: offsets, history and delivery shared by every node.
    Redis(RedisBroker),
}

impl Broker {
    /// Publishes into `channel`, with history when `history` is given.
    ///
    /// Delivery to this node's subscribers: the memory backend calls
    /// `deliver` with the offset assigned, before the channel's stream is
    /// unlocked, so concurrent publications reach subscribers in offset
    /// order. The Redis backend never calls it: every node, this one
    /// included, delivers when the publication arrives over PUB/SUB. Returns the stream top when history is kept. With an
    /// `idempotency_key`, a repeat within the result TTL (300 s) returns the
    /// first publication's result and neither delivers nor keeps anything.
    pub(crate) async fn publish(
        &self,
        channel: &str,
        p: Publication,
        history: Option<HistoryOpts>,
        idempotency_key: Option<&str>,
        deliver: impl FnOnce(&Publication),
    ) -> Result<Option<StreamTop>, BrokerError> {
        match self {
            Broker::Memory(m) => {
                let publish = || match history {
                    Some(h) => Some(m.add(channel, p, h.size, h.ttl, h.meta_ttl, deliver)),
                    None => {
                        deliver(&p);
                        None
                    }
                };
                Ok(match idempotency_key.filter(|k| !k.is_empty()) {
                    Some(key) => m.idempotent(channel, key, publish),
                    None => publish(),
                })
            }
            // Boxed: the Redis future is large, and the memory path must not
            // carry (and copy) its size on every publication.
            Broker::Redis(r) => Box::pin(r.publish(channel, &p, history, idempotency_key)).await,
        }
    }

    /// The current top of a channel's stream (creating the stream, as
    /// Centrifugo does).
    /// `meta_ttl` is the channel's `history_meta_ttl` (a Redis read
    /// extends it).
    pub(crate) async fn top(
        &self,
        channel: &str,
        meta_ttl: Duration,
    ) -> Result<StreamTop, BrokerError> {
        match self {
            Broker::Memory(m) => Ok(m.top(channel)),
            Broker::Redis(r) => Box::pin(r.top(channel, meta_ttl)).await,
        }
    }

    /// Publications after `since` (or all kept), at most `limit` (`None` =
    /// all), newest first when `reverse`.
    pub(crate) async fn history(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        limit: Option<usize>,
        reverse: bool,
        meta_ttl: Duration,
    ) -> Result<(Vec<Publication>, StreamTop), HistoryError> {
        match self {
            Broker::Memory(m) => m.history(channel, since, limit, reverse),
            Broker::Redis(r) => Box::pin(r.history(channel, since, limit, reverse, meta_ttl)).await,
        }
    }

    /// Drops a channel's publications (the epoch and offset are kept).
    pub(crate) async fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        match self {
            Broker::Memory(m) => {
                m.remove_history(channel);
                Ok(())
            }
            Broker::Redis(r) => Box::pin(r.remove_history(channel)).await,
        }
    }

    /// Periodic upkeep: the memory backend drops expired publications and
    /// streams (a store with its own expiry needs none).
    pub(crate) fn sweep(&self) {
        match self {
            Broker::Memory(m) => m.sweep(),
            Broker::Redis(_) => {}
        }
    }
}
