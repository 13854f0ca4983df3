//! Fixed-iteration runs of Gyre's hot paths for instruction counting, so a
//! before/after comparison is repeatable on a noisy machine (wall-clock
//! benches are in `benches/hot_paths.rs`). Each path's measured loop is a
//! `#[inline(never)]` function named `measured_*`; count only it:
//!
//! ```sh
//! cargo build --release -p gyre --example hot_path_counts
//! valgrind --tool=callgrind --toggle-collect='*measured_*' \
//!   target/release/examples/hot_path_counts fanout
//! ```
//!
//! and divide the total `Ir` by the iterations the program prints
//! (`scripts/callgrind.sh` does all of this for every path).

use bytes::Bytes;
use gyre::client::Session;
use gyre::node::Node;
use gyre::node::handle::ClientHandle;
use gyre::node::hub::{Hub, Subscriber};
use gyre::node::outbox::Out;
use gyre::protect::Protect;
use gyre::protocol::{ProtocolKind, PushFrames};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;

fn node() -> Arc<Node> {
    let v = json!({
        "log": {"level": "error"},
        "client": {"token": {"hmac_secret_key": "bench-secret"}},
        "channel": {"namespaces": [{"name": "chat", "allow_subscribe_for_client": true, "allow_publish_for_subscriber": true, "history_size": 100, "history_ttl": "60s"}]}
    });
    Node::new(gyre::config::load_value(v, &[], &[]).unwrap().config).unwrap()
}

fn handle(i: usize) -> Arc<ClientHandle> {
    ClientHandle::detached(&format!("client-{i}"), &format!("user-{i}"), 1 << 20)
}

/// One publication to 10,000 local subscribers, `iters` times.
fn fanout(iters: usize) -> usize {
    let hub = Hub::new();
    let handles: Vec<_> = (0..10_000).map(handle).collect();
    for h in &handles {
        hub.subscribe(
            "news",
            Subscriber {
                handle: h.clone(),
                join_leave: false,
                proto: ProtocolKind::Json,
            },
        );
    }
    let frame = Bytes::from_static(
        br#"{"push":{"channel":"news","pub":{"data":{"text":"hello world"},"offset":1}}}"#,
    );
    let mut sink: Vec<Out> = Vec::new();
    for _ in 0..iters {
        measured_fanout(&hub, &frame);
        for h in &handles {
            h.outbox.drain(&mut sink);
            sink.clear();
        }
    }
    iters * handles.len()
}

#[inline(never)]
fn measured_fanout(hub: &Hub, frame: &Bytes) {
    let frames = PushFrames::new(|_| frame.clone());
    black_box(hub.broadcast("news", &frames, false));
}

/// Decode and dispatch of a frame of 10 `publish` commands, `iters` times.
fn dispatch(iters: usize) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = node();
    let mut s = Session::new(n, Default::default());
    let t = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "42"}),
        &EncodingKey::from_secret(b"bench-secret"),
    )
    .unwrap();
    let mut out = Vec::new();
    for cmd in [
        json!({"id": 1, "connect": {"token": t}}),
        json!({"id": 2, "subscribe": {"channel": "chat:a"}}),
    ] {
        rt.block_on(s.handle_frame(cmd.to_string().as_bytes(), &mut out))
            .unwrap();
    }
    let frame: Vec<String> = (0..10)
        .map(|i| json!({"id": 10 + i, "publish": {"channel": "chat:a", "data": {"text": "hello", "n": i}}}).to_string())
        .collect();
    let frame = frame.join("\n");
    let mut q = Vec::new();
    for _ in 0..iters {
        out.clear();
        measured_dispatch(&rt, &mut s, frame.as_bytes(), &mut out);
        if let Some(h) = s.handle() {
            h.outbox.drain(&mut q);
            q.clear();
        }
    }
    iters * 10
}

#[inline(never)]
fn measured_dispatch(
    rt: &tokio::runtime::Runtime,
    s: &mut Session,
    frame: &[u8],
    out: &mut Vec<Bytes>,
) {
    rt.block_on(s.handle_frame(frame, out)).unwrap();
}

/// A whole `connect` (HS256 JWT, protective checks, registration) on a
/// fresh session, then its clean-up, `iters` times.
fn connect(iters: usize) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = node();
    let now = gyre::auth::now();
    let t = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "42", "exp": now + 3600, "iat": now, "jti": "0b7c1f9e-6a3d-4e2b-9f10-23456789abcd"}),
        &EncodingKey::from_secret(b"bench-secret"),
    )
    .unwrap();
    let frame = json!({"id": 1, "connect": {"token": t}}).to_string();
    let mut out = Vec::new();
    for _ in 0..iters {
        out.clear();
        let mut s = Session::new(n.clone(), Default::default());
        measured_connect(&rt, &mut s, frame.as_bytes(), &mut out);
        s.close();
    }
    iters
}

#[inline(never)]
fn measured_connect(
    rt: &tokio::runtime::Runtime,
    s: &mut Session,
    frame: &[u8],
    out: &mut Vec<Bytes>,
) {
    rt.block_on(s.handle_frame(frame, out)).unwrap();
}

/// The connect-path protective check (blocked? token revoked or
/// invalidated?) against 100,000 blocked users and 100,000 revoked jtis.
fn protect(iters: usize) -> usize {
    let p = Protect::new();
    let now = gyre::auth::now();
    let exp = now + 3600;
    for i in 0..100_000u32 {
        p.block(&format!("user-{i}"), exp, None, now);
        let id = uuid::Uuid::from_u128(
            (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
        )
        .hyphenated()
        .to_string();
        p.revoke(&id, exp, None, now);
    }
    let users: Vec<String> = (0..1024).map(|i| format!("visitor-{i}")).collect();
    let jtis: Vec<String> = (0..1024u128)
        .map(|i| {
            uuid::Uuid::from_u128(i.wrapping_mul(0x1234_5678_9ABC_DEF1) ^ 0xFFFF)
                .hyphenated()
                .to_string()
        })
        .collect();
    for i in 0..iters {
        let k = i & 1023;
        measured_protect(&p, &users[k], &jtis[k], now);
    }
    iters
}

#[inline(never)]
fn measured_protect(p: &Protect, user: &str, jti: &str, now: i64) {
    black_box(p.is_blocked(user, now));
    black_box(p.check_token(user, Some(jti), now - 10, now));
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let ops = match path.as_str() {
        "fanout" => fanout(20),
        "dispatch" => dispatch(2_000),
        "connect" => connect(2_000),
        "protect" => protect(100_000),
        _ => {
            eprintln!("usage: hot_path_counts fanout|dispatch|connect|protect");
            std::process::exit(2);
        }
    };
    println!("{path}: {ops} operations");
}
