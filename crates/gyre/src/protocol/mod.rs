//! Client protocol v2 (protocol.md §1): the commands a client sends, the
//! results and pushes the server answers, and the encodings that carry
//! them. The session works with the types here and never with an encoding:
//! a [`ProtocolKind`] decodes a frame into [`Command`]s and encodes typed
//! [`Reply`]s and [`Push`]es: JSON (`json.rs`: newline-delimited JSON in
//! text frames, and bare pushes for unidirectional transports) and
//! protobuf (`protobuf.rs`: length-delimited messages in binary frames).
//! Payloads (`data`, `info`) stay as received from decode to encode: Gyre
//! never parses application data.

mod json;
pub mod protobuf;

pub use json::{DecodeError, decode_frame, encode_error, encode_push, encode_reply};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Raw JSON shared between every place that sends it.
pub type Raw = Arc<RawValue>;

/// Application data of a publication: raw JSON (from JSON clients, the
/// server API, or a protobuf client whose bytes are JSON), or bytes that
/// are not JSON (from a protobuf client). Protobuf clients get the bytes
/// as they were sent either way. JSON clients never get a `Binary`
/// publication: writing it raw would break their frames (Centrifugo writes
/// it raw; docs/transports.md "Mixed clients and binary data" says why Gyre skips it).
#[derive(Debug, Clone)]
pub enum Payload {
    /// Valid JSON.
    Json(Raw),
    /// Not JSON.
    Binary(Bytes),
}

impl Payload {
    /// Classifies bytes from a protobuf client or Redis: JSON when they
    /// parse as JSON (one check per publication, not per subscriber).
    pub fn from_bytes(b: &[u8]) -> Payload {
        match std::str::from_utf8(b)
            .ok()
            .and_then(|s| RawValue::from_string(s.to_string()).ok())
        {
            Some(raw) => Payload::Json(share(raw)),
            None => Payload::Binary(Bytes::copy_from_slice(b)),
        }
    }

    /// The bytes as sent.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Json(r) => r.get().as_bytes(),
            Payload::Binary(b) => b,
        }
    }

    /// True for JSON.
    pub fn is_json(&self) -> bool {
        matches!(self, Payload::Json(_))
    }
}

impl From<Raw> for Payload {
    fn from(r: Raw) -> Self {
        Payload::Json(r)
    }
}

/// JSON writes the JSON as is; binary data (only in server API answers,
/// never to JSON clients) as a base64 string.
impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Json(r) => r.serialize(s),
            Payload::Binary(b) => {
                use base64::Engine;
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|r| Payload::Json(share(r)))
    }
}

/// One client command. Only the first present request field counts (§1.4).
/// Requests are boxed so a command (and every future holding one) stays small.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Command {
    /// Request id; 0 only for `send` and for pongs.
    pub id: u32,
    /// `connect`.
    pub connect: Option<Box<ConnectRequest>>,
    /// `subscribe`.
    pub subscribe: Option<Box<SubscribeRequest>>,
    /// `unsubscribe`.
    pub unsubscribe: Option<Box<ChannelRequest>>,
    /// `publish`.
    pub publish: Option<Box<PublishRequest>>,
    /// `presence`.
    pub presence: Option<Box<ChannelRequest>>,
    /// `presence_stats`.
    pub presence_stats: Option<Box<ChannelRequest>>,
    /// `history`.
    pub history: Option<Box<HistoryRequest>>,
    /// `ping` (protocol v1 leftover): answered with 108.
    pub ping: Option<serde::de::IgnoredAny>,
    /// `send`.
    pub send: Option<Box<SendRequest>>,
    /// `rpc`.
    pub rpc: Option<Box<RpcRequest>>,
    /// `refresh`.
    pub refresh: Option<Box<RefreshRequest>>,
    /// `sub_refresh`.
    pub sub_refresh: Option<Box<SubRefreshRequest>>,
}

/// `connect` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    /// Connection JWT.
    pub token: String,
    /// Custom data for the connect proxy.
    pub data: Option<Box<RawValue>>,
    /// Recovery hints for server-side subscriptions.
    pub subs: BTreeMap<String, SubscribeRequest>,
    /// Client name.
    pub name: String,
    /// Client version.
    pub version: String,
    /// Emulated headers.
    pub headers: BTreeMap<String, String>,
}

/// `subscribe` request (also used for connect `subs` hints).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeRequest {
    /// Channel.
    pub channel: String,
    /// Subscription JWT.
    pub token: String,
    /// Recover missed publications from `offset`/`epoch`.
    pub recover: bool,
    /// Stream epoch known to the client.
    pub epoch: String,
    /// Last offset seen by the client.
    pub offset: u64,
    /// Custom data (subscribe proxy; ignored).
    pub data: Option<Box<RawValue>>,
    /// Ask for a positioned subscription.
    pub positioned: bool,
    /// Ask for a recoverable subscription.
    pub recoverable: bool,
    /// Ask for join/leave pushes.
    pub join_leave: bool,
    /// Delta compression asked for (`"fossil"` is the only kind).
    pub delta: String,
    /// Bit flags: [`SUBSCRIBE_FLAG_REJECT_UNRECOVERED`] (others are ignored).
    pub flag: i64,
    /// Subscription type: 0 stream (the only one Gyre serves), 1-3 map
    /// subscriptions, 4 shared poll.
    #[serde(rename = "type")]
    pub kind: i32,
}

/// Subscribe `flag` bit: answer 112 `unrecoverable position` instead of
/// subscribing without recovery (centrifuge-js sets it with `getState`).
pub const SUBSCRIBE_FLAG_REJECT_UNRECOVERED: i64 = 2;

/// Requests that only name a channel.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChannelRequest {
    /// Channel.
    pub channel: String,
}

/// `publish` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PublishRequest {
    /// Channel.
    pub channel: String,
    /// Payload.
    pub data: Option<Payload>,
}

/// `history` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HistoryRequest {
    /// Channel.
    pub channel: String,
    /// Most publications to return (0 = only the position).
    pub limit: i64,
    /// Return publications after this position.
    pub since: Option<StreamPosition>,
    /// Newest first.
    pub reverse: bool,
}

/// A position in a channel's stream.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct StreamPosition {
    /// Offset.
    pub offset: u64,
    /// Epoch.
    pub epoch: String,
}

/// `send` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SendRequest {
    /// Payload.
    pub data: Option<Box<RawValue>>,
}

/// `rpc` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RpcRequest {
    /// Method.
    pub method: String,
    /// Payload.
    pub data: Option<Box<RawValue>>,
}

/// `refresh` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshRequest {
    /// New connection JWT.
    pub token: String,
}

/// `sub_refresh` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubRefreshRequest {
    /// Channel.
    pub channel: String,
    /// New subscription JWT.
    pub token: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}
fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// Who published or joined: `user` and `client` are always present (§1.5).
#[derive(Debug, Clone, Serialize)]
pub struct ClientInfo {
    /// User id (`""` for anonymous).
    pub user: Arc<str>,
    /// Client id.
    pub client: Arc<str>,
    /// Connection info from the token or proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_info: Option<Raw>,
    /// Channel info from the subscription token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chan_info: Option<Raw>,
}

/// A publication, as pushed, kept in history and recovered.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    /// Payload.
    pub data: Payload,
    /// Publisher, for client publications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
    /// Offset in the channel stream (0 when the channel keeps no history).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    /// Tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Arc<BTreeMap<String, String>>>,
}

/// `connect` result.
#[derive(Debug, Default, Serialize)]
pub struct ConnectResult {
    /// Client id.
    pub client: Arc<str>,
    /// Server version.
    pub version: &'static str,
    /// Connection expires (client refresh expected).
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until expiry.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    /// Connect proxy data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    /// Server-side subscriptions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, SubscribeResult>,
    /// Ping interval, seconds.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ping: u32,
    /// Client must answer pings.
    #[serde(skip_serializing_if = "is_false")]
    pub pong: bool,
    /// Server time in ms (`client.connect_include_server_time`).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub time: i64,
    /// Session id (unidirectional and emulated connections).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// Node id (emulated connections post commands naming it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
}

/// `subscribe` result, also the body of a `subscribe` push.
#[derive(Debug, Default, Serialize)]
pub struct SubscribeResult {
    /// Subscription expires.
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until expiry.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    /// Recovery is on.
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    /// Stream epoch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// Recovered publications.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    /// All missed publications were recovered.
    #[serde(skip_serializing_if = "is_false")]
    pub recovered: bool,
    /// Stream top offset.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    /// Positioning is on.
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    /// Data from the token's `subs` claim or the proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Raw>,
    /// The client asked to recover.
    #[serde(skip_serializing_if = "is_false")]
    pub was_recovering: bool,
}

/// `history` result: the three fields are always present (§1.5).
#[derive(Debug, Default, Serialize)]
pub struct HistoryResult {
    /// Publications.
    pub publications: Vec<Publication>,
    /// Epoch.
    pub epoch: String,
    /// Top offset.
    pub offset: u64,
}

/// `presence` result.
#[derive(Debug, Default, Serialize)]
pub struct PresenceResult {
    /// Client id → info.
    pub presence: BTreeMap<String, ClientInfo>,
}

/// `presence_stats` result: both counts are always present.
#[derive(Debug, Default, Serialize)]
pub struct PresenceStatsResult {
    /// Connections.
    pub num_clients: u32,
    /// Distinct users.
    pub num_users: u32,
}

/// `refresh` / `sub_refresh` result.
#[derive(Debug, Default, Serialize)]
pub struct RefreshResult {
    /// Expires.
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until expiry.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
}

/// Body of `join`/`leave` pushes.
#[derive(Serialize)]
pub struct JoinLeave<'a> {
    /// Who.
    pub info: &'a ClientInfo,
}

/// Body of `unsubscribe`/`disconnect` pushes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CodeReason<'a> {
    /// Code.
    pub code: u32,
    /// Reason.
    pub reason: &'a str,
}

/// Body of a `message` push.
#[derive(Serialize)]
pub struct MessageBody<'a> {
    /// Payload.
    pub data: &'a RawValue,
}

/// Converts owned raw JSON into the shared form.
pub fn share(raw: Box<RawValue>) -> Raw {
    Arc::from(raw)
}

/// Raw JSON from bytes (a protobuf field, a Redis payload): `None` when
/// empty or not JSON.
pub fn json_from_bytes(b: &[u8]) -> Option<Box<RawValue>> {
    let s = std::str::from_utf8(b).ok().filter(|s| !s.is_empty())?;
    RawValue::from_string(s.to_string()).ok()
}

/// The bytes of an optional raw JSON value (empty for none), for a
/// protobuf `bytes` field.
pub fn raw_to_bytes(r: &Option<Raw>) -> Bytes {
    r.as_ref()
        .map(|r| Bytes::copy_from_slice(r.get().as_bytes()))
        .unwrap_or_default()
}

/// Raw JSON `null`, used where a payload is required but absent.
pub fn null() -> Raw {
    share(RawValue::from_string("null".into()).expect("null is JSON"))
}

/// The encoding of one connection's frames (protocol.md §1.1). Every place
/// that writes to a client goes through this, so a second encoding is one
/// more variant, not a change of callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolKind {
    /// JSON objects, newline-delimited in WebSocket text frames.
    #[default]
    Json,
    /// Varint-length-delimited protobuf messages in binary frames.
    Protobuf,
    /// Unidirectional JSON: bare `Push` objects (no reply wrapper), the
    /// connect result as a `connect` push.
    UniJson,
}

/// How many [`ProtocolKind`]s exist (sizes per-kind frame caches).
pub const PROTOCOL_KINDS: usize = 3;

/// A reply to a command, by method.
#[derive(Debug)]
pub enum Reply<'a> {
    /// `connect`.
    Connect(&'a ConnectResult),
    /// `subscribe`.
    Subscribe(&'a SubscribeResult),
    /// `unsubscribe` (empty result).
    Unsubscribe,
    /// `publish` (empty result).
    Publish,
    /// `presence`.
    Presence(&'a PresenceResult),
    /// `presence_stats`.
    PresenceStats(&'a PresenceStatsResult),
    /// `history`.
    History(&'a HistoryResult),
    /// `refresh`.
    Refresh(&'a RefreshResult),
    /// `sub_refresh`.
    SubRefresh(&'a RefreshResult),
    /// An error instead of a result.
    Error(&'a crate::codes::ClientError),
}

/// An asynchronous push, by kind.
#[derive(Debug)]
pub enum Push<'a> {
    /// A publication in a channel.
    Pub(&'a Publication),
    /// Someone joined a channel.
    Join(&'a ClientInfo),
    /// Someone left a channel.
    Leave(&'a ClientInfo),
    /// The server ended a subscription.
    Unsubscribe(CodeReason<'a>),
    /// The server made a subscription.
    Subscribe(&'a SubscribeResult),
    /// The server refreshed the connection.
    Refresh(&'a RefreshResult),
}

impl ProtocolKind {
    /// Index into per-kind caches.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in proxy requests and the `connections` API.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Json | ProtocolKind::UniJson => "json",
            ProtocolKind::Protobuf => "protobuf",
        }
    }

    /// Splits one inbound frame into commands; any error is a 3501 disconnect.
    pub fn decode_frame(self, frame: &[u8]) -> Result<Vec<Command>, DecodeError> {
        match self {
            ProtocolKind::Json | ProtocolKind::UniJson => json::decode_frame(frame),
            ProtocolKind::Protobuf => protobuf::decode_frame(frame),
        }
    }

    /// Encodes a reply to command `id`.
    pub fn reply(self, id: u32, r: Reply<'_>) -> Bytes {
        match self {
            ProtocolKind::Json => json::reply(id, r),
            ProtocolKind::Protobuf => protobuf::reply(id, r),
            ProtocolKind::UniJson => json::uni_reply(r),
        }
    }

    /// Encodes a push about `channel` (empty for connection-level pushes).
    /// Empty when this kind cannot carry it (a JSON client and a
    /// publication whose data is not JSON): fan-out skips empty frames.
    pub fn push(self, channel: &str, p: Push<'_>) -> Bytes {
        match self {
            ProtocolKind::Json => json::push(channel, p),
            ProtocolKind::Protobuf => protobuf::push(channel, p),
            ProtocolKind::UniJson => json::uni_push(channel, p),
        }
    }

    /// The `disconnect` push that transports without a close frame (SSE,
    /// HTTP streaming) send before ending the stream.
    pub fn disconnect_push(self, code: u16, reason: &str) -> Bytes {
        let body = CodeReason {
            code: code as u32,
            reason,
        };
        match self {
            ProtocolKind::Json => json::encode_push("", "disconnect", &body),
            ProtocolKind::UniJson => json::encode_uni_push("", "disconnect", &body),
            ProtocolKind::Protobuf => protobuf::disconnect_push(code, reason),
        }
    }

    /// True when frames are binary WebSocket messages, concatenated rather
    /// than joined by newlines.
    pub fn is_binary(self) -> bool {
        self == ProtocolKind::Protobuf
    }

    /// The server ping.
    pub fn ping(self) -> Bytes {
        match self {
            ProtocolKind::Json | ProtocolKind::UniJson => Bytes::from_static(json::PING),
            ProtocolKind::Protobuf => Bytes::from_static(protobuf::PING),
        }
    }
}

/// One push encoded at most once per [`ProtocolKind`], on first demand:
/// fan-out asks for the frame of each subscriber's kind, so a publication
/// costs one encoding per kind present, never one per subscriber.
pub struct PushFrames<F: Fn(ProtocolKind) -> Bytes> {
    frames: [std::cell::OnceCell<Bytes>; PROTOCOL_KINDS],
    make: F,
}

impl<F: Fn(ProtocolKind) -> Bytes> PushFrames<F> {
    /// Frames made by `make`, none encoded yet.
    pub fn new(make: F) -> Self {
        PushFrames {
            frames: Default::default(),
            make,
        }
    }

    /// The frame for `kind`, encoded now if this is the first ask.
    #[inline]
    pub fn get(&self, kind: ProtocolKind) -> &Bytes {
        self.frames[kind.index()].get_or_init(|| (self.make)(kind))
    }
}
