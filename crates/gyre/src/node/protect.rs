//! Protective changes and checks. Every change (block, unblock, revoke,
//! invalidate and their undos) is one [`Change`] that takes one path:
//! [`Node::protect`] writes it to the feature's store (an error answers
//! 100 and applies nothing), then [`Node::apply_protect`] applies it to the
//! in-memory sets and to live connections. Other sources of changes (store
//! notifications, reloads, cluster messages) will call `apply_protect`
//! only, so they reach live connections exactly as a local API call does.
//! Each change touches only the affected connections, found through the
//! hub's user or `jti` index, never a scan of every connection.

use super::Node;
use super::error::NodeError;
use super::handle::TokenId;
use super::outbox::Instruction;
use crate::metrics::Metrics;
use crate::protect::{Change, Listed, Op, TokenVerdict};

impl Node {
    /// Makes a protective change: store first (which also announces it to
    /// the other nodes), then the sets and live connections. A store that
    /// fails answers the error and applies nothing anywhere. (The store's
    /// own announcement of the change may reach this node first; applying
    /// it twice changes nothing.)
    pub async fn protect(&self, change: Change) -> Result<(), NodeError> {
        let kind = change.kind();
        if let Err(e) = self.stores.get(kind).write(kind, &change, &self.id).await {
            Metrics::inc(&self.metrics.protect_store_errors);
            return Err(e.into());
        }
        self.apply_protect(&change);
        // With memory storage in a cluster the other nodes hear it over
        // Redis. Applied here either way; when the announcement fails the
        // API answers 100 (not a false success), and the change is
        // announced again once Redis is back (docs/cluster.md).
        if let Err(e) = self.announce_protect(&change).await {
            self.keep_unannounced(change);
            return Err(e);
        }
        Ok(())
    }

    /// Applies a change to the in-memory sets and to live connections:
    /// blocked users' connections close at once (3503 by default); holders
    /// of a revoked or invalidated token re-check their tokens (3014 for a
    /// connection token, an `unsubscribe` push for a subscription token).
    /// A change older than what it is about is ignored. Returns how many
    /// connections it reached.
    pub(crate) fn apply_protect(&self, change: &Change) -> usize {
        if !self.protect.apply(change) {
            tracing::debug!(?change, "stale protective change ignored");
            return 0;
        }
        self.apply_live(change)
    }

    /// The live-connection half of [`Node::apply_protect`], for a change
    /// already in the sets (a reload applies the sets in bulk).
    pub(crate) fn apply_live(&self, change: &Change) -> usize {
        match &change.op {
            Op::Block {
                user,
                expire_at,
                reason,
            } => {
                tracing::info!(
                    user,
                    expire_at,
                    reason = reason.as_deref().unwrap_or(""),
                    "user blocked"
                );
                let d = &self.protect_codes.block;
                let conns = self.hub.user_connections(user);
                for h in &conns {
                    h.outbox.disconnect(d.clone());
                }
                Metrics::add(&self.metrics.closed_blocked, conns.len() as u64);
                conns.len()
            }
            Op::Revoke {
                uid,
                expire_at,
                reason,
            } => {
                tracing::info!(
                    uid,
                    expire_at,
                    reason = reason.as_deref().unwrap_or(""),
                    "token revoked"
                );
                self.recheck(self.hub.token_connections(uid))
            }
            Op::Invalidate {
                user,
                channel,
                issued_before,
                expire_at,
                reason,
            } => {
                tracing::info!(
                    user,
                    channel = channel.as_deref().unwrap_or(""),
                    issued_before,
                    expire_at,
                    reason = reason.as_deref().unwrap_or(""),
                    "user tokens invalidated"
                );
                self.recheck(self.hub.user_connections(user))
            }
            Op::Unblock { user } => {
                tracing::info!(user, "user unblocked");
                0
            }
            Op::Unrevoke { uid } => {
                tracing::info!(uid, "token revocation removed");
                0
            }
            Op::ClearInvalidation { user, channel } => {
                tracing::info!(
                    user,
                    channel = channel.as_deref().unwrap_or(""),
                    "user token invalidation removed"
                );
                0
            }
        }
    }

    fn recheck(&self, conns: Vec<std::sync::Arc<super::handle::ClientHandle>>) -> usize {
        for h in &conns {
            h.outbox.push_instruction(Instruction::Recheck);
        }
        Metrics::add(&self.metrics.rechecks, conns.len() as u64);
        conns.len()
    }

    /// Is `user` blocked now? (False while `user_block` is disabled, and
    /// for anonymous users.) A look-up in memory, no allocation.
    pub(crate) fn is_blocked(&self, user: &str, now: i64) -> bool {
        self.cfg.user_block.enabled && self.protect.is_blocked(user, now)
    }

    /// Checks a connection token of `user` against the enabled protective
    /// features; with `channel`, a subscription token for that channel.
    pub(crate) fn check_token(
        &self,
        user: &str,
        channel: Option<&str>,
        t: &TokenId,
        now: i64,
    ) -> TokenVerdict {
        if t.is_empty() {
            return TokenVerdict::Valid;
        }
        let jti = (self.cfg.token_revoke.enabled && !t.uid.is_empty()).then_some(t.uid.as_str());
        let iat = if self.cfg.user_tokens_invalidate.enabled {
            t.issued_at
        } else {
            0
        };
        match channel {
            None => self.protect.check_token(user, jti, iat, now),
            Some(ch) => self.protect.check_sub_token(user, ch, jti, iat, now),
        }
    }

    /// A user's live block, if any.
    pub async fn block_status(&self, user: &str) -> Result<Option<Listed>, NodeError> {
        Ok(self.protect.block_status(user, crate::auth::now()))
    }

    /// Live blocks ordered by user after `cursor`, at most `limit`, and
    /// whether more follow.
    pub async fn block_list(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Listed>, bool), NodeError> {
        Ok(self.protect.list_blocks(cursor, limit, crate::auth::now()))
    }

    /// Live revocations ordered by token id after `cursor`, at most `limit`,
    /// and whether more follow.
    pub async fn revoked_tokens(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Listed>, bool), NodeError> {
        Ok(self.protect.list_revoked(cursor, limit, crate::auth::now()))
    }

    /// Live invalidations, one user's or all.
    pub async fn user_tokens_invalidations(
        &self,
        user: Option<&str>,
    ) -> Result<Vec<Listed>, NodeError> {
        Ok(self.protect.list_invalidations(user, crate::auth::now()))
    }

    /// Sizes of the three protective tables (for `/metrics`).
    pub(crate) fn protect_sizes(&self) -> (usize, usize, usize) {
        self.protect.sizes()
    }
}
