//! One protective change: the unit that every source of protective data
//! produces and that the node applies in one place (architecture.md §2.4 b).
//! The server API makes them; later, store notifications, reloads and
//! cluster messages will deliver them too, possibly late or twice.
//!
//! Each change carries the moment it was made (`at_ms`, Unix
//! milliseconds). Applying is "newer wins" per key: a change older than
//! what the key already reflects is ignored, so a block delayed past a later
//! unblock does not re-block the user, and a duplicate is harmless.

use super::Kind;
use serde::{Deserialize, Serialize};

/// What a change does. Serialized (for store notifications) as
/// `{"block":{"user":...}}` and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `block_user`: refuse and close the user's connections.
    Block {
        /// User id.
        user: String,
        /// Unix seconds after which the block stops applying (0 = never).
        expire_at: i64,
        /// Audit reason.
        reason: Option<String>,
    },
    /// `unblock_user`.
    Unblock {
        /// User id.
        user: String,
    },
    /// `revoke_token`: refuse tokens with this `jti`.
    Revoke {
        /// Token id (`jti`).
        uid: String,
        /// Unix seconds after which the revocation stops applying (0 = never).
        expire_at: i64,
        /// Audit reason.
        reason: Option<String>,
    },
    /// Undoes a revocation.
    Unrevoke {
        /// Token id (`jti`).
        uid: String,
    },
    /// `invalidate_user_tokens`: refuse the user's tokens with `iat <
    /// issued_before`: connection tokens, or with `channel` only that
    /// channel's subscription tokens (Centrifugo PRO's documented meaning).
    Invalidate {
        /// User id.
        user: String,
        /// Only subscription tokens for this channel.
        channel: Option<String>,
        /// Cut-off, Unix seconds.
        issued_before: i64,
        /// Unix seconds after which it stops applying (0 = never).
        expire_at: i64,
        /// Audit reason.
        reason: Option<String>,
    },
    /// Undoes a user's invalidation (of connection tokens, or of one
    /// channel's subscription tokens).
    ClearInvalidation {
        /// User id.
        user: String,
        /// The channel of a channel invalidation.
        channel: Option<String>,
    },
}

/// A protective change and when it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Unix milliseconds when the change was made (its version).
    pub at_ms: i64,
    /// What it does.
    pub op: Op,
}

impl Change {
    /// A change made now.
    pub fn now(op: Op) -> Self {
        Change {
            at_ms: now_ms(),
            op,
        }
    }

    /// The feature (and table) the change belongs to.
    pub fn kind(&self) -> Kind {
        match &self.op {
            Op::Block { .. } | Op::Unblock { .. } => Kind::Block,
            Op::Revoke { .. } | Op::Unrevoke { .. } => Kind::Revoke,
            Op::Invalidate { .. } | Op::ClearInvalidation { .. } => Kind::Invalidate,
        }
    }

    /// The key it is about: a user id, a token id for revocations, or
    /// [`channel_key`] for a channel invalidation.
    pub fn key(&self) -> std::borrow::Cow<'_, str> {
        match &self.op {
            Op::Block { user, .. } | Op::Unblock { user } => user.into(),
            Op::Invalidate { user, channel, .. } | Op::ClearInvalidation { user, channel } => {
                match channel {
                    Some(ch) => channel_key(user, ch).into(),
                    None => user.into(),
                }
            }
            Op::Revoke { uid, .. } | Op::Unrevoke { uid } => uid.into(),
        }
    }
}

/// The table key of a user's invalidation for one channel: a NUL, the
/// user id's length, the user id and the channel, so that no user id (and
/// no other user's channel) can produce the same key.
pub fn channel_key(user: &str, channel: &str) -> String {
    format!("\0{}:{user}{channel}", user.len())
}

/// The user and channel of a [`channel_key`], or `None` for a plain user key.
pub fn split_channel_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix('\0')?;
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    (rest.len() >= len && rest.is_char_boundary(len)).then(|| rest.split_at(len))
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_keys_cannot_collide_with_users_or_each_other() {
        let k = channel_key("ab", "c:d");
        assert_eq!(split_channel_key(&k), Some(("ab", "c:d")));
        assert_ne!(channel_key("a", "bc"), channel_key("ab", "c"));
        assert_eq!(split_channel_key("plain-user"), None);
        assert_eq!(split_channel_key(&channel_key("", "x")), Some(("", "x")));
    }
}
