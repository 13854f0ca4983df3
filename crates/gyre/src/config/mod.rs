//! Configuration: Centrifugo v6 keys, v5 aliases, `CENTRIFUGO_*` environment
//! variables and command-line overrides (protocol.md §6).

mod backend;
pub mod channel;
mod compat;
pub mod duration;
mod env_namespaces;
pub mod load;
mod selectors;
pub mod types;
mod validate;

pub use backend::{Database, OneOrMany, Postgres, Redis, Tls};
pub use channel::Channels;
pub use duration::Dur;
pub use load::{Loaded, load, load_value};
pub use selectors::{EngineType, ErrorMode, StorageType};
pub use types::*;

/// Why a configuration could not be used. Each variant names the file, key
/// or environment variable and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// File path.
        path: String,
        /// OS error.
        reason: String,
    },
    /// The file is not valid JSON/YAML/TOML.
    #[error("cannot parse config file {path}: {reason}")]
    Parse {
        /// File path.
        path: String,
        /// Parser error.
        reason: String,
    },
    /// A key holds a value Gyre cannot use.
    #[error("invalid config key `{key}`: {reason}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An environment variable holds a value Gyre cannot use.
    #[error("invalid environment variable {name}: {reason}")]
    Env {
        /// Variable name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Config;
    use super::load::leaves;
    use serde_json::Value;

    /// `gyre defaultconfig` prints `Config::default()`. The baseline is its
    /// output before the selectors and backend sections were typed: every
    /// key it has must keep its value (a default changing is a behaviour
    /// change, never a side effect of a refactor). New keys may appear; the
    /// typed `engine.redis` added exactly these.
    #[test]
    fn defaultconfig_keeps_every_baseline_value() {
        let baseline: Value =
            serde_json::from_str(include_str!("testdata/defaultconfig_baseline.json")).unwrap();
        let now = serde_json::to_value(Config::default()).unwrap();
        let (mut old, mut new) = (Vec::new(), Vec::new());
        leaves("", &baseline, &mut old);
        leaves("", &now, &mut new);
        for (path, value) in &old {
            let current = new.iter().find(|(p, _)| p == path).map(|(_, v)| v);
            assert_eq!(current, Some(value), "default of {path} changed");
        }
        let added_to_redis: Vec<&str> = new
            .iter()
            .filter(|(p, _)| p.starts_with("engine.redis.") && !old.iter().any(|(o, _)| o == p))
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(
            added_to_redis,
            [
                "engine.redis.cluster_address",
                "engine.redis.history_use_lists",
                "engine.redis.presence_ttl",
                "engine.redis.sentinel_address",
                "engine.redis.sentinel_master_name",
                "engine.redis.sentinel_password",
                "engine.redis.sentinel_user",
                "engine.redis.tls.cert_pem",
                "engine.redis.tls.client_ca_pem",
                "engine.redis.tls.enabled",
                "engine.redis.tls.insecure_skip_verify",
                "engine.redis.tls.key_pem",
                "engine.redis.tls.server_ca_pem",
                "engine.redis.tls.server_name",
            ]
        );
    }
}
