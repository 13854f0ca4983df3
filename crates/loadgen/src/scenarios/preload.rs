//! Loads a protective set before a measurement: N blocked users and N
//! revoked token ids, sent as `batch` calls of 1,000 commands, so the connect
//! scenario can show the cost of the checks with a large set in place.

use super::Ctx;
use anyhow::Result;
use std::time::Instant;

/// Commands per `batch` call.
const CHUNK: u64 = 1_000;
/// Batch calls in flight at once.
const IN_FLIGHT: usize = 4;

/// Blocks `n` users (`preload-u-<i>`) and revokes `n` jtis (UUID-shaped, as
/// most issuers make them); every entry expires in an hour. Returns seconds.
pub(crate) async fn preload(ctx: &Ctx, n: u64) -> Result<f64> {
    if n == 0 {
        return Ok(0.0);
    }
    let api = ctx.api()?;
    let expire_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 3600;
    let start = Instant::now();
    let mut chunks = (0..n.div_ceil(CHUNK)).map(|c| {
        let from = c * CHUNK;
        let to = (from + CHUNK).min(n);
        let mut body = String::with_capacity(((to - from) * 140) as usize);
        body.push_str("{\"commands\":[");
        for i in from..to {
            if i > from {
                body.push(',');
            }
            // A UUID-shaped jti derived from i (not random: runs stay comparable).
            let jti = format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", i as u32, (i >> 32) as u16, i % 4096, (i / 4096) % 4096, i);
            body.push_str(&format!(
                "{{\"block_user\":{{\"user\":\"preload-u-{i}\",\"expire_at\":{expire_at}}}}},{{\"revoke_token\":{{\"uid\":\"{jti}\",\"expire_at\":{expire_at}}}}}"
            ));
        }
        body.push_str("]}");
        body
    });
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < IN_FLIGHT {
            let Some(body) = chunks.next() else { break };
            let api = api.clone();
            running.spawn(async move { api.call("batch", body).await });
        }
        match running.join_next().await {
            Some(r) => {
                r??;
            }
            None => break,
        }
    }
    Ok(start.elapsed().as_secs_f64())
}
