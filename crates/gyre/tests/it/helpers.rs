//! Test helpers: a real Gyre on 127.0.0.1:0, a raw WebSocket client that
//! speaks whole JSON frames, an API client, and token makers.

use futures_util::{SinkExt, StreamExt};
use gyre::app::{Server, start};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "secret";
pub const KEY: &str = "k";

/// The config of protocol.md §9 plus whatever `extra` merges in.
pub fn base_config(extra: Value) -> Value {
    let mut c = json!({
        "http_server": {"port": 0},
        "log": {"level": "error"},
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": KEY},
        "channel": {"namespaces": [{
            "name": "chat", "presence": true, "history_size": 10, "history_ttl": "60s",
            "allow_subscribe_for_client": true, "allow_publish_for_subscriber": true,
            "allow_presence_for_subscriber": true, "allow_history_for_subscriber": true,
            "allow_recovery": true
        }, {
            "name": "room", "presence": true, "history_size": 10, "history_ttl": "60s",
            "allow_subscribe_for_client": true, "allow_presence_for_subscriber": true,
            "allow_history_for_subscriber": true, "join_leave": true, "force_push_join_leave": true
        }]}
    });
    gyre::config::load::merge(&mut c, extra);
    c
}

pub async fn server(extra: Value) -> Server {
    let loaded = gyre::config::load_value(base_config(extra), &[], &[]).expect("config");
    start(loaded.config).await.expect("server starts")
}

pub fn now() -> i64 {
    gyre::auth::now()
}

pub fn token(claims: Value) -> String {
    token_with(claims, SECRET)
}

pub fn token_with(claims: Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The Prometheus text of a server started with `prometheus.enabled`.
pub async fn metrics(server: &Server) -> String {
    reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub struct Ws {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: std::collections::VecDeque<Value>,
}

#[derive(Debug, PartialEq)]
pub enum Event {
    Frame(Value),
    Close(u16, String),
    Eof,
}

impl Ws {
    /// Wraps an already connected socket.
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Ws {
        Ws {
            ws,
            pending: Default::default(),
        }
    }

    pub async fn connect(server: &Server) -> Ws {
        let url = format!("ws://{}/connection/websocket", server.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connects");
        Ws {
            ws,
            pending: Default::default(),
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send(&v.to_string()).await;
    }

    /// Next event within `timeout`; a frame with several lines yields them one by one.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        if let Some(v) = self.pending.pop_front() {
            return Some(Event::Frame(v));
        }
        loop {
            let msg = match tokio::time::timeout(timeout, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Event::Eof),
                Ok(Some(Err(_))) => return Some(Event::Eof),
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    assert!(
                        !t.contains("\n\n"),
                        "blank line inside a frame breaks the Python SDK: {t}"
                    );
                    for line in t.split('\n') {
                        self.pending.push_back(
                            serde_json::from_str(line)
                                .unwrap_or_else(|_| panic!("not JSON: {line}")),
                        );
                    }
                    return Some(Event::Frame(self.pending.pop_front().unwrap()));
                }
                Message::Close(Some(f)) => {
                    return Some(Event::Close(f.code.into(), f.reason.to_string()));
                }
                Message::Close(None) => return Some(Event::Close(1005, String::new())),
                Message::Binary(_) => panic!("JSON replies must be text frames"),
                _ => continue,
            }
        }
    }

    /// Next JSON object, skipping server pings `{}`.
    pub async fn recv(&mut self) -> Value {
        loop {
            match self.next(Duration::from_secs(5)).await {
                Some(Event::Frame(v)) if v == json!({}) => continue,
                Some(Event::Frame(v)) => return v,
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Waits for the close frame, skipping frames.
    pub async fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.next(Duration::from_secs(15)).await {
                Some(Event::Frame(_)) => continue,
                Some(Event::Close(c, r)) => return (c, r),
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Connects with a token and returns the connect result.
    pub async fn connected(server: &Server, tok: &str) -> (Ws, Value) {
        let mut ws = Ws::connect(server).await;
        ws.send_json(json!({"id": 1, "connect": {"token": tok}}))
            .await;
        let r = ws.recv().await;
        assert_eq!(r["id"], 1, "{r}");
        assert!(r["connect"]["client"].is_string(), "{r}");
        (ws, r["connect"].clone())
    }

    /// Subscribes with `recoverable: true` (id 2) and returns the epoch.
    pub async fn subscribe_recoverable(&mut self, channel: &str) -> String {
        self.send_json(json!({"id": 2, "subscribe": {"channel": channel, "recoverable": true}}))
            .await;
        let sub = self.recv().await;
        assert_eq!(sub["id"], 2, "{sub}");
        sub["subscribe"]["epoch"]
            .as_str()
            .unwrap_or_else(|| panic!("no epoch: {sub}"))
            .to_string()
    }

    pub async fn subscribe(&mut self, id: u32, channel: &str) -> Value {
        self.send_json(json!({"id": id, "subscribe": {"channel": channel}}))
            .await;
        let r = self.recv().await;
        assert_eq!(r["id"], id, "{r}");
        r
    }
}

pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api {
            base: format!("http://{}/api", server.api_addr()),
            http: reqwest::Client::new(),
        }
    }

    /// POST /api/<method> with the key; returns (status, body text).
    pub async fn raw(&self, method: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let url = if method.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{method}", self.base)
        };
        let mut rb = self.http.post(url).body(body.to_string());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.expect("api reachable");
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn call(&self, method: &str, params: Value) -> Value {
        let (status, body) = self
            .raw(method, &params.to_string(), &[("X-API-Key", KEY)])
            .await;
        assert_eq!(status, 200, "{method}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}
