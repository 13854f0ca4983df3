//! `subscribe`, `unsubscribe`, `sub_refresh` and server-side subscriptions
//! (protocol.md §1.8, §2.4, §3.2): permissions, subscription tokens,
//! recovery and positioning, presence and join/leave.

use super::connect::{ServerSub, b64_json};
use super::{CmdError, CmdResult, Session, SubState};
use crate::auth::TokenError;
use crate::codes::{ClientError, Disconnect};
use crate::config::ChannelOptions;
use crate::config::channel::ChannelError;
use crate::node::handle::{TokenId, source};
use crate::node::hub::Subscriber;
use crate::node::outbox::ServerSubscribe;
use crate::protect::TokenVerdict;
use crate::protocol::{
    self, ChannelRequest, Push, Raw, Reply, StreamPosition, SubRefreshRequest, SubscribeRequest,
    SubscribeResult, share,
};
use bytes::Bytes;
use std::sync::Arc;

/// Everything decided before a subscription is added.
struct Plan {
    channel: String,
    opts: Arc<ChannelOptions>,
    source: u8,
    token: TokenId,
    expire_at: i64,
    chan_info: Option<Raw>,
    data: Option<Raw>,
    join_leave: bool,
    recoverable: bool,
    positioned: bool,
    recover: Option<StreamPosition>,
    /// Answer 112 rather than subscribe without recovery.
    reject_unrecovered: bool,
}

pub(super) fn channel_error(e: ChannelError) -> CmdError {
    match e {
        ChannelError::UnknownNamespace => ClientError::UNKNOWN_CHANNEL.into(),
        ChannelError::BadName => ClientError::BAD_REQUEST.into(),
    }
}

fn sub_token_error(e: TokenError) -> CmdError {
    match e {
        TokenError::Expired => ClientError::TOKEN_EXPIRED.into(),
        TokenError::Invalid(_) => ClientError::PERMISSION_DENIED.into(),
        TokenError::Unavailable(_) => ClientError::INTERNAL.into(),
    }
}

impl Session {
    pub(super) async fn subscribe(&mut self, id: u32, req: SubscribeRequest) -> CmdResult {
        if req.channel.is_empty() {
            return Err(Disconnect::bad_request().into());
        }
        // Delta compression: "fossil" is the only kind; Gyre sends full
        // publications (the reply's `delta` stays false, which every SDK
        // handles). Anything else is a malformed request, as in centrifuge.
        if !req.delta.is_empty() && req.delta != "fossil" {
            return Err(Disconnect::bad_request().into());
        }
        let node = self.node.clone();
        let opts = node
            .channels()
            .options(&req.channel)
            .map_err(channel_error)?;
        // Only stream subscriptions exist in Gyre's namespaces. As in
        // Centrifugo: shared poll on a channel without it is 108, a map type
        // the namespace does not allow is 103, an unknown type ends the
        // connection (3004).
        match req.kind {
            0 => {}
            1..=3 => return Err(ClientError::PERMISSION_DENIED.into()),
            4 => return Err(ClientError::NOT_AVAILABLE.into()),
            _ => return Err(Disconnect::internal().into()),
        }
        if self.subs.contains_key(&req.channel) {
            return Err(ClientError::ALREADY_SUBSCRIBED.into());
        }
        if node.cfg().client.channel_limit > 0 && self.subs.len() >= node.cfg().client.channel_limit
        {
            return Err(ClientError::LIMIT_EXCEEDED.into());
        }
        let now = crate::auth::now();
        let mut token = TokenId::default();
        let mut expire_at = 0;
        let mut chan_info = None;
        let mut data = None;
        let mut overrides = None;
        let source = if !req.token.is_empty() {
            let claims = node
                .verifier()
                .verify_subscribe(&req.token)
                .await
                .map_err(sub_token_error)?;
            if claims.channel != req.channel
                || claims.sub != *self.user
                || (!claims.client.is_empty() && claims.client != *self.id)
            {
                return Err(Disconnect::invalid_token().into());
            }
            token = TokenId {
                uid: claims.jti.unwrap_or_default(),
                issued_at: crate::auth::issued_at(claims.iat),
            };
            if self.check_token(Some(&req.channel), &token, now) != TokenVerdict::Valid {
                return Err(self.revoked_token_error());
            }
            expire_at = claims.expire_at.unwrap_or(claims.exp.unwrap_or(0));
            if expire_at > 0 && expire_at < now {
                return Err(ClientError::EXPIRED.into());
            }
            chan_info = b64_json(&claims.b64info).or(claims.info.map(share));
            data = b64_json(&claims.b64data).or(claims.data.map(share));
            overrides = claims.overrides;
            source::SUBSCRIPTION_TOKEN
        } else if node.channels().is_private(&req.channel) {
            return Err(ClientError::PERMISSION_DENIED.into());
        } else if node.cfg().client.insecure {
            source::CLIENT_INSECURE
        } else if opts.allow_user_limited_channels
            && node.channels().is_user_limited(&req.channel)
            && node.channels().user_allowed(&req.channel, &self.user)
        {
            source::USER_LIMITED
        } else if opts.allow_subscribe_for_client
            && (!self.user.is_empty() || opts.allow_subscribe_for_anonymous)
        {
            source::CLIENT_ALLOWED
        } else {
            return Err(ClientError::PERMISSION_DENIED.into());
        };
        let ov =
            |f: fn(&crate::auth::claims::Override) -> Option<crate::auth::claims::BoolValue>,
             dflt: bool| { overrides.as_ref().and_then(f).map_or(dflt, |v| v.value) };
        let recoverable = ov(|o| o.force_recovery, opts.force_recovery)
            || (opts.allow_recovery && req.recoverable);
        let positioned = recoverable
            || ov(|o| o.force_positioning, opts.force_positioning)
            || (opts.allow_positioning && req.positioned);
        let join_leave = ov(|o| o.join_leave, opts.join_leave)
            && (req.join_leave || ov(|o| o.force_push_join_leave, opts.force_push_join_leave));
        let mut opts_eff = (*opts).clone();
        opts_eff.presence = ov(|o| o.presence, opts.presence);
        opts_eff.join_leave = ov(|o| o.join_leave, opts.join_leave);
        let plan = Plan {
            channel: req.channel.clone(),
            opts: Arc::new(opts_eff),
            source,
            token,
            expire_at,
            chan_info,
            data,
            join_leave,
            recoverable,
            positioned,
            recover: (recoverable && req.recover).then(|| StreamPosition {
                offset: req.offset,
                epoch: req.epoch.clone(),
            }),
            reject_unrecovered: req.flag & protocol::SUBSCRIBE_FLAG_REJECT_UNRECOVERED != 0,
        };
        let res = self.add_sub(plan).await?;
        Ok(self.proto.reply(id, Reply::Subscribe(&res)))
    }

    /// Adds a subscription from a connection token, connect proxy result or the API.
    pub(super) async fn add_server_sub(
        &mut self,
        s: ServerSub,
        opts: Arc<ChannelOptions>,
        recover: Option<StreamPosition>,
    ) -> Result<SubscribeResult, CmdError> {
        let recoverable = opts.force_recovery;
        let plan = Plan {
            channel: s.channel,
            source: s.source,
            token: TokenId::default(),
            expire_at: s.expire_at,
            chan_info: s.info,
            data: s.data,
            join_leave: opts.join_leave,
            recoverable,
            positioned: recoverable || opts.force_positioning,
            recover: if recoverable { recover } else { None },
            reject_unrecovered: false,
            opts,
        };
        self.add_sub(plan).await
    }

    pub(super) async fn server_api_subscribe(&mut self, s: ServerSubscribe, out: &mut Vec<Bytes>) {
        if self.subs.contains_key(&s.channel) {
            return;
        }
        let Ok(opts) = self.node.channels().options(&s.channel) else {
            return;
        };
        let channel = s.channel.clone();
        let res = self
            .add_server_sub(
                ServerSub {
                    channel: s.channel,
                    info: s.info,
                    data: s.data,
                    expire_at: s.expire_at,
                    source: source::SERVER_API,
                },
                opts,
                s.recover_since,
            )
            .await;
        // A backend failure leaves the connection unsubscribed; the API call
        // has already answered, as Centrifugo's asynchronous subscribe does.
        if let Ok(res) = res {
            out.push(self.proto.push(&channel, Push::Subscribe(&res)));
        }
    }

    async fn add_sub(&mut self, p: Plan) -> Result<SubscribeResult, CmdError> {
        let node = self.node.clone();
        let handle = self
            .handle
            .clone()
            .ok_or(CmdError::Error(ClientError::INTERNAL.into()))?;
        // Index the subscription token first and check it again (the race
        // with a revocation, see `hold_token`); nothing else is done yet.
        self.hold_token(&handle, Some(&p.channel), &TokenId::default(), &p.token)?;
        // Join the hub before reading the stream position, so no publication
        // falls between the position and the first live push.
        node.add_subscriber(
            &p.channel,
            Subscriber {
                handle: handle.clone(),
                join_leave: p.join_leave,
                proto: self.proto,
            },
        );
        // Recorded before anything is awaited: if the connection closes
        // while a backend answers, `close` finds the subscription and undoes
        // every part of it. Join/leave is switched on once the join is sent.
        {
            let mut st = handle.state.lock();
            st.channels.insert(p.channel.clone(), p.source);
            if !p.token.is_empty() {
                st.sub_tokens.insert(p.channel.clone(), p.token.clone());
            }
        }
        self.subs.insert(
            p.channel.clone(),
            SubState {
                presence: p.opts.presence,
                positioned: p.positioned || p.recoverable,
                join_leave: false,
                expire_at: p.expire_at,
                deadline: (p.expire_at > 0).then(|| super::unix_to_instant(p.expire_at)),
                token: p.token.clone(),
                chan_info: p.chan_info.clone(),
            },
        );
        let res = match Box::pin(self.position_and_presence(&p)).await {
            Ok(res) => res,
            Err(e) => {
                self.remove_sub(&p.channel);
                return Err(CmdError::Error(e.into()));
            }
        };
        if p.opts.join_leave {
            node.join_leave(&p.channel, true, &self.client_info(p.chan_info.clone()));
            if let Some(s) = self.subs.get_mut(&p.channel) {
                s.join_leave = true;
            }
        }
        Ok(res)
    }

    /// The subscribe result's stream position (recovering publications
    /// when asked) and the presence entry: the parts that ask backends.
    async fn position_and_presence(
        &self,
        p: &Plan,
    ) -> Result<SubscribeResult, crate::node::NodeError> {
        let node = &self.node;
        // With the Redis engine: receive the channel's publications before
        // reading its position.
        node.subscribe_channel(&p.channel).await?;
        let mut res = SubscribeResult {
            data: p.data.clone(),
            ..Default::default()
        };
        if p.expire_at > 0 {
            res.expires = true;
            res.ttl = super::ttl_until(p.expire_at);
        }
        if p.recoverable || p.positioned {
            res.recoverable = p.recoverable;
            res.positioned = p.positioned;
            let top = match &p.recover {
                Some(since) => {
                    res.was_recovering = true;
                    let limit = node.cfg().client.recovery_max_publication_limit;
                    match node.recover(&p.channel, since, limit).await {
                        Ok((pubs, top)) if pubs.len() <= limit => {
                            res.recovered = true;
                            res.publications = pubs;
                            top
                        }
                        // More missed than may be recovered, or a position
                        // no longer kept: subscribe from the current top,
                        // with nothing recovered, unless the client asked
                        // for an error instead (flag bit 2).
                        Ok((_, top)) => top,
                        Err(crate::node::NodeError::Unrecoverable) => {
                            node.stream_top(&p.channel).await?
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => node.stream_top(&p.channel).await?,
            };
            if res.was_recovering && !res.recovered && p.reject_unrecovered {
                return Err(crate::node::NodeError::Unrecoverable);
            }
            node.note_position(&p.channel, top.offset, &top.epoch);
            res.epoch = top.epoch;
            // A recovered subscription reports the position the client asked
            // to recover from (centrifuge builds the reply that way; SDKs
            // read it in `subscribed`); otherwise the stream top.
            res.offset = match &p.recover {
                Some(since) if res.recovered => since.offset,
                _ => top.offset,
            };
        }
        if p.opts.presence {
            node.add_presence(&p.channel, self.client_info(p.chan_info.clone()))
                .await?;
        }
        Ok(res)
    }

    /// Removes a subscription everywhere (hub, presence, token index) and
    /// sends the leave push.
    pub(super) fn remove_sub(&mut self, channel: &str) {
        let Some(s) = self.subs.remove(channel) else {
            return;
        };
        let node = self.node.clone();
        node.remove_subscriber(channel, &self.id);
        if s.presence {
            node.remove_presence(channel, &self.id);
        }
        if s.join_leave {
            let info = self.client_info(s.chan_info.clone());
            node.join_leave(channel, false, &info);
        }
        if let Some(h) = &self.handle {
            node.unindex_token(&s.token.uid, h);
            let mut st = h.state.lock();
            st.channels.remove(channel);
            st.sub_tokens.remove(channel);
        }
    }

    pub(super) fn unsubscribe(&mut self, id: u32, req: ChannelRequest) -> CmdResult {
        // Always answered with success: an error makes the SDKs reconnect (sdks.md §13.6).
        self.remove_sub(&req.channel);
        Ok(self.proto.reply(id, Reply::Unsubscribe))
    }

    pub(super) async fn sub_refresh(&mut self, id: u32, req: SubRefreshRequest) -> CmdResult {
        if req.channel.is_empty() || req.token.is_empty() {
            return Err(Disconnect::bad_request().into());
        }
        if !self.subs.contains_key(&req.channel) {
            return Err(ClientError::PERMISSION_DENIED.into());
        }
        let claims = self
            .node
            .verifier()
            .verify_subscribe(&req.token)
            .await
            .map_err(sub_token_error)?;
        if claims.channel != req.channel || claims.sub != *self.user {
            return Err(Disconnect::invalid_token().into());
        }
        let now = crate::auth::now();
        let token = TokenId {
            uid: claims.jti.unwrap_or_default(),
            issued_at: crate::auth::issued_at(claims.iat),
        };
        if self.check_token(Some(&req.channel), &token, now) != TokenVerdict::Valid {
            return Err(self.revoked_token_error());
        }
        let expire_at = claims.expire_at.unwrap_or(claims.exp.unwrap_or(0));
        if expire_at > 0 && expire_at < now {
            return Err(ClientError::EXPIRED.into());
        }
        let handle = self.handle.clone();
        let Some(old) = self.subs.get(&req.channel).map(|s| s.token.clone()) else {
            return Err(ClientError::PERMISSION_DENIED.into());
        };
        if let Some(h) = &handle {
            self.hold_token(h, Some(&req.channel), &old, &token)?;
        }
        let Some(sub) = self.subs.get_mut(&req.channel) else {
            return Err(ClientError::PERMISSION_DENIED.into());
        };
        if let Some(h) = &handle {
            h.state
                .lock()
                .sub_tokens
                .insert(req.channel.clone(), token.clone());
        }
        sub.token = token;
        sub.expire_at = expire_at;
        sub.deadline = (expire_at > 0).then(|| super::unix_to_instant(expire_at));
        let (expires, ttl) = if expire_at > 0 {
            (true, super::ttl_until(expire_at))
        } else {
            (false, 0)
        };
        Ok(self.proto.reply(
            id,
            Reply::SubRefresh(&protocol::RefreshResult { expires, ttl }),
        ))
    }
}
