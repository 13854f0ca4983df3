//! Older spellings of the configuration, rewritten to their Centrifugo v6
//! keys before the layers are merged, with one warning for each key used:
//!
//! * Centrifugo v5's flat keys (and their environment variables);
//! * Centrifugo PRO v3–v5's persistence keys of the protective features
//!   (`persist`, `persistence_engine`, `redis_address`, `database.dsn`, and
//!   v3/v4's `user_token_invalidate`), so that a config asking for
//!   persistent blocks is never read as "keep them in memory".
//!
//! The loader (`load.rs`) stays about layering; everything a past version
//! spelled differently lives here. When a file has both spellings, the v6
//! key wins. Each value set this way remembers the key it came from, so an
//! error about it names the key the operator actually wrote.

use super::ConfigError;
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

/// Which v6 values a file got from an older key.
#[derive(Debug, Default)]
pub(super) struct Origins(Vec<Origin>);

#[derive(Debug)]
struct Origin {
    /// The v6 key path that was set.
    path: String,
    /// The value it was set to.
    value: Value,
    /// The older key, as the operator wrote it, with its version.
    from: String,
}

impl Origins {
    /// Sets `path` unless the file already has it (the v6 key wins), and
    /// remembers where the value came from. True when it was set.
    fn set_if_absent(
        &mut self,
        obj: &mut Map<String, Value>,
        path: &str,
        value: Value,
        from: &str,
    ) -> bool {
        if get_path_obj(obj, path).is_some() {
            return false;
        }
        self.set(obj, path, value, from);
        true
    }

    /// Sets `path` and remembers where the value came from.
    fn set(&mut self, obj: &mut Map<String, Value>, path: &str, value: Value, from: &str) {
        self.0.push(Origin {
            path: path.to_string(),
            value: value.clone(),
            from: from.to_string(),
        });
        set_path_obj(obj, path, value);
    }

    /// Forgets the values that the environment or a flag replaced later.
    pub(super) fn keep_unchanged(&mut self, tree: &Value) {
        self.0.retain(|o| {
            let mut cur = Some(tree);
            for part in o.path.split('.') {
                cur = cur.and_then(|c| c.get(part));
            }
            cur == Some(&o.value)
        });
    }

    /// Adds the older key to an error about a value that came from one.
    pub(super) fn explain(&self, e: ConfigError) -> ConfigError {
        let ConfigError::Invalid { key, reason } = e else {
            return e;
        };
        let origin = self.0.iter().find(|o| {
            key == o.path
                || key
                    .strip_prefix(o.path.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        });
        match origin {
            Some(o) => ConfigError::Invalid {
                reason: format!("{reason} (set by the {})", o.from),
                key,
            },
            None => ConfigError::Invalid { key, reason },
        }
    }
}

/// The value at a dotted path of a file, if it has one (`null` counts).
fn get_path_obj<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = obj.get(parts.next()?);
    for part in parts {
        cur = cur?.get(part);
    }
    cur
}

/// Rewrites every older spelling in a file to its v6 key. Returns where
/// each rewritten value came from.
pub(super) fn upgrade_file(
    obj: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<Origins, ConfigError> {
    let mut origins = Origins::default();
    apply_v5_aliases(obj, warnings, &mut origins);
    apply_old_persistence(obj, warnings, &mut origins)?;
    Ok(origins)
}

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
fn apply_v5_aliases(
    obj: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
    origins: &mut Origins,
) {
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
            origins.set(obj, &format!("{key}.enabled"), v, &v5_key(&key));
            continue;
        }
        if key == "engine" && obj[&key].is_string() {
            let v = obj.remove(&key).unwrap_or(Value::Null);
            warnings
                .push("config key \"engine\" is a Centrifugo v5 key: use \"engine.type\"".into());
            origins.set(obj, "engine.type", v, &v5_key("engine"));
            continue;
        }
        if key == "proxy_http_headers" {
            // One v5 key fed both proxies.
            let v = obj.remove(&key).unwrap_or(Value::Null);
            warnings.push("config key \"proxy_http_headers\" is a Centrifugo v5 key: use \"client.proxy.connect.http_headers\" and \"client.proxy.refresh.http_headers\"".into());
            let from = v5_key(&key);
            origins.set_if_absent(obj, "client.proxy.connect.http_headers", v.clone(), &from);
            origins.set_if_absent(obj, "client.proxy.refresh.http_headers", v, &from);
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
                origins.set_if_absent(
                    obj,
                    &format!("client.proxy.{section}.enabled"),
                    Value::Bool(true),
                    &v5_key(&key),
                );
            }
            // When both spellings are present, the v6 key wins.
            origins.set_if_absent(obj, &target, v, &v5_key(&key));
        }
    }
}

fn v5_key(key: &str) -> String {
    format!("Centrifugo v5 key {key:?}")
}

/// The protective sections as Centrifugo PRO v3–v5 spelled them, and the
/// v6 section each one is now.
const PROTECT_SECTIONS: &[(&str, &str)] = &[
    ("user_block", "user_block"),
    ("token_revoke", "token_revoke"),
    ("user_tokens_invalidate", "user_tokens_invalidate"),
    // v3/v4's singular "token".
    ("user_token_invalidate", "user_tokens_invalidate"),
];

/// Keys of a protective section's v6 `redis` object that Centrifugo PRO v5
/// wrote flat, as `redis_<key>`, next to `persistence_engine`.
const PRO_V5_REDIS_KEYS: &[&str] = &[
    "address",
    "prefix",
    "db",
    "user",
    "password",
    "connect_timeout",
    "io_timeout",
    "sentinel_address",
    "sentinel_master_name",
    "sentinel_user",
    "sentinel_password",
    "cluster_address",
];

/// Centrifugo PRO's earlier ways of asking for persistent protective data:
///
/// * v3/v4: `database.dsn` plus `persist: true` in `user_block`,
///   `token_revoke` or `user_token_invalidate` (singular "token");
/// * v3–v5: `persistence_engine: "redis"` with `redis_address` (and the
///   other `redis_*` keys), or `persistence_engine: "database"` with
///   `database.dsn`.
///
/// Each becomes its v6 form: `storage_type: database` with
/// `database.enabled` and `database.postgresql.dsn`, or `storage_type:
/// redis` with `redis.address`. A storage Gyre cannot serve is then refused
/// at start instead of being ignored.
fn apply_old_persistence(
    obj: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    for &(written, target) in PROTECT_SECTIONS {
        let Some(Value::Object(section)) = obj.get_mut(written) else {
            continue;
        };
        let persist = section.remove("persist");
        let engine = section.remove("persistence_engine");
        let redis: Vec<(&str, Value)> = PRO_V5_REDIS_KEYS
            .iter()
            .filter_map(|k| section.remove(&format!("redis_{k}")).map(|v| (*k, v)))
            .collect();
        let storage = format!("{target}.storage_type");
        if let Some(persist) = persist {
            let key = format!("{written}.persist");
            let from = format!("Centrifugo PRO v3/v4 key {key:?}");
            match persist {
                Value::Bool(true) => {
                    warnings.push(format!(
                        "config key {key:?} is a Centrifugo PRO v3/v4 key: use {storage:?}: \"database\" \
                         with \"database.enabled\": true and \"database.postgresql.dsn\""
                    ));
                    if origins.set_if_absent(obj, &storage, "database".into(), &from) {
                        origins.set_if_absent(obj, "database.enabled", true.into(), &from);
                    }
                }
                Value::Bool(false) => warnings.push(format!(
                    "config key {key:?} is a Centrifugo PRO v3/v4 key: remove it \
                     ({storage:?} keeps entries in memory by default)"
                )),
                other => {
                    return Err(ConfigError::invalid(
                        &key,
                        format!(
                            "{other} is not true or false (a Centrifugo PRO v3/v4 key: \
                             use {storage:?} instead)"
                        ),
                    ));
                }
            }
        }
        if let Some(engine) = engine {
            let key = format!("{written}.persistence_engine");
            let from = format!("Centrifugo PRO v3–v5 key {key:?}");
            warnings.push(format!(
                "config key {key:?} is a Centrifugo PRO v3–v5 key: use {storage:?}"
            ));
            let database = engine.as_str() == Some("database");
            if origins.set_if_absent(obj, &storage, engine, &from) && database {
                origins.set_if_absent(obj, "database.enabled", true.into(), &from);
            }
        }
        for (k, v) in redis {
            let key = format!("{written}.redis_{k}");
            let new = format!("{target}.redis.{k}");
            warnings.push(format!(
                "config key {key:?} is a Centrifugo PRO v3–v5 key: use {new:?}"
            ));
            origins.set_if_absent(obj, &new, v, &format!("Centrifugo PRO v3–v5 key {key:?}"));
        }
    }
    // What is left of v3/v4's singular section moves key by key.
    if let Some(section) = obj.remove("user_token_invalidate") {
        warnings.push(
            "config key \"user_token_invalidate\" is a Centrifugo PRO v3/v4 key: \
             use \"user_tokens_invalidate\""
                .into(),
        );
        match section {
            Value::Object(m) => {
                for (k, v) in m {
                    let from = format!("Centrifugo PRO v3/v4 key \"user_token_invalidate.{k}\"");
                    origins.set_if_absent(obj, &format!("user_tokens_invalidate.{k}"), v, &from);
                }
            }
            other => {
                let from = "Centrifugo PRO v3/v4 key \"user_token_invalidate\"";
                origins.set_if_absent(obj, "user_tokens_invalidate", other, from);
            }
        }
    }
    if let Some(Value::Object(db)) = obj.get_mut("database")
        && let Some(dsn) = db.remove("dsn")
    {
        warnings.push(
            "config key \"database.dsn\" is a Centrifugo PRO v3–v5 key: use \"database.postgresql.dsn\""
                .into(),
        );
        let from = "Centrifugo PRO v3–v5 key \"database.dsn\"";
        origins.set_if_absent(obj, "database.postgresql.dsn", dsn, from);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{StorageType, load_value};
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

    /// Runs only the rewriting, so the mapped tree can be compared.
    fn upgraded(v: serde_json::Value) -> (serde_json::Value, Vec<String>) {
        let serde_json::Value::Object(mut obj) = v else {
            panic!("object")
        };
        let mut warnings = Vec::new();
        super::upgrade_file(&mut obj, &mut warnings).unwrap();
        (serde_json::Value::Object(obj), warnings)
    }

    fn start_error(v: serde_json::Value) -> String {
        load_value(v, &[], &[]).unwrap_err().to_string()
    }

    const DSN: &str = "postgresql://postgres:pass@127.0.0.1:5432/postgres";

    #[test]
    fn pro_v3_v4_persist_maps_to_database_storage() {
        let (tree, warnings) = upgraded(json!({
            "database": {"dsn": DSN},
            "user_block": {"persist": true},
            "token_revoke": {"persist": true},
            "user_token_invalidate": {"persist": true}
        }));
        assert_eq!(
            tree,
            json!({
                "database": {"enabled": true, "postgresql": {"dsn": DSN}},
                "user_block": {"storage_type": "database"},
                "token_revoke": {"storage_type": "database"},
                "user_tokens_invalidate": {"storage_type": "database"}
            })
        );
        assert_eq!(
            warnings,
            [
                "config key \"user_block.persist\" is a Centrifugo PRO v3/v4 key: use \
                 \"user_block.storage_type\": \"database\" with \"database.enabled\": true and \
                 \"database.postgresql.dsn\"",
                "config key \"token_revoke.persist\" is a Centrifugo PRO v3/v4 key: use \
                 \"token_revoke.storage_type\": \"database\" with \"database.enabled\": true and \
                 \"database.postgresql.dsn\"",
                "config key \"user_token_invalidate.persist\" is a Centrifugo PRO v3/v4 key: use \
                 \"user_tokens_invalidate.storage_type\": \"database\" with \"database.enabled\": \
                 true and \"database.postgresql.dsn\"",
                "config key \"user_token_invalidate\" is a Centrifugo PRO v3/v4 key: use \
                 \"user_tokens_invalidate\"",
                "config key \"database.dsn\" is a Centrifugo PRO v3–v5 key: use \
                 \"database.postgresql.dsn\"",
            ]
        );
    }

    #[test]
    fn pro_v3_v4_persist_loads_as_database_storage() {
        for (written, v6) in [
            ("user_block", "user_block"),
            ("token_revoke", "token_revoke"),
            ("user_token_invalidate", "user_tokens_invalidate"),
        ] {
            let l = load_value(
                json!({"database": {"dsn": DSN}, written: {"persist": true}}),
                &[],
                &[],
            )
            .unwrap();
            let c = &l.config;
            let f = match v6 {
                "user_block" => &c.user_block,
                "token_revoke" => &c.token_revoke,
                _ => &c.user_tokens_invalidate,
            };
            assert_eq!(f.storage_type, StorageType::Database, "{written}");
            assert!(c.database.enabled);
            assert_eq!(c.database.postgresql.as_ref().unwrap().dsn, DSN);
            // A persist without a DSN is refused, naming the old key.
            let e = start_error(json!({written: {"persist": true}}));
            assert!(e.contains(&format!("`{v6}.storage_type`")), "{e}");
            assert!(
                e.ends_with(&format!(
                    "(set by the Centrifugo PRO v3/v4 key \"{written}.persist\")"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn pro_v3_v4_persist_false_and_the_rest_of_the_singular_section() {
        let l = load_value(
            json!({"user_token_invalidate": {"persist": false, "disconnect_code": 4001},
                   "user_block": {"persist": false}}),
            &[],
            &[],
        )
        .unwrap();
        let c = &l.config;
        assert_eq!(c.user_tokens_invalidate.disconnect_code, 4001);
        assert_eq!(c.user_block.storage_type, StorageType::Memory);
        assert!(!c.database.enabled);
        assert!(l.unknown.is_empty(), "{:?}", l.unknown);
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        assert!(
            l.warnings[0].contains("\"user_block.persist\"") && l.warnings[0].contains("remove it"),
            "{:?}",
            l.warnings
        );
        let e = start_error(json!({"user_block": {"persist": "yes"}}));
        assert!(
            e.starts_with("invalid config key `user_block.persist`: \"yes\" is not true or false"),
            "{e}"
        );
    }

    #[test]
    fn pro_v5_persistence_engine_redis_maps_to_redis_storage() {
        let (tree, warnings) = upgraded(json!({
            "user_block": {"persistence_engine": "redis", "redis_address": "localhost:6379",
                           "redis_password": "pw", "disconnect_code": 4000}
        }));
        assert_eq!(
            tree,
            json!({"user_block": {"storage_type": "redis", "disconnect_code": 4000,
                                  "redis": {"address": "localhost:6379", "password": "pw"}}})
        );
        assert_eq!(
            warnings,
            [
                "config key \"user_block.persistence_engine\" is a Centrifugo PRO v3–v5 key: use \
                 \"user_block.storage_type\"",
                "config key \"user_block.redis_address\" is a Centrifugo PRO v3–v5 key: use \
                 \"user_block.redis.address\"",
                "config key \"user_block.redis_password\" is a Centrifugo PRO v3–v5 key: use \
                 \"user_block.redis.password\"",
            ]
        );
        let l = load_value(
            json!({"token_revoke": {"persistence_engine": "redis", "redis_address": "localhost:6379"}}),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(l.config.token_revoke.storage_type, StorageType::Redis);
        assert_eq!(
            l.config.token_revoke.redis.as_ref().unwrap().address.0,
            ["localhost:6379"]
        );
        // Two addresses through the old key are refused like the new one.
        let e = start_error(json!({
            "token_revoke": {"persistence_engine": "redis", "redis_address": ["a:1", "b:2"]}
        }));
        assert!(e.contains("exactly one Redis address"), "{e}");
    }

    #[test]
    fn pro_v5_persistence_engine_database_maps_to_database_storage() {
        let (tree, warnings) = upgraded(json!({
            "database": {"dsn": DSN},
            "user_tokens_invalidate": {"persistence_engine": "database"}
        }));
        assert_eq!(
            tree,
            json!({
                "database": {"enabled": true, "postgresql": {"dsn": DSN}},
                "user_tokens_invalidate": {"storage_type": "database"}
            })
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let l = load_value(
            json!({"database": {"dsn": DSN}, "user_tokens_invalidate": {"persistence_engine": "database"}}),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            l.config.user_tokens_invalidate.storage_type,
            StorageType::Database
        );
        let e = start_error(json!({"user_tokens_invalidate": {"persistence_engine": "database"}}));
        assert!(
            e.starts_with("invalid config key `user_tokens_invalidate.storage_type`: \"database\""),
            "{e}"
        );
        assert!(
            e.ends_with("(set by the Centrifugo PRO v3–v5 key \"user_tokens_invalidate.persistence_engine\")"),
            "{e}"
        );
        let e = start_error(json!({"user_block": {"persistence_engine": "cassandra"}}));
        assert!(
            e.contains("`user_block.storage_type`: \"cassandra\" is not a storage type"),
            "{e}"
        );
        assert!(e.contains("\"user_block.persistence_engine\""), "{e}");
    }

    #[test]
    fn the_v6_key_wins_over_old_persistence_keys() {
        let l = load_value(
            json!({"user_block": {"persist": true, "storage_type": "memory"},
                   "token_revoke": {"persistence_engine": "database", "storage_type": ""}}),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(l.config.user_block.storage_type, StorageType::Memory);
        assert_eq!(l.config.token_revoke.storage_type, StorageType::Memory);
        assert!(!l.config.database.enabled, "nothing asked for the database");
        assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    }

    #[test]
    fn a_lone_database_dsn_moves_without_enabling_the_database() {
        let l = load_value(json!({"database": {"dsn": DSN}}), &[], &[]).unwrap();
        assert!(!l.config.database.enabled);
        assert_eq!(l.config.database.postgresql.as_ref().unwrap().dsn, DSN);
        assert_eq!(
            l.warnings,
            [
                "config key \"database.dsn\" is a Centrifugo PRO v3–v5 key: use \"database.postgresql.dsn\""
            ]
        );
    }

    #[test]
    fn errors_name_the_older_key_unless_a_later_layer_replaced_the_value() {
        let e = start_error(json!({"api_error_mode": "loud"}));
        assert!(
            e.starts_with("invalid config key `http_api.error_mode`:")
                && e.ends_with("(set by the Centrifugo v5 key \"api_error_mode\")"),
            "{e}"
        );
        let l = load_value(json!({"engine": "redis"}), &[], &[]).unwrap();
        assert_eq!(l.config.engine.kind, crate::config::EngineType::Redis);
        let e = start_error(json!({"engine": "tarantool"}));
        assert!(
            e.starts_with("invalid config key `engine.type`:")
                && e.ends_with("(set by the Centrifugo v5 key \"engine\")"),
            "{e}"
        );
        let e = start_error(json!({"namespaces": [{"name": "a b"}]}));
        assert!(
            e.starts_with("invalid config key `channel.namespaces[0].name`:")
                && e.ends_with("(set by the Centrifugo v5 key \"namespaces\")"),
            "{e}"
        );
        // The environment replaced the old key's value: only the key is named.
        let file = json!({"user_block": {"persistence_engine": "redis"}});
        let e = load_value(
            file.clone(),
            &env(&[("CENTRIFUGO_USER_BLOCK_STORAGE_TYPE", "database")]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`user_block.storage_type`: \"database\""), "{e}");
        assert!(!e.contains("set by"), "{e}");
        let l = load_value(
            file,
            &env(&[("CENTRIFUGO_USER_BLOCK_STORAGE_TYPE", "memory")]),
            &[],
        )
        .unwrap();
        assert_eq!(l.config.user_block.storage_type, StorageType::Memory);
    }
}
