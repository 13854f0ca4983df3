//! Persistent protective storage against real Redis and PostgreSQL
//! (issue 9): restarts, several nodes on one store, a store that fails at
//! a write, at runtime and at start, and old config forms. Each test uses
//! its own Redis prefix or database and removes it. Failures are simulated
//! with a TCP proxy the test owns, never by touching the shared services.

use crate::helpers::*;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn redis_addr() -> String {
    std::env::var("GYRE_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".into())
}

fn postgres_admin() -> String {
    std::env::var("GYRE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

fn unique(what: &str) -> String {
    format!("gyretest_{what}_{}", uuid::Uuid::new_v4().simple())
}

/// A store of the test's own: a Redis prefix or a PostgreSQL database.
enum TestStore {
    Redis { prefix: String },
    Postgres { db: String, dsn: String },
}

impl TestStore {
    async fn redis() -> TestStore {
        TestStore::Redis {
            prefix: unique("it"),
        }
    }

    async fn postgres() -> TestStore {
        let db = unique("it");
        let admin = pg_admin().await;
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let base = postgres_admin();
        let base = base
            .rsplit_once('/')
            .map_or(base.as_str(), |(b, _)| b)
            .to_string();
        TestStore::Postgres {
            dsn: format!("{base}/{db}"),
            db,
        }
    }

    /// The config for every feature on this store, reaching it at `via`
    /// (a proxy) or directly.
    fn config(&self, via: Option<SocketAddr>) -> Value {
        match self {
            TestStore::Redis { prefix } => {
                let address = via.map_or_else(redis_addr, |a| a.to_string());
                let f = json!({"storage_type": "redis", "reload_interval": "200ms",
                               "redis": {"address": address, "prefix": prefix,
                                         "connect_timeout": "300ms", "io_timeout": "500ms"}});
                json!({"user_block": f, "token_revoke": f, "user_tokens_invalidate": f})
            }
            TestStore::Postgres { dsn, .. } => {
                let dsn = match via {
                    Some(a) => {
                        let (scheme_user, rest) = dsn.split_once('@').unwrap();
                        let db = rest.rsplit_once('/').unwrap().1;
                        format!("{scheme_user}@{a}/{db}")
                    }
                    None => dsn.clone(),
                };
                let f = json!({"storage_type": "database", "reload_interval": "200ms"});
                json!({"user_block": f, "token_revoke": f, "user_tokens_invalidate": f,
                       "database": {"enabled": true, "postgresql": {"dsn": dsn}}})
            }
        }
    }

    /// Where the store listens.
    fn target(&self) -> SocketAddr {
        match self {
            TestStore::Redis { .. } => redis_addr().parse().unwrap(),
            TestStore::Postgres { dsn, .. } => {
                let host_port = dsn.split_once('@').unwrap().1.split_once('/').unwrap().0;
                host_port.parse().unwrap()
            }
        }
    }

    async fn cleanup(self) {
        match self {
            TestStore::Redis { prefix } => {
                let client = redis::Client::open(format!("redis://{}", redis_addr())).unwrap();
                let mut c = client.get_multiplexed_async_connection().await.unwrap();
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{prefix}*"))
                    .query_async(&mut c)
                    .await
                    .unwrap();
                if !keys.is_empty() {
                    let _: () = redis::cmd("DEL")
                        .arg(keys)
                        .query_async(&mut c)
                        .await
                        .unwrap();
                }
            }
            TestStore::Postgres { db, .. } => {
                let _ = pg_admin()
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await;
            }
        }
    }
}

async fn pg_admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&postgres_admin(), tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL (GYRE_TEST_POSTGRES) is reachable");
    tokio::spawn(conn);
    client
}

/// A TCP proxy to a store that the test can cut: `down()` drops every
/// proxied connection and refuses new ones until `up()`.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (u, c) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                if !u.load(Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock().push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            up,
            conns,
            accept,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.down();
    }
}

/// Connects as `user` (with optional claims) and returns how it went: the
/// connect result, or the error code / close code.
async fn try_connect(s: &gyre::app::Server, claims: Value) -> Result<(), i64> {
    let mut ws = Ws::connect(s).await;
    ws.send_json(json!({"id": 1, "connect": {"token": token(claims)}}))
        .await;
    match ws.next(Duration::from_secs(5)).await {
        Some(Event::Frame(v)) if v["connect"].is_object() => Ok(()),
        Some(Event::Frame(v)) => Err(v["error"]["code"].as_i64().unwrap_or(-1)),
        Some(Event::Close(code, _)) => Err(code as i64),
        other => panic!("no answer to connect: {other:?}"),
    }
}

/// Polls `f` until it is true (up to 10 s).
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

async fn restart_keeps_every_feature(store: TestStore) {
    let s = server(store.config(None)).await;
    let api = Api::new(&s);
    let old = now() - 100;
    for (m, p) in [
        (
            "block_user",
            json!({"user": "42", "expire_at": now() + 3600, "reason": "spam"}),
        ),
        ("revoke_token", json!({"uid": "J"})),
        (
            "invalidate_user_tokens",
            json!({"user": "7", "issued_before": now() - 10}),
        ),
        (
            "invalidate_user_tokens",
            json!({"user": "8", "channel": "$chat:s", "issued_before": now() - 10}),
        ),
    ] {
        assert_eq!(api.call(m, p).await, json!({"result": {}}), "{m}");
    }
    s.shutdown().await;
    let s = server(store.config(None)).await;
    let api = Api::new(&s);
    let status = api.call("user_block_status", json!({"user": "42"})).await;
    assert_eq!(status["result"]["blocked"], true, "{status}");
    assert_eq!(status["result"]["reason"], "spam");
    assert_eq!(try_connect(&s, json!({"sub": "42"})).await, Err(3503));
    assert_eq!(
        try_connect(&s, json!({"sub": "1", "jti": "J"})).await,
        Err(109)
    );
    assert_eq!(
        try_connect(&s, json!({"sub": "7", "iat": old})).await,
        Err(109)
    );
    assert_eq!(
        try_connect(&s, json!({"sub": "7", "iat": now()})).await,
        Ok(())
    );
    let inv = api
        .call("user_tokens_invalidations", json!({"user": "8"}))
        .await;
    assert_eq!(
        inv["result"]["invalidations"][0]["channel"], "$chat:s",
        "{inv}"
    );
    s.shutdown().await;
    store.cleanup().await;
}

#[tokio::test]
async fn restart_keeps_every_feature_in_redis() {
    restart_keeps_every_feature(TestStore::redis().await).await;
}

#[tokio::test]
async fn restart_keeps_every_feature_in_postgres() {
    restart_keeps_every_feature(TestStore::postgres().await).await;
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

async fn nodes_on_one_store_act_together(store: TestStore) {
    let a = server(store.config(None)).await;
    let mut b_cfg = store.config(None);
    b_cfg["prometheus"] = json!({"enabled": true});
    let b = server(b_cfg).await;
    // Changes heard in order need no reload: 20 blocks made on A reach B
    // through notifications alone.
    let reloads = counter(&metrics(&b).await, "gyre_protect_reloads_total");
    for i in 0..20 {
        Api::new(&a)
            .call("block_user", json!({"user": format!("n{i}")}))
            .await;
    }
    eventually("20 notifications reach B", async || {
        counter(&metrics(&b).await, "gyre_protect_notifications_total") >= 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await; // three version checks
    assert_eq!(
        counter(&metrics(&b).await, "gyre_protect_reloads_total"),
        reloads,
        "no reload while nothing was missed"
    );
    assert_eq!(try_connect(&b, json!({"sub": "n19"})).await, Err(3503));
    let api_a = Api::new(&a);
    // A block made on A closes the user's connection on B at once.
    let (mut on_b, _) = Ws::connected(&b, &token(json!({"sub": "42"}))).await;
    api_a.call("block_user", json!({"user": "42"})).await;
    assert_eq!(on_b.expect_close().await.0, 3503);
    assert_eq!(try_connect(&b, json!({"sub": "42"})).await, Err(3503));
    // A revocation too (3014), and an unblock reaches B.
    let (mut on_b, _) = Ws::connected(&b, &token(json!({"sub": "5", "jti": "R"}))).await;
    api_a.call("revoke_token", json!({"uid": "R"})).await;
    assert_eq!(on_b.expect_close().await.0, 3014);
    api_a.call("unblock_user", json!({"user": "42"})).await;
    eventually("unblock reaches B", async || {
        try_connect(&b, json!({"sub": "42"})).await.is_ok()
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
    store.cleanup().await;
}

#[tokio::test]
async fn nodes_on_one_redis_act_together() {
    nodes_on_one_store_act_together(TestStore::redis().await).await;
}

#[tokio::test]
async fn nodes_on_one_postgres_act_together() {
    nodes_on_one_store_act_together(TestStore::postgres().await).await;
}

async fn a_failing_store_loses_nothing(store: TestStore) {
    let proxy = Proxy::start(store.target()).await;
    // A reaches the store through the proxy; B directly.
    let a = server(store.config(Some(proxy.addr))).await;
    let b = server(store.config(None)).await;
    let (api_a, api_b) = (Api::new(&a), Api::new(&b));
    api_a.call("block_user", json!({"user": "1"})).await;
    proxy.down();
    // A write that the store did not take is an error, and in effect nowhere.
    assert_eq!(
        api_a.call("block_user", json!({"user": "2"})).await,
        json!({"error": {"code": 100, "message": "internal server error"}})
    );
    assert_eq!(
        api_a.call("unblock_user", json!({"user": "1"})).await,
        json!({"error": {"code": 100, "message": "internal server error"}})
    );
    assert_eq!(try_connect(&a, json!({"sub": "2"})).await, Ok(()));
    assert_eq!(try_connect(&b, json!({"sub": "2"})).await, Ok(()));
    // What A had is still enforced while its store is down.
    assert_eq!(try_connect(&a, json!({"sub": "1"})).await, Err(3503));
    // A change made meanwhile elsewhere reaches A once the store is back.
    api_b.call("block_user", json!({"user": "3"})).await;
    proxy.up();
    eventually("a block made during the outage reaches A", async || {
        try_connect(&a, json!({"sub": "3"})).await == Err(3503)
    })
    .await;
    // And changes made after recovery propagate from A again.
    api_a.call("block_user", json!({"user": "4"})).await;
    eventually("a block made on A after recovery reaches B", async || {
        try_connect(&b, json!({"sub": "4"})).await == Err(3503)
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
    store.cleanup().await;
}

#[tokio::test]
async fn a_failing_redis_loses_nothing() {
    a_failing_store_loses_nothing(TestStore::redis().await).await;
}

#[tokio::test]
async fn a_failing_postgres_loses_nothing() {
    a_failing_store_loses_nothing(TestStore::postgres().await).await;
}

async fn start_with_the_store_down(store: TestStore) {
    // Entries made by another node before this one starts.
    let other = server(store.config(None)).await;
    Api::new(&other)
        .call("block_user", json!({"user": "9"}))
        .await;
    let proxy = Proxy::start(store.target()).await;
    proxy.down();
    let cfg = gyre::config::load_value(base_config(store.config(Some(proxy.addr))), &[], &[])
        .unwrap()
        .config;
    let err = gyre::app::start(cfg)
        .await
        .err()
        .expect("refused to start")
        .to_string();
    assert!(
        err.contains("user_block") && err.contains("start_without_storage"),
        "{err}"
    );
    // With start_without_storage it starts, and loads once the store is back.
    let mut cfg = store.config(Some(proxy.addr));
    for f in ["user_block", "token_revoke", "user_tokens_invalidate"] {
        cfg[f]["start_without_storage"] = json!(true);
    }
    let s = server(cfg).await;
    assert_eq!(
        try_connect(&s, json!({"sub": "9"})).await,
        Ok(()),
        "nothing loaded yet"
    );
    proxy.up();
    eventually("entries loaded once the store is back", async || {
        try_connect(&s, json!({"sub": "9"})).await == Err(3503)
    })
    .await;
    s.shutdown().await;
    other.shutdown().await;
    store.cleanup().await;
}

#[tokio::test]
async fn start_with_redis_down() {
    start_with_the_store_down(TestStore::redis().await).await;
}

#[tokio::test]
async fn start_with_postgres_down() {
    start_with_the_store_down(TestStore::postgres().await).await;
}

#[tokio::test]
async fn secrets_stay_out_of_start_errors() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for cfg in [
        json!({"user_block": {"storage_type": "database"},
               "database": {"enabled": true, "postgresql": {"dsn": format!("postgresql://postgres:s3cr3t-pw@{closed}/x")}}}),
        json!({"user_block": {"storage_type": "redis",
               "redis": {"address": format!("redis://:s3cr3t-pw@{closed}"), "connect_timeout": "200ms"}}}),
        json!({"user_block": {"storage_type": "redis",
               "redis": {"address": closed.to_string(), "password": "s3cr3t-pw", "connect_timeout": "200ms"}}}),
    ] {
        let c = gyre::config::load_value(base_config(cfg.clone()), &[], &[])
            .unwrap()
            .config;
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t-pw"), "config Debug shows a secret");
        let err = gyre::app::start(c)
            .await
            .err()
            .expect("store unreachable")
            .to_string();
        assert!(!err.contains("s3cr3t-pw"), "{err}");
        assert!(err.contains("user_block"), "{err}");
    }
}

#[tokio::test]
async fn old_config_forms_persist() {
    // Centrifugo PRO v3/v4: database.dsn and persist: true (with the
    // singular user_token_invalidate).
    let db = TestStore::postgres().await;
    let TestStore::Postgres { dsn, .. } = &db else {
        unreachable!()
    };
    let v34 = json!({"database": {"dsn": dsn}, "user_block": {"persist": true},
                     "token_revoke": {"persist": true}, "user_token_invalidate": {"persist": true}});
    let s = server(v34.clone()).await;
    Api::new(&s)
        .call("revoke_token", json!({"uid": "old-form"}))
        .await;
    s.shutdown().await;
    let s = server(v34).await;
    assert_eq!(
        try_connect(&s, json!({"sub": "1", "jti": "old-form"})).await,
        Err(109)
    );
    s.shutdown().await;
    db.cleanup().await;
    // Centrifugo PRO v5: persistence_engine with redis_address.
    let prefix = unique("v5");
    let v5 = json!({"user_block": {"persistence_engine": "redis", "redis_address": redis_addr(),
                                   "redis_prefix": prefix}});
    let s = server(v5.clone()).await;
    Api::new(&s).call("block_user", json!({"user": "v5"})).await;
    s.shutdown().await;
    let s = server(v5).await;
    assert_eq!(try_connect(&s, json!({"sub": "v5"})).await, Err(3503));
    s.shutdown().await;
    TestStore::Redis { prefix }.cleanup().await;
}

/// A `redis-server` of the test's own (master, replica or Sentinel),
/// stopped when dropped.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl OwnRedis {
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Starts a server with `conf` lines added (and `--sentinel` when asked).
    async fn start(conf: &str, sentinel: bool) -> OwnRedis {
        let port = Self::free_port();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("redis.conf");
        std::fs::write(
            &file,
            format!(
                "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n{conf}\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new("redis-server");
        cmd.arg(&file);
        if sentinel {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh checks)");
        let r = OwnRedis {
            port,
            child,
            _dir: dir,
        };
        eventually("own redis-server answers", async || {
            r.query::<String>(&["PING"]).await.is_ok()
        })
        .await;
        r
    }

    async fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?;
        let mut c = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut c).await
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A master, its replica and a Sentinel watching them as `name`, all of
/// the test's own.
struct SentinelSet {
    master: OwnRedis,
    replica: OwnRedis,
    sentinel: OwnRedis,
    name: &'static str,
}

impl SentinelSet {
    async fn start(name: &'static str) -> SentinelSet {
        let master = OwnRedis::start("", false).await;
        let replica = OwnRedis::start(&format!("replicaof 127.0.0.1 {}", master.port), false).await;
        let sentinel = OwnRedis::start(
            &format!(
                "sentinel monitor {name} 127.0.0.1 {} 1\nsentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 5000",
                master.port
            ),
            true,
        )
        .await;
        SentinelSet {
            master,
            replica,
            sentinel,
            name,
        }
    }

    /// The Sentinel address list of a config.
    fn address(&self) -> Vec<String> {
        vec![format!("127.0.0.1:{}", self.sentinel.port)]
    }

    /// Fails over to the replica, waits until it is master, and demotes
    /// the old master at once, as Sentinel does a little later (before
    /// that, a write to it is lost when it resyncs: replication is
    /// asynchronous, in Centrifugo's deployments too).
    async fn fail_over(&self) {
        // (Sentinel must first have found the replica through the master.)
        eventually("Sentinel starts a failover", async || {
            self.sentinel
                .query::<String>(&["SENTINEL", "FAILOVER", self.name])
                .await
                .is_ok()
        })
        .await;
        let role = async |r: &OwnRedis| -> Option<Vec<u8>> {
            match r.query::<Vec<redis::Value>>(&["ROLE"]).await.ok()?.first() {
                Some(redis::Value::BulkString(b)) => Some(b.clone()),
                _ => None,
            }
        };
        eventually("the replica is master", async || {
            role(&self.replica).await.as_deref() == Some(b"master")
        })
        .await;
        let _: String = self
            .master
            .query(&["REPLICAOF", "127.0.0.1", &self.replica.port.to_string()])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn storage_through_sentinel_follows_a_failover() {
    let set = SentinelSet::start("gyremaster").await;
    let (master, replica, sentinel) = (&set.master, &set.replica, &set.sentinel);
    let f = json!({"storage_type": "redis", "reload_interval": "200ms",
                   "redis": {"sentinel_address": set.address(),
                             "sentinel_master_name": "gyremaster", "prefix": "gyretest",
                             "connect_timeout": "500ms", "io_timeout": "1s"}});
    let cfg = json!({"user_block": f});
    let s = server(cfg.clone()).await;
    let api = Api::new(&s);
    assert_eq!(
        api.call("block_user", json!({"user": "before"})).await,
        json!({"result": {}})
    );
    let on_master: Option<String> = master
        .query(&["HGET", "gyretest.protect.user_block", "before"])
        .await
        .unwrap();
    assert!(on_master.is_some(), "written to the master Sentinel named");
    eventually("the replica has caught up", async || {
        replica
            .query::<Option<String>>(&["HGET", "gyretest.protect.user_block", "before"])
            .await
            .is_ok_and(|v| v.is_some())
    })
    .await;
    // Fail over to the replica; writes follow the new master.
    set.fail_over().await;
    eventually("a write reaches the new master", async || {
        api.call("block_user", json!({"user": "after"})).await == json!({"result": {}})
    })
    .await;
    let on_new: Option<String> = replica
        .query(&["HGET", "gyretest.protect.user_block", "after"])
        .await
        .unwrap();
    assert!(on_new.is_some(), "written to the new master");
    // And a node started now loads both through the Sentinel (once the
    // Sentinel names the new master).
    s.shutdown().await;
    eventually("Sentinel names the new master", async || {
        sentinel
            .query::<Vec<String>>(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "gyremaster"])
            .await
            .is_ok_and(|a| a.get(1) == Some(&replica.port.to_string()))
    })
    .await;
    let s = server(cfg).await;
    assert_eq!(try_connect(&s, json!({"sub": "before"})).await, Err(3503));
    assert_eq!(try_connect(&s, json!({"sub": "after"})).await, Err(3503));
    s.shutdown().await;
}

#[tokio::test]
async fn storage_over_tls_to_redis() {
    // A Redis of our own that speaks TLS only, with a self-signed cert.
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, pkey) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&pkey, key.signing_key.serialize_pem()).unwrap();
    let port = OwnRedis::free_port();
    let mut child = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--tls-auth-clients",
            "no",
        ])
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&pkey)
        .arg("--tls-ca-cert-file")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    eventually("TLS Redis listens", async || {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    let f = |ca: &str| {
        json!({"user_block": {"storage_type": "redis", "redis": {
            "address": format!("rediss://127.0.0.1:{port}"), "prefix": "gyretest",
            "connect_timeout": "500ms", "io_timeout": "1s",
            "tls": {"enabled": true, "server_ca_pem": ca}}}})
    };
    // The server's certificate is verified against server_ca_pem (here a file path).
    let cfg = f(cert.to_str().unwrap());
    let s = server(cfg.clone()).await;
    Api::new(&s)
        .call("block_user", json!({"user": "tls"}))
        .await;
    s.shutdown().await;
    let s = server(cfg).await;
    assert_eq!(try_connect(&s, json!({"sub": "tls"})).await, Err(3503));
    s.shutdown().await;
    // Another CA: the connection is refused, and so is the start.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let c = gyre::config::load_value(base_config(f(&other.cert.pem())), &[], &[])
        .unwrap()
        .config;
    let err = gyre::app::start(c)
        .await
        .err()
        .expect("untrusted server refused")
        .to_string();
    assert!(err.contains("user_block"), "{err}");
    let _ = child.kill();
    let _ = child.wait();
}

/// The Redis engine through Sentinel (issue 10): publications cross nodes
/// before and after a failover; the nodes follow the new master by
/// themselves.
#[tokio::test]
async fn engine_through_sentinel_follows_a_failover() {
    let set = SentinelSet::start("gyreengine").await;
    let cfg = json!({"engine": {"type": "redis", "redis": {
        "sentinel_address": set.address(),
        "sentinel_master_name": "gyreengine", "prefix": "gyretest_engine",
        "connect_timeout": "500ms", "io_timeout": "1s"}}});
    let (a, b) = (server(cfg.clone()).await, server(cfg).await);
    let (mut ws, _) = Ws::connected(&b, &token(json!({"sub": "s1"}))).await;
    ws.subscribe(2, "chat:sentinel").await;
    let api = Api::new(&a);
    api.call("publish", json!({"channel": "chat:sentinel", "data": 1}))
        .await;
    assert_eq!(ws.recv().await["push"]["pub"]["data"], 1);
    set.fail_over().await;
    // Publications through A reach a subscriber on B again (a fresh one:
    // the old may have been told to recover meanwhile).
    let (mut fresh, _) = Ws::connected(&b, &token(json!({"sub": "s2"}))).await;
    eventually("subscribe through the new master", async || {
        fresh
            .send_json(json!({"id": 2, "subscribe": {"channel": "chat:after"}}))
            .await;
        fresh.recv().await.get("error").is_none()
    })
    .await;
    // The nodes move their PUB/SUB to the new master within a PING period
    // (2 s); until then a publication may not reach B: publish until one does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    'outer: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publication after the failover"
        );
        let _ = api
            .raw(
                "publish",
                &json!({"channel": "chat:after", "data": 2}).to_string(),
                &[("X-API-Key", KEY)],
            )
            .await;
        while let Some(Event::Frame(m)) = fresh.next(Duration::from_millis(300)).await {
            if m["push"]["pub"]["data"] == 2 {
                break 'outer;
            }
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}
