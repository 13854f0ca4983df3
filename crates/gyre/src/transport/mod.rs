//! Transports: the WebSocket endpoint and the per-connection outbound queue.

pub mod outbox;
pub mod ws;
