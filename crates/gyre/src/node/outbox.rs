//! The per-connection outbound queue. Anything that wants to reach a client
//! (fan-out, API actions, protective disconnects) pushes here without ever
//! waiting; the connection task drains the queue and writes one WebSocket
//! frame per batch. The queue is bounded in bytes (`client.queue_max_size`):
//! a client that cannot keep up is disconnected with 3008 `slow` instead of
//! slowing everyone else down (design.md §3.3 step 6).
//!
//! Memory: an idle outbox is an empty `VecDeque` (no allocation), a
//! waker slot and a few words, so idle connections cost little.

use crate::codes::Disconnect;
use crate::protocol::Raw;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// Instructions for the connection task that change session state, so they
/// must run inside the task that owns the session. (Named apart from
/// Centrifugo's node-to-node "control" messages, which the cluster adds.)
#[derive(Debug)]
pub enum Instruction {
    /// Server API `subscribe`: add a server-side subscription.
    Subscribe(Box<ServerSubscribe>),
    /// Server API `unsubscribe` or a revoked subscription token.
    Unsubscribe {
        /// Channel.
        channel: String,
        /// Unsubscribe code (2000 server, 2502 state invalidated).
        code: u32,
        /// Reason.
        reason: std::borrow::Cow<'static, str>,
    },
    /// Server API `refresh`.
    Refresh {
        /// Mark the connection expired now.
        expired: bool,
        /// New expiry (Unix seconds, 0 = none).
        expire_at: i64,
        /// New connection info.
        info: Option<Raw>,
    },
    /// Protective data changed: re-check this connection's tokens.
    Recheck,
    /// Publications of `channel` were missed (a gap in offsets, or another
    /// epoch, seen by the Redis engine): positioned subscriptions end with
    /// 2500 `insufficient state`, and the SDK resubscribes and recovers.
    InsufficientState {
        /// Channel.
        channel: String,
    },
}

/// Parameters of a server-side subscription made through the API.
#[derive(Debug, Default, Clone)]
pub struct ServerSubscribe {
    /// Channel.
    pub channel: String,
    /// Subscription expiry (Unix seconds, 0 = none).
    pub expire_at: i64,
    /// Channel info.
    pub info: Option<Raw>,
    /// Data for the subscribe push.
    pub data: Option<Raw>,
    /// Recover from this position.
    pub recover_since: Option<crate::protocol::StreamPosition>,
}

/// One queued item.
#[derive(Debug)]
pub enum Out {
    /// An encoded reply or push (one JSON object).
    Frame(Bytes),
    /// A session instruction.
    Instruction(Instruction),
}

/// The outbound queue of one connection.
#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<VecDeque<Out>>,
    bytes: AtomicUsize,
    max_bytes: usize,
    closed: AtomicBool,
    disconnect: Mutex<Option<(Disconnect, tokio::time::Instant)>>,
    /// Set by producers, cleared by the connection task.
    signalled: AtomicBool,
    /// The connection task's waker: cheaper than a `Notify`, whose waiter
    /// list is locked on every wait (measured in the fan-out profile).
    waker: AtomicWaker,
}

impl Outbox {
    /// A queue that tolerates `max_bytes` of unsent frames.
    pub fn new(max_bytes: usize) -> Self {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            bytes: AtomicUsize::new(0),
            max_bytes,
            closed: AtomicBool::new(false),
            disconnect: Mutex::new(None),
            signalled: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Queues a frame; a full queue turns into a `slow` disconnect.
    pub fn push_frame(&self, frame: Bytes) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let len = frame.len();
        if self.bytes.fetch_add(len, Ordering::Relaxed) + len > self.max_bytes {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            self.disconnect(Disconnect::slow());
            return;
        }
        self.queue.lock().push_back(Out::Frame(frame));
        self.signal();
    }

    /// Queues a session instruction.
    pub fn push_instruction(&self, c: Instruction) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        self.queue.lock().push_back(Out::Instruction(c));
        self.signal();
    }

    /// Asks the connection to close with `d`; the first reason wins and jumps the queue.
    pub fn disconnect(&self, d: Disconnect) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.disconnect.lock() = Some((d, tokio::time::Instant::now()));
        self.signal();
    }

    /// Resolves once a disconnect was requested, without consuming it or
    /// the queue's signal. It shares the task's waker: the connection task
    /// waits here only while it runs a step, never in its main wait too.
    pub async fn closed(&self) {
        std::future::poll_fn(|cx| {
            if self.is_closed() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.is_closed() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// The pending disconnect, if any, with the moment it was requested.
    pub fn take_disconnect(&self) -> Option<(Disconnect, tokio::time::Instant)> {
        self.disconnect.lock().take()
    }

    /// Bytes of frames queued and not yet drained.
    pub fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// True once a disconnect was requested.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn signal(&self) {
        self.signalled.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once something was queued since the last time it was ready.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.signalled.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Check again: a producer may have signalled before the waker was stored.
        if self.signalled.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Waits until something was queued.
    pub async fn notified(&self) {
        std::future::poll_fn(|cx| self.poll_signal(cx)).await
    }

    /// Moves everything queued into `into` and releases its byte budget.
    pub fn drain(&self, into: &mut Vec<Out>) {
        let mut q = self.queue.lock();
        let mut freed = 0;
        for item in q.drain(..) {
            if let Out::Frame(b) = &item {
                freed += b.len();
            }
            into.push(item);
        }
        if q.capacity() > 64 {
            q.shrink_to(0); // give burst memory back: idle connections stay small
        }
        drop(q);
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_becomes_a_slow_disconnect() {
        let o = Outbox::new(10);
        o.push_frame(Bytes::from_static(b"12345"));
        o.push_frame(Bytes::from_static(b"12345"));
        assert!(!o.is_closed());
        o.push_frame(Bytes::from_static(b"1"));
        assert!(o.is_closed());
        assert_eq!(o.take_disconnect().unwrap().0.code, 3008);
        let mut v = Vec::new();
        o.drain(&mut v);
        assert_eq!(v.len(), 2);
    }
}
