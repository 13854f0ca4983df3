//! Presence in Redis (Centrifugo's Redis presence manager, redis-cluster.md
//! §3.7): per channel a hash of client id → ClientInfo bytes and a sorted
//! set of expiry times. Entries live `presence_ttl` (60 s) unless refreshed:
//! this node refreshes the entries of its own connections every
//! `client.presence_update_interval` (27 s) in one background loop (not a
//! timer per connection), so a crashed node's entries expire by themselves.
//! Removal never waits: it is queued to a background worker.

use super::PresenceError;
use crate::cluster::{RedisEngine, frames, pb, scripts};
use crate::protocol::ClientInfo;
use parking_lot::Mutex;
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn err(e: String) -> PresenceError {
    PresenceError::Unavailable(e)
}

/// The Redis presence backend.
pub(crate) struct RedisPresence {
    engine: Arc<RedisEngine>,
    add: redis::Script,
    rem: redis::Script,
    get: redis::Script,
    /// This node's entries: (channel, client) → ClientInfo bytes.
    local: Mutex<HashMap<(String, String), Vec<u8>>>,
    removals: mpsc::UnboundedSender<(String, String)>,
    removals_rx: Mutex<Option<mpsc::UnboundedReceiver<(String, String)>>>,
}

impl RedisPresence {
    pub(crate) fn new(engine: Arc<RedisEngine>) -> RedisPresence {
        let (tx, rx) = mpsc::unbounded_channel();
        RedisPresence {
            engine,
            add: redis::Script::new(scripts::PRESENCE_ADD),
            rem: redis::Script::new(scripts::PRESENCE_REM),
            get: redis::Script::new(scripts::PRESENCE_GET),
            local: Mutex::new(HashMap::new()),
            removals: tx,
            removals_rx: Mutex::new(Some(rx)),
        }
    }

    /// The engine (its shards).
    pub(crate) fn engine(&self) -> &RedisEngine {
        &self.engine
    }

    fn keys<'a>(&self, inv: &mut redis::ScriptInvocation<'a>, channel: &str) {
        let n = &self.engine.names;
        inv.key(n.presence_expire(channel))
            .key(n.presence_data(channel))
            .key(n.presence_user_expire(channel))
            .key(n.presence_user_clients(channel));
    }

    async fn write(
        &self,
        channel: &str,
        client: &str,
        info: &[u8],
        user: &str,
    ) -> Result<(), PresenceError> {
        let ttl = self.engine.presence_ttl.as_secs().max(1);
        let mut inv = self.add.prepare_invoke();
        self.keys(&mut inv, channel);
        inv.arg(ttl)
            .arg(crate::auth::now() + ttl as i64)
            .arg(client)
            .arg(info)
            .arg(user)
            .arg("0")
            .arg("0");
        self.engine
            .shard(channel)
            .invoke::<redis::Value>(&inv)
            .await
            .map(|_| ())
            .map_err(err)
    }

    /// Adds (or refreshes) a client's presence.
    pub(crate) async fn add(&self, channel: &str, info: ClientInfo) -> Result<(), PresenceError> {
        let bytes = frames::info_to_pb(&info).encode_to_vec();
        self.local.lock().insert(
            (channel.to_string(), info.client.to_string()),
            bytes.clone(),
        );
        self.write(channel, &info.client, &bytes, &info.user).await
    }

    /// Forgets a client's presence (queued; never waits).
    pub(crate) fn remove(&self, channel: &str, client: &str) {
        if self
            .local
            .lock()
            .remove(&(channel.to_string(), client.to_string()))
            .is_some()
        {
            let _ = self
                .removals
                .send((channel.to_string(), client.to_string()));
        }
    }

    /// Everyone present, by client id.
    pub(crate) async fn presence(
        &self,
        channel: &str,
    ) -> Result<BTreeMap<String, ClientInfo>, PresenceError> {
        let mut inv = self.get.prepare_invoke();
        let n = &self.engine.names;
        inv.key(n.presence_expire(channel))
            .key(n.presence_data(channel))
            .arg(crate::auth::now())
            .arg("0");
        let flat: Vec<Vec<u8>> = self.engine.shard(channel).invoke(&inv).await.map_err(err)?;
        let mut out = BTreeMap::new();
        let mut it = flat.into_iter();
        while let (Some(client), Some(info)) = (it.next(), it.next()) {
            let client = String::from_utf8_lossy(&client).into_owned();
            match pb::client::ClientInfo::decode(info.as_slice())
                .map_err(frames::FrameError::from)
                .and_then(frames::info_from_pb)
            {
                Ok(i) => {
                    out.insert(client, i);
                }
                Err(e) => {
                    tracing::warn!(channel, client, error = %e, "unreadable presence entry skipped")
                }
            }
        }
        Ok(out)
    }

    /// Clients and distinct users.
    pub(crate) async fn stats(&self, channel: &str) -> Result<(u32, u32), PresenceError> {
        let p = self.presence(channel).await?;
        let users: std::collections::HashSet<&str> = p.values().map(|i| &*i.user).collect();
        Ok((p.len() as u32, users.len() as u32))
    }

    /// Background: refreshes this node's entries every `every` and sends
    /// queued removals, until `stop`.
    pub(crate) async fn run(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        let this: &RedisPresence = &self;
        let Some(mut rx) = self.removals_rx.lock().take() else {
            return;
        };
        let removals = async {
            while let Some((channel, client)) = rx.recv().await {
                let mut inv = this.rem.prepare_invoke();
                this.keys(&mut inv, &channel);
                inv.arg(&client).arg("").arg("0").arg("0");
                if let Err(e) = this
                    .engine
                    .shard(&channel)
                    .invoke::<redis::Value>(&inv)
                    .await
                {
                    // It expires after presence_ttl anyway.
                    tracing::debug!(channel, error = %e, "presence removal failed");
                }
            }
        };
        let refresh = async {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let entries: Vec<((String, String), Vec<u8>)> = this
                    .local
                    .lock()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                use futures_util::StreamExt;
                let failed = futures_util::stream::iter(entries)
                    .map(|((channel, client), info)| async move {
                        this.write(&channel, &client, &info, "").await.is_err()
                    })
                    .buffer_unordered(32)
                    .filter(|f| std::future::ready(*f))
                    .count()
                    .await;
                if failed > 0 {
                    tracing::warn!(failed, "presence refresh failed for some entries");
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = removals => {}
            _ = refresh => {}
        }
    }
}
