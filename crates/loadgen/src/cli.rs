//! Command-line interface: one subcommand per scenario, plus options shared
//! by all of them. Every count and duration has an upper bound so a run
//! always stops by itself.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Largest connection count accepted by any scenario.
pub(crate) const MAX_CONNECTIONS: usize = 500_000;
/// Longest duration (seconds) accepted for holds, runs and the global limit.
pub(crate) const MAX_SECONDS: u64 = 3_600;

/// Load generator for Gyre and other Centrifugo-compatible servers.
///
/// Talks client protocol v2 (JSON) over WebSocket and the server HTTP API,
/// to loopback addresses only. Prints a table and then one JSON line.
#[derive(Debug, Parser)]
#[command(name = "gyre-loadgen", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Options shared by all scenarios.
    #[command(flatten)]
    pub(crate) common: Common,
    /// The scenario to run.
    #[command(subcommand)]
    pub(crate) scenario: Scenario,
}

/// Options shared by all scenarios (accepted before or after the subcommand).
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// WebSocket endpoint of the server (loopback only); several nodes as a
    /// comma-separated list, connection n going to node n mod nodes.
    #[arg(
        long,
        global = true,
        default_value = "ws://127.0.0.1:8000/connection/websocket"
    )]
    pub(crate) url: String,
    /// Prefix of the server HTTP API; the method name is appended (loopback only).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8000/api")]
    pub(crate) api_url: String,
    /// Key sent as `X-API-Key` to the HTTP API.
    #[arg(long, global = true, default_value = "")]
    pub(crate) api_key: String,
    /// HMAC secret for HS256 connection tokens.
    #[arg(long, global = true, default_value = "")]
    pub(crate) secret: String,
    /// PEM RSA private key: sign connection tokens with RS256 instead of HS256.
    #[arg(long, global = true)]
    pub(crate) rsa_key: Option<PathBuf>,
    /// Server process id: report its CPU time and resident memory.
    #[arg(long, global = true)]
    pub(crate) server_pid: Option<u32>,
    /// Every N-th connection (0, N, 2N, ...) speaks the protobuf flavour of
    /// the protocol (`?cf_protocol=protobuf`, binary frames); 0 = none, 1 =
    /// all, 2 = half.
    #[arg(long, global = true, default_value_t = 0)]
    pub(crate) protobuf_every: u64,
    /// Spread client sockets over this many source addresses 127.0.0.2, 127.0.0.3, ...
    /// (0: let the kernel choose; ignored for IPv6 targets).
    #[arg(long, global = true, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=250))]
    pub(crate) source_ips: u8,
    /// Connection attempts in flight at once while opening connections.
    #[arg(long, global = true, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) concurrency: u64,
    /// WebSocket read buffer per connection, bytes (tungstenite allocates it eagerly).
    #[arg(long, global = true, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(256..=1_048_576))]
    pub(crate) read_buffer: u64,
    /// Hard limit for the whole run, seconds; the run is aborted when it passes.
    #[arg(long, global = true, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub(crate) max_time: u64,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub(crate) enum Scenario {
    /// Open N subscribed connections, hold them, report server memory per connection.
    Idle(IdleArgs),
    /// Measure connects per second and connect-reply latency (full JWT verification).
    Connect(ConnectArgs),
    /// Publish through the HTTP API to S subscribers; report delivery rate, latency, loss.
    Fanout(FanoutArgs),
    /// Block one user (and optionally revoke a token); time the close frames.
    Block(BlockArgs),
    /// Internal: a child process of `idle --procs K` holding a share of the connections.
    #[command(hide = true)]
    IdleWorker(WorkerArgs),
}

/// `idle` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct IdleArgs {
    /// Connections to open in total.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub(crate) connections: u64,
    /// Channels the connections are spread over (one subscription per connection).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub(crate) channels: u64,
    /// Seconds to hold the connections open after all are established.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=MAX_SECONDS))]
    pub(crate) hold: u64,
    /// Client processes to spread the connections over (default: one per 15,000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) procs: Option<u64>,
}

/// `connect` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectArgs {
    /// Connections to open.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub(crate) connections: u64,
    /// Close each connection right after its connect reply (allows N above the
    /// open-files limit; source addresses are then left to the kernel); by
    /// default all stay open until the end.
    #[arg(long)]
    pub(crate) close_each: bool,
    /// Before connecting, block this many users and revoke this many token
    /// ids through the API (batch calls), so every connect is checked against
    /// a large protective set.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=2_000_000))]
    pub(crate) preload: u64,
}

/// `fanout` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct FanoutArgs {
    /// Subscriber connections.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub(crate) subscribers: u64,
    /// Publications per second through the HTTP API.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) rate: u64,
    /// Seconds to publish for.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    pub(crate) duration: u64,
    /// Channels; subscribers and publications are spread evenly over them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) channels: u64,
    /// Publish requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4_096))]
    pub(crate) publish_concurrency: u64,
    /// Seconds to wait after the last publication for outstanding deliveries.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub(crate) drain: u64,
}

/// `block` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct BlockArgs {
    /// Connections in total (the user's connections included).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub(crate) connections: u64,
    /// Connections of the user that gets blocked.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub(crate) user_connections: u64,
    /// Also revoke one token (jti) shared by another `--user-connections` connections.
    #[arg(long)]
    pub(crate) revoke: bool,
    /// Seconds to wait for the expected close frames.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) wait: u64,
    /// Milliseconds to keep watching after the expected closes, to catch collateral ones.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub(crate) grace_ms: u64,
    /// Repeat the measurement this many times, each round with fresh users
    /// and freshly opened connections; every round's close latencies go
    /// into one histogram per call (a single close per round gives no
    /// percentiles, so many rounds do).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub(crate) rounds: u64,
}

/// Options of the hidden `idle-worker` subcommand (set by the parent process).
#[derive(Debug, Clone, Args)]
pub(crate) struct WorkerArgs {
    /// Connections this worker opens.
    #[arg(long)]
    pub(crate) count: u64,
    /// Global index of this worker's first connection.
    #[arg(long)]
    pub(crate) first: u64,
    /// Channel count (global).
    #[arg(long)]
    pub(crate) channels: u64,
    /// Run tag shared by parent and workers (user and channel names).
    #[arg(long)]
    pub(crate) tag: String,
}
