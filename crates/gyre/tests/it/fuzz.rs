//! Property tests: whatever bytes arrive, the frame decoder, a live session
//! and the API executor answer (or refuse) without panicking, and a refusal
//! is always Centrifugo's code (3501 for frames, 107/104/400-class for API).

use gyre::api::Executor;
use gyre::client::{Close, Session};
use proptest::prelude::*;
use serde_json::{Value, json};

fn node() -> std::sync::Arc<gyre::node::Node> {
    let cfg = gyre::config::load_value(crate::helpers::base_config(json!({})), &[], &[])
        .unwrap()
        .config;
    gyre::node::Node::new(cfg).unwrap()
}

/// JSON-ish strings: real command shapes with random holes, plus noise.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let methods = prop::sample::select(vec![
        "connect",
        "subscribe",
        "publish",
        "presence",
        "history",
        "refresh",
        "sub_refresh",
        "send",
        "rpc",
        "unsubscribe",
        "ping",
        "x",
    ]);
    let field = prop_oneof![
        Just("\"channel\":\"chat:a\"".to_string()),
        Just("\"token\":5".to_string()),
        Just("\"data\":{\"a\":[1,2]}".to_string()),
        Just("\"limit\":-1".to_string()),
        Just("\"since\":{\"offset\":99,\"epoch\":1}".to_string()),
        "[a-z\"{}:,0-9]{0,12}"
    ];
    let cmd = (0u32..4, methods, prop::collection::vec(field, 0..3))
        .prop_map(|(id, m, f)| format!("{{\"id\":{id},\"{m}\":{{{}}}}}", f.join(",")).into_bytes());
    prop_oneof![
        cmd.clone(),
        prop::collection::vec(cmd, 1..4).prop_map(|v| v.join(&b'\n')),
        prop::collection::vec(any::<u8>(), 0..64)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn sessions_never_panic_and_refuse_with_3501(frames in prop::collection::vec(frame(), 1..5)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let n = node();
        rt.block_on(async {
            let mut s = Session::new(n.clone(), Default::default());
            let mut out = Vec::new();
            let tok = crate::helpers::token(json!({"sub": "1"}));
            s.handle_frame(format!("{{\"id\":1,\"connect\":{{\"token\":\"{tok}\"}}}}").as_bytes(), &mut out).await.unwrap();
            for f in frames {
                match s.handle_frame(&f, &mut out).await {
                    Ok(()) => {}
                    Err(Close::Frame(d)) => prop_assert!(matches!(d.code, 3501 | 3508 | 3500 | 3005), "unexpected close {d:?}"),
                    Err(Close::Drop) => {}
                }
                for b in &out {
                    let v: Value = serde_json::from_slice(b).expect("every reply is JSON");
                    if let Some(e) = v.get("error") {
                        prop_assert!(e["message"].is_string(), "errors carry a message");
                    }
                }
                out.clear();
            }
            s.close();
            Ok(())
        })?;
    }

    #[test]
    fn api_executor_never_panics(method in prop::sample::select(gyre::api::METHODS.iter().chain(gyre::api::EXTENSION_METHODS).copied().filter(|m| !m.is_empty()).chain(["batch"]).collect::<Vec<_>>()),
                                 params in "[a-z_\"{}\\[\\]:,0-9.-]{0,40}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let exec = Executor::new(node());
        let value: Value = serde_json::from_str(&params).unwrap_or(json!({"user": params, "channel": params, "uid": params}));
        let raw = serde_json::value::to_raw_value(&value).unwrap();
        let r = rt.block_on(exec.call(method, &raw));
        if let Err(e) = r {
            prop_assert!([100, 102, 104, 107, 108, 112].contains(&e.code), "{method}: {e:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every time parameter of the server API takes any integer: the call
    /// succeeds or answers 107, never panics (debug builds check overflow).
    #[test]
    fn api_time_params_never_panic(t in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(0i64), -5_000_000_000_000i64..5_000_000_000_000i64],
                                   which in 0usize..6) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let exec = Executor::new(node());
        let (method, params) = match which {
            0 => ("block_user", json!({"user": "u", "expire_at": t})),
            1 => ("revoke_token", json!({"uid": "j", "expire_at": t})),
            2 => ("invalidate_user_tokens", json!({"user": "u", "issued_before": t})),
            3 => ("invalidate_user_tokens", json!({"user": "u", "expire_at": t, "channel": "chat:a"})),
            4 => ("subscribe", json!({"user": "u", "channel": "chat:a", "expire_at": t})),
            _ => ("refresh", json!({"user": "u", "expire_at": t})),
        };
        let raw = serde_json::value::to_raw_value(&params).unwrap();
        match rt.block_on(exec.call(method, &raw)) {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.code, 107, "{} {}", method, params),
        }
    }
}
