//! Protective data: blocked users, revoked token ids (`jti`) and per-user
//! token invalidation (`iat` before a time) — Centrifugo PRO's user blocking
//! and token revocation (protocol.md §2.5, §5.5, §8; the seeds).
//!
//! Every node keeps the whole set in memory, sharded 64 ways behind
//! read-mostly locks, so the checks on the connect path are a hash look-up
//! with no allocation. Entries with `expire_at` stop applying the moment it
//! passes (checked on every look-up) and are dropped by a periodic sweep.
//!
//! Every change arrives as a [`Change`] and goes through [`Protect::apply`],
//! which resolves late and repeated deliveries by the change's time.
//! This module only stores and answers; `node::protect` writes changes to
//! the feature's [`Store`] and applies them to live connections.

pub mod change;
pub mod key;
pub mod store;
mod table;

pub use change::{Change, Op};
pub use store::Store;

use key::{Key, KeyRef};
use serde::Serialize;
use table::Sharded;

/// Stored facts about one entry. 16 bytes: the audit `reason`, rare and
/// possibly long, lives in a side table so it costs nothing when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Unix seconds after which the entry no longer applies (0 = never).
    pub expire_at: i64,
    /// Unix milliseconds of the newest change that made it (its version;
    /// listed as `created_at` in seconds).
    pub created_ms: i64,
}

/// How long an unblock or undo is remembered, so that an older change
/// delivered after it cannot bring the entry back. A delivery later than
/// this is repaired by the next full reload of a persistent store.
const TOMBSTONE_TTL_MS: i64 = 3_600_000;

impl Entry {
    fn live(&self, now: i64) -> bool {
        self.expire_at == 0 || self.expire_at > now
    }
}

/// A user's token invalidation: tokens with `iat < issued_before` are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalidation {
    /// Cut-off, Unix seconds.
    pub issued_before: i64,
    /// Expiry and creation.
    pub entry: Entry,
}

/// Which feature (and table) an entry or change belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `block_user`.
    Block,
    /// `revoke_token`.
    Revoke,
    /// `invalidate_user_tokens`.
    Invalidate,
}

impl Kind {
    /// The three kinds.
    pub const ALL: [Kind; 3] = [Kind::Block, Kind::Revoke, Kind::Invalidate];

    /// The feature's config section and store name (`user_block`,
    /// `token_revoke`, `user_tokens_invalidate`).
    pub fn feature(self) -> &'static str {
        match self {
            Kind::Block => "user_block",
            Kind::Revoke => "token_revoke",
            Kind::Invalidate => "user_tokens_invalidate",
        }
    }
}

/// One listed entry (inspect APIs).
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// User id (blocks, invalidations) or token id (revocations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Token id (revocations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Channel (invalidations of one channel's subscription tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Cut-off (invalidations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<i64>,
    /// Expiry, Unix seconds (0 = never).
    pub expire_at: i64,
    /// Creation, Unix seconds.
    pub created_at: i64,
    /// Audit reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The protective sets.
pub struct Protect {
    blocks: Sharded<Key, Entry>,
    revoked: Sharded<Key, Entry>,
    invalidations: Sharded<Key, Invalidation>,
    reasons: parking_lot::Mutex<std::collections::HashMap<(Kind, String), String>>,
    /// Keys removed by an unblock or undo, with the removal's time (ms).
    tombstones: parking_lot::Mutex<std::collections::HashMap<(Kind, String), i64>>,
}

impl Default for Protect {
    fn default() -> Self {
        Self::new()
    }
}

/// What a token check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVerdict {
    /// Fine.
    Valid,
    /// Its `jti` was revoked.
    Revoked,
    /// Its `iat` is before the user's invalidation time.
    Invalidated,
}

impl Protect {
    /// Empty sets.
    pub fn new() -> Self {
        Protect {
            blocks: Sharded::new(),
            revoked: Sharded::new(),
            invalidations: Sharded::new(),
            reasons: Default::default(),
            tombstones: Default::default(),
        }
    }

    /// Is `user` blocked at `now`? Anonymous users are never blocked.
    pub fn is_blocked(&self, user: &str, now: i64) -> bool {
        !user.is_empty()
            && self
                .blocks
                .get(&KeyRef::new(user))
                .is_some_and(|e| e.live(now))
    }

    /// Checks a token of `user` with optional `jti` and `iat` (0 = none).
    pub fn check_token(&self, user: &str, jti: Option<&str>, iat: i64, now: i64) -> TokenVerdict {
        if let Some(j) = jti
            && !j.is_empty()
            && self
                .revoked
                .get(&KeyRef::new(j))
                .is_some_and(|e| e.live(now))
        {
            return TokenVerdict::Revoked;
        }
        if iat > 0 && self.invalidated(user, iat, now) {
            return TokenVerdict::Invalidated;
        }
        TokenVerdict::Valid
    }

    /// Checks a subscription token for `channel`: its `jti` against the
    /// revocations, its `iat` against the user's invalidation of that
    /// channel (a user-wide invalidation concerns connection tokens only).
    pub fn check_sub_token(
        &self,
        user: &str,
        channel: &str,
        jti: Option<&str>,
        iat: i64,
        now: i64,
    ) -> TokenVerdict {
        match self.check_token(user, jti, 0, now) {
            TokenVerdict::Valid if iat > 0 && self.invalidations.len() > 0 => {
                if self.invalidated(&change::channel_key(user, channel), iat, now) {
                    TokenVerdict::Invalidated
                } else {
                    TokenVerdict::Valid
                }
            }
            v => v,
        }
    }

    fn invalidated(&self, key: &str, iat: i64, now: i64) -> bool {
        self.invalidations
            .get(&KeyRef::new(key))
            .is_some_and(|inv| inv.entry.live(now) && iat < inv.issued_before)
    }

    fn set_reason(&self, kind: Kind, key: &str, reason: Option<&str>) {
        // A repeated call without a reason keeps the earlier audit note.
        if let Some(text) = reason.filter(|s| !s.is_empty()) {
            self.reasons
                .lock()
                .insert((kind, key.to_string()), text.to_string());
        }
    }

    fn reason(&self, kind: Kind, key: &str) -> Option<String> {
        self.reasons.lock().get(&(kind, key.to_string())).cloned()
    }

    /// Applies one change; returns false when it was older than what the key
    /// already reflects, or an addition already applied (and so changed
    /// nothing). Merge rules, for changes
    /// in time order:
    /// * a block replaces the user's block (expiry and reason);
    /// * a revocation keeps the later expiry (0 wins: never expire);
    /// * an invalidation only moves the cut-off forward and the expiry
    ///   later, so an earlier call's protection is never silently weakened;
    /// * unblock and the undos remove the entry.
    pub fn apply(&self, c: &Change) -> bool {
        let kind = c.kind();
        let key = c.key();
        if self
            .tombstones
            .lock()
            .get(&(kind, key.to_string()))
            .is_some_and(|t| *t > c.at_ms)
        {
            return false; // undone by a newer change
        }
        let at = c.at_ms;
        let now = at.div_euclid(1000);
        // The same addition again (a store echoing this node's own write, a
        // notification racing the write that made it): nothing to do.
        if matches!(
            c.op,
            Op::Block { .. } | Op::Revoke { .. } | Op::Invalidate { .. }
        ) && self.created_ms(kind, &key) == Some(at)
        {
            return false;
        }
        let mut fresh = true;
        match &c.op {
            Op::Block {
                user,
                expire_at,
                reason,
            } => {
                let new = Entry {
                    expire_at: *expire_at,
                    created_ms: at,
                };
                self.blocks
                    .insert(KeyRef::new(user).to_key(), new, |old, new| {
                        if old.created_ms > new.created_ms {
                            fresh = false;
                            old
                        } else {
                            new
                        }
                    });
                if fresh {
                    self.set_reason(kind, user, reason.as_deref());
                }
            }
            Op::Revoke {
                uid,
                expire_at,
                reason,
            } => {
                let new = Entry {
                    expire_at: *expire_at,
                    created_ms: at,
                };
                self.revoked
                    .insert(KeyRef::new(uid).to_key(), new, |old, new| Entry {
                        expire_at: later(old.expire_at, new.expire_at),
                        created_ms: old.created_ms.max(new.created_ms),
                    });
                self.set_reason(kind, uid, reason.as_deref());
            }
            Op::Invalidate {
                issued_before,
                expire_at,
                reason,
                ..
            } => {
                let new = Invalidation {
                    issued_before: *issued_before,
                    entry: Entry {
                        expire_at: *expire_at,
                        created_ms: at,
                    },
                };
                self.invalidations
                    .insert(KeyRef::new(&key).to_key(), new, |old, new| {
                        if !old.entry.live(now) {
                            return new;
                        }
                        Invalidation {
                            issued_before: old.issued_before.max(new.issued_before),
                            entry: Entry {
                                expire_at: later(old.entry.expire_at, new.entry.expire_at),
                                created_ms: old.entry.created_ms.max(new.entry.created_ms),
                            },
                        }
                    });
                self.set_reason(kind, &key, reason.as_deref());
            }
            Op::Unblock { user } => {
                fresh = self.undo(kind, user, at, |k, stale| {
                    self.blocks.remove_if(k, |e| !stale(e.created_ms))
                });
            }
            Op::Unrevoke { uid } => {
                fresh = self.undo(kind, uid, at, |k, stale| {
                    self.revoked.remove_if(k, |e| !stale(e.created_ms))
                });
            }
            Op::ClearInvalidation { .. } => {
                fresh = self.undo(kind, &key, at, |k, stale| {
                    self.invalidations
                        .remove_if(k, |i| !stale(i.entry.created_ms))
                });
            }
        }
        fresh
    }

    /// Removes `key` unless a newer change made it, and remembers the
    /// removal; false if the entry was newer than the undo.
    fn undo(
        &self,
        kind: Kind,
        key: &str,
        at: i64,
        remove: impl FnOnce(&KeyRef<'_>, &dyn Fn(i64) -> bool) -> Option<bool>,
    ) -> bool {
        let stale = |created: i64| created > at;
        if remove(&KeyRef::new(key), &stale) == Some(false) {
            return false;
        }
        self.reasons.lock().remove(&(kind, key.to_string()));
        let mut t = self.tombstones.lock();
        let slot = t.entry((kind, key.to_string())).or_insert(at);
        *slot = (*slot).max(at);
        true
    }

    /// Blocks a user (a [`Change`] made at `now`, Unix seconds).
    pub fn block(&self, user: &str, expire_at: i64, reason: Option<&str>, now: i64) {
        self.apply(&Change {
            at_ms: now * 1000,
            op: Op::Block {
                user: user.into(),
                expire_at,
                reason: reason.map(Into::into),
            },
        });
    }

    /// Revokes a token id (a [`Change`] made at `now`, Unix seconds).
    pub fn revoke(&self, jti: &str, expire_at: i64, reason: Option<&str>, now: i64) {
        self.apply(&Change {
            at_ms: now * 1000,
            op: Op::Revoke {
                uid: jti.into(),
                expire_at,
                reason: reason.map(Into::into),
            },
        });
    }

    /// Invalidates a user's tokens issued before `issued_before` (a
    /// [`Change`] made at `now`, Unix seconds).
    pub fn invalidate(
        &self,
        user: &str,
        issued_before: i64,
        expire_at: i64,
        reason: Option<&str>,
        now: i64,
    ) {
        self.apply(&Change {
            at_ms: now * 1000,
            op: Op::Invalidate {
                user: user.into(),
                channel: None,
                issued_before,
                expire_at,
                reason: reason.map(Into::into),
            },
        });
    }

    /// Drops expired entries; returns how many.
    pub fn sweep(&self, now: i64) -> usize {
        let mut gone = Vec::new();
        let mut n = self.blocks.retain(|k, e| {
            e.live(now) || {
                gone.push((Kind::Block, k.to_string_lossless()));
                false
            }
        });
        n += self.revoked.retain(|k, e| {
            e.live(now) || {
                gone.push((Kind::Revoke, k.to_string_lossless()));
                false
            }
        });
        n += self.invalidations.retain(|k, i| {
            i.entry.live(now) || {
                gone.push((Kind::Invalidate, k.to_string_lossless()));
                false
            }
        });
        if !gone.is_empty() {
            let mut r = self.reasons.lock();
            for g in gone {
                r.remove(&g);
            }
        }
        let cutoff = now * 1000 - TOMBSTONE_TTL_MS;
        self.tombstones.lock().retain(|_, at| *at > cutoff);
        n
    }

    /// Live block of one user.
    pub fn block_status(&self, user: &str, now: i64) -> Option<Listed> {
        self.blocks
            .get(&KeyRef::new(user))
            .filter(|e| e.live(now))
            .map(|e| Listed {
                user: Some(user.to_string()),
                uid: None,
                channel: None,
                issued_before: None,
                expire_at: e.expire_at,
                created_at: e.created_ms.div_euclid(1000),
                reason: self.reason(Kind::Block, user),
            })
    }

    /// Live blocks, ordered by user, after `cursor`.
    pub fn list_blocks(&self, cursor: Option<&str>, limit: usize, now: i64) -> (Vec<Listed>, bool) {
        let after = cursor.map(|c| KeyRef::new(c).to_key());
        let (items, more) = self.blocks.list(after.as_ref(), limit, |_, e| e.live(now));
        let out = items
            .into_iter()
            .map(|(k, e)| (k.to_string_lossless(), e))
            .map(|(u, e)| Listed {
                reason: self.reason(Kind::Block, &u),
                user: Some(u),
                uid: None,
                channel: None,
                issued_before: None,
                expire_at: e.expire_at,
                created_at: e.created_ms.div_euclid(1000),
            })
            .collect();
        (out, more)
    }

    /// Live revocations, ordered by token id, after `cursor`.
    pub fn list_revoked(
        &self,
        cursor: Option<&str>,
        limit: usize,
        now: i64,
    ) -> (Vec<Listed>, bool) {
        let after = cursor.map(|c| KeyRef::new(c).to_key());
        let (items, more) = self.revoked.list(after.as_ref(), limit, |_, e| e.live(now));
        let out = items
            .into_iter()
            .map(|(k, e)| {
                let uid = k.to_string_lossless();
                Listed {
                    reason: self.reason(Kind::Revoke, &uid),
                    user: None,
                    uid: Some(uid),
                    channel: None,
                    issued_before: None,
                    expire_at: e.expire_at,
                    created_at: e.created_ms.div_euclid(1000),
                }
            })
            .collect();
        (out, more)
    }

    /// Live invalidations (of connection tokens, and of channels'
    /// subscription tokens), one user's or all, in table-key order.
    pub fn list_invalidations(&self, user: Option<&str>, now: i64) -> Vec<Listed> {
        self.invalidations
            .list(None, usize::MAX, |_, i| i.entry.live(now))
            .0
            .into_iter()
            .filter_map(|(k, i)| {
                let key = k.to_string_lossless();
                let (u, channel) = match change::split_channel_key(&key) {
                    Some((u, ch)) => (u.to_string(), Some(ch.to_string())),
                    None => (key.clone(), None),
                };
                if user.is_some_and(|want| want != u) {
                    return None;
                }
                Some(Listed {
                    reason: self.reason(Kind::Invalidate, &key),
                    user: Some(u),
                    uid: None,
                    channel,
                    issued_before: Some(i.issued_before),
                    expire_at: i.entry.expire_at,
                    created_at: i.entry.created_ms.div_euclid(1000),
                })
            })
            .collect()
    }

    /// Makes the `kind` table match a store's full set of entries
    /// (`loaded`, read from the store starting at `snapshot_ms`): applies
    /// every loaded entry (newer wins, as any change), and removes entries
    /// the store no longer has, unless they were made after the snapshot
    /// began (their write may not be in it). Returns the changes that took
    /// effect, for the node to apply to live connections.
    pub fn reconcile(&self, kind: Kind, loaded: Vec<Change>, snapshot_ms: i64) -> Vec<Change> {
        let keys: std::collections::HashSet<String> =
            loaded.iter().map(|c| c.key().into_owned()).collect();
        // Entries this node already has, as stored, need nothing.
        let mut effective: Vec<Change> = loaded
            .into_iter()
            .filter(|c| self.created_ms(kind, &c.key()) != Some(c.at_ms) && self.apply(c))
            .collect();
        let mut gone = Vec::new();
        let mut collect = |k: &Key, created_ms: i64| {
            if created_ms < snapshot_ms {
                let key = k.to_string_lossless();
                if !keys.contains(&key) {
                    gone.push(key);
                }
            }
        };
        match kind {
            Kind::Block => self.blocks.for_each(|k, e| collect(k, e.created_ms)),
            Kind::Revoke => self.revoked.for_each(|k, e| collect(k, e.created_ms)),
            Kind::Invalidate => self
                .invalidations
                .for_each(|k, i| collect(k, i.entry.created_ms)),
        }
        for key in gone {
            let op = match kind {
                Kind::Block => Op::Unblock { user: key },
                Kind::Revoke => Op::Unrevoke { uid: key },
                Kind::Invalidate => match change::split_channel_key(&key) {
                    Some((u, ch)) => Op::ClearInvalidation {
                        user: u.to_string(),
                        channel: Some(ch.to_string()),
                    },
                    None => Op::ClearInvalidation {
                        user: key,
                        channel: None,
                    },
                },
            };
            let c = Change {
                at_ms: snapshot_ms,
                op,
            };
            if self.apply(&c) {
                effective.push(c);
            }
        }
        effective
    }

    /// Everything the sets hold, as changes that rebuild it elsewhere:
    /// every entry (at its version) and every remembered removal. A node
    /// that applies another's snapshot ends with the newer of the two for
    /// each key (the cluster's catch-up with memory storage, docs/cluster.md).
    pub fn snapshot(&self) -> Vec<Change> {
        let mut out = Vec::new();
        self.blocks.for_each(|k, e| {
            let user = k.to_string_lossless();
            out.push(Change {
                at_ms: e.created_ms,
                op: Op::Block {
                    reason: self.reason(Kind::Block, &user),
                    user,
                    expire_at: e.expire_at,
                },
            });
        });
        self.revoked.for_each(|k, e| {
            let uid = k.to_string_lossless();
            out.push(Change {
                at_ms: e.created_ms,
                op: Op::Revoke {
                    reason: self.reason(Kind::Revoke, &uid),
                    uid,
                    expire_at: e.expire_at,
                },
            });
        });
        self.invalidations.for_each(|k, i| {
            let key = k.to_string_lossless();
            let (user, channel) = match change::split_channel_key(&key) {
                Some((u, ch)) => (u.to_string(), Some(ch.to_string())),
                None => (key.clone(), None),
            };
            out.push(Change {
                at_ms: i.entry.created_ms,
                op: Op::Invalidate {
                    reason: self.reason(Kind::Invalidate, &key),
                    user,
                    channel,
                    issued_before: i.issued_before,
                    expire_at: i.entry.expire_at,
                },
            });
        });
        for ((kind, key), at) in self.tombstones.lock().iter() {
            let op = match kind {
                Kind::Block => Op::Unblock { user: key.clone() },
                Kind::Revoke => Op::Unrevoke { uid: key.clone() },
                Kind::Invalidate => match change::split_channel_key(key) {
                    Some((u, ch)) => Op::ClearInvalidation {
                        user: u.to_string(),
                        channel: Some(ch.to_string()),
                    },
                    None => Op::ClearInvalidation {
                        user: key.clone(),
                        channel: None,
                    },
                },
            };
            out.push(Change { at_ms: *at, op });
        }
        out
    }

    /// The version (`created_ms`) of an entry, if present.
    fn created_ms(&self, kind: Kind, key: &str) -> Option<i64> {
        let k = KeyRef::new(key);
        match kind {
            Kind::Block => self.blocks.get(&k).map(|e| e.created_ms),
            Kind::Revoke => self.revoked.get(&k).map(|e| e.created_ms),
            Kind::Invalidate => self.invalidations.get(&k).map(|i| i.entry.created_ms),
        }
    }

    /// Sizes of the three tables (including not yet swept entries).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.blocks.len(),
            self.revoked.len(),
            self.invalidations.len(),
        )
    }
}

fn later(a: i64, b: i64) -> i64 {
    if a == 0 || b == 0 { 0 } else { a.max(b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_expire_and_unblock() {
        let p = Protect::new();
        assert!(!p.is_blocked("42", 100));
        p.block("42", 200, Some("spam"), 100);
        assert!(p.is_blocked("42", 150));
        assert!(!p.is_blocked("43", 150));
        assert!(
            !p.is_blocked("42", 200),
            "expire_at passed: no longer applies"
        );
        assert_eq!(
            p.block_status("42", 150).unwrap().reason.as_deref(),
            Some("spam")
        );
        assert!(p.apply(&Change {
            at_ms: 150_000,
            op: Op::Unblock { user: "42".into() }
        }));
        assert!(!p.is_blocked("42", 150));
        p.block("", 0, None, 1);
        assert!(!p.is_blocked("", 2), "anonymous is never blocked");
    }

    #[test]
    fn revocation_and_invalidation() {
        let p = Protect::new();
        p.revoke("t1", 0, None, 10);
        assert_eq!(p.check_token("u", Some("t1"), 5, 20), TokenVerdict::Revoked);
        assert_eq!(p.check_token("u", Some("t2"), 5, 20), TokenVerdict::Valid);
        p.invalidate("u", 100, 0, None, 10);
        assert_eq!(
            p.check_token("u", Some("t2"), 99, 20),
            TokenVerdict::Invalidated
        );
        assert_eq!(p.check_token("u", Some("t2"), 100, 20), TokenVerdict::Valid);
        assert_eq!(
            p.check_token("u", None, 0, 20),
            TokenVerdict::Valid,
            "no iat: not affected"
        );
        assert_eq!(p.check_token("v", None, 1, 20), TokenVerdict::Valid);
        // A later call with an earlier cut-off does not weaken the first one.
        p.invalidate("u", 50, 0, None, 11);
        assert_eq!(p.check_token("u", None, 99, 20), TokenVerdict::Invalidated);
    }

    #[test]
    fn sweep_drops_expired_and_lists_page() {
        let p = Protect::new();
        for i in 0..10 {
            p.block(&format!("u{i}"), if i < 5 { 50 } else { 0 }, None, 1);
        }
        assert_eq!(p.sweep(60), 5);
        let (page, more) = p.list_blocks(None, 3, 60);
        assert_eq!(page.len(), 3);
        assert!(more);
        let (rest, more) = p.list_blocks(page[2].user.as_deref(), 3, 60);
        assert_eq!(rest.len(), 2);
        assert!(!more);
    }

    fn at(at_ms: i64, op: Op) -> Change {
        Change { at_ms, op }
    }

    fn block(user: &str) -> Op {
        Op::Block {
            user: user.into(),
            expire_at: 0,
            reason: None,
        }
    }

    #[test]
    fn late_and_repeated_changes_never_undo_newer_ones() {
        let p = Protect::new();
        // An unblock overtaken by the block it undoes.
        assert!(p.apply(&at(2_000, Op::Unblock { user: "u".into() })));
        assert!(!p.apply(&at(1_000, block("u"))), "older block is stale");
        assert!(!p.is_blocked("u", 5));
        // A newer block after that unblock applies.
        assert!(p.apply(&at(3_000, block("u"))));
        assert!(p.is_blocked("u", 5));
        // A late unblock older than the block does not lift it.
        assert!(!p.apply(&at(2_500, Op::Unblock { user: "u".into() })));
        assert!(p.is_blocked("u", 5));
        // Duplicates are harmless, and reported as changing nothing.
        assert!(!p.apply(&at(3_000, block("u"))));
        assert!(p.is_blocked("u", 5));
        // A late block with an older time does not replace a newer one's expiry.
        assert!(!p.apply(&at(
            2_900,
            Op::Block {
                user: "u".into(),
                expire_at: 4,
                reason: None
            }
        )));
        assert!(p.is_blocked("u", 5));
    }

    #[test]
    fn undo_of_revocation_and_invalidation() {
        let p = Protect::new();
        p.apply(&at(
            1_000,
            Op::Revoke {
                uid: "j".into(),
                expire_at: 0,
                reason: Some("leak".into()),
            },
        ));
        assert_eq!(p.check_token("u", Some("j"), 0, 5), TokenVerdict::Revoked);
        assert!(p.apply(&at(2_000, Op::Unrevoke { uid: "j".into() })));
        assert_eq!(p.check_token("u", Some("j"), 0, 5), TokenVerdict::Valid);
        assert!(p.list_revoked(None, 10, 5).0.is_empty());
        assert!(!p.apply(&at(
            1_500,
            Op::Revoke {
                uid: "j".into(),
                expire_at: 0,
                reason: None
            }
        )));
        assert_eq!(p.check_token("u", Some("j"), 0, 5), TokenVerdict::Valid);
        p.apply(&at(
            1_000,
            Op::Invalidate {
                user: "u".into(),
                channel: None,
                issued_before: 100,
                expire_at: 0,
                reason: None,
            },
        ));
        assert_eq!(p.check_token("u", None, 50, 5), TokenVerdict::Invalidated);
        assert!(p.apply(&at(
            2_000,
            Op::ClearInvalidation {
                user: "u".into(),
                channel: None
            }
        )));
        assert_eq!(p.check_token("u", None, 50, 5), TokenVerdict::Valid);
        // Tombstones are forgotten after their retention.
        assert_eq!(p.tombstones.lock().len(), 2);
        p.sweep(2 + TOMBSTONE_TTL_MS / 1000);
        assert!(p.tombstones.lock().is_empty());
    }
}
