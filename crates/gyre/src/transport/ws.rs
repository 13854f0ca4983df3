//! The bidirectional WebSocket transport at `/connection/websocket`
//! (protocol.md §1.2, §1.3): origin check, size limits, and [`Transport`]
//! over the socket; `conn.rs` runs the connection task. An idle connection
//! is one parked task, the socket's small buffers and the session, sized on
//! purpose (`websocket.read_buffer_size`, default 1 KiB, grows on demand).

use super::{Inbound, Transport};
use crate::client::Session;
use crate::codes::Disconnect;
use crate::node::Node;
use crate::protocol::ProtocolKind;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use std::future::Future;
use std::sync::Arc;

/// Most frames joined into one WebSocket message (Centrifuge's writer uses 16).
const MAX_BATCH: usize = 64;

/// Upgrade handler.
pub(crate) async fn handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(
        &node.cfg().client.allowed_origins,
        headers.get("origin").and_then(|v| v.to_str().ok()),
    ) {
        tracing::debug!("websocket upgrade refused: origin not allowed");
        return StatusCode::FORBIDDEN.into_response();
    }
    if node.lifecycle().is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let wcfg = &node.cfg().websocket;
    let limit = wcfg.message_size_limit;
    let tracker = node.lifecycle().connections().clone();
    let ws = ws
        .read_buffer_size(wcfg.read_buffer_size.max(256))
        .write_buffer_size(wcfg.write_buffer_size)
        .max_message_size(limit)
        .max_frame_size(limit)
        .protocols(["centrifuge-json", "centrifuge-protobuf"]);
    let proto = negotiate(
        ws.selected_protocol().and_then(|v| v.to_str().ok()),
        uri.query(),
    );
    // axum already runs this future in its own task: track it there
    // instead of spawning a second task per connection.
    ws.on_upgrade(move |socket| {
        let transport = WsTransport {
            socket,
            write_timeout: node.cfg().websocket.write_timeout.0,
            binary: proto.is_binary(),
            uni: None,
        };
        let session = Session::for_transport(node.clone(), WsTransport::KIND, proto, headers);
        tracker.track_future(super::conn::run(node, transport, session))
    })
}

/// `/connection/uni_websocket`: the unidirectional WebSocket. The connect
/// request (a bare `ConnectRequest`) comes in the `cf_connect` query
/// parameter or as the first message; the server then only pushes (JSON,
/// unwrapped). Later messages are read and ignored.
pub(crate) async fn uni_handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(
        &node.cfg().client.allowed_origins,
        headers.get("origin").and_then(|v| v.to_str().ok()),
    ) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if node.lifecycle().is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let first = match uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("cf_connect="))
            .map(super::stream::percent_decode)
    }) {
        Some(c) => match super::stream::uni_connect_frame(c.as_bytes()) {
            Some(f) => Some(f),
            None => return (StatusCode::BAD_REQUEST, "invalid connect request").into_response(),
        },
        None => None,
    };
    let ucfg = &node.cfg().uni_websocket;
    let limit = if ucfg.message_size_limit == 0 {
        65536
    } else {
        ucfg.message_size_limit
    };
    let disconnect_push = !ucfg.disable_disconnect_push;
    let tracker = node.lifecycle().connections().clone();
    ws.read_buffer_size(node.cfg().websocket.read_buffer_size.max(256))
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            let transport = WsTransport {
                socket,
                write_timeout: node.cfg().websocket.write_timeout.0,
                binary: false,
                uni: Some(Box::new(Uni {
                    first,
                    connected: false,
                    disconnect_push,
                })),
            };
            let mut session = Session::for_transport(
                node.clone(),
                crate::node::handle::TransportKind::UniWebsocket,
                ProtocolKind::UniJson,
                headers,
            );
            session.set_session_id(uuid::Uuid::new_v4().to_string());
            tracker.track_future(super::conn::run(node, transport, session))
        })
}

/// State of a unidirectional WebSocket.
struct Uni {
    /// The connect frame from `cf_connect`, handed over first.
    first: Option<Bytes>,
    /// The connect request was handed over; later messages are ignored.
    connected: bool,
    /// Send a `disconnect` push before the close frame.
    disconnect_push: bool,
}

/// The connection's encoding (protocol.md §1.2): protobuf when the
/// negotiated subprotocol is `centrifuge-protobuf` or the query string says
/// `format=protobuf` or `cf_protocol=protobuf`; JSON otherwise.
pub(crate) fn negotiate(subprotocol: Option<&str>, query: Option<&str>) -> ProtocolKind {
    let by_query = query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "format=protobuf" || kv == "cf_protocol=protobuf")
    });
    if subprotocol == Some("centrifuge-protobuf") || by_query {
        ProtocolKind::Protobuf
    } else {
        ProtocolKind::Json
    }
}

/// Centrifugo's rule: with no allowed origins, only requests without an
/// `Origin` header pass; `*` allows all; otherwise glob patterns.
pub(crate) fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    allowed
        .iter()
        .any(|pat| glob_match(&pat.to_ascii_lowercase(), &origin.to_ascii_lowercase()))
}

/// Minimal glob: `*` matches any run of characters.
pub(crate) fn glob_match(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// A WebSocket connection: JSON frames joined by newlines in text messages
/// (protocol.md §1.3), Centrifugo's close codes in close frames.
pub(crate) struct WsTransport {
    socket: WebSocket,
    write_timeout: std::time::Duration,
    /// Protobuf: binary messages, frames concatenated.
    binary: bool,
    /// Set for `/connection/uni_websocket` (boxed: every bidirectional
    /// connection's task carries this field).
    uni: Option<Box<Uni>>,
}

impl Transport for WsTransport {
    const KIND: crate::node::handle::TransportKind = crate::node::handle::TransportKind::Websocket;

    async fn recv(&mut self) -> Inbound {
        if let Some(u) = &mut self.uni
            && let Some(f) = u.first.take()
        {
            u.connected = true;
            return Inbound::Frame(f);
        }
        let inbound = match self.socket.recv().await {
            Some(Ok(Message::Text(t))) => Inbound::Frame(Bytes::from(t)),
            // JSON clients send text frames; a binary frame is not a command we can read.
            Some(Ok(Message::Binary(b))) => Inbound::Frame(b),
            Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) => Inbound::Nothing,
            Some(Ok(Message::Close(_))) => Inbound::PeerClosed,
            None => Inbound::Closed,
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("Space limit exceeded")
                    || text.contains("too long")
                    || text.contains("Message too big")
                    || text.contains("capacity")
                {
                    // Oversized message: 1009 as Centrifugo (gorilla/websocket) does.
                    return Inbound::Refuse(Disconnect::new(1009, "message too big"));
                }
                tracing::debug!(error = %text, "websocket read error");
                Inbound::Closed
            }
        };
        match (&mut self.uni, inbound) {
            // Unidirectional: the first message is the connect request,
            // anything after it is ignored.
            (Some(u), Inbound::Frame(f)) if !u.connected => {
                u.connected = true;
                match super::stream::uni_connect_frame(&f) {
                    Some(cmd) => Inbound::Frame(cmd),
                    None => Inbound::Refuse(Disconnect::bad_request()),
                }
            }
            (Some(_), Inbound::Frame(_)) => Inbound::Nothing,
            (_, other) => other,
        }
    }

    async fn send(&mut self, frames: &mut Vec<Bytes>) -> Result<(), ()> {
        if self.uni.is_some() {
            // Unidirectional: one push per message (Centrifugo joins them
            // only with `join_push_messages`; Gyre never does).
            for f in frames.drain(..) {
                let text = Utf8Bytes::try_from(f).map_err(|_| ())?;
                send_within(&mut self.socket, Message::Text(text), self.write_timeout).await?;
            }
            return Ok(());
        }
        send_batch(&mut self.socket, frames, self.write_timeout, self.binary).await
    }

    async fn ack_close(&mut self) {
        // RFC 6455 §5.5.1: answer a Close with a Close. The socket queued
        // the echo when it read the frame; flushing sends it, so the SDK
        // sees a clean 1000, not an abnormal 1006. (Not in `recv`: its
        // future lives in every idle connection's task.)
        let _ = tokio::time::timeout(self.write_timeout, self.socket.flush()).await;
    }

    async fn close(&mut self, d: &Disconnect) {
        if self.uni.as_ref().is_some_and(|u| u.disconnect_push) {
            let push = ProtocolKind::UniJson.disconnect_push(d.code, &d.reason);
            if let Ok(text) = Utf8Bytes::try_from(push) {
                let _ = send_within(
                    &mut self.socket,
                    Message::Text(text),
                    std::time::Duration::from_secs(1),
                )
                .await;
            }
        }
        let frame = CloseFrame {
            code: d.code,
            reason: Utf8Bytes::from(d.reason.clone()),
        };
        let _ = send_within(
            &mut self.socket,
            Message::Close(Some(frame)),
            std::time::Duration::from_secs(1),
        )
        .await;
    }
}

async fn send_batch(
    socket: &mut WebSocket,
    frames: &mut Vec<Bytes>,
    timeout: std::time::Duration,
    binary: bool,
) -> Result<(), ()> {
    if frames.is_empty() {
        return Ok(());
    }
    for chunk in frames.chunks(MAX_BATCH) {
        // JSON lines are joined by newlines (§1.3); protobuf messages carry
        // their own length prefix and are simply concatenated.
        let sep = usize::from(!binary);
        let payload = if chunk.len() == 1 {
            chunk[0].clone()
        } else {
            let len = chunk.iter().map(|b| b.len() + sep).sum();
            let mut buf = BytesMut::with_capacity(len);
            for (i, b) in chunk.iter().enumerate() {
                if i > 0 && !binary {
                    buf.put_u8(b'\n');
                }
                buf.extend_from_slice(b);
            }
            buf.freeze()
        };
        let msg = if binary {
            Message::Binary(payload)
        } else {
            Message::Text(Utf8Bytes::try_from(payload).map_err(|_| ())?)
        };
        send_within(socket, msg, timeout).await?;
    }
    frames.clear();
    Ok(())
}

/// Sends one message, giving up after `timeout`. Most sends complete on
/// the first poll (the kernel buffer has room), so the timer is armed only
/// when the first poll is pending: a timer per write would put every
/// fan-out delivery through the timer wheel twice.
async fn send_within(
    socket: &mut WebSocket,
    msg: Message,
    timeout: std::time::Duration,
) -> Result<(), ()> {
    let mut fut = std::pin::pin!(socket.send(msg));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(r) => r.map_err(|_| ()),
        std::task::Poll::Pending => match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_is_negotiated_as_centrifugo_does() {
        assert_eq!(
            negotiate(Some("centrifuge-protobuf"), None),
            ProtocolKind::Protobuf
        );
        assert_eq!(
            negotiate(None, Some("cf_protocol=protobuf")),
            ProtocolKind::Protobuf
        );
        assert_eq!(
            negotiate(None, Some("a=1&format=protobuf")),
            ProtocolKind::Protobuf
        );
        assert_eq!(negotiate(Some("centrifuge-json"), None), ProtocolKind::Json);
        assert_eq!(negotiate(None, Some("format=json")), ProtocolKind::Json);
        assert_eq!(negotiate(None, None), ProtocolKind::Json);
    }

    #[test]
    fn origins_follow_centrifugo_rules() {
        assert!(origin_allowed(&[], None));
        assert!(!origin_allowed(&[], Some("http://a.com")));
        assert!(origin_allowed(&["*".into()], Some("http://a.com")));
        assert!(origin_allowed(
            &["http://*.example.com".into()],
            Some("http://app.example.com")
        ));
        assert!(!origin_allowed(
            &["http://*.example.com".into()],
            Some("http://evil.com")
        ));
    }
}
