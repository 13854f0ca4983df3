//! Smoke test: every scenario with tiny counts against the real `gyre` binary.
//!
//! The binary is `$GYRE_BIN` (which must then exist), else the `gyre` next to
//! this package's binary (same target directory), else
//! `../../target/debug/gyre`. When none exists the test is skipped with a
//! note, except under `CI`, where it fails.

use serde_json::Value;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LOADGEN: &str = env!("CARGO_BIN_EXE_gyre-loadgen");

fn gyre_bin() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("GYRE_BIN").map(PathBuf::from) {
        assert!(
            explicit.is_file(),
            "GYRE_BIN={} is not a file",
            explicit.display()
        );
        return Some(explicit);
    }
    let candidates = [
        Path::new(LOADGEN).parent().map(|d| d.join("gyre")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/gyre")),
    ];
    if let Some(found) = candidates.iter().flatten().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "gyre binary not found (tried {candidates:?}); build it first (`cargo build -p gyre`) or set GYRE_BIN"
    );
    eprintln!(
        "SKIPPED: gyre binary not found (tried {candidates:?}); run `cargo build -p gyre` or set GYRE_BIN"
    );
    None
}

/// A running gyre, killed on drop.
struct Server {
    child: Child,
    port: u16,
    config: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

fn start(bin: &Path) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = std::env::temp_dir().join(format!(
        "gyre-loadgen-smoke-{}-{port}.json",
        std::process::id()
    ));
    let body = format!(
        r#"{{"http_server":{{"port":{port}}},"client":{{"token":{{"hmac_secret_key":"s"}}}},"http_api":{{"key":"k"}},"channel":{{"without_namespace":{{"allow_subscribe_for_client":true}}}},"log":{{"level":"error"}},"health":{{"enabled":true}}}}"#
    );
    std::fs::File::create(&config)
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server {
        child,
        port,
        config,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    // Ready means Gyre answers HTTP: a bare TCP connect can succeed by
    // connecting to itself when nothing listens yet on an ephemeral port.
    while !healthy(port) {
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("gyre exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "gyre did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// True once `GET /health` answers 200.
fn healthy(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    use std::io::Read;
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

/// Runs the loadgen with `args` and returns its final JSON line.
fn loadgen(server: &Server, args: &[&str]) -> Value {
    let port = server.port;
    let url = format!("ws://127.0.0.1:{port}/connection/websocket");
    let api = format!("http://127.0.0.1:{port}/api");
    let pid = server.child.id().to_string();
    let out = Command::new(LOADGEN)
        .args(args)
        .args([
            "--url",
            &url,
            "--api-url",
            &api,
            "--api-key",
            "k",
            "--secret",
            "s",
        ])
        .args([
            "--server-pid",
            &pid,
            "--max-time",
            "60",
            "--concurrency",
            "4",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown by the test harness only when an assertion below fails.
    eprintln!("{args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        out.status.success(),
        "{args:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("no output");
    let v: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"));
    assert!(stdout.contains("== gyre-loadgen"), "no table in:\n{stdout}");
    v
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

#[test]
fn scenarios_against_gyre() {
    let Some(bin) = gyre_bin() else { return };
    let server = start(&bin);

    let idle = loadgen(
        &server,
        &["idle", "--connections", "5", "--hold", "1", "--procs", "2"],
    );
    assert_eq!(idle["scenario"], "idle");
    assert_eq!(num(&idle, "opened"), 5.0, "{idle}");
    assert_eq!(num(&idle, "failed"), 0.0);
    assert_eq!(num(&idle, "ended_during_hold"), 0.0);
    assert!(num(&idle, "connect_rate_per_s") > 0.0);
    assert!(num(&idle, "server_rss_after_hold_kib") > 0.0);
    assert!(num(&idle, "open_server_cpu_s") >= 0.0);

    let connect = loadgen(&server, &["connect", "--connections", "5"]);
    assert_eq!(num(&connect, "connected"), 5.0);
    assert_eq!(num(&connect, "failed"), 0.0);
    assert!(num(&connect, "connects_per_s") > 0.0);
    assert!(num(&connect, "connect_reply_p99_ms") >= num(&connect, "connect_reply_p50_ms"));

    let fanout = loadgen(
        &server,
        &[
            "fanout",
            "--subscribers",
            "5",
            "--rate",
            "20",
            "--duration",
            "1",
        ],
    );
    assert_eq!(num(&fanout, "published"), 20.0);
    assert_eq!(num(&fanout, "expected"), 100.0);
    assert!(num(&fanout, "received") > 0.0);
    assert_eq!(num(&fanout, "loss"), 0.0);
    assert!(num(&fanout, "latency_max_ms") > 0.0);

    let block = loadgen(
        &server,
        &[
            "block",
            "--connections",
            "6",
            "--user-connections",
            "2",
            "--revoke",
        ],
    );
    assert_eq!(num(&block, "block_closes_seen"), 2.0);
    assert_eq!(num(&block, "revoke_closes_seen"), 2.0);
    assert_eq!(num(&block, "block_wrong_code"), 0.0);
    assert_eq!(num(&block, "revoke_wrong_code"), 0.0);
    assert_eq!(num(&block, "others_closed"), 0.0);
    assert_eq!(block["ok"], true, "{block}");

    // Rounds: fresh users each time, all closes in one histogram.
    let rounds = loadgen(
        &server,
        &[
            "block",
            "--connections",
            "3",
            "--user-connections",
            "1",
            "--rounds",
            "3",
            "--grace-ms",
            "50",
        ],
    );
    assert_eq!(num(&rounds, "rounds"), 3.0);
    assert_eq!(num(&rounds, "opened"), 9.0);
    assert_eq!(num(&rounds, "block_targets"), 3.0);
    assert_eq!(num(&rounds, "block_closes_seen"), 3.0);
    assert_eq!(num(&rounds, "block_api_failed"), 0.0);
    assert!(num(&rounds, "block_close_p99_ms") >= num(&rounds, "block_close_p50_ms"));
    assert_eq!(num(&rounds, "others_closed"), 0.0);
    assert_eq!(rounds["ok"], true, "{rounds}");
}

#[test]
fn refuses_non_loopback_targets() {
    for url in [
        "ws://10.1.2.3:8000/connection/websocket",
        "ws://example.com/connection/websocket",
    ] {
        let out = Command::new(LOADGEN)
            .args([
                "connect",
                "--connections",
                "1",
                "--secret",
                "s",
                "--url",
                url,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refusing"),
            "{url}"
        );
    }
}
