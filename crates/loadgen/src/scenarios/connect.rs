//! `connect`: connects per second with full JWT verification, and the latency
//! from WebSocket open to the connect reply.
//!
//! Tokens are signed before the clock starts (RS256 signing is far costlier
//! than the server's verification and would otherwise dominate the client).

use super::Ctx;
use super::fleet::poll_until;
use crate::cli::ConnectArgs;
use crate::client::{self, Dialer, Failures};
use crate::report::Report;
use crate::stats::{self, CpuWindow, Latency};
use anyhow::{Result, bail};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

#[derive(Default)]
struct Shared {
    handshake: Mutex<Latency>,
    connect: Mutex<Latency>,
    ok: AtomicU64,
    failed: AtomicU64,
    failures: Failures,
    pings: AtomicU64,
    ended: AtomicU64,
}

/// Runs the `connect` scenario.
pub(crate) async fn run(ctx: &Ctx, a: ConnectArgs) -> Result<Report> {
    let n = a.connections;
    if a.close_each {
        stats::check_fd_budget(ctx.common.concurrency)?;
    } else {
        stats::check_fd_budget(n)?;
        stats::warn_server_fd_budget(ctx.common.server_pid, n);
    }
    let preload_s = super::preload::preload(ctx, a.preload).await?;
    let tag = crate::token::run_tag();
    let mint_start = Instant::now();
    let tokens = (0..n)
        .map(|i| {
            let name = format!("lg-{tag}-{i}");
            ctx.minter.mint(&name, &name)
        })
        .collect::<Result<Vec<_>>>()?;
    let mint_secs = mint_start.elapsed().as_secs_f64();

    // With --close-each every socket ends in TIME_WAIT on our side; binding
    // explicit source addresses then makes each bind() scan the occupied port
    // range (measured: 10x slower and client-bound at 30,000 connects), while
    // the kernel's own connect() port choice reuses TIME_WAIT ports cheaply.
    let dialer = if a.close_each {
        Arc::new(Dialer::new(&ctx.ws, 0, ctx.common.read_buffer as usize))
    } else {
        ctx.dialer(ctx.common.read_buffer as usize)
    };
    let shared = Arc::new(Shared::default());
    let gate = Arc::new(Semaphore::new(ctx.concurrency()));
    let (stop, stop_rx) = watch::channel(false);
    let close_each = a.close_each;
    let window = CpuWindow::start(ctx.common.server_pid);
    let mut tasks = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.into_iter().enumerate() {
        let (dialer, gate, shared, mut stop_rx) = (
            dialer.clone(),
            gate.clone(),
            shared.clone(),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire().await;
            let dial_start = Instant::now();
            let attempt = async {
                let mut ws = dialer.dial(i as u64).await?;
                let open = Instant::now();
                client::request(&mut ws, 1, client::connect_command(&token)).await?;
                anyhow::Ok((ws, open - dial_start, open.elapsed()))
            }
            .await;
            drop(token);
            let mut ws = match attempt {
                Ok((ws, handshake, connect)) => {
                    shared.handshake.lock().expect("lock").record(handshake);
                    shared.connect.lock().expect("lock").record(connect);
                    shared.ok.fetch_add(1, Ordering::Relaxed);
                    ws
                }
                Err(e) => {
                    shared.failures.add(&e);
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            if close_each {
                client::close(&mut ws).await;
                return;
            }
            drop(permit);
            let end = client::hold(&mut ws, &mut stop_rx, &shared.pings).await;
            if !matches!(end, client::End::Stopped) {
                shared.ended.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let settled = || shared.ok.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) >= n;
    if !poll_until(Duration::from_secs(ctx.common.max_time), settled).await {
        bail!("connections did not settle within --max-time");
    }
    let sample = window.sample();
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }

    let ok = shared.ok.load(Ordering::Relaxed);
    let mut r = Report::new("connect");
    ctx.describe(&mut r);
    r.int("connections", n);
    r.bool("close_each", close_each);
    if close_each {
        r.str("source_binding", "off (kernel port choice)");
    }
    r.int("preloaded_blocks_and_revocations", a.preload);
    if a.preload > 0 {
        r.float("preload_s", preload_s);
    }
    r.float("token_sign_s", mint_secs);
    r.float("token_sign_per_s", n as f64 / mint_secs.max(1e-9));
    r.section("result");
    r.int("connected", ok);
    r.int("failed", shared.failed.load(Ordering::Relaxed));
    if shared.failures.total() > 0 {
        r.str("failures", &shared.failures.summary());
    }
    r.float("connects_per_s", ok as f64 / sample.wall);
    r.section("latency");
    shared
        .connect
        .lock()
        .expect("lock")
        .report(&mut r, "connect_reply", true);
    shared
        .handshake
        .lock()
        .expect("lock")
        .report(&mut r, "tcp_upgrade", false);
    r.int("ended_early", shared.ended.load(Ordering::Relaxed));
    r.section("cpu");
    sample.report(&mut r, "", 0.0);
    Ok(r)
}
