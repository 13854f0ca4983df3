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

/// What a change does.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// issued_before`.
    Invalidate {
        /// User id.
        user: String,
        /// Cut-off, Unix seconds.
        issued_before: i64,
        /// Unix seconds after which it stops applying (0 = never).
        expire_at: i64,
        /// Audit reason.
        reason: Option<String>,
    },
    /// Undoes a user's invalidation.
    ClearInvalidation {
        /// User id.
        user: String,
    },
}

/// A protective change and when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// The key it is about: a user id, or a token id for revocations.
    pub fn key(&self) -> &str {
        match &self.op {
            Op::Block { user, .. }
            | Op::Unblock { user }
            | Op::Invalidate { user, .. }
            | Op::ClearInvalidation { user } => user,
            Op::Revoke { uid, .. } | Op::Unrevoke { uid } => uid,
        }
    }
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
