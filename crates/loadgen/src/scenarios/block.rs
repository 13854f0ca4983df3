//! `block`: among N held connections, K belong to one user. `block_user` is
//! called for that user and the time from the API call to each close frame
//! is measured; with `--revoke`, another K connections share one token whose
//! `jti` is then revoked with `revoke_token`. Every other connection must stay
//! open, and a fresh connect with the blocked user's (or revoked) token must
//! be refused.

use super::Ctx;
use super::fleet::{Fleet, Member, Outcome};
use crate::cli::BlockArgs;
use crate::client::{self, Dialer, End, ReplyError, ServerClosed};
use crate::report::Report;
use crate::stats::{self, CpuWindow, Latency};
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

/// Runs the `block` scenario.
pub(crate) async fn run(ctx: &Ctx, a: BlockArgs) -> Result<Report> {
    let (n, k) = (a.connections, a.user_connections);
    let special = if a.revoke { 2 } else { 1 };
    if k * special > n {
        bail!("--connections must be at least {special} x --user-connections");
    }
    stats::check_fd_budget(n + 2)?;
    stats::warn_server_fd_budget(ctx.common.server_pid, n);
    let tag = crate::token::run_tag();
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
    let open_secs = open_start.elapsed().as_secs_f64();
    let sh = fleet.shared.clone();
    let api = ctx.api()?;
    let wait = Duration::from_secs(a.wait);
    let grace = Duration::from_millis(a.grace_ms);

    let window = CpuWindow::start(ctx.common.server_pid);
    let body = json!({"user": blocked_user, "expire_at": unix_secs() + 3_600}).to_string();
    let block_at = Instant::now();
    let block_call = api.call("block_user", body).await;
    let block_api = block_at.elapsed();
    let block_all = fleet.wait_ended(BLOCKED, sh.opened(BLOCKED), wait).await;
    tokio::time::sleep(grace).await;
    let revoked_by_block = sh.ended(REVOKED);

    let block = Phase {
        name: "block",
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
            name: "revoke",
            call,
            api_time,
            all_in_time,
            at,
            group: REVOKED,
            code: REVOKE_CODE,
        });
    }
    let sample = window.sample();
    let others_closed = sh.ended(OTHERS);

    let fresh = ctx.minter.mint(&blocked_user, &format!("lg-{tag}-fresh"))?;
    let reconnect_blocked = try_connect(&dialer, n, &fresh).await;
    let reconnect_revoked = if a.revoke {
        Some(try_connect(&dialer, n + 1, &shared_token).await)
    } else {
        None
    };
    let outcomes = fleet.stop().await;

    let mut r = Report::new("block");
    ctx.describe(&mut r);
    r.int("connections", n);
    r.int("user_connections", k);
    r.bool("revoke", a.revoke);
    r.section("open");
    r.int("opened", sh.opened_total());
    r.int(
        "failed",
        sh.failed.load(std::sync::atomic::Ordering::Relaxed),
    );
    if sh.failures.total() > 0 {
        r.str("failures", &sh.failures.summary());
    }
    r.float("open_s", open_secs);
    r.section("block_user");
    let mut ok = sh.failures.total() == 0;
    ok &= block.report(&mut r, &outcomes);
    r.str("block_reconnect", &reconnect_blocked);
    ok &= reconnect_blocked != "connected";
    if let Some(revoke) = &revoke {
        r.section("revoke_token");
        r.int("revoke_group_closed_by_block", revoked_by_block);
        ok &= revoked_by_block == 0;
        ok &= revoke.report(&mut r, &outcomes);
        let again = reconnect_revoked.unwrap_or_default();
        ok &= again != "connected";
        r.str("revoke_reconnect", &again);
    }
    r.section("bystanders");
    r.int("others_closed", others_closed);
    r.int(
        "pings_answered",
        sh.pings.load(std::sync::atomic::Ordering::Relaxed),
    );
    ok &= others_closed == 0;
    r.bool("ok", ok);
    r.section("cpu (API calls to last close + grace)");
    sample.report(&mut r, "", 0.0);
    Ok(r)
}

/// One API call and the closes it should cause.
struct Phase {
    name: &'static str,
    call: Result<String>,
    api_time: Duration,
    all_in_time: bool,
    at: Instant,
    group: usize,
    code: u16,
}

impl Phase {
    /// Adds the phase's figures; returns whether it went as expected (the call
    /// succeeded and every connection of the group closed with the code).
    fn report(&self, r: &mut Report, outcomes: &[Outcome]) -> bool {
        let name = self.name;
        if let Err(e) = &self.call {
            r.str(&format!("{name}_api_error"), &format!("{e:#}"));
        }
        r.float(&format!("{name}_api_ms"), self.api_time.as_secs_f64() * 1e3);
        let mut latency = Latency::default();
        let mut codes = BTreeMap::<String, u64>::new();
        let (mut targets, mut closed, mut wrong) = (0u64, 0u64, 0u64);
        for o in outcomes.iter().filter(|o| o.group == self.group) {
            let Some(end) = &o.end else { continue };
            targets += 1;
            match end {
                End::Closed { code, reason, at } => {
                    closed += 1;
                    wrong += u64::from(*code != self.code);
                    latency.record(at.saturating_duration_since(self.at));
                    *codes.entry(format!("{code} {reason}")).or_default() += 1;
                }
                End::Lost { at, .. } => {
                    wrong += 1;
                    latency.record(at.saturating_duration_since(self.at));
                    *codes.entry("lost (no close frame)".into()).or_default() += 1;
                }
                End::Stopped => {}
            }
        }
        let summary: Vec<String> = codes.iter().map(|(c, n)| format!("{c} x{n}")).collect();
        r.int(&format!("{name}_targets"), targets);
        r.int(&format!("{name}_closes_seen"), closed);
        r.str(&format!("{name}_close_codes"), &summary.join("; "));
        r.int(&format!("{name}_wrong_code"), wrong);
        r.bool(&format!("{name}_all_closed_in_time"), self.all_in_time);
        latency.report(r, &format!("{name}_close"), false);
        self.call.is_ok() && self.all_in_time && closed == targets && wrong == 0
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
