//! Server API actions on live connections (`subscribe`, `unsubscribe`,
//! `disconnect`, `refresh`) and node-wide reads (`connections`, `channels`,
//! `info`). Actions reach connections as [`Instruction`]s run inside each
//! connection's task. They are `async` and fallible because in a cluster
//! they also go to the other nodes and the reads ask them.

use super::Node;
use super::error::NodeError;
use super::handle::ClientHandle;
use super::outbox::{Instruction, ServerSubscribe};
use crate::cluster::control;
use crate::cluster::pb::control as pb;
use crate::codes::Disconnect;
use crate::protocol::Raw;
use prost::Message;
use std::sync::Arc;

/// Which connections an action is for: a user's, optionally one client of
/// theirs, or one client by id (`user` empty).
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    /// User id (`""` with a client id: that client, whoever it is).
    pub user: &'a str,
    /// Client id (`""` = all of the user's).
    pub client: &'a str,
}

/// One node's figures for `info`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    /// Node id.
    pub uid: String,
    /// Node name.
    pub name: String,
    /// Server version.
    pub version: String,
    /// Connections.
    pub num_clients: usize,
    /// Distinct users.
    pub num_users: usize,
    /// Channels with subscribers.
    pub num_channels: usize,
    /// Subscriptions.
    pub num_subs: usize,
    /// Seconds since start.
    pub uptime: u64,
}

/// `channels`: channel → number of connections subscribed.
pub type ChannelsInfo = std::collections::BTreeMap<String, usize>;

impl Node {
    /// Connections matching `t`.
    fn targets(&self, t: Targets<'_>) -> Vec<Arc<ClientHandle>> {
        if t.user.is_empty() && !t.client.is_empty() {
            return self
                .hub
                .all_connections()
                .into_iter()
                .filter(|h| &*h.id == t.client)
                .collect();
        }
        self.hub
            .user_connections(t.user)
            .into_iter()
            .filter(|h| t.client.is_empty() || &*h.id == t.client)
            .collect()
    }

    /// Server-side subscription of the targeted connections, on every node.
    pub async fn subscribe_clients(
        &self,
        t: Targets<'_>,
        s: ServerSubscribe,
    ) -> Result<(), NodeError> {
        if self.cluster().is_some() {
            let mut cmd = self.command();
            cmd.subscribe = Some(pb::Subscribe {
                user: t.user.to_string(),
                client: t.client.to_string(),
                channel: s.channel.clone(),
                expire_at: s.expire_at,
                channel_info: crate::protocol::raw_to_bytes(&s.info),
                data: crate::protocol::raw_to_bytes(&s.data),
                recover_since: s.recover_since.as_ref().map(|p| pb::StreamPosition {
                    offset: p.offset,
                    epoch: p.epoch.clone(),
                }),
                recover: s.recover_since.is_some(),
                source: super::handle::source::SERVER_API as u32,
                ..Default::default()
            });
            self.broadcast_control(cmd).await?;
        }
        self.local_subscribe(t, s);
        Ok(())
    }

    fn local_subscribe(&self, t: Targets<'_>, s: ServerSubscribe) {
        for h in self.targets(t) {
            h.outbox
                .push_instruction(Instruction::Subscribe(Box::new(s.clone())));
        }
    }

    /// A `Subscribe` control command from another node.
    pub(super) fn apply_subscribe(&self, s: pb::Subscribe) {
        let t = Targets {
            user: &s.user,
            client: &s.client,
        };
        let sub = ServerSubscribe {
            channel: s.channel.clone(),
            expire_at: s.expire_at,
            info: crate::protocol::json_from_bytes(&s.channel_info).map(crate::protocol::share),
            data: crate::protocol::json_from_bytes(&s.data).map(crate::protocol::share),
            recover_since: s.recover_since.map(|p| crate::protocol::StreamPosition {
                offset: p.offset,
                epoch: p.epoch,
            }),
        };
        self.local_subscribe(t, sub);
    }

    /// Ends the targeted connections' subscription to `channel` with
    /// `code` (2000 `server unsubscribe` for the API), on every node.
    pub async fn unsubscribe_clients(
        &self,
        t: Targets<'_>,
        channel: &str,
        code: (u32, &'static str),
    ) -> Result<(), NodeError> {
        if self.cluster().is_some() {
            let mut cmd = self.command();
            cmd.unsubscribe = Some(pb::Unsubscribe {
                user: t.user.to_string(),
                client: t.client.to_string(),
                channel: channel.to_string(),
                code: code.0,
                reason: code.1.to_string(),
                ..Default::default()
            });
            self.broadcast_control(cmd).await?;
        }
        self.apply_unsubscribe(t.user, t.client, channel, code.0, code.1);
        Ok(())
    }

    /// Unsubscribes this node's targeted connections (an empty `channel`
    /// means every channel, as in Centrifugo's control command).
    pub(super) fn apply_unsubscribe(
        &self,
        user: &str,
        client: &str,
        channel: &str,
        code: u32,
        reason: &str,
    ) {
        for h in self.targets(Targets { user, client }) {
            let channels: Vec<String> = if channel.is_empty() {
                h.state.lock().channels.keys().cloned().collect()
            } else {
                vec![channel.to_string()]
            };
            for ch in channels {
                h.outbox.push_instruction(Instruction::Unsubscribe {
                    channel: ch,
                    code,
                    reason: reason.to_string().into(),
                });
            }
        }
    }

    /// Closes the targeted connections with `d` on every node, except the
    /// client ids in `whitelist`. Returns how many were asked to close here.
    pub async fn disconnect(
        &self,
        t: Targets<'_>,
        whitelist: &[String],
        d: &Disconnect,
    ) -> Result<usize, NodeError> {
        if self.cluster().is_some() {
            let mut cmd = self.command();
            cmd.disconnect = Some(pb::Disconnect {
                user: t.user.to_string(),
                client: t.client.to_string(),
                whitelist: whitelist.to_vec(),
                code: d.code as u32,
                reason: d.reason.to_string(),
                ..Default::default()
            });
            self.broadcast_control(cmd).await?;
        }
        Ok(self.apply_disconnect(t.user, t.client, whitelist, d))
    }

    /// Closes this node's targeted connections.
    pub(super) fn apply_disconnect(
        &self,
        user: &str,
        client: &str,
        whitelist: &[String],
        d: &Disconnect,
    ) -> usize {
        let mut n = 0;
        for h in self.targets(Targets { user, client }) {
            if whitelist.iter().any(|w| w.as_str() == &*h.id) {
                continue;
            }
            h.outbox.disconnect(d.clone());
            n += 1;
        }
        n
    }

    /// Refreshes the targeted connections on every node: expire them now,
    /// or set a new expiry (Unix seconds, 0 = none) and connection info.
    pub async fn refresh_clients(
        &self,
        t: Targets<'_>,
        expired: bool,
        expire_at: i64,
        info: Option<Raw>,
    ) -> Result<(), NodeError> {
        if self.cluster().is_some() {
            let mut cmd = self.command();
            cmd.refresh = Some(pb::Refresh {
                user: t.user.to_string(),
                client: t.client.to_string(),
                expired,
                expire_at,
                info: crate::protocol::raw_to_bytes(&info),
                ..Default::default()
            });
            self.broadcast_control(cmd).await?;
        }
        self.apply_refresh(t.user, t.client, expired, expire_at, info);
        Ok(())
    }

    /// Refreshes this node's targeted connections.
    pub(super) fn apply_refresh(
        &self,
        user: &str,
        client: &str,
        expired: bool,
        expire_at: i64,
        info: Option<Raw>,
    ) {
        for h in self.targets(Targets { user, client }) {
            h.outbox.push_instruction(Instruction::Refresh {
                expired,
                expire_at,
                info: info.clone(),
            });
        }
    }

    /// A user's connections on every node (the `connections` API): client
    /// id → the API's description of the connection.
    pub async fn connections(&self, user: &str) -> Result<ConnectionItems, NodeError> {
        let mut out = self.local_connection_items(user);
        for data in self
            .survey_every_node(control::OP_CONNECTIONS, user.as_bytes().to_vec())
            .await?
        {
            if let Ok(items) = serde_json::from_slice::<ConnectionItems>(&data) {
                out.extend(items);
            }
        }
        Ok(out)
    }

    /// Asks every other node `op` and returns their answers' data; fails
    /// (100) when a node does not answer within the survey timeout or
    /// answers with an error code, as Centrifugo's cluster-wide reads do.
    async fn survey_every_node(
        &self,
        op: &str,
        data: Vec<u8>,
    ) -> Result<Vec<bytes::Bytes>, NodeError> {
        let unavailable =
            |why: String| NodeError::Broker(crate::broker::BrokerError::Unavailable(why));
        let (answers, complete) = self.survey(op, data, control::SURVEY_TIMEOUT).await?;
        if !complete {
            return Err(unavailable("not every node answered".into()));
        }
        answers
            .into_iter()
            .map(|(_, r)| match r.code {
                0 => Ok(r.data),
                code => Err(unavailable(format!("a node answered code {code}"))),
            })
            .collect()
    }

    /// This node's connections of `user`, described for the API.
    pub(super) fn local_connection_items(&self, user: &str) -> ConnectionItems {
        self.hub
            .user_connections(user)
            .iter()
            .map(|h| (h.id.to_string(), crate::api::connection_item(h)))
            .collect()
    }

    /// This node's channels matching `pattern` (a glob; empty = all) with
    /// their subscriber counts.
    pub(super) fn local_channels(&self, pattern: &str) -> ChannelsInfo {
        self.hub
            .channels()
            .into_iter()
            .filter(|(ch, _)| pattern.is_empty() || crate::transport::ws::glob_match(pattern, ch))
            .map(|(ch, n)| (ch.to_string(), n))
            .collect()
    }

    /// Channels with subscribers on any node whose name matches `pattern`,
    /// with their subscriber counts summed over nodes. Fails when a node
    /// does not answer (as Centrifugo's `channels`).
    pub async fn channels_info(&self, pattern: &str) -> Result<ChannelsInfo, NodeError> {
        let mut out = self.local_channels(pattern);
        let req = pb::ChannelsRequest {
            pattern: pattern.to_string(),
        };
        for data in self
            .survey_every_node(control::OP_CHANNELS, req.encode_to_vec())
            .await?
        {
            if let Ok(res) = pb::ChannelsResult::decode(data.as_ref()) {
                for (ch, info) in res.channels {
                    *out.entry(ch).or_default() += info.num_clients as usize;
                }
            }
        }
        Ok(out)
    }

    /// Every node's figures: this one's first, then the live peers'.
    pub async fn info(&self) -> Result<Vec<NodeInfo>, NodeError> {
        let (num_clients, num_users, num_channels, num_subs) = self.local_counts();
        let mut v = vec![NodeInfo {
            uid: self.id.clone(),
            name: self.name.clone(),
            version: super::VERSION.to_string(),
            num_clients,
            num_users,
            num_channels,
            num_subs,
            uptime: self.started.elapsed().as_secs(),
        }];
        v.extend(self.cluster_nodes());
        Ok(v)
    }
}

/// `connections`: client id → the connection's description (JSON).
pub type ConnectionItems = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;
