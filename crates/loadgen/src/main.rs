//! `gyre-loadgen`: drives a running Gyre (or any Centrifugo-compatible
//! server) over real WebSocket connections (client protocol v2, JSON) and the
//! HTTP API. Loopback targets only; every scenario is bounded in count and
//! time. Each run prints a table and then one JSON line with all figures.
//!
//! Scenarios: `idle` (memory per held connection), `connect` (connect rate
//! and latency), `fanout` (delivery rate, latency, loss), `block`
//! (`block_user` / `revoke_token` close latency).

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
