//! Abuse: idle and slow sockets, keyless and stalled API bodies, odd
//! transfer codings, and frames whose replies would grow without bound.
//! Each test holds only a handful of sockets, with test-sized limits.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes (or resets); returns what was read, or
/// `None` if the socket is still open after `within`.
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let deadline = Instant::now() + within;
    loop {
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&buf).into_owned()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads one response head (up to the blank line) within `within`.
async fn read_head(tcp: &mut TcpStream, within: Duration) -> String {
    let mut buf = Vec::new();
    let deadline = Instant::now() + within;
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut chunk = [0u8; 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            other => panic!(
                "no response head: {other:?}, got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn health_ok(s: &gyre::app::Server) {
    let r = reqwest::get(format!("http://{}/health", s.addr))
        .await
        .expect("health reachable");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn idle_and_slowloris_sockets_are_closed_while_others_are_served() {
    let s =
        server(json!({"http_server": {"read_header_timeout": "1s"}, "health": {"enabled": true}}))
            .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // Slowloris: a request line, then a header byte every 200 ms.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut t = TcpStream::connect(s.addr).await.unwrap();
        t.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: ")
            .await
            .unwrap();
        slow.push(t);
    }
    let drip = {
        let mut slow = std::mem::take(&mut slow);
        tokio::spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                for t in slow.iter_mut() {
                    if t.write_all(b"a").await.is_err() {
                        return slow;
                    }
                }
            }
            slow
        })
    };
    // Meanwhile a fresh client is served: WebSocket connect and /health.
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    health_ok(&s).await;
    for mut t in idle {
        let got = read_to_close(&mut t, Duration::from_secs(10)).await;
        assert_eq!(
            got.as_deref(),
            Some(""),
            "idle socket closed with nothing sent"
        );
    }
    let mut slow = drip.await.unwrap();
    for t in slow.iter_mut() {
        assert!(
            read_to_close(t, Duration::from_secs(10)).await.is_some(),
            "slowloris socket closed"
        );
    }
    // The WebSocket is not subject to the HTTP header timeout once upgraded.
    ws.send_json(json!({"id": 2, "presence_stats": {"channel": "chat:x"}}))
        .await;
    assert_eq!(ws.recv().await["id"], 2);
}

#[tokio::test]
async fn keep_alive_connections_are_closed_when_idle() {
    let s =
        server(json!({"http_server": {"read_header_timeout": "1s"}, "health": {"enabled": true}}))
            .await;
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut t, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        read_to_close(&mut t, Duration::from_secs(10))
            .await
            .is_some(),
        "an idle keep-alive connection is closed after read_header_timeout"
    );
}

#[tokio::test]
async fn the_oldest_waiting_connections_make_room_for_new_ones() {
    let s = server(json!({
        "http_server": {"read_header_timeout": "60s", "max_pending_connections": 4},
        "prometheus": {"enabled": true},
        "health": {"enabled": true}
    }))
    .await;
    let mut socks = Vec::new();
    for _ in 0..8 {
        socks.push(TcpStream::connect(s.addr).await.unwrap());
        // Accept order is connect order only if each is accepted first.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (old, new) = socks.split_at_mut(4);
    for t in old.iter_mut() {
        assert_eq!(
            read_to_close(t, Duration::from_secs(5)).await.as_deref(),
            Some(""),
            "the four oldest silent sockets were closed"
        );
    }
    for t in new.iter_mut() {
        assert!(
            read_to_close(t, Duration::from_millis(300)).await.is_none(),
            "the four newest are still open"
        );
    }
    // A real client still gets through (evicting one more silent socket).
    health_ok(&s).await;
    let m = metrics(&s).await;
    let evicted: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("gyre_http_pending_evicted_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(evicted >= 5, "{m}");
}

#[tokio::test]
async fn keyless_requests_are_refused_before_the_body_arrives() {
    let s = server(json!({})).await;
    for (path, key) in [
        ("/api/publish", ""),
        ("/api", ""),
        ("/api/publish", "X-API-Key: wrong\r\n"),
        ("/api", "Authorization: apikey wrong\r\n"),
    ] {
        let mut t = TcpStream::connect(s.addr).await.unwrap();
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: x\r\n{key}Content-Length: 2000000\r\n\r\n");
        t.write_all(head.as_bytes()).await.unwrap();
        t.write_all(&[b' '; 1000]).await.unwrap();
        // The rest of the declared body never comes; the answer must.
        let got = read_head(&mut t, Duration::from_secs(5)).await;
        assert!(got.starts_with("HTTP/1.1 401"), "{path} {key:?}: {got}");
    }
}

#[tokio::test]
async fn stalled_api_bodies_time_out() {
    let s = server(json!({
        "http_server": {"read_timeout": "1s"},
        "prometheus": {"enabled": true}
    }))
    .await;
    // A declared length that never arrives.
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(
        format!(
            "POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: 100\r\n\r\n{{}}"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = read_to_close(&mut t, Duration::from_secs(10))
        .await
        .expect("closed");
    assert!(got.starts_with("HTTP/1.1 500"), "{got}");
    // A chunked body that never ends.
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(
        format!(
            "POST /api HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = read_to_close(&mut t, Duration::from_secs(10))
        .await
        .expect("closed");
    assert!(got.starts_with("HTTP/1.1 500"), "{got}");
    let m = metrics(&s).await;
    assert!(m.contains("gyre_http_body_timeouts_total 2"), "{m}");
    // A body over the API's cap is refused outright.
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(
        format!("POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Length: 3000000\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let got = read_head(&mut t, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
}

#[tokio::test]
async fn transfer_codings_other_than_chunked_are_501() {
    let s = server(json!({})).await;
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(
        format!(
            "POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = read_to_close(&mut t, Duration::from_secs(5))
        .await
        .expect("connection closed after 501");
    assert!(got.starts_with("HTTP/1.1 501"), "{got}");
    assert!(got.contains("Unsupported transfer encoding"), "{got}");
    // Plain chunked still works.
    let mut t = TcpStream::connect(s.addr).await.unwrap();
    t.write_all(
        format!(
            "POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = read_to_close(&mut t, Duration::from_secs(5)).await.unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn replies_of_one_frame_count_against_the_queue_limit() {
    let s = server(json!({
        "client": {"queue_max_size": 65536},
        "prometheus": {"enabled": true}
    }))
    .await;
    let api = Api::new(&s);
    let data = "x".repeat(1000);
    for _ in 0..10 {
        api.call("publish", json!({"channel": "chat:h", "data": {"t": data}}))
            .await;
    }
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "1"}))).await;
    ws.subscribe(2, "chat:h").await;
    // One frame, 200 history commands: each reply is ~10 KB, 2 MB in all.
    let frame: Vec<String> = (0..200)
        .map(|i| json!({"id": 10 + i, "history": {"channel": "chat:h", "limit": 10}}).to_string())
        .collect();
    ws.send(&frame.join("\n")).await;
    let mut replies = 0;
    let close = loop {
        match ws.next(Duration::from_secs(5)).await {
            Some(Event::Frame(v)) if v.get("history").is_some() => replies += 1,
            Some(Event::Frame(_)) => {}
            Some(Event::Close(c, r)) => break (c, r),
            other => panic!("expected 3008, got {other:?}"),
        }
    };
    assert_eq!(close, (3008, "slow".into()));
    assert!(
        replies < 10,
        "replies over the limit are not sent: {replies}"
    );
    let m = metrics(&s).await;
    assert!(m.contains("gyre_client_slow_disconnects_total 1"), "{m}");
    // A frame whose replies fit is answered whole.
    let (mut ws, _) = Ws::connected(&s, &token(json!({"sub": "2"}))).await;
    ws.subscribe(2, "chat:h").await;
    let frame: Vec<String> = (0..5)
        .map(|i| json!({"id": 10 + i, "history": {"channel": "chat:h", "limit": 10}}).to_string())
        .collect();
    ws.send(&frame.join("\n")).await;
    for i in 0..5 {
        let r = ws.recv().await;
        assert_eq!(r["id"], 10 + i);
        assert_eq!(r["history"]["publications"].as_array().unwrap().len(), 10);
    }
}
