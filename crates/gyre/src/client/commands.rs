//! `publish`, `presence`, `presence_stats` and `history` from clients, with
//! the namespace permission rules (Centrifugo's `allow_*_for_*` options).

use super::subscribe::channel_error;
use super::{CmdResult, Session};
use crate::codes::{ClientError, Disconnect};
use crate::config::ChannelOptions;
use crate::protocol::{
    self, ChannelRequest, HistoryRequest, HistoryResult, PresenceResult, PresenceStatsResult,
    PublishRequest, share,
};
use std::sync::Arc;

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
        let opts = self.node.channels.options(channel).map_err(channel_error)?;
        if self.node.cfg.client.insecure {
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

    pub(super) fn publish(&mut self, id: u32, req: PublishRequest) -> CmdResult {
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
            .publish(&req.channel, &opts, share(data), Some(info), None, false);
        Ok(protocol::encode_reply(
            id,
            "publish",
            &serde_json::json!({}),
        ))
    }

    pub(super) fn presence(&mut self, id: u32, req: ChannelRequest) -> CmdResult {
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
        let presence = self.node.presence.presence(&req.channel);
        Ok(protocol::encode_reply(
            id,
            "presence",
            &PresenceResult { presence },
        ))
    }

    pub(super) fn presence_stats(&mut self, id: u32, req: ChannelRequest) -> CmdResult {
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
        let (num_clients, num_users) = self.node.presence.stats(&req.channel);
        Ok(protocol::encode_reply(
            id,
            "presence_stats",
            &PresenceStatsResult {
                num_clients,
                num_users,
            },
        ))
    }

    pub(super) fn history(&mut self, id: u32, req: HistoryRequest) -> CmdResult {
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
        {
            Ok((publications, top)) => Ok(protocol::encode_reply(
                id,
                "history",
                &HistoryResult {
                    publications,
                    epoch: top.epoch,
                    offset: top.offset,
                },
            )),
            Err(_) => Err(ClientError::UNRECOVERABLE_POSITION.into()),
        }
    }
}
