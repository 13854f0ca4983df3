//! The one integration test binary (design.md §3.1): real servers on
//! 127.0.0.1, real sockets, whole-frame expectations.

mod abuse;
mod api;
mod auth;
mod cli;
mod cluster;
mod cluster_faults;
mod config_env;
mod config_file;
mod conformance;
mod fuzz;
mod helpers;
mod protect;
mod protobuf;
mod proxy;
mod storage;
mod transports;
mod ws;
