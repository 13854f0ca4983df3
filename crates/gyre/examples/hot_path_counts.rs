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

#[path = "../benches/fixture/mod.rs"]
mod fixture;

use bytes::Bytes;
use gyre::client::Session;
use gyre::node::hub::Hub;
use gyre::node::outbox::Out;
use gyre::protect::Protect;
use gyre::protocol::PushFrames;
use serde_json::json;
use std::hint::black_box;

/// One publication to 10,000 local subscribers, `iters` times.
fn fanout(iters: usize) -> usize {
    let (hub, handles) = fixture::subscribed_hub(10_000);
    let frame = Bytes::from_static(fixture::NEWS_PUSH);
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

/// One publication encoded (once per protocol kind present) and handed to
/// 10,000 subscribers, all JSON or half JSON and half protobuf, `iters`
/// times: what a second encoding costs fan-out.
fn fanout_encoded(iters: usize, mixed: bool) -> usize {
    let (hub, handles) = fixture::subscribed_hub_kinds(10_000, mixed);
    let p = gyre::protocol::Publication {
        data: gyre::protocol::share(
            serde_json::value::RawValue::from_string(r#"{"text":"hello world"}"#.into()).unwrap(),
        )
        .into(),
        info: None,
        offset: 1,
        tags: None,
    };
    let mut sink: Vec<Out> = Vec::new();
    for _ in 0..iters {
        measured_fanout_encoded(&hub, &p);
        for h in &handles {
            h.outbox.drain(&mut sink);
            sink.clear();
        }
    }
    iters * handles.len()
}

#[inline(never)]
fn measured_fanout_encoded(hub: &Hub, p: &gyre::protocol::Publication) {
    let frames = PushFrames::new(|kind| kind.push("news", gyre::protocol::Push::Pub(p)));
    black_box(hub.broadcast("news", &frames, false));
}

/// [`dispatch`] with the same 10 commands as one protobuf frame.
fn dispatch_protobuf(iters: usize) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut s = fixture::subscribed_protobuf_session(&rt, &fixture::node());
    let frame = fixture::publish_batch_protobuf();
    let mut out = Vec::new();
    let mut q = Vec::new();
    for _ in 0..iters {
        out.clear();
        measured_dispatch(&rt, &mut s, &frame, &mut out);
        if let Some(h) = s.handle() {
            h.outbox.drain(&mut q);
            q.clear();
        }
    }
    iters * 10
}

/// Decode and dispatch of a frame of 10 `publish` commands, `iters` times.
fn dispatch(iters: usize) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut s = fixture::subscribed_session(&rt, &fixture::node());
    let frame = fixture::publish_batch();
    let mut out = Vec::new();
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
    let n = fixture::node();
    let now = gyre::auth::now();
    let t = fixture::token(
        json!({"sub": "42", "exp": now + 3600, "iat": now, "jti": "0b7c1f9e-6a3d-4e2b-9f10-23456789abcd"}),
    );
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
    let now = gyre::auth::now();
    let p = fixture::filled_protect(100_000, now);
    let (users, jtis) = fixture::miss_keys(1024);
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
        "dispatch_pb" => dispatch_protobuf(2_000),
        "fanout_json" => fanout_encoded(20, false),
        "fanout_mixed" => fanout_encoded(20, true),
        "connect" => connect(2_000),
        "protect" => protect(100_000),
        _ => {
            eprintln!(
                "usage: hot_path_counts fanout|fanout_json|fanout_mixed|dispatch|dispatch_pb|connect|protect"
            );
            std::process::exit(2);
        }
    };
    println!("{path}: {ops} operations");
}
