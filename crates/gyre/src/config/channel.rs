//! Channel name rules: namespace lookup, private (`$`) and user-limited (`#`)
//! channels (protocol.md §6.1, Centrifugo's channel docs).

use super::{Channel, ChannelOptions};
use std::collections::HashMap;
use std::sync::Arc;

/// Resolves a channel name to its namespace options.
#[derive(Debug, Clone)]
pub struct Channels {
    cfg: Channel,
    default: Arc<ChannelOptions>,
    namespaces: HashMap<String, Arc<ChannelOptions>>,
}

/// Why a channel name cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// Longer than `channel.max_length` or empty: 107.
    BadName,
    /// Namespace not configured: 102.
    UnknownNamespace,
}

impl Channels {
    /// Builds the lookup from the `channel` section.
    pub fn new(cfg: &Channel) -> Self {
        Channels {
            cfg: cfg.clone(),
            default: Arc::new(cfg.without_namespace.clone()),
            namespaces: cfg
                .namespaces
                .iter()
                .map(|n| (n.name.clone(), Arc::new(n.clone())))
                .collect(),
        }
    }

    /// The options that apply to `channel`.
    pub fn options(&self, channel: &str) -> Result<Arc<ChannelOptions>, ChannelError> {
        if channel.is_empty() || channel.len() > self.cfg.max_length {
            return Err(ChannelError::BadName);
        }
        let trimmed = channel
            .strip_prefix(self.cfg.private_prefix.as_str())
            .unwrap_or(channel);
        match trimmed.split_once(self.cfg.namespace_boundary.as_str()) {
            Some((ns, _)) => self
                .namespaces
                .get(ns)
                .cloned()
                .ok_or(ChannelError::UnknownNamespace),
            None => Ok(self.default.clone()),
        }
    }

    /// True for channels that need a subscription token (`$` prefix).
    pub fn is_private(&self, channel: &str) -> bool {
        !self.cfg.private_prefix.is_empty() && channel.starts_with(self.cfg.private_prefix.as_str())
    }

    /// True if `channel` is user-limited and lists `user` (`chat:dialog#42,43`).
    pub fn user_allowed(&self, channel: &str, user: &str) -> bool {
        if self.cfg.user_boundary.is_empty() || user.is_empty() {
            return false;
        }
        match channel.rsplit_once(self.cfg.user_boundary.as_str()) {
            Some((_, users)) => users
                .split(self.cfg.user_separator.as_str())
                .any(|u| u == user),
            None => false,
        }
    }

    /// True if the channel name contains the user boundary.
    pub fn is_user_limited(&self, channel: &str) -> bool {
        !self.cfg.user_boundary.is_empty() && channel.contains(self.cfg.user_boundary.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Channels {
        let mut c = Channel::default();
        c.namespaces.push(ChannelOptions {
            name: "chat".into(),
            presence: true,
            ..Default::default()
        });
        c.max_length = 20;
        Channels::new(&c)
    }

    #[test]
    fn resolves_namespaces() {
        let c = channels();
        assert!(c.options("chat:a").unwrap().presence);
        assert!(c.options("$chat:a").unwrap().presence);
        assert!(!c.options("plain").unwrap().presence);
        assert_eq!(
            c.options("nope:x").unwrap_err(),
            ChannelError::UnknownNamespace
        );
        assert_eq!(
            c.options(&"x".repeat(21)).unwrap_err(),
            ChannelError::BadName
        );
        assert!(c.is_private("$chat:a") && !c.is_private("chat:a"));
        assert!(c.user_allowed("chat:d#42,43", "43") && !c.user_allowed("chat:d#42,43", "4"));
    }
}
