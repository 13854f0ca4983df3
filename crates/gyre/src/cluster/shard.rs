//! One Redis shard of the engine: a command connection (made lazily,
//! remade after errors) and one PUB/SUB connection owned by a background
//! task that reconnects by itself and then subscribes again to everything
//! this node needs (the control channels and the channels with local
//! subscribers), before telling the node it is back (so it can resync).
//!
//! Channel subscriptions go through one ordered queue per shard, so a
//! SUBSCRIBE and an UNSUBSCRIBE of the same channel reach Redis in the
//! order they were asked for; an UNSUBSCRIBE is skipped when the channel
//! got a local subscriber again meanwhile. A subscribe returns once Redis
//! confirmed it: publications after that are received.

use crate::redis_client::Target;
use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, PubSubSink};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What the shard's PUB/SUB task reports to (the node).
pub(crate) trait Handler: Send + Sync + 'static {
    /// A message on `channel` (a Redis PUB/SUB name).
    fn message(&self, shard: usize, channel: &str, payload: &[u8]);
    /// The Redis PUB/SUB names to subscribe to after (re)connecting: the
    /// control channels and every channel with local subscribers.
    fn wanted(&self, shard: usize) -> Vec<String>;
    /// Still wanted (checked before an UNSUBSCRIBE is sent).
    fn still_wanted(&self, name: &str) -> bool;
    /// Subscribed again after a connection was made (`first` at start).
    fn connected(&self, shard: usize, first: bool);
    /// The PUB/SUB connection was lost.
    fn disconnected(&self, shard: usize);
}

/// A command connection: one server (direct or Sentinel master) or a
/// Redis Cluster (keys routed by slot).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

enum SubOp {
    Subscribe(Vec<String>, oneshot::Sender<Result<(), String>>),
    Unsubscribe(String),
}

#[derive(Default)]
struct SubState {
    /// The current connection's sink; `None` while disconnected.
    sink: Option<PubSubSink>,
    /// Names confirmed subscribed on the current connection.
    active: HashSet<String>,
}

/// One shard.
pub(crate) struct Shard {
    pub(crate) index: usize,
    /// Printable address (no credentials).
    pub(crate) addr: String,
    target: Target,
    conn: Mutex<Option<Conn>>,
    connect_timeout: Duration,
    io_timeout: Duration,
    sub: Mutex<SubState>,
    ops: mpsc::UnboundedSender<SubOp>,
    ops_rx: Mutex<Option<mpsc::UnboundedReceiver<SubOp>>>,
    up: AtomicBool,
}

/// How often an idle PUB/SUB connection is checked.
const PING_EVERY: Duration = Duration::from_secs(2);

/// Subscriptions per SUBSCRIBE command when resubscribing.
const RESUBSCRIBE_BATCH: usize = 512;

impl Shard {
    pub(crate) fn new(
        index: usize,
        addr: String,
        target: Target,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Shard {
        let (tx, rx) = mpsc::unbounded_channel();
        Shard {
            index,
            addr,
            target,
            conn: Mutex::new(None),
            connect_timeout,
            io_timeout,
            sub: Mutex::new(SubState::default()),
            ops: tx,
            ops_rx: Mutex::new(Some(rx)),
            up: AtomicBool::new(false),
        }
    }

    /// Whether the PUB/SUB connection is up.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The command connection (made on first use within `connect_timeout`).
    pub(crate) async fn conn(&self) -> Result<Conn, String> {
        if let Some(c) = self.conn.lock().clone() {
            return Ok(c);
        }
        let c = match &self.target {
            Target::Cluster { client, .. } => Conn::Cluster(
                tokio::time::timeout(
                    self.connect_timeout + self.io_timeout,
                    client.get_async_connection(),
                )
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?,
            ),
            t => {
                let client = t.client(self.connect_timeout + self.io_timeout).await?;
                let mcfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.io_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                Conn::Single(
                    tokio::time::timeout(
                        self.connect_timeout + self.io_timeout,
                        ConnectionManager::new_with_config(client, mcfg),
                    )
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| e.to_string())?,
                )
            }
        };
        *self.conn.lock() = Some(c.clone());
        Ok(c)
    }

    /// Runs a script, bounded by `io_timeout`.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let conn = self.conn().await?;
        let r = match conn {
            Conn::Single(mut c) => {
                tokio::time::timeout(self.io_timeout, inv.invoke_async(&mut c)).await
            }
            Conn::Cluster(mut c) => {
                tokio::time::timeout(self.io_timeout, inv.invoke_async(&mut c)).await
            }
        };
        self.outcome(r)
    }

    /// Runs a command, bounded by `io_timeout`.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, String> {
        let conn = self.conn().await?;
        let r = match conn {
            Conn::Single(mut c) => {
                tokio::time::timeout(self.io_timeout, cmd.query_async(&mut c)).await
            }
            Conn::Cluster(mut c) => {
                tokio::time::timeout(self.io_timeout, cmd.query_async(&mut c)).await
            }
        };
        self.outcome(r)
    }

    fn outcome<T>(
        &self,
        r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, String> {
        let r = match r {
            Err(_) => Err("timed out".to_string()),
            Ok(r) => r.map_err(|e| e.to_string()),
        };
        if r.is_err() && matches!(self.target, Target::Sentinel { .. }) {
            // The master may have moved: ask the Sentinels next time.
            *self.conn.lock() = None;
        }
        r
    }

    /// Subscribes to `names` unless already subscribed; returns once Redis
    /// confirmed (error while the PUB/SUB connection is down).
    pub(crate) async fn subscribe(&self, names: Vec<String>) -> Result<(), String> {
        let missing: Vec<String> = {
            let s = self.sub.lock();
            if s.sink.is_none() {
                return Err(format!("redis shard {} is not connected", self.addr));
            }
            names
                .into_iter()
                .filter(|n| !s.active.contains(n))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.ops
            .send(SubOp::Subscribe(missing, tx))
            .map_err(|_| "redis engine stopped".to_string())?;
        match tokio::time::timeout(self.io_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("redis engine stopped".into()),
            Err(_) => Err("subscribe timed out".into()),
        }
    }

    /// Unsubscribes from `name` (never waits; skipped if wanted again by
    /// the time it is sent).
    pub(crate) fn unsubscribe(&self, name: String) {
        self.sub.lock().active.remove(&name);
        let _ = self.ops.send(SubOp::Unsubscribe(name));
    }

    /// Publishes `payload` on `name` (control messages).
    pub(crate) async fn publish(&self, name: &str, payload: &[u8]) -> Result<(), String> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(name).arg(payload);
        self.query::<i64>(&cmd).await.map(|_| ())
    }

    /// The PUB/SUB task: connects, subscribes to what the node wants,
    /// reads messages until the connection fails, and starts over (waits
    /// 50 ms, doubling up to 1 s, between attempts) until `stop`.
    pub(crate) async fn run(self: Arc<Self>, handler: Arc<dyn Handler>, stop: CancellationToken) {
        let Some(mut ops) = self.ops_rx.lock().take() else {
            return;
        };
        let mut first = true;
        let mut backoff = Duration::from_millis(50);
        loop {
            let session = self.session(&handler, &mut ops, &mut first, &mut backoff);
            tokio::select! {
                _ = stop.cancelled() => break,
                e = session => {
                    let was_up = self.up.swap(false, Ordering::AcqRel);
                    {
                        let mut s = self.sub.lock();
                        s.sink = None;
                        s.active.clear();
                    }
                    if was_up {
                        tracing::warn!(shard = %self.addr, error = %e, "redis PUB/SUB connection lost; reconnecting");
                        handler.disconnected(self.index);
                    } else {
                        tracing::debug!(shard = %self.addr, error = %e, "redis PUB/SUB connect failed");
                    }
                    // A command connection to a restarted Redis is remade too.
                    *self.conn.lock() = None;
                }
            }
            // Fail queued subscribes at once: the client retries.
            while let Ok(op) = ops.try_recv() {
                if let SubOp::Subscribe(_, tx) = op {
                    let _ = tx.send(Err("redis PUB/SUB reconnecting".into()));
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        self.up.store(false, Ordering::Release);
        self.sub.lock().sink = None;
    }

    /// One connection's life; returns why it ended.
    async fn session(
        &self,
        handler: &Arc<dyn Handler>,
        ops: &mut mpsc::UnboundedReceiver<SubOp>,
        first: &mut bool,
        backoff: &mut Duration,
    ) -> String {
        let client = match self
            .target
            .client(self.connect_timeout + self.io_timeout)
            .await
        {
            Ok(c) => c,
            Err(e) => return e,
        };
        let connected_to = client.get_connection_info().addr().to_string();
        let ps = match tokio::time::timeout(
            self.connect_timeout + self.io_timeout,
            client.get_async_pubsub(),
        )
        .await
        {
            Ok(Ok(ps)) => ps,
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "connect timed out".into(),
        };
        let (mut sink, mut stream) = ps.split();
        let wanted = handler.wanted(self.index);
        for chunk in wanted.chunks(RESUBSCRIBE_BATCH) {
            if let Err(e) = sink.subscribe(chunk).await {
                return e.to_string();
            }
        }
        {
            let mut s = self.sub.lock();
            s.sink = Some(sink.clone());
            s.active = wanted.into_iter().collect();
        }
        self.up.store(true, Ordering::Release);
        *backoff = Duration::from_millis(50);
        if !*first {
            tracing::info!(shard = %self.addr, "redis PUB/SUB connection back");
        }
        handler.connected(self.index, *first);
        *first = false;
        let mut ping_sink = sink.clone();
        let reader = async {
            while let Some(msg) = stream.next().await {
                handler.message(self.index, msg.get_channel_name(), msg.get_payload_bytes());
            }
            "connection closed".to_string()
        };
        let worker = async {
            while let Some(op) = ops.recv().await {
                match op {
                    SubOp::Subscribe(names, tx) => {
                        let r = sink.subscribe(&names).await.map_err(|e| e.to_string());
                        if r.is_ok() {
                            self.sub.lock().active.extend(names);
                        }
                        let failed = r.is_err();
                        let _ = tx.send(r);
                        if failed {
                            return "subscribe failed".to_string();
                        }
                    }
                    SubOp::Unsubscribe(name) => {
                        if handler.still_wanted(&name) || self.sub.lock().active.contains(&name) {
                            continue;
                        }
                        if let Err(e) = sink.unsubscribe(&name).await {
                            return e.to_string();
                        }
                    }
                }
            }
            "engine stopped".to_string()
        };
        // A Redis that stops answering without closing the socket (paused,
        // partitioned) is noticed by a PING every `PING_EVERY`.
        let pinger = async {
            let sink = &mut ping_sink;
            loop {
                tokio::time::sleep(PING_EVERY).await;
                match tokio::time::timeout(self.io_timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "ping timed out".to_string(),
                }
                // Under Sentinel, a failover leaves this connection on a
                // server that is now a replica (publications made on the
                // new master reach it late, or not at all): move over.
                if matches!(self.target, Target::Sentinel { .. })
                    && let Ok(c) = self
                        .target
                        .client(self.connect_timeout + self.io_timeout)
                        .await
                    && c.get_connection_info().addr().to_string() != connected_to
                {
                    return "the Sentinel names another master".to_string();
                }
            }
        };
        tokio::select! {
            e = reader => e,
            e = worker => e,
            e = pinger => e,
        }
    }
}
