//! What the protective path must do whatever the features' storage, as one
//! async function run against a node per storage (architecture.md §2.4 h):
//! a change goes through the store into the checks, the inspect methods
//! and live connections; late changes lose to newer ones; entries expire.
//! Redis and PostgreSQL storage run the same function once they exist.

use super::Node;
use super::handle::{ClientHandle, HandleState, TokenId};
use super::outbox::{Out, Outbox};
use crate::protect::{Change, Op, TokenVerdict};
use crate::protocol::{ClientInfo, ProtocolKind};
use parking_lot::Mutex;
use std::sync::Arc;

fn connection(node: &Node, id: &str, user: &str, jti: &str) -> Arc<ClientHandle> {
    let h = Arc::new(ClientHandle {
        id: Arc::from(id),
        user: Arc::from(user),
        outbox: Outbox::new(1 << 20),
        transport: "websocket",
        protocol: ProtocolKind::Json,
        app_name: String::new(),
        app_version: String::new(),
        connected_at_ms: 0,
        info: Mutex::new(ClientInfo {
            user: Arc::from(user),
            client: Arc::from(id),
            conn_info: None,
            chan_info: None,
        }),
        meta: None,
        state: Mutex::new(HandleState::default()),
    });
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
    let reached = node
        .protect(change(
            now_ms,
            Op::Block {
                user: u("alice"),
                expire_at: now + 3600,
                reason: Some("spam".into()),
            },
        ))
        .await
        .unwrap();
    assert_eq!(reached, 1);
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

    // Revocation: holders of the jti re-check; others are untouched.
    let holder = connection(node, &u("ch"), &u("carol"), &u("jti-1"));
    let other = connection(node, &u("co"), &u("carol"), &u("jti-2"));
    let reached = node
        .protect(change(
            now_ms,
            Op::Revoke {
                uid: u("jti-1"),
                expire_at: 0,
                reason: None,
            },
        ))
        .await
        .unwrap();
    assert_eq!(reached, 1);
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
    let reached = node
        .protect(change(
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
    assert_eq!(reached, 2);
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
