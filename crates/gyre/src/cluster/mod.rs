//! The Redis engine: many Gyre nodes on one Redis setup act as one server
//! (docs/cluster.md). The layout of keys, PUB/SUB names and payloads is
//! Centrifugo v6.9's (redis-cluster.md), so Redis tooling and dashboards
//! keep working and a mixed cluster with Centrifugo nodes stays possible.
//!
//! * `names.rs`: key and channel names, the shard of a channel;
//! * `frames.rs`: the publication, join and leave payloads;
//! * `scripts.rs`: the Lua scripts (publish with history, history reads,
//!   presence);
//! * `shard.rs`: one shard's command connection and PUB/SUB task;
//! * `control.rs`: control messages, the node registry, surveys.
//!
//! The broker and presence backends (`broker/redis.rs`,
//! `presence/redis.rs`) and the node (`node/cluster.rs`) use this; the
//! node stays the one place that combines them.

pub(crate) mod control;
pub(crate) mod frames;
pub(crate) mod names;
pub(crate) use crate::pb;
pub(crate) mod scripts;
pub(crate) mod shard;

use crate::config::Redis as RedisCfg;
use crate::redis_client::{Target, display_addr};
use names::Names;
use shard::Shard;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The engine's shards and naming.
pub(crate) struct RedisEngine {
    /// Its config section, for messages (`engine.redis` unless a
    /// `broker`/`presence_manager` section made it).
    pub(crate) section: &'static str,
    pub(crate) names: Names,
    pub(crate) shards: Vec<Arc<Shard>>,
    /// `history_use_lists`.
    pub(crate) use_lists: bool,
    /// `presence_ttl`.
    pub(crate) presence_ttl: Duration,
    /// Round-robin of control publications over shards (§1.6).
    next_control: AtomicUsize,
}

/// One shard's addresses from an `address`/`sentinel_address`/
/// `cluster_address` entry: comma-separated, plus `addr=` query values.
fn seeds(entry: &str) -> Vec<String> {
    entry
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `redis+cluster://h:p?addr=h2:p2` / `redis+sentinel://h:p?addr=..&sentinel_master_name=m`
/// → (seed addresses, master name).
fn scheme_seeds(rest: &str) -> (Vec<String>, Option<String>) {
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split('/').next().unwrap_or(host);
    let mut out = vec![host.to_string()];
    let mut master = None;
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("addr", v)) => out.push(v.to_string()),
            Some(("sentinel_master_name", v)) => master = Some(v.to_string()),
            _ => {}
        }
    }
    (out, master)
}

impl RedisEngine {
    /// The engine of a validated `engine.redis` section (no I/O yet).
    /// `cluster_address` wins over `sentinel_address`, which wins over
    /// `address`, as in Centrifugo; each list element is one shard.
    pub(crate) fn from_config(cfg: &RedisCfg) -> Result<RedisEngine, String> {
        let mut shards = Vec::new();
        let mut cluster = false;
        let mk = |i: usize, addr: String, t: Target| {
            Arc::new(Shard::new(
                i,
                addr,
                t,
                cfg.connect_timeout.0,
                cfg.io_timeout.0,
            ))
        };
        if !cfg.cluster_address.is_empty() {
            cluster = true;
            for (i, e) in cfg.cluster_address.as_slice().iter().enumerate() {
                let s = seeds(e);
                let refs: Vec<&str> = s.iter().map(String::as_str).collect();
                shards.push(mk(i, display_addr(&s[0]), Target::cluster(&refs, cfg)?));
            }
        } else if !cfg.sentinel_address.is_empty() {
            for (i, e) in cfg.sentinel_address.as_slice().iter().enumerate() {
                let s = seeds(e);
                let refs: Vec<&str> = s.iter().map(String::as_str).collect();
                shards.push(mk(i, display_addr(&s[0]), Target::sentinel(&refs, cfg)?));
            }
        } else {
            for (i, a) in cfg.address.as_slice().iter().enumerate() {
                let t = if let Some(rest) = a.strip_prefix("redis+cluster://") {
                    cluster = true;
                    let (s, _) = scheme_seeds(rest);
                    let refs: Vec<&str> = s.iter().map(String::as_str).collect();
                    Target::cluster(&refs, cfg)?
                } else if let Some(rest) = a.strip_prefix("redis+sentinel://") {
                    let (s, master) = scheme_seeds(rest);
                    let mut c = cfg.clone();
                    if let Some(m) = master {
                        c.sentinel_master_name = m;
                    }
                    let refs: Vec<&str> = s.iter().map(String::as_str).collect();
                    Target::sentinel(&refs, &c)?
                } else {
                    Target::direct(a, cfg)?
                };
                shards.push(mk(i, display_addr(a), t));
            }
        }
        if shards.is_empty() {
            return Err("no address".into());
        }
        Ok(RedisEngine {
            section: "engine.redis",
            names: Names::new(&cfg.prefix, cluster),
            shards,
            use_lists: cfg.history_use_lists,
            presence_ttl: cfg.presence_ttl.0,
            next_control: AtomicUsize::new(0),
        })
    }

    /// The shard that holds `channel` (its history, presence and PUB/SUB).
    pub(crate) fn shard(&self, channel: &str) -> &Arc<Shard> {
        &self.shards[names::shard_of(channel, self.shards.len())]
    }

    /// Publishes a control message on `name` through the next shard in
    /// turn (every node listens on every shard), trying the others when a
    /// shard fails.
    pub(crate) async fn publish_control(&self, name: &str, payload: &[u8]) -> Result<(), String> {
        let n = self.shards.len();
        let start = self.next_control.fetch_add(1, Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..n {
            let s = &self.shards[(start + i) % n];
            match s.publish(name, payload).await {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("{}: {e}", s.addr),
            }
        }
        Err(last)
    }

    /// Whether every shard's PUB/SUB connection is up.
    pub(crate) fn all_up(&self) -> bool {
        self.shards.iter().all(|s| s.is_up())
    }
}

/// A fresh epoch: 8 random letters, as Centrifugo v6.8+ makes them (no `:`
/// and no `__`, which the frame headers forbid, §2.2).
pub(crate) fn new_epoch() -> String {
    const L: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let r = uuid::Uuid::new_v4();
    r.as_bytes()[..8]
        .iter()
        .map(|b| L[(*b as usize) % L.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_lists_and_url_forms() {
        let cfg: RedisCfg = serde_json::from_value(serde_json::json!({
            "address": ["127.0.0.1:7001", "redis://:pw@127.0.0.1:7002/1"]
        }))
        .unwrap();
        let e = RedisEngine::from_config(&cfg).unwrap();
        assert_eq!(e.shards.len(), 2);
        assert_eq!(e.shards[1].addr, "127.0.0.1:7002");
        assert_eq!(e.names.client("a"), "centrifugo.client.a");
        let cfg: RedisCfg = serde_json::from_value(serde_json::json!({
            "address": "redis+cluster://127.0.0.1:7001?addr=127.0.0.1:7002"
        }))
        .unwrap();
        let e = RedisEngine::from_config(&cfg).unwrap();
        assert_eq!(e.names.client("a"), "centrifugo.client.{a}");
        assert_eq!(
            scheme_seeds("h:1?addr=h:2&sentinel_master_name=m"),
            (vec!["h:1".into(), "h:2".into()], Some("m".into()))
        );
    }

    #[test]
    fn epochs_are_eight_letters() {
        for _ in 0..50 {
            let e = new_epoch();
            assert_eq!(e.len(), 8);
            assert!(e.bytes().all(|b| b.is_ascii_alphabetic()), "{e}");
        }
    }
}
