//! A sharded hash table tuned for the connect-path checks: the key is
//! hashed once, and that one hash picks the shard (from bits the table does
//! not use) and the bucket; an empty table is answered without touching a
//! lock. Readers take a shard's read lock for a single probe, so concurrent
//! connects share nothing but the lock word of the shard they hit.

use hashbrown::{Equivalent, HashTable};
use parking_lot::RwLock;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicUsize, Ordering};

const SHARDS: usize = 64;

/// Key → value, in 64 shards.
pub(super) struct Sharded<K, V> {
    hasher: foldhash::fast::RandomState,
    shards: Vec<RwLock<HashTable<(K, V)>>>,
    len: AtomicUsize,
}

impl<K: Hash + Eq + Clone + Ord, V: Copy> Sharded<K, V> {
    pub(super) fn new() -> Self {
        Sharded {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// The hash and the shard it selects. hashbrown uses the low bits for
    /// the bucket and the top 7 for its control bytes, so the shard comes
    /// from bits 32-37, which neither uses for tables under 2^32 buckets.
    fn locate<Q: Hash + ?Sized>(&self, q: &Q) -> (u64, &RwLock<HashTable<(K, V)>>) {
        let h = self.hasher.hash_one(q);
        (h, &self.shards[((h >> 32) as usize) % SHARDS])
    }

    pub(super) fn get<Q: Hash + Equivalent<K> + ?Sized>(&self, q: &Q) -> Option<V> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None; // the common case: nothing stored, no lock touched
        }
        let (h, shard) = self.locate(q);
        shard
            .read()
            .find(h, |(k, _)| q.equivalent(k))
            .map(|(_, v)| *v)
    }

    pub(super) fn insert(&self, k: K, v: V, merge: impl FnOnce(V, V) -> V) {
        let (h, shard) = self.locate(&k);
        let mut t = shard.write();
        if let Some((_, old)) = t.find_mut(h, |(x, _)| *x == k) {
            *old = merge(*old, v);
            return;
        }
        let hasher = &self.hasher;
        t.insert_unique(h, (k, v), |(x, _)| hasher.hash_one(x));
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes the entry if `pred` accepts it; `None` if there was none.
    pub(super) fn remove_if<Q: Hash + Equivalent<K> + ?Sized>(
        &self,
        q: &Q,
        pred: impl FnOnce(&V) -> bool,
    ) -> Option<bool> {
        let (h, shard) = self.locate(q);
        let removed = match shard.write().find_entry(h, |(k, _)| q.equivalent(k)) {
            Ok(e) if pred(&e.get().1) => {
                e.remove();
                true
            }
            Ok(_) => false,
            Err(_) => return None,
        };
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        Some(removed)
    }

    /// Calls `f` with every entry, one shard read-locked at a time.
    pub(super) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        for s in &self.shards {
            for (k, v) in s.read().iter() {
                f(k, v);
            }
        }
    }

    pub(super) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> usize {
        let mut dropped = 0;
        for s in &self.shards {
            let mut t = s.write();
            let before = t.len();
            t.retain(|(k, v)| keep(k, v));
            dropped += before - t.len();
        }
        self.len.fetch_sub(dropped, Ordering::Relaxed);
        dropped
    }

    /// Entries after `after` in key order, at most `limit`, and whether more remain.
    pub(super) fn list(
        &self,
        after: Option<&K>,
        limit: usize,
        keep: impl Fn(&K, &V) -> bool,
    ) -> (Vec<(K, V)>, bool) {
        let mut all: Vec<(K, V)> = Vec::new();
        for s in &self.shards {
            all.extend(
                s.read()
                    .iter()
                    .filter(|(k, v)| keep(k, v) && after.is_none_or(|a| k > a))
                    .cloned(),
            );
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let more = all.len() > limit;
        all.truncate(limit);
        (all, more)
    }

    pub(super) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}
