//! What the rest of the node knows about a live connection: its identity, its
//! outbound queue, and a small snapshot of its state for the `connections`
//! API and the protective checks. The session task owns the real state and
//! keeps this snapshot current.

use crate::node::outbox::Outbox;
use crate::protocol::{ClientInfo, Raw};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A connection's transport (one byte per connection, not a `&str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportKind {
    /// Bidirectional WebSocket (`/connection/websocket`).
    #[default]
    Websocket,
    /// Bidirectional emulation over HTTP streaming (`/connection/http_stream`).
    HttpStream,
    /// Bidirectional emulation over SSE (`/connection/sse`).
    Sse,
    /// Unidirectional WebSocket (`/connection/uni_websocket`).
    UniWebsocket,
    /// Unidirectional HTTP streaming (`/connection/uni_http_stream`).
    UniHttpStream,
    /// Unidirectional SSE (`/connection/uni_sse`).
    UniSse,
}

impl TransportKind {
    /// The name in proxy requests and the `connections` API.
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Websocket => "websocket",
            TransportKind::HttpStream => "http_stream",
            TransportKind::Sse => "sse",
            TransportKind::UniWebsocket => "uni_websocket",
            TransportKind::UniHttpStream => "uni_http_stream",
            TransportKind::UniSse => "uni_sse",
        }
    }

    /// Server-to-client only: the connect result is a push, pushes are not
    /// wrapped in replies, no pongs are expected.
    pub fn is_unidirectional(self) -> bool {
        matches!(
            self,
            TransportKind::UniWebsocket | TransportKind::UniHttpStream | TransportKind::UniSse
        )
    }

    /// Bidirectional emulation: commands arrive through `/emulation`.
    pub fn is_emulation(self) -> bool {
        matches!(self, TransportKind::HttpStream | TransportKind::Sse)
    }
}

/// Token identity (`jti`, `iat`) as shown by `connections` (`state.connection_token`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TokenId {
    /// `jti`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `iat`.
    #[serde(skip_serializing_if = "is_zero")]
    pub issued_at: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl TokenId {
    /// True if the token carried neither `jti` nor `iat`.
    pub fn is_empty(&self) -> bool {
        self.uid.is_empty() && self.issued_at == 0
    }
}

/// Where a subscription came from (Centrifugo's `subsource` values, §5.5).
pub mod source {
    /// Connection token `channels`/`subs`.
    pub const CONNECTION_TOKEN: u8 = 1;
    /// Connect proxy result.
    pub const CONNECT_PROXY: u8 = 2;
    /// Subscription token.
    pub const SUBSCRIPTION_TOKEN: u8 = 3;
    /// User-limited channel.
    pub const USER_LIMITED: u8 = 5;
    /// Namespace allows client subscriptions.
    pub const CLIENT_ALLOWED: u8 = 6;
    /// `client.insecure`.
    pub const CLIENT_INSECURE: u8 = 7;
    /// Server API `subscribe`.
    pub const SERVER_API: u8 = 10;
}

/// Mutable part of a connection's public snapshot.
#[derive(Debug, Default)]
pub struct HandleState {
    /// Subscribed channels and their source.
    pub channels: BTreeMap<String, u8>,
    /// Connection token identity.
    pub token: TokenId,
    /// Subscription token identities by channel.
    pub sub_tokens: BTreeMap<String, TokenId>,
}

/// Shared handle of one connection.
#[derive(Debug)]
pub struct ClientHandle {
    /// Client id (UUID).
    pub id: Arc<str>,
    /// User id (`""` = anonymous).
    pub user: Arc<str>,
    /// Outbound queue.
    pub outbox: Outbox,
    /// The transport, for proxies and `connections`.
    pub transport: TransportKind,
    /// The connection's encoding.
    pub protocol: crate::protocol::ProtocolKind,
    /// Client-provided app name.
    pub app_name: String,
    /// Client-provided app version.
    pub app_version: String,
    /// Connect time, Unix ms.
    pub connected_at_ms: i64,
    /// Connection `info` for presence and publications.
    pub info: Mutex<ClientInfo>,
    /// Server-only metadata (`meta` claim or proxy result).
    pub meta: Option<Raw>,
    /// Snapshot for `connections` and checks.
    pub state: Mutex<HandleState>,
}

impl ClientHandle {
    /// A handle that no session drives (benches, examples, tests): a JSON
    /// WebSocket connection of `user` with an outbox of `queue_max` bytes.
    pub fn detached(id: &str, user: &str, queue_max: usize) -> Arc<ClientHandle> {
        let id: Arc<str> = Arc::from(id);
        let user: Arc<str> = Arc::from(user);
        Arc::new(ClientHandle {
            id: id.clone(),
            user: user.clone(),
            outbox: Outbox::new(queue_max),
            transport: TransportKind::Websocket,
            protocol: crate::protocol::ProtocolKind::Json,
            app_name: String::new(),
            app_version: String::new(),
            connected_at_ms: 0,
            info: Mutex::new(ClientInfo {
                user,
                client: id,
                conn_info: None,
                chan_info: None,
            }),
            meta: None,
            state: Mutex::new(HandleState::default()),
        })
    }
}
