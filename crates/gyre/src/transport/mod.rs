//! Transports: HTTP connection serving with its limits, the WebSocket
//! endpoint and the per-connection outbound queue.

pub(crate) mod http;
pub mod outbox;
pub mod ws;
