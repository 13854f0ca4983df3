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
    assert_eq!(p.stats(&ch).await.unwrap(), (2, 2));
    p.remove(&ch, "c2");
    p.remove(&ch, "c3");
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
