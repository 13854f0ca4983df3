//! `idle`: open N subscribed connections, hold them, and report the server's
//! resident memory per connection and the connect rate.
//!
//! The connections live in child processes (`idle-worker`, re-executing this
//! binary) so that N can exceed one process's open-files limit. Parent and
//! workers talk over pipes: each worker prints a `ready` JSON line when its
//! share is open, waits for a line (or EOF) on stdin, closes everything and
//! prints a `done` line.
//!
//! Run it against a freshly started server: allocators keep freed memory, so
//! a server that has already held many connections reuses it and shows a
//! per-connection figure near zero.

use super::Ctx;
use super::fleet::{Fleet, Member};
use crate::cli::{IdleArgs, WorkerArgs};
use crate::client::End;
use crate::report::Report;
use crate::stats::{self, CpuWindow};
use crate::token::unix_nanos;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// Default connections per worker process (below the 20,000 open-files limit).
const PER_PROC: u64 = 15_000;

struct Worker {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn event(&mut self, name: &str) -> Result<Value> {
        loop {
            let line = self
                .lines
                .next_line()
                .await?
                .ok_or_else(|| anyhow!("worker exited before `{name}`"))?;
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["event"] == name {
                return Ok(v);
            }
        }
    }
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// Runs the `idle` scenario (parent side).
pub(crate) async fn run(ctx: &Ctx, a: IdleArgs) -> Result<Report> {
    let n = a.connections;
    let procs = a.procs.unwrap_or(n.div_ceil(PER_PROC)).clamp(1, n);
    let per_proc = n.div_ceil(procs);
    stats::check_fd_budget(per_proc)?;
    stats::warn_server_fd_budget(ctx.common.server_pid, n);
    let pid = ctx.common.server_pid.map(|p| p.to_string());
    if pid.is_none() {
        eprintln!("note: without --server-pid no server memory or CPU figures are reported");
    }
    let tag = crate::token::run_tag();
    let rss_before = pid.as_deref().and_then(stats::rss_kib);

    let open_window = CpuWindow::start(ctx.common.server_pid);
    let mut workers = Vec::new();
    let mut first = 0;
    for _ in 0..procs {
        let count = per_proc.min(n - first);
        if count == 0 {
            break;
        }
        workers.push(spawn_worker(ctx, &a, &tag, first, count, procs)?);
        first += count;
    }
    let mut ready = Vec::new();
    for w in &mut workers {
        ready.push(w.event("ready").await?);
    }
    let open_sample = open_window.sample();
    let rss_open = pid.as_deref().and_then(stats::rss_kib);

    let opened: u64 = ready.iter().map(|v| u64_of(v, "opened")).sum();
    let failed: u64 = ready.iter().map(|v| u64_of(v, "failed")).sum();
    let span_ns = ready
        .iter()
        .map(|v| u64_of(v, "open_end_ns"))
        .max()
        .unwrap_or(0)
        - ready
            .iter()
            .map(|v| u64_of(v, "open_start_ns"))
            .min()
            .unwrap_or(0);
    let open_secs = span_ns as f64 / 1e9;
    let ready_cpu: f64 = ready.iter().map(|v| f64_of(v, "cpu_s")).sum();
    let client_rss: u64 = ready.iter().map(|v| u64_of(v, "rss_kib")).sum();

    let hold_window = CpuWindow::start(ctx.common.server_pid);
    tokio::time::sleep(Duration::from_secs(a.hold)).await;
    let hold_sample = hold_window.sample();
    let rss_after = pid.as_deref().and_then(stats::rss_kib);

    let mut done = Vec::new();
    for w in &mut workers {
        let stdin = w.child.stdin.as_mut().context("worker stdin")?;
        stdin.write_all(b"stop\n").await?;
        stdin.flush().await?;
    }
    for w in &mut workers {
        done.push(w.event("done").await?);
        let _ = w.child.wait().await;
    }
    let hold_cpu: f64 = done
        .iter()
        .map(|v| f64_of(v, "cpu_hold_end_s"))
        .sum::<f64>()
        - ready_cpu;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_closed = pid.as_deref().and_then(stats::rss_kib);

    let mut r = Report::new("idle");
    ctx.describe(&mut r);
    r.int("connections", n);
    r.int("channels", a.channels);
    r.int("procs", procs);
    r.section("open");
    r.int("opened", opened);
    r.int("failed", failed);
    if failed > 0 {
        let kinds: Vec<&str> = ready
            .iter()
            .filter_map(|v| v["failures"].as_str())
            .filter(|s| !s.is_empty())
            .collect();
        r.str("failures", &kinds.join(" | "));
    }
    r.float("open_s", open_secs);
    r.float("connect_rate_per_s", opened as f64 / open_secs.max(1e-9));
    open_sample.report(&mut r, "open_", ready_cpu);
    r.section("memory");
    match (rss_before, rss_open, rss_after) {
        (Some(before), Some(open), Some(after)) => {
            r.int("server_rss_before_kib", before);
            r.int("server_rss_open_kib", open);
            r.int("server_rss_after_hold_kib", after);
            let per = (after as f64 - before as f64) * 1024.0 / opened.max(1) as f64;
            r.float("server_rss_per_conn_bytes", per);
            r.float("server_rss_per_conn_kib", per / 1024.0);
            if let Some(closed) = rss_closed {
                r.int("server_rss_after_close_kib", closed);
            }
        }
        _ => r.str("server_rss_per_conn_bytes", "n/a"),
    }
    r.float(
        "client_rss_per_conn_kib",
        client_rss as f64 / opened.max(1) as f64,
    );
    r.section("hold");
    r.int("hold_s", a.hold);
    r.int(
        "pings_answered",
        done.iter().map(|v| u64_of(v, "pings")).sum(),
    );
    r.int(
        "ended_during_hold",
        done.iter().map(|v| u64_of(v, "ended")).sum(),
    );
    let ends: Vec<&str> = done
        .iter()
        .filter_map(|v| v["ends"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    if !ends.is_empty() {
        r.str("end_kinds", &ends.join(" | "));
    }
    hold_sample.report(&mut r, "hold_", hold_cpu);
    Ok(r)
}

/// Starts an `idle-worker` child for connections `first..first + count`.
fn spawn_worker(
    ctx: &Ctx,
    a: &IdleArgs,
    tag: &str,
    first: u64,
    count: u64,
    procs: u64,
) -> Result<Worker> {
    let c = &ctx.common;
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("idle-worker")
        .args(["--count", &count.to_string(), "--first", &first.to_string()])
        .args(["--channels", &a.channels.to_string(), "--tag", tag])
        .args(["--url", &c.url, "--secret", &c.secret])
        .args(["--source-ips", &c.source_ips.to_string()])
        .args(["--concurrency", &(c.concurrency / procs).max(1).to_string()])
        .args([
            "--read-buffer",
            &c.read_buffer.to_string(),
            "--max-time",
            &c.max_time.to_string(),
        ]);
    if let Some(key) = &c.rsa_key {
        cmd.arg("--rsa-key").arg(key);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("starting a worker process")?;
    let stdout = child.stdout.take().context("worker stdout")?;
    Ok(Worker {
        child,
        lines: BufReader::new(stdout).lines(),
    })
}

/// Runs one worker: opens its share, reports, holds until told to stop.
pub(crate) async fn worker(ctx: &Ctx, a: WorkerArgs) -> Result<()> {
    if a.channels == 0 {
        bail!("--channels must be positive");
    }
    let members = (a.first..a.first + a.count)
        .map(|i| {
            let name = format!("lg-{}-{i}", a.tag);
            Ok(Member {
                index: i,
                token: ctx.minter.mint(&name, &name)?,
                channel: Some(format!("lg-{}-ch{}", a.tag, i % a.channels)),
                group: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let limit = Duration::from_secs(ctx.common.max_time);
    let open_start_ns = unix_nanos();
    let fleet = Fleet::launch(
        ctx.dialer(ctx.common.read_buffer as usize),
        ctx.concurrency(),
        members,
        1,
    );
    fleet.wait_open(limit).await;
    let shared = fleet.shared.clone();
    let ready = json!({
        "event": "ready",
        "opened": shared.opened_total(),
        "failed": shared.failed.load(Ordering::Relaxed),
        "failures": shared.failures.summary(),
        "open_start_ns": open_start_ns,
        "open_end_ns": unix_nanos(),
        "cpu_s": stats::cpu_secs("self", true).unwrap_or(0.0),
        "rss_kib": stats::rss_kib("self").unwrap_or(0),
    });
    println!("{ready}");

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let _ = tokio::time::timeout(limit, stdin.next_line()).await;
    let cpu_hold_end = stats::cpu_secs("self", true).unwrap_or(0.0);
    let ended = shared.ended(0);
    let outcomes = fleet.stop().await;
    let mut kinds = std::collections::BTreeMap::<String, u64>::new();
    for o in &outcomes {
        let kind = match &o.end {
            Some(End::Closed { code, reason, .. }) => format!("closed {code} {reason}"),
            Some(End::Lost { why, .. }) => format!("lost: {why}"),
            _ => continue,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let ends: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    let done = json!({
        "event": "done",
        "pings": shared.pings.load(Ordering::Relaxed),
        "ended": ended,
        "ends": ends.join("; "),
        "cpu_hold_end_s": cpu_hold_end,
    });
    println!("{done}");
    Ok(())
}
