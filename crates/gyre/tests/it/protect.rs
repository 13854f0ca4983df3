//! Protective APIs (issue 4; protocol.md §9 cases 14-15): blocking, token
//! revocation, invalidation, connections, inspection.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn legacy(api: &Api, method: &str, params: Value) -> Value {
    let (st, body) = api
        .raw(
            "",
            &json!({"method": method, "params": params}).to_string(),
            &[("Authorization", "apikey k")],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn block_disconnects_refuses_and_unblock_restores() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut a1, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    let (mut a2, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    let (mut other, _) = Ws::connected(&s, &token(json!({"sub": "43"}))).await;
    other.subscribe(2, "chat:x").await;
    assert_eq!(
        api.call("block_user", json!({"user": "42", "expire_at": now() + 60}))
            .await,
        json!({"result": {}})
    );
    assert_eq!(a1.expect_close().await, (3503, "blocked".into()));
    assert_eq!(a2.expect_close().await, (3503, "blocked".into()));
    // A later connect is refused right after the JWT is decoded.
    let mut again = Ws::connect(&s).await;
    again
        .send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "42"}))}}))
        .await;
    assert_eq!(again.expect_close().await, (3503, "blocked".into()));
    // Other users are untouched.
    Api::new(&s)
        .call("publish", json!({"channel": "chat:x", "data": 1}))
        .await;
    assert_eq!(other.recv().await["push"]["pub"]["data"], 1);
    assert_eq!(
        api.call("unblock_user", json!({"user": "42"})).await,
        json!({"result": {}})
    );
    Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    // Legacy style.
    assert_eq!(
        legacy(&api, "block_user", json!({"user": "42"})).await,
        json!({"result": {}})
    );
    let st = api.call("user_block_status", json!({"user": "42"})).await;
    assert_eq!(st["result"]["blocked"], true);
    assert_eq!(
        legacy(&api, "unblock_user", json!({"user": "42"})).await,
        json!({"result": {}})
    );
    assert_eq!(
        api.call("user_block_status", json!({"user": "42"})).await["result"]["blocked"],
        false
    );
}

#[tokio::test]
async fn block_expires_by_itself() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let expire_at = now() + 2;
    assert_eq!(
        api.call("block_user", json!({"user": "7", "expire_at": expire_at}))
            .await,
        json!({"result": {}})
    );
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "7"}))}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 3503);
    // Once expire_at has passed the user connects again, without any unblock.
    while now() < expire_at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ws::connected(&s, &token(json!({"sub": "7"}))).await;
    assert_eq!(
        api.call("block_list", json!({})).await["result"]["blocks"],
        json!([])
    );
}

#[tokio::test]
async fn bad_params_are_107() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let bad = json!({"error": {"code": 107, "message": "bad request"}});
    for (m, p) in [
        ("block_user", json!({})),
        ("block_user", json!({"user": ""})),
        ("block_user", json!({"user": "1", "expire_at": now() - 5})),
        ("unblock_user", json!({})),
        ("revoke_token", json!({"uid": ""})),
        ("revoke_token", json!({"uid": "a", "expire_at": 1})),
        ("invalidate_user_tokens", json!({})),
        ("connections", json!({})),
    ] {
        assert_eq!(api.call(m, p.clone()).await, bad, "{m} {p}");
    }
    // Params of the wrong type are not the method's params at all: HTTP 400
    // on the per-method routes, as Centrifugo's generated handlers answer.
    for (m, p) in [
        ("block_user", json!({"user": 42})),
        ("block_user", json!({"user": "1", "expire_at": "soon"})),
        (
            "invalidate_user_tokens",
            json!({"user": "1", "issued_before": "x"}),
        ),
    ] {
        let (st, body) = api.raw(m, &p.to_string(), &[("X-API-Key", KEY)]).await;
        assert_eq!((st, body.as_str()), (400, "Bad Request\n"), "{m} {p}");
    }
    // Calls for users or tokens not in the set are not errors.
    assert_eq!(
        api.call("unblock_user", json!({"user": "never"})).await,
        json!({"result": {}})
    );
}

#[tokio::test]
async fn revoke_token_by_jti() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let t1 = token(json!({"sub": "42", "jti": "t1", "iat": now()}));
    let (mut ws1, _) = Ws::connected(&s, &t1).await;
    let (mut ws2, _) = Ws::connected(&s, &token(json!({"sub": "42", "jti": "t2"}))).await;
    let conns = api.call("connections", json!({"user": "42"})).await;
    let all = conns["result"]["connections"].as_object().unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.values()
            .any(|c| c["state"]["connection_token"]["uid"] == "t1")
    );
    assert!(
        all.values()
            .all(|c| c["transport"] == "websocket" && c["protocol"] == "json")
    );
    api.call(
        "revoke_token",
        json!({"uid": "t1", "expire_at": now() + 600, "reason": "leaked"}),
    )
    .await;
    assert_eq!(ws1.expect_close().await, (3014, "state invalidated".into()));
    // t2 lives on.
    ws2.send_json(json!({"id": 2, "subscribe": {"channel": "chat:a"}}))
        .await;
    assert_eq!(ws2.recv().await, json!({"id": 2, "subscribe": {}}));
    // Reconnect with t1: 109.
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": t1}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 1, "error": {"code": 109, "message": "token expired"}})
    );
    // Refresh to a revoked token: 109 as well.
    ws2.send_json(json!({"id": 3, "refresh": {"token": token(json!({"sub": "42", "jti": "t1"}))}}))
        .await;
    assert_eq!(ws2.recv().await["error"]["code"], 109);
    let listed = api.call("revoked_tokens", json!({})).await;
    assert_eq!(listed["result"]["tokens"][0]["uid"], "t1");
    assert_eq!(listed["result"]["tokens"][0]["reason"], "leaked");
}

#[tokio::test]
async fn invalidate_user_tokens_by_iat() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let t = now() - 100;
    let (mut old, _) = Ws::connected(&s, &token(json!({"sub": "42", "iat": t}))).await;
    let (mut newer, _) = Ws::connected(&s, &token(json!({"sub": "42", "iat": t + 1}))).await;
    let (mut no_iat, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    let (mut other, _) = Ws::connected(&s, &token(json!({"sub": "43", "iat": t}))).await;
    api.call(
        "invalidate_user_tokens",
        json!({"user": "42", "issued_before": t + 1}),
    )
    .await;
    assert_eq!(old.expect_close().await.0, 3014);
    for ws in [&mut newer, &mut no_iat, &mut other] {
        ws.send_json(json!({"id": 9, "subscribe": {"channel": "chat:z"}}))
            .await;
        assert_eq!(ws.recv().await, json!({"id": 9, "subscribe": {}}));
    }
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "42", "iat": t}))}}))
        .await;
    assert_eq!(ws.recv().await["error"]["code"], 109);
    Ws::connected(&s, &token(json!({"sub": "42", "iat": t + 1}))).await;
    // Default issued_before is now.
    api.call("invalidate_user_tokens", json!({"user": "42"}))
        .await;
    assert_eq!(newer.expect_close().await.0, 3014);
    let inv = api
        .call("user_tokens_invalidations", json!({"user": "42"}))
        .await;
    assert!(
        inv["result"]["invalidations"][0]["issued_before"]
            .as_i64()
            .unwrap()
            >= now() - 2
    );
}

#[tokio::test]
async fn subscription_tokens_are_checked_too() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    let st = token(json!({"sub": "42", "channel": "$chat:s", "jti": "s1"}));
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "$chat:s", "token": st}}))
        .await;
    assert_eq!(ws.recv().await, json!({"id": 2, "subscribe": {}}));
    api.call("revoke_token", json!({"uid": "s1"})).await;
    assert_eq!(
        ws.recv().await,
        json!({"push": {"channel": "$chat:s", "unsubscribe": {"code": 2502, "reason": "state invalidated"}}})
    );
    ws.send_json(json!({"id": 3, "subscribe": {"channel": "$chat:s", "token": st}}))
        .await;
    assert_eq!(ws.recv().await["error"]["code"], 109);
}

#[tokio::test]
async fn configurable_codes() {
    let s = server(json!({"user_block": {"disconnect_code": 4503, "disconnect_reason": "banned"}}))
        .await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    Api::new(&s).call("block_user", json!({"user": "1"})).await;
    assert_eq!(ws.expect_close().await, (4503, "banned".into()));
}

#[tokio::test]
async fn refusals_are_counted_in_metrics() {
    let s = server(json!({"prometheus": {"enabled": true}})).await;
    let api = Api::new(&s);
    api.call("block_user", json!({"user": "b"})).await;
    api.call("revoke_token", json!({"uid": "r"})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "b"}))}}))
        .await;
    ws.expect_close().await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "x", "jti": "r"}))}}))
        .await;
    assert_eq!(ws.recv().await["error"]["code"], 109);
    let m = metrics(&s).await;
    assert!(m.contains("gyre_protect_refused_blocked_total 1"), "{m}");
    assert!(m.contains("gyre_protect_refused_token_total 1"), "{m}");
    assert!(m.contains("gyre_protect_blocked_users 1"), "{m}");
    assert!(
        m.contains("gyre_forced_close_latency_seconds_count 0"),
        "a refused connect is not a forced close: {m}"
    );
    let (mut live, _) = Ws::connected(&s, &token(json!({"sub": "c"}))).await;
    api.call("block_user", json!({"user": "c"})).await;
    live.expect_close().await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let m = metrics(&s).await;
    assert!(
        m.contains("gyre_forced_close_latency_seconds_count 1"),
        "{m}"
    );
}

#[tokio::test]
async fn legacy_style_for_every_protective_method() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(
        &s,
        &token(json!({"sub": "42", "jti": "lj", "iat": now() - 100})),
    )
    .await;
    let conns = legacy(&api, "connections", json!({"user": "42"})).await;
    assert_eq!(
        conns["result"]["connections"].as_object().unwrap().len(),
        1,
        "{conns}"
    );
    assert_eq!(
        legacy(
            &api,
            "revoke_token",
            json!({"uid": "lj", "expire_at": now() + 60})
        )
        .await,
        json!({"result": {}})
    );
    assert_eq!(ws.expect_close().await.0, 3014);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42", "iat": now() - 100}))).await;
    assert_eq!(
        legacy(&api, "invalidate_user_tokens", json!({"user": "42"})).await,
        json!({"result": {}})
    );
    assert_eq!(ws.expect_close().await.0, 3014);
    // Legacy method numbers (BLOCK_USER = 18) work too.
    let (st, body) = api
        .raw(
            "",
            &json!({"method": 18, "params": {"user": "n"}}).to_string(),
            &[("Authorization", "apikey k")],
        )
        .await;
    assert_eq!((st, body.as_str()), (200, r#"{"result":{}}"#));
    assert_eq!(
        api.call("user_block_status", json!({"user": "n"})).await["result"]["blocked"],
        true,
        "method 18 is block_user"
    );
    // `channel` invalidates that channel's subscription tokens (PRO docs).
    assert_eq!(
        legacy(
            &api,
            "invalidate_user_tokens",
            json!({"user": "42", "channel": "x"})
        )
        .await,
        json!({"result": {}})
    );
    let listed = api
        .call("user_tokens_invalidations", json!({"user": "42"}))
        .await;
    assert!(
        listed["result"]["invalidations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["channel"] == "x"),
        "{listed}"
    );
}
