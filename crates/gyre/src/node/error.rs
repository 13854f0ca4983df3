//! Backend failures and the one place they become Centrifugo codes.
//!
//! Every backend family has its own error type (`BrokerError`,
//! `PresenceError`, `StoreError`); the node wraps them in [`NodeError`],
//! and the client protocol and the server API both take their code from
//! [`NodeError::client_error`] / [`NodeError::api_error`]. A backend fault
//! is always 100 `internal server error` (temporary for clients, so SDKs
//! retry); only a position that cannot be recovered is 112 (protocol.md §3).

use crate::api::ApiError;
use crate::codes::ClientError;

/// A broker (history, pub/sub) could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The backend is unreachable or answered with an error.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

/// A presence backend could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    /// The backend is unreachable or answered with an error.
    #[error("presence unavailable: {0}")]
    Unavailable(String),
}

/// A protective store (blocks, revocations, invalidations) could not
/// persist or load a change. Nothing is applied when a write fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store is unreachable or answered with an error.
    #[error("protective store unavailable: {0}")]
    Unavailable(String),
}

/// Why a node operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Broker failure: 100.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// Presence failure: 100.
    #[error(transparent)]
    Presence(#[from] PresenceError),
    /// Protective store failure: 100.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `since` names another epoch or a position no longer kept: 112.
    #[error("unrecoverable position")]
    Unrecoverable,
}

impl NodeError {
    /// The client protocol's error for this failure.
    pub fn client_error(&self) -> ClientError {
        match self {
            NodeError::Unrecoverable => ClientError::UNRECOVERABLE_POSITION.into(),
            NodeError::Broker(_) | NodeError::Presence(_) | NodeError::Store(_) => {
                ClientError::INTERNAL.into()
            }
        }
    }

    /// The server API's error for this failure.
    pub fn api_error(&self) -> ApiError {
        match self {
            NodeError::Unrecoverable => ApiError::unrecoverable(),
            NodeError::Broker(_) | NodeError::Presence(_) | NodeError::Store(_) => {
                ApiError::internal()
            }
        }
    }

    /// Logs a backend fault once, where it is turned into a code.
    pub(crate) fn log(&self, op: &'static str) {
        if !matches!(self, NodeError::Unrecoverable) {
            tracing::error!(op, error = %self, "backend failure");
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        e.log("api");
        e.api_error()
    }
}

impl From<NodeError> for ClientError {
    fn from(e: NodeError) -> Self {
        e.log("client");
        e.client_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_faults_are_100_and_only_positions_are_112() {
        let faults = [
            NodeError::Broker(BrokerError::Unavailable("x".into())),
            NodeError::Presence(PresenceError::Unavailable("x".into())),
            NodeError::Store(StoreError::Unavailable("x".into())),
        ];
        for e in faults {
            assert_eq!(e.client_error().code, 100);
            assert!(e.client_error().temporary);
            assert_eq!(e.api_error().code, 100);
        }
        assert_eq!(NodeError::Unrecoverable.client_error().code, 112);
        assert_eq!(NodeError::Unrecoverable.api_error().code, 112);
    }
}
