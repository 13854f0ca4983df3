//! Where each protective feature keeps its entries beyond this process
//! (`user_block.storage_type`, `token_revoke.storage_type`,
//! `user_tokens_invalidate.storage_type`; docs/persistence.md). Every node
//! checks its in-memory snapshot ([`super::Protect`]) only; a store is
//! written before a change is applied, so a change the store did not take
//! is never in effect anywhere.
//!
//! * `memory`: the snapshot *is* the data; writing is nothing to do (the
//!   shape of svix's no-op cache backend). Gone on restart.
//! * `redis` (`redis.rs`): one hash, one expiry index and a version counter
//!   per feature on exactly one Redis; writes are one Lua script that
//!   merges, bumps the version and publishes the change.
//! * `database` (`postgres.rs`): one table per feature in PostgreSQL,
//!   migrated at start; writes are one transaction that merges, bumps the
//!   version and `NOTIFY`s the change.
//!
//! Other nodes hear about a change at once through the store's
//! notifications, which carry the feature's version, and repair anything
//! a lost notification missed by reloading when the store's version is not
//! the one heard (node `protect_sync`).

mod postgres;
mod redis;

pub use self::postgres::PgStore;
pub use self::redis::RedisStore;
use super::Kind;
use super::change::{Change, Op, split_channel_key};
pub use crate::node::error::StoreError;
use std::sync::Arc;

/// A protective feature's store.
#[derive(Clone)]
pub enum Store {
    /// No persistence: entries live in each node's memory only and are
    /// gone on restart (Centrifugo PRO's default).
    Memory,
    /// One Redis (never shards: adding a shard would lose entries).
    Redis(Arc<RedisStore>),
    /// PostgreSQL (`database.postgresql.dsn`).
    Postgres(Arc<PgStore>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Store::Memory => "Store::Memory",
            Store::Redis(_) => "Store::Redis",
            Store::Postgres(_) => "Store::Postgres",
        })
    }
}

/// A change heard from the store (another node's, or this node's own).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    /// Id of the node that made the change.
    pub node: String,
    /// The change.
    pub change: Change,
    /// The feature's version after this change (the store adds it), so a
    /// node that heard every change in order knows it missed nothing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// What a store listener reports.
#[derive(Debug)]
pub enum Heard {
    /// A change.
    Change(Notice),
    /// The listener (re)connected: changes may have been missed meanwhile.
    Connected,
}

/// One stored entry, as both stores keep it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Table key: user id, token id, or a channel key for invalidations.
    #[serde(skip)]
    pub key: String,
    /// Unix ms of the newest change that made it.
    #[serde(rename = "c")]
    pub created_ms: i64,
    /// Unix seconds after which it stops applying (0 = never).
    #[serde(rename = "e")]
    pub expire_at: i64,
    /// Invalidation cut-off, Unix seconds.
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<i64>,
    /// Audit reason.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A removal marker, kept for an hour so that an older change written
    /// late cannot bring the entry back (never loaded as an entry).
    #[serde(
        rename = "x",
        default,
        skip_serializing_if = "std::ops::Not::not",
        with = "flag"
    )]
    pub removed: bool,
}

/// `"x":1` in the stored JSON (written by the Redis script) as a bool.
mod flag {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(u8::from(*v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(u8::deserialize(d)? != 0)
    }
}

impl Record {
    /// The entry a change writes (`None` for removals).
    pub fn of(change: &Change) -> Option<Record> {
        let key = change.key().into_owned();
        let at = change.at_ms;
        match &change.op {
            Op::Block {
                expire_at, reason, ..
            }
            | Op::Revoke {
                expire_at, reason, ..
            } => Some(Record {
                key,
                created_ms: at,
                expire_at: *expire_at,
                issued_before: None,
                reason: reason.clone(),
                removed: false,
            }),
            Op::Invalidate {
                issued_before,
                expire_at,
                reason,
                ..
            } => Some(Record {
                key,
                created_ms: at,
                expire_at: *expire_at,
                issued_before: Some(*issued_before),
                reason: reason.clone(),
                removed: false,
            }),
            Op::Unblock { .. } | Op::Unrevoke { .. } | Op::ClearInvalidation { .. } => None,
        }
    }

    /// The change that re-creates this entry on a node.
    pub fn into_change(self, kind: Kind) -> Change {
        let op = match kind {
            Kind::Block => Op::Block {
                user: self.key,
                expire_at: self.expire_at,
                reason: self.reason,
            },
            Kind::Revoke => Op::Revoke {
                uid: self.key,
                expire_at: self.expire_at,
                reason: self.reason,
            },
            Kind::Invalidate => {
                let (user, channel) = match split_channel_key(&self.key) {
                    Some((u, ch)) => (u.to_string(), Some(ch.to_string())),
                    None => (self.key, None),
                };
                Op::Invalidate {
                    user,
                    channel,
                    issued_before: self.issued_before.unwrap_or(0),
                    expire_at: self.expire_at,
                    reason: self.reason,
                }
            }
        };
        Change {
            at_ms: self.created_ms,
            op,
        }
    }
}

impl Store {
    /// True for stores that outlive the process.
    pub fn is_persistent(&self) -> bool {
        !matches!(self, Store::Memory)
    }

    /// Persists one change and announces it to the other nodes; `Ok` only
    /// once the store has it. `node` is this node's id (so it can skip its
    /// own announcements).
    pub async fn write(&self, kind: Kind, change: &Change, node: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory => Ok(()), // the in-memory snapshot is the store
            Store::Redis(r) => r.write(kind, change, node).await,
            Store::Postgres(p) => p.write(kind, change, node).await,
        }
    }

    /// Every unexpired entry of `kind`, as changes.
    pub async fn load(&self, kind: Kind) -> Result<Vec<Change>, StoreError> {
        let mut out = Vec::new();
        self.load_each(kind, &mut |c| out.push(c)).await?;
        Ok(out)
    }

    /// Calls `each` with every unexpired entry of `kind`, as it is read
    /// (page by page from Redis, row by row from PostgreSQL): loading a
    /// large table then needs no second copy of it.
    pub async fn load_each(
        &self,
        kind: Kind,
        each: &mut (dyn FnMut(Change) + Send),
    ) -> Result<(), StoreError> {
        let now = crate::auth::now();
        let mut records = |r: Record| each(r.into_change(kind));
        match self {
            Store::Memory => Ok(()),
            Store::Redis(r) => r.load_each(kind, now, &mut records).await,
            Store::Postgres(p) => p.load_each(kind, now, &mut records).await,
        }
    }

    /// The feature's change counter: it moves with every write, so an
    /// unchanged value means nothing was missed.
    pub async fn version(&self, kind: Kind) -> Result<i64, StoreError> {
        match self {
            Store::Memory => Ok(0),
            Store::Redis(r) => r.version(kind).await,
            Store::Postgres(p) => p.version(kind).await,
        }
    }

    /// Deletes entries whose `expire_at` passed; returns how many.
    pub async fn purge_expired(&self, kind: Kind) -> Result<u64, StoreError> {
        let now = crate::auth::now();
        match self {
            Store::Memory => Ok(0),
            Store::Redis(r) => r.purge_expired(kind, now).await,
            Store::Postgres(p) => p.purge_expired(kind, now).await,
        }
    }
}

/// A store failure with its cause, for logs and the API's 100. Secrets
/// never reach these messages: drivers' errors name hosts, not passwords.
pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}
