//! Several real Gyre nodes on one Redis (issue 10): publications, history
//! and recovery, presence and join/leave, server actions, `info`,
//! `channels` and `connections`, and the protective features, each across
//! nodes. Each test's nodes share a Redis prefix of their own (a cluster of
//! their own on the test Redis) and delete its keys at the end.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

pub fn redis_addr() -> String {
    std::env::var("GYRE_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".into())
}

/// A cluster of the test's own: a unique Redis prefix.
pub struct Cluster {
    pub prefix: String,
    pub address: Value,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster::on(json!(redis_addr()))
    }

    /// A cluster on `address` (an address or a list of shards).
    pub fn on(address: Value) -> Cluster {
        Cluster {
            prefix: format!("gyretest_cl_{}", uuid::Uuid::new_v4().simple()),
            address,
        }
    }

    pub fn config(&self, extra: Value) -> Value {
        let mut c = json!({"engine": {"type": "redis", "redis": {
            "address": self.address, "prefix": self.prefix
        }}});
        gyre::config::load::merge(&mut c, extra);
        c
    }

    /// A node of this cluster.
    pub async fn node(&self, extra: Value) -> gyre::app::Server {
        server(self.config(extra)).await
    }

    /// Deletes the prefix's keys on every plain address.
    pub async fn cleanup(&self) {
        let addrs: Vec<String> = match &self.address {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![],
        };
        for a in addrs {
            let url = if a.contains("://") {
                a
            } else {
                format!("redis://{a}")
            };
            let Ok(client) = redis::Client::open(url) else {
                continue;
            };
            let Ok(mut c) = client.get_multiplexed_async_connection().await else {
                continue;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
            }
        }
    }
}

/// Polls `f` every 20 ms until it returns true (panics after 10 s with `what`).
pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `api`'s node lists `n` nodes in `info`.
pub async fn nodes_listed(api: &Api, n: usize) {
    until(&format!("{n} nodes in info"), || async {
        api.call("info", json!({})).await["result"]["nodes"]
            .as_array()
            .unwrap()
            .len()
            == n
    })
    .await;
}

#[tokio::test]
async fn publications_history_and_recovery_across_nodes() {
    let cl = Cluster::new();
    let (a, b) = (cl.node(json!({})).await, cl.node(json!({})).await);
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    let (mut on_a, _) = Ws::connected(&a, &token(json!({"sub": "1"}))).await;
    let (mut on_b, _) = Ws::connected(&b, &token(json!({"sub": "2"}))).await;
    let epoch = on_a.subscribe_recoverable("chat:x").await;
    assert_eq!(epoch.len(), 8, "Centrifugo-style epoch: {epoch}");
    on_b.subscribe(2, "chat:x").await;

    // The server API of B reaches A's subscriber, and B's, in offset order.
    for n in 1..=3 {
        let r = api_b
            .call("publish", json!({"channel": "chat:x", "data": {"n": n}}))
            .await;
        assert_eq!(r["result"]["offset"], n, "{r}");
        assert_eq!(r["result"]["epoch"], epoch.as_str());
    }
    for ws in [&mut on_a, &mut on_b] {
        for n in 1..=3u64 {
            let p = ws.recv().await;
            assert_eq!(p["push"]["channel"], "chat:x", "{p}");
            assert_eq!(p["push"]["pub"]["data"]["n"], n, "{p}");
            assert_eq!(p["push"]["pub"]["offset"], n, "{p}");
        }
    }
    // A client publication on A reaches B with its publisher's info.
    on_a.send_json(json!({"id": 3, "publish": {"channel": "chat:x", "data": "hi"}}))
        .await;
    assert_eq!(on_a.recv().await, json!({"id": 3, "publish": {}}));
    let p = on_b.recv().await;
    assert_eq!(p["push"]["pub"]["data"], "hi", "{p}");
    assert_eq!(p["push"]["pub"]["info"]["user"], "1", "{p}");
    assert_eq!(p["push"]["pub"]["offset"], 4, "{p}");

    // History is the same from either node.
    let h = api_a
        .call("history", json!({"channel": "chat:x", "limit": -1}))
        .await;
    assert_eq!(
        h["result"]["publications"].as_array().unwrap().len(),
        4,
        "{h}"
    );
    assert_eq!(h["result"]["epoch"], epoch.as_str());

    // A client of A leaves, publications go on, it comes back on B and recovers.
    drop(on_a);
    api_a
        .call("publish", json!({"channel": "chat:x", "data": 5}))
        .await;
    api_b
        .call("publish", json!({"channel": "chat:x", "data": 6}))
        .await;
    let (mut back, _) = Ws::connected(&b, &token(json!({"sub": "1"}))).await;
    back.send_json(
        json!({"id": 2, "subscribe": {"channel": "chat:x", "recoverable": true, "recover": true,
        "offset": 3, "epoch": epoch}}),
    )
    .await;
    let r = back.recv().await;
    assert_eq!(r["subscribe"]["recovered"], true, "{r}");
    let pubs: Vec<u64> = r["subscribe"]["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(pubs, [4, 5, 6], "{r}");

    // idempotency_key holds across nodes.
    let first = api_a
        .call(
            "publish",
            json!({"channel": "chat:x", "data": 7, "idempotency_key": "k"}),
        )
        .await;
    let again = api_b
        .call(
            "publish",
            json!({"channel": "chat:x", "data": 8, "idempotency_key": "k"}),
        )
        .await;
    assert_eq!(first, again);

    // history_remove keeps the position.
    api_b
        .call("history_remove", json!({"channel": "chat:x"}))
        .await;
    let h = api_a
        .call("history", json!({"channel": "chat:x", "limit": -1}))
        .await;
    assert!(
        h["result"]["publications"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{h}"
    );
    assert_eq!(h["result"]["offset"], 7, "{h}");
    a.shutdown().await;
    b.shutdown().await;
    cl.cleanup().await;
}

#[tokio::test]
async fn presence_and_join_leave_across_nodes() {
    let cl = Cluster::new();
    let (a, b) = (cl.node(json!({})).await, cl.node(json!({})).await);
    let (mut on_a, _) = Ws::connected(&a, &token(json!({"sub": "1"}))).await;
    on_a.send_json(json!({"id": 2, "subscribe": {"channel": "room:1", "join_leave": true}}))
        .await;
    assert_eq!(on_a.recv().await["id"], 2);
    let (mut on_b, c) = Ws::connected(&b, &token(json!({"sub": "2"}))).await;
    on_b.subscribe(2, "room:1").await;
    // Its own join first (as Centrifugo's Redis engine), then B's client's.
    assert_eq!(on_a.recv().await["push"]["join"]["info"]["user"], "1");
    let j = on_a.recv().await;
    assert_eq!(j["push"]["join"]["info"]["user"], "2", "{j}");
    assert_eq!(j["push"]["join"]["info"]["client"], c["client"], "{j}");

    let p = Api::new(&a)
        .call("presence", json!({"channel": "room:1"}))
        .await;
    let clients = p["result"]["presence"].as_object().unwrap();
    assert_eq!(clients.len(), 2, "{p}");
    let s = Api::new(&b)
        .call("presence_stats", json!({"channel": "room:1"}))
        .await;
    assert_eq!(s["result"], json!({"num_clients": 2, "num_users": 2}));

    drop(on_b);
    let l = on_a.recv().await;
    assert_eq!(l["push"]["leave"]["info"]["user"], "2", "{l}");
    until("presence drops the client that left", || async {
        Api::new(&a)
            .call("presence_stats", json!({"channel": "room:1"}))
            .await["result"]["num_clients"]
            == 1
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
    cl.cleanup().await;
}

#[tokio::test]
async fn server_actions_reach_connections_on_other_nodes() {
    let cl = Cluster::new();
    let (a, b) = (cl.node(json!({})).await, cl.node(json!({})).await);
    let api_a = Api::new(&a);
    let (mut ws, _) = Ws::connected(&b, &token(json!({"sub": "u1"}))).await;
    nodes_listed(&api_a, 2).await;

    api_a
        .call("subscribe", json!({"user": "u1", "channel": "chat:s"}))
        .await;
    let p = ws.recv().await;
    assert_eq!(p["push"]["channel"], "chat:s", "{p}");
    assert!(p["push"]["subscribe"].is_object(), "{p}");
    // Subscribed for real: a publication through A arrives.
    api_a
        .call("publish", json!({"channel": "chat:s", "data": 1}))
        .await;
    assert_eq!(ws.recv().await["push"]["pub"]["data"], 1);

    api_a
        .call("unsubscribe", json!({"user": "u1", "channel": "chat:s"}))
        .await;
    let p = ws.recv().await;
    assert_eq!(
        p["push"],
        json!({"channel": "chat:s", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}})
    );

    api_a
        .call("refresh", json!({"user": "u1", "expire_at": now() + 600}))
        .await;
    let p = ws.recv().await;
    assert_eq!(p["push"]["refresh"]["expires"], true, "{p}");

    api_a
        .call(
            "disconnect",
            json!({"user": "u1", "disconnect": {"code": 4001, "reason": "bye"}}),
        )
        .await;
    assert_eq!(ws.expect_close().await, (4001, "bye".into()));
    a.shutdown().await;
    b.shutdown().await;
    cl.cleanup().await;
}

#[tokio::test]
async fn info_channels_and_connections_answer_for_the_whole_cluster() {
    let cl = Cluster::new();
    let a = cl.node(json!({"node": {"name": "a"}})).await;
    let b = cl.node(json!({"node": {"name": "b"}})).await;
    let c = cl.node(json!({"node": {"name": "c"}})).await;
    let api = Api::new(&a);
    nodes_listed(&api, 3).await;
    let (mut w1, _) = Ws::connected(&b, &token(json!({"sub": "u7"}))).await;
    w1.subscribe(2, "chat:one").await;
    let (mut w2, _) = Ws::connected(&c, &token(json!({"sub": "u7"}))).await;
    w2.subscribe(2, "chat:one").await;
    w2.subscribe(3, "chat:two").await;

    until("info counts every node's clients", || async {
        let info = api.call("info", json!({})).await;
        let nodes = info["result"]["nodes"].as_array().unwrap().clone();
        let names: std::collections::BTreeSet<&str> =
            nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
        let clients: u64 = nodes
            .iter()
            .map(|n| n["num_clients"].as_u64().unwrap())
            .sum();
        names == ["a", "b", "c"].into() && clients == 2
    })
    .await;

    let ch = api.call("channels", json!({})).await;
    assert_eq!(
        ch["result"]["channels"],
        json!({"chat:one": {"num_clients": 2}, "chat:two": {"num_clients": 1}}),
        "{ch}"
    );
    let ch = api.call("channels", json!({"pattern": "chat:t*"})).await;
    assert_eq!(
        ch["result"]["channels"],
        json!({"chat:two": {"num_clients": 1}})
    );

    let conns = api.call("connections", json!({"user": "u7"})).await;
    let items = conns["result"]["connections"].as_object().unwrap();
    assert_eq!(items.len(), 2, "{conns}");
    for (_, item) in items {
        assert_eq!(item["user"], "u7");
    }
    for s in [a, b, c] {
        s.shutdown().await;
    }
    cl.cleanup().await;
}

#[tokio::test]
async fn protective_changes_reach_every_node_and_late_nodes() {
    let cl = Cluster::new();
    let (a, b) = (cl.node(json!({})).await, cl.node(json!({})).await);
    let api_a = Api::new(&a);
    nodes_listed(&api_a, 2).await;

    // Block through A closes the user's connection on B with 3503.
    let (mut blocked, _) = Ws::connected(&b, &token(json!({"sub": "42"}))).await;
    api_a.call("block_user", json!({"user": "42"})).await;
    assert_eq!(blocked.expect_close().await, (3503, "blocked".into()));

    // Revoke through A closes B's holder of the token with 3014.
    let (mut holder, _) = Ws::connected(&b, &token(json!({"sub": "7", "jti": "tok-1"}))).await;
    api_a.call("revoke_token", json!({"uid": "tok-1"})).await;
    assert_eq!(
        holder.expect_close().await,
        (3014, "state invalidated".into())
    );

    // Invalidate through B closes A's old token with 3014.
    let t = now() - 100;
    let (mut old, _) = Ws::connected(&a, &token(json!({"sub": "9", "iat": t}))).await;
    Api::new(&b)
        .call(
            "invalidate_user_tokens",
            json!({"user": "9", "issued_before": t + 1}),
        )
        .await;
    assert_eq!(old.expect_close().await.0, 3014);

    // A node that starts after all that refuses them too (memory storage:
    // it took the sets from its peers before serving).
    let late = cl.node(json!({})).await;
    let mut ws = Ws::connect(&late).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "42"}))}}))
        .await;
    assert_eq!(ws.expect_close().await, (3503, "blocked".into()));
    let mut ws = Ws::connect(&late).await;
    ws.send_json(
        json!({"id": 1, "connect": {"token": token(json!({"sub": "7", "jti": "tok-1"}))}}),
    )
    .await;
    assert_eq!(ws.recv().await["error"]["code"], 109);
    let listed = Api::new(&late).call("block_list", json!({})).await;
    assert_eq!(listed["result"]["blocks"][0]["user"], "42", "{listed}");

    // Unblock through the late node reaches A.
    Api::new(&late)
        .call("unblock_user", json!({"user": "42"}))
        .await;
    until("unblock reaches A", || async {
        api_a.call("user_block_status", json!({"user": "42"})).await["result"]["blocked"] == false
    })
    .await;
    Ws::connected(&a, &token(json!({"sub": "42"}))).await;
    for s in [a, b, late] {
        s.shutdown().await;
    }
    cl.cleanup().await;
}

#[tokio::test]
async fn unreachable_redis_stops_the_start_naming_the_address() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = base_config(json!({"engine": {"type": "redis", "redis": {
        "address": format!("redis://:s3cret@127.0.0.1:{port}"), "connect_timeout": "200ms"
    }}}));
    let loaded = gyre::config::load_value(cfg, &[], &[]).unwrap();
    let e = match gyre::app::start(loaded.config).await {
        Ok(_) => panic!("started without Redis"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.contains("engine.redis"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

#[tokio::test]
async fn broker_and_presence_manager_sections_replace_the_engine() {
    let prefix = format!("gyretest_split_{}", uuid::Uuid::new_v4().simple());
    let extra = json!({
        "broker": {"enabled": true, "type": "redis",
                   "redis": {"address": redis_addr(), "prefix": format!("{prefix}b")}},
        "presence_manager": {"enabled": true, "type": "redis",
                   "redis": {"address": redis_addr(), "prefix": format!("{prefix}p")}}
    });
    let (a, b) = (server(extra.clone()).await, server(extra).await);
    let (mut on_a, _) = Ws::connected(&a, &token(json!({"sub": "1"}))).await;
    on_a.subscribe(2, "chat:split").await;
    let (mut on_b, _) = Ws::connected(&b, &token(json!({"sub": "2"}))).await;
    on_b.subscribe(2, "chat:split").await;
    Api::new(&b)
        .call("publish", json!({"channel": "chat:split", "data": 1}))
        .await;
    assert_eq!(on_a.recv().await["push"]["pub"]["data"], 1);
    let s = Api::new(&a)
        .call("presence_stats", json!({"channel": "chat:split"}))
        .await;
    assert_eq!(s["result"], json!({"num_clients": 2, "num_users": 2}));
    a.shutdown().await;
    b.shutdown().await;
    for p in ["b", "p"] {
        Cluster {
            prefix: format!("{prefix}{p}"),
            address: json!(redis_addr()),
        }
        .cleanup()
        .await;
    }
}
