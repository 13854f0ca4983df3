//! What the protective path must do whatever the features' storage, as one
//! async function run against a node per storage (architecture.md §2.4 h):
//! a change goes through the store into the checks, the inspect methods
//! and live connections; late changes lose to newer ones; entries expire.
//! Redis and PostgreSQL storage run the same function once they exist.

use super::Node;
use super::handle::{ClientHandle, TokenId};
use super::outbox::Out;
use crate::protect::{Change, Op, TokenVerdict};
use std::sync::Arc;

fn connection(node: &Node, id: &str, user: &str, jti: &str) -> Arc<ClientHandle> {
    let h = ClientHandle::detached(id, user, 1 << 20);
    assert!(node.register(&h));
    node.index_token(jti, &h);
    h
}

fn rechecks(h: &ClientHandle) -> usize {
    let mut v = Vec::new();
    h.outbox.drain(&mut v);
    v.iter()
        .filter(|o| matches!(o, Out::Instruction(super::outbox::Instruction::Recheck)))
        .count()
}

fn change(at_ms: i64, op: Op) -> Change {
    Change { at_ms, op }
}

/// Runs the contract against `node`; users and token ids are prefixed with
/// `prefix` so runs against a shared store do not meet.
pub(crate) async fn run(node: &Node, prefix: &str) {
    let now = crate::auth::now();
    let now_ms = now * 1000;
    let u = |s: &str| format!("{prefix}-{s}");
    let tok = |jti: &str, iat| TokenId {
        uid: jti.to_string(),
        issued_at: iat,
    };

    // Block: checks, inspect methods, and the user's live connections close.
    let a = connection(node, &u("ca"), &u("alice"), "");
    let bystander = connection(node, &u("cb"), &u("bob"), "");
    node.protect(change(
        now_ms,
        Op::Block {
            user: u("alice"),
            expire_at: now + 3600,
            reason: Some("spam".into()),
        },
    ))
    .await
    .unwrap();
    assert!(node.is_blocked(&u("alice"), now));
    assert!(!node.is_blocked(&u("bob"), now));
    assert_eq!(a.outbox.take_disconnect().unwrap().0.code, 3503);
    assert!(bystander.outbox.take_disconnect().is_none());
    let status = node.block_status(&u("alice")).await.unwrap().unwrap();
    assert_eq!(
        (status.expire_at, status.reason.as_deref()),
        (now + 3600, Some("spam"))
    );
    assert!(
        node.block_list(None, 1000)
            .await
            .unwrap()
            .0
            .iter()
            .any(|l| l.user.as_deref() == Some(u("alice").as_str()))
    );
    // A late unblock made before the block does not lift it; a newer one does.
    node.protect(change(now_ms - 1, Op::Unblock { user: u("alice") }))
        .await
        .unwrap();
    assert!(node.is_blocked(&u("alice"), now));
    node.protect(change(now_ms + 1, Op::Unblock { user: u("alice") }))
        .await
        .unwrap();
    assert!(!node.is_blocked(&u("alice"), now));
    assert!(node.block_status(&u("alice")).await.unwrap().is_none());
    // ...and the block it undid cannot come back late.
    node.protect(change(
        now_ms,
        Op::Block {
            user: u("alice"),
            expire_at: 0,
            reason: None,
        },
    ))
    .await
    .unwrap();
    assert!(!node.is_blocked(&u("alice"), now));
    // Nor from the store, for the next node or reload to find.
    let stored = node
        .stores
        .get(crate::protect::Kind::Block)
        .load(crate::protect::Kind::Block)
        .await
        .unwrap();
    assert!(
        !stored
            .iter()
            .any(|c| matches!(&c.op, Op::Block { user, .. } if *user == u("alice"))),
        "a late block is not stored after a newer unblock"
    );

    // Revocation: holders of the jti re-check; others are untouched.
    let holder = connection(node, &u("ch"), &u("carol"), &u("jti-1"));
    let other = connection(node, &u("co"), &u("carol"), &u("jti-2"));
    node.protect(change(
        now_ms,
        Op::Revoke {
            uid: u("jti-1"),
            expire_at: 0,
            reason: None,
        },
    ))
    .await
    .unwrap();
    assert_eq!((rechecks(&holder), rechecks(&other)), (1, 0));
    assert_eq!(
        node.check_token(&u("carol"), None, &tok(&u("jti-1"), 0), now),
        TokenVerdict::Revoked
    );
    assert_eq!(
        node.check_token(&u("carol"), None, &tok(&u("jti-2"), 0), now),
        TokenVerdict::Valid
    );
    node.protect(change(now_ms + 1, Op::Unrevoke { uid: u("jti-1") }))
        .await
        .unwrap();
    assert_eq!(
        node.check_token(&u("carol"), None, &tok(&u("jti-1"), 0), now),
        TokenVerdict::Valid
    );

    // Invalidation: the user's connections re-check; the cut-off only moves forward.
    node.protect(change(
        now_ms,
        Op::Invalidate {
            user: u("carol"),
            channel: None,
            issued_before: now - 10,
            expire_at: 0,
            reason: None,
        },
    ))
    .await
    .unwrap();
    assert_eq!((rechecks(&holder), rechecks(&other)), (1, 1));
    assert_eq!(
        node.check_token(&u("carol"), None, &tok("", now - 20), now),
        TokenVerdict::Invalidated
    );
    assert_eq!(
        node.check_token(&u("carol"), None, &tok("", now), now),
        TokenVerdict::Valid
    );
    node.protect(change(
        now_ms + 1,
        Op::Invalidate {
            user: u("carol"),
            channel: None,
            issued_before: now - 100,
            expire_at: 0,
            reason: None,
        },
    ))
    .await
    .unwrap();
    assert_eq!(
        node.check_token(&u("carol"), None, &tok("", now - 20), now),
        TokenVerdict::Invalidated,
        "an earlier cut-off does not weaken the first"
    );
    let listed = node
        .user_tokens_invalidations(Some(&u("carol")))
        .await
        .unwrap();
    assert_eq!(listed[0].issued_before, Some(now - 10));

    // Entries stop applying the moment they expire.
    node.protect(change(
        now_ms,
        Op::Block {
            user: u("dave"),
            expire_at: now + 1,
            reason: None,
        },
    ))
    .await
    .unwrap();
    assert!(node.is_blocked(&u("dave"), now));
    assert!(!node.is_blocked(&u("dave"), now + 1));

    for h in [a, bystander, holder, other] {
        node.unregister(&h);
    }
}

#[tokio::test]
async fn memory_storage_conforms() {
    let cfg = crate::config::load_value(serde_json::json!({}), &[], &[])
        .unwrap()
        .config;
    run(&Node::new(cfg).unwrap(), "conformance").await;
}

/// Test stores on the machine's services (`scripts/test.sh` makes sure they
/// run): a Redis prefix or a PostgreSQL database of the test's own, removed
/// afterwards. A missing service is a failure, never a skip.
#[cfg(test)]
pub(crate) mod services {
    /// `host:port` of the test Redis (`GYRE_TEST_REDIS`, default the local one).
    pub(crate) fn redis_addr() -> String {
        std::env::var("GYRE_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".into())
    }

    /// Admin DSN of the test PostgreSQL (`GYRE_TEST_POSTGRES`).
    pub(crate) fn postgres_admin() -> String {
        std::env::var("GYRE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
    }

    /// A unique name for a test's prefix or database.
    pub(crate) fn unique(what: &str) -> String {
        format!("gyretest_{what}_{}", uuid::Uuid::new_v4().simple())
    }

    /// Deletes every key under `prefix`.
    pub(crate) async fn drop_redis_prefix(prefix: &str) {
        let client = redis::Client::open(format!("redis://{}", redis_addr())).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }

    async fn admin() -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&postgres_admin(), tokio_postgres::NoTls)
            .await
            .expect("the test PostgreSQL (GYRE_TEST_POSTGRES) is reachable");
        tokio::spawn(conn);
        client
    }

    /// Creates a database; returns its DSN.
    pub(crate) async fn create_database(name: &str) -> String {
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let admin = postgres_admin();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        format!("{base}/{name}")
    }

    /// Drops a database, closing its connections.
    pub(crate) async fn drop_database(name: &str) {
        let _ = admin()
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

async fn storage_node(extra: serde_json::Value) -> std::sync::Arc<Node> {
    let mut v = serde_json::json!({"log": {"level": "error"}});
    crate::config::load::merge(&mut v, extra);
    let cfg = crate::config::load_value(v, &[], &[]).unwrap().config;
    Node::start(cfg).await.expect("node starts with its stores")
}

fn all_features(storage: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "user_block": storage.clone(),
        "token_revoke": storage.clone(),
        "user_tokens_invalidate": storage,
    })
}

#[tokio::test]
async fn redis_storage_conforms() {
    let prefix = services::unique("conf");
    let node = storage_node(all_features(serde_json::json!({
        "storage_type": "redis",
        "redis": {"address": services::redis_addr(), "prefix": prefix}
    })))
    .await;
    run(&node, "conformance").await;
    what_is_left_is_stored(&node).await;
    expired_entries_are_deleted(&node).await;
    services::drop_redis_prefix(&prefix).await;
}

#[tokio::test]
async fn postgres_storage_conforms() {
    let db = services::unique("conf");
    let dsn = services::create_database(&db).await;
    let mut cfg = all_features(serde_json::json!({"storage_type": "database"}));
    crate::config::load::merge(
        &mut cfg,
        serde_json::json!({"database": {"enabled": true, "postgresql": {"dsn": dsn}}}),
    );
    let node = storage_node(cfg).await;
    run(&node, "conformance").await;
    what_is_left_is_stored(&node).await;
    expired_entries_are_deleted(&node).await;
    drop(node);
    services::drop_database(&db).await;
}

/// What `run` leaves (a block, invalidations; the revocation was undone)
/// is in the store, for the next node to load. The block `run` leaves
/// expires a second after it is made (a loaded machine may pass that): one
/// that never expires makes the check independent of the clock.
async fn what_is_left_is_stored(node: &Node) {
    node.protect(change(
        crate::protect::change::now_ms(),
        Op::Block {
            user: "erin".into(),
            expire_at: 0,
            reason: None,
        },
    ))
    .await
    .unwrap();
    for kind in [
        crate::protect::Kind::Block,
        crate::protect::Kind::Invalidate,
    ] {
        let loaded = node.stores.get(kind).load(kind).await.unwrap();
        assert!(!loaded.is_empty(), "{kind:?} entries stored");
    }
    let revoke = crate::protect::Kind::Revoke;
    assert!(
        node.stores
            .get(revoke)
            .load(revoke)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Entries past `expire_at` leave the store when it is purged, and the
/// version of a feature moves with every write.
async fn expired_entries_are_deleted(node: &Node) {
    use crate::protect::Kind;
    let now = crate::auth::now();
    let store = node.stores.get(Kind::Block);
    let before = store.version(Kind::Block).await.unwrap();
    node.protect(Change::now(Op::Block {
        user: "short-lived".into(),
        expire_at: now + 1,
        reason: None,
    }))
    .await
    .unwrap();
    assert!(store.version(Kind::Block).await.unwrap() > before);
    let has = |changes: &[Change]| {
        changes
            .iter()
            .any(|c| matches!(&c.op, Op::Block { user, .. } if user == "short-lived"))
    };
    assert!(has(&store.load(Kind::Block).await.unwrap()));
    while crate::auth::now() <= now + 1 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(store.purge_expired(Kind::Block).await.unwrap() >= 1);
    assert!(!has(&store.load(Kind::Block).await.unwrap()));
}
