//! Centrifugo's wire codes (protocol.md §2): client error codes carried in
//! `Reply.error`, unsubscribe codes in `unsubscribe` pushes and disconnect
//! codes in WebSocket close frames. Kept as named values so that every place
//! that sends one spells it the same way.

use serde::Serialize;

/// An error answered to a client command (`{"id":N,"error":{...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code} {message}")]
pub struct ClientError {
    /// Numeric code, 100+ for Centrifugo's own, 400-1999 for applications.
    pub code: u32,
    /// Human readable text; the SDKs require it to be present (sdks.md §5).
    pub message: String,
    /// Set on retryable errors (100, 111); omitted otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
}

impl ClientError {
    const fn builtin(code: u32, message: &'static str, temporary: bool) -> BuiltinError {
        BuiltinError {
            code,
            message,
            temporary,
        }
    }
    /// 100 internal server error (temporary).
    pub const INTERNAL: BuiltinError = Self::builtin(100, "internal server error", true);
    /// 101 unauthorized.
    pub const UNAUTHORIZED: BuiltinError = Self::builtin(101, "unauthorized", false);
    /// 102 unknown channel.
    pub const UNKNOWN_CHANNEL: BuiltinError = Self::builtin(102, "unknown channel", false);
    /// 103 permission denied.
    pub const PERMISSION_DENIED: BuiltinError = Self::builtin(103, "permission denied", false);
    /// 104 method not found.
    pub const METHOD_NOT_FOUND: BuiltinError = Self::builtin(104, "method not found", false);
    /// 105 already subscribed.
    pub const ALREADY_SUBSCRIBED: BuiltinError = Self::builtin(105, "already subscribed", false);
    /// 106 limit exceeded.
    pub const LIMIT_EXCEEDED: BuiltinError = Self::builtin(106, "limit exceeded", false);
    /// 107 bad request.
    pub const BAD_REQUEST: BuiltinError = Self::builtin(107, "bad request", false);
    /// 108 not available.
    pub const NOT_AVAILABLE: BuiltinError = Self::builtin(108, "not available", false);
    /// 109 token expired: the SDKs fetch a new token and retry.
    pub const TOKEN_EXPIRED: BuiltinError = Self::builtin(109, "token expired", false);
    /// 110 expired.
    pub const EXPIRED: BuiltinError = Self::builtin(110, "expired", false);
    /// 111 too many requests (temporary).
    pub const TOO_MANY_REQUESTS: BuiltinError = Self::builtin(111, "too many requests", true);
    /// 112 unrecoverable position.
    pub const UNRECOVERABLE_POSITION: BuiltinError =
        Self::builtin(112, "unrecoverable position", false);
}

/// A compile-time error value, turned into [`ClientError`] when sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinError {
    /// Code.
    pub code: u32,
    /// Message.
    pub message: &'static str,
    /// Temporary flag.
    pub temporary: bool,
}

impl From<BuiltinError> for ClientError {
    fn from(e: BuiltinError) -> Self {
        ClientError {
            code: e.code,
            message: e.message.to_string(),
            temporary: e.temporary,
        }
    }
}

/// A reason to close a client connection; travels in the WebSocket close
/// frame (protocol.md §1.2: the WebSocket transport sends no disconnect push).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disconnect {
    /// 3000-3999 for Centrifugo's, 4000-4999 for applications.
    pub code: u16,
    /// Short plain-words reason (≤ 123 bytes fit a close frame).
    pub reason: String,
}

impl Disconnect {
    /// Builds a disconnect with the given code and reason.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Disconnect {
            code,
            reason: reason.into(),
        }
    }
    /// 3001 shutdown.
    pub fn shutdown() -> Self {
        Self::new(3001, "shutdown")
    }
    /// 3004 internal server error.
    pub fn internal() -> Self {
        Self::new(3004, "internal server error")
    }
    /// 3005 connection expired.
    pub fn expired() -> Self {
        Self::new(3005, "connection expired")
    }
    /// 3006 subscription expired.
    pub fn sub_expired() -> Self {
        Self::new(3006, "subscription expired")
    }
    /// 3008 slow.
    pub fn slow() -> Self {
        Self::new(3008, "slow")
    }
    /// 3009 write error.
    pub fn write_error() -> Self {
        Self::new(3009, "write error")
    }
    /// 3010 insufficient state.
    pub fn insufficient_state() -> Self {
        Self::new(3010, "insufficient state")
    }
    /// 3012 no pong.
    pub fn no_pong() -> Self {
        Self::new(3012, "no pong")
    }
    /// 3014 state invalidated: SDKs drop their token and call getToken.
    pub fn state_invalidated() -> Self {
        Self::new(3014, "state invalidated")
    }
    /// 3500 invalid token.
    pub fn invalid_token() -> Self {
        Self::new(3500, "invalid token")
    }
    /// 3501 bad request.
    pub fn bad_request() -> Self {
        Self::new(3501, "bad request")
    }
    /// 3502 stale.
    pub fn stale() -> Self {
        Self::new(3502, "stale")
    }
    /// 3503 force disconnect.
    pub fn force() -> Self {
        Self::new(3503, "force disconnect")
    }
    /// 3504 connection limit.
    pub fn connection_limit() -> Self {
        Self::new(3504, "connection limit")
    }
    /// 3505 channel limit.
    pub fn channel_limit() -> Self {
        Self::new(3505, "channel limit")
    }
    /// 3507 permission denied.
    pub fn permission_denied() -> Self {
        Self::new(3507, "permission denied")
    }
    /// 3508 not available.
    pub fn not_available() -> Self {
        Self::new(3508, "not available")
    }
}

/// Unsubscribe push codes (protocol.md §2.2).
pub(crate) mod unsub {
    /// Terminal: server unsubscribed the client.
    pub(crate) const SERVER: (u32, &str) = (2000, "server unsubscribe");
    /// Resubscribe with a new subscription token.
    pub(crate) const EXPIRED: (u32, &str) = (2501, "subscription expired");
    /// Resubscribe after dropping the cached token (revoked subscription token).
    pub(crate) const STATE_INVALIDATED: (u32, &str) = (2502, "state invalidated");
}
