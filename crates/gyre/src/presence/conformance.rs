//! What every presence backend must do, as one async function run against
//! each variant (architecture.md §2.4 h).

use super::Presence;
use crate::protocol::ClientInfo;
use std::sync::Arc;

fn info(client: &str, user: &str) -> ClientInfo {
    ClientInfo {
        user: Arc::from(user),
        client: Arc::from(client),
        conn_info: None,
        chan_info: None,
    }
}

/// The stats once they equal `want`, or after 2 s (removal never waits,
/// so a backend with I/O applies it shortly after).
async fn settled(p: &Presence, ch: &str, want: (u32, u32)) -> (u32, u32) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let got = p.stats(ch).await.unwrap();
        if got == want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Runs the presence contract against `p`; channels are prefixed with
/// `prefix` so runs against a shared backend do not meet.
pub(crate) async fn run(p: &Presence, prefix: &str) {
    let ch = format!("{prefix}:room");
    assert!(p.presence(&ch).await.unwrap().is_empty());
    assert_eq!(p.stats(&ch).await.unwrap(), (0, 0));
    p.add(&ch, info("c1", "u1")).await.unwrap();
    p.add(&ch, info("c2", "u1")).await.unwrap();
    p.add(&ch, info("c3", "u2")).await.unwrap();
    p.add(&ch, info("c3", "u2")).await.unwrap(); // an update, not a second entry
    let all = p.presence(&ch).await.unwrap();
    assert_eq!(all.keys().cloned().collect::<Vec<_>>(), ["c1", "c2", "c3"]);
    assert_eq!(&*all["c3"].user, "u2");
    assert_eq!(
        p.stats(&ch).await.unwrap(),
        (3, 2),
        "clients and distinct users"
    );
    p.remove(&ch, "c1");
    p.remove(&ch, "nobody");
    assert_eq!(settled(p, &ch, (2, 2)).await, (2, 2));
    p.remove(&ch, "c2");
    p.remove(&ch, "c3");
    assert_eq!(settled(p, &ch, (0, 0)).await, (0, 0));
    assert!(p.presence(&ch).await.unwrap().is_empty());
    // Channels are independent.
    p.add(&format!("{prefix}:other"), info("c9", "u9"))
        .await
        .unwrap();
    assert_eq!(p.stats(&ch).await.unwrap(), (0, 0));
}

#[tokio::test]
async fn memory_presence_conforms() {
    run(
        &Presence::Memory(super::MemoryPresence::new()),
        "conformance",
    )
    .await;
}

#[tokio::test]
async fn redis_presence_conforms() {
    use crate::node::protect_conformance::services;
    let prefix = services::unique("presence");
    let cfg: crate::config::Redis = serde_json::from_value(serde_json::json!({
        "address": services::redis_addr(), "prefix": prefix
    }))
    .unwrap();
    let engine = Arc::new(crate::cluster::RedisEngine::from_config(&cfg).unwrap());
    let p = Arc::new(super::RedisPresence::new(engine));
    // Removals are sent by the backend's worker.
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(
        p.clone()
            .run(std::time::Duration::from_secs(27), stop.clone()),
    );
    run(&Presence::Redis(p), "conformance").await;
    stop.cancel();
    worker.await.unwrap();
    services::drop_redis_prefix(&prefix).await;
}
