//! Configuration: Centrifugo v6 keys, v5 aliases, `CENTRIFUGO_*` environment
//! variables and command-line overrides (protocol.md §6).

mod backend;
pub mod channel;
mod compat;
pub mod duration;
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
