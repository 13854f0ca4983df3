//! The connection task: one per connection, no separate writer task. It
//! joins a transport, the session, the connection's outbound queue and one
//! timer, and is the same for every transport (generic, so each compiles to
//! its own small task).

use super::{Inbound, Transport};
use crate::client::{Close, Session};
use crate::codes::Disconnect;
use crate::node::Node;
use crate::node::handle::ClientHandle;
use crate::node::outbox::Out;
use bytes::Bytes;
use std::sync::Arc;

/// Runs a connection until it ends, then cleans up after it.
pub(crate) async fn run<T: Transport>(node: Arc<Node>, mut transport: T, mut session: Session) {
    let mut out: Vec<Bytes> = Vec::new();
    let mut queued: Vec<Out> = Vec::new();
    let shutdown = node.lifecycle().shutdown().clone();
    // When a disconnect was asked for from outside (API, block, slow client).
    let mut requested: Option<tokio::time::Instant> = None;
    // One timer for the connection's lifetime, moved only when the session's
    // next deadline changes (not re-created on every wake).
    let sleep = tokio::time::sleep_until(session.next_deadline());
    tokio::pin!(sleep);
    // The handle only changes at connect; the deadline only when the session
    // did more than forward queued frames. Both are cached across wakes, as
    // fan-out wakes every subscriber once per batch.
    let mut handle: Option<Arc<ClientHandle>> = None;
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
                            Out::Instruction(c) => {
                                dirty = true;
                                if let Err(e) = session.handle_instruction(c, &mut out).await {
                                    r = Err(e);
                                    break;
                                }
                            }
                        }
                    }
                    r
                }
            }
            inbound = transport.recv() => match inbound {
                // Boxed: the step and its close watch are a large future,
                // and every idle connection's task would otherwise carry it.
                Inbound::Frame(f) => {
                    Box::pin(until_closed(session.handle_frame(&f, &mut out), &shutdown, handle.as_deref())).await
                }
                Inbound::Nothing => Ok(()),
                Inbound::Closed => break Close::Drop,
                Inbound::PeerClosed => {
                    transport.ack_close().await;
                    break Close::Drop;
                }
                Inbound::Refuse(d) => break Close::Frame(d),
            },
            _ = &mut sleep => {
                Box::pin(until_closed(session.on_timer(&mut out), &shutdown, handle.as_deref())).await
            }
        };
        if transport.send(&mut out).await.is_err() {
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
    let _ = transport.send(&mut out).await;
    if let Close::Frame(d) = &close {
        if d.code == 3008 {
            crate::metrics::Metrics::inc(&node.metrics().slow_disconnects);
        }
        transport.close(d).await;
        if let Some(at) = requested {
            node.metrics().forced_close.observe(at.elapsed());
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
    drop(transport);
}

/// Runs one session step, but gives it up when the connection must close
/// (shutdown, or a disconnect requested by a block or the API): a slow JWKS
/// fetch or proxy call must not keep a closed connection working on its
/// commands. A requested disconnect is then taken by the loop as usual.
async fn until_closed(
    step: impl Future<Output = Result<(), Close>>,
    shutdown: &tokio_util::sync::CancellationToken,
    handle: Option<&ClientHandle>,
) -> Result<(), Close> {
    tokio::select! {
        biased;
        r = step => r,
        _ = shutdown.cancelled() => Err(Close::Frame(Disconnect::shutdown())),
        _ = async { match handle { Some(h) => h.outbox.closed().await, None => std::future::pending().await } } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that never delivers anything.
    struct Idle;

    impl Transport for Idle {
        const KIND: crate::node::handle::TransportKind =
            crate::node::handle::TransportKind::Websocket;
        async fn recv(&mut self) -> Inbound {
            std::future::pending().await
        }
        async fn send(&mut self, frames: &mut Vec<Bytes>) -> Result<(), ()> {
            frames.clear();
            Ok(())
        }
        async fn close(&mut self, _: &Disconnect) {}
        async fn ack_close(&mut self) {}
    }

    /// Every idle connection's task is this future: keep an eye on its size
    /// (the WebSocket figure in docs/performance.md is about 6 KiB per
    /// connection, socket buffers included).
    #[test]
    fn the_connection_task_stays_small() {
        let cfg = crate::config::load_value(serde_json::json!({}), &[], &[])
            .unwrap()
            .config;
        let node = Node::new(cfg).unwrap();
        let session = Session::new(node.clone(), Default::default());
        let f = run(node, Idle, session);
        let size = std::mem::size_of_val(&f);
        eprintln!("connection task future: {size} bytes");
        // 2,160 bytes when the close watch around each step was inline (an
        // idle connection then used 7.3 KiB instead of 6.2); boxed: see below.
        assert!(size <= 1600, "connection task future grew to {size} bytes");
    }
}
