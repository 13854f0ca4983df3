//! Protobuf types generated from `proto/*.proto` at build time (prost):
//! the client protocol's protobuf flavour and the Redis payloads
//! (`client`), and the messages between nodes (`control`).

#![allow(missing_docs, unreachable_pub, dead_code, clippy::all)]

/// The client protocol (protobuf flavour) and the publication payloads carried through Redis.
pub mod client {
    include!(concat!(env!("OUT_DIR"), "/gyre.client.rs"));
}

/// Control messages between nodes.
pub mod control {
    include!(concat!(env!("OUT_DIR"), "/gyre.control.rs"));
}
