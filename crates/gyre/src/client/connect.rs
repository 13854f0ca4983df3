//! `connect` and `refresh` (protocol.md §1.7, §1.8, §2.4): credentials from
//! a JWT, the connect proxy or anonymous access; then the protective checks
//! (blocked user right after the user id is known; revoked or invalidated
//! token), connection limits, registration and server-side subscriptions.

use super::{CmdError, CmdResult, Phase, Session};
use crate::auth::TokenError;
use crate::codes::{ClientError, Disconnect};
use crate::node::handle::{ClientHandle, HandleState, TokenId, source};
use crate::protect::TokenVerdict;
use crate::protocol::{
    ConnectRequest, ConnectResult, Raw, RefreshRequest, RefreshResult, Reply, share,
};
use crate::proxy::{self, ProxyError};
use base64::Engine;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::time::Instant;

/// A server-side subscription to make at connect.
pub(super) struct ServerSub {
    pub channel: String,
    pub info: Option<Raw>,
    pub data: Option<Raw>,
    pub expire_at: i64,
    pub source: u8,
}

/// Decodes `b64info`-style fields: the bytes must be JSON to be embedded in
/// the JSON protocol.
pub(super) fn b64_json(s: &str) -> Option<Raw> {
    if s.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    serde_json::value::RawValue::from_string(text)
        .ok()
        .map(share)
}

fn token_error(e: TokenError) -> CmdError {
    match e {
        TokenError::Expired => ClientError::TOKEN_EXPIRED.into(),
        TokenError::Invalid(reason) => {
            tracing::debug!(reason, "invalid connection token");
            Disconnect::invalid_token().into()
        }
        TokenError::Unavailable(reason) => {
            tracing::warn!(reason, "token keys unavailable");
            ClientError::INTERNAL.into()
        }
    }
}

fn proxy_error(e: ProxyError) -> CmdError {
    match e {
        ProxyError::Error(e) => CmdError::Error(e),
        ProxyError::Disconnect(d) => CmdError::Disconnect(d),
    }
}

impl Session {
    pub(super) async fn connect(&mut self, id: u32, req: ConnectRequest) -> CmdResult {
        let node = self.node.clone();
        let cfg = &node.cfg().client;
        let now = crate::auth::now();
        let mut server_subs: Vec<ServerSub> = Vec::new();
        let mut data: Option<Raw> = None;
        let mut meta: Option<Raw> = None;
        let user: String;
        let exp: i64;
        if !req.token.is_empty() {
            let claims = node
                .verifier()
                .verify_connect(&req.token)
                .await
                .map_err(token_error)?;
            if claims.sub.is_empty() && cfg.disallow_anonymous_connection_tokens {
                return Err(Disconnect::permission_denied().into());
            }
            user = claims.sub;
            // Centrifugo PRO: the block check runs right after the JWT is decoded.
            self.check_connect_user(&user, now)?;
            self.conn_token = TokenId {
                uid: claims.jti.unwrap_or_default(),
                issued_at: crate::auth::issued_at(claims.iat),
            };
            match self.node.check_token(&user, None, &self.conn_token, now) {
                TokenVerdict::Valid => {}
                _ => return Err(self.revoked_token_error()),
            }
            exp = match claims.expire_at {
                Some(e) => e, // expire_at decouples the connection lifetime from exp; 0 = never
                None => claims.exp.unwrap_or(0),
            };
            self.conn_info = b64_json(&claims.b64info).or(claims.info.map(share));
            meta = claims.meta.map(share);
            if !claims.subs.is_empty() {
                for (ch, o) in claims.subs {
                    server_subs.push(ServerSub {
                        info: b64_json(&o.b64info).or(o.info.map(share)),
                        data: b64_json(&o.b64data).or(o.data.map(share)),
                        channel: ch,
                        expire_at: 0,
                        source: source::CONNECTION_TOKEN,
                    });
                }
            } else {
                for ch in claims.channels {
                    server_subs.push(ServerSub {
                        channel: ch,
                        info: None,
                        data: None,
                        expire_at: 0,
                        source: source::CONNECTION_TOKEN,
                    });
                }
            }
        } else if node.proxy().connect_enabled() {
            let channels: Vec<&str> = req.subs.keys().map(String::as_str).collect();
            // binary_encoding: the backend gets `b64data` (the JSON bytes, base64) instead of `data`.
            let binary = node.proxy().connect_binary();
            let preq = proxy::ConnectRequest {
                client: &self.id,
                transport: self.transport.name(),
                protocol: self.proto.name(),
                encoding: if binary { "binary" } else { "json" },
                name: &req.name,
                version: &req.version,
                data: if binary { None } else { req.data.as_deref() },
                b64data: if binary {
                    req.data
                        .as_deref()
                        .map(|d| base64::engine::general_purpose::STANDARD.encode(d.get()))
                } else {
                    None
                },
                channels,
            };
            let result = node
                .proxy()
                .connect(&preq, &self.headers, &req.headers)
                .await
                .map_err(proxy_error)?;
            let Some(r) = result else {
                if cfg.allow_anonymous_connect_without_token || cfg.insecure {
                    return self
                        .finish_connect(id, &req, String::new(), 0, None, None, vec![])
                        .await;
                }
                return Err(Disconnect::bad_request().into());
            };
            user = r.user;
            // ... or right after the connect proxy answered.
            self.check_connect_user(&user, now)?;
            exp = r.expire_at;
            if exp > 0 && exp < now {
                return Err(ClientError::EXPIRED.into());
            }
            self.conn_info = b64_json(&r.b64info).or(r.info.map(share));
            data = b64_json(&r.b64data).or(r.data.map(share));
            meta = r.meta.map(share);
            for (ch, o) in r.subs {
                server_subs.push(ServerSub {
                    channel: ch,
                    info: o.info.map(share),
                    data: o.data.map(share),
                    expire_at: o.expire_at,
                    source: source::CONNECT_PROXY,
                });
            }
            for ch in r.channels {
                server_subs.push(ServerSub {
                    channel: ch,
                    info: None,
                    data: None,
                    expire_at: 0,
                    source: source::CONNECT_PROXY,
                });
            }
            self.proxy_refresh = node.proxy().refresh_enabled();
            return self
                .finish_connect(id, &req, user, exp, data, meta, server_subs)
                .await;
        } else if cfg.allow_anonymous_connect_without_token || cfg.insecure {
            user = String::new();
            exp = 0;
        } else {
            tracing::debug!("connect without credentials");
            return Err(Disconnect::bad_request().into());
        }
        if exp > 0 && exp < now {
            return Err(ClientError::EXPIRED.into());
        }
        self.proxy_refresh = node.proxy().refresh_enabled();
        self.finish_connect(id, &req, user, exp, data, meta, server_subs)
            .await
    }

    fn check_connect_user(&self, user: &str, now: i64) -> Result<(), CmdError> {
        if self.node.is_blocked(user, now) {
            tracing::info!(user, "connect refused: user is blocked");
            crate::metrics::Metrics::inc(&self.node.metrics().refused_blocked);
            return Err(self.node.protect_codes().block.clone().into());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_connect(
        &mut self,
        id: u32,
        req: &ConnectRequest,
        user: String,
        exp: i64,
        data: Option<Raw>,
        meta: Option<Raw>,
        server_subs: Vec<ServerSub>,
    ) -> CmdResult {
        let node = self.node.clone();
        let cfg = &node.cfg().client;
        // Unknown channel among server-side subscriptions fails the connect (§3.1).
        let mut resolved = Vec::with_capacity(server_subs.len());
        for s in server_subs {
            match node.channels().options(&s.channel) {
                Ok(o) => resolved.push((s, o)),
                Err(crate::config::channel::ChannelError::UnknownNamespace) => {
                    return Err(ClientError::UNKNOWN_CHANNEL.into());
                }
                Err(_) => return Err(ClientError::BAD_REQUEST.into()),
            }
        }
        self.user = Arc::from(user.as_str());
        self.set_exp(exp);
        let handle = Arc::new(ClientHandle {
            id: self.id.clone(),
            user: self.user.clone(),
            outbox: crate::node::outbox::Outbox::new(cfg.queue_max_size),
            transport: self.transport,
            protocol: self.proto,
            app_name: req.name.chars().take(16).collect(),
            app_version: req.version.chars().take(64).collect(),
            connected_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            info: Mutex::new(self.client_info(None)),
            meta,
            state: Mutex::new(HandleState {
                token: self.conn_token.clone(),
                ..Default::default()
            }),
        });
        if !node.register(&handle) {
            return Err(Disconnect::connection_limit().into());
        }
        // Check again now that the connection is findable: a block that
        // landed between the first check and registration scanned the hub
        // before we were in it, so only this check sees it (and the same
        // for the token, in `hold_token`).
        if node.is_blocked(&user, crate::auth::now()) {
            node.unregister(&handle);
            return Err(node.protect_codes().block.clone().into());
        }
        if let Err(e) = self.hold_token(&handle, None, &TokenId::default(), &self.conn_token) {
            node.unregister(&handle);
            return Err(e);
        }
        self.handle = Some(handle);
        self.phase = Phase::Connected;
        crate::metrics::Metrics::inc(&node.metrics().connects);
        let mut subs = BTreeMap::new();
        for (s, opts) in resolved {
            let hint = req.subs.get(&s.channel);
            let recover = hint.and_then(|h| {
                h.recover.then(|| crate::protocol::StreamPosition {
                    offset: h.offset,
                    epoch: h.epoch.clone(),
                })
            });
            let channel = s.channel.clone();
            match self.add_server_sub(s, opts, recover).await {
                Ok(res) => {
                    subs.insert(channel, res);
                }
                Err(e) => {
                    self.close();
                    return Err(e);
                }
            }
        }
        let (expires, ttl) = if exp > 0 && !self.proxy_refresh {
            (true, super::ttl_until(exp))
        } else {
            (false, 0)
        };
        // The first ping comes at a random moment in [interval/2, interval) (§1.10).
        let interval = cfg.ping_interval.0;
        let jitter = (self
            .id
            .as_bytes()
            .iter()
            .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(*b as u64))
            % 1000) as u32;
        self.next_ping = Some(Instant::now() + interval / 2 + (interval / 2) * jitter / 1000);
        tracing::debug!(client = %self.id, user = %self.user, "client connected");
        Ok(self.proto.reply(
            id,
            Reply::Connect(&ConnectResult {
                client: self.id.clone(),
                version: crate::node::VERSION,
                expires,
                ttl,
                data,
                subs,
                ping: interval.as_secs() as u32,
                pong: !cfg.pong_timeout.is_zero() && !self.transport.is_unidirectional(),
                time: if cfg.connect_include_server_time {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0)
                } else {
                    0
                },
                session: self.session_id.as_deref().unwrap_or_default().to_string(),
                node: if self.transport.is_emulation() {
                    self.node.id().to_string()
                } else {
                    String::new()
                },
            }),
        ))
    }

    pub(super) async fn refresh(&mut self, id: u32, req: RefreshRequest) -> CmdResult {
        if req.token.is_empty() || self.proxy_refresh {
            return Err(Disconnect::bad_request().into());
        }
        let claims = self
            .node
            .verifier()
            .verify_connect(&req.token)
            .await
            .map_err(|e| match e {
                // An already expired token ends the connection with 3005, as
                // Centrifugo's refresh handler does (no reply is sent).
                TokenError::Expired => Disconnect::expired().into(),
                e => token_error(e),
            })?;
        if claims.sub != *self.user {
            return Err(Disconnect::invalid_token().into());
        }
        // The token's channels must be the connection's: Centrifugo cannot
        // change server-side subscriptions on refresh and closes with 3010.
        let wanted: Vec<&str> = if claims.subs.is_empty() {
            claims.channels.iter().map(String::as_str).collect()
        } else {
            claims.subs.keys().map(String::as_str).collect()
        };
        if self.token_channels_changed(&wanted) {
            return Err(Disconnect::insufficient_state().into());
        }
        let now = crate::auth::now();
        let token = TokenId {
            uid: claims.jti.clone().unwrap_or_default(),
            issued_at: crate::auth::issued_at(claims.iat),
        };
        if self.node.check_token(&self.user, None, &token, now) != TokenVerdict::Valid {
            return Err(self.revoked_token_error());
        }
        let exp = claims.expire_at.unwrap_or(claims.exp.unwrap_or(0));
        if exp > 0 && exp < now {
            // `exp` passed the JWT check, so this is an `expire_at` in the
            // past: error 110, as Centrifugo answers a non-positive ttl.
            return Err(ClientError::EXPIRED.into());
        }
        if let Some(h) = self.handle.clone() {
            self.hold_token(&h, None, &self.conn_token, &token)?;
            h.state.lock().token = token.clone();
        }
        self.conn_token = token;
        self.set_exp(exp);
        if let Some(info) = b64_json(&claims.b64info).or(claims.info.map(share)) {
            self.set_info(Some(info));
        }
        let (expires, ttl) = if exp > 0 {
            (true, super::ttl_until(exp))
        } else {
            (false, 0)
        };
        Ok(self
            .proto
            .reply(id, Reply::Refresh(&RefreshResult { expires, ttl })))
    }

    /// True when a refreshed token's channels (`subs` keys, else `channels`)
    /// differ from the connection's: one of them is not subscribed, or a
    /// subscription made from the connection token is not in it. Order and
    /// duplicates do not count (Centrifugo's `tokenChannelsChanged`).
    fn token_channels_changed(&self, wanted: &[&str]) -> bool {
        if wanted.iter().any(|ch| !self.subs.contains_key(*ch)) {
            return true;
        }
        let Some(h) = &self.handle else { return false };
        let st = h.state.lock();
        st.channels
            .iter()
            .any(|(ch, src)| *src == source::CONNECTION_TOKEN && !wanted.contains(&ch.as_str()))
    }

    /// Asks the refresh proxy to extend an expired connection.
    pub(super) async fn proxy_refresh_now(&mut self) -> Result<(), super::Close> {
        let meta = if self.node.cfg().client.proxy.refresh.include_connection_meta {
            self.handle.as_ref().and_then(|h| h.meta.clone())
        } else {
            None
        };
        let req = proxy::RefreshRequest {
            client: &self.id,
            transport: self.transport.name(),
            protocol: self.proto.name(),
            encoding: "json",
            user: &self.user,
            meta: meta.as_deref(),
        };
        match self.node.proxy().refresh(&req, &self.headers).await {
            Ok(Some(r)) if r.expired => Err(Disconnect::expired().into()),
            Ok(Some(r)) if r.expire_at > 0 && r.expire_at <= crate::auth::now() => {
                Err(Disconnect::expired().into())
            }
            Ok(Some(r)) => {
                self.set_exp(r.expire_at);
                if let Some(info) = b64_json(&r.b64info).or(r.info.map(share)) {
                    self.set_info(Some(info));
                }
                Ok(())
            }
            Ok(None) => Err(Disconnect::expired().into()),
            Err(ProxyError::Disconnect(d)) => Err(d.into()),
            Err(ProxyError::Error(e)) => {
                // Backend trouble: keep the connection and ask again shortly.
                tracing::warn!(client = %self.id, error = %e, "refresh proxy failed; retrying in 10s");
                self.set_exp(crate::auth::now() + 10);
                Ok(())
            }
        }
    }
}
