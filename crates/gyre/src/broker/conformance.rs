//! What every broker backend must do, as one async function run against
//! each variant (architecture.md §2.4 h): offsets and epochs, history
//! windows, recovery positions, reverse and limits, TTLs, removal, and
//! delivery in offset order. Run on memory here and on Redis by
//! `redis_broker_conforms` (real Redis, a prefix of its own).

use super::{Broker, HistoryError, HistoryOpts};
use crate::protocol::{Publication, StreamPosition, share};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where a backend's deliveries are seen: the memory broker calls the
/// `deliver` callback; the Redis broker's publications come back over
/// PUB/SUB, where a listener of the test collects their offsets.
pub(crate) enum Deliveries {
    Callback,
    PubSub(Arc<Mutex<HashMap<String, Vec<u64>>>>),
}

impl Deliveries {
    /// The offsets delivered on `ch`: the callback's, or those heard
    /// (waiting up to 2 s for `expect` of them).
    async fn offsets(&self, ch: &str, from_callback: &[u64], expect: usize) -> Vec<u64> {
        match self {
            Deliveries::Callback => from_callback.to_vec(),
            Deliveries::PubSub(heard) => {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                loop {
                    let got = heard.lock().get(ch).cloned().unwrap_or_default();
                    if got.len() >= expect || tokio::time::Instant::now() > deadline {
                        // A little longer, so a delivery too many is seen too.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return heard.lock().get(ch).cloned().unwrap_or_default();
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
}

fn publication(n: u32) -> Publication {
    Publication {
        data: share(serde_json::value::to_raw_value(&n).unwrap()).into(),
        info: None,
        offset: 0,
        tags: None,
    }
}

fn opts(size: usize, ttl: Duration) -> Option<HistoryOpts> {
    Some(HistoryOpts {
        size,
        ttl,
        meta_ttl: Duration::ZERO,
    })
}

/// Runs the broker contract against `b`; channels are prefixed with
/// `prefix` so runs against a shared backend do not meet.
pub(crate) async fn run(b: &Broker, prefix: &str, short_ttl: Duration, d: &Deliveries) {
    let ch = format!("{prefix}:a");
    let ttl = Duration::from_secs(60);
    // Offsets grow from 1 in one epoch; delivery sees the assigned offset.
    let mut delivered = Vec::new();
    let mut epoch = String::new();
    for n in 1..=5u32 {
        let top = b
            .publish(&ch, publication(n), opts(3, ttl), None, |p| {
                delivered.push(p.offset)
            })
            .await
            .unwrap()
            .expect("history kept");
        assert_eq!(top.offset, n as u64);
        if n == 1 {
            epoch = top.epoch.clone();
            assert!(!epoch.is_empty());
        }
        assert_eq!(top.epoch, epoch, "one epoch per stream");
    }
    assert_eq!(
        d.offsets(&ch, &delivered, 5).await,
        [1, 2, 3, 4, 5],
        "delivered in offset order"
    );
    assert_eq!(b.top(&ch, Duration::ZERO).await.unwrap().offset, 5);

    // The window keeps the newest `size`.
    let (pubs, top) = b
        .history(&ch, None, None, false, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(top.offset, 5);
    let offsets: Vec<u64> = pubs.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, [3, 4, 5]);
    assert_eq!(
        std::str::from_utf8(pubs[0].data.as_bytes()).unwrap(),
        "3",
        "payload kept byte for byte"
    );
    let (rev, _) = b
        .history(&ch, None, Some(2), true, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(rev.iter().map(|p| p.offset).collect::<Vec<_>>(), [5, 4]);
    let (none, top) = b
        .history(&ch, None, Some(0), false, Duration::ZERO)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(top.offset, 5, "limit 0 still reports the top");

    // Recovery positions.
    let since = |offset, epoch: &str| StreamPosition {
        offset,
        epoch: epoch.to_string(),
    };
    let (after, _) = b
        .history(&ch, Some(&since(3, &epoch)), None, false, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(after.iter().map(|p| p.offset).collect::<Vec<_>>(), [4, 5]);
    let (all_kept, _) = b
        .history(&ch, Some(&since(2, &epoch)), None, false, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(all_kept.len(), 3, "from the oldest kept: still recoverable");
    for bad in [since(1, &epoch), since(4, "other-epoch"), since(9, &epoch)] {
        assert_eq!(
            b.history(&ch, Some(&bad), None, false, Duration::ZERO)
                .await
                .unwrap_err(),
            HistoryError::Unrecoverable,
            "{bad:?}"
        );
    }

    // Without history: delivered, nothing kept.
    let other = format!("{prefix}:b");
    let mut got = 0;
    let top = b
        .publish(&other, publication(1), None, None, |_| got += 1)
        .await
        .unwrap();
    let cb = vec![0; got];
    assert_eq!((top, d.offsets(&other, &cb, 1).await.len()), (None, 1));
    assert!(
        b.history(&other, None, None, false, Duration::ZERO)
            .await
            .unwrap()
            .0
            .is_empty()
    );

    // Removal keeps the position.
    b.remove_history(&ch).await.unwrap();
    let (pubs, top) = b
        .history(&ch, None, None, false, Duration::ZERO)
        .await
        .unwrap();
    assert!(pubs.is_empty());
    assert_eq!((top.offset, top.epoch), (5, epoch.clone()));

    // Publications expire after their TTL.
    let short = format!("{prefix}:ttl");
    b.publish(&short, publication(1), opts(10, short_ttl), None, |_| {})
        .await
        .unwrap();
    tokio::time::sleep(short_ttl * 2 + Duration::from_millis(100)).await;
    assert!(
        b.history(&short, None, None, false, Duration::ZERO)
            .await
            .unwrap()
            .0
            .is_empty()
    );

    // Idempotency: a repeated key returns the first result and neither
    // delivers nor keeps anything; another key, or the key on another
    // channel, publishes.
    let idem = format!("{prefix}:idem");
    let mut deliveries = 0;
    let first = b
        .publish(&idem, publication(1), opts(10, ttl), Some("k1"), |_| {
            deliveries += 1
        })
        .await
        .unwrap();
    let again = b
        .publish(&idem, publication(2), opts(10, ttl), Some("k1"), |_| {
            deliveries += 1
        })
        .await
        .unwrap();
    assert_eq!(first, again, "the first result again");
    let cb = vec![0; deliveries];
    assert_eq!(d.offsets(&idem, &cb, 2).await.len(), 1, "delivered once");
    assert_eq!(
        b.history(&idem, None, None, false, Duration::ZERO)
            .await
            .unwrap()
            .0
            .len(),
        1,
        "kept once"
    );
    let other_key = b
        .publish(&idem, publication(3), opts(10, ttl), Some("k2"), |_| {})
        .await
        .unwrap();
    assert_eq!(other_key.unwrap().offset, 2);
    let elsewhere = b
        .publish(
            &format!("{prefix}:idem2"),
            publication(4),
            opts(10, ttl),
            Some("k1"),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(elsewhere.unwrap().offset, 1, "keys are per channel");
}

#[tokio::test]
async fn memory_broker_conforms() {
    run(
        &Broker::Memory(super::MemoryBroker::new()),
        "conformance",
        Duration::from_millis(50),
        &Deliveries::Callback,
    )
    .await;
}

#[tokio::test]
async fn redis_broker_conforms() {
    use crate::node::protect_conformance::services;
    use futures_util::StreamExt;
    for lists in [false, true] {
        let prefix = services::unique("broker");
        let cfg: crate::config::Redis = serde_json::from_value(serde_json::json!({
            "address": services::redis_addr(), "prefix": prefix, "history_use_lists": lists
        }))
        .unwrap();
        let engine = Arc::new(crate::cluster::RedisEngine::from_config(&cfg).unwrap());
        // Listen to every channel of this prefix, as a node's PUB/SUB would.
        let heard: Arc<Mutex<HashMap<String, Vec<u64>>>> = Default::default();
        let client = redis::Client::open(format!("redis://{}", services::redis_addr())).unwrap();
        let mut ps = client.get_async_pubsub().await.unwrap();
        ps.psubscribe(format!("{prefix}.client.*")).await.unwrap();
        let (names, h) = (engine.names.clone(), heard.clone());
        let listener = tokio::spawn(async move {
            let mut s = ps.on_message();
            while let Some(m) = s.next().await {
                let ch = names.channel_of(m.get_channel_name()).unwrap().to_string();
                if let Ok(crate::cluster::frames::Frame::Pub { publication, .. }) =
                    crate::cluster::frames::decode(m.get_payload_bytes())
                {
                    h.lock().entry(ch).or_default().push(publication.offset);
                }
            }
        });
        let b = Broker::Redis(super::RedisBroker::new(engine));
        run(
            &b,
            "conformance",
            Duration::from_secs(1),
            &Deliveries::PubSub(heard),
        )
        .await;
        listener.abort();
        services::drop_redis_prefix(&prefix).await;
    }
}
