//! Protobuf types generated from `proto/*.proto` at build time (prost).

#![allow(missing_docs, unreachable_pub, clippy::all)]

/// Client-protocol messages carried through Redis.
pub(crate) mod client {
    include!(concat!(env!("OUT_DIR"), "/gyre.client.rs"));
}

/// Control messages between nodes.
pub(crate) mod control {
    include!(concat!(env!("OUT_DIR"), "/gyre.control.rs"));
}
