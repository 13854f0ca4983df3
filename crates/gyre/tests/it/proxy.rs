//! Connect and refresh proxies against a mock backend (protocol.md §4).

use crate::helpers::*;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

/// A backend that answers connect with whatever the request's data asks for
/// and records the requests.
async fn backend() -> (
    String,
    Arc<parking_lot::Mutex<Vec<(Value, Option<String>)>>>,
) {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let app = Router::new()
        .route(
            "/connect",
            post(move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                let seen = s2.clone();
                async move {
                    seen.lock().push((body.clone(), headers.get("x-app").and_then(|v| v.to_str().ok()).map(String::from)));
                    match body["data"]["mode"].as_str() {
                        Some("error") => (axum::http::StatusCode::OK, Json(json!({"error": {"code": 1000, "message": "custom"}}))),
                        Some("disconnect") => (axum::http::StatusCode::OK, Json(json!({"disconnect": {"code": 4501, "reason": "go away"}}))),
                        Some("500") => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(json!({}))),
                        _ => (axum::http::StatusCode::OK, Json(json!({"result": {"user": body["data"]["user"], "info": {"via": "proxy"}, "data": {"welcome": true}}}))),
                    }
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/connect"), seen)
}

#[tokio::test]
async fn connect_proxy_answers_and_block_after_proxy() {
    let (url, seen) = backend().await;
    let s = server(json!({"client": {"proxy": {"connect": {"enabled": true, "endpoint": url, "timeout": "1s", "http": {"static_headers": {"x-app": "gyre"}}}}}})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"user": "p1"}, "name": "test"}}))
        .await;
    let r = ws.recv().await;
    assert_eq!(r["connect"]["data"], json!({"welcome": true}), "{r}");
    let (body, hdr) = seen.lock()[0].clone();
    assert_eq!(body["transport"], "websocket");
    assert_eq!(body["protocol"], "json");
    assert_eq!(body["name"], "test");
    assert!(body["client"].is_string());
    assert_eq!(hdr.as_deref(), Some("gyre"));
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"mode": "error"}}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 1, "error": {"code": 1000, "message": "custom"}})
    );
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"mode": "disconnect"}}}))
        .await;
    assert_eq!(ws.expect_close().await, (4501, "go away".into()));
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"mode": "500"}}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 1, "error": {"code": 100, "message": "internal server error", "temporary": true}})
    );
    // Block: checked right after the proxy gave the user id.
    Api::new(&s).call("block_user", json!({"user": "p1"})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"user": "p1"}}}))
        .await;
    assert_eq!(ws.expect_close().await.0, 3503);
}

#[tokio::test]
async fn proxy_timeout_is_a_temporary_error() {
    let app = Router::new().route(
        "/slow",
        post(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            "{}"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let s = server(json!({"client": {"proxy": {"connect": {"enabled": true, "endpoint": format!("http://{addr}/slow"), "timeout": "200ms"}}}})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {}})).await;
    assert_eq!(
        ws.recv().await["error"],
        json!({"code": 100, "message": "internal server error", "temporary": true})
    );
}

#[tokio::test]
async fn refresh_proxy_extends_or_expires() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    let app = Router::new()
        .route(
            "/connect",
            post(|| async { Json(json!({"result": {"user": "r1", "expire_at": now() + 1}})) }),
        )
        .route(
            "/refresh",
            post(move |Json(body): Json<Value>| {
                let n = c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    assert_eq!(body["user"], "r1");
                    // First call extends by a second, the second call expires the connection.
                    if n == 0 {
                        Json(json!({"result": {"expire_at": now() + 1}}))
                    } else {
                        Json(json!({"result": {"expired": true}}))
                    }
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let s = server(json!({"client": {"proxy": {
        "connect": {"enabled": true, "endpoint": format!("http://{addr}/connect")},
        "refresh": {"enabled": true, "endpoint": format!("http://{addr}/refresh")}
    }}}))
    .await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {}})).await;
    let r = ws.recv().await;
    assert!(
        r["connect"].get("expires").is_none(),
        "with a refresh proxy the client does not refresh: {r}"
    );
    assert_eq!(ws.expect_close().await, (3005, "connection expired".into()));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn binary_encoding_sends_b64data() {
    let (url, seen) = backend().await;
    let s = server(json!({"client": {"proxy": {"connect": {"enabled": true, "endpoint": url, "binary_encoding": true}}}})).await;
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"user": "p2"}}}))
        .await;
    ws.recv().await;
    let (body, _) = seen.lock()[0].clone();
    assert_eq!(body["encoding"], "binary");
    assert!(body.get("data").is_none());
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body["b64data"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&raw).unwrap(),
        json!({"user": "p2"})
    );
}

#[tokio::test]
async fn status_transforms_and_forwarded_headers() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<(
        Option<String>,
        Option<String>,
    )>::new()));
    let s2 = seen.clone();
    let app = Router::new().route(
        "/connect",
        post(
            move |headers: axum::http::HeaderMap, Json(body): Json<Value>| {
                let seen = s2.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .map(String::from)
                    };
                    seen.lock().push((h("x-forwarded-for-test"), h("x-tenant")));
                    match body["data"]["status"].as_u64() {
                        Some(code) => (
                            axum::http::StatusCode::from_u16(code as u16).unwrap(),
                            Json(json!({})),
                        ),
                        None => (
                            axum::http::StatusCode::OK,
                            Json(json!({"result": {"user": "h1"}})),
                        ),
                    }
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let s = server(json!({"client": {"proxy": {"connect": {
        "enabled": true, "endpoint": format!("http://{addr}/connect"),
        "http_headers": ["X-Forwarded-For-Test"], "emulated_headers": ["X-Tenant"],
        "http": {"status_to_code_transforms": [
            {"status_code": 403, "to_error": {"code": 1403, "message": "forbidden", "temporary": false}},
            {"status_code": 451, "to_disconnect": {"code": 4451, "reason": "legal"}}
        ]}
    }}}})).await;
    let url = format!("ws://{}/connection/websocket", s.addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("X-Forwarded-For-Test", "10.9.8.7".parse().unwrap());
    let (raw, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = Ws::from_stream(raw);
    ws.send_json(json!({"id": 1, "connect": {"headers": {"x-tenant": "acme"}}}))
        .await;
    assert!(ws.recv().await["connect"]["client"].is_string());
    assert_eq!(
        seen.lock()[0],
        (Some("10.9.8.7".into()), Some("acme".into()))
    );
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"status": 403}}}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"id": 1, "error": {"code": 1403, "message": "forbidden"}})
    );
    let mut ws = Ws::connect(&s).await;
    ws.send_json(json!({"id": 1, "connect": {"data": {"status": 451}}}))
        .await;
    assert_eq!(ws.expect_close().await, (4451, "legal".into()));
}
