//! Gyre: a Centrifugo v6 wire-compatible real-time messaging server with
//! user blocking and token revocation built in.
//!
//! Layout (design.md Part 3): `transport` (WebSocket), `client` (session
//! state machine), `node` (hub and cluster-wide actions), `broker`
//! (history), `presence`, `protect` (blocked users, revoked tokens), `auth`
//! (JWT), `proxy` (connect/refresh proxy), `api` (server API), `config`,
//! `cli`, `app` (wiring and shutdown).
//!
//! The public surface is what the binary, the integration tests, the
//! benches and the examples use; everything else is `pub(crate)`.

#![warn(unreachable_pub)]
// Deep async types (connection tasks over Redis-backed nodes) exceed the
// default depth when the compiler proves they are `Send`.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod auth;
pub(crate) mod broker;
pub mod cli;
pub mod client;
pub(crate) mod cluster;
pub(crate) mod codes;
pub mod config;
pub(crate) mod metrics;
pub mod node;
pub mod pb;
pub(crate) mod presence;
pub mod protect;
pub mod protocol;
pub(crate) mod proxy;
pub(crate) mod redis_client;
pub(crate) mod transport;
