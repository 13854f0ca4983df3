//! Client protocol over WebSocket: protocol.md §9 cases 1-9 and 13, plus the
//! error and close codes of §2.

use crate::helpers::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn case1_connect_without_exp() {
    let s = server(json!({})).await;
    let (_ws, c) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    assert!(uuid::Uuid::parse_str(c["client"].as_str().unwrap()).is_ok());
    assert!(c["version"].is_string());
    assert_eq!(c["ping"], 25);
    assert_eq!(c["pong"], true);
    assert!(c.get("expires").is_none() && c.get("ttl").is_none(), "{c}");
}

#[tokio::test]
async fn case2_connect_with_exp() {
    let s = server(json!({})).await;
    let (_ws, c) = Ws::connected(&s, &token(json!({"sub": "42", "exp": now() + 600}))).await;
    assert_eq!(c["expires"], true);
    let ttl = c["ttl"].as_i64().unwrap();
    assert!((590..=600).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn case3_expired_token_gets_109_then_nothing() {
    let s = server(json!({})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(
        json!({"id": 1, "connect": {"token": token(json!({"sub": "42", "exp": now() - 10}))}}),
    )
    .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 1, "error": {"code": 109, "message": "token expired"}})
    );
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "chat:a"}}))
        .await;
    // No reply; the socket is dropped after the grace without a close frame.
    match ws.next(Duration::from_secs(8)).await {
        Some(Event::Eof) | Some(Event::Close(1006, _)) => {}
        other => panic!("expected the connection to be dropped, got {other:?}"),
    }
}

#[tokio::test]
async fn case4_bad_signature_closes_3500() {
    let s = server(json!({})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token_with(json!({"sub": "42"}), "other")}}))
        .await;
    assert_eq!(ws.expect_close().await, (3500, "invalid token".into()));
}

#[tokio::test]
async fn case5_command_before_connect_closes_3501() {
    let s = server(json!({})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "subscribe": {"channel": "chat:a"}}))
        .await;
    assert_eq!(ws.expect_close().await, (3501, "bad request".into()));
}

#[tokio::test]
async fn malformed_frames_close_3501() {
    let s = server(json!({})).await;
    for bad in ["not json", "[1,2,3]", "{\"id\":-5,\"connect\":{}}", "\n"] {
        let mut ws = Ws::connect(&s).await;
        ws.send(bad).await;
        assert_eq!(
            ws.expect_close().await,
            (3501, "bad request".into()),
            "{bad:?}"
        );
    }
    // After connect: a command with no known request field.
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.send_json(json!({"id": 2, "nope": {}})).await;
    assert_eq!(ws.expect_close().await.0, 3501);
    // Second connect on the same connection.
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.send_json(json!({"id": 2, "connect": {}})).await;
    assert_eq!(ws.expect_close().await.0, 3501);
}

#[tokio::test]
async fn case6_batched_connect_and_subscribe() {
    let s = server(json!({})).await;
    let mut ws = Ws::connect(&s).await;
    let t = token(json!({"sub": "42"}));
    ws.send(&format!(
        "{}\n{}",
        json!({"id": 1, "connect": {"token": t}}),
        json!({"id": 2, "subscribe": {"channel": "chat:a"}})
    ))
    .await;
    assert_eq!(ws.recv().await["id"], 1);
    let r = ws.recv().await;
    assert_eq!(r, json!({"id": 2, "subscribe": {}}));
}

#[tokio::test]
async fn case7_ping_pong_and_no_pong() {
    let s = server(json!({"client": {"ping_interval": "2s", "pong_timeout": "1s"}})).await;
    let (mut ws, c) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    assert_eq!(c["ping"], 2);
    // First ping within the interval; answering keeps the connection.
    assert_eq!(
        ws.next(Duration::from_secs(3)).await,
        Some(Event::Frame(json!({})))
    );
    ws.send("{}").await;
    assert_eq!(
        ws.next(Duration::from_secs(3)).await,
        Some(Event::Frame(json!({})))
    );
    // Silent now: 3012 about a second after the ping.
    assert_eq!(ws.expect_close().await, (3012, "no pong".into()));
    // A pong before any ping is a bad request.
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    ws.send("{}").await;
    assert_eq!(ws.expect_close().await.0, 3501);
}

#[tokio::test]
async fn case8_unknown_namespace_and_already_subscribed() {
    let s = server(json!({})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    assert_eq!(
        ws.subscribe(2, "nope:x").await,
        json!({"id": 2, "error": {"code": 102, "message": "unknown channel"}})
    );
    assert_eq!(
        ws.subscribe(3, "chat:a").await,
        json!({"id": 3, "subscribe": {}})
    );
    assert_eq!(
        ws.subscribe(4, "chat:a").await,
        json!({"id": 4, "error": {"code": 105, "message": "already subscribed"}})
    );
    // Channels without a namespace need allow_subscribe_for_client.
    assert_eq!(ws.subscribe(5, "plain").await["error"]["code"], 103);
    // Private channels need a token.
    assert_eq!(ws.subscribe(6, "$chat:x").await["error"]["code"], 103);
    // Too long.
    assert_eq!(
        ws.subscribe(7, &format!("chat:{}", "x".repeat(300))).await["error"]["code"],
        107
    );
    // Unsubscribe always succeeds.
    ws.send_json(json!({"id": 8, "unsubscribe": {"channel": "never"}}))
        .await;
    assert_eq!(ws.recv().await, json!({"id": 8, "unsubscribe": {}}));
}

#[tokio::test]
async fn case9_api_publish_reaches_subscriber_and_client_publish_echoes() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    ws.subscribe(2, "chat:a").await;
    let r = api
        .call(
            "publish",
            json!({"channel": "chat:a", "data": {"text": "hi"}}),
        )
        .await;
    assert_eq!(r["result"]["offset"], 1);
    let epoch = r["result"]["epoch"].as_str().unwrap().to_string();
    assert!(!epoch.is_empty());
    assert_eq!(
        ws.recv().await,
        json!({"push": {"channel": "chat:a", "pub": {"data": {"text": "hi"}, "offset": 1}}})
    );
    // A client publication is delivered to the publisher itself, with its info.
    ws.send_json(json!({"id": 3, "publish": {"channel": "chat:a", "data": {"n": 2}}}))
        .await;
    let mut got = [ws.recv().await, ws.recv().await];
    got.sort_by_key(|v| v.get("id").is_none());
    assert_eq!(got[0], json!({"id": 3, "publish": {}}));
    assert_eq!(got[1]["push"]["pub"]["data"], json!({"n": 2}));
    assert_eq!(got[1]["push"]["pub"]["info"]["user"], "42");
    assert_eq!(got[1]["push"]["pub"]["offset"], 2);
}

#[tokio::test]
async fn presence_history_and_join_leave() {
    let s = server(json!({})).await;
    let (mut a, ca) = Ws::connected(&s, &token(json!({"sub": "1", "info": {"name": "Ann"}}))).await;
    a.subscribe(2, "room:x").await;
    // Own join arrives first (force_push_join_leave).
    let j = a.recv().await;
    assert_eq!(j["push"]["join"]["info"]["user"], "1");
    let (mut b, _) = Ws::connected(&s, &token(json!({"sub": "2"}))).await;
    b.subscribe(2, "room:x").await;
    let j = a.recv().await;
    assert_eq!(
        j,
        json!({"push": {"channel": "room:x", "join": {"info": {"user": "2", "client": j["push"]["join"]["info"]["client"]}}}})
    );
    a.send_json(json!({"id": 3, "presence_stats": {"channel": "room:x"}}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"id": 3, "presence_stats": {"num_clients": 2, "num_users": 2}})
    );
    a.send_json(json!({"id": 4, "presence": {"channel": "room:x"}}))
        .await;
    let p = a.recv().await;
    let me = &p["presence"]["presence"][ca["client"].as_str().unwrap()];
    assert_eq!(me["conn_info"], json!({"name": "Ann"}));
    // History: not subscribed → 103; subscribed → publications.
    let (mut c, _) = Ws::connected(&s, &token(json!({"sub": "3"}))).await;
    c.send_json(json!({"id": 2, "history": {"channel": "room:x", "limit": 10}}))
        .await;
    assert_eq!(c.recv().await["error"]["code"], 103);
    Api::new(&s)
        .call("publish", json!({"channel": "room:x", "data": 1}))
        .await;
    a.send_json(json!({"id": 5, "history": {"channel": "room:x", "limit": 10}}))
        .await;
    let h = loop {
        let v = a.recv().await;
        if v["id"] == 5 {
            break v;
        }
    };
    assert_eq!(
        h["history"]["publications"],
        json!([{"data": 1, "offset": 1}])
    );
    assert_eq!(h["history"]["offset"], 1);
    // Leave on disconnect.
    drop(b);
    loop {
        let v = a.recv().await;
        if v["push"]["leave"].is_object() {
            assert_eq!(v["push"]["leave"]["info"]["user"], "2");
            break;
        }
    }
}

#[tokio::test]
async fn recovery_after_reconnect() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "chat:r", "recoverable": true}}))
        .await;
    let r = ws.recv().await;
    let epoch = r["subscribe"]["epoch"].as_str().unwrap().to_string();
    assert_eq!(r["subscribe"]["recoverable"], true);
    api.call("publish", json!({"channel": "chat:r", "data": {"n": 1}}))
        .await;
    drop(ws);
    api.call("publish", json!({"channel": "chat:r", "data": {"n": 2}}))
        .await;
    api.call("publish", json!({"channel": "chat:r", "data": {"n": 3}}))
        .await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "chat:r", "recoverable": true, "recover": true, "offset": 1, "epoch": epoch}})).await;
    let r = ws.recv().await;
    assert_eq!(r["subscribe"]["recovered"], true, "{r}");
    assert_eq!(r["subscribe"]["was_recovering"], true);
    // A recovered subscription reports the position it recovered from.
    assert_eq!(r["subscribe"]["offset"], 1);
    assert_eq!(
        r["subscribe"]["publications"],
        json!([{"data": {"n": 2}, "offset": 2}, {"data": {"n": 3}, "offset": 3}])
    );
    // A wrong epoch is not recovered.
    ws.send_json(json!({"id": 3, "subscribe": {"channel": "chat:r2", "recoverable": true, "recover": true, "offset": 5, "epoch": "nope"}})).await;
    let r = ws.recv().await;
    assert!(r["subscribe"].get("recovered").is_none(), "{r}");
}

#[tokio::test]
async fn case13_server_disconnect() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    assert_eq!(
        api.call("disconnect", json!({"user": "42"})).await,
        json!({"result": {}})
    );
    assert_eq!(ws.expect_close().await, (3503, "force disconnect".into()));
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    api.call(
        "disconnect",
        json!({"user": "42", "disconnect": {"code": 4500, "reason": "bye"}}),
    )
    .await;
    assert_eq!(ws.expect_close().await, (4500, "bye".into()));
}

#[tokio::test]
async fn limits_and_sizes() {
    let s = server(json!({"client": {"channel_limit": 1, "user_connection_limit": 1}, "websocket": {"message_size_limit": 1024}})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    ws.subscribe(2, "chat:a").await;
    assert_eq!(
        ws.subscribe(3, "chat:b").await["error"],
        json!({"code": 106, "message": "limit exceeded"})
    );
    let mut second = Ws::connect(&s).await;
    second
        .send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "42"}))}}))
        .await;
    assert_eq!(
        second.expect_close().await,
        (3504, "connection limit".into())
    );
    ws.send(&format!(
        "{{\"id\":4,\"publish\":{{\"channel\":\"chat:a\",\"data\":\"{}\"}}}}",
        "x".repeat(2000)
    ))
    .await;
    assert_eq!(ws.expect_close().await.0, 1009);
}

#[tokio::test]
async fn origin_check_and_anonymous_rules() {
    let s = server(json!({})).await;
    let url = format!("ws://{}/connection/websocket", s.addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(req).await.is_err(),
        "an Origin is refused when no origins are allowed"
    );
    // No token, no anonymous access: 3501.
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {}})).await;
    assert_eq!(ws.expect_close().await.0, 3501);
    let s = server(json!({"client": {"allow_anonymous_connect_without_token": true, "allowed_origins": ["http://*.example"]}})).await;
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/connection/websocket", s.addr).as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("Origin", "http://app.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {}})).await;
    assert!(ws.recv().await["connect"]["client"].is_string());
    ws.send_json(json!({"id": 2, "send": {"data": 1}})).await;
    assert_eq!(
        ws.expect_close().await.0,
        3501,
        "send with an id is a bad request"
    );
}

#[tokio::test]
async fn send_rpc_and_ping_commands() {
    let s = server(json!({})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.send_json(json!({"id": 2, "rpc": {"method": "x", "data": {}}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 2, "error": {"code": 108, "message": "not available"}})
    );
    ws.send_json(json!({"id": 3, "ping": {}})).await;
    assert_eq!(ws.recv().await["error"]["code"], 108);
    ws.send_json(json!({"send": {"data": {"typing": true}}}))
        .await;
    assert_eq!(ws.expect_close().await, (3508, "not available".into()));
}

#[tokio::test]
async fn token_refresh_and_expiry() {
    let s = server(json!({"client": {"expired_close_delay": "1s"}})).await;
    let (mut ws, c) = Ws::connected(&s, &token(json!({"sub": "42", "exp": now() + 2}))).await;
    assert_eq!(c["expires"], true);
    ws.send_json(
        json!({"id": 2, "refresh": {"token": token(json!({"sub": "42", "exp": now() + 600}))}}),
    )
    .await;
    let r = ws.recv().await;
    assert_eq!(r["refresh"]["expires"], true, "{r}");
    assert!(r["refresh"]["ttl"].as_i64().unwrap() > 590);
    // Refresh for another user is an invalid token.
    ws.send_json(
        json!({"id": 3, "refresh": {"token": token(json!({"sub": "43", "exp": now() + 600}))}}),
    )
    .await;
    assert_eq!(ws.expect_close().await.0, 3500);
    // Without refresh the connection expires: 3005 after exp + expired_close_delay.
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42", "exp": now() + 1}))).await;
    assert_eq!(ws.expect_close().await, (3005, "connection expired".into()));
}

#[tokio::test]
async fn subscription_tokens_and_sub_refresh() {
    let s = server(json!({"client": {"expired_sub_close_delay": "1s"}})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    let st = token(json!({"sub": "42", "channel": "$chat:secret", "exp": now() + 2}));
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "$chat:secret", "token": st}}))
        .await;
    let r = ws.recv().await;
    assert_eq!(r["subscribe"]["expires"], true, "{r}");
    let bad = token_with(json!({"sub": "42", "channel": "$chat:other"}), "wrong");
    ws.send_json(json!({"id": 3, "subscribe": {"channel": "$chat:other", "token": bad}}))
        .await;
    assert_eq!(ws.recv().await["error"]["code"], 103);
    let expired = token(json!({"sub": "42", "channel": "$chat:old", "exp": now() - 5}));
    ws.send_json(json!({"id": 4, "subscribe": {"channel": "$chat:old", "token": expired}}))
        .await;
    assert_eq!(ws.recv().await["error"]["code"], 109);
    let fresh = token(json!({"sub": "42", "channel": "$chat:secret", "exp": now() + 600}));
    ws.send_json(json!({"id": 5, "sub_refresh": {"channel": "$chat:secret", "token": fresh}}))
        .await;
    assert_eq!(ws.recv().await["sub_refresh"]["expires"], true);
    // Another subscription is left to expire: unsubscribe push 2501.
    let short = token(json!({"sub": "42", "channel": "$chat:short", "exp": now() + 1}));
    ws.send_json(json!({"id": 6, "subscribe": {"channel": "$chat:short", "token": short}}))
        .await;
    ws.recv().await;
    let u = ws.recv().await;
    assert_eq!(
        u,
        json!({"push": {"channel": "$chat:short", "unsubscribe": {"code": 2501, "reason": "subscription expired"}}})
    );
    // A token for another channel closes with 3500.
    let mismatch = token(json!({"sub": "42", "channel": "$chat:a"}));
    ws.send_json(json!({"id": 7, "subscribe": {"channel": "$chat:b", "token": mismatch}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 3500);
}

#[tokio::test]
async fn server_side_subscriptions_from_token_and_api() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, c) =
        Ws::connected(&s, &token(json!({"sub": "42", "channels": ["chat:news"]}))).await;
    assert_eq!(c["subs"], json!({"chat:news": {}}));
    api.call("publish", json!({"channel": "chat:news", "data": "x"}))
        .await;
    assert_eq!(ws.recv().await["push"]["pub"]["data"], "x");
    api.call("subscribe", json!({"user": "42", "channel": "chat:extra"}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"push": {"channel": "chat:extra", "subscribe": {}}})
    );
    api.call(
        "unsubscribe",
        json!({"user": "42", "channel": "chat:extra"}),
    )
    .await;
    assert_eq!(
        ws.recv().await,
        json!({"push": {"channel": "chat:extra", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}})
    );
    // Unknown namespace in the token's channels fails the connect with 102.
    let mut ws2 = Ws::connect(&s).await;
    ws2.send_json(
        json!({"id": 1, "connect": {"token": token(json!({"sub": "1", "channels": ["nope:x"]}))}}),
    )
    .await;
    assert_eq!(ws2.recv().await["error"]["code"], 102);
}

#[tokio::test]
async fn graceful_shutdown_closes_clients_with_3001() {
    let s = server(json!({})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    let stop = tokio::spawn(s.shutdown());
    assert_eq!(ws.expect_close().await, (3001, "shutdown".into()));
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .expect("shutdown finishes")
        .unwrap();
}

#[tokio::test]
async fn stale_slow_and_node_connection_limit() {
    let s = server(json!({"client": {"stale_close_delay": "1s", "queue_max_size": 200, "connection_limit": 1}})).await;
    let mut idle = Ws::connect(&s).await;
    assert_eq!(idle.expect_close().await, (3502, "stale".into()));
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.subscribe(2, "chat:a").await;
    let mut second = Ws::connect(&s).await;
    second
        .send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "2"}))}}))
        .await;
    assert_eq!(second.expect_close().await.0, 3504);
    // A publication bigger than the client's queue budget: 3008 slow.
    Api::new(&s)
        .call(
            "publish",
            json!({"channel": "chat:a", "data": {"blob": "x".repeat(400)}}),
        )
        .await;
    assert_eq!(ws.expect_close().await, (3008, "slow".into()));
}

#[tokio::test]
async fn user_limited_channels() {
    let s = server(
        json!({"channel": {"namespaces": [{"name": "dm", "allow_user_limited_channels": true}]}}),
    )
    .await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    assert_eq!(
        ws.subscribe(2, "dm:talk#42,43").await,
        json!({"id": 2, "subscribe": {}})
    );
    let (mut other, _) = Ws::connected(&s, &token(json!({"sub": "44"}))).await;
    assert_eq!(
        other.subscribe(2, "dm:talk#42,43").await["error"]["code"],
        103
    );
    assert_eq!(other.subscribe(3, "dm:plain").await["error"]["code"], 103);
}
