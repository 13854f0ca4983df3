//! `gyre-loadgen`: drives a running Gyre (or any Centrifugo-compatible
//! server) over real WebSocket connections (client protocol v2, JSON) and the
//! HTTP API. Loopback targets only; every scenario is bounded in count and
//! time. Each run prints a table and then one JSON line with all figures.
//!
//! Scenarios: `idle` (memory per held connection), `connect` (connect rate
//! and latency), `fanout` (delivery rate, latency, loss), `block`
//! (`block_user` / `revoke_token` close latency).
//!
//! ```text
//! C="--api-key KEY --secret SECRET --server-pid $(pidof gyre)"
//! gyre-loadgen idle    --connections 10000 --procs 2 --hold 30 $C
//! gyre-loadgen connect --connections 5000 --concurrency 100 $C [--rsa-key key.pem]
//! gyre-loadgen fanout  --subscribers 1000 --rate 100 --duration 10 [--channels 10] $C
//! gyre-loadgen block   --connections 15000 --user-connections 1000 --revoke $C
//! ```
//!
//! CPU figures come from `/proc/*/stat` (10 ms ticks): read short windows
//! with that in mind. Client and server CPU are reported side by side so a
//! client-bound result is not mistaken for the server's limit.

mod api;
mod cli;
mod client;
mod report;
mod scenarios;
mod stats;
mod target;
mod token;

use anyhow::{Result, anyhow};
use clap::Parser;
use cli::{Cli, Scenario};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gyre-loadgen: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for lingering connection tasks on the way out.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gyre-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen scenario under the `--max-time` limit and prints its report.
async fn run(cli: Cli) -> Result<()> {
    let limit = Duration::from_secs(cli.common.max_time);
    let ctx = scenarios::Ctx::new(cli.common)?;
    let work = async {
        let report = match cli.scenario {
            Scenario::Idle(a) => scenarios::idle::run(&ctx, a).await?,
            Scenario::Connect(a) => scenarios::connect::run(&ctx, a).await?,
            Scenario::Fanout(a) => scenarios::fanout::run(&ctx, a).await?,
            Scenario::Block(a) => scenarios::block::run(&ctx, a).await?,
            Scenario::IdleWorker(a) => return scenarios::idle::worker(&ctx, a).await,
        };
        report.print();
        Ok(())
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| anyhow!("run aborted: --max-time of {limit:?} passed"))?
}
