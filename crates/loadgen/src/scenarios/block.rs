//! `block`: among N held connections, K belong to one user. `block_user` is
//! called for that user and the time from the API call to each close frame
//! is measured; with `--revoke`, another K connections share one token whose
//! `jti` is then revoked with `revoke_token`. Every other connection must stay
//! open, and a fresh connect with the blocked user's (or revoked) token must
//! be refused.
//!
//! `--rounds R` repeats all of it R times with fresh users and connections
//! and puts every round's close latencies into one histogram per call, so
//! a user with one connection still yields percentiles. The WebSocket and
//! API targets may be different nodes sharing a store: the latency is then
//! the cross-node propagation time.

use super::Ctx;
use super::fleet::{Fleet, Member, Outcome};
use crate::api::Api;
use crate::cli::BlockArgs;
use crate::client::{self, Dialer, End, Failures, ReplyError, ServerClosed};
use crate::report::Report;
use crate::stats::{self, CpuSample, CpuWindow, Latency};
use crate::token::unix_secs;
use anyhow::{Result, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Bystander connections.
const OTHERS: usize = 0;
/// Connections of the blocked user.
const BLOCKED: usize = 1;
/// Connections sharing the revoked token.
const REVOKED: usize = 2;

/// Expected close code for blocked users in Gyre.
const BLOCK_CODE: u16 = 3503;
/// Expected close code for revoked tokens in Gyre.
const REVOKE_CODE: u16 = 3014;

/// Runs the `block` scenario `--rounds` times (fresh users and connections
/// each round) and reports the rounds together.
pub(crate) async fn run(ctx: &Ctx, a: BlockArgs) -> Result<Report> {
    let (n, k) = (a.connections, a.user_connections);
    let special = if a.revoke { 2 } else { 1 };
    if k * special > n {
        bail!("--connections must be at least {special} x --user-connections");
    }
    stats::check_fd_budget(n + 2)?;
    stats::warn_server_fd_budget(ctx.common.server_pid, n);
    let api = ctx.api()?;
    let run_tag = crate::token::run_tag();
    let mut t = Totals {
        revoke: a.revoke.then(Tally::default),
        ..Totals::default()
    };
    for round in 0..a.rounds {
        // Round 0 keeps the single-run names; later rounds get fresh users.
        let tag = if round == 0 {
            run_tag.clone()
        } else {
            format!("{run_tag}r{round}")
        };
        one_round(ctx, &a, &api, &tag, &mut t).await?;
    }

    let mut r = Report::new("block");
    ctx.describe(&mut r);
    r.int("connections", n);
    r.int("user_connections", k);
    r.bool("revoke", a.revoke);
    if a.rounds > 1 {
        r.int("rounds", a.rounds);
    }
    r.section("open");
    r.int("opened", t.opened);
    r.int("failed", t.failed);
    if t.failures.total() > 0 {
        r.str("failures", &t.failures.summary());
    }
    r.float("open_s", t.open_secs);
    r.section("block_user");
    let mut ok = t.failures.total() == 0;
    ok &= t.block.report(&mut r, "block", a.rounds);
    r.str("block_reconnect", &summarize(&t.reconnect_blocked));
    ok &= !t.reconnect_blocked.contains_key("connected");
    if let Some(revoke) = &t.revoke {
        r.section("revoke_token");
        r.int("revoke_group_closed_by_block", t.revoked_by_block);
        ok &= t.revoked_by_block == 0;
        ok &= revoke.report(&mut r, "revoke", a.rounds);
        ok &= !t.reconnect_revoked.contains_key("connected");
        r.str("revoke_reconnect", &summarize(&t.reconnect_revoked));
    }
    r.section("bystanders");
    r.int("others_closed", t.others_closed);
    r.int("pings_answered", t.pings);
    ok &= t.others_closed == 0;
    r.bool("ok", ok);
    r.section("cpu (API calls to last close + grace)");
    if let Some(sample) = &t.cpu {
        sample.report(&mut r, "", 0.0);
    }
    Ok(r)
}

/// What the rounds add up to.
#[derive(Default)]
struct Totals {
    opened: u64,
    failed: u64,
    failures: Failures,
    open_secs: f64,
    block: Tally,
    revoke: Option<Tally>,
    revoked_by_block: u64,
    reconnect_blocked: BTreeMap<String, u64>,
    reconnect_revoked: BTreeMap<String, u64>,
    others_closed: u64,
    pings: u64,
    /// CPU over the measured part of every round (API calls to last close + grace).
    cpu: Option<CpuSample>,
}

/// One round: open the fleet with the round's own users, block (and
/// revoke), wait for the closes, try to reconnect, stop the fleet.
async fn one_round(ctx: &Ctx, a: &BlockArgs, api: &Api, tag: &str, t: &mut Totals) -> Result<()> {
    let (n, k) = (a.connections, a.user_connections);
    let blocked_user = format!("lg-{tag}-blocked");
    let revoked_user = format!("lg-{tag}-revoked");
    let jti = format!("lg-{tag}-jti");
    let shared_token = ctx.minter.mint(&revoked_user, &jti)?;

    // The user's connections are spread evenly among the others.
    let stride = n / k;
    let mut members = Vec::with_capacity(n as usize);
    for i in 0..n {
        let slot = if i / stride < k { i % stride } else { u64::MAX };
        let (group, token) = match slot {
            0 => (
                BLOCKED,
                ctx.minter.mint(&blocked_user, &format!("lg-{tag}-b{i}"))?,
            ),
            1 if a.revoke => (REVOKED, shared_token.clone()),
            _ => {
                let name = format!("lg-{tag}-{i}");
                (OTHERS, ctx.minter.mint(&name, &name)?)
            }
        };
        let channel = Some(format!("lg-{tag}-ch{}", i % 16));
        members.push(Member {
            index: i,
            token,
            channel,
            group,
        });
    }
    let dialer = ctx.dialer(ctx.common.read_buffer as usize);
    let open_start = Instant::now();
    let fleet = Fleet::launch(dialer.clone(), ctx.concurrency(), members, 3);
    fleet
        .wait_open(Duration::from_secs(ctx.common.max_time))
        .await;
    t.open_secs += open_start.elapsed().as_secs_f64();
    let sh = fleet.shared.clone();
    let wait = Duration::from_secs(a.wait);
    let grace = Duration::from_millis(a.grace_ms);

    let window = CpuWindow::start(ctx.common.server_pid);
    let body = json!({"user": blocked_user, "expire_at": unix_secs() + 3_600}).to_string();
    let block_at = Instant::now();
    let block_call = api.call("block_user", body).await;
    let block_api = block_at.elapsed();
    let block_all = fleet.wait_ended(BLOCKED, sh.opened(BLOCKED), wait).await;
    tokio::time::sleep(grace).await;
    t.revoked_by_block += sh.ended(REVOKED);

    let block = Phase {
        call: block_call,
        api_time: block_api,
        all_in_time: block_all,
        at: block_at,
        group: BLOCKED,
        code: BLOCK_CODE,
    };
    let mut revoke = None;
    if a.revoke {
        let body = json!({"uid": jti, "expire_at": ctx.minter.expires_at()}).to_string();
        let at = Instant::now();
        let call = api.call("revoke_token", body).await;
        let api_time = at.elapsed();
        let all_in_time = fleet.wait_ended(REVOKED, sh.opened(REVOKED), wait).await;
        tokio::time::sleep(grace).await;
        revoke = Some(Phase {
            call,
            api_time,
            all_in_time,
            at,
            group: REVOKED,
            code: REVOKE_CODE,
        });
    }
    let sample = window.sample();
    match &mut t.cpu {
        Some(total) => total.add(&sample),
        None => t.cpu = Some(sample),
    }
    t.others_closed += sh.ended(OTHERS);

    let fresh = ctx.minter.mint(&blocked_user, &format!("lg-{tag}-fresh"))?;
    *t.reconnect_blocked
        .entry(try_connect(&dialer, n, &fresh).await)
        .or_default() += 1;
    if a.revoke {
        *t.reconnect_revoked
            .entry(try_connect(&dialer, n + 1, &shared_token).await)
            .or_default() += 1;
    }
    let outcomes = fleet.stop().await;

    t.opened += sh.opened_total();
    t.failed += sh.failed.load(std::sync::atomic::Ordering::Relaxed);
    t.failures.absorb(&sh.failures);
    t.pings += sh.pings.load(std::sync::atomic::Ordering::Relaxed);
    block.tally(&outcomes, &mut t.block);
    if let (Some(phase), Some(tally)) = (&revoke, &mut t.revoke) {
        phase.tally(&outcomes, tally);
    }
    Ok(())
}

/// `"x"` when every round gave `x`, else `"x xN; y xM"`.
fn summarize(counts: &BTreeMap<String, u64>) -> String {
    if counts.len() == 1 {
        return counts.keys().next().cloned().unwrap_or_default();
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    parts.join("; ")
}

/// One API call and the closes it should cause.
struct Phase {
    call: Result<String>,
    api_time: Duration,
    all_in_time: bool,
    at: Instant,
    group: usize,
    code: u16,
}

impl Phase {
    /// Adds this round's call and the closes of its group to `t`.
    fn tally(&self, outcomes: &[Outcome], t: &mut Tally) {
        t.calls += 1;
        if let Err(e) = &self.call {
            t.failed_calls += 1;
            t.api_error.get_or_insert_with(|| format!("{e:#}"));
        }
        t.api.record(self.api_time);
        t.api_max = t.api_max.max(self.api_time);
        t.late_rounds += u64::from(!self.all_in_time);
        for o in outcomes.iter().filter(|o| o.group == self.group) {
            let Some(end) = &o.end else { continue };
            t.targets += 1;
            match end {
                End::Closed { code, reason, at } => {
                    t.closed += 1;
                    t.wrong += u64::from(*code != self.code);
                    t.latency.record(at.saturating_duration_since(self.at));
                    *t.codes.entry(format!("{code} {reason}")).or_default() += 1;
                }
                End::Lost { at, .. } => {
                    t.wrong += 1;
                    t.latency.record(at.saturating_duration_since(self.at));
                    *t.codes.entry("lost (no close frame)".into()).or_default() += 1;
                }
                End::Stopped => {}
            }
        }
    }
}

/// One call's figures over all rounds.
#[derive(Default)]
struct Tally {
    calls: u64,
    failed_calls: u64,
    /// The first failed call's error.
    api_error: Option<String>,
    api: Latency,
    api_max: Duration,
    /// Rounds in which not every close arrived within `--wait`.
    late_rounds: u64,
    targets: u64,
    closed: u64,
    wrong: u64,
    codes: BTreeMap<String, u64>,
    latency: Latency,
}

impl Tally {
    /// Adds the figures; returns whether every round went as expected (the
    /// call succeeded and every connection of the group closed with the
    /// code in time). With one round the keys are those of a single run;
    /// with more, `<name>_api_ms` is the slowest call and the call's
    /// percentiles follow.
    fn report(&self, r: &mut Report, name: &str, rounds: u64) -> bool {
        if let Some(e) = &self.api_error {
            r.str(&format!("{name}_api_error"), e);
        }
        r.float(&format!("{name}_api_ms"), self.api_max.as_secs_f64() * 1e3);
        if rounds > 1 {
            r.int(&format!("{name}_api_failed"), self.failed_calls);
            self.api.report(r, &format!("{name}_api"), false);
        }
        let summary: Vec<String> = self
            .codes
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        r.int(&format!("{name}_targets"), self.targets);
        r.int(&format!("{name}_closes_seen"), self.closed);
        r.str(&format!("{name}_close_codes"), &summary.join("; "));
        r.int(&format!("{name}_wrong_code"), self.wrong);
        r.bool(&format!("{name}_all_closed_in_time"), self.late_rounds == 0);
        self.latency.report(r, &format!("{name}_close"), false);
        self.calls > 0
            && self.failed_calls == 0
            && self.late_rounds == 0
            && self.closed == self.targets
            && self.wrong == 0
    }
}

/// Tries a fresh connect with `token`: "connected" or how it was refused.
async fn try_connect(dialer: &Dialer, n: u64, token: &str) -> String {
    let attempt = async {
        let mut ws = dialer.dial(n).await?;
        let res = client::request(&mut ws, 1, client::connect_command(token)).await;
        client::close(&mut ws).await;
        res
    };
    match attempt.await {
        Ok(()) => "connected".into(),
        Err(e) => {
            if let Some(c) = e.downcast_ref::<ServerClosed>() {
                format!("closed {} {}", c.code, c.reason)
            } else if let Some(re) = e.downcast_ref::<ReplyError>() {
                format!("error {} {}", re.code, re.message)
            } else {
                format!("failed: {e:#}")
            }
        }
    }
}
