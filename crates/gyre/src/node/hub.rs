//! The hub: who is connected and who is subscribed where, in 64 shards per
//! index so that concurrent connects, subscribes and fan-outs rarely meet on
//! one lock (the design of Centrifuge's `hub.go`, design.md §3.2).
//!
//! Three indexes:
//! * users: user → client id → handle. "All connections of user X" (block,
//!   disconnect, invalidate) is one shard lookup.
//! * tokens: `jti` → handles holding a connection or subscription token with
//!   that id, each with the number of tokens it holds with that id (a
//!   connection token and a subscription token may share one), so
//!   `revoke_token` touches only those connections.
//! * channels: channel → client id → subscriber, for fan-out.
//!
//! No lock is held across an `.await`: every method here is synchronous.

use super::handle::ClientHandle;
use crate::protocol::{ProtocolKind, PushFrames};
use bytes::Bytes;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const SHARDS: usize = 64;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A subscriber of a channel on this node.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// The connection.
    pub handle: Arc<ClientHandle>,
    /// Wants join/leave pushes.
    pub join_leave: bool,
    /// The connection's encoding: which of a push's frames it gets.
    pub proto: ProtocolKind,
}

/// One lock-protected shard of an index.
type Shard<K, V> = RwLock<Map<K, V>>;
/// Client id → handle.
type Conns = Map<Arc<str>, Arc<ClientHandle>>;
/// Client id → subscriber.
type Subs = Map<Arc<str>, Subscriber>;
/// Connections holding a token id, each with how many tokens it holds with it.
type Holders = Vec<(Arc<ClientHandle>, u32)>;

/// Connection and subscription registries.
pub struct Hub {
    hasher: foldhash::fast::RandomState,
    users: Vec<Shard<Arc<str>, Conns>>,
    tokens: Vec<Shard<Box<str>, Holders>>,
    channels: Vec<Shard<Arc<str>, Subs>>,
    clients: AtomicUsize,
    subs: AtomicUsize,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        let mk = || (0..SHARDS).map(|_| RwLock::new(Map::default())).collect();
        Hub {
            hasher: foldhash::fast::RandomState::default(),
            users: mk(),
            tokens: (0..SHARDS).map(|_| RwLock::new(Map::default())).collect(),
            channels: (0..SHARDS).map(|_| RwLock::new(Map::default())).collect(),
            clients: AtomicUsize::new(0),
            subs: AtomicUsize::new(0),
        }
    }

    fn shard<K: Hash + ?Sized>(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Registers a connection; returns the number of connections its user now has.
    pub fn add_client(&self, h: &Arc<ClientHandle>) -> usize {
        let mut shard = self.users[self.shard(&*h.user)].write();
        let conns = shard.entry(h.user.clone()).or_default();
        conns.insert(h.id.clone(), h.clone());
        self.clients.fetch_add(1, Ordering::Relaxed);
        conns.len()
    }

    /// Removes a connection.
    pub fn remove_client(&self, h: &ClientHandle) {
        let mut shard = self.users[self.shard(&*h.user)].write();
        if let Some(conns) = shard.get_mut(&*h.user) {
            if conns.remove(&*h.id).is_some() {
                self.clients.fetch_sub(1, Ordering::Relaxed);
            }
            if conns.is_empty() {
                shard.remove(&*h.user);
            }
        }
    }

    /// Number of connections of `user` on this node.
    pub fn user_connection_count(&self, user: &str) -> usize {
        self.users[self.shard(user)]
            .read()
            .get(user)
            .map_or(0, |m| m.len())
    }

    /// The connections of `user` (cloned handles; the lock is released on return).
    pub fn user_connections(&self, user: &str) -> Vec<Arc<ClientHandle>> {
        self.users[self.shard(user)]
            .read()
            .get(user)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every connection (for `connections` without a user filter and for shutdown).
    pub fn all_connections(&self) -> Vec<Arc<ClientHandle>> {
        let mut out = Vec::new();
        for s in &self.users {
            for m in s.read().values() {
                out.extend(m.values().cloned());
            }
        }
        out
    }

    /// Number of connections on this node.
    pub fn num_clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Number of distinct users on this node.
    pub fn num_users(&self) -> usize {
        self.users.iter().map(|s| s.read().len()).sum()
    }

    /// Number of subscriptions on this node.
    pub fn num_subs(&self) -> usize {
        self.subs.load(Ordering::Relaxed)
    }

    /// Indexes one token with id `jti` held by a connection (its connection
    /// token or a subscription token). Each call needs its own `remove_token`.
    pub fn add_token(&self, jti: &str, h: &Arc<ClientHandle>) {
        let mut shard = self.tokens[self.shard(jti)].write();
        let list = shard.entry(jti.into()).or_default();
        match list.iter_mut().find(|(x, _)| Arc::ptr_eq(x, h)) {
            Some((_, holds)) => *holds += 1,
            None => list.push((h.clone(), 1)),
        }
    }

    /// Drops one hold of `jti` by a connection; the connection leaves the
    /// index when it holds no more tokens with that id.
    pub fn remove_token(&self, jti: &str, h: &ClientHandle) {
        let mut shard = self.tokens[self.shard(jti)].write();
        if let Some(list) = shard.get_mut(jti) {
            if let Some(i) = list.iter().position(|(x, _)| std::ptr::eq(&**x, h)) {
                list[i].1 -= 1;
                if list[i].1 == 0 {
                    list.swap_remove(i);
                }
            }
            if list.is_empty() {
                shard.remove(jti);
            }
        }
    }

    /// Connections holding a token with this id.
    pub fn token_connections(&self, jti: &str) -> Vec<Arc<ClientHandle>> {
        self.tokens[self.shard(jti)]
            .read()
            .get(jti)
            .map(|l| l.iter().map(|(h, _)| h.clone()).collect())
            .unwrap_or_default()
    }

    /// Adds a subscriber; returns true if it is the channel's first on this node.
    pub fn subscribe(&self, channel: &str, sub: Subscriber) -> bool {
        let mut shard = self.channels[self.shard(channel)].write();
        let first = !shard.contains_key(channel);
        let subs = shard.entry(Arc::from(channel)).or_default();
        if subs.insert(sub.handle.id.clone(), sub).is_none() {
            self.subs.fetch_add(1, Ordering::Relaxed);
        }
        first
    }

    /// Removes a subscriber; returns true if the channel has none left here.
    pub fn unsubscribe(&self, channel: &str, client: &str) -> bool {
        let mut shard = self.channels[self.shard(channel)].write();
        let Some(subs) = shard.get_mut(channel) else {
            return true;
        };
        if subs.remove(client).is_some() {
            self.subs.fetch_sub(1, Ordering::Relaxed);
        }
        let last = subs.is_empty();
        if last {
            shard.remove(channel);
        }
        last
    }

    /// Number of subscribers of `channel` on this node.
    pub fn num_subscribers(&self, channel: &str) -> usize {
        self.channels[self.shard(channel)]
            .read()
            .get(channel)
            .map_or(0, |m| m.len())
    }

    /// The connections subscribed to `channel` on this node.
    pub fn subscribers(&self, channel: &str) -> Vec<Arc<ClientHandle>> {
        self.channels[self.shard(channel)]
            .read()
            .get(channel)
            .map(|m| m.values().map(|s| s.handle.clone()).collect())
            .unwrap_or_default()
    }

    /// Channels with subscribers and their subscriber counts.
    pub fn channels(&self) -> Vec<(Arc<str>, usize)> {
        let mut out = Vec::new();
        for s in &self.channels {
            out.extend(s.read().iter().map(|(k, v)| (k.clone(), v.len())));
        }
        out
    }

    /// Number of channels with subscribers.
    pub fn num_channels(&self) -> usize {
        self.channels.iter().map(|s| s.read().len()).sum()
    }

    /// Hands a push to every subscriber of `channel` (or only to those that
    /// want join/leave pushes), each in its connection's encoding: `frames`
    /// encodes once per kind on first demand. Pushing is a short,
    /// non-blocking queue append, so it is done under the shard's read lock:
    /// copying 10,000 handles out first would cost more than the pushes
    /// themselves, and readers never block each other. Returns the number
    /// of deliveries.
    pub fn broadcast<F: Fn(ProtocolKind) -> Bytes>(
        &self,
        channel: &str,
        frames: &PushFrames<F>,
        join_leave_only: bool,
    ) -> usize {
        let shard = self.channels[self.shard(channel)].read();
        let Some(subs) = shard.get(channel) else {
            return 0;
        };
        let mut n = 0;
        for s in subs.values() {
            if join_leave_only && !s.join_leave {
                continue;
            }
            s.handle.outbox.push_frame(frames.get(s.proto).clone());
            n += 1;
        }
        n
    }

    /// [`Hub::broadcast`] of a publication whose data is not JSON: only to
    /// subscribers whose encoding carries bytes (protobuf). A separate loop
    /// so the usual path pays nothing for the check.
    pub fn broadcast_binary<F: Fn(ProtocolKind) -> Bytes>(
        &self,
        channel: &str,
        frames: &PushFrames<F>,
    ) -> usize {
        let shard = self.channels[self.shard(channel)].read();
        let Some(subs) = shard.get(channel) else {
            return 0;
        };
        let mut n = 0;
        for s in subs.values().filter(|s| s.proto.is_binary()) {
            s.handle.outbox.push_frame(frames.get(s.proto).clone());
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: &str, user: &str) -> Arc<ClientHandle> {
        ClientHandle::detached(id, user, 1 << 20)
    }

    fn ids(v: &[Arc<ClientHandle>]) -> Vec<String> {
        let mut out: Vec<String> = v.iter().map(|h| h.id.to_string()).collect();
        out.sort();
        out
    }

    #[test]
    fn a_token_id_held_twice_needs_two_releases() {
        // Connection token and a subscription token with the same jti: the
        // subscription ending must not forget the connection (conformance
        // issue item 12).
        let hub = Hub::new();
        let a = handle("a", "u");
        hub.add_token("J", &a);
        hub.add_token("J", &a);
        hub.remove_token("J", &a);
        assert_eq!(ids(&hub.token_connections("J")), ["a"]);
        hub.remove_token("J", &a);
        assert!(hub.token_connections("J").is_empty());
        // Two connections share a jti; one leaving keeps the other.
        let b = handle("b", "u");
        hub.add_token("K", &a);
        hub.add_token("K", &b);
        hub.remove_token("K", &a);
        assert_eq!(ids(&hub.token_connections("K")), ["b"]);
        // Removing a hold that was never added changes nothing.
        hub.remove_token("K", &a);
        assert_eq!(ids(&hub.token_connections("K")), ["b"]);
    }

    #[test]
    fn user_index_follows_connections() {
        let hub = Hub::new();
        let (a, b, c) = (handle("a", "u"), handle("b", "u"), handle("c", "v"));
        assert_eq!(hub.add_client(&a), 1);
        assert_eq!(hub.add_client(&b), 2);
        hub.add_client(&c);
        assert_eq!(ids(&hub.user_connections("u")), ["a", "b"]);
        assert_eq!((hub.num_clients(), hub.num_users()), (3, 2));
        hub.remove_client(&a);
        hub.remove_client(&a); // twice: counted once
        assert_eq!(ids(&hub.user_connections("u")), ["b"]);
        assert_eq!(hub.num_clients(), 2);
        hub.remove_client(&b);
        assert!(hub.user_connections("u").is_empty());
        assert_eq!((hub.num_clients(), hub.num_users()), (1, 1));
    }

    #[test]
    fn channel_index_and_broadcast() {
        let hub = Hub::new();
        let (a, b) = (handle("a", "u"), handle("b", "v"));
        let sub = |h: &Arc<ClientHandle>, join_leave| Subscriber {
            handle: h.clone(),
            join_leave,
            proto: ProtocolKind::Json,
        };
        assert!(hub.subscribe("ch", sub(&a, false)), "first subscriber");
        assert!(!hub.subscribe("ch", sub(&b, true)));
        assert!(
            !hub.subscribe("ch", sub(&b, true)),
            "re-subscribe counted once"
        );
        assert_eq!(hub.num_subs(), 2);
        let encoded = std::cell::Cell::new(0);
        let frames = PushFrames::new(|_| {
            encoded.set(encoded.get() + 1);
            Bytes::from_static(b"x")
        });
        assert_eq!(hub.broadcast("ch", &frames, false), 2);
        assert_eq!(
            hub.broadcast("ch", &frames, true),
            1,
            "join/leave only to b"
        );
        assert_eq!(encoded.get(), 1, "encoded once for all subscribers");
        assert!(!hub.unsubscribe("ch", "a"));
        assert!(hub.unsubscribe("ch", "b"), "last subscriber gone");
        assert_eq!((hub.num_subs(), hub.num_channels()), (0, 0));
        assert_eq!(hub.broadcast("ch", &frames, false), 0);
    }
}
