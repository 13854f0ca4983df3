//! Protective entries in one Redis (docs/persistence.md "Redis layout").
//! Per feature (`user_block`, `token_revoke`, `user_tokens_invalidate`),
//! under the feature's `redis.prefix`:
//!
//! * `<prefix>.protect.<feature>`: hash, key → JSON record
//!   `{"c":created_ms,"e":expire_at,"b":issued_before,"r":reason}`;
//! * `<prefix>.protect.<feature>.expire`: sorted set, key → `expire_at`
//!   (entries that expire), for deleting expired entries by score;
//! * `<prefix>.protect.<feature>.version`: counter bumped by every write;
//! * `<prefix>.protect.<feature>.changes`: pub/sub channel of the changes.
//!
//! A write is one Lua script, so the merge, the version bump and the
//! announcement are atomic. Never sharded: a second address is refused at
//! start (config validation), since moving keys between shards would lose
//! entries.

use super::{Heard, Kind, Notice, Record, StoreError, unavailable};
use crate::config::Redis as RedisCfg;
use crate::protect::change::{Change, Op};
use crate::redis_client::Target;
use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio::sync::mpsc;

/// Stores a change: merge rules as `Protect::apply` (a block or undo older
/// than the stored entry is ignored; a revocation keeps the later expiry;
/// a live invalidation only moves forward), then bumps the version and
/// publishes. A removal leaves a marker (`"x":1`) for an hour (it expires
/// through the sorted set), so a change made before the removal but
/// written after it cannot bring the entry back. Returns the new version,
/// or 0 if the change was stale (then nothing is bumped or announced).
const WRITE: &str = r#"
local function later(a, b)
  if a == 0 or b == 0 then return 0 end
  if a > b then return a end
  return b
end
local function num(n) return string.format('%.0f', n) end
local mode, field, at, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local raw = redis.call('HGET', KEYS[1], field)
local old = nil
if raw then old = cjson.decode(raw) end
if old and old.x and old.c > at then return 0 end
if mode == 'del' then
  if old and old.c > at then return 0 end
  local until_ = now + 3600
  redis.call('HSET', KEYS[1], field, '{"c":' .. num(at) .. ',"e":' .. num(until_) .. ',"x":1}')
  redis.call('ZADD', KEYS[2], until_, field)
else
  if old and old.x then old = nil end
  local c, e, b = at, tonumber(ARGV[5]), tonumber(ARGV[6])
  local r = nil
  if ARGV[7] ~= '' then r = ARGV[8] end
  if old then
    if mode == 'block' then
      if old.c > at then return 0 end
    elseif mode == 'revoke' then
      e = later(old.e, e)
      if old.c > c then c = old.c end
    elseif mode == 'invalidate' then
      if old.e == 0 or old.e > now then
        if old.b and old.b > b then b = old.b end
        e = later(old.e, e)
        if old.c > c then c = old.c end
      end
    end
    if r == nil and old.r then r = old.r end
  end
  local json = '{"c":' .. num(c) .. ',"e":' .. num(e)
  if mode == 'invalidate' then json = json .. ',"b":' .. num(b) end
  if r ~= nil then json = json .. ',"r":' .. cjson.encode(r) end
  json = json .. '}'
  redis.call('HSET', KEYS[1], field, json)
  if e > 0 then
    redis.call('ZADD', KEYS[2], e, field)
  else
    redis.call('ZREM', KEYS[2], field)
  end
end
local v = redis.call('INCR', KEYS[3])
-- The announcement is the JSON notice with the new version added.
redis.call('PUBLISH', KEYS[4], string.sub(ARGV[9], 1, -2) .. ',"version":' .. v .. '}')
return v
"#;

/// Deletes up to 1,000 entries whose `expire_at` is at or before ARGV[1].
const PURGE: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return #gone
"#;

/// One feature's Redis store. Connects lazily (and again after a failure
/// to connect), so a node may start while Redis is down when asked to.
pub struct RedisStore {
    target: Target,
    /// The current connection; it reconnects by itself to the same
    /// address, and is dropped after an error under Sentinel so that the
    /// next use asks for the (possibly new) master.
    conn: parking_lot::Mutex<Option<ConnectionManager>>,
    connect_timeout: Duration,
    prefix: String,
    io_timeout: Duration,
    write: redis::Script,
    purge: redis::Script,
}

impl RedisStore {
    /// A store for a validated section (one address, or Sentinel); no I/O yet.
    pub fn new(cfg: &RedisCfg) -> Result<RedisStore, StoreError> {
        let target = if cfg.sentinel_address.0.is_empty() {
            let addr = cfg.address.0.first().map(String::as_str).unwrap_or("");
            Target::direct(addr, cfg)
        } else {
            let s: Vec<&str> = cfg.sentinel_address.0.iter().map(String::as_str).collect();
            Target::sentinel(&s, cfg)
        }
        .map_err(|e| unavailable("redis", e))?;
        Ok(RedisStore {
            target,
            conn: parking_lot::Mutex::new(None),
            connect_timeout: cfg.connect_timeout.0,
            prefix: cfg.prefix.clone(),
            io_timeout: cfg.io_timeout.0,
            write: redis::Script::new(WRITE),
            purge: redis::Script::new(PURGE),
        })
    }

    /// A client for the Redis to use now (for Sentinel: the current master).
    async fn client(&self) -> Result<redis::Client, StoreError> {
        self.target
            .client(self.connect_timeout + self.io_timeout)
            .await
            .map_err(|e| unavailable("redis", e))
    }

    /// The connection (made on first use, within `connect_timeout`).
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(c) = self.conn.lock().clone() {
            return Ok(c);
        }
        let client = self.client().await?;
        let mcfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.io_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let c = tokio::time::timeout(
            self.connect_timeout + self.io_timeout,
            ConnectionManager::new_with_config(client, mcfg),
        )
        .await
        .map_err(|_| unavailable("redis", "connect timed out"))?
        .map_err(|e| unavailable("redis connect", e))?;
        *self.conn.lock() = Some(c.clone());
        Ok(c)
    }

    fn key(&self, kind: Kind, suffix: &str) -> String {
        format!("{}.protect.{}{suffix}", self.prefix, kind.feature())
    }

    /// Bounds one request by `io_timeout` (the connection manager has its
    /// own response timeout; this also covers reconnect attempts).
    async fn timed<T>(
        &self,
        what: &str,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let r = tokio::time::timeout(self.io_timeout, f)
            .await
            .map_err(|_| unavailable(what, "timed out"))
            .and_then(|r| r.map_err(|e| unavailable(what, e)));
        if r.is_err() && matches!(self.target, Target::Sentinel { .. }) {
            // The master may have moved: ask the Sentinels next time.
            *self.conn.lock() = None;
        }
        r
    }

    pub(super) async fn write(
        &self,
        kind: Kind,
        change: &Change,
        node: &str,
    ) -> Result<(), StoreError> {
        let rec = super::Record::of(change);
        let mode = match (&change.op, kind) {
            (Op::Unblock { .. } | Op::Unrevoke { .. } | Op::ClearInvalidation { .. }, _) => "del",
            (_, Kind::Block) => "block",
            (_, Kind::Revoke) => "revoke",
            (_, Kind::Invalidate) => "invalidate",
        };
        let notice = serde_json::to_string(&Notice {
            node: node.to_string(),
            change: change.clone(),
            version: 0, // dropped by the script, which appends the real one
        })
        .map_err(|e| unavailable("encode change", e))?;
        let (expire_at, issued_before, reason) = match &rec {
            Some(r) => (r.expire_at, r.issued_before.unwrap_or(0), r.reason.clone()),
            None => (0, 0, None),
        };
        let mut inv = self.write.prepare_invoke();
        inv.key(self.key(kind, ""))
            .key(self.key(kind, ".expire"))
            .key(self.key(kind, ".version"))
            .key(self.key(kind, ".changes"))
            .arg(mode)
            .arg(change.key().as_ref())
            .arg(change.at_ms)
            .arg(crate::auth::now())
            .arg(expire_at)
            .arg(issued_before)
            .arg(if reason.is_some() { "1" } else { "" })
            .arg(reason.unwrap_or_default())
            .arg(notice);
        let mut conn = self.conn().await?;
        let _: i64 = self
            .timed("redis write", inv.invoke_async(&mut conn))
            .await?;
        Ok(())
    }

    /// Calls `each` with every live record, a page (2,000) at a time, so
    /// a large table never sits in memory twice. The next page is asked
    /// for before the current one is handed over, so reading and applying
    /// overlap.
    pub(super) async fn load_each(
        &self,
        kind: Kind,
        now: i64,
        each: &mut (dyn FnMut(Record) + Send),
    ) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        let key = self.key(kind, "");
        let mut page = fetch_owned(conn.clone(), key.clone(), 0, self.io_timeout).await?;
        loop {
            let (next, entries) = page;
            // The next page's request goes out first (the connection's own
            // task reads the answer), then this page is applied: reading
            // and applying overlap without a task of their own.
            let ask = async {
                match next {
                    0 => None,
                    n => Some(fetch_owned(conn.clone(), key.clone(), n, self.io_timeout).await),
                }
            };
            let apply = async {
                for (field, value) in entries {
                    let Ok(mut rec) = serde_json::from_str::<Record>(&value) else {
                        tracing::warn!(key, field, "unreadable protective entry in Redis skipped");
                        continue;
                    };
                    if !rec.removed && (rec.expire_at == 0 || rec.expire_at > now) {
                        rec.key = field;
                        each(rec);
                    }
                }
            };
            match tokio::join!(ask, apply).0 {
                None => return Ok(()),
                Some(p) => page = p?,
            }
        }
    }

    pub(super) async fn version(&self, kind: Kind) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        let v: Option<i64> = self
            .timed("redis version", conn.get(self.key(kind, ".version")))
            .await?;
        Ok(v.unwrap_or(0))
    }

    pub(super) async fn purge_expired(&self, kind: Kind, now: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let mut total = 0;
        loop {
            let mut inv = self.purge.prepare_invoke();
            inv.key(self.key(kind, ""))
                .key(self.key(kind, ".expire"))
                .arg(now);
            let n: u64 = self
                .timed("redis purge", inv.invoke_async(&mut conn))
                .await?;
            total += n;
            if n < 1000 {
                return Ok(total);
            }
        }
    }

    /// Listens to the feature's change channel until `stop`, reconnecting
    /// after a failure (1 s apart); reports every (re)connection so the
    /// node reloads what it may have missed.
    pub async fn listen(
        &self,
        kind: Kind,
        tx: mpsc::Sender<Heard>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let channel = self.key(kind, ".changes");
        loop {
            let session = async {
                let mut ps = self
                    .client()
                    .await?
                    .get_async_pubsub()
                    .await
                    .map_err(|e| unavailable("redis pubsub", e))?;
                ps.subscribe(&channel)
                    .await
                    .map_err(|e| unavailable("redis subscribe", e))?;
                if tx.send(Heard::Connected).await.is_err() {
                    return Ok(());
                }
                let mut messages = ps.on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    match serde_json::from_str::<Notice>(&payload) {
                        Ok(n) => {
                            if tx.send(Heard::Change(n)).await.is_err() {
                                return Ok(());
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "unreadable protective change"),
                    }
                }
                Err(unavailable("redis pubsub", "connection closed"))
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                r = session => match r {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(feature = kind.feature(), error = %e, "protective change listener lost Redis; retrying"),
                },
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// Entries asked for per HSCAN page: small enough that the two pages in
/// flight while loading stay a few hundred KiB, large enough that a million
/// entries take a few hundred round trips.
const PAGE: u64 = 2_000;

/// One HSCAN page.
async fn fetch_owned(
    mut conn: ConnectionManager,
    key: String,
    cursor: u64,
    io_timeout: Duration,
) -> Result<(u64, Vec<(String, String)>), StoreError> {
    tokio::time::timeout(
        io_timeout,
        redis::cmd("HSCAN")
            .arg(&key)
            .arg(cursor)
            .arg("COUNT")
            .arg(PAGE)
            .query_async::<(u64, Vec<(String, String)>)>(&mut conn),
    )
    .await
    .map_err(|_| unavailable("redis load", "timed out"))?
    .map_err(|e| unavailable("redis load", e))
}
