//! Channels: publishing and fan-out, history, presence, and who is
//! subscribed where on this node. Fan-out happens in one place,
//! [`Node::handle_publication`], which the broker calls with each
//! publication in offset order.

use super::Node;
use super::error::NodeError;
use super::handle::ClientHandle;
use super::hub::Subscriber;
use crate::broker::{HistoryOpts, StreamTop};
use crate::config::ChannelOptions;
use crate::protocol::{ClientInfo, Payload, Publication, Push, PushFrames, StreamPosition};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Node {
    /// Publishes into a channel: history first when the namespace keeps it
    /// (to get the offset), then one encoding per protocol kind shared by
    /// every local subscriber. Returns the stream top when history is kept.
    /// With an `idempotency_key` (server API), a repeat within 300 s
    /// returns the first result and publishes nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn publish(
        &self,
        channel: &str,
        opts: &ChannelOptions,
        data: Payload,
        info: Option<ClientInfo>,
        tags: Option<Arc<BTreeMap<String, String>>>,
        skip_history: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Option<StreamTop>, NodeError> {
        let p = Publication {
            data,
            info,
            offset: 0,
            tags,
        };
        let history = (opts.history_size > 0 && !skip_history).then_some(HistoryOpts {
            size: opts.history_size,
            ttl: opts.history_ttl.0,
            meta_ttl: self.meta_ttl_of(opts),
        });
        Ok(self
            .broker
            .publish(channel, p, history, idempotency_key, |p| {
                self.handle_publication(channel, p)
            })
            .await?)
    }

    /// Delivers a publication to this node's subscribers of `channel`.
    pub(crate) fn handle_publication(&self, channel: &str, p: &Publication) {
        let frames = PushFrames::new(|kind| kind.push(channel, Push::Pub(p)));
        // Data that is not JSON never goes to JSON clients (written raw it
        // would break their frames, docs/transports.md).
        let n = if p.data.is_json() {
            self.hub.broadcast(channel, &frames, false)
        } else {
            self.hub.broadcast_binary(channel, &frames)
        };
        crate::metrics::Metrics::add(&self.metrics.deliveries, n as u64);
    }

    /// Sends a join or leave push to the subscribers that want it.
    /// Who gets them was decided per subscriber at subscribe time (the
    /// client asked, or the namespace forces them): see `Subscriber::join_leave`.
    /// With the Redis engine, the push goes through Redis to every node.
    pub(crate) fn join_leave(&self, channel: &str, join: bool, info: &ClientInfo) {
        if !self.publish_join_leave(channel, join, info) {
            self.local_join_leave(channel, join, info);
        }
    }

    /// History with Centrifugo's limits applied: `limit` 0 = only the
    /// stream top, negative = `client.history_max_publication_limit`, any
    /// other value capped by it.
    pub async fn history(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        limit: i64,
        reverse: bool,
    ) -> Result<(Vec<Publication>, StreamTop), NodeError> {
        let max = self.cfg.client.history_max_publication_limit;
        let limit = match limit {
            0 => Some(0),
            l if l < 0 => Some(max),
            l => Some((l as usize).min(max)),
        };
        Ok(self
            .broker
            .history(channel, since, limit, reverse, self.meta_ttl(channel))
            .await?)
    }

    /// Publications after `since` for recovery at subscribe, at most
    /// `limit` + 1 so the caller can tell whether everything fitted.
    pub(crate) async fn recover(
        &self,
        channel: &str,
        since: &StreamPosition,
        limit: usize,
    ) -> Result<(Vec<Publication>, StreamTop), NodeError> {
        Ok(self
            .broker
            .history(
                channel,
                Some(since),
                Some(limit + 1),
                false,
                self.meta_ttl(channel),
            )
            .await?)
    }

    /// The current position of a channel's stream.
    pub(crate) async fn stream_top(&self, channel: &str) -> Result<StreamTop, NodeError> {
        Ok(self.broker.top(channel, self.meta_ttl(channel)).await?)
    }

    /// The channel's `history_meta_ttl`: its namespace's, else
    /// `channel.history_meta_ttl` (720h, as Centrifugo).
    fn meta_ttl(&self, channel: &str) -> std::time::Duration {
        match self.channels.options(channel) {
            Ok(o) => self.meta_ttl_of(&o),
            Err(_) => self.cfg.channel.history_meta_ttl.0,
        }
    }

    fn meta_ttl_of(&self, o: &ChannelOptions) -> std::time::Duration {
        if o.history_meta_ttl.0.is_zero() {
            self.cfg.channel.history_meta_ttl.0
        } else {
            o.history_meta_ttl.0
        }
    }

    /// Drops a channel's history (`history_remove`).
    pub async fn history_remove(&self, channel: &str) -> Result<(), NodeError> {
        Ok(self.broker.remove_history(channel).await?)
    }

    /// Everyone present in a channel, by client id.
    pub async fn presence(&self, channel: &str) -> Result<BTreeMap<String, ClientInfo>, NodeError> {
        Ok(self.presence.presence(channel).await?)
    }

    /// Clients and distinct users present in a channel.
    pub async fn presence_stats(&self, channel: &str) -> Result<(u32, u32), NodeError> {
        Ok(self.presence.stats(channel).await?)
    }

    /// Adds a client to a channel's presence.
    pub(crate) async fn add_presence(
        &self,
        channel: &str,
        info: ClientInfo,
    ) -> Result<(), NodeError> {
        Ok(self.presence.add(channel, info).await?)
    }

    /// Removes a client from a channel's presence (never waits).
    pub(crate) fn remove_presence(&self, channel: &str, client: &str) {
        self.presence.remove(channel, client);
    }

    /// Adds a subscriber on this node.
    pub(crate) fn add_subscriber(&self, channel: &str, sub: Subscriber) {
        self.hub.subscribe(channel, sub);
    }

    /// Removes a subscriber on this node.
    pub(crate) fn remove_subscriber(&self, channel: &str, client: &str) {
        if self.hub.unsubscribe(channel, client) {
            self.unsubscribe_channel(channel);
        }
    }

    /// Makes a connection findable (by user, by id); returns false and
    /// registers nothing when a connection limit would be exceeded.
    pub(crate) fn register(&self, h: &Arc<ClientHandle>) -> bool {
        let cfg = &self.cfg.client;
        if cfg.connection_limit > 0 && self.hub.num_clients() >= cfg.connection_limit {
            return false;
        }
        if cfg.user_connection_limit > 0
            && !h.user.is_empty()
            && self.hub.user_connection_count(&h.user) >= cfg.user_connection_limit
        {
            return false;
        }
        self.hub.add_client(h);
        true
    }

    /// Forgets a connection.
    pub(crate) fn unregister(&self, h: &ClientHandle) {
        self.hub.remove_client(h);
    }

    /// Indexes a token id (`jti`) held by a connection, so `revoke_token`
    /// finds it. Indexing the same id twice needs two `unindex_token`s.
    pub(crate) fn index_token(&self, jti: &str, h: &Arc<ClientHandle>) {
        if !jti.is_empty() {
            self.hub.add_token(jti, h);
        }
    }

    /// Drops one hold of a token id by a connection.
    pub(crate) fn unindex_token(&self, jti: &str, h: &ClientHandle) {
        if !jti.is_empty() {
            self.hub.remove_token(jti, h);
        }
    }

    /// Local counts for `/metrics`: clients, users, channels, subscriptions.
    pub(crate) fn local_counts(&self) -> (usize, usize, usize, usize) {
        (
            self.hub.num_clients(),
            self.hub.num_users(),
            self.hub.num_channels(),
            self.hub.num_subs(),
        )
    }
}
