//! Namespaces declared and tuned only through `CENTRIFUGO_*` variables, as
//! Centrifugo v6 allows, must behave like namespaces from a file.

use crate::helpers::{Api, Ws, base_config, token};
use serde_json::json;

#[tokio::test]
async fn env_namespaces_and_options_reach_a_running_server() {
    let file = base_config(json!({"channel": {"namespaces": [{"name": "quiet"}]}}));
    let env: Vec<(String, String)> = [
        ("CENTRIFUGO_CHANNEL_NAMESPACES", "live my-ns"),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_LIVE_PRESENCE", "true"),
        (
            "CENTRIFUGO_CHANNEL_NAMESPACES_LIVE_ALLOW_SUBSCRIBE_FOR_CLIENT",
            "true",
        ),
        ("CENTRIFUGO_CHANNEL_NAMESPACES_MY_NS_PRESENCE", "true"),
        (
            "CENTRIFUGO_CHANNEL_NAMESPACES_QUIET_ALLOW_SUBSCRIBE_FOR_CLIENT",
            "true",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let loaded = gyre::config::load_value(file, &env, &[]).expect("config");
    assert!(loaded.unknown.is_empty(), "{:?}", loaded.unknown);
    let s = gyre::app::start(loaded.config)
        .await
        .expect("server starts");
    let api = Api::new(&s);

    let (mut ws, c) = Ws::connected(&s, &token(json!({"sub": "42"}))).await;
    let r = ws.subscribe(2, "live:a").await;
    assert!(r["subscribe"].is_object(), "{r}");
    let p = api.call("presence", json!({"channel": "live:a"})).await;
    assert_eq!(
        p["result"]["presence"][c["client"].as_str().unwrap()]["user"],
        "42",
        "{p}"
    );
    let p = api.call("presence", json!({"channel": "my-ns:a"})).await;
    assert_eq!(p, json!({"result": {"presence": {}}}));

    // The file's namespace got only what its variables set: no presence.
    let r = ws.subscribe(3, "quiet:a").await;
    assert!(r["subscribe"].is_object(), "{r}");
    let p = api.call("presence", json!({"channel": "quiet:a"})).await;
    assert_eq!(p["error"]["code"], 108, "{p}");
}
