//! Client protocol v2, JSON flavour (protocol.md §1): the commands a client
//! sends, the results and pushes the server answers, and the framing rules
//! (newline-delimited JSON in text frames). Payloads (`data`, `info`) stay raw
//! JSON from decode to encode: Gyre never parses application data.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Raw JSON shared between every place that sends it.
pub type Raw = Arc<RawValue>;

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
}

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
    pub data: Option<Box<RawValue>>,
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
    /// Payload (raw JSON).
    pub data: Raw,
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

/// Why a frame could not be decoded: always disconnect 3501.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError;

/// Splits a text frame into commands (newline-delimited JSON, §1.3). An
/// empty frame or any line that is not a command object is a bad request.
pub fn decode_frame(frame: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let mut out = Vec::new();
    for line in frame.split(|b| *b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let cmd: Command = serde_json::from_slice(line).map_err(|_| DecodeError)?;
        out.push(cmd);
    }
    if out.is_empty() {
        return Err(DecodeError);
    }
    Ok(out)
}

/// Encodes `{"id":N,"<method>":<result>}`.
pub fn encode_reply<T: Serialize>(id: u32, method: &str, result: &T) -> Bytes {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(b"{\"id\":");
    buf.extend_from_slice(id.to_string().as_bytes());
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(method.as_bytes());
    buf.extend_from_slice(b"\":");
    serde_json::to_writer(&mut buf, result).expect("reply serializes");
    buf.push(b'}');
    Bytes::from(buf)
}

/// Encodes `{"id":N,"error":{...}}`.
pub fn encode_error(id: u32, err: &crate::codes::ClientError) -> Bytes {
    encode_reply(id, "error", err)
}

/// Encodes a push wrapped in a reply: `{"push":{"channel":C,"<kind>":<body>}}`.
pub fn encode_push<T: Serialize>(channel: &str, kind: &str, body: &T) -> Bytes {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(b"{\"push\":{");
    if !channel.is_empty() {
        buf.extend_from_slice(b"\"channel\":");
        serde_json::to_writer(&mut buf, channel).expect("string serializes");
        buf.push(b',');
    }
    buf.push(b'"');
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\":");
    serde_json::to_writer(&mut buf, body).expect("push serializes");
    buf.extend_from_slice(b"}}");
    Bytes::from(buf)
}

/// Body of `join`/`leave` pushes.
#[derive(Serialize)]
pub struct JoinLeave<'a> {
    /// Who.
    pub info: &'a ClientInfo,
}

/// Body of `unsubscribe`/`disconnect` pushes.
#[derive(Serialize)]
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

/// The server ping: an empty reply.
pub const PING: &[u8] = b"{}";

/// Converts owned raw JSON into the shared form.
pub fn share(raw: Box<RawValue>) -> Raw {
    Arc::from(raw)
}

/// Raw JSON `null`, used where a payload is required but absent.
pub fn null() -> Raw {
    share(RawValue::from_string("null".into()).expect("null is JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_batches_and_rejects_garbage() {
        let cmds = decode_frame(
            b"{\"id\":1,\"connect\":{}}\n{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n",
        )
        .unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1].subscribe.as_ref().unwrap().channel, "a");
        assert_eq!(decode_frame(b"").err(), Some(DecodeError));
        assert_eq!(decode_frame(b"\n\n").err(), Some(DecodeError));
        assert!(decode_frame(b"{\"id\":1}\nnot json").is_err());
        assert!(decode_frame(b"[1,2]").is_err());
        assert!(decode_frame(b"{\"id\":-1}").is_err());
    }

    #[test]
    fn publication_push_keeps_data_raw() {
        let data = share(RawValue::from_string("{\"text\":\"hi\"}".into()).unwrap());
        let p = Publication {
            data,
            info: None,
            offset: 1,
            tags: None,
        };
        let b = encode_push("chat:a", "pub", &p);
        assert_eq!(
            &b[..],
            br#"{"push":{"channel":"chat:a","pub":{"data":{"text":"hi"},"offset":1}}}"#
        );
    }

    #[test]
    fn empty_results_are_empty_objects() {
        assert_eq!(
            &encode_reply(2, "subscribe", &SubscribeResult::default())[..],
            br#"{"id":2,"subscribe":{}}"#
        );
        let h = HistoryResult::default();
        assert_eq!(
            &encode_reply(7, "history", &h)[..],
            br#"{"id":7,"history":{"publications":[],"epoch":"","offset":0}}"#
        );
    }
}
