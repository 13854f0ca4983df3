//! The JSON flavour of the client protocol (protocol.md §1.3): newline-
//! delimited JSON objects, one command or reply per line, in WebSocket text
//! frames.

use super::{Command, Push, Reply};
use bytes::Bytes;
use serde::Serialize;

/// The server ping: an empty reply.
pub(super) const PING: &[u8] = b"{}";

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

/// Writes `{"channel":C,"<kind>":<body>}` (no `channel` when empty).
fn write_push<T: Serialize>(buf: &mut Vec<u8>, channel: &str, kind: &str, body: &T) {
    buf.push(b'{');
    if !channel.is_empty() {
        buf.extend_from_slice(b"\"channel\":");
        serde_json::to_writer(&mut *buf, channel).expect("string serializes");
        buf.push(b',');
    }
    buf.push(b'"');
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\":");
    serde_json::to_writer(&mut *buf, body).expect("push serializes");
    buf.push(b'}');
}

/// Encodes a push wrapped in a reply: `{"push":{"channel":C,"<kind>":<body>}}`.
pub fn encode_push<T: Serialize>(channel: &str, kind: &str, body: &T) -> Bytes {
    let mut buf = Vec::with_capacity(96);
    buf.extend_from_slice(b"{\"push\":");
    write_push(&mut buf, channel, kind, body);
    buf.push(b'}');
    Bytes::from(buf)
}

/// Encodes a bare push (unidirectional transports): `{"channel":C,"<kind>":<body>}`.
pub(super) fn encode_uni_push<T: Serialize>(channel: &str, kind: &str, body: &T) -> Bytes {
    let mut buf = Vec::with_capacity(96);
    write_push(&mut buf, channel, kind, body);
    Bytes::from(buf)
}

/// A typed push, wrapped in a reply (bidirectional) or bare
/// (unidirectional). Written raw, data that is not JSON would break the
/// client's frame (centrifuge-js tears the connection down): empty, not sent.
fn typed_push(channel: &str, p: Push<'_>, wrapped: bool) -> Bytes {
    fn enc<T: Serialize>(channel: &str, kind: &str, body: &T, wrapped: bool) -> Bytes {
        if wrapped {
            encode_push(channel, kind, body)
        } else {
            encode_uni_push(channel, kind, body)
        }
    }
    match p {
        Push::Pub(x) if !x.data.is_json() => Bytes::new(),
        Push::Pub(x) => enc(channel, "pub", x, wrapped),
        Push::Join(info) => enc(channel, "join", &super::JoinLeave { info }, wrapped),
        Push::Leave(info) => enc(channel, "leave", &super::JoinLeave { info }, wrapped),
        Push::Unsubscribe(x) => enc(channel, "unsubscribe", &x, wrapped),
        Push::Subscribe(x) => enc(channel, "subscribe", x, wrapped),
        Push::Refresh(x) => enc(channel, "refresh", x, wrapped),
    }
}

/// A typed push for unidirectional transports.
pub(super) fn uni_push(channel: &str, p: Push<'_>) -> Bytes {
    typed_push(channel, p, false)
}

/// Replies on unidirectional transports: only the connect result exists,
/// sent as a `connect` push (a connect error ends the connection instead).
pub(super) fn uni_reply(r: Reply<'_>) -> Bytes {
    match r {
        Reply::Connect(x) => encode_uni_push("", "connect", x),
        _ => Bytes::new(),
    }
}

/// Publications a JSON client may get: those whose data is JSON.
fn json_only(pubs: &[super::Publication]) -> Option<Vec<super::Publication>> {
    pubs.iter()
        .any(|p| !p.data.is_json())
        .then(|| pubs.iter().filter(|p| p.data.is_json()).cloned().collect())
}

/// Encodes a typed reply.
pub(super) fn reply(id: u32, r: Reply<'_>) -> Bytes {
    let empty = serde_json::json!({});
    match r {
        Reply::Connect(x) => encode_reply(id, "connect", x),
        Reply::Subscribe(x) => match json_only(&x.publications) {
            Some(publications) => {
                let mut filtered = super::SubscribeResult {
                    publications,
                    data: x.data.clone(),
                    epoch: x.epoch.clone(),
                    ..Default::default()
                };
                filtered.expires = x.expires;
                filtered.ttl = x.ttl;
                filtered.recoverable = x.recoverable;
                filtered.recovered = x.recovered;
                filtered.offset = x.offset;
                filtered.positioned = x.positioned;
                filtered.was_recovering = x.was_recovering;
                encode_reply(id, "subscribe", &filtered)
            }
            None => encode_reply(id, "subscribe", x),
        },
        Reply::History(x) => match json_only(&x.publications) {
            Some(publications) => encode_reply(
                id,
                "history",
                &super::HistoryResult {
                    publications,
                    epoch: x.epoch.clone(),
                    offset: x.offset,
                },
            ),
            None => encode_reply(id, "history", x),
        },
        Reply::Unsubscribe => encode_reply(id, "unsubscribe", &empty),
        Reply::Publish => encode_reply(id, "publish", &empty),
        Reply::Presence(x) => encode_reply(id, "presence", x),
        Reply::PresenceStats(x) => encode_reply(id, "presence_stats", x),
        Reply::Refresh(x) => encode_reply(id, "refresh", x),
        Reply::SubRefresh(x) => encode_reply(id, "sub_refresh", x),
        Reply::Error(e) => encode_error(id, e),
    }
}

/// Encodes a typed push.
pub(super) fn push(channel: &str, p: Push<'_>) -> Bytes {
    typed_push(channel, p, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{HistoryResult, Publication, SubscribeResult, share};
    use serde_json::value::RawValue;

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
            data: data.into(),
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
