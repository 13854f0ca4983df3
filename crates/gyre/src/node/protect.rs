//! Applying protective changes to live connections. Each change touches only
//! the affected connections, found through the hub's user or `jti` index —
//! never a scan of every connection.

use super::Node;
use crate::transport::outbox::Control;

impl Node {
    /// Blocks a user and closes all of its connections at once.
    pub fn block_user(&self, user: &str, expire_at: i64, reason: Option<&str>) -> usize {
        let now = crate::auth::now();
        self.protect.block(user, expire_at, reason, now);
        tracing::info!(
            user,
            expire_at,
            reason = reason.unwrap_or(""),
            "user blocked"
        );
        let d = self.protect_codes.block.clone();
        let conns = self.hub.user_connections(user);
        for h in &conns {
            h.outbox.disconnect(d.clone());
        }
        crate::metrics::Metrics::add(&self.metrics.closed_blocked, conns.len() as u64);
        conns.len()
    }

    /// Revokes a token id; connections holding it re-check their tokens.
    pub fn revoke_token(&self, uid: &str, expire_at: i64, reason: Option<&str>) -> usize {
        self.protect
            .revoke(uid, expire_at, reason, crate::auth::now());
        tracing::info!(
            uid,
            expire_at,
            reason = reason.unwrap_or(""),
            "token revoked"
        );
        let conns = self.hub.token_connections(uid);
        for h in &conns {
            h.outbox.push_control(Control::Recheck);
        }
        crate::metrics::Metrics::add(&self.metrics.rechecks, conns.len() as u64);
        conns.len()
    }

    /// Invalidates a user's tokens issued before a time; the user's
    /// connections re-check their connection and subscription tokens.
    pub fn invalidate_user_tokens(
        &self,
        user: &str,
        issued_before: i64,
        expire_at: i64,
        reason: Option<&str>,
    ) -> usize {
        self.protect
            .invalidate(user, issued_before, expire_at, reason, crate::auth::now());
        tracing::info!(
            user,
            issued_before,
            expire_at,
            reason = reason.unwrap_or(""),
            "user tokens invalidated"
        );
        let conns = self.hub.user_connections(user);
        for h in &conns {
            h.outbox.push_control(Control::Recheck);
        }
        crate::metrics::Metrics::add(&self.metrics.rechecks, conns.len() as u64);
        conns.len()
    }
}
