//! The protobuf flavour of the client protocol over WebSocket (issue 12):
//! whole binary frames built with the protocol's own messages
//! (`gyre::pb::client`, Centrifugo's field numbers), the compatibility
//! cases of protocol.md §9, mixed JSON and protobuf subscribers, and
//! malformed frames.

use crate::helpers::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gyre::pb::client as pb;
use prost::Message as _;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub struct Pb {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pending: std::collections::VecDeque<pb::Reply>,
}

#[derive(Debug)]
pub enum PbEvent {
    Reply(Box<pb::Reply>),
    Close(u16, String),
    Eof,
}

impl Pb {
    /// Connects asking for the `centrifuge-protobuf` subprotocol (as the
    /// SDKs' protobuf builds do), or with `?cf_protocol=protobuf` when
    /// `by_query`.
    pub async fn open(server: &gyre::app::Server, by_query: bool) -> Pb {
        let url = if by_query {
            format!(
                "ws://{}/connection/websocket?cf_protocol=protobuf",
                server.addr
            )
        } else {
            format!("ws://{}/connection/websocket", server.addr)
        };
        let mut req = url.into_client_request().unwrap();
        if !by_query {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                "centrifuge-protobuf".parse().unwrap(),
            );
        }
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        if !by_query {
            assert_eq!(
                resp.headers()["sec-websocket-protocol"],
                "centrifuge-protobuf"
            );
        }
        Pb {
            ws,
            pending: Default::default(),
        }
    }

    pub async fn send(&mut self, cmds: &[pb::Command]) {
        let mut b = Vec::new();
        for c in cmds {
            c.encode_length_delimited(&mut b).unwrap();
        }
        self.send_raw(b).await;
    }

    pub async fn send_raw(&mut self, b: Vec<u8>) {
        self.ws.send(Message::Binary(b.into())).await.unwrap();
    }

    pub async fn next(&mut self, timeout: Duration) -> Option<PbEvent> {
        if let Some(r) = self.pending.pop_front() {
            return Some(PbEvent::Reply(Box::new(r)));
        }
        loop {
            let msg = match tokio::time::timeout(timeout, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(PbEvent::Eof),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Binary(b) => {
                    let mut buf: &[u8] = &b;
                    while !buf.is_empty() {
                        self.pending
                            .push_back(pb::Reply::decode_length_delimited(&mut buf).unwrap());
                    }
                    return Some(PbEvent::Reply(Box::new(self.pending.pop_front().unwrap())));
                }
                Message::Text(t) => panic!("protobuf replies must be binary frames: {t}"),
                Message::Close(Some(f)) => {
                    return Some(PbEvent::Close(f.code.into(), f.reason.to_string()));
                }
                Message::Close(None) => return Some(PbEvent::Close(1005, String::new())),
                _ => continue,
            }
        }
    }

    /// The next reply that is not a server ping (an empty Reply).
    pub async fn recv(&mut self) -> pb::Reply {
        loop {
            match self.next(Duration::from_secs(5)).await {
                Some(PbEvent::Reply(r)) if *r == pb::Reply::default() => continue,
                Some(PbEvent::Reply(r)) => return *r,
                other => panic!("expected a reply, got {other:?}"),
            }
        }
    }

    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.next(Duration::from_secs(15)).await {
                Some(PbEvent::Reply(_)) => continue,
                Some(PbEvent::Close(c, r)) => return (c, r),
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    pub async fn connected(server: &gyre::app::Server, tok: &str) -> (Pb, pb::ConnectResult) {
        let mut c = Pb::open(server, false).await;
        c.send(&[connect(1, tok)]).await;
        let r = c.recv().await;
        assert_eq!(r.id, 1, "{r:?}");
        let res = r
            .connect
            .clone()
            .unwrap_or_else(|| panic!("connect result: {r:?}"));
        (c, res)
    }
}

pub fn connect(id: u32, tok: &str) -> pb::Command {
    pb::Command {
        id,
        connect: Some(pb::ConnectRequest {
            token: tok.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn subscribe(id: u32, channel: &str) -> pb::Command {
    pb::Command {
        id,
        subscribe: Some(pb::SubscribeRequest {
            channel: channel.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn publish(id: u32, channel: &str, data: &[u8]) -> pb::Command {
    pb::Command {
        id,
        publish: Some(pb::PublishRequest {
            channel: channel.into(),
            data: Bytes::copy_from_slice(data),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn connect_cases_of_protocol_9() {
    let s = server(json!({})).await;
    // 1: connect without exp, by subprotocol and by query parameter.
    let (_, res) = Pb::connected(&s, &token(json!({"sub": "42"}))).await;
    assert!(uuid::Uuid::parse_str(&res.client).is_ok(), "{res:?}");
    assert!(!res.version.is_empty());
    assert_eq!(
        (res.ping, res.pong, res.expires, res.ttl),
        (25, true, false, 0)
    );
    let mut q = Pb::open(&s, true).await;
    q.send(&[connect(1, &token(json!({"sub": "42"})))]).await;
    assert!(q.recv().await.connect.is_some());
    // 2: with exp.
    let (_, res) = Pb::connected(&s, &token(json!({"sub": "42", "exp": now() + 600}))).await;
    assert!(res.expires && (590..=600).contains(&res.ttl), "{res:?}");
    // 3: expired token.
    let mut c = Pb::open(&s, false).await;
    c.send(&[connect(1, &token(json!({"sub": "42", "exp": now() - 10})))])
        .await;
    let r = c.recv().await;
    assert_eq!(r.id, 1);
    assert_eq!(
        r.error,
        Some(pb::Error {
            code: 109,
            message: "token expired".into(),
            temporary: false
        })
    );
    // 4: bad signature.
    let mut c = Pb::open(&s, false).await;
    c.send(&[connect(1, &token_with(json!({"sub": "42"}), "other"))])
        .await;
    assert_eq!(c.expect_close().await, (3500, "invalid token".into()));
    // 5: command before connect.
    let mut c = Pb::open(&s, false).await;
    c.send(&[subscribe(1, "chat:a")]).await;
    assert_eq!(c.expect_close().await, (3501, "bad request".into()));
    // 7: a pong (empty Command) before any ping.
    let (mut c, _) = Pb::connected(&s, &token(json!({"sub": "42"}))).await;
    c.send(&[pb::Command::default()]).await;
    assert_eq!(c.expect_close().await, (3501, "bad request".into()));
}

#[tokio::test]
async fn batching_subscribe_errors_and_pushes() {
    let s = server(json!({})).await;
    // 6: connect and subscribe in one frame, replies in order.
    let mut c = Pb::open(&s, false).await;
    c.send(&[
        connect(1, &token(json!({"sub": "42"}))),
        subscribe(2, "chat:a"),
    ])
    .await;
    assert_eq!(c.recv().await.id, 1);
    let r = c.recv().await;
    assert_eq!(r.id, 2);
    assert!(r.subscribe.is_some(), "{r:?}");
    // 8: unknown namespace, already subscribed.
    c.send(&[subscribe(3, "nope:x"), subscribe(4, "chat:a")])
        .await;
    assert_eq!(c.recv().await.error.unwrap().code, 102);
    assert_eq!(c.recv().await.error.unwrap().code, 105);
    // 9: an API publication reaches the client with its bytes.
    let api = Api::new(&s);
    let r = api
        .call(
            "publish",
            json!({"channel": "chat:a", "data": {"text": "hi"}}),
        )
        .await;
    assert_eq!(r["result"]["offset"], 1);
    let p = c.recv().await.push.unwrap();
    assert_eq!(p.channel, "chat:a");
    let publ = p.r#pub.unwrap();
    assert_eq!(&publ.data[..], br#"{"text":"hi"}"#);
    assert_eq!(publ.offset, 1);
    // History and presence answer in protobuf.
    c.send(&[
        pb::Command {
            id: 5,
            history: Some(pb::HistoryRequest {
                channel: "chat:a".into(),
                limit: -1,
                ..Default::default()
            }),
            ..Default::default()
        },
        pb::Command {
            id: 6,
            presence_stats: Some(pb::PresenceStatsRequest {
                channel: "chat:a".into(),
            }),
            ..Default::default()
        },
    ])
    .await;
    let h = c.recv().await.history.unwrap();
    assert_eq!(h.publications.len(), 1);
    assert_eq!(h.offset, 1);
    assert_eq!(
        c.recv().await.presence_stats.unwrap(),
        pb::PresenceStatsResult {
            num_clients: 1,
            num_users: 1
        }
    );
    // Server unsubscribe push.
    api.call("unsubscribe", json!({"user": "42", "channel": "chat:a"}))
        .await;
    let u = c.recv().await.push.unwrap();
    assert_eq!(u.channel, "chat:a");
    assert_eq!(u.unsubscribe.unwrap().code, 2000);
    // 13: server disconnect with a custom code.
    api.call(
        "disconnect",
        json!({"user": "42", "disconnect": {"code": 4500, "reason": "bye"}}),
    )
    .await;
    assert_eq!(c.expect_close().await, (4500, "bye".into()));
}

#[tokio::test]
async fn mixed_json_and_protobuf_subscribers() {
    let s = server(json!({})).await;
    let (mut j, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    j.subscribe(2, "chat:m").await;
    let (mut p, _) = Pb::connected(&s, &token(json!({"sub": "2"}))).await;
    p.send(&[subscribe(2, "chat:m")]).await;
    assert_eq!(p.recv().await.id, 2);

    // JSON published by the protobuf client reaches both, byte for byte.
    p.send(&[publish(3, "chat:m", br#"{"n":1}"#)]).await;
    assert!(p.recv().await.publish.is_some());
    let got = j.recv().await;
    assert_eq!(got["push"]["pub"]["data"], json!({"n": 1}), "{got}");
    assert_eq!(got["push"]["pub"]["info"]["user"], "2");
    let pp = p.recv().await.push.unwrap().r#pub.unwrap();
    assert_eq!(&pp.data[..], br#"{"n":1}"#);

    // Binary data reaches protobuf subscribers only; the JSON client's
    // frames stay valid and it gets the next JSON publication.
    p.send(&[publish(4, "chat:m", b"\x00\x01\xfe")]).await;
    assert!(p.recv().await.publish.is_some());
    let pp = p.recv().await.push.unwrap().r#pub.unwrap();
    assert_eq!(&pp.data[..], b"\x00\x01\xfe");
    assert_eq!(pp.offset, 2);
    Api::new(&s)
        .call("publish", json!({"channel": "chat:m", "data": 3}))
        .await;
    let got = j.recv().await;
    assert_eq!(got["push"]["pub"]["data"], 3, "{got}");
    assert_eq!(got["push"]["pub"]["offset"], 3, "{got}");
    // JSON history leaves the binary publication out; protobuf history has it.
    j.send_json(json!({"id": 5, "history": {"channel": "chat:m", "limit": -1}}))
        .await;
    let h = j.recv().await;
    let offsets: Vec<u64> = h["history"]["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [1, 3], "{h}");
    p.send(&[pb::Command {
        id: 6,
        history: Some(pb::HistoryRequest {
            channel: "chat:m".into(),
            limit: -1,
            ..Default::default()
        }),
        ..Default::default()
    }])
    .await;
    let h = loop {
        let r = p.recv().await;
        if r.id == 6 {
            break r.history.unwrap();
        }
    };
    assert_eq!(h.publications.len(), 3);
}

#[tokio::test]
async fn protective_features_close_protobuf_clients_with_the_same_codes() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut c, _) = Pb::connected(&s, &token(json!({"sub": "42"}))).await;
    api.call("block_user", json!({"user": "42"})).await;
    assert_eq!(c.expect_close().await, (3503, "blocked".into()));
    let mut again = Pb::open(&s, false).await;
    again
        .send(&[connect(1, &token(json!({"sub": "42"})))])
        .await;
    assert_eq!(again.expect_close().await, (3503, "blocked".into()));

    let (mut t, _) = Pb::connected(&s, &token(json!({"sub": "7", "jti": "t1"}))).await;
    api.call("revoke_token", json!({"uid": "t1"})).await;
    assert_eq!(t.expect_close().await, (3014, "state invalidated".into()));
    let mut again = Pb::open(&s, false).await;
    again
        .send(&[connect(1, &token(json!({"sub": "7", "jti": "t1"})))])
        .await;
    assert_eq!(again.recv().await.error.unwrap().code, 109);
}

#[tokio::test]
async fn malformed_protobuf_frames_close_with_3501() {
    let s = server(json!({})).await;
    for bad in [
        vec![],
        vec![5, 1, 2],
        vec![2, 0xff, 0xff],
        vec![0xff; 11],
        b"{\"id\":1,\"connect\":{}}".to_vec(),
    ] {
        let mut c = Pb::open(&s, false).await;
        c.send_raw(bad.clone()).await;
        assert_eq!(
            c.expect_close().await,
            (3501, "bad request".into()),
            "{bad:?}"
        );
    }
    // A publish without data is a bad request, as in JSON.
    let (mut c, _) = Pb::connected(&s, &token(json!({"sub": "e"}))).await;
    c.send(&[subscribe(2, "chat:a"), publish(3, "chat:a", b"")])
        .await;
    assert_eq!(c.expect_close().await, (3501, "bad request".into()));
    // Random frames after connect: a close code or replies, never a crash.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..40 {
        let (mut c, _) = Pb::connected(&s, &token(json!({"sub": "f"}))).await;
        let mut b = Vec::new();
        for _ in 0..(seed % 64) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b.push(seed as u8);
        }
        c.send_raw(b).await;
        let _ = c.next(Duration::from_millis(200)).await;
    }
    // The server still serves.
    Pb::connected(&s, &token(json!({"sub": "ok"}))).await;
}
