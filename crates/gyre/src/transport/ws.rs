//! The bidirectional WebSocket transport at `/connection/websocket`
//! (protocol.md §1.2, §1.3): origin check, size limits, and the connection
//! task that joins the socket, the session, its outbound queue and timers.
//!
//! One task per connection, no separate writer task: an idle connection is
//! one parked task, the socket's small buffers and the session — sized on
//! purpose (`websocket.read_buffer_size`, default 1 KiB, grows on demand).

use super::outbox::Out;
use crate::client::{Close, Session};
use crate::codes::Disconnect;
use crate::node::Node;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use std::future::Future;
use std::sync::Arc;

/// Most frames joined into one WebSocket message (Centrifuge's writer uses 16).
const MAX_BATCH: usize = 64;

/// Upgrade handler.
pub async fn handler(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(
        &node.cfg.client.allowed_origins,
        headers.get("origin").and_then(|v| v.to_str().ok()),
    ) {
        tracing::debug!("websocket upgrade refused: origin not allowed");
        return StatusCode::FORBIDDEN.into_response();
    }
    if node.shutdown.is_cancelled() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let wcfg = &node.cfg.websocket;
    let limit = wcfg.message_size_limit;
    let tracker = node.tracker.clone();
    ws.read_buffer_size(wcfg.read_buffer_size.max(256))
        .write_buffer_size(wcfg.write_buffer_size)
        .max_message_size(limit)
        .max_frame_size(limit)
        .protocols(["centrifuge-json"])
        // axum already runs this future in its own task: track it there
        // instead of spawning a second task per connection.
        .on_upgrade(move |socket| tracker.track_future(run(node, socket, headers)))
}

/// Centrifugo's rule: with no allowed origins, only requests without an
/// `Origin` header pass; `*` allows all; otherwise glob patterns.
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    allowed
        .iter()
        .any(|pat| glob_match(&pat.to_ascii_lowercase(), &origin.to_ascii_lowercase()))
}

/// Minimal glob: `*` matches any run of characters.
pub fn glob_match(pat: &str, s: &str) -> bool {
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

async fn send_batch(
    socket: &mut WebSocket,
    frames: &mut Vec<Bytes>,
    timeout: std::time::Duration,
) -> Result<(), ()> {
    if frames.is_empty() {
        return Ok(());
    }
    for chunk in frames.chunks(MAX_BATCH) {
        let payload = if chunk.len() == 1 {
            chunk[0].clone()
        } else {
            let len = chunk.iter().map(|b| b.len() + 1).sum();
            let mut buf = BytesMut::with_capacity(len);
            for (i, b) in chunk.iter().enumerate() {
                if i > 0 {
                    buf.put_u8(b'\n');
                }
                buf.extend_from_slice(b);
            }
            buf.freeze()
        };
        let text = Utf8Bytes::try_from(payload).map_err(|_| ())?;
        send_within(socket, Message::Text(text), timeout).await?;
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

async fn close_with(socket: &mut WebSocket, d: &Disconnect) {
    let frame = CloseFrame {
        code: d.code,
        reason: Utf8Bytes::from(d.reason.clone()),
    };
    let _ = send_within(
        socket,
        Message::Close(Some(frame)),
        std::time::Duration::from_secs(1),
    )
    .await;
}

/// The connection task.
async fn run(node: Arc<Node>, mut socket: WebSocket, headers: HeaderMap) {
    let mut session = Session::new(node.clone(), headers);
    let write_timeout = node.cfg.websocket.write_timeout.0;
    let mut out: Vec<Bytes> = Vec::new();
    let mut queued: Vec<Out> = Vec::new();
    let shutdown = node.shutdown.clone();
    // When a disconnect was asked for from outside (API, block, slow client).
    let mut requested: Option<tokio::time::Instant> = None;
    // One timer for the connection's lifetime, moved only when the session's
    // next deadline changes (not re-created on every wake).
    let sleep = tokio::time::sleep_until(session.next_deadline());
    tokio::pin!(sleep);
    // The handle only changes at connect; the deadline only when the session
    // did more than forward queued frames. Both are cached across wakes, as
    // fan-out wakes every subscriber once per batch.
    let mut handle: Option<Arc<crate::node::handle::ClientHandle>> = None;
    let mut dirty = true;
    let close: Close = loop {
        if dirty {
            let deadline = session.next_deadline();
            if sleep.deadline() != deadline || sleep.is_elapsed() {
                sleep.as_mut().reset(deadline);
            }
            if handle.is_none() {
                handle = session.handle().cloned();
            }
        }
        dirty = true;
        let step: Result<(), Close> = tokio::select! {
            biased;
            _ = shutdown.cancelled() => Err(Close::Frame(Disconnect::shutdown())),
            _ = async { match &handle { Some(h) => h.outbox.notified().await, None => std::future::pending().await } } => {
                let h = handle.as_ref().expect("notified only with a handle");
                if let Some((d, at)) = h.outbox.take_disconnect() {
                    requested = Some(at);
                    Err(Close::Frame(d))
                } else {
                    h.outbox.drain(&mut queued);
                    let mut r = Ok(());
                    dirty = false;
                    for item in queued.drain(..) {
                        match item {
                            Out::Frame(b) => out.push(b),
                            Out::Control(c) => {
                                dirty = true;
                                if let Err(e) = session.handle_control(c, &mut out).await {
                                    r = Err(e);
                                    break;
                                }
                            }
                        }
                    }
                    r
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => session.handle_frame(t.as_bytes(), &mut out).await,
                // JSON clients send text frames; a binary frame is not a command we can read.
                Some(Ok(Message::Binary(b))) => session.handle_frame(&b, &mut out).await,
                Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) => Ok(()),
                Some(Ok(Message::Close(_))) | None => break Close::Drop,
                Some(Err(e)) => {
                    let text = e.to_string();
                    if text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Message too big") || text.contains("capacity") {
                        // Oversized message: 1009 as Centrifugo (gorilla/websocket) does.
                        break Close::Frame(Disconnect::new(1009, "message too big"));
                    }
                    tracing::debug!(error = %text, "websocket read error");
                    break Close::Drop;
                }
            },
            _ = &mut sleep => session.on_timer(&mut out).await,
        };
        if send_batch(&mut socket, &mut out, write_timeout)
            .await
            .is_err()
        {
            break Close::Drop;
        }
        if let Err(c) = step {
            break c;
        }
        // A disconnect requested while we were busy (slow client, block) wins now.
        if let Some(h) = session.handle()
            && let Some((d, at)) = h.outbox.take_disconnect()
        {
            requested = Some(at);
            break Close::Frame(d);
        }
    };
    // Replies produced by the failing step (e.g. an error before a close) go first.
    let _ = send_batch(&mut socket, &mut out, write_timeout).await;
    if let Close::Frame(d) = &close {
        if d.code == 3008 {
            crate::metrics::Metrics::inc(&node.metrics.slow_disconnects);
        }
        close_with(&mut socket, d).await;
        if let Some(at) = requested {
            node.metrics.forced_close.observe(at.elapsed());
        }
        // When many connections are closed at once (block_user, shutdown),
        // let every close frame go out before any of the clean-up below runs.
        tokio::task::yield_now().await;
    }
    if let Some(h) = session.handle() {
        h.outbox
            .disconnect(Disconnect::new(3000, "connection closed"));
    }
    session.close();
    drop(socket);
}

#[cfg(test)]
mod tests {
    use super::*;

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
