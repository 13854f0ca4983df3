//! Older spellings of the configuration, rewritten to their Centrifugo v6
//! keys before the layers are merged: Centrifugo v5's flat keys (and their
//! environment variables), with one warning for each key used. The loader
//! (`load.rs`) stays about layering; everything a past version spelled
//! differently lives here. When a file has both spellings, the v6 key wins.

use super::load::{env_name, set_path_obj};
use super::types::ChannelOptions;
use serde_json::{Map, Value};

/// v5 flat keys and the v6 path each one moved to (protocol.md §6.3).
const V5_ALIASES: &[(&str, &str)] = &[
    ("port", "http_server.port"),
    ("address", "http_server.address"),
    ("internal_port", "http_server.internal_port"),
    ("internal_address", "http_server.internal_address"),
    ("api_key", "http_api.key"),
    ("api_insecure", "http_api.insecure"),
    ("api_handler_prefix", "http_api.handler_prefix"),
    ("api_error_mode", "http_api.error_mode"),
    ("allowed_origins", "client.allowed_origins"),
    ("client_insecure", "client.insecure"),
    ("token_hmac_secret_key", "client.token.hmac_secret_key"),
    ("token_rsa_public_key", "client.token.rsa_public_key"),
    ("token_ecdsa_public_key", "client.token.ecdsa_public_key"),
    (
        "token_jwks_public_endpoint",
        "client.token.jwks_public_endpoint",
    ),
    ("token_audience", "client.token.audience"),
    ("token_audience_regex", "client.token.audience_regex"),
    ("token_issuer", "client.token.issuer"),
    ("token_issuer_regex", "client.token.issuer_regex"),
    ("token_user_id_claim", "client.token.user_id_claim"),
    ("ping_interval", "client.ping_interval"),
    ("pong_timeout", "client.pong_timeout"),
    ("client_channel_limit", "client.channel_limit"),
    (
        "client_user_connection_limit",
        "client.user_connection_limit",
    ),
    ("client_connection_limit", "client.connection_limit"),
    ("client_queue_max_size", "client.queue_max_size"),
    ("client_expired_close_delay", "client.expired_close_delay"),
    (
        "client_expired_sub_close_delay",
        "client.expired_sub_close_delay",
    ),
    ("client_stale_close_delay", "client.stale_close_delay"),
    (
        "client_presence_update_interval",
        "client.presence_update_interval",
    ),
    (
        "client_insecure_skip_token_signature_verify",
        "client.insecure_skip_token_signature_verify",
    ),
    (
        "allow_anonymous_connect_without_token",
        "client.allow_anonymous_connect_without_token",
    ),
    (
        "disallow_anonymous_connection_tokens",
        "client.disallow_anonymous_connection_tokens",
    ),
    (
        "websocket_message_size_limit",
        "websocket.message_size_limit",
    ),
    ("websocket_write_timeout", "websocket.write_timeout"),
    ("websocket_compression", "websocket.compression"),
    ("channel_private_prefix", "channel.private_prefix"),
    ("channel_namespace_boundary", "channel.namespace_boundary"),
    ("channel_user_boundary", "channel.user_boundary"),
    ("channel_user_separator", "channel.user_separator"),
    ("channel_max_length", "channel.max_length"),
    ("namespaces", "channel.namespaces"),
    ("rpc_namespaces", "rpc.namespaces"),
    ("redis_address", "engine.redis.address"),
    ("redis_prefix", "engine.redis.prefix"),
    ("proxy_connect_endpoint", "client.proxy.connect.endpoint"),
    ("proxy_connect_timeout", "client.proxy.connect.timeout"),
    ("proxy_refresh_endpoint", "client.proxy.refresh.endpoint"),
    ("proxy_refresh_timeout", "client.proxy.refresh.timeout"),
    (
        "proxy_binary_encoding",
        "client.proxy.connect.binary_encoding",
    ),
    ("admin_password", "admin.password"),
    ("admin_secret", "admin.secret"),
    ("grpc_api_port", "grpc_api.port"),
    ("grpc_api_key", "grpc_api.key"),
    ("log_level", "log.level"),
    ("log_file", "log.file"),
    ("name", "node.name"),
    ("shutdown_timeout", "shutdown.timeout"),
];

/// v5 top-level booleans whose v6 home is `<name>.enabled`.
const V5_TOGGLES: &[&str] = &[
    "admin",
    "prometheus",
    "health",
    "debug",
    "swagger",
    "grpc_api",
    "uni_websocket",
    "uni_sse",
    "uni_http_stream",
    "sse",
    "http_stream",
];

/// A v5 environment variable name (`CENTRIFUGO_API_KEY`, …): the v6 key
/// path it sets and the warning to give.
pub(super) fn v5_env(name: &str) -> Option<(&'static str, String)> {
    let (_, new) = V5_ALIASES.iter().find(|(old, _)| env_name(old) == name)?;
    Some((
        new,
        format!(
            "environment variable {name} is a Centrifugo v5 name: use {}",
            env_name(new)
        ),
    ))
}

/// The switch a v5 environment variable also turns on, as its file key
/// does: a v5 proxy endpoint enables its proxy.
pub(super) fn env_turns_on(name: &str) -> Option<&'static str> {
    match name {
        "CENTRIFUGO_PROXY_CONNECT_ENDPOINT" => Some("client.proxy.connect.enabled"),
        "CENTRIFUGO_PROXY_REFRESH_ENDPOINT" => Some("client.proxy.refresh.enabled"),
        _ => None,
    }
}

/// Rewrites a file's Centrifugo v5 flat keys to their v6 paths, with one
/// warning for each.
pub(super) fn apply_v5_aliases(obj: &mut Map<String, Value>, warnings: &mut Vec<String>) {
    let channel_option_keys: Vec<String> = match serde_json::to_value(ChannelOptions::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => vec![],
    };
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        if V5_TOGGLES.contains(&key.as_str()) && obj[&key].is_boolean() {
            let v = obj.remove(&key).unwrap_or(Value::Null);
            warnings.push(format!(
                "config key {key:?} is a Centrifugo v5 key: use \"{key}.enabled\""
            ));
            set_path_obj(obj, &format!("{key}.enabled"), v);
            continue;
        }
        if key == "engine" && obj[&key].is_string() {
            let v = obj.remove(&key).unwrap_or(Value::Null);
            warnings
                .push("config key \"engine\" is a Centrifugo v5 key: use \"engine.type\"".into());
            set_path_obj(obj, "engine.type", v);
            continue;
        }
        if key == "proxy_http_headers" {
            // One v5 key fed both proxies.
            let v = obj.remove(&key).unwrap_or(Value::Null);
            warnings.push("config key \"proxy_http_headers\" is a Centrifugo v5 key: use \"client.proxy.connect.http_headers\" and \"client.proxy.refresh.http_headers\"".into());
            set_if_absent(obj, "client.proxy.connect.http_headers", v.clone());
            set_if_absent(obj, "client.proxy.refresh.http_headers", v);
            continue;
        }
        let target = V5_ALIASES
            .iter()
            .find(|(old, _)| *old == key)
            .map(|(_, new)| new.to_string())
            .or_else(|| {
                (channel_option_keys.contains(&key) && key != "name")
                    .then(|| format!("channel.without_namespace.{key}"))
            });
        if let Some(target) = target {
            let v = obj.remove(&key).unwrap_or(Value::Null);
            warnings.push(format!(
                "config key {key:?} is a Centrifugo v5 key: use {target:?}"
            ));
            if key == "proxy_connect_endpoint" || key == "proxy_refresh_endpoint" {
                let section = if key == "proxy_connect_endpoint" {
                    "connect"
                } else {
                    "refresh"
                };
                set_if_absent(
                    obj,
                    &format!("client.proxy.{section}.enabled"),
                    Value::Bool(true),
                );
            }
            // When both spellings are present, the v6 key wins.
            set_if_absent(obj, &target, v);
        }
    }
}

/// Sets a dotted path unless the file already has a value there.
fn set_if_absent(obj: &mut Map<String, Value>, path: &str, value: Value) {
    let mut cur: Option<&Value> = None;
    for (i, part) in path.split('.').enumerate() {
        cur = if i == 0 {
            obj.get(part)
        } else {
            cur.and_then(|c| c.get(part))
        };
    }
    if cur.is_none() {
        set_path_obj(obj, path, value);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_value;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn v5_keys_are_aliases_with_a_warning_each() {
        let l = load_value(
            json!({"token_hmac_secret_key": "x", "api_key": "k", "presence": true, "namespaces": [{"name": "ns"}], "health": true}),
            &env(&[("CENTRIFUGO_API_INSECURE", "true")]),
            &[],
        )
        .unwrap();
        assert_eq!(l.config.client.token.hmac_secret_key, "x");
        assert_eq!(l.config.http_api.key, "k");
        assert!(l.config.http_api.insecure);
        assert!(l.config.channel.without_namespace.presence);
        assert_eq!(l.config.channel.namespaces[0].name, "ns");
        assert!(l.config.health.enabled);
        assert_eq!(l.warnings.len(), 6, "{:?}", l.warnings);
    }

    #[test]
    fn v6_key_wins_over_v5_alias_and_v5_env_proxy_is_enabled() {
        let l = load_value(
            json!({"api_key": "old", "http_api": {"key": "new"}, "proxy_http_headers": ["Cookie"]}),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(l.config.http_api.key, "new");
        assert_eq!(l.config.client.proxy.refresh.http_headers, vec!["Cookie"]);
        let l = load_value(
            json!({}),
            &env(&[
                ("CENTRIFUGO_PROXY_CONNECT_ENDPOINT", "http://127.0.0.1:1/c"),
                ("CENTRIFUGO_CLIENT_STALE_CLOSE_DELAY", "7"),
            ]),
            &[],
        )
        .unwrap();
        assert!(l.config.client.proxy.connect.enabled);
        assert_eq!(
            l.config.client.stale_close_delay.0.as_secs(),
            7,
            "a bare number is seconds, as in a file"
        );
        let l = load_value(
            json!({}),
            &env(&[("CENTRIFUGO_CLIENT_SUBSCRIPTION_TOKEN_ENABLED", "true")]),
            &[],
        )
        .unwrap();
        assert!(l.config.client.subscription_token.enabled);
    }
}
