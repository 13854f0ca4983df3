//! In-memory presence: which clients are in a channel, with their info,
//! sharded 64 ways.

use crate::protocol::ClientInfo;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

const SHARDS: usize = 64;

/// Presence store.
pub(crate) struct MemoryPresence {
    hasher: foldhash::fast::RandomState,
    shards: Vec<Mutex<HashMap<String, HashMap<String, ClientInfo>>>>,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPresence {
    /// Empty store.
    pub(crate) fn new() -> Self {
        MemoryPresence {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, ch: &str) -> &Mutex<HashMap<String, HashMap<String, ClientInfo>>> {
        &self.shards[(self.hasher.hash_one(ch) as usize) % SHARDS]
    }

    /// Adds or updates a client's presence in a channel.
    pub(crate) fn add(&self, channel: &str, info: ClientInfo) {
        self.shard(channel)
            .lock()
            .entry(channel.to_string())
            .or_default()
            .insert(info.client.to_string(), info);
    }

    /// Removes a client's presence.
    pub(crate) fn remove(&self, channel: &str, client: &str) {
        let mut s = self.shard(channel).lock();
        if let Some(m) = s.get_mut(channel) {
            m.remove(client);
            if m.is_empty() {
                s.remove(channel);
            }
        }
    }

    /// Everyone present.
    pub(crate) fn presence(&self, channel: &str) -> BTreeMap<String, ClientInfo> {
        self.shard(channel)
            .lock()
            .get(channel)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Counts of clients and distinct users.
    pub(crate) fn stats(&self, channel: &str) -> (u32, u32) {
        let s = self.shard(channel).lock();
        match s.get(channel) {
            Some(m) => {
                let users: HashSet<&str> = m.values().map(|i| &*i.user).collect();
                (m.len() as u32, users.len() as u32)
            }
            None => (0, 0),
        }
    }
}
