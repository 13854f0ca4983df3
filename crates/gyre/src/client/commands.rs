//! `publish`, `presence`, `presence_stats` and `history` from clients, with
//! the namespace permission rules (Centrifugo's `allow_*_for_*` options).

use super::subscribe::channel_error;
use super::{CmdResult, Session};
use crate::codes::{ClientError, Disconnect};
use crate::config::ChannelOptions;
use crate::protocol::{
    ChannelRequest, HistoryRequest, HistoryResult, PresenceResult, PresenceStatsResult,
    PublishRequest, Reply,
};
use std::sync::Arc;

/// A backend failure or unrecoverable position as the client's error
/// (100 or 112, mapped in `node::error`).
fn node_error(e: crate::node::NodeError) -> super::CmdError {
    super::CmdError::Error(e.into())
}

impl Session {
    /// Resolves a channel and checks a permission triple (subscriber, client, anonymous).
    fn allowed(
        &self,
        channel: &str,
        pick: fn(&ChannelOptions) -> (bool, bool, bool),
    ) -> Result<Arc<ChannelOptions>, super::CmdError> {
        if channel.is_empty() {
            return Err(Disconnect::bad_request().into());
        }
        let opts = self
            .node
            .channels()
            .options(channel)
            .map_err(channel_error)?;
        if self.node.cfg().client.insecure {
            return Ok(opts);
        }
        let (for_subscriber, for_client, for_anonymous) = pick(&opts);
        let subscribed = self.subs.contains_key(channel);
        let anonymous = self.user.is_empty();
        let ok = (for_subscriber && subscribed) || (for_client && (!anonymous || for_anonymous));
        if !ok {
            return Err(ClientError::PERMISSION_DENIED.into());
        }
        Ok(opts)
    }

    pub(super) async fn publish(&mut self, id: u32, req: PublishRequest) -> CmdResult {
        let opts = self.allowed(&req.channel, |o| {
            (
                o.allow_publish_for_subscriber,
                o.allow_publish_for_client,
                o.allow_publish_for_anonymous,
            )
        })?;
        let Some(data) = req.data else {
            return Err(Disconnect::bad_request().into());
        };
        let chan_info = self
            .subs
            .get(&req.channel)
            .and_then(|s| s.chan_info.clone());
        let info = self.client_info(chan_info);
        self.node
            .publish(&req.channel, &opts, data, Some(info), None, false, None)
            .await
            .map_err(node_error)?;
        Ok(self.proto.reply(id, Reply::Publish))
    }

    pub(super) async fn presence(&mut self, id: u32, req: ChannelRequest) -> CmdResult {
        let opts = self.allowed(&req.channel, |o| {
            (
                o.allow_presence_for_subscriber,
                o.allow_presence_for_client,
                o.allow_presence_for_anonymous,
            )
        })?;
        if !opts.presence {
            return Err(ClientError::NOT_AVAILABLE.into());
        }
        let presence = self.node.presence(&req.channel).await.map_err(node_error)?;
        Ok(self
            .proto
            .reply(id, Reply::Presence(&PresenceResult { presence })))
    }

    pub(super) async fn presence_stats(&mut self, id: u32, req: ChannelRequest) -> CmdResult {
        let opts = self.allowed(&req.channel, |o| {
            (
                o.allow_presence_for_subscriber,
                o.allow_presence_for_client,
                o.allow_presence_for_anonymous,
            )
        })?;
        if !opts.presence {
            return Err(ClientError::NOT_AVAILABLE.into());
        }
        let (num_clients, num_users) = self
            .node
            .presence_stats(&req.channel)
            .await
            .map_err(node_error)?;
        Ok(self.proto.reply(
            id,
            Reply::PresenceStats(&PresenceStatsResult {
                num_clients,
                num_users,
            }),
        ))
    }

    pub(super) async fn history(&mut self, id: u32, req: HistoryRequest) -> CmdResult {
        let opts = self.allowed(&req.channel, |o| {
            (
                o.allow_history_for_subscriber,
                o.allow_history_for_client,
                o.allow_history_for_anonymous,
            )
        })?;
        if opts.history_size == 0 {
            return Err(ClientError::NOT_AVAILABLE.into());
        }
        match self
            .node
            .history(&req.channel, req.since.as_ref(), req.limit, req.reverse)
            .await
        {
            Ok((publications, top)) => Ok(self.proto.reply(
                id,
                Reply::History(&HistoryResult {
                    publications,
                    epoch: top.epoch,
                    offset: top.offset,
                }),
            )),
            Err(e) => Err(node_error(e)),
        }
    }
}
