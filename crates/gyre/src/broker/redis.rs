//! History and publication delivery through Redis (Centrifugo's Redis
//! broker, redis-cluster.md §2–3): a publication with history is one Lua
//! script that assigns the offset, keeps it in the channel's stream (or
//! list) and PUBLISHes the `p1` frame; every node, this one included,
//! delivers it to its subscribers when the frame arrives on the channel's
//! PUB/SUB name (`Node::on_channel_message`), so all nodes see one order.

use super::{BrokerError, HistoryError, HistoryOpts, StreamTop};
use crate::cluster::{RedisEngine, frames, new_epoch, scripts};
use crate::protocol::{Publication, StreamPosition};
use std::sync::Arc;
use std::time::Duration;

/// How long the result of a publication with an idempotency key is kept
/// (the centrifuge library's default, §3.1).
const RESULT_TTL_S: u64 = 300;

fn err(e: String) -> BrokerError {
    BrokerError::Unavailable(e)
}

/// The Redis broker.
pub(crate) struct RedisBroker {
    engine: Arc<RedisEngine>,
    add_stream: redis::Script,
    add_list: redis::Script,
    publish_idempotent: redis::Script,
    history_stream: redis::Script,
    history_list: redis::Script,
}

/// Seconds for a script TTL argument (at least 1, since 0 means "no
/// expiry" for the meta key and an EXPIRE of 0 deletes).
fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// `{top, epoch[, entries]}` as a script returns it.
fn parse_top(v: &[redis::Value]) -> Result<StreamTop, BrokerError> {
    let offset = match v.first() {
        Some(redis::Value::Int(n)) => *n as u64,
        Some(redis::Value::BulkString(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| err("bad offset in reply".into()))?,
        _ => return Err(err("bad history reply".into())),
    };
    let epoch = match v.get(1) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(redis::Value::SimpleString(s)) => s.clone(),
        _ => return Err(err("bad epoch in reply".into())),
    };
    Ok(StreamTop { offset, epoch })
}

impl RedisBroker {
    pub(crate) fn new(engine: Arc<RedisEngine>) -> RedisBroker {
        RedisBroker {
            engine,
            add_stream: redis::Script::new(scripts::ADD_STREAM),
            add_list: redis::Script::new(scripts::ADD_LIST),
            publish_idempotent: redis::Script::new(scripts::PUBLISH_IDEMPOTENT),
            history_stream: redis::Script::new(scripts::HISTORY_STREAM),
            history_list: redis::Script::new(scripts::HISTORY_LIST),
        }
    }

    /// Publishes; delivery happens when the frame comes back over PUB/SUB.
    pub(crate) async fn publish(
        &self,
        channel: &str,
        p: &Publication,
        history: Option<HistoryOpts>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<StreamTop>, BrokerError> {
        let names = &self.engine.names;
        let shard = self.engine.shard(channel);
        let now_ms = crate::auth::now_ms();
        let payload = frames::encode_publication(p, now_ms);
        let pubsub = names.client(channel);
        let key = idempotency_key.filter(|k| !k.is_empty());
        let result_key = names.result(channel, key.unwrap_or(""));
        let Some(h) = history.filter(|h| h.size > 0 && !h.ttl.is_zero()) else {
            return match key {
                Some(_) => {
                    let mut inv = self.publish_idempotent.prepare_invoke();
                    inv.key(&result_key)
                        .arg(&payload)
                        .arg(&pubsub)
                        .arg("publish")
                        .arg(RESULT_TTL_S);
                    shard.invoke::<i64>(&inv).await.map_err(err)?;
                    Ok(None)
                }
                None => {
                    let mut cmd = redis::cmd("PUBLISH");
                    cmd.arg(&pubsub).arg(&payload);
                    shard.query::<i64>(&cmd).await.map_err(err)?;
                    Ok(None)
                }
            };
        };
        let lists = self.engine.use_lists;
        let (script, data_key, meta_key, bound) = if lists {
            (
                &self.add_list,
                names.list(channel),
                names.list_meta(channel),
                h.size.saturating_sub(1),
            )
        } else {
            (
                &self.add_stream,
                names.stream(channel),
                names.stream_meta(channel),
                h.size,
            )
        };
        let meta_ttl = if h.meta_ttl.is_zero() {
            0
        } else {
            secs(h.meta_ttl)
        };
        let mut inv = script.prepare_invoke();
        inv.key(&data_key)
            .key(&meta_key)
            .key(&result_key)
            .arg(&payload)
            .arg(bound)
            .arg(secs(h.ttl))
            .arg(&pubsub)
            .arg(meta_ttl)
            .arg(new_epoch())
            .arg("publish")
            .arg(if key.is_some() {
                RESULT_TTL_S.to_string()
            } else {
                String::new()
            })
            .arg("")
            .arg("0")
            .arg("");
        let v: Vec<redis::Value> = shard.invoke(&inv).await.map_err(err)?;
        Ok(Some(parse_top(&v)?))
    }

    /// The stream top (creating the epoch when the channel has none, as
    /// Centrifugo's read does, §3.4).
    pub(crate) async fn top(
        &self,
        channel: &str,
        meta_ttl: Duration,
    ) -> Result<StreamTop, BrokerError> {
        let (_, top) = self.read(channel, None, Some(0), false, meta_ttl).await?;
        Ok(top)
    }

    async fn read(
        &self,
        channel: &str,
        start: Option<u64>,
        limit: Option<usize>,
        reverse: bool,
        meta_ttl: Duration,
    ) -> Result<(Vec<redis::Value>, StreamTop), BrokerError> {
        let names = &self.engine.names;
        let shard = self.engine.shard(channel);
        let include = if limit == Some(0) { "0" } else { "1" };
        let meta_ttl = if meta_ttl.is_zero() {
            0
        } else {
            secs(meta_ttl)
        };
        let mut inv;
        if self.engine.use_lists {
            inv = self.history_list.prepare_invoke();
            inv.key(names.list(channel))
                .key(names.list_meta(channel))
                .arg(include)
                .arg("-1")
                .arg(meta_ttl)
                .arg(new_epoch());
        } else {
            inv = self.history_stream.prepare_invoke();
            inv.key(names.stream(channel))
                .key(names.stream_meta(channel))
                .arg(include)
                .arg(start.unwrap_or(0))
                .arg(limit.unwrap_or(0))
                .arg(if reverse { "1" } else { "0" })
                .arg(meta_ttl)
                .arg(new_epoch());
        }
        let mut v: Vec<redis::Value> = shard.invoke(&inv).await.map_err(err)?;
        let top = parse_top(&v)?;
        let entries = match v.get_mut(2) {
            Some(redis::Value::Array(a)) => std::mem::take(a),
            _ => Vec::new(),
        };
        Ok((entries, top))
    }

    /// Publications after `since` (or all kept), at most `limit`, newest
    /// first when `reverse`: the same answers as the memory broker (the
    /// conformance suite runs on both).
    pub(crate) async fn history(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        limit: Option<usize>,
        reverse: bool,
        meta_ttl: Duration,
    ) -> Result<(Vec<Publication>, StreamTop), HistoryError> {
        // Forward reads from `since` can be cut by Redis; reverse reads with
        // `since` are cut here after reversing, as the memory broker does.
        let (start, ask_limit, redis_reverse) = match since {
            Some(s) => (
                Some(s.offset + 1),
                if reverse { None } else { limit },
                false,
            ),
            None => (None, limit, reverse),
        };
        // One more than asked when recovering, to tell a gap from the end.
        let (entries, top) = self
            .read(channel, start, ask_limit, redis_reverse, meta_ttl)
            .await?;
        let mut pubs = if self.engine.use_lists {
            list_entries(entries, start.unwrap_or(0))
        } else {
            stream_entries(entries)
        };
        if let Some(pos) = since {
            if (pos.epoch != top.epoch && !(pos.epoch.is_empty() && pos.offset == 0))
                || pos.offset > top.offset
            {
                return Err(HistoryError::Unrecoverable);
            }
            // The next wanted publication must still be kept.
            let wanted = pos.offset + 1;
            let first = pubs.first().map_or(top.offset + 1, |p| p.offset);
            if wanted <= top.offset && first != wanted {
                return Err(HistoryError::Unrecoverable);
            }
            if reverse {
                pubs.reverse();
            }
        } else if self.engine.use_lists && reverse {
            pubs.reverse();
        }
        if let Some(l) = limit {
            pubs.truncate(l);
        }
        Ok((pubs, top))
    }

    /// Drops a channel's publications; the meta key (epoch, offset) stays.
    pub(crate) async fn remove_history(&self, channel: &str) -> Result<(), BrokerError> {
        let names = &self.engine.names;
        let key = if self.engine.use_lists {
            names.list(channel)
        } else {
            names.stream(channel)
        };
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        self.engine
            .shard(channel)
            .query::<i64>(&cmd)
            .await
            .map_err(err)?;
        Ok(())
    }
}

/// Stream entries `[[id, [field, value, ...]], ...]`, oldest first for a
/// forward read.
fn stream_entries(entries: Vec<redis::Value>) -> Vec<Publication> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let redis::Value::Array(mut parts) = e else {
            continue;
        };
        if parts.len() < 2 {
            continue;
        }
        let fields = parts.pop();
        let id = parts.pop();
        let offset = match &id {
            Some(redis::Value::BulkString(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.split('-').next())
                .and_then(|s| s.parse::<u64>().ok()),
            _ => None,
        };
        let (Some(offset), Some(redis::Value::Array(fields))) = (offset, fields) else {
            continue;
        };
        let mut it = fields.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if let (redis::Value::BulkString(k), redis::Value::BulkString(v)) = (k, v)
                && k == b"d"
            {
                match frames::decode_stored(&v, offset) {
                    Ok(p) => out.push(p),
                    Err(e) => {
                        tracing::warn!(offset, error = %e, "unreadable history entry skipped")
                    }
                }
            }
        }
    }
    out
}

/// List elements (whole `p1` frames, newest first) from `start` on, oldest first.
fn list_entries(entries: Vec<redis::Value>, start: u64) -> Vec<Publication> {
    let mut out: Vec<Publication> = entries
        .into_iter()
        .filter_map(|e| match e {
            redis::Value::BulkString(b) => match frames::decode(&b) {
                Ok(frames::Frame::Pub { publication, .. }) => Some(publication),
                _ => None,
            },
            _ => None,
        })
        .filter(|p| p.offset >= start)
        .collect();
    out.reverse();
    out
}
