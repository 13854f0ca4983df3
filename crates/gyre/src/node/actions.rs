//! Server API actions on live connections (`subscribe`, `unsubscribe`,
//! `disconnect`, `refresh`) and node-wide reads (`connections`, `channels`,
//! `info`). Actions reach connections as [`Instruction`]s run inside each
//! connection's task. They are `async` and fallible because in a cluster
//! they also go to the other nodes and the reads ask them.

use super::Node;
use super::error::NodeError;
use super::handle::ClientHandle;
use super::outbox::{Instruction, ServerSubscribe};
use crate::codes::Disconnect;
use crate::protocol::Raw;
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
    pub version: &'static str,
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

    /// Server-side subscription of the targeted connections.
    pub async fn subscribe_clients(
        &self,
        t: Targets<'_>,
        s: ServerSubscribe,
    ) -> Result<(), NodeError> {
        for h in self.targets(t) {
            h.outbox
                .push_instruction(Instruction::Subscribe(Box::new(s.clone())));
        }
        Ok(())
    }

    /// Ends the targeted connections' subscription to `channel` with
    /// `code` (2000 `server unsubscribe` for the API).
    pub async fn unsubscribe_clients(
        &self,
        t: Targets<'_>,
        channel: &str,
        code: (u32, &'static str),
    ) -> Result<(), NodeError> {
        for h in self.targets(t) {
            h.outbox.push_instruction(Instruction::Unsubscribe {
                channel: channel.to_string(),
                code: code.0,
                reason: code.1,
            });
        }
        Ok(())
    }

    /// Closes the targeted connections with `d`, except the client ids in
    /// `whitelist`. Returns how many were asked to close.
    pub async fn disconnect(
        &self,
        t: Targets<'_>,
        whitelist: &[String],
        d: &Disconnect,
    ) -> Result<usize, NodeError> {
        let mut n = 0;
        for h in self.targets(t) {
            if whitelist.iter().any(|w| w.as_str() == &*h.id) {
                continue;
            }
            h.outbox.disconnect(d.clone());
            n += 1;
        }
        Ok(n)
    }

    /// Refreshes the targeted connections: expire them now, or set a new
    /// expiry (Unix seconds, 0 = none) and connection info.
    pub async fn refresh_clients(
        &self,
        t: Targets<'_>,
        expired: bool,
        expire_at: i64,
        info: Option<Raw>,
    ) -> Result<(), NodeError> {
        for h in self.targets(t) {
            h.outbox.push_instruction(Instruction::Refresh {
                expired,
                expire_at,
                info: info.clone(),
            });
        }
        Ok(())
    }

    /// A user's connections (the `connections` API).
    pub async fn user_connections(&self, user: &str) -> Result<Vec<Arc<ClientHandle>>, NodeError> {
        Ok(self.hub.user_connections(user))
    }

    /// Channels with subscribers whose name matches `pattern` (a glob;
    /// empty = all), with their subscriber counts.
    pub async fn channels_info(&self, pattern: &str) -> Result<ChannelsInfo, NodeError> {
        Ok(self
            .hub
            .channels()
            .into_iter()
            .filter(|(ch, _)| pattern.is_empty() || crate::transport::ws::glob_match(pattern, ch))
            .map(|(ch, n)| (ch.to_string(), n))
            .collect())
    }

    /// Every node's figures (this one's, without a cluster).
    pub async fn info(&self) -> Result<Vec<NodeInfo>, NodeError> {
        let (num_clients, num_users, num_channels, num_subs) = self.local_counts();
        Ok(vec![NodeInfo {
            uid: self.id.clone(),
            name: self.name.clone(),
            version: super::VERSION,
            num_clients,
            num_users,
            num_channels,
            num_subs,
            uptime: self.started.elapsed().as_secs(),
        }])
    }
}
