//! `fanout`: S subscribers over K channels, P publications per second through
//! the HTTP API for D seconds. Each publication carries its send time
//! (`{"t":<unix nanos>,"seq":i}`); subscribers record delivery latency, and
//! loss is the expected deliveries (successful publications x subscribers of
//! their channel) minus the received ones.

use super::Ctx;
use super::fleet::poll_until;
use crate::api::Api;
use crate::cli::FanoutArgs;
use crate::client::{self, Failures, Ws};
use crate::report::Report;
use crate::stats::{self, CpuWindow, Latency};
use crate::token::unix_nanos;
use anyhow::{Result, bail};
use futures_util::StreamExt;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

/// Latency histogram shards, to keep subscriber tasks from contending on one lock.
const SHARDS: usize = 8;
/// Minimum WebSocket read buffer: the server batches publications into large frames.
const MIN_READ_BUFFER: usize = 16 * 1024;

struct Shared {
    latency: Vec<Mutex<Latency>>,
    received: AtomicU64,
    unparsed: AtomicU64,
    last_delivery_ns: AtomicU64,
    pings: AtomicU64,
    ended: AtomicU64,
    subscribed: Vec<AtomicU64>,
    failed: AtomicU64,
    failures: Failures,
    published: Vec<AtomicU64>,
    publish_failures: Failures,
    publish_latency: Mutex<Latency>,
}

#[derive(Deserialize)]
struct Frame {
    push: Option<Push>,
}

#[derive(Deserialize)]
struct Push {
    #[serde(rename = "pub")]
    publication: Option<Publication>,
}

#[derive(Deserialize)]
struct Publication {
    data: Option<Stamp>,
}

#[derive(Deserialize)]
struct Stamp {
    t: Option<u64>,
}

/// The send stamp of a publication push, if `line` is one.
fn stamp_of(line: &str) -> Option<u64> {
    let frame: Frame = serde_json::from_str(line).ok()?;
    frame.push?.publication?.data?.t
}

/// Runs the `fanout` scenario.
pub(crate) async fn run(ctx: &Ctx, a: FanoutArgs) -> Result<Report> {
    let (s, k) = (a.subscribers, a.channels.min(a.subscribers));
    stats::check_fd_budget(s + a.publish_concurrency)?;
    stats::warn_server_fd_budget(ctx.common.server_pid, s);
    let tag = crate::token::run_tag();
    let channels: Vec<String> = (0..k).map(|c| format!("lg-{tag}-fan{c}")).collect();
    let shared = Arc::new(Shared {
        latency: (0..SHARDS)
            .map(|_| Mutex::new(Latency::default()))
            .collect(),
        received: AtomicU64::new(0),
        unparsed: AtomicU64::new(0),
        last_delivery_ns: AtomicU64::new(0),
        pings: AtomicU64::new(0),
        ended: AtomicU64::new(0),
        subscribed: (0..k).map(|_| AtomicU64::new(0)).collect(),
        failed: AtomicU64::new(0),
        failures: Failures::default(),
        published: (0..k).map(|_| AtomicU64::new(0)).collect(),
        publish_failures: Failures::default(),
        publish_latency: Mutex::new(Latency::default()),
    });

    // Subscribers.
    let dialer = ctx.dialer((ctx.common.read_buffer as usize).max(MIN_READ_BUFFER));
    let gate = Arc::new(Semaphore::new(ctx.concurrency()));
    let (stop, stop_rx) = watch::channel(false);
    let open_start = Instant::now();
    let mut tasks = Vec::with_capacity(s as usize);
    for i in 0..s {
        let ch = (i % k) as usize;
        let token = {
            let name = format!("lg-{tag}-{i}");
            ctx.minter.mint(&name, &name)?
        };
        let (dialer, gate, shared, stop_rx) = (
            dialer.clone(),
            gate.clone(),
            shared.clone(),
            stop_rx.clone(),
        );
        let channel = channels[ch].clone();
        tasks.push(tokio::spawn(async move {
            let opened = {
                let _permit = gate.acquire().await;
                async {
                    let mut ws = dialer.dial(i).await?;
                    client::connect_and_subscribe_as(
                        &mut ws,
                        dialer.proto(i),
                        &token,
                        Some(&channel),
                    )
                    .await?;
                    anyhow::Ok(ws)
                }
                .await
            };
            drop((token, channel));
            match opened {
                Ok(ws) => {
                    shared.subscribed[ch].fetch_add(1, Ordering::Relaxed);
                    receive(ws, stop_rx, &shared, i as usize % SHARDS).await;
                }
                Err(e) => {
                    shared.failures.add(&e);
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let sum = |v: &Vec<AtomicU64>| v.iter().map(|a| a.load(Ordering::Relaxed)).sum::<u64>();
    let limit = Duration::from_secs(ctx.common.max_time);
    poll_until(limit, || {
        sum(&shared.subscribed) + shared.failed.load(Ordering::Relaxed) >= s
    })
    .await;
    let open_secs = open_start.elapsed().as_secs_f64();
    let subscribed = sum(&shared.subscribed);
    if subscribed == 0 {
        bail!("no subscriber could connect: {}", shared.failures.summary());
    }

    // Publications.
    let window = CpuWindow::start(ctx.common.server_pid);
    let publish_start = Instant::now();
    let publish_start_ns = unix_nanos();
    publish(ctx.api()?, &a, &channels, &shared).await;
    let publish_secs = publish_start.elapsed().as_secs_f64();
    let expected: u64 = (0..k as usize)
        .map(|c| {
            shared.published[c].load(Ordering::Relaxed)
                * shared.subscribed[c].load(Ordering::Relaxed)
        })
        .sum();
    let drained = poll_until(Duration::from_secs(a.drain), || {
        shared.received.load(Ordering::Relaxed) >= expected
    })
    .await;
    let sample = window.sample();
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }

    let received = shared.received.load(Ordering::Relaxed);
    let published = sum(&shared.published);
    let last_ns = shared.last_delivery_ns.load(Ordering::Relaxed);
    let delivery_secs = last_ns.saturating_sub(publish_start_ns) as f64 / 1e9;
    let mut latency = Latency::default();
    for shard in &shared.latency {
        latency.merge(&shard.lock().expect("lock"));
    }

    let mut r = Report::new("fanout");
    ctx.describe(&mut r);
    r.int("subscribers", s);
    r.int("channels", k);
    r.int("rate_target_per_s", a.rate);
    r.int("duration_s", a.duration);
    r.section("subscribers");
    r.int("subscribed", subscribed);
    r.int("subscribe_failed", shared.failed.load(Ordering::Relaxed));
    if shared.failures.total() > 0 {
        r.str("subscribe_failures", &shared.failures.summary());
    }
    r.float("subscribe_s", open_secs);
    r.section("publish");
    r.int("published", published);
    r.int("publish_failed", shared.publish_failures.total());
    if shared.publish_failures.total() > 0 {
        r.str("publish_failures", &shared.publish_failures.summary());
    }
    r.float(
        "publish_rate_per_s",
        published as f64 / publish_secs.max(1e-9),
    );
    shared
        .publish_latency
        .lock()
        .expect("lock")
        .report(&mut r, "publish_http", false);
    r.section("delivery");
    r.int("expected", expected);
    r.int("received", received);
    r.signed("loss", expected as i64 - received as i64);
    r.bool("drained", drained);
    r.float("delivered_per_s", received as f64 / delivery_secs.max(1e-9));
    latency.report(&mut r, "latency", true);
    r.int("unparsed_lines", shared.unparsed.load(Ordering::Relaxed));
    r.int("pings_answered", shared.pings.load(Ordering::Relaxed));
    r.int("ended_early", shared.ended.load(Ordering::Relaxed));
    r.section("cpu (publish + drain)");
    sample.report(&mut r, "", 0.0);
    Ok(r)
}

/// Publishes `rate x duration` publications, round-robin over `channels`, on
/// schedule (publication i is due at i / rate), at most `publish_concurrency`
/// in flight. Returns when all have been answered.
async fn publish(api: Api, a: &FanoutArgs, channels: &[String], shared: &Arc<Shared>) {
    let total = a.rate * a.duration;
    let prefixes: Arc<Vec<String>> = Arc::new(
        channels
            .iter()
            .map(|c| {
                format!(
                    r#"{{"channel":{},"data":{{"t":"#,
                    serde_json::Value::from(c.as_str())
                )
            })
            .collect(),
    );
    let gate = Arc::new(Semaphore::new(a.publish_concurrency as usize));
    let start = Instant::now();
    let mut issued = 0u64;
    while issued < total {
        let due = ((start.elapsed().as_secs_f64() * a.rate as f64) as u64 + 1).min(total);
        while issued < due {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                return;
            };
            let (api, prefixes, shared) = (api.clone(), prefixes.clone(), shared.clone());
            let seq = issued;
            tokio::spawn(async move {
                let ch = (seq % prefixes.len() as u64) as usize;
                let sent = Instant::now();
                let body = format!("{}{},\"seq\":{seq}}}}}", prefixes[ch], unix_nanos());
                match api.call("publish", body).await {
                    Ok(_) => {
                        shared
                            .publish_latency
                            .lock()
                            .expect("lock")
                            .record(sent.elapsed());
                        shared.published[ch].fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => shared.publish_failures.add(&e),
                }
                drop(permit);
            });
            issued += 1;
        }
        if issued < total {
            let next_due = Duration::from_secs_f64(issued as f64 / a.rate as f64);
            let wait = next_due
                .saturating_sub(start.elapsed())
                .max(Duration::from_micros(500));
            tokio::time::sleep(wait).await;
        }
    }
    let _ = gate.acquire_many(a.publish_concurrency as u32).await;
}

/// A subscriber's read loop: answers pings, records the latency of each
/// publication (flushed to the shared counters once per frame).
async fn receive(mut ws: Ws, mut stop: watch::Receiver<bool>, shared: &Shared, shard: usize) {
    let mut batch: Vec<u64> = Vec::with_capacity(16);
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    let now = unix_nanos();
                    // Protobuf frames are read as the same JSON lines (the
                    // conversion is client-side work only).
                    let (text, proto) = match m {
                        Message::Binary(b) => (client::protobuf_lines(&b), client::Proto::Protobuf),
                        Message::Text(t) => (t.as_str().to_string(), client::Proto::Json),
                        _ => unreachable!("matched above"),
                    };
                    let mut pings = 0;
                    for line in client::lines(&text) {
                        if client::is_ping(line) {
                            pings += 1;
                        } else if let Some(t) = stamp_of(line) {
                            batch.push(now.saturating_sub(t) / 1_000);
                        } else {
                            shared.unparsed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if !batch.is_empty() {
                        let n = batch.len() as u64;
                        let mut h = shared.latency[shard].lock().expect("lock");
                        for us in batch.drain(..) {
                            h.record_us(us);
                        }
                        drop(h);
                        shared.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
                        shared.received.fetch_add(n, Ordering::Relaxed);
                    }
                    if pings > 0 {
                        shared.pings.fetch_add(pings as u64, Ordering::Relaxed);
                        if client::pong_as(&mut ws, proto, pings).await.is_err() {
                            shared.ended.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    shared.ended.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
            () = client::stopped(&mut stop) => {
                client::close(&mut ws).await;
                return;
            }
        }
    }
}
