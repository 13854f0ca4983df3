//! The Redis engine under faults and in other Redis layouts: two Redis
//! servers as two shards, a Redis Cluster of three masters, a Redis that
//! dies and comes back during traffic, and nodes that die. Each test runs
//! its own `redis-server` processes on free loopback ports (no persistence,
//! a temporary dir), killed by their PIDs when the test ends, also when it
//! panics; the machine's Redis is only used (with a prefix of its own) by
//! `killed_node_leaves_info`.

use crate::cluster::{Cluster, nodes_listed, redis_addr, until};
use crate::helpers::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound once, released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A `redis-server` of the test's own, killed (SIGKILL) when dropped.
struct RedisProc {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl RedisProc {
    /// Starts a server on a free port and waits until it answers PING.
    async fn start(extra: &[String]) -> RedisProc {
        let mut r = RedisProc {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.to_vec(),
        };
        r.spawn().await;
        r
    }

    /// Starts (again) on the same port and dir.
    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let port = self.port;
        until(
            &format!("redis-server on {port} answers PING"),
            || async move {
                let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
                    return false;
                };
                let Ok(Ok(mut c)) = tokio::time::timeout(
                    Duration::from_millis(300),
                    client.get_multiplexed_async_connection(),
                )
                .await
                else {
                    return false;
                };
                matches!(
                    redis::cmd("PING").query_async::<String>(&mut c).await,
                    Ok(s) if s == "PONG"
                )
            },
        )
        .await;
    }

    /// SIGKILL (no shutdown, no save), and reaps it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("redis://{}", self.addr()))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    async fn keys(&self, pattern: &str) -> BTreeSet<String> {
        let mut c = self.conn().await;
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async::<Vec<String>>(&mut c)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Gyre binary run as a child process, killed when dropped.
struct GyreProc {
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Drop for GyreProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// FNV-1a 64 (Go's `hash/fnv`).
fn fnv1a64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lamping–Veach jump consistent hash (redis-cluster.md §1.6).
fn jump(mut key: u64, n: i64) -> i64 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < n {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b
}

fn shard_of(channel: &str, n: i64) -> usize {
    jump(fnv1a64(channel.as_bytes()), n) as usize
}

#[test]
fn jump_hash_matches_go_reference_values() {
    // Values of Go's `jump.Hash` / `hash/fnv` (well-known vectors).
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(jump(0, 1), 0);
    assert_eq!(jump(1, 2), 0);
    // In range, and a key only ever moves to the new bucket when n grows.
    for key in 0..1000u64 {
        let k = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for n in 1..20 {
            let (a, b) = (jump(k, n), jump(k, n + 1));
            assert!((0..n).contains(&a));
            assert!(b == a || b == n, "key {k}: {a} -> {b} at {n}");
        }
    }
}

#[tokio::test]
async fn two_redis_shards_split_channels() {
    let r0 = RedisProc::start(&[]).await;
    let r1 = RedisProc::start(&[]).await;
    let cl = Cluster::on(json!([r0.addr(), r1.addr()]));
    let (a, b) = (cl.node(json!({})).await, cl.node(json!({})).await);
    let api_a = Api::new(&a);
    let (mut ws, _) = Ws::connected(&b, &token(json!({"sub": "u"}))).await;
    let channels: Vec<String> = (0..20).map(|n| format!("chat:{n}")).collect();
    for (i, ch) in channels.iter().enumerate() {
        let r = ws.subscribe(i as u32 + 2, ch).await;
        assert!(r["subscribe"].is_object(), "{r}");
    }
    for (n, ch) in channels.iter().enumerate() {
        let r = api_a
            .call("publish", json!({"channel": ch, "data": {"n": n}}))
            .await;
        assert_eq!(r["result"]["offset"], 1, "{ch}: {r}");
    }
    // Every publication reaches B's client, with its offset.
    let mut got: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    while got.len() < channels.len() {
        let p = ws.recv().await;
        let ch = p["push"]["channel"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let n = p["push"]["pub"]["data"]["n"]
            .as_u64()
            .expect("a publication");
        let off = p["push"]["pub"]["offset"].as_u64().expect("an offset");
        assert!(got.insert(ch, (n, off)).is_none(), "twice: {p}");
    }
    for (n, ch) in channels.iter().enumerate() {
        assert_eq!(got[ch], (n as u64, 1), "{ch}");
    }

    // The streams are split over the shards as jump(fnv1a64(channel), 2) says.
    let mut want: [BTreeSet<String>; 2] = Default::default();
    for ch in &channels {
        want[shard_of(ch, 2)].insert(ch.clone());
    }
    assert!(
        !want[0].is_empty() && !want[1].is_empty(),
        "20 channels use both shards"
    );
    let prefix = format!("{}.stream.", cl.prefix);
    let mut have: [BTreeSet<String>; 2] = Default::default();
    for (i, r) in [&r0, &r1].into_iter().enumerate() {
        have[i] = r
            .keys(&format!("{prefix}chat:*"))
            .await
            .into_iter()
            .map(|k| k[prefix.len()..].to_string())
            .collect();
    }
    assert!(have[0].is_disjoint(&have[1]), "{have:?}");
    assert_eq!(have, want, "stream keys per shard");
    // A channel's presence sits on the shard of its history.
    let prefix = format!("{}.presence.data.", cl.prefix);
    for (i, r) in [&r0, &r1].into_iter().enumerate() {
        let keys: BTreeSet<String> = r
            .keys(&format!("{prefix}chat:*"))
            .await
            .into_iter()
            .map(|k| k[prefix.len()..].to_string())
            .collect();
        assert_eq!(keys, want[i], "presence keys on shard {i}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn redis_cluster_of_three_masters() {
    let mut masters = Vec::new();
    for _ in 0..3 {
        // Own bus port: port + 10000 may be taken or out of range.
        let bus = free_port().to_string();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nodes.conf");
        let extra = vec![
            "--cluster-enabled".to_string(),
            "yes".into(),
            "--cluster-config-file".into(),
            conf.to_string_lossy().into_owned(),
            "--cluster-port".into(),
            bus,
        ];
        let r = RedisProc::start(&extra).await;
        masters.push((r, dir));
    }
    let addrs: Vec<String> = masters.iter().map(|(r, _)| r.addr()).collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli on PATH");
    assert!(
        out.status.success(),
        "cluster create: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (r, _) in &masters {
        until("cluster_state:ok", || async {
            let mut c = r.conn().await;
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            info.contains("cluster_state:ok")
        })
        .await;
    }

    let prefix = format!("gyretest_rc_{}", uuid::Uuid::new_v4().simple());
    let cfg = json!({"engine": {"type": "redis", "redis": {
        "cluster_address": [addrs.join(",")], "prefix": prefix
    }}});
    let (a, b) = (server(cfg.clone()).await, server(cfg).await);
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    nodes_listed(&api_a, 2).await;
    nodes_listed(&api_b, 2).await;

    // Publications with history across nodes.
    let (mut on_a, _) = Ws::connected(&a, &token(json!({"sub": "1"}))).await;
    let epoch = on_a.subscribe_recoverable("chat:c").await;
    for n in 1..=3u64 {
        let r = api_b
            .call("publish", json!({"channel": "chat:c", "data": {"n": n}}))
            .await;
        assert_eq!(r["result"]["offset"], n, "{r}");
        assert_eq!(r["result"]["epoch"], epoch.as_str(), "{r}");
    }
    for n in 1..=3u64 {
        let p = on_a.recv().await;
        assert_eq!(p["push"]["pub"]["data"]["n"], n, "{p}");
        assert_eq!(p["push"]["pub"]["offset"], n, "{p}");
    }
    // Leaves A, misses two, recovers on B.
    drop(on_a);
    for n in 4..=5 {
        api_a
            .call("publish", json!({"channel": "chat:c", "data": {"n": n}}))
            .await;
    }
    let (mut back, _) = Ws::connected(&b, &token(json!({"sub": "1"}))).await;
    back.send_json(
        json!({"id": 2, "subscribe": {"channel": "chat:c", "recoverable": true, "recover": true,
        "offset": 3, "epoch": epoch}}),
    )
    .await;
    let r = back.recv().await;
    assert_eq!(r["subscribe"]["recovered"], true, "{r}");
    let offsets: Vec<u64> = r["subscribe"]["publications"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [4, 5], "{r}");
    // The stream key carries the {channel} hash tag (one slot per channel).
    let client = redis::cluster::ClusterClient::new(
        addrs
            .iter()
            .map(|a| format!("redis://{a}"))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let mut cc = client.get_async_connection().await.unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}.stream.{{chat:c}}"))
        .query_async(&mut cc)
        .await
        .unwrap();
    assert_eq!(exists, 1, "hash-tagged stream key");

    // Presence and join across nodes.
    let (mut pa, _) = Ws::connected(&a, &token(json!({"sub": "p1"}))).await;
    pa.send_json(json!({"id": 2, "subscribe": {"channel": "room:p", "join_leave": true}}))
        .await;
    assert_eq!(pa.recv().await["id"], 2);
    let (mut pb, _) = Ws::connected(&b, &token(json!({"sub": "p2"}))).await;
    pb.subscribe(2, "room:p").await;
    // (p1's own join may come first.)
    let mut j = pa.recv().await;
    if j["push"]["join"]["info"]["user"] == "p1" {
        j = pa.recv().await;
    }
    assert_eq!(j["push"]["join"]["info"]["user"], "p2", "{j}");
    for api in [&api_a, &api_b] {
        let s = api
            .call("presence_stats", json!({"channel": "room:p"}))
            .await;
        assert_eq!(
            s["result"],
            json!({"num_clients": 2, "num_users": 2}),
            "{s}"
        );
    }

    // A block through A closes the user's connection on B.
    let (mut blocked, _) = Ws::connected(&b, &token(json!({"sub": "42"}))).await;
    let r = api_a.call("block_user", json!({"user": "42"})).await;
    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(blocked.expect_close().await, (3503, "blocked".into()));

    a.shutdown().await;
    b.shutdown().await;
}

/// What the client on B saw after Redis came back.
#[derive(Default, Debug)]
struct Seen {
    insufficient: bool,
    resubscribed: Option<Value>,
    first_new: Option<(Value, Duration)>,
    /// A publication that does not follow the last one delivered, with no
    /// `insufficient state` before it.
    gap: Option<String>,
}

#[tokio::test]
async fn redis_restart_during_traffic() {
    let mut r = RedisProc::start(&[]).await;
    let cl = Cluster::on(json!(r.addr()));
    let timeouts = json!({"engine": {"redis": {"connect_timeout": "300ms", "io_timeout": "1s"}}});
    let (a, b) = (
        cl.node(timeouts.clone()).await,
        cl.node(timeouts.clone()).await,
    );
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    nodes_listed(&api_a, 2).await;
    nodes_listed(&api_b, 2).await;

    // A positioned subscriber on B, one publication delivered.
    let (mut ws, _) = Ws::connected(&b, &token(json!({"sub": "s"}))).await;
    let epoch = ws.subscribe_recoverable("chat:r").await;
    let r0 = api_a
        .call("publish", json!({"channel": "chat:r", "data": "before"}))
        .await;
    assert_eq!(r0["result"]["offset"], 1, "{r0}");
    let p = ws.recv().await;
    assert_eq!(p["push"]["pub"]["data"], "before", "{p}");
    let mut last_offset = p["push"]["pub"]["offset"].as_u64().unwrap();
    // A user to be blocked while Redis is away.
    let (mut victim, _) = Ws::connected(&b, &token(json!({"sub": "b-user"}))).await;

    r.kill();

    // A publication cannot be stored: an error, never a result.
    let t = Instant::now();
    let (status, body) = api_a
        .raw(
            "publish",
            &json!({"channel": "chat:r", "data": "lost"}).to_string(),
            &[("X-API-Key", KEY)],
        )
        .await;
    eprintln!(
        "publish with Redis down ({:?}): {status} {body}",
        t.elapsed()
    );
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    assert!(v.get("result").is_none(), "success without Redis: {body}");
    assert_eq!(v["error"]["code"], 100, "{body}");

    // A block while Redis is away: applied on A at once (memory storage).
    let (status, body) = api_a
        .raw(
            "block_user",
            &json!({"user": "b-user"}).to_string(),
            &[("X-API-Key", KEY)],
        )
        .await;
    eprintln!("block_user with Redis down: {status} {body}");
    assert_eq!(status, 200, "{body}");
    let st = api_a
        .call("user_block_status", json!({"user": "b-user"}))
        .await;
    assert_eq!(st["result"]["blocked"], true, "{st}");

    r.spawn().await;
    let restarted = Instant::now();

    // Publications through A flow again and reach the subscriber on B; a
    // subscriber told to recover (insufficient state) resubscribes.
    let mut seen = Seen::default();
    let mut k = 0u64;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut final_sent = false;
    'outer: loop {
        assert!(
            Instant::now() < deadline,
            "no publication reached B after the restart: {seen:?}"
        );
        // Keep publishing until one reaches the client, then once more.
        if seen.first_new.is_none() || !final_sent {
            k += 1;
            let data = if seen.first_new.is_some() {
                final_sent = true;
                json!({"final": k})
            } else {
                json!({"k": k})
            };
            let (_, body) = api_a
                .raw(
                    "publish",
                    &json!({"channel": "chat:r", "data": data}).to_string(),
                    &[("X-API-Key", KEY)],
                )
                .await;
            if !body.contains("\"result\"") {
                final_sent = false;
            }
        }
        let wait = Duration::from_millis(100);
        while let Some(ev) = ws.next(wait).await {
            let Event::Frame(f) = ev else {
                panic!("subscriber closed: {ev:?}");
            };
            if f == json!({}) {
                continue;
            }
            let push = &f["push"];
            if push["unsubscribe"]["code"] == 2500 {
                seen.insufficient = true;
                ws.send_json(json!({"id": 3, "subscribe": {"channel": "chat:r",
                    "recoverable": true, "recover": true, "offset": last_offset, "epoch": epoch}}))
                    .await;
            } else if f["id"] == 3 {
                seen.resubscribed = Some(f.clone());
            } else if let Some(off) = push["pub"]["offset"].as_u64() {
                let data = &push["pub"]["data"];
                if seen.first_new.is_none() {
                    eprintln!(
                        "restart -> first publication on B: {:?} ({f}), insufficient state \
                         before it: {}",
                        restarted.elapsed(),
                        seen.insufficient
                    );
                    seen.first_new = Some((f.clone(), restarted.elapsed()));
                    if !seen.insufficient && off != last_offset + 1 {
                        seen.gap = Some(format!(
                            "publication at offset {off} after offset {last_offset} of \
                             another epoch, without insufficient state: {f}"
                        ));
                    }
                }
                last_offset = off;
                if data.get("final").is_some() {
                    break 'outer;
                }
            }
        }
    }
    if let Some(r) = &seen.resubscribed {
        assert!(r["subscribe"].is_object(), "{r}");
        assert_ne!(
            r["subscribe"]["epoch"],
            epoch.as_str(),
            "Redis lost the epoch"
        );
        // `recovered: false` is omitted from the reply, as Centrifugo does.
        assert_ne!(r["subscribe"]["recovered"], true, "{r}");
    }
    eprintln!("after the restart: {seen:?}");

    // B takes the block A made while Redis was away: b-user's connection
    // on B closes.
    let closed = tokio::time::timeout(Duration::from_secs(10), victim.expect_close()).await;
    assert_eq!(
        closed.ok(),
        Some((3503, "blocked".into())),
        "b-user on B after Redis returned"
    );
    let st = api_b
        .call("user_block_status", json!({"user": "b-user"}))
        .await;
    assert_eq!(st["result"]["blocked"], true, "{st}");

    // A node started after the outage takes it as well.
    let late = cl.node(timeouts).await;
    let mut w = Ws::connect(&late).await;
    w.send_json(json!({"id": 1, "connect": {"token": token(json!({"sub": "b-user"}))}}))
        .await;
    assert_eq!(w.expect_close().await, (3503, "blocked".into()));

    for s in [a, b, late] {
        s.shutdown().await;
    }
    // A positioned subscriber must not take a publication of a new epoch
    // (Redis lost everything) as the next one: Centrifugo unsubscribes it
    // with `insufficient state` so the SDK recovers.
    // (Publications of the new epoch made through A before B's PUB/SUB was
    // back must make B's node see the gap: offset/epoch continuity is
    // checked per publication, src/node/cluster.rs on_redis_message.)
    assert!(seen.gap.is_none(), "{}", seen.gap.unwrap_or_default());
}

#[tokio::test]
async fn killed_node_leaves_info() {
    let cl = Cluster::on(json!(redis_addr()));
    let a = cl.node(json!({"node": {"name": "a"}})).await;
    let api = Api::new(&a);

    // Node C: the gyre binary, killed with SIGKILL (no goodbye).
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = base_config(cl.config(json!({
        "http_server": {"port": port}, "node": {"name": "c"}
    })));
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gyre"))
        .args(["-c", "config.json"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = GyreProc {
        child: Some(child),
        _dir: dir,
    };
    nodes_listed(&api, 2).await;
    let names: BTreeSet<String> = api.call("info", json!({})).await["result"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a".to_string(), "c".to_string()].into());
    let mut child = c.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    nodes_listed(&api, 1).await;
    let gone = killed.elapsed();
    eprintln!("killed node left info after {gone:?}");
    assert!(gone <= Duration::from_secs(8), "{gone:?}");

    // A node that shuts down says so: gone at once.
    let b = cl.node(json!({"node": {"name": "b"}})).await;
    nodes_listed(&api, 2).await;
    b.shutdown().await;
    let stopped = Instant::now();
    loop {
        let n = api.call("info", json!({})).await["result"]["nodes"]
            .as_array()
            .unwrap()
            .len();
        if n == 1 {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(2),
            "stopped node still listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("stopped node left info after {:?}", stopped.elapsed());
    a.shutdown().await;
    cl.cleanup().await;
}

/// Reads `ws`'s frames for `wait`: publications' offsets go to `got`; an
/// `insufficient state` unsubscribe is answered with a recovering
/// resubscribe (id 9) whose recovered publications go to `got` too.
/// Returns how many `insufficient state` pushes came.
async fn drain_positioned(
    ws: &mut Ws,
    channel: &str,
    epoch: &str,
    got: &mut Vec<u64>,
    wait: Duration,
) -> usize {
    let mut insufficient = 0;
    while let Some(ev) = ws.next(wait).await {
        let Event::Frame(f) = ev else {
            panic!("subscriber closed: {ev:?}");
        };
        if f["push"]["unsubscribe"]["code"] == 2500 {
            insufficient += 1;
            let last = got.last().copied().unwrap_or(0);
            ws.send_json(json!({"id": 9, "subscribe": {"channel": channel,
                "recoverable": true, "recover": true, "offset": last, "epoch": epoch}}))
                .await;
        } else if f["id"] == 9 {
            assert_eq!(f["subscribe"]["recovered"], true, "{f}");
            for p in f["subscribe"]["publications"]
                .as_array()
                .into_iter()
                .flatten()
            {
                got.push(p["offset"].as_u64().unwrap());
            }
        } else if let Some(off) = f["push"]["pub"]["offset"].as_u64() {
            got.push(off);
        }
    }
    insufficient
}

#[tokio::test]
async fn pubsub_cut_makes_subscribers_recover() {
    // Redis stays up; only the PUB/SUB connections are cut (CLIENT KILL
    // TYPE pubsub), so publications through A's command connection go on
    // while B resubscribes. B's positioned subscriber must end up with
    // every offset: live, or recovered after `insufficient state`.
    let r = RedisProc::start(&[]).await;
    let cl = Cluster::on(json!(r.addr()));
    let (a, b) = (cl.node(json!({})).await, cl.node(json!({})).await);
    let api_a = Api::new(&a);
    nodes_listed(&api_a, 2).await;
    let (mut ws, _) = Ws::connected(&b, &token(json!({"sub": "s"}))).await;
    let epoch = ws.subscribe_recoverable("chat:g").await;
    let publish = |n: u64| {
        let api = &api_a;
        async move {
            let r = api
                .call("publish", json!({"channel": "chat:g", "data": n}))
                .await;
            assert_eq!(r["result"]["offset"], n, "{r}");
        }
    };
    publish(1).await;
    let mut got = Vec::new();
    drain_positioned(
        &mut ws,
        "chat:g",
        &epoch,
        &mut got,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(got, [1]);

    let mut c = r.conn().await;
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(killed >= 2, "both nodes' PUB/SUB connections: {killed}");
    // A burst at once (while B reconnects), then one every 50 ms until B
    // delivers again.
    let mut n = 1;
    for _ in 0..5 {
        n += 1;
        publish(n).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 2 {
        assert!(Instant::now() < deadline, "nothing delivered after the cut");
        n += 1;
        publish(n).await;
        drain_positioned(
            &mut ws,
            "chat:g",
            &epoch,
            &mut got,
            Duration::from_millis(50),
        )
        .await;
    }
    // Give a late `insufficient state` its chance (resync: heartbeat,
    // 300 ms, survey), unless nothing is missing.
    let want: Vec<u64> = (1..=n).collect();
    let until_late = Instant::now() + Duration::from_secs(5);
    let mut insufficient = 0;
    while got != want && Instant::now() < until_late {
        insufficient += drain_positioned(
            &mut ws,
            "chat:g",
            &epoch,
            &mut got,
            Duration::from_millis(100),
        )
        .await;
    }
    eprintln!("after the PUB/SUB cut: offsets {got:?}, insufficient state {insufficient}");
    a.shutdown().await;
    b.shutdown().await;
    // Publications made while B resubscribed are recovered after the
    // `insufficient state` push.
    assert_eq!(got, want, "every offset, live or recovered");
}

/// A TCP proxy to a Redis that the test can cut (closing every connection
/// and refusing new ones) and restore: one node cut off from Redis while
/// the others are not.
struct Proxy {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn to(target: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (d, cs) = (down.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                if d.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                cs.lock().push(h.abort_handle());
            }
        });
        Proxy {
            port,
            down,
            conns,
            accept,
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the proxy and refuses new ones.
    fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for h in self.conns.lock().drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[tokio::test]
async fn block_made_while_cut_off_reaches_peers() {
    // A reaches Redis through a proxy, B directly. A is cut off, blocks a
    // user (memory storage: applied on A, the announcement fails), and
    // comes back. B never lost Redis, so B has no reason to resync: the
    // change must still reach it.
    let r = RedisProc::start(&[]).await;
    let proxy = Proxy::to(r.addr()).await;
    let cl = Cluster::on(json!(proxy.addr()));
    let timeouts = json!({"engine": {"redis": {"connect_timeout": "300ms", "io_timeout": "1s"}}});
    let a = cl.node(timeouts.clone()).await;
    let mut direct = timeouts.clone();
    direct["engine"]["redis"]["address"] = json!(r.addr());
    let b = cl.node(direct).await;
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    nodes_listed(&api_a, 2).await;
    nodes_listed(&api_b, 2).await;
    let (mut victim, _) = Ws::connected(&b, &token(json!({"sub": "b-user"}))).await;

    proxy.cut();
    let (status, body) = api_a
        .raw(
            "block_user",
            &json!({"user": "b-user"}).to_string(),
            &[("X-API-Key", KEY)],
        )
        .await;
    eprintln!("block_user on a cut-off node: {status} {body}");
    let st = api_a
        .call("user_block_status", json!({"user": "b-user"}))
        .await;
    assert_eq!(st["result"]["blocked"], true, "applied on A: {st}");
    proxy.restore();
    // A is back once its publications go through again.
    until("A publishes again", || async {
        api_a
            .call("publish", json!({"channel": "chat:z", "data": 1}))
            .await
            .get("result")
            .is_some()
    })
    .await;
    let back = Instant::now();
    // B never lost Redis, so it never asks A: A announces the change that
    // failed to go out once its own connection is back (reannounce_protect).
    let closed = tokio::time::timeout(Duration::from_secs(5), victim.expect_close()).await;
    eprintln!(
        "b-user on B after A came back: {closed:?} after {:?}",
        back.elapsed()
    );
    let st = api_b
        .call("user_block_status", json!({"user": "b-user"}))
        .await;
    a.shutdown().await;
    b.shutdown().await;
    assert_eq!(st["result"]["blocked"], true, "B's block status: {st}");
    assert_eq!(closed.ok(), Some((3503, "blocked".into())));
}
