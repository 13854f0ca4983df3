//! Channel and RPC namespaces from the environment, read the way Centrifugo
//! v6 reads them (`internal/config/config.go`, `configtypes.NameForEnv` and
//! `decodeToNamedSlice` in centrifugal/centrifugo):
//!
//! - `CENTRIFUGO_CHANNEL_NAMESPACES='[{"name":"chat",…}]'` replaces the list
//!   with a JSON array;
//! - `CENTRIFUGO_CHANNEL_NAMESPACES="chat news"` appends namespaces by name,
//!   with default options;
//! - `CENTRIFUGO_CHANNEL_NAMESPACES_<NAME>_<OPTION>` sets one option of a
//!   namespace that exists by then (from the file, or either form above).
//!   `<NAME>` is the name with `.` and `-` replaced by `_`, upper-cased.
//!
//! The same holds for `CENTRIFUGO_RPC_NAMESPACES`. An empty value counts as
//! unset, as in Centrifugo.

use super::ConfigError;
use super::load::{env_name, env_value};
use super::types::ChannelOptions;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// A list of named items the environment can extend and reach into.
struct NamedList {
    /// Key path of the list in the config tree.
    path: &'static str,
    /// Every option an item has, with a default whose type decides how an
    /// environment value is parsed.
    options: fn() -> Map<String, Value>,
    /// Checks one option's value as decoding the config will, so a bad
    /// value is reported with the variable's name rather than a key path.
    check: fn(&str, &Value) -> Result<(), String>,
}

const LISTS: [NamedList; 2] = [
    NamedList {
        path: "channel.namespaces",
        options: channel_options,
        check: check_channel_option,
    },
    NamedList {
        path: "rpc.namespaces",
        options: rpc_options,
        check: |_, _| Ok(()),
    },
];

fn channel_options() -> Map<String, Value> {
    let mut m = match serde_json::to_value(ChannelOptions::default()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // Skipped when empty on output, but options all the same.
    for key in ["name", "channel_regex"] {
        m.entry(key).or_insert_with(|| Value::String(String::new()));
    }
    m
}

fn check_channel_option(key: &str, value: &Value) -> Result<(), String> {
    let mut m = Map::new();
    m.insert(key.to_string(), value.clone());
    serde_json::from_value::<ChannelOptions>(Value::Object(m))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Centrifugo's `RpcOptions` plus `name`. Gyre keeps RPC namespaces as
/// opaque JSON, so these only say which variables exist and their types.
fn rpc_options() -> Map<String, Value> {
    match json!({"name": "", "proxy_enabled": false, "proxy_name": ""}) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Centrifugo's `NameForEnv`, upper-cased as its env lookup does.
fn name_for_env(name: &str) -> String {
    name.replace(['.', '-'], "_").to_ascii_uppercase()
}

/// True for a key path whose variable takes the namespace list forms.
pub(super) fn is_list(path: &str) -> bool {
    LISTS.iter().any(|l| l.path == path)
}

/// True for a `CENTRIFUGO_<LIST>_<NAME>_<OPTION>` variable: it is read by
/// [`apply_options`] once every list is final.
pub(super) fn is_option_var(name: &str) -> bool {
    LISTS.iter().any(|l| {
        name.strip_prefix(env_name(l.path).as_str())
            .is_some_and(|rest| rest.starts_with('_'))
    })
}

/// The list after variable `name` set it to `raw`, or `None` to leave it as
/// it is. A value starting with `[` is a JSON array that replaces the list;
/// otherwise each whitespace-separated name not yet in the list is
/// appended as an item with default options.
pub(super) fn list_value(
    name: &str,
    raw: &str,
    current: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    if raw.trim_start().starts_with('[') {
        return match serde_json::from_str(raw) {
            Ok(v @ Value::Array(_)) => Ok(Some(v)),
            Ok(_) => Err("not a JSON array".into()),
            Err(e) => Err(format!("not a JSON array: {e}")),
        };
    }
    let mut items = match current {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    for n in raw.split_whitespace() {
        if items
            .iter()
            .any(|i| i.get("name").and_then(Value::as_str) == Some(n))
        {
            // Centrifugo appends it anyway and then refuses to start.
            warnings.push(format!(
                "environment variable {name}: namespace {n:?} is already configured, \
                 not added again (Centrifugo v6 refuses to start on a duplicate name)"
            ));
            continue;
        }
        items.push(json!({ "name": n }));
    }
    Ok(Some(Value::Array(items)))
}

/// Applies every `CENTRIFUGO_<LIST>_<NAME>_<OPTION>` variable to the item
/// named `<NAME>`, parsing the value by the option's type. A variable that
/// names no existing item or no option is reported as unknown.
pub(super) fn apply_options(
    tree: &mut Value,
    env: &[(String, String)],
    unknown: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for list in &LISTS {
        let prefix = format!("{}_", env_name(list.path));
        let pointer = format!("/{}", list.path.replace('.', "/"));
        let options = (list.options)();
        let names: Vec<Option<String>> = tree
            .pointer(&pointer)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|i| i.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        // Variable → (item index, option, default). Names that differ only
        // in `.`/`-`/`_` or case share variables, as in Centrifugo.
        let mut known: HashMap<String, Vec<(usize, &str, &Value)>> = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            let Some(n) = n else { continue };
            for (key, default) in &options {
                let var = format!("{prefix}{}_{}", name_for_env(n), key.to_ascii_uppercase());
                known.entry(var).or_default().push((i, key, default));
            }
        }
        for (name, raw) in env {
            if !name.starts_with(&prefix) {
                continue;
            }
            let Some(targets) = known.get(name) else {
                unknown.push(format!("env {name}"));
                continue;
            };
            if raw.is_empty() {
                continue;
            }
            let (_, key, default) = targets[0];
            let value = env_value(raw, default)
                .and_then(|v| (list.check)(key, &v).map(|()| v))
                .map_err(|reason| ConfigError::Env {
                    name: name.clone(),
                    reason,
                })?;
            for (i, key, _) in targets {
                if let Some(Value::Object(item)) = tree.pointer_mut(&format!("{pointer}/{i}")) {
                    item.insert(key.to_string(), value.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::load::load_value;
    use super::super::{ChannelOptions, Loaded};
    use serde_json::{Value, json};

    fn load(file: Value, pairs: &[(&str, &str)]) -> Result<Loaded, String> {
        let env: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        load_value(file, &env, &[]).map_err(|e| e.to_string())
    }

    fn ns<'a>(l: &'a Loaded, name: &str) -> &'a ChannelOptions {
        l.config
            .channel
            .namespaces
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no namespace {name}"))
    }

    #[test]
    fn options_reach_a_namespace_from_the_file() {
        let l = load(
            json!({"channel": {"namespaces": [{"name": "chat"}, {"name": "news", "presence": true}]}}),
            &[
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "true"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_SIZE", "10"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_TTL", "300s"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_META_TTL", "60"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_NEWS_PRESENCE", "false"),
            ],
        )
        .unwrap();
        let chat = ns(&l, "chat");
        assert!(chat.presence);
        assert_eq!(chat.history_size, 10);
        assert_eq!(chat.history_ttl.0.as_secs(), 300);
        assert_eq!(
            chat.history_meta_ttl.0.as_secs(),
            60,
            "bare number = seconds"
        );
        assert!(!ns(&l, "news").presence, "env overrides the file");
        assert!(l.unknown.is_empty(), "{:?}", l.unknown);
    }

    #[test]
    fn a_names_list_appends_namespaces_that_options_then_reach() {
        let l = load(
            json!({"channel": {"namespaces": [{"name": "chat", "presence": true}]}}),
            &[
                ("CENTRIFUGO_CHANNEL_NAMESPACES", "chat  news\tfeed"),
                (
                    "CENTRIFUGO_CHANNEL_NAMESPACES_NEWS_ALLOW_SUBSCRIBE_FOR_CLIENT",
                    "1",
                ),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_FEED_JOIN_LEAVE", "T"),
            ],
        )
        .unwrap();
        let names: Vec<&str> = l
            .config
            .channel
            .namespaces
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(names, ["chat", "news", "feed"]);
        assert!(
            ns(&l, "chat").presence,
            "the file's namespace keeps its options"
        );
        assert!(ns(&l, "news").allow_subscribe_for_client);
        assert!(!ns(&l, "news").presence, "appended with default options");
        assert!(ns(&l, "feed").join_leave);
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("\"chat\" is already configured"));
        assert!(l.unknown.is_empty(), "{:?}", l.unknown);
    }

    #[test]
    fn a_json_list_replaces_the_file_and_options_reach_it() {
        let l = load(
            json!({"channel": {"namespaces": [{"name": "old"}]}}),
            &[
                (
                    "CENTRIFUGO_CHANNEL_NAMESPACES",
                    r#"[{"name":"chat","history_size":5,"history_ttl":"60s"}]"#,
                ),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "true"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_SIZE", "7"),
            ],
        )
        .unwrap();
        assert_eq!(l.config.channel.namespaces.len(), 1);
        let chat = ns(&l, "chat");
        assert!(chat.presence);
        assert_eq!(
            chat.history_size, 7,
            "the option variable comes after the list"
        );
        assert_eq!(chat.history_ttl.0.as_secs(), 60);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let l = load(
            json!({"channel": {"namespaces": [{"name": "chat", "presence": true}]}}),
            &[
                ("CENTRIFUGO_CHANNEL_NAMESPACES", ""),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", ""),
            ],
        )
        .unwrap();
        assert!(ns(&l, "chat").presence);
        assert!(l.unknown.is_empty(), "{:?}", l.unknown);
    }

    #[test]
    fn unknown_options_and_namespaces_are_reported_by_variable() {
        let l = load(
            json!({"channel": {"namespaces": [{"name": "chat"}]}}),
            &[
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENSE", "true"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_NOPE_PRESENCE", "true"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "true"),
                ("CENTRIFUGO_RPC_NAMESPACES_CHAT_PROXY_ENABLED", "true"),
            ],
        )
        .unwrap();
        assert_eq!(
            l.unknown,
            [
                "env CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENSE",
                "env CENTRIFUGO_CHANNEL_NAMESPACES_NOPE_PRESENCE",
                "env CENTRIFUGO_RPC_NAMESPACES_CHAT_PROXY_ENABLED",
            ]
        );
        assert!(ns(&l, "chat").presence);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let file = json!({"channel": {"namespaces": [{"name": "chat"}]}});
        for (var, raw) in [
            ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "maybe"),
            ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_SIZE", "ten"),
            ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_SIZE", "-1"),
            ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_HISTORY_TTL", "soon"),
            ("CENTRIFUGO_CHANNEL_NAMESPACES", "[{\"name\": "),
        ] {
            let e = load(file.clone(), &[(var, raw)]).unwrap_err();
            assert!(
                e.starts_with(&format!("invalid environment variable {var}:")),
                "{var}={raw}: {e}"
            );
        }
    }

    #[test]
    fn names_with_dash_or_dot_use_underscores() {
        let l = load(
            json!({"channel": {"namespaces": [{"name": "my-ns"}]}}),
            &[
                ("CENTRIFUGO_CHANNEL_NAMESPACES", "a.b"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_MY_NS_HISTORY_SIZE", "10"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_MY_NS_HISTORY_TTL", "300s"),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_A_B_PRESENCE", "true"),
            ],
        )
        .unwrap();
        assert_eq!(ns(&l, "my-ns").history_size, 10);
        assert!(ns(&l, "a.b").presence);
        assert!(l.unknown.is_empty(), "{:?}", l.unknown);
    }

    #[test]
    fn a_longer_name_gets_its_own_variables() {
        let l = load(
            json!({"channel": {"namespaces": [{"name": "chat"}, {"name": "chat_presence"}]}}),
            &[
                (
                    "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE_JOIN_LEAVE",
                    "true",
                ),
                ("CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE", "true"),
            ],
        )
        .unwrap();
        assert!(ns(&l, "chat").presence && !ns(&l, "chat").join_leave);
        assert!(ns(&l, "chat_presence").join_leave && !ns(&l, "chat_presence").presence);
        assert!(l.unknown.is_empty(), "{:?}", l.unknown);
    }

    #[test]
    fn flags_override_namespace_variables() {
        let env = vec![
            (
                "CENTRIFUGO_CHANNEL_NAMESPACES".to_string(),
                "chat".to_string(),
            ),
            (
                "CENTRIFUGO_CHANNEL_NAMESPACES_CHAT_PRESENCE".to_string(),
                "true".to_string(),
            ),
        ];
        let flags = [("channel.namespaces".to_string(), json!([{"name": "other"}]))];
        let l = load_value(json!({}), &env, &flags).unwrap();
        assert_eq!(l.config.channel.namespaces.len(), 1);
        assert_eq!(l.config.channel.namespaces[0].name, "other");
    }

    #[test]
    fn rpc_namespaces_take_both_list_forms_and_options() {
        let l = load(
            json!({"rpc": {"namespaces": [{"name": "calc"}]}}),
            &[
                ("CENTRIFUGO_RPC_NAMESPACES", "calc users"),
                ("CENTRIFUGO_RPC_NAMESPACES_USERS_PROXY_ENABLED", "true"),
                ("CENTRIFUGO_RPC_NAMESPACES_CALC_PROXY_NAME", "backend"),
            ],
        )
        .unwrap();
        assert_eq!(
            l.config.rpc.namespaces,
            [
                json!({"name": "calc", "proxy_name": "backend"}),
                json!({"name": "users", "proxy_enabled": true}),
            ]
        );
        let e = load(
            json!({"rpc": {"namespaces": [{"name": "calc"}]}}),
            &[("CENTRIFUGO_RPC_NAMESPACES_CALC_PROXY_ENABLED", "yes please")],
        )
        .unwrap_err();
        assert!(
            e.contains("CENTRIFUGO_RPC_NAMESPACES_CALC_PROXY_ENABLED"),
            "{e}"
        );
        let l = load(
            json!({}),
            &[("CENTRIFUGO_RPC_NAMESPACES", r#"[{"name":"calc"}]"#)],
        )
        .unwrap();
        assert_eq!(l.config.rpc.namespaces, [json!({"name": "calc"})]);
    }
}
