//! Measures the Redis engine's recovery bounds (docs/cluster.md "Faults and
//! guarantees"): three Gyre nodes on a private redis-server (a free
//! loopback port, never the machine's own), one subscriber per node.
//! Redis is killed (SIGKILL), a user is blocked through node A while it is
//! down, and Redis is started again on the same port. Printed as one JSON
//! line:
//!
//! * `restart_to_delivery_ms`: from the restarted Redis answering PING to
//!   every node delivering a publication made through node A's API again
//!   (publications retried every 5 ms);
//! * `block_during_outage_to_close_ms`: from the same moment to the
//!   blocked user's connection on node B being closed with 3503 (node B
//!   takes node A's protective sets when its connection comes back);
//! * `publish_during_outage`: what the API answered while Redis was down.
//!
//! Run: `cargo run --release -p gyre --example cluster_outage`
//! (scripts/cluster_bench.sh runs it five times).

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "outage-secret";
const KEY: &str = "outage-key";

struct Redis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start(port: u16, dir: &std::path::Path) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        Redis {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    async fn ready(&self) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).unwrap();
        for _ in 0..500 {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("redis-server did not start");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn token(sub: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": sub}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn client(addr: std::net::SocketAddr, user: &str, channel: Option<&str>) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/connection/websocket"))
        .await
        .unwrap();
    let mut cmds = vec![json!({"id": 1, "connect": {"token": token(user)}}).to_string()];
    if let Some(ch) = channel {
        cmds.push(json!({"id": 2, "subscribe": {"channel": ch}}).to_string());
    }
    ws.send(Message::Text(cmds.join("\n").into()))
        .await
        .unwrap();
    let want = cmds.len();
    let mut got = 0;
    while got < want {
        if let Some(Ok(Message::Text(t))) = ws.next().await {
            got += t.lines().filter(|l| l.contains("\"id\"")).count();
        }
    }
    ws
}

async fn api(addr: std::net::SocketAddr, method: &str, params: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/{method}"))
        .header("X-API-Key", KEY)
        .body(params.to_string())
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or(Value::Null)
}

#[tokio::main]
async fn main() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut redis = Redis::start(port, dir.path());
    redis.ready().await;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let cfg = json!({
            "http_server": {"port": 0}, "log": {"level": "error"},
            "client": {"token": {"hmac_secret_key": SECRET}}, "http_api": {"key": KEY},
            "node": {"name": format!("n{i}")},
            "channel": {"without_namespace": {"allow_subscribe_for_client": true}},
            "engine": {"type": "redis", "redis": {"address": format!("127.0.0.1:{port}"),
                "prefix": "outage", "connect_timeout": "200ms", "io_timeout": "500ms"}}
        });
        let loaded = gyre::config::load_value(cfg, &[], &[]).unwrap();
        nodes.push(gyre::app::start(loaded.config).await.unwrap());
    }
    let addrs: Vec<_> = nodes.iter().map(|n| n.addr).collect();
    let mut subs = Vec::new();
    for a in &addrs {
        subs.push(client(*a, "watcher", Some("news")).await);
    }
    let mut blocked = client(addrs[1], "villain", None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Redis goes away; a publication and a block are attempted meanwhile.
    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = api(addrs[0], "publish", json!({"channel": "news", "data": 0})).await;
    let block = api(addrs[0], "block_user", json!({"user": "villain"})).await;
    tokio::time::sleep(Duration::from_millis(700)).await;

    let redis = Redis::start(redis.port, &redis.dir.clone());
    redis.ready().await;
    let t0 = Instant::now();
    // Every node's subscriber must see a publication again.
    let mut seen = vec![None; subs.len()];
    let mut n = 0u64;
    let mut closed_at = None;
    while seen.iter().any(Option::is_none) || closed_at.is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no recovery in 30 s"
        );
        n += 1;
        let _ = api(addrs[0], "publish", json!({"channel": "news", "data": n})).await;
        for (i, ws) in subs.iter_mut().enumerate() {
            if seen[i].is_some() {
                continue;
            }
            while let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(1), ws.next()).await
            {
                if let Message::Text(t) = m
                    && t.contains("\"pub\"")
                {
                    seen[i] = Some(t0.elapsed());
                    break;
                }
            }
        }
        if closed_at.is_none()
            && let Ok(r) = tokio::time::timeout(Duration::from_millis(1), blocked.next()).await
        {
            match r {
                Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 3503 => {
                    closed_at = Some(t0.elapsed())
                }
                Some(Ok(_)) => {}
                _ => closed_at = Some(Duration::MAX),
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restart_ms = seen.iter().flatten().max().unwrap().as_secs_f64() * 1000.0;
    let close_ms = closed_at.map(|d| d.as_secs_f64() * 1000.0);
    println!(
        "{}",
        json!({
            "nodes": 3,
            "restart_to_delivery_ms": (restart_ms * 10.0).round() / 10.0,
            "block_during_outage_to_close_ms": close_ms.map(|v| (v * 10.0).round() / 10.0),
            "publish_during_outage": during,
            "block_during_outage": block,
        })
    );
    for n in nodes {
        n.shutdown().await;
    }
}
