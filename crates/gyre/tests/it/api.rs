//! Server HTTP API: protocol.md §9 cases 10-12 and §5.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn case10_auth_and_method() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    assert_eq!(api.raw("info", "{}", &[]).await, (401, String::new()));
    assert_eq!(
        api.raw("info", "{}", &[("X-API-Key", "wrong")]).await.0,
        401
    );
    assert_eq!(
        api.raw("info", "{}", &[("Authorization", "apikey k")])
            .await
            .0,
        200
    );
    assert_eq!(
        api.raw("info", "{}", &[("Authorization", "APIKEY k")])
            .await
            .0,
        200
    );
    let q = reqwest::Client::new()
        .post(format!("{}/info?api_key=k", api.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(q.status().as_u16(), 200);
    let g = reqwest::Client::new()
        .get(format!("{}/info", api.base))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(g.status().as_u16(), 405);
    assert_eq!(
        api.raw("info", "not json", &[("X-API-Key", KEY)]).await.0,
        400
    );
    assert_eq!(api.raw("info", "", &[("X-API-Key", KEY)]).await.0, 400);
    assert_eq!(
        api.raw("no_such_method", "{}", &[("X-API-Key", KEY)])
            .await
            .0,
        404
    );
    // Empty configured key: every call is refused.
    let s2 = server(json!({"http_api": {"key": ""}})).await;
    assert_eq!(
        Api::new(&s2)
            .raw("info", "{}", &[("X-API-Key", "")])
            .await
            .0,
        401
    );
    // http_api.insecure: no key needed.
    let s3 = server(json!({"http_api": {"insecure": true}})).await;
    assert_eq!(Api::new(&s3).raw("info", "{}", &[]).await.0, 200);
}

#[tokio::test]
async fn case11_errors_and_transport_mode() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    assert_eq!(
        api.call("publish", json!({})).await,
        json!({"error": {"code": 107, "message": "bad request"}})
    );
    let (st, body) = api
        .raw(
            "publish",
            "{}",
            &[("X-API-Key", KEY), ("X-Centrifugo-Error-Mode", "transport")],
        )
        .await;
    assert_eq!(
        (st, serde_json::from_str::<Value>(&body).unwrap()),
        (400, json!({"code": 107, "message": "bad request"}))
    );
    assert_eq!(
        api.call("publish", json!({"channel": "nope:x", "data": {}}))
            .await,
        json!({"error": {"code": 102, "message": "unknown channel"}})
    );
    let (st, _) = api
        .raw(
            "publish",
            r#"{"channel":"nope:x","data":{}}"#,
            &[("X-API-Key", KEY), ("X-Centrifugo-Error-Mode", "transport")],
        )
        .await;
    assert_eq!(st, 404);
    // Wrong types are a 400, as Centrifugo's per-method handlers answer a
    // body they cannot decode; never a crash.
    let (st, body) = api
        .raw(
            "publish",
            r#"{"channel":5,"data":{}}"#,
            &[("X-API-Key", KEY)],
        )
        .await;
    assert_eq!((st, body.as_str()), (400, "Bad Request\n"));
    assert_eq!(
        api.call("presence", json!({"channel": "plain"})).await["error"]["code"],
        108
    );
    assert_eq!(
        api.call("rpc", json!({"method": "x"})).await,
        json!({"error": {"code": 104, "message": "not found"}})
    );
    // Config-level transport mode.
    let s2 = server(json!({"http_api": {"error_mode": "transport"}})).await;
    assert_eq!(
        Api::new(&s2)
            .raw("history", r#"{"channel":"plain"}"#, &[("X-API-Key", KEY)])
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn case12_legacy_api_and_batch() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let body = format!(
        "{}\n{}",
        json!({"method": "publish", "params": {"channel": "chat:a", "data": 1}}),
        json!({"method": "info", "params": {}})
    );
    let (st, text) = api.raw("", &body, &[("Authorization", "apikey k")]).await;
    assert_eq!(st, 200);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["result"]["offset"], 1);
    assert!(lines[1]["result"]["nodes"].as_array().unwrap()[0]["uid"].is_string());
    let (_, text) = api
        .raw(
            "",
            &json!({"method": "PUBLISH", "params": {"channel": "chat:a", "data": 1}, "id": 7})
                .to_string(),
            &[("Authorization", "apikey k")],
        )
        .await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["id"].clone(), v["result"]["offset"].clone()),
        (json!(7), json!(2))
    );
    let (_, text) = api
        .raw(
            "",
            &json!({"method": 0, "params": {"channel": "chat:a", "data": 1}}).to_string(),
            &[("Authorization", "apikey k")],
        )
        .await;
    assert!(text.contains("\"offset\":3"), "{text}");
    assert_eq!(
        api.raw(
            "",
            r#"{"method":"bogus","params":{}}"#,
            &[("Authorization", "apikey k")]
        )
        .await
        .0,
        400
    );
    let b = api.call("batch", json!({"commands": [{"publish": {"channel": "chat:a", "data": {}}}, {"publish": {"channel": "x:y", "data": {}}}, {"block_user": {"user": "9"}}]})).await;
    assert_eq!(b["replies"][0]["publish"]["offset"], 4);
    assert_eq!(
        b["replies"][1],
        json!({"error": {"code": 102, "message": "unknown channel"}})
    );
    assert_eq!(b["replies"][2], json!({"block_user": {}}));
    assert!(b.get("result").is_none());
}

#[tokio::test]
async fn oss_methods() {
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, c) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    ws.subscribe(2, "chat:a").await;
    let b = api
        .call(
            "broadcast",
            json!({"channels": ["chat:a", "nope:x"], "data": {"x": 1}}),
        )
        .await;
    assert_eq!(b["result"]["responses"][0]["result"]["offset"], 1);
    assert_eq!(b["result"]["responses"][1]["error"]["code"], 102);
    let ch = api.call("channels", json!({})).await;
    assert_eq!(
        ch,
        json!({"result": {"channels": {"chat:a": {"num_clients": 1}}}})
    );
    let p = api.call("presence", json!({"channel": "chat:a"})).await;
    assert_eq!(
        p["result"]["presence"][c["client"].as_str().unwrap()]["user"],
        "42"
    );
    assert_eq!(
        api.call("presence_stats", json!({"channel": "chat:a"}))
            .await,
        json!({"result": {"num_clients": 1, "num_users": 1}})
    );
    let h = api
        .call("history", json!({"channel": "chat:a", "limit": -1}))
        .await;
    assert_eq!(h["result"]["publications"][0]["data"], json!({"x": 1}));
    assert_eq!(
        api.call("history_remove", json!({"channel": "chat:a"}))
            .await,
        json!({"result": {}})
    );
    let h = api
        .call("history", json!({"channel": "chat:a", "limit": -1}))
        .await;
    assert_eq!(h["result"]["publications"], json!([]));
    assert_eq!(h["result"]["offset"], 1, "offset survives history_remove");
    let info = api.call("info", json!({})).await;
    assert_eq!(info["result"]["nodes"][0]["num_clients"], 1);
    assert_eq!(info["result"]["nodes"][0]["num_subs"], 1);
    api.call("refresh", json!({"user": "42", "expire_at": now() + 100}))
        .await;
    loop {
        let v = ws.recv().await;
        if v["push"]["refresh"].is_object() {
            assert_eq!(v["push"]["refresh"]["expires"], true);
            break;
        }
    }
}

#[tokio::test]
async fn health_endpoint() {
    let s = server(json!({"health": {"enabled": true}})).await;
    let r = reqwest::get(format!("http://{}/health", s.addr))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), "{}");
    let s = server(json!({})).await;
    assert_eq!(
        reqwest::get(format!("http://{}/health", s.addr))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn api_key_in_query_is_url_decoded_and_metrics_are_served() {
    let s = server(json!({"http_api": {"key": "a+b/c"}, "prometheus": {"enabled": true}})).await;
    let url = format!("http://{}/api/info?api_key=a%2Bb%2Fc", s.addr);
    assert_eq!(
        reqwest::Client::new()
            .post(url)
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let (_ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    let m = metrics(&s).await;
    assert!(m.contains("centrifugo_node_num_clients 1"), "{m}");
    assert!(m.contains("gyre_client_connects_total 1"), "{m}");
}

#[tokio::test]
async fn api_payloads_pass_through_byte_for_byte() {
    use futures_util::StreamExt;
    let s = server(json!({})).await;
    let api = Api::new(&s);
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.subscribe(2, "chat:raw").await;
    let data = r#"{"z":1,"a":{"y":2.50,"b":[3,1e2]},"big":123456789012345678901,"m":"x"}"#;
    let body = format!(r#"{{"channel":"chat:raw","data":{data}}}"#);
    assert_eq!(
        api.raw("publish", &body, &[("X-API-Key", KEY)]).await.0,
        200
    );
    let text = loop {
        match ws.ws.next().await.unwrap().unwrap() {
            tokio_tungstenite::tungstenite::Message::Text(t) if t.contains("push") => {
                break t.to_string();
            }
            _ => continue,
        }
    };
    assert!(
        text.contains(data),
        "publication data must not be re-encoded: {text}"
    );
    let (_, hist) = api
        .raw(
            "history",
            r#"{"channel":"chat:raw","limit":-1}"#,
            &[("X-API-Key", KEY)],
        )
        .await;
    assert!(hist.contains(data), "{hist}");
    let legacy = format!(r#"{{"method":"publish","params":{body}}}"#);
    api.raw("", &legacy, &[("Authorization", "apikey k")]).await;
    let (_, batch) = api
        .raw(
            "batch",
            r#"{"commands":[{"history":{"channel":"chat:raw","limit":-1}}]}"#,
            &[("X-API-Key", KEY)],
        )
        .await;
    assert_eq!(batch.matches(data).count(), 2, "{batch}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publications_arrive_in_offset_order() {
    let s = server(json!({})).await;
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.subscribe(2, "chat:order").await;
    let api = std::sync::Arc::new(Api::new(&s));
    let mut tasks = Vec::new();
    for i in 0..600 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            api.call("publish", json!({"channel": "chat:order", "data": i}))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut last = 0;
    for _ in 0..600 {
        let v = ws.recv().await;
        let off = v["push"]["pub"]["offset"].as_u64().unwrap();
        assert_eq!(off, last + 1, "pushes must follow offsets: {v}");
        last = off;
    }
}
