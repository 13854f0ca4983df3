//! Builds a [`Config`] from its layers: defaults < file < environment < flags
//! (protocol.md §6.4), the way Centrifugo does. The layers are merged as JSON
//! trees, then decoded once, so an error can always name the key path.

use super::ConfigError;
use super::compat;
use super::env_namespaces;
use super::types::Config;
use serde_json::{Map, Value};
use std::path::Path;

/// The result of loading: the typed config plus what the operator should hear about.
#[derive(Debug)]
pub struct Loaded {
    /// The decoded, validated configuration.
    pub config: Config,
    /// Deprecation notes (v5 keys) and other non-fatal remarks, one per line.
    pub warnings: Vec<String>,
    /// Keys present in the file or environment that Gyre does not know.
    pub unknown: Vec<String>,
}

/// Reads and parses a config file by extension (JSON, YAML, TOML).
pub fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse_text(path, &text)
}

fn parse_text(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bad = |reason: String| ConfigError::Parse {
        path: path.display().to_string(),
        reason,
    };
    let value: Value = match ext.as_str() {
        "yaml" | "yml" => yaml_serde::from_str(text).map_err(|e| bad(e.to_string()))?,
        "toml" => {
            let v: toml::Value = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
            serde_json::to_value(v).map_err(|e| bad(e.to_string()))?
        }
        _ => serde_json::from_str(text).map_err(|e| bad(e.to_string()))?,
    };
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        _ => Err(bad("the top level must be an object".into())),
    }
}

/// Loads the configuration from an optional file, an environment (name/value
/// pairs, injected so tests need not touch the process environment) and
/// command-line overrides given as dotted key paths.
pub fn load(
    file: Option<&Path>,
    env: &[(String, String)],
    flags: &[(String, Value)],
) -> Result<Loaded, ConfigError> {
    let file_value = match file {
        Some(p) => read_file(p)?,
        None => Value::Object(Map::new()),
    };
    load_value(file_value, env, flags)
}

/// Like [`load`], with the file already parsed.
pub fn load_value(
    mut file_value: Value,
    env: &[(String, String)],
    flags: &[(String, Value)],
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let defaults = serde_json::to_value(Config::default()).expect("defaults serialize");
    let mut origins = match &mut file_value {
        Value::Object(obj) => compat::upgrade_file(obj, &mut warnings)?,
        _ => compat::Origins::default(),
    };
    let mut tree = defaults.clone();
    merge(&mut tree, file_value);
    let mut unknown = Vec::new();
    apply_env(
        &mut tree,
        &env_defaults(&defaults),
        env,
        &mut warnings,
        &mut unknown,
    )?;
    for (path, value) in flags {
        set_path(&mut tree, path, value.clone());
    }
    // An error about a value an older key set names that key too.
    origins.keep_unchanged(&tree);
    let config = decode(tree, &mut unknown).map_err(|e| origins.explain(e))?;
    super::validate::validate(&config).map_err(|e| origins.explain(e))?;
    Ok(Loaded {
        config,
        warnings,
        unknown,
    })
}

fn decode(tree: Value, unknown: &mut Vec<String>) -> Result<Config, ConfigError> {
    let mut ignored = Vec::new();
    let mut cb = |path: serde_ignored::Path<'_>| ignored.push(ignored_key(&path));
    let de = serde_ignored::Deserializer::new(tree, &mut cb);
    let result: Result<Config, _> = serde_path_to_error::deserialize(de);
    let config = result.map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Invalid {
            key,
            reason: e.into_inner().to_string(),
        }
    })?;
    unknown.extend(ignored);
    Ok(config)
}

/// The dotted key path of an ignored key, as `serde_ignored` writes it
/// (array indices as plain segments) but without its `?` segment for an
/// `Option` (`user_block.redis.bogus`, not `user_block.redis.?.bogus`).
fn ignored_key(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    let join = |parent: &Path<'_>, segment: &str| {
        let parent = ignored_key(parent);
        if parent.is_empty() {
            segment.to_string()
        } else {
            format!("{parent}.{segment}")
        }
    };
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join(parent, &index.to_string()),
        Path::Map { parent, key } => join(parent, key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_key(parent),
    }
}

/// Deep-merges `over` into `base`: objects merge key by key, anything else replaces.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets a dotted path inside a JSON tree, creating objects on the way.
pub fn set_path(tree: &mut Value, path: &str, value: Value) {
    if !tree.is_object() {
        *tree = Value::Object(Map::new());
    }
    if let Value::Object(obj) = tree {
        set_path_obj(obj, path, value);
    }
}

pub(super) fn set_path_obj(obj: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            obj.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let slot = obj
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            set_path(slot, rest, value);
        }
    }
}

/// Every leaf key path of a JSON tree (an empty object counts as a leaf),
/// with its value.
pub(super) fn leaves<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, child, out);
            }
        }
        _ => out.push((prefix.to_string(), v)),
    }
}

/// The environment variable Centrifugo reads for a key path.
pub fn env_name(path: &str) -> String {
    format!("CENTRIFUGO_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// The defaults as the environment sees them: sections that are absent by
/// default (`database.postgresql`, each protective feature's `redis`) get
/// their fields, so `CENTRIFUGO_DATABASE_POSTGRESQL_DSN` or
/// `CENTRIFUGO_USER_BLOCK_REDIS_ADDRESS` set them (secrets usually come
/// from the environment).
fn env_defaults(defaults: &Value) -> Value {
    let mut d = defaults.clone();
    let redis = serde_json::to_value(super::Redis::default()).expect("defaults serialize");
    for f in ["user_block", "token_revoke", "user_tokens_invalidate"] {
        set_path(&mut d, &format!("{f}.redis"), redis.clone());
    }
    let pg = serde_json::to_value(super::Postgres::default()).expect("defaults serialize");
    set_path(&mut d, "database.postgresql", pg);
    d
}

fn apply_env(
    tree: &mut Value,
    defaults: &Value,
    env: &[(String, String)],
    warnings: &mut Vec<String>,
    unknown: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut paths = Vec::new();
    leaves("", defaults, &mut paths);
    let mut known: std::collections::HashMap<String, (String, &Value)> = paths
        .iter()
        .map(|(p, d)| (env_name(p), (p.clone(), *d)))
        .collect();
    let default_of = |path: &str| paths.iter().find(|(p, _)| p == path).map(|(_, d)| *d);
    for (name, raw) in env {
        if !name.starts_with("CENTRIFUGO_") {
            continue;
        }
        let (path, default) = if let Some((p, d)) = known.remove(name) {
            (p, d)
        } else if env_namespaces::is_option_var(name) {
            // Read once every namespace list is final, below.
            continue;
        } else if let Some((p, warning)) = compat::v5_env(name)
            && let Some(d) = default_of(p)
        {
            warnings.push(warning);
            (p.to_string(), d)
        } else {
            unknown.push(format!("env {name}"));
            continue;
        };
        if let Some(switch) = compat::env_turns_on(name) {
            set_path(tree, switch, Value::Bool(true));
        }
        let value = if env_namespaces::is_list(&path) {
            let current = tree.pointer(&format!("/{}", path.replace('.', "/")));
            env_namespaces::list_value(name, raw, current, warnings)
        } else if is_address_list(&path) {
            // Redis address keys take one address or several (shards),
            // space-separated in the environment as Centrifugo reads them.
            let parts: Vec<Value> = raw
                .split_whitespace()
                .map(|s| Value::String(s.to_string()))
                .collect();
            Ok(Some(match parts.len() {
                1 => parts.into_iter().next().unwrap_or(Value::Null),
                _ => Value::Array(parts),
            }))
        } else {
            env_value(raw, default).map(Some)
        }
        .map_err(|reason| ConfigError::Env {
            name: name.clone(),
            reason,
        })?;
        if let Some(value) = value {
            set_path(tree, &path, value);
        }
    }
    env_namespaces::apply_options(tree, env, unknown)
}

/// Keys that hold one Redis address or a list of them.
fn is_address_list(path: &str) -> bool {
    path.contains("redis.")
        && (path.ends_with(".address")
            || path.ends_with(".sentinel_address")
            || path.ends_with(".cluster_address"))
}

/// Parses an environment value by the type of the key's default.
pub(super) fn env_value(raw: &str, default: &Value) -> Result<Value, String> {
    match default {
        Value::Bool(_) => match raw {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
            _ => Err(format!("{raw:?} is not a boolean (use true or false)")),
        },
        Value::Number(_) => {
            if let Ok(n) = raw.trim().parse::<i64>() {
                Ok(Value::from(n))
            } else if let Ok(f) = raw.trim().parse::<f64>() {
                Ok(Value::from(f))
            } else {
                Err(format!("{raw:?} is not a number"))
            }
        }
        // A bare number for a duration key means seconds, as in a file.
        Value::String(d)
            if super::duration::parse(d).is_ok() && raw.trim().parse::<u64>().is_ok() =>
        {
            Ok(Value::from(raw.trim().parse::<u64>().unwrap_or(0)))
        }
        Value::String(_) => Ok(Value::String(raw.to_string())),
        Value::Array(_) => {
            if raw.trim_start().starts_with('[') {
                serde_json::from_str(raw).map_err(|e| format!("not a JSON array: {e}"))
            } else {
                Ok(Value::Array(
                    raw.split_whitespace()
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                ))
            }
        }
        Value::Object(_) | Value::Null => {
            Ok(serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let file = json!({"http_api": {"key": "file"}, "http_server": {"port": 9000}});
        let l = load_value(
            file,
            &env(&[
                ("CENTRIFUGO_HTTP_API_KEY", "env"),
                ("CENTRIFUGO_HTTP_SERVER_PORT", "9100"),
            ]),
            &[("http_server.port".into(), json!(9200))],
        )
        .unwrap();
        assert_eq!(l.config.http_api.key, "env");
        assert_eq!(l.config.http_server.port, 9200);
    }

    #[test]
    fn env_engine_keys_as_centrifugo_reads_them() {
        let l = load_value(
            json!({}),
            &env(&[
                ("CENTRIFUGO_ENGINE_TYPE", "redis"),
                (
                    "CENTRIFUGO_ENGINE_REDIS_ADDRESS",
                    "redis://a:6379 redis://b:6379",
                ),
                ("CENTRIFUGO_ENGINE_REDIS_PREFIX", "app"),
                ("CENTRIFUGO_ENGINE_REDIS_PRESENCE_TTL", "30s"),
                ("CENTRIFUGO_CHANNEL_HISTORY_META_TTL", "1h"),
                ("CENTRIFUGO_NODE_NAME", "n1"),
            ]),
            &[],
        )
        .unwrap();
        let c = &l.config;
        assert_eq!(c.engine.kind, crate::config::EngineType::Redis);
        assert_eq!(
            c.engine.redis.address.as_slice(),
            ["redis://a:6379", "redis://b:6379"]
        );
        assert_eq!(c.engine.redis.prefix, "app");
        assert_eq!(c.engine.redis.presence_ttl.0.as_secs(), 30);
        assert_eq!(c.channel.history_meta_ttl.0.as_secs(), 3600);
        assert_eq!(c.node.name, "n1");
        let one = load_value(
            json!({}),
            &env(&[("CENTRIFUGO_ENGINE_REDIS_ADDRESS", "redis://a:6379")]),
            &[],
        )
        .unwrap();
        assert_eq!(
            one.config.engine.redis.address.as_slice(),
            ["redis://a:6379"]
        );
    }

    #[test]
    fn env_reads_nested_names_with_underscores() {
        let l = load_value(
            json!({}),
            &env(&[
                ("CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY", "s3"),
                ("CENTRIFUGO_CLIENT_ALLOWED_ORIGINS", "http://a http://b"),
                ("CENTRIFUGO_CLIENT_PING_INTERVAL", "10s"),
                (
                    "CENTRIFUGO_CHANNEL_NAMESPACES",
                    r#"[{"name":"chat","presence":true}]"#,
                ),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(l.config.client.token.hmac_secret_key, "s3");
        assert_eq!(
            l.config.client.allowed_origins,
            vec!["http://a", "http://b"]
        );
        assert_eq!(l.config.client.ping_interval.0.as_secs(), 10);
        assert!(l.config.channel.namespaces[0].presence);
    }

    #[test]
    fn unknown_keys_are_reported_by_path() {
        let l = load_value(
            json!({"client": {"tokne": {}}, "bogus": 1}),
            &env(&[("CENTRIFUGO_NOPE", "1")]),
            &[],
        )
        .unwrap();
        assert!(
            l.unknown.contains(&"client.tokne".to_string()),
            "{:?}",
            l.unknown
        );
        assert!(l.unknown.contains(&"bogus".to_string()));
        assert!(l.unknown.contains(&"env CENTRIFUGO_NOPE".to_string()));
        let l = load_value(
            json!({"channel": {"namespaces": [{"name": "ns", "presense": true}]},
                   "client": {"proxy": {"connect": {"http": {"status_to_code_transforms":
                       [{"status_code": 403, "to_error": {"code": 403, "mesage": "x"}}]}}}}}),
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(
            l.unknown,
            [
                "channel.namespaces.0.presense",
                "client.proxy.connect.http.status_to_code_transforms.0.to_error.mesage",
            ]
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e =
            load_value(json!({"client": {"ping_interval": "5 parsecs"}}), &[], &[]).unwrap_err();
        assert!(e.to_string().contains("client.ping_interval"), "{e}");
        let e = load_value(json!({"http_server": {"port": "eighty"}}), &[], &[]).unwrap_err();
        assert!(e.to_string().contains("http_server.port"), "{e}");
        let e = load_value(
            json!({}),
            &env(&[("CENTRIFUGO_HEALTH_ENABLED", "maybe")]),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("CENTRIFUGO_HEALTH_ENABLED"), "{e}");
    }

    #[test]
    fn yaml_and_toml_files_parse() {
        let y = parse_text(Path::new("c.yaml"), "http_api:\n  key: y\n").unwrap();
        assert_eq!(y["http_api"]["key"], "y");
        let t = parse_text(Path::new("c.toml"), "[http_api]\nkey = \"t\"\n").unwrap();
        assert_eq!(t["http_api"]["key"], "t");
    }

    #[test]
    fn env_bare_number_is_seconds_and_nested_sections_are_known() {
        let l = load_value(
            json!({}),
            &env(&[("CENTRIFUGO_CLIENT_STALE_CLOSE_DELAY", "7")]),
            &[],
        )
        .unwrap();
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

    #[test]
    fn env_reaches_sections_absent_by_default() {
        let l = load_value(
            json!({"user_block": {"storage_type": "redis"}, "token_revoke": {"storage_type": "database"}}),
            &env(&[
                ("CENTRIFUGO_USER_BLOCK_REDIS_ADDRESS", "127.0.0.1:6390"),
                ("CENTRIFUGO_USER_BLOCK_REDIS_PASSWORD", "pw"),
                ("CENTRIFUGO_DATABASE_ENABLED", "true"),
                ("CENTRIFUGO_DATABASE_POSTGRESQL_DSN", "postgresql://u:p@127.0.0.1/db"),
            ]),
            &[],
        )
        .unwrap();
        assert!(l.unknown.is_empty(), "{:?}", l.unknown);
        let r = l.config.user_block.redis.as_ref().unwrap();
        assert_eq!(
            (r.address.0.as_slice(), r.password.as_str()),
            (&["127.0.0.1:6390".to_string()][..], "pw")
        );
        assert_eq!(
            l.config.database.postgresql.as_ref().unwrap().dsn,
            "postgresql://u:p@127.0.0.1/db"
        );
        // Sections not set through the environment stay absent.
        assert!(l.config.token_revoke.redis.is_none());
    }
}
