//! The unidirectional transports (`uni_websocket`, `uni_http_stream`,
//! `uni_sse`) and the bidirectional emulation (`sse`, `http_stream` +
//! `/emulation`), whole messages as Centrifugo writes them (issue 12):
//! connect with server-side subscriptions from the token, publications,
//! the protective features closing them with the same codes, malformed
//! requests, and an emulation request routed to the node that holds the
//! session.

use crate::helpers::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gyre::pb::client as pb;
use prost::Message as _;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn enabled() -> Value {
    json!({
        "uni_websocket": {"enabled": true},
        "uni_http_stream": {"enabled": true},
        "uni_sse": {"enabled": true},
        "sse": {"enabled": true},
        "http_stream": {"enabled": true},
        "client": {"ping_interval": "2s", "pong_timeout": "1s"}
    })
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A streaming HTTP response read message by message.
struct Stream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    sse: bool,
}

impl Stream {
    async fn get(url: String, sse: bool) -> Stream {
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status(), 200);
        Stream {
            resp,
            buf: Vec::new(),
            sse,
        }
    }

    async fn post(url: String, body: Vec<u8>, content_type: &str) -> Stream {
        let resp = reqwest::Client::new()
            .post(url)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        Stream {
            resp,
            buf: Vec::new(),
            sse: false,
        }
    }

    /// The next JSON message (skipping pings `{}` and SSE's blank preamble),
    /// or `None` at the end of the response.
    async fn next(&mut self) -> Option<Value> {
        loop {
            let sep: &[u8] = if self.sse { b"\n\n" } else { b"\n" };
            if let Some(pos) = self.buf.windows(sep.len()).position(|w| w == sep) {
                let line: Vec<u8> = self.buf.drain(..pos + sep.len()).collect();
                let text = String::from_utf8(line).unwrap();
                let text = text.trim();
                let text = if self.sse {
                    match text.strip_prefix("data: ") {
                        Some(t) => t,
                        None => continue,
                    }
                } else {
                    text
                };
                if text.is_empty() || text == "{}" {
                    continue;
                }
                return Some(serde_json::from_str(text).unwrap());
            }
            match tokio::time::timeout(Duration::from_secs(5), self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.extend_from_slice(&c),
                Ok(Ok(None)) => return None,
                Ok(Err(_)) => return None,
                Err(_) => panic!(
                    "no message within 5 s; buffered {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// The next protobuf `Reply` (skipping pings).
    async fn next_pb(&mut self) -> Option<pb::Reply> {
        loop {
            let mut b: &[u8] = &self.buf;
            if let Ok(len) = prost::decode_length_delimiter(&mut b)
                && b.len() >= len
            {
                let r = pb::Reply::decode(&b[..len]).unwrap();
                let used = self.buf.len() - b.len() + len;
                self.buf.drain(..used);
                if r == pb::Reply::default() {
                    continue;
                }
                return Some(r);
            }
            match tokio::time::timeout(Duration::from_secs(5), self.resp.chunk()).await {
                Ok(Ok(Some(c))) => self.buf.extend_from_slice(&c),
                Ok(Ok(None)) | Ok(Err(_)) => return None,
                Err(_) => panic!("no message within 5 s"),
            }
        }
    }
}

#[tokio::test]
async fn uni_websocket_connect_pushes_and_block() {
    let s = server(enabled()).await;
    let tok = token(json!({"sub": "u1", "channels": ["chat:uni"]}));
    // Connect request as the first message.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/connection/uni_websocket", s.addr))
            .await
            .unwrap();
    ws.send(Message::Text(json!({"token": tok}).to_string().into()))
        .await
        .unwrap();
    let mut next = async || loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) if t.as_str() == "{}" => continue,
            Message::Text(t) => return Ok(serde_json::from_str::<Value>(&t).unwrap()),
            Message::Close(f) => return Err(f.map(|f| (u16::from(f.code), f.reason.to_string()))),
            _ => continue,
        }
    };
    let c = next().await.unwrap();
    assert!(c["connect"]["client"].is_string(), "{c}");
    assert!(c["connect"]["subs"]["chat:uni"].is_object(), "{c}");
    assert!(c["connect"]["session"].is_string(), "{c}");
    assert!(c["connect"].get("pong").is_none(), "no pongs on uni: {c}");
    let api = Api::new(&s);
    api.call("publish", json!({"channel": "chat:uni", "data": {"x": 1}}))
        .await;
    let p = next().await.unwrap();
    assert_eq!(
        p,
        json!({"channel": "chat:uni", "pub": {"data": {"x": 1}, "offset": 1}})
    );
    api.call("block_user", json!({"user": "u1"})).await;
    assert_eq!(
        next().await.unwrap(),
        json!({"disconnect": {"code": 3503, "reason": "blocked"}})
    );
    assert_eq!(next().await.unwrap_err(), Some((3503, "blocked".into())));
    // Blocked at connect too (cf_connect form).
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/connection/uni_websocket?cf_connect={}",
        s.addr,
        enc(&json!({"token": token(json!({"sub": "u1"}))}).to_string())
    ))
    .await
    .unwrap();
    let mut closed = None;
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Close(Some(f)) = m {
            closed = Some(u16::from(f.code));
            break;
        }
    }
    assert_eq!(closed, Some(3503));
    // A connect request that is not JSON: 3501.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/connection/uni_websocket", s.addr))
            .await
            .unwrap();
    ws.send(Message::Text("nope".into())).await.unwrap();
    let mut closed = None;
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Close(Some(f)) = m {
            closed = Some(u16::from(f.code));
            break;
        }
    }
    assert_eq!(closed, Some(3501));
}

#[tokio::test]
async fn uni_http_stream_and_uni_sse() {
    let s = server(enabled()).await;
    let api = Api::new(&s);
    let body = json!({"token": token(json!({"sub": "u2", "channels": ["chat:h"], "jti": "j2"}))});
    let mut h = Stream::post(
        format!("http://{}/connection/uni_http_stream", s.addr),
        body.to_string().into_bytes(),
        "application/json",
    )
    .await;
    let c = h.next().await.unwrap();
    assert!(c["connect"]["subs"]["chat:h"].is_object(), "{c}");
    let tok = token(json!({"sub": "u3", "channels": ["chat:h"]}));
    let mut e = Stream::get(
        format!(
            "http://{}/connection/uni_sse?cf_connect={}",
            s.addr,
            enc(&json!({"token": tok}).to_string())
        ),
        true,
    )
    .await;
    let c = e.next().await.unwrap();
    assert!(c["connect"]["subs"]["chat:h"].is_object(), "{c}");
    api.call("publish", json!({"channel": "chat:h", "data": "hi"}))
        .await;
    for st in [&mut h, &mut e] {
        assert_eq!(
            st.next().await.unwrap(),
            json!({"channel": "chat:h", "pub": {"data": "hi", "offset": 1}})
        );
    }
    // Revoking the token ends the stream with a disconnect push.
    api.call("revoke_token", json!({"uid": "j2"})).await;
    assert_eq!(
        h.next().await.unwrap(),
        json!({"disconnect": {"code": 3014, "reason": "state invalidated"}})
    );
    assert!(h.next().await.is_none(), "the response ends");
    // An expired token: 3005 connection expired (centrifuge's mapping).
    let mut x = Stream::post(
        format!("http://{}/connection/uni_http_stream", s.addr),
        json!({"token": token(json!({"sub": "u4", "exp": now() - 5}))})
            .to_string()
            .into_bytes(),
        "application/json",
    )
    .await;
    assert_eq!(
        x.next().await.unwrap(),
        json!({"disconnect": {"code": 3005, "reason": "connection expired"}})
    );
    // Malformed requests.
    let r = reqwest::Client::new()
        .post(format!("http://{}/connection/uni_http_stream", s.addr))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::get(format!("http://{}/connection/uni_http_stream", s.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = reqwest::Client::new()
        .post(format!("http://{}/connection/uni_http_stream", s.addr))
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// POSTs commands to `/emulation` for a JSON session.
async fn emulate(s: &gyre::app::Server, node: &str, session: &str, cmds: &[Value]) -> u16 {
    let frame: Vec<String> = cmds.iter().map(|c| c.to_string()).collect();
    let body = json!({"node": node, "session": session, "data": frame.join("\n")});
    reqwest::Client::new()
        .post(format!("http://{}/emulation", s.addr))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn sse_emulation_runs_the_full_protocol() {
    let s = server(enabled()).await;
    let connect = json!({"id": 1, "connect": {"token": token(json!({"sub": "e1"}))}});
    let mut st = Stream::get(
        format!(
            "http://{}/connection/sse?cf_connect={}",
            s.addr,
            enc(&connect.to_string())
        ),
        true,
    )
    .await;
    let c = st.next().await.unwrap();
    assert_eq!(c["id"], 1, "{c}");
    let session = c["connect"]["session"].as_str().unwrap().to_string();
    let node = c["connect"]["node"].as_str().unwrap().to_string();
    assert_eq!(c["connect"]["pong"], true);
    // Commands through /emulation; replies on the stream.
    assert_eq!(
        emulate(
            &s,
            &node,
            &session,
            &[
                json!({"id": 2, "subscribe": {"channel": "chat:e"}}),
                json!({"id": 3, "publish": {"channel": "chat:e", "data": {"n": 1}}})
            ]
        )
        .await,
        204
    );
    assert_eq!(st.next().await.unwrap()["id"], 2);
    let mut got = vec![st.next().await.unwrap(), st.next().await.unwrap()];
    got.sort_by_key(|v| v.get("id").is_some());
    assert_eq!(got[0]["push"]["pub"]["data"], json!({"n": 1}), "{got:?}");
    assert_eq!(got[1], json!({"id": 3, "publish": {}}));
    // Errors: unknown session, unknown node, unreadable body.
    assert_eq!(emulate(&s, &node, "nope", &[json!({"id": 4})]).await, 500);
    assert_eq!(
        emulate(&s, "other-node", &session, &[json!({"id": 4})]).await,
        404
    );
    let r = reqwest::Client::new()
        .post(format!("http://{}/emulation", s.addr))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Block: a disconnect push, then the stream ends.
    Api::new(&s).call("block_user", json!({"user": "e1"})).await;
    assert_eq!(
        st.next().await.unwrap(),
        json!({"push": {"disconnect": {"code": 3503, "reason": "blocked"}}})
    );
    assert!(st.next().await.is_none());
    assert_eq!(emulate(&s, &node, &session, &[json!({"id": 5})]).await, 500);
}

#[tokio::test]
async fn http_stream_emulation_in_protobuf() {
    let s = server(enabled()).await;
    let mut first = Vec::new();
    pb::Command {
        id: 1,
        connect: Some(pb::ConnectRequest {
            token: token(json!({"sub": "p1"})),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_length_delimited(&mut first)
    .unwrap();
    let mut st = Stream::post(
        format!("http://{}/connection/http_stream", s.addr),
        first,
        "application/octet-stream",
    )
    .await;
    let c = st.next_pb().await.unwrap().connect.unwrap();
    assert!(!c.session.is_empty() && !c.node.is_empty(), "{c:?}");
    let mut data = Vec::new();
    pb::Command {
        id: 2,
        subscribe: Some(pb::SubscribeRequest {
            channel: "chat:p".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_length_delimited(&mut data)
    .unwrap();
    let body = pb::EmulationRequest {
        node: c.node.clone(),
        session: c.session.clone(),
        data: Bytes::from(data),
    };
    let r = reqwest::Client::new()
        .post(format!("http://{}/emulation", s.addr))
        .header("Content-Type", "application/octet-stream")
        .body(body.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(st.next_pb().await.unwrap().id, 2);
    Api::new(&s)
        .call("publish", json!({"channel": "chat:p", "data": [1, 2]}))
        .await;
    let p = st.next_pb().await.unwrap().push.unwrap().r#pub.unwrap();
    assert_eq!(&p.data[..], b"[1,2]");
    Api::new(&s).call("disconnect", json!({"user": "p1"})).await;
    let d = st
        .next_pb()
        .await
        .unwrap()
        .push
        .unwrap()
        .disconnect
        .unwrap();
    assert_eq!(d.code, 3503);
}

#[tokio::test]
async fn emulation_request_is_routed_to_the_node_holding_the_session() {
    let cl = crate::cluster::Cluster::new();
    let a = cl.node(enabled()).await;
    let b = cl.node(enabled()).await;
    crate::cluster::nodes_listed(&Api::new(&b), 2).await;
    let connect = json!({"id": 1, "connect": {"token": token(json!({"sub": "r1"}))}});
    let mut st = Stream::get(
        format!(
            "http://{}/connection/sse?cf_connect={}",
            a.addr,
            enc(&connect.to_string())
        ),
        true,
    )
    .await;
    let c = st.next().await.unwrap();
    let session = c["connect"]["session"].as_str().unwrap();
    let node = c["connect"]["node"].as_str().unwrap();
    assert_eq!(node, a.node.id());
    // Posted to B: forwarded to A, the reply arrives on A's stream.
    assert_eq!(
        emulate(
            &b,
            node,
            session,
            &[json!({"id": 2, "subscribe": {"channel": "chat:r"}})]
        )
        .await,
        204
    );
    assert_eq!(st.next().await.unwrap()["id"], 2);
    assert_eq!(emulate(&b, node, "gone", &[json!({"id": 3})]).await, 500);
    a.shutdown().await;
    b.shutdown().await;
    cl.cleanup().await;
}

#[tokio::test]
async fn http_transports_answer_cors_as_centrifugo() {
    let mut cfg = enabled();
    cfg["client"]["allowed_origins"] = json!(["https://app.example.com"]);
    let s = server(cfg).await;
    let c = reqwest::Client::new();
    // Preflight from an allowed origin: 204, the origin echoed.
    let r = c
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}/emulation", s.addr),
        )
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(r.headers()["access-control-allow-headers"], "content-type");
    // A stream from an allowed origin carries the header.
    let r = c
        .post(format!("http://{}/connection/uni_http_stream", s.addr))
        .header("Origin", "https://app.example.com")
        .body(json!({"token": token(json!({"sub": "c1"}))}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    drop(r);
    // Any other origin: 403, on every HTTP transport.
    for path in [
        "/emulation",
        "/connection/http_stream",
        "/connection/uni_http_stream",
        "/connection/sse?cf_connect=%7B%7D",
        "/connection/uni_sse",
    ] {
        let r = c
            .post(format!("http://{}{path}", s.addr))
            .header("Origin", "https://evil.example.com")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
}
