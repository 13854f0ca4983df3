//! Transports: HTTP connection serving with its limits, the connection task
//! that drives a session over any bidirectional transport (`conn.rs`), and
//! the transports themselves (WebSocket, the
//! unidirectional ones, and the SSE/HTTP-streaming emulation).
//!
//! A transport is three operations ([`Transport`]): read the next inbound
//! frame, write a batch of encoded frames, close with a disconnect. The
//! connection loop is generic over it (not `dyn`), so each transport
//! compiles to a task of its own exact size: idle connections stay small.

pub(crate) mod conn;
pub(crate) mod emulation;
pub(crate) mod http;
pub(crate) mod stream;
pub(crate) mod ws;

use crate::codes::Disconnect;
use bytes::Bytes;

/// What a transport read.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// One frame of commands, in the connection's encoding.
    Frame(Bytes),
    /// Something the session need not see (transport-level pings).
    Nothing,
    /// The peer closed, or the connection broke: end without a close frame.
    Closed,
    /// The peer asked to close (a WebSocket Close frame): acknowledge with
    /// [`Transport::ack_close`], then end.
    PeerClosed,
    /// The transport refuses what arrived and closes with this (e.g. 1009).
    Refuse(Disconnect),
}

/// One bidirectional connection as the session sees it.
pub(crate) trait Transport: Send {
    /// Which transport this is (its name in proxy requests and the
    /// `connections` API).
    const KIND: crate::node::handle::TransportKind;

    /// The next inbound frame. Must be cancel-safe: the connection loop
    /// selects over it with the outbound queue and timers.
    fn recv(&mut self) -> impl Future<Output = Inbound> + Send;

    /// Writes `frames` (each one encoded reply or push) and clears it;
    /// `Err` if the connection is gone or a write did not finish in time.
    fn send(&mut self, frames: &mut Vec<Bytes>) -> impl Future<Output = Result<(), ()>> + Send;

    /// Ends the connection with `d` (a close frame, where the transport has
    /// one), writing for at most a second.
    fn close(&mut self, d: &Disconnect) -> impl Future<Output = ()> + Send;

    /// Answers the peer's close (RFC 6455 §5.5.1 for WebSocket), writing
    /// for at most the write timeout.
    fn ack_close(&mut self) -> impl Future<Output = ()> + Send;
}
