//! The byte forms of what travels on a channel's PUB/SUB name
//! (redis-cluster.md §2.2), and the conversion between Gyre's publication
//! and the protobuf `Publication` that Centrifugo nodes write:
//!
//! * a bare `Publication` (no history);
//! * `__p1:<offset>:<epoch>__` + `Publication` (with history; the offset
//!   inside is 0, the header's counts);
//! * `__d1:<offset>:<epoch>:<len>:<prev>:<len>:<cur>` (delta; read only:
//!   Gyre does not publish deltas, it takes the current publication);
//! * `__j__` + `ClientInfo` (join), `__l__` + `ClientInfo` (leave).

use super::pb::client as pb;
use crate::protocol::{ClientInfo, Publication, Raw};
use bytes::Bytes;
use prost::Message;
use std::sync::Arc;

/// A decoded PUB/SUB message of a channel.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A publication; `offset` 0 and no epoch without history.
    Pub {
        publication: Publication,
        epoch: Option<String>,
    },
    /// Someone subscribed (with join/leave on).
    Join(ClientInfo),
    /// Someone unsubscribed.
    Leave(ClientInfo),
}

/// Why a message could not be read (logged and dropped, as Centrifugo does).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("malformed header")]
    Header,
    #[error("protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("payload is not JSON (published by a binary client?)")]
    NotJson,
}

/// Info bytes: none when empty, else JSON (JSON clients embed it).
fn opt_raw(b: &[u8]) -> Result<Option<Raw>, FrameError> {
    if b.is_empty() {
        return Ok(None);
    }
    crate::protocol::json_from_bytes(b)
        .map(|r| Some(crate::protocol::share(r)))
        .ok_or(FrameError::NotJson)
}

/// Gyre's client info as protobuf.
pub(crate) fn info_to_pb(i: &ClientInfo) -> pb::ClientInfo {
    pb::ClientInfo {
        user: i.user.to_string(),
        client: i.client.to_string(),
        conn_info: crate::protocol::raw_to_bytes(&i.conn_info),
        chan_info: crate::protocol::raw_to_bytes(&i.chan_info),
    }
}

/// Protobuf client info as Gyre's (info payloads must be JSON for JSON clients).
pub(crate) fn info_from_pb(i: pb::ClientInfo) -> Result<ClientInfo, FrameError> {
    Ok(ClientInfo {
        user: Arc::from(i.user),
        client: Arc::from(i.client),
        conn_info: opt_raw(&i.conn_info)?,
        chan_info: opt_raw(&i.chan_info)?,
    })
}

/// The protobuf bytes of a publication as Centrifugo's publisher fills
/// them: data, info, tags and the time in Unix ms (§2.1). The offset stays
/// 0: the history script puts it in the frame header.
pub(crate) fn encode_publication(p: &Publication, time_ms: i64) -> Vec<u8> {
    pb::Publication {
        data: Bytes::copy_from_slice(p.data.as_bytes()),
        info: p.info.as_ref().map(info_to_pb),
        tags: p.tags.as_ref().map(|t| (**t).clone()).unwrap_or_default(),
        time: time_ms,
        ..Default::default()
    }
    .encode_to_vec()
}

fn decode_publication(b: &[u8]) -> Result<(Publication, pb::Publication), FrameError> {
    let mut p = pb::Publication::decode(b)?;
    let info = p.info.take().map(info_from_pb).transpose()?;
    // Bytes that are not JSON (a protobuf client's) stay bytes: protobuf
    // subscribers get them, JSON subscribers never do.
    let data = crate::protocol::Payload::from_bytes(&p.data);
    let tags = (!p.tags.is_empty()).then(|| Arc::new(std::mem::take(&mut p.tags)));
    Ok((
        Publication {
            data,
            info,
            offset: p.offset,
            tags,
        },
        p,
    ))
}

/// A stored stream entry (bare Publication bytes) at `offset`.
pub(crate) fn decode_stored(b: &[u8], offset: u64) -> Result<Publication, FrameError> {
    let (mut p, _) = decode_publication(b)?;
    p.offset = offset;
    Ok(p)
}

/// A join or leave frame.
pub(crate) fn encode_join_leave(join: bool, info: &ClientInfo) -> Vec<u8> {
    let mut out = if join {
        b"__j__".to_vec()
    } else {
        b"__l__".to_vec()
    };
    info_to_pb(info).encode(&mut out).expect("Vec grows");
    out
}

/// Parses `<decimal>` up to `end`, returning it and the rest after `end`.
fn split_num(b: &[u8], end: u8) -> Option<(u64, &[u8])> {
    let i = b.iter().position(|&c| c == end)?;
    let n = std::str::from_utf8(&b[..i]).ok()?.parse().ok()?;
    Some((n, &b[i + 1..]))
}

/// Reads one PUB/SUB message of a channel.
pub(crate) fn decode(b: &[u8]) -> Result<Frame, FrameError> {
    if let Some(rest) = b.strip_prefix(b"__p1:") {
        let (offset, rest) = split_num(rest, b':').ok_or(FrameError::Header)?;
        let end = rest
            .windows(2)
            .position(|w| w == b"__")
            .ok_or(FrameError::Header)?;
        let epoch = std::str::from_utf8(&rest[..end])
            .map_err(|_| FrameError::Header)?
            .to_string();
        let (mut p, raw) = decode_publication(&rest[end + 2..])?;
        // Since v6.8 a publisher may put the position in the payload; it
        // takes precedence over the header (§2.2).
        p.offset = if raw.offset > 0 { raw.offset } else { offset };
        let epoch = if raw.epoch.is_empty() {
            epoch
        } else {
            raw.epoch
        };
        return Ok(Frame::Pub {
            publication: p,
            epoch: Some(epoch),
        });
    }
    if let Some(rest) = b.strip_prefix(b"__d1:") {
        let (offset, rest) = split_num(rest, b':').ok_or(FrameError::Header)?;
        let i = rest
            .iter()
            .position(|&c| c == b':')
            .ok_or(FrameError::Header)?;
        let epoch = std::str::from_utf8(&rest[..i])
            .map_err(|_| FrameError::Header)?
            .to_string();
        let rest = &rest[i + 1..];
        let (prev_len, rest) = split_num(rest, b':').ok_or(FrameError::Header)?;
        let prev_len = prev_len as usize;
        if rest.len() < prev_len + 1 || rest[prev_len] != b':' {
            return Err(FrameError::Header);
        }
        let rest = &rest[prev_len + 1..];
        let (cur_len, rest) = split_num(rest, b':').ok_or(FrameError::Header)?;
        if rest.len() != cur_len as usize {
            return Err(FrameError::Header);
        }
        let (mut p, _) = decode_publication(rest)?;
        p.offset = offset;
        return Ok(Frame::Pub {
            publication: p,
            epoch: Some(epoch),
        });
    }
    if let Some(rest) = b.strip_prefix(b"__j__") {
        return Ok(Frame::Join(info_from_pb(pb::ClientInfo::decode(rest)?)?));
    }
    if let Some(rest) = b.strip_prefix(b"__l__") {
        return Ok(Frame::Leave(info_from_pb(pb::ClientInfo::decode(rest)?)?));
    }
    let (p, _) = decode_publication(b)?;
    Ok(Frame::Pub {
        publication: Publication { offset: 0, ..p },
        epoch: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Raw {
        crate::protocol::share(serde_json::value::RawValue::from_string(s.into()).unwrap())
    }

    /// The sample bytes of redis-cluster.md §2.2, byte for byte.
    #[test]
    fn golden_publication_and_join() {
        let p = Publication {
            data: raw(r#"{"x":1}"#).into(),
            info: None,
            offset: 0,
            tags: None,
        };
        assert_eq!(
            encode_publication(&p, 1_700_000_000_000),
            [
                0x22, 0x07, 0x7b, 0x22, 0x78, 0x22, 0x3a, 0x31, 0x7d, 0x48, 0x80, 0xd0, 0x95, 0xff,
                0xbc, 0x31
            ]
        );
        let info = ClientInfo {
            user: "42".into(),
            client: "c-1".into(),
            conn_info: None,
            chan_info: None,
        };
        let mut want = b"__j__".to_vec();
        want.extend([0x0a, 0x02, 0x34, 0x32, 0x12, 0x03, 0x63, 0x2d, 0x31]);
        assert_eq!(encode_join_leave(true, &info), want);
        match decode(&want).unwrap() {
            Frame::Join(i) => assert_eq!((&*i.user, &*i.client), ("42", "c-1")),
            f => panic!("{f:?}"),
        }
        let mut leave = b"__l__".to_vec();
        leave.extend([0x0a, 0x02, 0x34, 0x32, 0x12, 0x03, 0x63, 0x2d, 0x31]);
        assert_eq!(encode_join_leave(false, &info), leave);
        assert!(matches!(decode(&leave).unwrap(), Frame::Leave(_)));
    }

    #[test]
    fn p1_header_and_bare_forms() {
        let body = [
            0x22, 0x07, 0x7b, 0x22, 0x78, 0x22, 0x3a, 0x31, 0x7d, 0x48, 0x80, 0xd0, 0x95, 0xff,
            0xbc, 0x31,
        ];
        let mut f = b"__p1:5:qWeRtYuI__".to_vec();
        f.extend(body);
        match decode(&f).unwrap() {
            Frame::Pub { publication, epoch } => {
                assert_eq!(publication.offset, 5);
                assert_eq!(epoch.as_deref(), Some("qWeRtYuI"));
                assert_eq!(
                    std::str::from_utf8(publication.data.as_bytes()).unwrap(),
                    r#"{"x":1}"#
                );
            }
            f => panic!("{f:?}"),
        }
        match decode(&body).unwrap() {
            Frame::Pub { publication, epoch } => {
                assert_eq!((publication.offset, epoch), (0, None));
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn d1_takes_the_current_publication() {
        let prev = encode_publication(
            &Publication {
                data: raw("1").into(),
                info: None,
                offset: 0,
                tags: None,
            },
            1,
        );
        let cur = encode_publication(
            &Publication {
                data: raw("2").into(),
                info: None,
                offset: 0,
                tags: None,
            },
            2,
        );
        let mut f = format!("__d1:7:EPOCH:{}:", prev.len()).into_bytes();
        f.extend(&prev);
        f.extend(format!(":{}:", cur.len()).as_bytes());
        f.extend(&cur);
        match decode(&f).unwrap() {
            Frame::Pub { publication, epoch } => {
                assert_eq!(publication.offset, 7);
                assert_eq!(epoch.as_deref(), Some("EPOCH"));
                assert_eq!(
                    std::str::from_utf8(publication.data.as_bytes()).unwrap(),
                    "2"
                );
            }
            f => panic!("{f:?}"),
        }
        // The empty prev of an epoch's first publication.
        let mut f = format!("__d1:1:E:0::{}:", cur.len()).into_bytes();
        f.extend(&cur);
        assert!(decode(&f).is_ok());
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for b in [
            &b"__p1:"[..],
            b"__p1:x:e__",
            b"__p1:1:e",
            b"__d1:1:e:99:ab",
            b"__j__\xff\xff",
            b"\xff\xff\xff",
        ] {
            assert!(decode(b).is_err(), "{b:?}");
        }
        // Binary data (from a protobuf client) stays bytes.
        let p = pb::Publication {
            data: Bytes::from_static(b"\x00\x01"),
            ..Default::default()
        }
        .encode_to_vec();
        match decode(&p).unwrap() {
            Frame::Pub { publication, .. } => {
                assert!(!publication.data.is_json());
                assert_eq!(publication.data.as_bytes(), b"\x00\x01");
            }
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn round_trip_with_info_and_tags() {
        let mut tags = std::collections::BTreeMap::new();
        tags.insert("k".to_string(), "v".to_string());
        let p = Publication {
            data: raw(r#"{"a":[1,2]}"#).into(),
            info: Some(ClientInfo {
                user: "u".into(),
                client: "c".into(),
                conn_info: Some(raw(r#"{"n":1}"#)),
                chan_info: None,
            }),
            offset: 0,
            tags: Some(Arc::new(tags)),
        };
        let got = decode_stored(&encode_publication(&p, 5), 9).unwrap();
        assert_eq!(got.offset, 9);
        assert_eq!(got.data.as_bytes(), p.data.as_bytes());
        assert_eq!(got.tags, p.tags);
        let i = got.info.unwrap();
        assert_eq!(i.conn_info.unwrap().get(), r#"{"n":1}"#);
        assert!(i.chan_info.is_none());
    }
}
