//! Keys that select a backend or a mode, typed with Centrifugo's spellings.
//! An unknown spelling fails while the tree is decoded, so the loader's
//! error names the key path (`user_block.storage_type`, …) and the message
//! lists the accepted values. What Gyre cannot serve yet (`engine.type:
//! redis`, storage other than memory) decodes fine and is refused by
//! `validate`, with its own message.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// Deserializes one of a fixed set of strings, with a message that names
/// the accepted spellings.
struct Spelling<T> {
    /// What the value is, with its article ("a storage type").
    what: &'static str,
    /// The accepted spellings, as the message should list them.
    allowed: &'static str,
    parse: fn(&str) -> Option<T>,
}

impl<T> Visitor<'_> for Spelling<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.allowed)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v)
            .ok_or_else(|| E::custom(format!("{v:?} is not {}: use {}", self.what, self.allowed)))
    }
}

/// `user_block.storage_type`, `token_revoke.storage_type`,
/// `user_tokens_invalidate.storage_type`: where a protective feature keeps
/// its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageType {
    /// `""` or `"memory"` (the default): process memory.
    #[default]
    Memory,
    /// `"redis"`: the feature's `redis` section (exactly one address, or Sentinel).
    Redis,
    /// `"database"`: PostgreSQL from `database.postgresql`.
    Database,
}

impl StorageType {
    /// Centrifugo's spelling (`memory` for the default, which a config may also write as `""`).
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::Memory => "memory",
            StorageType::Redis => "redis",
            StorageType::Database => "database",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "memory" => Some(StorageType::Memory),
            "redis" => Some(StorageType::Redis),
            "database" => Some(StorageType::Database),
            _ => None,
        }
    }
}

impl Serialize for StorageType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The default prints as `""`, as `defaultconfig` always has, and as
        // Centrifugo PRO's default for this key.
        match self {
            StorageType::Memory => s.serialize_str(""),
            other => s.serialize_str(other.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for StorageType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Spelling {
            what: "a storage type",
            allowed: "\"memory\" (or \"\"), \"redis\" or \"database\"",
            parse: StorageType::parse,
        })
    }
}

/// `engine.type`: where history, presence and pub/sub live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EngineType {
    /// `"memory"` (the default): this process, a single node.
    #[default]
    Memory,
    /// `"redis"`: the `engine.redis` section (a cluster of nodes over Redis, docs/cluster.md).
    Redis,
}

impl EngineType {
    /// Centrifugo's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineType::Memory => "memory",
            EngineType::Redis => "redis",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "memory" => Some(EngineType::Memory),
            "redis" => Some(EngineType::Redis),
            _ => None,
        }
    }
}

impl Serialize for EngineType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EngineType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Spelling {
            what: "an engine type",
            allowed: "\"memory\" or \"redis\"",
            parse: EngineType::parse,
        })
    }
}

/// `http_api.error_mode`: how the server API reports errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorMode {
    /// `""` (the default): errors come in the body of a 200 response.
    #[default]
    Body,
    /// `"transport"`: errors use HTTP statuses.
    Transport,
}

impl ErrorMode {
    /// Centrifugo's spelling (`""` for the default).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorMode::Body => "",
            ErrorMode::Transport => "transport",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "" => Some(ErrorMode::Body),
            "transport" => Some(ErrorMode::Transport),
            _ => None,
        }
    }
}

impl Serialize for ErrorMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Spelling {
            what: "an error mode",
            allowed: "\"\" (errors in the body) or \"transport\"",
            parse: ErrorMode::parse,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_value;
    use serde_json::{Value, json};

    fn de<T: for<'de> Deserialize<'de>>(v: Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    fn load_err(v: Value) -> String {
        load_value(v, &[], &[]).unwrap_err().to_string()
    }

    #[test]
    fn storage_type_spellings() {
        assert_eq!(de::<StorageType>(json!("")).unwrap(), StorageType::Memory);
        assert_eq!(
            de::<StorageType>(json!("memory")).unwrap(),
            StorageType::Memory
        );
        assert_eq!(
            de::<StorageType>(json!("redis")).unwrap(),
            StorageType::Redis
        );
        assert_eq!(
            de::<StorageType>(json!("database")).unwrap(),
            StorageType::Database
        );
        assert!(de::<StorageType>(json!("Redis")).is_err(), "case matters");
        // The default keeps printing as `""`; the others as written.
        assert_eq!(json!(StorageType::Memory), json!(""));
        assert_eq!(json!(StorageType::Redis), json!("redis"));
        assert_eq!(json!(StorageType::Database), json!("database"));
    }

    #[test]
    fn engine_type_spellings() {
        assert_eq!(
            de::<EngineType>(json!("memory")).unwrap(),
            EngineType::Memory
        );
        assert_eq!(de::<EngineType>(json!("redis")).unwrap(), EngineType::Redis);
        assert!(de::<EngineType>(json!("")).is_err());
        assert_eq!(json!(EngineType::Memory), json!("memory"));
        assert_eq!(json!(EngineType::Redis), json!("redis"));
    }

    #[test]
    fn error_mode_spellings() {
        assert_eq!(de::<ErrorMode>(json!("")).unwrap(), ErrorMode::Body);
        assert_eq!(
            de::<ErrorMode>(json!("transport")).unwrap(),
            ErrorMode::Transport
        );
        assert!(de::<ErrorMode>(json!("body")).is_err());
        assert_eq!(json!(ErrorMode::Body), json!(""));
        assert_eq!(json!(ErrorMode::Transport), json!("transport"));
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_accepted_spellings() {
        let e = load_err(json!({"user_block": {"storage_type": "cassandra"}}));
        assert_eq!(
            e,
            "invalid config key `user_block.storage_type`: \"cassandra\" is not a storage type: \
             use \"memory\" (or \"\"), \"redis\" or \"database\""
        );
        let e = load_err(json!({"token_revoke": {"storage_type": 1}}));
        assert!(e.contains("`token_revoke.storage_type`"), "{e}");
        assert!(e.contains("\"redis\" or \"database\""), "{e}");
        let e = load_err(json!({"engine": {"type": "tarantool"}}));
        assert_eq!(
            e,
            "invalid config key `engine.type`: \"tarantool\" is not an engine type: \
             use \"memory\" or \"redis\""
        );
        let e = load_err(json!({"http_api": {"error_mode": "loud"}}));
        assert_eq!(
            e,
            "invalid config key `http_api.error_mode`: \"loud\" is not an error mode: \
             use \"\" (errors in the body) or \"transport\""
        );
    }

    #[test]
    fn environment_values_go_through_the_same_check() {
        let env = [(
            "CENTRIFUGO_USER_TOKENS_INVALIDATE_STORAGE_TYPE".to_string(),
            "mongo".to_string(),
        )];
        let e = load_value(json!({}), &env, &[]).unwrap_err().to_string();
        assert!(e.contains("`user_tokens_invalidate.storage_type`"), "{e}");
        let env = [(
            "CENTRIFUGO_HTTP_API_ERROR_MODE".to_string(),
            "transport".to_string(),
        )];
        let l = load_value(json!({}), &env, &[]).unwrap();
        assert_eq!(l.config.http_api.error_mode, ErrorMode::Transport);
    }
}
