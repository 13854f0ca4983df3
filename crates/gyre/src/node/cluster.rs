//! The node's side of the Redis engine (docs/cluster.md): what arrives
//! over Redis PUB/SUB (publications, joins and leaves of channels with
//! local subscribers; control messages) and what this node sends (its
//! heartbeat every 3 s, API actions for connections on other nodes,
//! surveys, protective changes when they live in memory).
//!
//! Start: every shard must answer before the node serves (a Redis that
//! cannot be reached stops the start, as Centrifugo's does); the node
//! subscribes, announces itself, hears its peers (they answer a new node
//! at once), and with memory protective storage takes their current sets
//! before the first client can connect. After a shard's PUB/SUB
//! connection comes back, the node takes the sets again (what it missed
//! while cut off) and tells positioned subscribers of channels that moved
//! on to recover (`insufficient state`).

use super::Node;
use super::actions::NodeInfo;
use super::error::NodeError;
use crate::broker::{Broker, BrokerError, RedisBroker};
use crate::cluster::control::{self, Registry, Surveys};
use crate::cluster::pb::control as pb;
use crate::cluster::{RedisEngine, frames, shard};
use crate::protect::{Change, Kind};
use crate::protocol::{ClientInfo, Push, PushFrames};
use parking_lot::Mutex;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How long a starting node listens for its peers' answers to its first
/// heartbeat before asking them for their protective sets.
const DISCOVERY: Duration = Duration::from_millis(300);
/// How long a protective catch-up waits for peers' snapshots.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(3);

/// A message to publish from the outgoing worker: on a channel's shard, or
/// (`shard: None`) as control through any shard.
struct Outgoing {
    name: String,
    shard: Option<usize>,
    payload: Vec<u8>,
}

/// Cluster state of a node on the Redis engine.
pub(crate) struct ClusterState {
    pub(super) engine: Arc<RedisEngine>,
    registry: Registry,
    surveys: Surveys,
    /// Newest offset delivered per channel with local subscribers (to tell
    /// after a reconnect whether a channel moved on meanwhile).
    delivered: Mutex<HashMap<Arc<str>, (u64, String)>>,
    out: mpsc::UnboundedSender<Outgoing>,
    out_rx: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
    /// Kicked when a shard came back: resync.
    resync: Notify,
    /// Protective changes made here whose announcement failed.
    unannounced: Mutex<Vec<Change>>,
    /// What was delivered per channel when a PUB/SUB connection was lost.
    delivered_at_loss: Mutex<HashMap<Arc<str>, (u64, String)>>,
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot connect to Redis at {address} ({section}): {reason}. Start Redis there, or fix \
     the addresses in `{section}`"
)]
pub struct ClusterStartError {
    /// The config section of the Redis (`engine.redis`, `broker.redis`,
    /// `presence_manager.redis`).
    pub section: &'static str,
    /// The shard's address (host:port, never a password).
    pub address: String,
    /// What failed.
    pub reason: String,
}

impl ClusterState {
    pub(super) fn new(engine: Arc<RedisEngine>) -> ClusterState {
        let (tx, rx) = mpsc::unbounded_channel();
        ClusterState {
            engine,
            registry: Registry::default(),
            surveys: Surveys::default(),
            delivered: Mutex::new(HashMap::new()),
            out: tx,
            out_rx: Mutex::new(Some(rx)),
            resync: Notify::new(),
            unannounced: Mutex::new(Vec::new()),
            delivered_at_loss: Mutex::new(HashMap::new()),
        }
    }
}

impl ClusterState {
    /// Records `offset` of `epoch` as delivered on `channel`; true when it
    /// is not the one after the last delivered (a gap, or another epoch).
    /// One look-up per publication.
    fn advance(&self, channel: &str, offset: u64, epoch: String) -> bool {
        let mut d = self.delivered.lock();
        match d.get_mut(channel) {
            Some(v) => {
                let gap = v.1 != epoch || offset != v.0 + 1;
                *v = (offset, epoch);
                gap
            }
            None => {
                d.insert(Arc::from(channel), (offset, epoch));
                false
            }
        }
    }
}

/// The shards' view of the node (weak: the node owns the shards' tasks).
struct Link(Weak<Node>);

impl shard::Handler for Link {
    fn message(&self, _shard: usize, channel: &str, payload: &[u8]) {
        if let Some(n) = self.0.upgrade() {
            n.on_redis_message(channel, payload);
        }
    }

    fn wanted(&self, shard: usize) -> Vec<String> {
        let Some(n) = self.0.upgrade() else {
            return Vec::new();
        };
        let Some(c) = n.cluster.as_ref() else {
            return Vec::new();
        };
        let e = &c.engine;
        let mut v = vec![e.names.control(), e.names.node(&n.id)];
        v.extend(
            n.hub
                .channels()
                .into_iter()
                .filter(|(ch, _)| e.shard(ch).index == shard)
                .map(|(ch, _)| e.names.client(&ch)),
        );
        v
    }

    fn still_wanted(&self, name: &str) -> bool {
        let Some(n) = self.0.upgrade() else {
            return false;
        };
        let Some(c) = n.cluster.as_ref() else {
            return false;
        };
        c.engine
            .names
            .channel_of(name)
            .is_some_and(|ch| n.hub.num_subscribers(ch) > 0)
    }

    fn connected(&self, _shard: usize, first: bool) {
        if first {
            return;
        }
        if let Some(n) = self.0.upgrade()
            && let Some(c) = n.cluster.as_ref()
        {
            c.resync.notify_one();
        }
    }

    fn disconnected(&self, _shard: usize) {
        if let Some(n) = self.0.upgrade()
            && let Some(c) = n.cluster.as_ref()
        {
            let snapshot = c.delivered.lock().clone();
            c.delivered_at_loss.lock().extend(snapshot);
        }
    }
}

impl Node {
    pub(super) fn cluster(&self) -> Option<&ClusterState> {
        self.cluster.as_ref()
    }

    /// Connects the engine and joins the cluster (see the module docs);
    /// returns once this node may serve clients.
    pub(super) async fn start_cluster(self: &Arc<Self>) -> Result<(), ClusterStartError> {
        let Some(c) = self.cluster.as_ref() else {
            return Ok(());
        };
        let engine = c.engine.clone();
        for s in &engine.shards {
            s.query::<String>(&redis::cmd("PING"))
                .await
                .map_err(|reason| ClusterStartError {
                    section: engine.section,
                    address: s.addr.clone(),
                    reason,
                })?;
        }
        let link: Arc<dyn shard::Handler> = Arc::new(Link(Arc::downgrade(self)));
        for s in &engine.shards {
            let (s, link) = (s.clone(), link.clone());
            self.lifecycle
                .spawn_background("redis-pubsub", move |stop| s.run(link, stop));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !engine.all_up() {
            if tokio::time::Instant::now() > deadline {
                let s = engine
                    .shards
                    .iter()
                    .find(|s| !s.is_up())
                    .expect("one is down");
                return Err(ClusterStartError {
                    section: engine.section,
                    address: s.addr.clone(),
                    reason: "PUB/SUB connection not established".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The outgoing worker: control answers and join/leave frames are
        // published in order, off the PUB/SUB reader.
        let rx = c.out_rx.lock().take();
        if let Some(mut rx) = rx {
            let node = self.clone();
            self.lifecycle
                .spawn_background("redis-outgoing", move |stop| async move {
                    let engine = node.cluster.as_ref().expect("cluster").engine.clone();
                    let work = async {
                        while let Some(o) = rx.recv().await {
                            let r = match o.shard {
                                Some(i) => engine.shards[i].publish(&o.name, &o.payload).await,
                                None => engine.publish_control(&o.name, &o.payload).await,
                            };
                            if let Err(e) = r {
                                tracing::warn!(name = o.name, error = %e, "redis publish failed");
                            }
                        }
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = work => {}
                    }
                });
        }
        // Announce, hear the peers, take their protective sets.
        if let Err(e) = self.send_heartbeat().await {
            return Err(ClusterStartError {
                section: engine.section,
                address: engine.shards[0].addr.clone(),
                reason: e.to_string(),
            });
        }
        tokio::time::sleep(DISCOVERY).await;
        self.catch_up_protect().await;
        let node = self.clone();
        self.lifecycle
            .spawn_background("cluster-heartbeat", move |stop| async move {
                let c = node.cluster.as_ref().expect("cluster");
                let mut tick = tokio::time::interval(control::HEARTBEAT_EVERY);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            if let Err(e) = node.send_heartbeat().await {
                                crate::metrics::Metrics::inc(&node.metrics.cluster_control_errors);
                                tracing::debug!(error = %e, "heartbeat not sent");
                            }
                            // A change whose announcement failed while the
                            // PUB/SUB connection stayed up goes out now.
                            if !c.unannounced.lock().is_empty() {
                                node.reannounce_protect().await;
                            }
                        }
                        _ = c.resync.notified() => node.resync().await,
                    }
                }
                // Tell the others at once (Centrifugo's Shutdown command).
                let cmd = pb::Command {
                    uid: node.id.clone(),
                    shutdown: Some(pb::Shutdown {}),
                    ..Default::default()
                };
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    c.engine
                        .publish_control(&c.engine.names.control(), &cmd.encode_to_vec()),
                )
                .await;
            });
        Ok(())
    }

    /// With Redis presence: checks every shard answers, then starts the
    /// refresh and removal loop.
    pub(super) async fn start_presence(self: &Arc<Self>) -> Result<(), ClusterStartError> {
        let crate::presence::Presence::Redis(p) = &self.presence else {
            return Ok(());
        };
        for s in &p.engine().shards {
            s.query::<String>(&redis::cmd("PING"))
                .await
                .map_err(|reason| ClusterStartError {
                    section: p.engine().section,
                    address: s.addr.clone(),
                    reason,
                })?;
        }
        let p = p.clone();
        let every = self.cfg.client.presence_update_interval.0;
        self.lifecycle
            .spawn_background("redis-presence", move |stop| p.run(every, stop));
        Ok(())
    }

    /// After a shard came back: announce, take the protective sets again,
    /// and make positioned subscribers of channels that moved on recover.
    async fn resync(&self) {
        self.check_positions().await;
        self.reannounce_protect().await;
        let _ = self.send_heartbeat().await;
        tokio::time::sleep(DISCOVERY).await;
        self.catch_up_protect().await;
    }

    /// Announces again the protective changes whose announcement failed
    /// (made here while Redis was away), so peers that never lost Redis get
    /// them too.
    async fn reannounce_protect(&self) {
        let Some(c) = self.cluster() else { return };
        let pending: Vec<Change> = std::mem::take(&mut *c.unannounced.lock());
        for change in pending {
            if self.announce_protect(&change).await.is_err() {
                c.unannounced.lock().push(change);
            }
        }
    }

    /// Channels whose stream moved past what was delivered here while the
    /// connection was down: their subscribers get `insufficient state`
    /// (unsubscribe push 2500, resubscribe), and the SDKs recover from
    /// history (Centrifugo's answer to a detected gap).
    async fn check_positions(&self) {
        let Some(c) = self.cluster() else { return };
        let known: Vec<(Arc<str>, (u64, String))> = c.delivered_at_loss.lock().drain().collect();
        for (ch, (offset, epoch)) in known {
            if self.hub.num_subscribers(&ch) == 0 {
                continue;
            }
            let Ok(top) = self.stream_top(&ch).await else {
                continue;
            };
            // Compared with what was delivered when the connection was
            // lost: publications delivered since went through the gap check.
            let now = c.delivered.lock().get(&ch).cloned();
            if now.as_ref() == Some(&(offset, epoch.clone()))
                && (top.offset != offset || top.epoch != epoch)
            {
                self.insufficient_state(&ch);
            }
        }
    }

    /// Positioned subscribers of `channel` missed publications: they end
    /// the subscription with 2500 and recover (Centrifugo's answer to a
    /// detected gap).
    fn insufficient_state(&self, channel: &str) {
        tracing::info!(
            channel,
            "publications missed: positioned subscribers recover"
        );
        crate::metrics::Metrics::inc(&self.metrics.cluster_insufficient_state);
        for h in self.hub.subscribers(channel) {
            h.outbox
                .push_instruction(super::outbox::Instruction::InsufficientState {
                    channel: channel.to_string(),
                });
        }
    }

    /// With memory protective storage, asks every peer for its sets and
    /// applies them (newer wins per key; removals included).
    async fn catch_up_protect(&self) {
        let memory: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| !self.stores.get(*k).is_persistent())
            .collect();
        if memory.is_empty() {
            return;
        }
        let answers = match self
            .survey(control::OP_PROTECT_SNAPSHOT, Vec::new(), SNAPSHOT_TIMEOUT)
            .await
        {
            Ok((a, complete)) => {
                if !complete {
                    tracing::warn!("not every node sent its protective sets; applied what arrived");
                }
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, "protective catch-up failed");
                return;
            }
        };
        let mut applied = 0usize;
        for (_, r) in answers {
            let Ok(changes) = serde_json::from_slice::<Vec<Change>>(&r.data) else {
                continue;
            };
            for ch in changes.into_iter().filter(|c| memory.contains(&c.kind())) {
                if self.apply_protect(&ch) > 0 || self.protect.apply(&ch) {
                    applied += 1;
                }
            }
        }
        if applied > 0 {
            tracing::info!(applied, "protective entries taken from peers");
        }
    }

    async fn send_heartbeat(&self) -> Result<(), NodeError> {
        let c = self.cluster().expect("cluster");
        let cmd = pb::Command {
            uid: self.id.clone(),
            node: Some(self.node_pb()),
            ..Default::default()
        };
        c.engine
            .publish_control(&c.engine.names.control(), &cmd.encode_to_vec())
            .await
            .map_err(|e| NodeError::Broker(BrokerError::Unavailable(e)))
    }

    fn node_pb(&self) -> pb::Node {
        let (clients, users, channels, subs) = self.local_counts();
        pb::Node {
            uid: self.id.clone(),
            name: self.name.clone(),
            version: super::VERSION.to_string(),
            num_clients: clients as u32,
            num_users: users as u32,
            num_channels: channels as u32,
            num_subs: subs as u32,
            uptime: self.started.elapsed().as_secs() as u32,
            ..Default::default()
        }
    }

    /// Every node's figures: this one's and the live peers'.
    pub(super) fn cluster_nodes(&self) -> Vec<NodeInfo> {
        let Some(c) = self.cluster() else {
            return Vec::new();
        };
        c.registry
            .live()
            .into_iter()
            .filter(|n| n.uid != self.id)
            .map(|n| NodeInfo {
                uid: n.uid,
                name: n.name,
                version: n.version,
                num_clients: n.num_clients as usize,
                num_users: n.num_users as usize,
                num_channels: n.num_channels as usize,
                num_subs: n.num_subs as usize,
                uptime: n.uptime as u64,
            })
            .collect()
    }

    /// Publishes a control command to every other node.
    pub(super) async fn broadcast_control(&self, cmd: pb::Command) -> Result<(), NodeError> {
        let Some(c) = self.cluster() else {
            return Ok(());
        };
        c.engine
            .publish_control(&c.engine.names.control(), &cmd.encode_to_vec())
            .await
            .map_err(|e| {
                crate::metrics::Metrics::inc(&self.metrics.cluster_control_errors);
                tracing::warn!(error = %e, "control message not published");
                NodeError::Broker(BrokerError::Unavailable(e))
            })
    }

    /// A command stamped with this node's id.
    pub(super) fn command(&self) -> pb::Command {
        pb::Command {
            uid: self.id.clone(),
            ..Default::default()
        }
    }

    /// Asks every live peer `op` and collects the answers (within
    /// `timeout`); the bool says whether all answered.
    pub(super) async fn survey(
        &self,
        op: &str,
        data: Vec<u8>,
        timeout: Duration,
    ) -> Result<(Vec<(String, pb::SurveyResponse)>, bool), NodeError> {
        let Some(c) = self.cluster() else {
            return Ok((Vec::new(), true));
        };
        let want = c
            .registry
            .live()
            .iter()
            .filter(|n| n.uid != self.id)
            .count();
        if want == 0 {
            return Ok((Vec::new(), true));
        }
        let survey = c.surveys.start(want);
        let cmd = pb::Command {
            uid: self.id.clone(),
            survey_request: Some(pb::SurveyRequest {
                id: survey.id,
                op: op.to_string(),
                data: data.into(),
            }),
            ..Default::default()
        };
        self.broadcast_control(cmd).await?;
        Ok(survey.wait(timeout).await)
    }

    /// Whether `uid` is a live node of the cluster.
    pub(super) fn knows_node(&self, uid: &str) -> bool {
        self.cluster()
            .is_some_and(|c| c.registry.live().iter().any(|n| n.uid == uid))
    }

    /// Asks one node `op` (on its own channel) and returns its answer code.
    pub(super) async fn survey_node(
        &self,
        uid: &str,
        op: &str,
        data: Vec<u8>,
        timeout: Duration,
    ) -> Result<u32, NodeError> {
        let c = self
            .cluster()
            .ok_or(NodeError::Broker(BrokerError::Unavailable(
                "no cluster".into(),
            )))?;
        let survey = c.surveys.start(1);
        let cmd = pb::Command {
            uid: self.id.clone(),
            survey_request: Some(pb::SurveyRequest {
                id: survey.id,
                op: op.to_string(),
                data: data.into(),
            }),
            ..Default::default()
        };
        c.engine
            .publish_control(&c.engine.names.node(uid), &cmd.encode_to_vec())
            .await
            .map_err(|e| NodeError::Broker(BrokerError::Unavailable(e)))?;
        match survey.wait(timeout).await {
            (answers, true) => Ok(answers.first().map_or(1, |(_, r)| r.code)),
            _ => Err(NodeError::Broker(BrokerError::Unavailable(
                "the node did not answer".into(),
            ))),
        }
    }

    /// Makes sure this node receives `channel`'s publications (Redis
    /// SUBSCRIBE confirmed); a no-op without the Redis engine.
    pub(crate) async fn subscribe_channel(&self, channel: &str) -> Result<(), NodeError> {
        let Some(c) = self.cluster() else {
            return Ok(());
        };
        c.engine
            .shard(channel)
            .subscribe(vec![c.engine.names.client(channel)])
            .await
            .map_err(|e| NodeError::Broker(BrokerError::Unavailable(e)))
    }

    /// The stream position a subscriber was given: the starting point of
    /// the gap check when nothing was delivered here yet (so a
    /// publication missed before the first delivery is noticed too).
    pub(crate) fn note_position(&self, channel: &str, offset: u64, epoch: &str) {
        if let Some(c) = self.cluster() {
            let mut d = c.delivered.lock();
            if !d.contains_key(channel) {
                d.insert(Arc::from(channel), (offset, epoch.to_string()));
            }
        }
    }

    /// The last local subscriber of `channel` left.
    pub(super) fn unsubscribe_channel(&self, channel: &str) {
        if let Some(c) = self.cluster() {
            c.delivered.lock().remove(channel);
            c.engine
                .shard(channel)
                .unsubscribe(c.engine.names.client(channel));
        }
    }

    /// Publishes a join or leave through Redis (queued, never waits).
    pub(super) fn publish_join_leave(&self, channel: &str, join: bool, info: &ClientInfo) -> bool {
        let Some(c) = self.cluster() else {
            return false;
        };
        let _ = c.out.send(Outgoing {
            name: c.engine.names.client(channel),
            shard: Some(c.engine.shard(channel).index),
            payload: frames::encode_join_leave(join, info),
        });
        true
    }

    /// One PUB/SUB message from a shard.
    fn on_redis_message(&self, name: &str, payload: &[u8]) {
        let Some(c) = self.cluster() else { return };
        if let Some(channel) = c.engine.names.channel_of(name) {
            match frames::decode(payload) {
                Ok(frames::Frame::Pub { publication, epoch }) => {
                    if let Some(epoch) = epoch {
                        // Offsets on one node's PUB/SUB come in order and
                        // without gaps; a gap or another epoch means some
                        // were missed (a reconnect, Redis lost its data).
                        if c.advance(channel, publication.offset, epoch) {
                            self.insufficient_state(channel);
                        }
                    }
                    self.handle_publication(channel, &publication);
                }
                Ok(frames::Frame::Join(info)) => self.local_join_leave(channel, true, &info),
                Ok(frames::Frame::Leave(info)) => self.local_join_leave(channel, false, &info),
                Err(e) => {
                    tracing::warn!(channel, error = %e, "unreadable publication from Redis dropped")
                }
            }
            return;
        }
        match pb::Command::decode(payload) {
            Ok(cmd) if cmd.uid != self.id => self.on_control(cmd),
            Ok(_) => {} // our own
            Err(e) => tracing::warn!(error = %e, "undecodable control message dropped"),
        }
    }

    /// Join or leave pushes to this node's subscribers that want them.
    pub(super) fn local_join_leave(&self, channel: &str, join: bool, info: &ClientInfo) {
        let frames = PushFrames::new(|kind| {
            kind.push(
                channel,
                if join {
                    Push::Join(info)
                } else {
                    Push::Leave(info)
                },
            )
        });
        self.hub.broadcast(channel, &frames, true);
    }

    /// A control command from another node, handled as Centrifugo does
    /// (the first field set wins, redis-cluster.md §4.1).
    fn on_control(&self, cmd: pb::Command) {
        let Some(c) = self.cluster() else { return };
        let from = cmd.uid;
        if let Some(n) = cmd.node {
            if c.registry.heard(n) {
                // A node we did not know: tell it about us at once.
                let reply = pb::Command {
                    uid: self.id.clone(),
                    node: Some(self.node_pb()),
                    ..Default::default()
                };
                let _ = c.out.send(Outgoing {
                    name: c.engine.names.node(&from),
                    shard: None,
                    payload: reply.encode_to_vec(),
                });
            }
        } else if cmd.shutdown.is_some() {
            c.registry.remove(&from);
        } else if let Some(u) = cmd.unsubscribe {
            self.apply_unsubscribe(&u.user, &u.client, &u.channel, u.code, &u.reason);
        } else if let Some(s) = cmd.subscribe {
            self.apply_subscribe(s);
        } else if let Some(d) = cmd.disconnect {
            let disc = crate::codes::Disconnect::new(d.code as u16, d.reason);
            self.apply_disconnect(&d.user, &d.client, &d.whitelist, &disc);
        } else if let Some(r) = cmd.survey_request {
            let (code, data) = self.answer_survey(&r.op, &r.data);
            let reply = pb::Command {
                uid: self.id.clone(),
                survey_response: Some(pb::SurveyResponse {
                    id: r.id,
                    code,
                    data: data.into(),
                }),
                ..Default::default()
            };
            let _ = c.out.send(Outgoing {
                name: c.engine.names.node(&from),
                shard: None,
                payload: reply.encode_to_vec(),
            });
        } else if let Some(r) = cmd.survey_response {
            c.surveys.answer(from, r);
        } else if let Some(n) = cmd.notification {
            if n.op == control::NOTIFY_PROTECT {
                match serde_json::from_slice::<Change>(&n.data) {
                    Ok(change) => {
                        self.apply_protect(&change);
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable protective change"),
                }
            }
        } else if let Some(r) = cmd.refresh {
            let info = crate::protocol::json_from_bytes(&r.info).map(crate::protocol::share);
            self.apply_refresh(&r.user, &r.client, r.expired, r.expire_at, info);
        } else {
            tracing::debug!("unknown control command ignored");
        }
    }

    /// This node's answer to a survey: (code, data).
    fn answer_survey(&self, op: &str, data: &[u8]) -> (u32, Vec<u8>) {
        match op {
            control::OP_CHANNELS => {
                let Ok(req) = pb::ChannelsRequest::decode(data) else {
                    return (control::CODE_BAD_REQUEST, Vec::new());
                };
                let res = pb::ChannelsResult {
                    channels: self
                        .local_channels(&req.pattern)
                        .into_iter()
                        .map(|(ch, n)| {
                            (
                                ch,
                                pb::ChannelInfo {
                                    num_clients: n as u32,
                                },
                            )
                        })
                        .collect(),
                };
                (0, res.encode_to_vec())
            }
            control::OP_CONNECTIONS => {
                let user = String::from_utf8_lossy(data);
                let items = self.local_connection_items(&user);
                match serde_json::to_vec(&items) {
                    Ok(v) => (0, v),
                    Err(_) => (control::CODE_INTERNAL, Vec::new()),
                }
            }
            super::emulation::OP_EMULATION => self.answer_emulation(data),
            control::OP_PROTECT_SNAPSHOT => match serde_json::to_vec(&self.protect.snapshot()) {
                Ok(v) => (0, v),
                Err(_) => (control::CODE_INTERNAL, Vec::new()),
            },
            _ => (control::CODE_UNKNOWN_OP, Vec::new()),
        }
    }

    /// Tells the other nodes about a protective change kept in memory
    /// (persistent stores announce their own changes).
    /// Keeps a change whose announcement failed, to announce it after the
    /// next reconnect.
    pub(super) fn keep_unannounced(&self, change: Change) {
        if let Some(c) = self.cluster() {
            c.unannounced.lock().push(change);
        }
    }

    pub(super) async fn announce_protect(&self, change: &Change) -> Result<(), NodeError> {
        if self.cluster().is_none() || self.stores.get(change.kind()).is_persistent() {
            return Ok(());
        }
        let data = serde_json::to_vec(change).expect("changes serialize");
        let mut cmd = self.command();
        cmd.notification = Some(pb::Notification {
            op: control::NOTIFY_PROTECT.into(),
            data: data.into(),
        });
        self.broadcast_control(cmd).await
    }
}

/// The broker and presence a config asks for, and the cluster state when
/// the broker is Redis (control messages travel over the broker's Redis, as
/// in Centrifugo): `broker` / `presence_manager` sections when enabled,
/// else `engine`.
pub(super) fn backends(
    cfg: &crate::config::Config,
) -> Result<(Option<ClusterState>, Broker, crate::presence::Presence), crate::config::ConfigError> {
    use crate::config::{ConfigError, EngineType};
    let engine = |key: &str, r: &crate::config::Redis| {
        RedisEngine::from_config(r)
            .map(Arc::new)
            .map_err(|e| ConfigError::invalid(&format!("{key}.address"), e))
    };
    let engine_redis = if cfg.engine.kind == EngineType::Redis {
        Some(engine("engine.redis", &cfg.engine.redis)?)
    } else {
        None
    };
    let broker_engine = if cfg.broker.enabled {
        match cfg.broker.kind.as_str() {
            "redis" => Some(engine("broker.redis", &cfg.broker.redis)?),
            _ => None,
        }
    } else {
        engine_redis.clone()
    };
    let presence_engine = if cfg.presence_manager.enabled {
        match cfg.presence_manager.kind.as_str() {
            "redis" => Some(engine(
                "presence_manager.redis",
                &cfg.presence_manager.redis,
            )?),
            _ => None,
        }
    } else {
        engine_redis
    };
    let broker = match &broker_engine {
        Some(e) => Broker::Redis(RedisBroker::new(e.clone())),
        None => Broker::Memory(crate::broker::MemoryBroker::new()),
    };
    let presence = match &presence_engine {
        Some(e) => crate::presence::Presence::Redis(Arc::new(crate::presence::RedisPresence::new(
            e.clone(),
        ))),
        None => crate::presence::Presence::Memory(crate::presence::MemoryPresence::new()),
    };
    Ok((broker_engine.map(ClusterState::new), broker, presence))
}
