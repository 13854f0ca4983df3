//! Gyre: a Centrifugo v6 wire-compatible real-time messaging server with
//! user blocking and token revocation built in.
//!
//! Layout (design.md Part 3): `transport` (WebSocket), `client` (session
//! state machine), `node` (hub and cluster-wide actions), `broker`
//! (history), `presence`, `protect` (blocked users, revoked tokens), `auth`
//! (JWT), `proxy` (connect/refresh proxy), `api` (server API), `config`,
//! `cli`, `app` (wiring and shutdown).

pub mod api;
pub mod app;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod client;
pub mod codes;
pub mod config;
pub mod metrics;
pub mod node;
pub mod presence;
pub mod protect;
pub mod protocol;
pub mod proxy;
pub mod transport;
