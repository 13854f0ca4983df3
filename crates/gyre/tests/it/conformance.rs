//! Behaviours Centrifugo users rely on (issue 11), each as whole frames or
//! whole bodies, and the protective paths' edge cases.

use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use gyre::api::Executor;
use gyre::client::Session;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn refresh_with_an_expired_token_closes_with_3005() {
    let s = server(json!({})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42", "exp": now() + 600}))).await;
    let expired = token(json!({"sub": "42", "exp": now() - 30, "iat": now() - 90}));
    ws.send_json(json!({"id": 2, "refresh": {"token": expired}}))
        .await;
    assert_eq!(
        ws.next(Duration::from_secs(5)).await,
        Some(Event::Close(3005, "connection expired".into())),
        "no reply, the connection ends"
    );
    // Connecting with that token is still error 109, so SDKs fetch a new one.
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": expired}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 1, "error": {"code": 109, "message": "token expired"}})
    );
}

#[tokio::test]
async fn refresh_with_other_channels_closes_with_3010() {
    let s = server(json!({})).await;
    let (mut ws, c) = Ws::connected(
        &s,
        &token(json!({"sub": "42", "exp": now() + 600, "channels": ["chat:a"]})),
    )
    .await;
    assert!(c["subs"]["chat:a"].is_object(), "{c}");
    // The same channels: fine.
    let same = token(json!({"sub": "42", "exp": now() + 900, "channels": ["chat:a"]}));
    ws.send_json(json!({"id": 2, "refresh": {"token": same}}))
        .await;
    assert_eq!(ws.recv().await["refresh"]["expires"], true);
    let other = token(json!({"sub": "42", "exp": now() + 900, "channels": ["chat:b"]}));
    ws.send_json(json!({"id": 3, "refresh": {"token": other}}))
        .await;
    assert_eq!(
        ws.next(Duration::from_secs(5)).await,
        Some(Event::Close(3010, "insufficient state".into()))
    );
    // Dropping a channel counts as a change too.
    let (mut ws, _) = Ws::connected(
        &s,
        &token(json!({"sub": "42", "exp": now() + 600, "channels": ["chat:a", "chat:b"]})),
    )
    .await;
    let fewer = token(json!({"sub": "42", "exp": now() + 900, "channels": ["chat:a"]}));
    ws.send_json(json!({"id": 2, "refresh": {"token": fewer}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 3010);
}

#[tokio::test]
async fn an_expire_at_in_the_past_is_110() {
    let s = server(json!({})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42", "exp": now() + 600}))).await;
    let past = token(json!({"sub": "42", "exp": now() + 600, "expire_at": now() - 5}));
    ws.send_json(json!({"id": 2, "refresh": {"token": past}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 2, "error": {"code": 110, "message": "expired"}})
    );
    let st = token(json!({"sub": "42", "channel": "$chat:s", "expire_at": now() - 5}));
    ws.send_json(json!({"id": 3, "subscribe": {"channel": "$chat:s", "token": st}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 3, "error": {"code": 110, "message": "expired"}})
    );
}

#[tokio::test]
async fn a_close_frame_is_answered_with_a_close_frame() {
    let s = server(json!({})).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/connection/websocket", s.addr))
            .await
            .unwrap();
    let tok = token(json!({"sub": "42"}));
    ws.send(Message::Text(
        json!({"id": 1, "connect": {"token": tok}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        first.to_text().unwrap().contains("\"connect\""),
        "{first:?}"
    );
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    })))
    .await
    .unwrap();
    let mut got_close = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => got_close = Some(f),
            Ok(Some(Ok(_))) => continue,
            Ok(None) | Ok(Some(Err(_))) => break,
            Err(_) => panic!("connection not closed"),
        }
    }
    let f = got_close.expect("a close frame before the end of the stream");
    assert_eq!(f.map(|f| f.code), Some(CloseCode::Normal));
}

#[tokio::test]
async fn reject_unrecovered_flag_is_112() {
    let s = server(json!({"channel": {"namespaces": [{
        "name": "small", "history_size": 2, "history_ttl": "60s",
        "allow_subscribe_for_client": true, "allow_recovery": true
    }]}}))
    .await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "small:r", "recoverable": true}}))
        .await;
    let r = ws.recv().await;
    let epoch = r["subscribe"]["epoch"].as_str().unwrap().to_string();
    ws.send_json(json!({"id": 3, "unsubscribe": {"channel": "small:r"}}))
        .await;
    assert_eq!(ws.recv().await["id"], 3);
    for n in 0..5 {
        api.call("publish", json!({"channel": "small:r", "data": {"n": n}}))
            .await;
    }
    ws.send_json(json!({"id": 4, "subscribe": {"channel": "small:r", "recoverable": true, "recover": true, "offset": 0, "epoch": epoch, "flag": 2}})).await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 4, "error": {"code": 112, "message": "unrecoverable position"}})
    );
    // Without the flag the same request subscribes, unrecovered, from the top.
    ws.send_json(json!({"id": 5, "subscribe": {"channel": "small:r", "recoverable": true, "recover": true, "offset": 0, "epoch": epoch}})).await;
    let r = ws.recv().await;
    assert_eq!(r["subscribe"]["recovered"], Value::Null, "{r}");
    assert_eq!(r["subscribe"]["was_recovering"], true);
    assert_eq!(r["subscribe"]["offset"], 5);
    assert_eq!(r["subscribe"]["publications"], Value::Null);
}

#[tokio::test]
async fn subscription_types_and_delta_gyre_does_not_serve() {
    let s = server(json!({})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "chat:p", "type": 4}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 2, "error": {"code": 108, "message": "not available"}})
    );
    ws.send_json(json!({"id": 3, "subscribe": {"channel": "chat:m", "type": 1}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 3, "error": {"code": 103, "message": "permission denied"}})
    );
    // fossil is a known delta kind: subscribed, publications stay whole.
    ws.send_json(json!({"id": 4, "subscribe": {"channel": "chat:d", "delta": "fossil"}}))
        .await;
    assert_eq!(ws.recv().await, json!({"id": 4, "subscribe": {}}));
    ws.send_json(json!({"id": 5, "subscribe": {"channel": "chat:x", "delta": "xdelta"}}))
        .await;
    assert_eq!(ws.expect_close().await, (3501, "bad request".into()));
}

#[tokio::test]
async fn idempotent_publish_and_broadcast() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    ws.subscribe(2, "chat:i").await;
    let body = json!({"channel": "chat:i", "data": {"order": 1}, "idempotency_key": "order-1"});
    let first = api.call("publish", body.clone()).await;
    assert_eq!(first["result"]["offset"], 1, "{first}");
    assert_eq!(api.call("publish", body).await, first, "same result again");
    assert_eq!(ws.recv().await["push"]["pub"]["data"], json!({"order": 1}));
    assert!(
        ws.next(Duration::from_millis(300)).await.is_none(),
        "one delivery"
    );
    let h = api
        .call("history", json!({"channel": "chat:i", "limit": -1}))
        .await;
    assert_eq!(h["result"]["publications"].as_array().unwrap().len(), 1);
    // broadcast: per channel, the first result each.
    let b = json!({"channels": ["chat:i", "chat:j"], "data": {"x": 1}, "idempotency_key": "b-1"});
    let first = api.call("broadcast", b.clone()).await;
    assert_eq!(first["result"]["responses"][0]["result"]["offset"], 2);
    assert_eq!(first["result"]["responses"][1]["result"]["offset"], 1);
    assert_eq!(api.call("broadcast", b).await, first);
    let h = api
        .call("history", json!({"channel": "chat:j", "limit": -1}))
        .await;
    assert_eq!(h["result"]["publications"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn params_must_be_an_object() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (st, body) = api
        .raw(
            "",
            &json!({"method": "block_user", "params": ["42"]}).to_string(),
            &[("X-API-Key", KEY)],
        )
        .await;
    assert_eq!(
        (st, serde_json::from_str::<Value>(&body).unwrap()),
        (
            200,
            json!({"error": {"code": 107, "message": "bad request"}})
        )
    );
    assert_eq!(
        api.call("user_block_status", json!({"user": "42"})).await,
        json!({"result": {"blocked": false}})
    );
    // A batch is decoded whole: one malformed command and none runs.
    let (st, _) = api
        .raw(
            "batch",
            &json!({"commands": [{"block_user": {"user": "43"}}, {"block_user": ["44"]}]})
                .to_string(),
            &[("X-API-Key", KEY)],
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(
        api.call("user_block_status", json!({"user": "43"})).await,
        json!({"result": {"blocked": false}})
    );
    // Unknown and empty commands are answered in their place.
    let r = api
        .call(
            "batch",
            json!({"commands": [{"nope": {}}, null, {"info": {}}]}),
        )
        .await;
    let replies = r["replies"].as_array().unwrap();
    assert_eq!(
        replies[0],
        json!({"error": {"code": 104, "message": "not found"}})
    );
    assert_eq!(
        replies[1],
        json!({"error": {"code": 107, "message": "bad request"}})
    );
    assert!(replies[2]["info"]["nodes"].is_array(), "{r}");
}

#[tokio::test]
async fn api_key_credentials_in_centrifugos_order() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let status = |h: Vec<(&'static str, String)>, q: &'static str| {
        let url = format!("{}/info{q}", api.base);
        async move {
            let mut rb = reqwest::Client::new().post(url).body("{}");
            for (k, v) in h {
                rb = rb.header(k, v);
            }
            rb.send().await.unwrap().status().as_u16()
        }
    };
    // An empty X-API-Key counts as absent.
    assert_eq!(
        status(
            vec![
                ("X-API-Key", "".into()),
                ("Authorization", format!("apikey {KEY}"))
            ],
            ""
        )
        .await,
        200
    );
    // A wrong X-API-Key still lets ?api_key= be tried...
    assert_eq!(
        status(vec![("X-API-Key", "wrong".into())], "?api_key=k").await,
        200
    );
    // ...but not Authorization.
    assert_eq!(
        status(
            vec![
                ("X-API-Key", "wrong".into()),
                ("Authorization", format!("apikey {KEY}"))
            ],
            ""
        )
        .await,
        401
    );
    assert_eq!(status(vec![], "?api_key=nope").await, 401);
    assert_eq!(status(vec![("X-API-Key", KEY.into())], "").await, 200);
}

#[tokio::test]
async fn invalidation_with_channel_touches_only_that_channels_subscriptions() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let old = now() - 100;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42", "iat": old}))).await;
    for (id, ch) in [(2, "$chat:s"), (3, "$chat:t")] {
        let st = token(json!({"sub": "42", "channel": ch, "iat": old}));
        ws.send_json(json!({"id": id, "subscribe": {"channel": ch, "token": st}}))
            .await;
        assert_eq!(ws.recv().await["id"], id);
    }
    assert_eq!(
        api.call(
            "invalidate_user_tokens",
            json!({"user": "42", "channel": "$chat:s"})
        )
        .await,
        json!({"result": {}})
    );
    assert_eq!(
        ws.recv().await,
        json!({"push": {"channel": "$chat:s", "unsubscribe": {"code": 2502, "reason": "state invalidated"}}})
    );
    assert!(
        ws.next(Duration::from_millis(300)).await.is_none(),
        "the connection and $chat:t stay"
    );
    // Re-subscribing with an old token for that channel is refused...
    let st = token(json!({"sub": "42", "channel": "$chat:s", "iat": old}));
    ws.send_json(json!({"id": 4, "subscribe": {"channel": "$chat:s", "token": st}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 4, "error": {"code": 109, "message": "token expired"}})
    );
    // ...a fresh one is accepted.
    let st = token(json!({"sub": "42", "channel": "$chat:s", "iat": now()}));
    ws.send_json(json!({"id": 5, "subscribe": {"channel": "$chat:s", "token": st}}))
        .await;
    assert_eq!(ws.recv().await, json!({"id": 5, "subscribe": {}}));
    // Without channel: the connection token, not subscription tokens.
    api.call("invalidate_user_tokens", json!({"user": "42"}))
        .await;
    assert_eq!(ws.expect_close().await.0, 3014);
    // A mistaken invalidation can be undone.
    api.call("clear_user_tokens_invalidation", json!({"user": "42"}))
        .await;
    Ws::connected(&s, &token(json!({"sub": "42", "iat": old}))).await;
}

#[tokio::test]
async fn a_jti_shared_by_connection_and_subscription_stays_indexed() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "42", "jti": "J"}))).await;
    let st = token(json!({"sub": "42", "channel": "$chat:s", "jti": "J"}));
    ws.send_json(json!({"id": 2, "subscribe": {"channel": "$chat:s", "token": st}}))
        .await;
    assert_eq!(ws.recv().await["id"], 2);
    ws.send_json(json!({"id": 3, "unsubscribe": {"channel": "$chat:s"}}))
        .await;
    assert_eq!(ws.recv().await["id"], 3);
    api.call("revoke_token", json!({"uid": "J"})).await;
    assert_eq!(ws.expect_close().await.0, 3014);
}

#[tokio::test]
async fn a_closed_connection_runs_no_more_commands_of_its_frame() {
    let cfg = gyre::config::load_value(base_config(json!({})), &[], &[])
        .unwrap()
        .config;
    let node = gyre::node::Node::new(cfg).unwrap();
    let exec = Executor::new(node.clone());
    let mut out = Vec::new();
    let connect = |user: &str| {
        json!({"id": 1, "connect": {"token": token(json!({"sub": user}))}}).to_string()
    };
    let mut reader = Session::new(node.clone(), Default::default());
    reader
        .handle_frame(connect("b").as_bytes(), &mut out)
        .await
        .unwrap();
    reader
        .handle_frame(
            json!({"id": 2, "subscribe": {"channel": "chat:x"}})
                .to_string()
                .as_bytes(),
            &mut out,
        )
        .await
        .unwrap();
    let mut writer = Session::new(node.clone(), Default::default());
    writer
        .handle_frame(connect("a").as_bytes(), &mut out)
        .await
        .unwrap();
    writer
        .handle_frame(
            json!({"id": 2, "subscribe": {"channel": "chat:x"}})
                .to_string()
                .as_bytes(),
            &mut out,
        )
        .await
        .unwrap();
    let raw = serde_json::value::to_raw_value(&json!({"user": "a"})).unwrap();
    exec.call("block_user", &raw).await.unwrap();
    let frame: Vec<String> = (0..500)
        .map(|i| json!({"id": 10 + i, "publish": {"channel": "chat:x", "data": i}}).to_string())
        .collect();
    out.clear();
    let _ = writer
        .handle_frame(frame.join("\n").as_bytes(), &mut out)
        .await;
    assert!(out.is_empty(), "no command of the frame ran");
    let mut queued = Vec::new();
    reader.handle().unwrap().outbox.drain(&mut queued);
    assert!(queued.is_empty(), "nothing reached the subscriber");
    let raw = serde_json::value::to_raw_value(&json!({"channel": "chat:x"})).unwrap();
    let h = exec.call("history", &raw).await.unwrap().to_json();
    assert!(h.contains("\"publications\":[]"), "{h}");
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_not_fetched_per_token() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let s = server(json!({"client": {"token": {"hmac_secret_key": "", "jwks_public_endpoint": format!("http://{addr}/jwks")}}})).await;
    let rsa = jsonwebtoken::EncodingKey::from_rsa_pem(
        std::fs::read_to_string(format!(
            "{}/tests/keys/rsa_private.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .as_bytes(),
    )
    .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("k1".into());
    let tok = jsonwebtoken::encode(&header, &json!({"sub": "j"}), &rsa).unwrap();
    // Twenty connects at once while the key server fails.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let tok = tok.clone();
        let addr = s.addr;
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("ws://{addr}/connection/websocket"))
                    .await
                    .unwrap();
            ws.send(Message::Text(
                json!({"id": 1, "connect": {"token": tok}})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
            let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            serde_json::from_str::<Value>(m.to_text().unwrap()).unwrap()
        }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r["error"]["code"], 100, "{r}");
    }
    assert!(
        hits.load(Ordering::SeqCst) <= 2,
        "one fetch in flight, failures remembered: {} fetches",
        hits.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn time_params_in_milliseconds_or_centuries_away_are_107() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let bad = json!({"error": {"code": 107, "message": "bad request"}});
    let ms = now() * 1000;
    for (m, p) in [
        ("block_user", json!({"user": "1", "expire_at": ms})),
        ("revoke_token", json!({"uid": "j", "expire_at": ms})),
        (
            "invalidate_user_tokens",
            json!({"user": "1", "issued_before": ms}),
        ),
        (
            "invalidate_user_tokens",
            json!({"user": "1", "expire_at": i64::MAX}),
        ),
        (
            "invalidate_user_tokens",
            json!({"user": "1", "issued_before": -5}),
        ),
    ] {
        assert_eq!(api.call(m, p.clone()).await, bad, "{m} {p}");
    }
    assert_eq!(
        api.call("user_tokens_invalidations", json!({})).await,
        json!({"result": {"invalidations": []}}),
        "nothing was stored"
    );
    // A year ahead is fine.
    assert_eq!(
        api.call(
            "block_user",
            json!({"user": "1", "expire_at": now() + 365 * 86400})
        )
        .await,
        json!({"result": {}})
    );
    // The server API's subscribe and refresh take any expire_at without
    // overflowing a time computation.
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "9"}))).await;
    for huge in [i64::MAX, i64::MIN, ms] {
        api.call(
            "subscribe",
            json!({"user": "9", "channel": format!("chat:{huge}"), "expire_at": huge}),
        )
        .await;
        api.call("refresh", json!({"user": "9", "expire_at": huge}))
            .await;
    }
    ws.send_json(json!({"id": 2, "presence_stats": {"channel": "chat:x"}}))
        .await;
    loop {
        let r = ws.recv().await;
        if r["id"] == 2 {
            break;
        }
    }
}

#[tokio::test]
async fn odd_iat_values() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    // A fractional iat is a valid NumericDate.
    Ws::connected(&s, &token(json!({"sub": "5", "iat": 1.7e9 + 0.5}))).await;
    api.call("invalidate_user_tokens", json!({"user": "5"}))
        .await;
    // iat <= 0 counts as issued before any invalidation: refused, not let through.
    for iat in [json!(0), json!(-1), json!(0.5)] {
        let mut ws = Ws::connect(&s).await;
        ws.send_json(
            json!({"id": 1, "connect": {"token": token(json!({"sub": "5", "iat": iat}))}}),
        )
        .await;
        assert_eq!(
            ws.recv().await,
            json!({"id": 1, "error": {"code": 109, "message": "token expired"}}),
            "iat {iat}"
        );
    }
    // A token without iat is not affected by invalidation (documented).
    Ws::connected(&s, &token(json!({"sub": "5"}))).await;
}
