//! Presence: which clients are in a channel, with their info. Backends are
//! variants of [`Presence`] (architecture.md §2.4 a): memory (one node)
//! and Redis (a cluster).

pub(crate) mod memory;
pub(crate) mod redis;

#[cfg(test)]
pub(crate) mod conformance;

pub(crate) use crate::node::error::PresenceError;
pub(crate) use memory::MemoryPresence;
pub(crate) use redis::RedisPresence;

use crate::protocol::ClientInfo;
use std::collections::BTreeMap;

/// The presence backends.
pub(crate) enum Presence {
    /// One process's memory: entries live exactly as long as the subscription.
    Memory(MemoryPresence),
    /// Redis: shared by every node; entries expire unless refreshed.
    Redis(std::sync::Arc<RedisPresence>),
}

impl Presence {
    /// Adds or updates a client's presence in a channel.
    pub(crate) async fn add(&self, channel: &str, info: ClientInfo) -> Result<(), PresenceError> {
        match self {
            Presence::Memory(m) => {
                m.add(channel, info);
                Ok(())
            }
            Presence::Redis(r) => Box::pin(r.add(channel, info)).await,
        }
    }

    /// Removes a client's presence. Never waits: it runs when a
    /// subscription or connection ends, which must not stall on a backend
    /// (a backend with I/O queues it, and its entries expire anyway).
    pub(crate) fn remove(&self, channel: &str, client: &str) {
        match self {
            Presence::Memory(m) => m.remove(channel, client),
            Presence::Redis(r) => r.remove(channel, client),
        }
    }

    /// Everyone present, by client id.
    pub(crate) async fn presence(
        &self,
        channel: &str,
    ) -> Result<BTreeMap<String, ClientInfo>, PresenceError> {
        match self {
            Presence::Memory(m) => Ok(m.presence(channel)),
            Presence::Redis(r) => Box::pin(r.presence(channel)).await,
        }
    }

    /// Counts of clients and distinct users.
    pub(crate) async fn stats(&self, channel: &str) -> Result<(u32, u32), PresenceError> {
        match self {
            Presence::Memory(m) => Ok(m.stats(channel)),
            Presence::Redis(r) => Box::pin(r.stats(channel)).await,
        }
    }
}
