//! Criterion benches for Gyre's hot paths (issue 3/4/5): JWT verification per
//! algorithm, decode + dispatch of a command batch, fan-out of one
//! publication to 10,000 local subscribers, hub subscribe/unsubscribe, and
//! the protective check with 1 million blocked users and revoked jtis.
//!
//! Run: `cargo bench -p gyre --bench hot_paths`.

mod fixture;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gyre::auth::TokenVerifier;
use gyre::node::hub::Hub;
use gyre::node::outbox::Out;
use gyre::protocol::PushFrames;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/");

fn key(name: &str) -> String {
    std::fs::read_to_string(format!("{KEYS}{name}")).unwrap()
}

fn claims() -> serde_json::Value {
    json!({"sub": "42", "exp": gyre::auth::now() + 3600, "iat": gyre::auth::now(), "jti": "0b7c1f9e-6a3d-4e2b-9f10-23456789abcd", "channels": ["news"]})
}

fn jwt(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut cfg = gyre::config::Client::default();
    cfg.token.hmac_secret_key = "bench-secret".into();
    cfg.token.rsa_public_key = key("rsa_public.pem");
    cfg.token.ecdsa_public_key = key("ec256_public.pem");
    let v = TokenVerifier::new(&cfg).unwrap();
    let mut cfg384 = gyre::config::Client::default();
    cfg384.token.ecdsa_public_key = key("ec384_public.pem");
    let v384 = TokenVerifier::new(&cfg384).unwrap();
    let hs = EncodingKey::from_secret(b"bench-secret");
    let rsa = EncodingKey::from_rsa_pem(key("rsa_private.pem").as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(key("ec256_private.pem").as_bytes()).unwrap();
    let ec384 = EncodingKey::from_ec_pem(key("ec384_private.pem").as_bytes()).unwrap();
    let mut g = c.benchmark_group("jwt_verify");
    let cases: Vec<(&str, Algorithm, &EncodingKey, &TokenVerifier)> = vec![
        ("HS256", Algorithm::HS256, &hs, &v),
        ("HS384", Algorithm::HS384, &hs, &v),
        ("HS512", Algorithm::HS512, &hs, &v),
        ("RS256", Algorithm::RS256, &rsa, &v),
        ("RS512", Algorithm::RS512, &rsa, &v),
        ("ES256", Algorithm::ES256, &ec, &v),
        ("ES384", Algorithm::ES384, &ec384, &v384),
    ];
    for (name, alg, k, verifier) in cases {
        let t = encode(&Header::new(alg), &claims(), k).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(verifier.verify_connect(black_box(&t))).unwrap())
        });
    }
    g.finish();
}

fn dispatch(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut s = fixture::subscribed_session(&rt, &fixture::node());
    let mut out = Vec::new();
    let frame = fixture::publish_batch();
    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(10));
    g.bench_function("decode_only_batch_of_10_publish", |b| {
        b.iter(|| gyre::protocol::decode_frame(black_box(frame.as_bytes())).unwrap())
    });
    g.bench_function("decode_and_dispatch_batch_of_10_publish", |b| {
        b.iter(|| {
            out.clear();
            rt.block_on(s.handle_frame(black_box(frame.as_bytes()), &mut out))
                .unwrap();
            // Drain the own-publication echoes so the queue never fills.
            if let Some(h) = s.handle() {
                let mut q = Vec::new();
                h.outbox.drain(&mut q);
            }
        })
    });
    g.finish();
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for subs in [1_000usize, 10_000] {
        let (hub, handles) = fixture::subscribed_hub(subs);
        let frame = Bytes::from_static(fixture::NEWS_PUSH);
        g.throughput(Throughput::Elements(subs as u64));
        g.bench_with_input(
            BenchmarkId::new("broadcast_to_local_subscribers", subs),
            &subs,
            |b, _| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut sink: Vec<Out> = Vec::new();
                    for _ in 0..iters {
                        let start = Instant::now();
                        let frames = PushFrames::new(|_| frame.clone());
                        black_box(hub.broadcast("news", &frames, false));
                        total += start.elapsed();
                        for h in &handles {
                            h.outbox.drain(&mut sink);
                            sink.clear();
                        }
                    }
                    total
                })
            },
        );
    }
    let hub = Hub::new();
    let h = fixture::handle(0);
    g.throughput(Throughput::Elements(1));
    g.bench_function("hub_subscribe_unsubscribe", |b| {
        b.iter(|| {
            hub.subscribe(black_box("news:1"), fixture::subscriber(&h));
            hub.unsubscribe(black_box("news:1"), &h.id);
        })
    });
    g.finish();
}

fn protect(c: &mut Criterion) {
    let now = gyre::auth::now();
    let exp = now + 3600;
    let p = fixture::filled_protect(1_000_000, now);
    p.invalidate("user-5", now, exp, None, now);
    let hit_jti = fixture::revoked_jti(7);
    let miss_jti = "0b7c1f9e-6a3d-4e2b-9f10-23456789abcd".to_string();
    let mut g = c.benchmark_group("protect_check_1m_users_1m_jtis");
    g.bench_function("connect_path_allowed_user", |b| {
        b.iter(|| {
            let blocked = p.is_blocked(black_box("someone-else"), now);
            let v = p.check_token(
                black_box("someone-else"),
                Some(black_box(&miss_jti)),
                now - 10,
                now,
            );
            (blocked, v)
        })
    });
    // Varying keys: every probe lands somewhere else in the 1M-entry tables,
    // so cache misses are part of the figure.
    let (users, jtis) = fixture::miss_keys(4096);
    let mut k = 0usize;
    g.bench_function("connect_path_allowed_user_varying_keys", |b| {
        b.iter(|| {
            k = (k + 1) & 4095;
            let blocked = p.is_blocked(&users[k], now);
            let v = p.check_token(&users[k], Some(&jtis[k]), now - 10, now);
            (blocked, v)
        })
    });
    g.bench_function("connect_path_blocked_user", |b| {
        b.iter(|| p.is_blocked(black_box("user-77"), now))
    });
    g.bench_function("connect_path_revoked_jti", |b| {
        b.iter(|| p.check_token(black_box("u"), Some(black_box(&hit_jti)), 0, now))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = jwt, dispatch, fanout, protect
}
criterion_main!(benches);
