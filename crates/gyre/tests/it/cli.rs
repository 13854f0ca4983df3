//! The `gyre` binary: subcommands, flags and exit codes.

use std::process::{Command, Output};

fn gyre(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gyre"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("gyre runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn version_and_defaultconfig() {
    let d = tempfile::tempdir().unwrap();
    let o = gyre(&["version"], d.path());
    assert!(
        o.status.success() && text(&o).contains("Gyre v"),
        "{}",
        text(&o)
    );
    let o = gyre(&["defaultconfig"], d.path());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["client"]["ping_interval"], "25s");
    assert_eq!(v["http_server"]["port"], 8000);
}

#[test]
fn genconfig_then_tokens_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let o = gyre(&["genconfig", "-c", "c.json"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("c.json")).unwrap()).unwrap();
    assert!(
        v["client"]["token"]["hmac_secret_key"]
            .as_str()
            .unwrap()
            .len()
            >= 32
    );
    assert!(!v["http_api"]["key"].as_str().unwrap().is_empty());
    let again = gyre(&["genconfig", "-c", "c.json"], d.path());
    assert!(
        !again.status.success(),
        "genconfig must refuse to overwrite"
    );
    let y = gyre(&["genconfig", "-c", "c.yaml"], d.path());
    assert!(y.status.success());
    let o = gyre(&["checkconfig", "-c", "c.yaml"], d.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = gyre(
        &["gentoken", "-c", "c.json", "-u", "42", "-t", "3600"],
        d.path(),
    );
    assert!(
        text(&o).contains("HMAC SHA-256 JWT for user \"42\" with expiration TTL 1h"),
        "{}",
        text(&o)
    );
    let tok = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let o = gyre(&["checktoken", "-c", "c.json", &tok], d.path());
    assert!(
        o.status.success() && text(&o).contains("\"42\""),
        "{}",
        text(&o)
    );
    let o = gyre(&["checktoken", "-c", "c.yaml", &tok], d.path());
    assert!(!o.status.success(), "another secret must not verify");
    let o = gyre(
        &[
            "gensubtoken",
            "-c",
            "c.json",
            "-u",
            "42",
            "-s",
            "$chat:x",
            "-q",
        ],
        d.path(),
    );
    let sub = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let o = gyre(&["checksubtoken", "-c", "c.json", &sub], d.path());
    assert!(
        o.status.success() && text(&o).contains("$chat:x"),
        "{}",
        text(&o)
    );
    let o = gyre(
        &["gentoken", "-c", "c.json", "-u", "1", "-t", "-1", "-q"],
        d.path(),
    );
    assert!(o.status.success());
}

#[test]
fn checkconfig_strict_and_bad_values() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("u.json"), r#"{"client":{"tokne":{}}}"#).unwrap();
    let o = gyre(&["checkconfig", "-c", "u.json"], d.path());
    assert!(
        o.status.success() && text(&o).contains("client.tokne"),
        "{}",
        text(&o)
    );
    let o = gyre(&["checkconfig", "-c", "u.json", "--strict"], d.path());
    assert!(!o.status.success());
    std::fs::write(
        d.path().join("b.json"),
        r#"{"client":{"ping_interval":"soon"}}"#,
    )
    .unwrap();
    let o = gyre(&["checkconfig", "-c", "b.json"], d.path());
    assert!(
        !o.status.success() && text(&o).contains("client.ping_interval"),
        "{}",
        text(&o)
    );
    std::fs::write(d.path().join("t.toml"), "[http_api]\nkey = 5\n").unwrap();
    let o = gyre(&["checkconfig", "-c", "t.toml"], d.path());
    assert!(
        !o.status.success() && text(&o).contains("http_api.key"),
        "{}",
        text(&o)
    );
    let o = gyre(&["-c", "missing.json"], d.path());
    assert!(
        !o.status.success() && text(&o).contains("missing.json"),
        "{}",
        text(&o)
    );
    std::fs::write(d.path().join("bad.json"), "{nope").unwrap();
    let o = gyre(&["-c", "bad.json"], d.path());
    assert!(
        !o.status.success() && text(&o).contains("cannot parse"),
        "{}",
        text(&o)
    );
}

fn health_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut buf = [0u8; 12];
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_ok()
        && s.read_exact(&mut buf).is_ok()
        && buf.starts_with(b"HTTP/1.1 200")
}

#[test]
fn server_env_and_flags_then_admin_verbs() {
    let d = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        d.path().join("config.json"),
        r#"{"http_api":{"key":"filekey"},"http_server":{"port":1}}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gyre"))
        .args(["-p", &port.to_string()])
        .current_dir(d.path())
        .env("CENTRIFUGO_HTTP_API_KEY", "envkey")
        .env("CENTRIFUGO_HEALTH_ENABLED", "true")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        // Ready = /health answers (a bare connect can self-connect on an ephemeral port).
        if health_ok(port) {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "server listens on the -p port (flag beats file)");
    let o = gyre(
        &[
            "block-user",
            "42",
            "--expire-in",
            "1h",
            "--reason",
            "spam",
            "--api-url",
            &format!("{url}/api"),
            "--api-key",
            "envkey",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = gyre(
        &[
            "block-list",
            "--api-url",
            &format!("{url}/api"),
            "--api-key",
            "envkey",
        ],
        d.path(),
    );
    assert!(text(&o).contains("\"spam\""), "{}", text(&o));
    let o = gyre(
        &[
            "unblock-user",
            "42",
            "--api-url",
            &format!("{url}/api"),
            "--api-key",
            "filekey",
        ],
        d.path(),
    );
    assert!(
        !o.status.success() && text(&o).contains("401"),
        "env beats file: {}",
        text(&o)
    );
    let o = gyre(
        &[
            "revoke-token",
            "jti-1",
            "--expire-in",
            "10m",
            "--api-url",
            &format!("{url}/api"),
            "--api-key",
            "envkey",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = gyre(
        &[
            "invalidate-user-tokens",
            "42",
            "--api-url",
            &format!("{url}/api"),
            "--api-key",
            "envkey",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = gyre(
        &[
            "connections",
            "42",
            "--api-url",
            &format!("{url}/api"),
            "--api-key",
            "envkey",
        ],
        d.path(),
    );
    assert!(
        o.status.success() && text(&o).contains("connections"),
        "{}",
        text(&o)
    );
    // SIGTERM: graceful exit with status 0.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A server started from the binary for the admin-verb tests, killed when
/// dropped (also when an assertion fails first).
struct Running {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Running {
    fn start(key: &str) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::json!({"http_api": {"key": key}, "health": {"enabled": true}}).to_string(),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gyre"))
            .args(["-p", &port.to_string()])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let s = Running { child, port, dir };
        for _ in 0..100 {
            if health_ok(port) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("server did not start on port {port}");
    }

    /// Runs a verb with `-c config.json`, so the API address and key come
    /// from the server's own config and its `-p` override.
    fn verb(&self, args: &[&str]) -> Output {
        let port = self.port.to_string();
        let mut all = vec!["-c", "config.json", "-p", &port];
        all.extend_from_slice(args);
        gyre(&all, self.dir.path())
    }

    /// Calls the server API directly and returns the whole answer.
    fn api(&self, method: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/api/{method}", self.port);
        let key = serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(self.dir.path().join("config.json")).unwrap(),
        )
        .unwrap()["http_api"]["key"]
            .as_str()
            .unwrap()
            .to_string();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                reqwest::Client::new()
                    .post(url)
                    .header("X-API-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap()
            })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn unrevoke_and_channel_invalidation_verbs() {
    use serde_json::json;
    let s = Running::start("verbkey");
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "{}");
    };
    // revoke-token, then unrevoke-token removes the entry.
    ok(s.verb(&["revoke-token", "jti-9", "--expire-in", "10m"]));
    let listed = s.api("revoked_tokens", json!({}));
    assert_eq!(listed["result"]["tokens"][0]["uid"], "jti-9", "{listed}");
    ok(s.verb(&["unrevoke-token", "jti-9"]));
    assert_eq!(
        s.api("revoked_tokens", json!({})),
        json!({"result": {"tokens": []}})
    );
    // invalidate-user-tokens with and without --channel: two entries.
    ok(s.verb(&[
        "invalidate-user-tokens",
        "42",
        "--channel",
        "$chat:s",
        "--expire-in",
        "1h",
        "--reason",
        "leak",
    ]));
    ok(s.verb(&["invalidate-user-tokens", "42"]));
    let channels = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["result"]["invalidations"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|i| {
                assert_eq!(i["user"], "42", "{i}");
                i["channel"].clone()
            })
            .collect()
    };
    let listed = s.api("user_tokens_invalidations", json!({"user": "42"}));
    let mut got = channels(&listed);
    got.sort_by_key(|c| c.to_string());
    assert_eq!(got, vec![json!("$chat:s"), json!(null)], "{listed}");
    let with_channel = listed["result"]["invalidations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["channel"] == "$chat:s")
        .unwrap()
        .clone();
    assert_eq!(with_channel["reason"], "leak");
    assert!(with_channel["expire_at"].as_i64().unwrap() > 0);
    // clear-user-tokens-invalidation --channel removes only that channel's
    // entry; without --channel, the connection-token one.
    ok(s.verb(&[
        "clear-user-tokens-invalidation",
        "42",
        "--channel",
        "$chat:s",
    ]));
    let listed = s.api("user_tokens_invalidations", json!({"user": "42"}));
    assert_eq!(channels(&listed), vec![json!(null)], "{listed}");
    ok(s.verb(&["clear-user-tokens-invalidation", "42"]));
    assert_eq!(
        s.api("user_tokens_invalidations", json!({})),
        json!({"result": {"invalidations": []}})
    );
    // An API error is exit status 1 with the method and the error.
    let o = s.verb(&["unrevoke-token", ""]);
    assert!(
        !o.status.success()
            && text(&o).contains("unrevoke_token failed")
            && text(&o).contains("107"),
        "{}",
        text(&o)
    );
    let o = s.verb(&["clear-user-tokens-invalidation", ""]);
    assert!(
        !o.status.success() && text(&o).contains("clear_user_tokens_invalidation failed"),
        "{}",
        text(&o)
    );
    // Both verbs are listed in the help.
    let o = s.verb(&["--help"]);
    assert!(
        text(&o).contains("unrevoke-token") && text(&o).contains("clear-user-tokens-invalidation"),
        "{}",
        text(&o)
    );
}
