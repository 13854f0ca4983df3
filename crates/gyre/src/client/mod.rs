//! A client session: the state machine behind one connection (protocol.md
//! §1.6). The connection task owns the session and feeds it frames, queued
//! instructions and timer ticks; the session answers with encoded replies or a
//! reason to close. Nothing here touches the socket, so the logic is the
//! same whatever the transport.

mod commands;
mod connect;
mod subscribe;

use crate::codes::{ClientError, Disconnect};
use crate::node::Node;
use crate::node::handle::{ClientHandle, TokenId, TransportKind};
use crate::node::outbox::Instruction;
use crate::protect::TokenVerdict;
use crate::protocol::{self, ClientInfo, Command, ProtocolKind, Push, Raw, Reply};
use axum::http::HeaderMap;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How a session ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Close {
    /// Send a close frame with this code and reason.
    Frame(Disconnect),
    /// Drop the TCP connection without a close frame (code 3000, §1.2).
    Drop,
}

impl From<Disconnect> for Close {
    fn from(d: Disconnect) -> Self {
        Close::Frame(d)
    }
}

/// A failed command: an error reply, or the end of the connection.
#[derive(Debug)]
pub(crate) enum CmdError {
    Error(ClientError),
    Disconnect(Disconnect),
}

impl From<crate::codes::BuiltinError> for CmdError {
    fn from(e: crate::codes::BuiltinError) -> Self {
        CmdError::Error(e.into())
    }
}

impl From<Disconnect> for CmdError {
    fn from(d: Disconnect) -> Self {
        CmdError::Disconnect(d)
    }
}

type CmdResult = Result<Bytes, CmdError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Connected,
    /// `connect` failed with an error reply: further commands are ignored
    /// and the socket is dropped shortly (§1.6 rule 7).
    Failed,
}

/// State of one subscription.
#[derive(Debug)]
struct SubState {
    presence: bool,
    /// Positioned (or recoverable): must see every offset.
    positioned: bool,
    join_leave: bool,
    expire_at: i64,
    /// `expire_at` as a monotonic deadline.
    deadline: Option<Instant>,
    token: TokenId,
    chan_info: Option<Raw>,
}

/// Grace before a connection that failed `connect` is dropped.
const FAILED_DROP_DELAY: Duration = Duration::from_secs(5);

/// One client's session.
pub struct Session {
    node: Arc<Node>,
    /// The connection's encoding: every reply and push goes through it.
    proto: ProtocolKind,
    /// The transport, for proxies and `connections`.
    transport: TransportKind,
    phase: Phase,
    id: Arc<str>,
    user: Arc<str>,
    handle: Option<Arc<ClientHandle>>,
    subs: HashMap<String, SubState>,
    /// Connection expiry, Unix seconds (0 = none).
    exp: i64,
    /// `exp` as a monotonic deadline.
    exp_deadline: Option<Instant>,
    /// Expiry is handled by the refresh proxy rather than by the client.
    proxy_refresh: bool,
    conn_token: TokenId,
    conn_info: Option<Raw>,
    deadline_base: Instant,
    next_ping: Option<Instant>,
    ping_outstanding: bool,
    pong_deadline: Option<Instant>,
    /// Request headers, kept only when a proxy may need to forward them.
    headers: HeaderMap,
    /// Session id of unidirectional and emulated connections (empty for
    /// WebSocket): in the connect result, and the key `/emulation` finds
    /// the connection by. Boxed: every WebSocket connection carries the field.
    session_id: Option<Box<str>>,
}

/// The monotonic instant of a Unix time in seconds, with millisecond
/// precision so that a deadline never fires a little before the second it
/// names (which would postpone it forever). Any Unix time works: one
/// beyond a century ahead is a century ahead (no overflow, whatever an API
/// caller sends).
pub(crate) fn unix_to_instant(unix: i64) -> Instant {
    const CENTURY_MS: i64 = 100 * 365 * 86_400 * 1000;
    let now_ms = crate::protect::change::now_ms();
    let diff = unix.saturating_mul(1000).saturating_sub(now_ms);
    let now = Instant::now();
    if diff <= 0 {
        now
    } else {
        now + Duration::from_millis(diff.min(CENTURY_MS) as u64)
    }
}

/// Seconds from now until `unix`, as the protocol's `ttl` (never negative,
/// never wrapping).
pub(crate) fn ttl_until(unix: i64) -> u32 {
    unix.saturating_sub(crate::auth::now())
        .clamp(0, u32::MAX as i64) as u32
}

impl Session {
    /// A new session of a JSON WebSocket connection, in the connecting phase.
    pub fn new(node: Arc<Node>, headers: HeaderMap) -> Self {
        Self::for_transport(node, TransportKind::Websocket, ProtocolKind::Json, headers)
    }

    /// A new session over `transport` speaking `proto`.
    pub fn for_transport(
        node: Arc<Node>,
        transport: TransportKind,
        proto: ProtocolKind,
        headers: HeaderMap,
    ) -> Self {
        let headers = if node.proxy().connect_enabled() || node.proxy().refresh_enabled() {
            headers
        } else {
            HeaderMap::new()
        };
        Session {
            node,
            proto,
            transport,
            phase: Phase::Connecting,
            id: Arc::from(uuid::Uuid::new_v4().to_string()),
            user: Arc::from(""),
            handle: None,
            subs: HashMap::new(),
            exp: 0,
            exp_deadline: None,
            proxy_refresh: false,
            conn_token: TokenId::default(),
            conn_info: None,
            deadline_base: Instant::now(),
            next_ping: None,
            ping_outstanding: false,
            pong_deadline: None,
            headers,
            session_id: None,
        }
    }

    /// Sets the session id of an emulated or unidirectional connection.
    pub fn set_session_id(&mut self, id: String) {
        self.session_id = Some(id.into_boxed_str());
    }

    /// The error of a failed connect on a unidirectional transport, which
    /// has no reply to carry it: the disconnect centrifuge maps it to
    /// (expired tokens 3005, permission denied 3507, too many requests 3013,
    /// anything else
    /// 3004).
    fn uni_disconnect(e: &ClientError) -> Disconnect {
        match e.code {
            109 | 110 => Disconnect::expired(),
            103 => Disconnect::permission_denied(),
            111 => Disconnect::new(3013, "too many requests"),
            _ => Disconnect::internal(),
        }
    }

    /// The registered handle, once connected.
    pub fn handle(&self) -> Option<&Arc<ClientHandle>> {
        self.handle.as_ref()
    }

    /// Processes one inbound text frame (one or more commands).
    pub async fn handle_frame(&mut self, frame: &[u8], out: &mut Vec<Bytes>) -> Result<(), Close> {
        if self.phase == Phase::Failed {
            return Ok(()); // §1.6 rule 7: stop reading commands after a failed connect
        }
        let cmds = self
            .proto
            .decode_frame(frame)
            .map_err(|_| Disconnect::bad_request())?;
        // Replies wait in `out` until the frame is done, so they count
        // against `client.queue_max_size` together with what is queued in
        // the outbox (centrifuge puts replies in the same queue): one small
        // frame of many `history` commands must not grow memory without
        // bound. Over the limit: 3008 `slow`, as for a slow reader.
        let max = self.node.cfg().client.queue_max_size;
        let mut reply_bytes: usize = out.iter().map(Bytes::len).sum();
        for cmd in cmds {
            // A connection closed meanwhile (block, API disconnect, slow)
            // runs none of the frame's remaining commands.
            if self.handle.as_ref().is_some_and(|h| h.outbox.is_closed()) {
                break;
            }
            let before = out.len();
            self.handle_command(cmd, out).await?;
            reply_bytes += out[before..].iter().map(Bytes::len).sum::<usize>();
            let queued = self.handle.as_ref().map_or(0, |h| h.outbox.queued_bytes());
            if reply_bytes + queued > max {
                out.clear();
                return Err(Disconnect::slow().into());
            }
            if self.phase == Phase::Failed {
                break;
            }
        }
        Ok(())
    }

    async fn handle_command(&mut self, cmd: Command, out: &mut Vec<Bytes>) -> Result<(), Close> {
        let id = cmd.id;
        if id == 0 {
            if cmd.send.is_some() {
                if self.phase != Phase::Connected {
                    return Err(Disconnect::bad_request().into());
                }
                // Centrifugo OSS registers no message handler: 3508 (§1.6 rule 9).
                return Err(Disconnect::not_available().into());
            }
            // An id-less command is a pong (§1.6 rule 2).
            if self.phase != Phase::Connected || !self.ping_outstanding {
                return Err(Disconnect::bad_request().into());
            }
            self.ping_outstanding = false;
            self.pong_deadline = None;
            return Ok(());
        }
        if self.phase == Phase::Connecting && cmd.connect.is_none() {
            return Err(Disconnect::bad_request().into());
        }
        let result: CmdResult = if let Some(req) = cmd.connect {
            if self.phase != Phase::Connecting {
                return Err(Disconnect::bad_request().into()); // already authenticated
            }
            // Boxed: the connect path (JWT, JWKS, proxy) is a large future, and
            // every idle connection's task would otherwise carry its size.
            match Box::pin(self.connect(id, *req)).await {
                Ok(b) => Ok(b),
                Err(CmdError::Error(e)) if self.transport.is_unidirectional() => {
                    return Err(Self::uni_disconnect(&e).into());
                }
                Err(CmdError::Error(e)) => {
                    self.phase = Phase::Failed;
                    self.deadline_base = Instant::now();
                    out.push(self.proto.reply(id, Reply::Error(&e)));
                    return Ok(());
                }
                Err(e) => Err(e),
            }
        } else if let Some(req) = cmd.subscribe {
            Box::pin(self.subscribe(id, *req)).await
        } else if let Some(req) = cmd.unsubscribe {
            self.unsubscribe(id, *req)
        } else if let Some(req) = cmd.publish {
            Box::pin(self.publish(id, *req)).await
        } else if let Some(req) = cmd.presence {
            Box::pin(self.presence(id, *req)).await
        } else if let Some(req) = cmd.presence_stats {
            Box::pin(self.presence_stats(id, *req)).await
        } else if let Some(req) = cmd.history {
            Box::pin(self.history(id, *req)).await
        } else if cmd.ping.is_some() {
            Err(ClientError::NOT_AVAILABLE.into())
        } else if cmd.rpc.is_some() {
            // No RPC proxy: Centrifugo answers 108 (§1.8).
            Err(ClientError::NOT_AVAILABLE.into())
        } else if let Some(req) = cmd.refresh {
            Box::pin(self.refresh(id, *req)).await
        } else if let Some(req) = cmd.sub_refresh {
            Box::pin(self.sub_refresh(id, *req)).await
        } else {
            // No known request field, or a `send` carrying an id.
            Err(Disconnect::bad_request().into())
        };
        match result {
            Ok(b) => out.push(b),
            Err(CmdError::Error(e)) => out.push(self.proto.reply(id, Reply::Error(&e))),
            Err(CmdError::Disconnect(d)) => return Err(d.into()),
        }
        Ok(())
    }

    /// Applies an instruction queued by the node (API action, protective change).
    pub async fn handle_instruction(
        &mut self,
        c: Instruction,
        out: &mut Vec<Bytes>,
    ) -> Result<(), Close> {
        if self.phase != Phase::Connected {
            return Ok(());
        }
        match c {
            Instruction::Unsubscribe {
                channel,
                code,
                reason,
            } => {
                if self.subs.contains_key(&channel) {
                    self.remove_sub(&channel);
                    out.push(self.proto.push(
                        &channel,
                        Push::Unsubscribe(protocol::CodeReason {
                            code,
                            reason: &reason,
                        }),
                    ));
                }
            }
            // Boxed: subscribing is a large future and rare here; every idle
            // connection task would otherwise carry its size.
            Instruction::Subscribe(s) => Box::pin(self.server_api_subscribe(*s, out)).await,
            Instruction::Refresh {
                expired,
                expire_at,
                info,
            } => {
                if expired {
                    return Err(Disconnect::expired().into());
                }
                self.set_exp(expire_at);
                if let Some(i) = info {
                    self.set_info(Some(i));
                }
                if expire_at > 0 {
                    let ttl = ttl_until(expire_at);
                    out.push(self.proto.push(
                        "",
                        Push::Refresh(&protocol::RefreshResult { expires: true, ttl }),
                    ));
                }
            }
            Instruction::Recheck => self.recheck(out)?,
            Instruction::InsufficientState { channel } => {
                if self.subs.get(&channel).is_some_and(|s| s.positioned) {
                    self.remove_sub(&channel);
                    out.push(self.proto.push(
                        &channel,
                        Push::Unsubscribe(protocol::CodeReason {
                            code: 2500,
                            reason: "insufficient state",
                        }),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Re-checks the connection and subscription tokens against the
    /// protective sets after a revocation or invalidation.
    fn recheck(&mut self, out: &mut Vec<Bytes>) -> Result<(), Close> {
        let now = crate::auth::now();
        if self.node.is_blocked(&self.user, now) {
            return Err(self.node.protect_codes().block.clone().into());
        }
        match self.check_token(None, &self.conn_token, now) {
            TokenVerdict::Valid => {}
            TokenVerdict::Revoked => return Err(self.node.protect_codes().revoke.clone().into()),
            TokenVerdict::Invalidated => {
                return Err(self.node.protect_codes().invalidate.clone().into());
            }
        }
        let bad: Vec<String> = self
            .subs
            .iter()
            .filter(|(ch, s)| self.check_token(Some(ch), &s.token, now) != TokenVerdict::Valid)
            .map(|(c, _)| c.clone())
            .collect();
        for ch in bad {
            self.remove_sub(&ch);
            let (code, reason) = crate::codes::unsub::STATE_INVALIDATED;
            out.push(self.proto.push(
                &ch,
                Push::Unsubscribe(protocol::CodeReason { code, reason }),
            ));
        }
        Ok(())
    }

    /// Makes `h` hold `new` instead of `old` in the node's token index, then
    /// checks `new` again. The one mechanism of connect, refresh, subscribe
    /// and sub_refresh: a revocation that lands between the first check and
    /// indexing scanned the index before the token was in it, so only this
    /// second check sees it; one that lands after indexing reaches the
    /// connection as a re-check. On failure the index is as it was.
    pub(crate) fn hold_token(
        &self,
        h: &Arc<ClientHandle>,
        channel: Option<&str>,
        old: &TokenId,
        new: &TokenId,
    ) -> Result<(), CmdError> {
        let swap = old.uid != new.uid;
        if swap {
            self.node.index_token(&new.uid, h);
        }
        if self.check_token(channel, new, crate::auth::now()) != TokenVerdict::Valid {
            if swap {
                self.node.unindex_token(&new.uid, h);
            }
            return Err(self.revoked_token_error());
        }
        if swap {
            self.node.unindex_token(&old.uid, h);
        }
        Ok(())
    }

    /// Checks a token of this connection's user against the enabled
    /// protective features: the connection token, or (with `channel`) a
    /// subscription token.
    fn check_token(&self, channel: Option<&str>, t: &TokenId, now: i64) -> TokenVerdict {
        self.node.check_token(&self.user, channel, t, now)
    }

    /// Sets the connection expiry and its deadline.
    pub(crate) fn set_exp(&mut self, exp: i64) {
        self.exp = exp;
        self.exp_deadline = (exp > 0).then(|| unix_to_instant(exp));
    }

    /// Error 109 for a revoked or invalidated token (counted for `/metrics`).
    pub(crate) fn revoked_token_error(&self) -> CmdError {
        crate::metrics::Metrics::inc(&self.node.metrics().refused_token);
        ClientError::TOKEN_EXPIRED.into()
    }

    fn set_info(&mut self, info: Option<Raw>) {
        self.conn_info = info.clone();
        if let Some(h) = &self.handle {
            h.info.lock().conn_info = info;
        }
    }

    fn client_info(&self, chan_info: Option<Raw>) -> ClientInfo {
        ClientInfo {
            user: self.user.clone(),
            client: self.id.clone(),
            conn_info: self.conn_info.clone(),
            chan_info,
        }
    }

    /// The earliest moment `on_timer` has something to do.
    pub fn next_deadline(&self) -> Instant {
        let cfg = &self.node.cfg().client;
        match self.phase {
            Phase::Connecting => self.deadline_base + cfg.stale_close_delay.0,
            Phase::Failed => self.deadline_base + FAILED_DROP_DELAY,
            Phase::Connected => {
                // A fixed far point, so the connection's timer is not moved on every wake.
                let far = self.deadline_base + Duration::from_secs(365 * 86400);
                let mut d = self.next_ping.unwrap_or(far);
                if let Some(p) = self.pong_deadline {
                    d = d.min(p);
                }
                if let Some(e) = self.exp_deadline {
                    let grace = if self.proxy_refresh {
                        Duration::ZERO
                    } else {
                        cfg.expired_close_delay.0
                    };
                    d = d.min(e + grace);
                }
                for s in self.subs.values() {
                    if let Some(e) = s.deadline {
                        d = d.min(e + cfg.expired_sub_close_delay.0);
                    }
                }
                d
            }
        }
    }

    /// Runs whatever is due: stale close, pings, pong deadline, expiries.
    pub async fn on_timer(&mut self, out: &mut Vec<Bytes>) -> Result<(), Close> {
        let now = Instant::now();
        let node = self.node.clone();
        let cfg = &node.cfg().client;
        match self.phase {
            Phase::Connecting => {
                if now >= self.deadline_base + cfg.stale_close_delay.0 {
                    return Err(Disconnect::stale().into());
                }
            }
            Phase::Failed => {
                if now >= self.deadline_base + FAILED_DROP_DELAY {
                    return Err(Close::Drop);
                }
            }
            Phase::Connected => {
                if self.pong_deadline.is_some_and(|p| now >= p) {
                    return Err(Disconnect::no_pong().into());
                }
                if self.next_ping.is_some_and(|p| now >= p) {
                    out.push(self.proto.ping());
                    self.ping_outstanding = true;
                    // Unidirectional clients cannot answer.
                    if !cfg.pong_timeout.is_zero() && !self.transport.is_unidirectional() {
                        self.pong_deadline = Some(now + cfg.pong_timeout.0);
                    }
                    self.next_ping = Some(now + cfg.ping_interval.0);
                }
                if let Some(e) = self.exp_deadline {
                    if self.proxy_refresh {
                        if now >= e {
                            Box::pin(self.proxy_refresh_now()).await?;
                        }
                    } else if now >= e + cfg.expired_close_delay.0 {
                        return Err(Disconnect::expired().into());
                    }
                }
                let expired: Vec<String> = self
                    .subs
                    .iter()
                    .filter(|(_, s)| {
                        s.deadline
                            .is_some_and(|e| now >= e + cfg.expired_sub_close_delay.0)
                    })
                    .map(|(c, _)| c.clone())
                    .collect();
                for ch in expired {
                    self.remove_sub(&ch);
                    let (code, reason) = crate::codes::unsub::EXPIRED;
                    out.push(self.proto.push(
                        &ch,
                        Push::Unsubscribe(protocol::CodeReason { code, reason }),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Cleans up after the connection ended: hub, presence, leave pushes.
    pub fn close(&mut self) {
        let channels: Vec<String> = self.subs.keys().cloned().collect();
        for ch in channels {
            self.remove_sub(&ch);
        }
        if let Some(h) = self.handle.take() {
            self.node.unregister(&h);
            self.node.unindex_token(&self.conn_token.uid, &h);
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// The connection task's future embeds the largest future it awaits, and
    /// every idle connection pays for it: keep an eye on it.
    #[test]
    fn session_futures_stay_small() {
        let cfg = crate::config::load_value(serde_json::json!({}), &[], &[])
            .unwrap()
            .config;
        let node = crate::node::Node::new(cfg).unwrap();
        let mut s = super::Session::new(node, Default::default());
        let mut out = Vec::new();
        let f = s.handle_frame(b"{}", &mut out);
        let frame = std::mem::size_of_val(&f);
        drop(f);
        let t = s.on_timer(&mut out);
        let timer = std::mem::size_of_val(&t);
        drop(t);
        let i = s.handle_instruction(crate::node::outbox::Instruction::Recheck, &mut out);
        let instruction = std::mem::size_of_val(&i);
        drop(i);
        eprintln!(
            "handle_frame future: {frame} bytes, on_timer future: {timer} bytes, \
             handle_instruction future: {instruction} bytes, session: {} bytes",
            std::mem::size_of::<super::Session>()
        );
        assert!(
            frame <= 512 && timer <= 512 && instruction <= 512,
            "boxed slow paths keep per-connection futures small"
        );
    }
}
