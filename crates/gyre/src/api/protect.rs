//! Protective API methods: Centrifugo PRO's `block_user`, `unblock_user`,
//! `revoke_token`, `invalidate_user_tokens` and `connections` (protocol.md
//! §5.5), plus Gyre's inspection extensions `block_list`,
//! `user_block_status`, `revoked_tokens` and `user_tokens_invalidations`.

use super::ApiError;
use crate::node::Node;
use crate::protect::{Change, Op};
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest audit reason accepted.
const MAX_REASON: usize = 256;
/// Default and largest page of the list methods.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn required(s: &str) -> Result<(), ApiError> {
    if s.is_empty() {
        Err(ApiError::bad_request())
    } else {
        Ok(())
    }
}

/// Farthest `expire_at` accepted: a century ahead. A later one is a unit
/// mistake (milliseconds instead of seconds) or a typo that would lock a
/// user out for millennia; "never" is written 0.
const MAX_AHEAD_SECS: i64 = 100 * 365 * 86_400;

/// How far `issued_before` may be ahead of this server's clock (for an app
/// server whose clock runs a little ahead). A cut-off later than that would
/// refuse tokens not yet issued: a block in disguise, and in milliseconds a
/// lock-out forever.
const MAX_CUTOFF_AHEAD_SECS: i64 = 3600;

/// `expire_at` must be in the future and within a century when given (0
/// or absent = never); otherwise 107.
fn expiry(expire_at: Option<i64>, now: i64) -> Result<i64, ApiError> {
    match expire_at {
        None | Some(0) => Ok(0),
        Some(t) if t > now && t - now <= MAX_AHEAD_SECS => Ok(t),
        Some(_) => Err(ApiError::bad_request()),
    }
}

/// `issued_before`: absent or 0 = now; otherwise positive and at most an
/// hour ahead; otherwise 107.
fn cutoff(issued_before: Option<i64>, now: i64) -> Result<i64, ApiError> {
    match issued_before {
        None | Some(0) => Ok(now),
        Some(t) if t > 0 && t <= now.saturating_add(MAX_CUTOFF_AHEAD_SECS) => Ok(t),
        Some(_) => Err(ApiError::bad_request()),
    }
}

fn reason(r: &Option<String>) -> Result<Option<&str>, ApiError> {
    match r.as_deref() {
        Some(s) if s.len() > MAX_REASON => Err(ApiError::bad_request()),
        Some("") | None => Ok(None),
        Some(s) => Ok(Some(s)),
    }
}

fn enabled(on: bool) -> Result<(), ApiError> {
    if on {
        Ok(())
    } else {
        Err(ApiError::not_available())
    }
}

/// `block_user` params.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct BlockUser {
    user: String,
    expire_at: Option<i64>,
    reason: Option<String>,
}

pub(super) async fn block_user(node: &Node, p: BlockUser) -> Result<Value, ApiError> {
    enabled(node.cfg().user_block.enabled)?;
    required(&p.user)?;
    let expire_at = expiry(p.expire_at, crate::auth::now())?;
    let reason = reason(&p.reason)?.map(Into::into);
    let op = Op::Block {
        user: p.user,
        expire_at,
        reason,
    };
    node.protect(Change::now(op)).await?;
    Ok(json!({}))
}

/// `unblock_user` params.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct UserParams {
    user: String,
}

pub(super) async fn unblock_user(node: &Node, p: UserParams) -> Result<Value, ApiError> {
    enabled(node.cfg().user_block.enabled)?;
    required(&p.user)?;
    node.protect(Change::now(Op::Unblock { user: p.user }))
        .await?;
    Ok(json!({}))
}

/// `revoke_token` params.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RevokeToken {
    uid: String,
    expire_at: Option<i64>,
    reason: Option<String>,
}

pub(super) async fn revoke_token(node: &Node, p: RevokeToken) -> Result<Value, ApiError> {
    enabled(node.cfg().token_revoke.enabled)?;
    required(&p.uid)?;
    let expire_at = expiry(p.expire_at, crate::auth::now())?;
    let reason = reason(&p.reason)?.map(Into::into);
    let op = Op::Revoke {
        uid: p.uid,
        expire_at,
        reason,
    };
    node.protect(Change::now(op)).await?;
    Ok(json!({}))
}

/// `invalidate_user_tokens` params.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct InvalidateUserTokens {
    user: String,
    issued_before: Option<i64>,
    expire_at: Option<i64>,
    channel: Option<String>,
    reason: Option<String>,
}

pub(super) async fn invalidate_user_tokens(
    node: &Node,
    p: InvalidateUserTokens,
) -> Result<Value, ApiError> {
    enabled(node.cfg().user_tokens_invalidate.enabled)?;
    required(&p.user)?;
    let now = crate::auth::now();
    let expire_at = expiry(p.expire_at, now)?;
    let issued_before = cutoff(p.issued_before, now)?;
    let reason = reason(&p.reason)?.map(Into::into);
    let op = Op::Invalidate {
        user: p.user,
        channel: p.channel.filter(|c| !c.is_empty()),
        issued_before,
        expire_at,
        reason,
    };
    node.protect(Change::now(op)).await?;
    Ok(json!({}))
}

/// `unrevoke_token` params (Gyre extension).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct UnrevokeToken {
    uid: String,
}

/// `unrevoke_token` (Gyre extension): removes a revocation made by mistake.
/// Stored and applied like `revoke_token`; tokens with that `jti` are
/// accepted again from then on (connections already closed stay closed).
pub(super) async fn unrevoke_token(node: &Node, p: UnrevokeToken) -> Result<Value, ApiError> {
    enabled(node.cfg().token_revoke.enabled)?;
    required(&p.uid)?;
    node.protect(Change::now(Op::Unrevoke { uid: p.uid }))
        .await?;
    Ok(json!({}))
}

/// `clear_user_tokens_invalidation` params (Gyre extension).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ClearInvalidation {
    user: String,
    channel: Option<String>,
}

/// `clear_user_tokens_invalidation` (Gyre extension): removes a user's
/// invalidation (or, with `channel`, that channel's), e.g. one made for the
/// wrong user or with a cut-off later than intended.
pub(super) async fn clear_user_tokens_invalidation(
    node: &Node,
    p: ClearInvalidation,
) -> Result<Value, ApiError> {
    enabled(node.cfg().user_tokens_invalidate.enabled)?;
    required(&p.user)?;
    let op = Op::ClearInvalidation {
        user: p.user,
        channel: p.channel.filter(|c| !c.is_empty()),
    };
    node.protect(Change::now(op)).await?;
    Ok(json!({}))
}

/// `connections` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Connections {
    user: String,
    expression: String,
}

/// One connection in the `connections` result (Centrifugo PRO's
/// ConnectionInfo plus `client` and `info`). Payloads stay raw JSON.
#[derive(serde::Serialize)]
struct ConnectionInfo<'a> {
    client: &'a str,
    user: &'a str,
    transport: &'static str,
    protocol: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    app_name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    app_version: &'a str,
    connected_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<crate::protocol::Raw>,
    state: ConnectionState<'a>,
}

#[derive(serde::Serialize)]
struct ConnectionState<'a> {
    channels: std::collections::BTreeMap<&'a str, Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_token: Option<&'a crate::node::handle::TokenId>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    subscription_tokens: &'a std::collections::BTreeMap<String, crate::node::handle::TokenId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a serde_json::value::RawValue>,
}

#[derive(serde::Serialize)]
struct Source {
    source: u8,
}

pub(super) async fn connections(
    node: &Node,
    p: Connections,
) -> Result<Box<serde_json::value::RawValue>, ApiError> {
    if !p.expression.is_empty() {
        return Err(ApiError::not_available()); // CEL expressions are not supported
    }
    required(&p.user)?;
    let out = node.connections(&p.user).await?;
    Ok(super::raw(&Wrapper { connections: out }))
}

/// The `connections` API's description of one connection (also what a
/// node answers another node's survey with).
pub(crate) fn connection_item(
    h: &crate::node::handle::ClientHandle,
) -> Box<serde_json::value::RawValue> {
    let info = h.info.lock().conn_info.clone();
    let st = h.state.lock();
    let item = ConnectionInfo {
        client: &h.id,
        user: &h.user,
        transport: h.transport.name(),
        protocol: h.protocol.name(),
        app_name: &h.app_name,
        app_version: &h.app_version,
        connected_at_ms: h.connected_at_ms,
        info,
        state: ConnectionState {
            channels: st
                .channels
                .iter()
                .map(|(c, s)| (c.as_str(), Source { source: *s }))
                .collect(),
            connection_token: (!st.token.is_empty()).then_some(&st.token),
            subscription_tokens: &st.sub_tokens,
            meta: h.meta.as_deref(),
        },
    };
    super::raw(&item)
}

#[derive(serde::Serialize)]
struct Wrapper {
    connections: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
}

/// Paging params of the list methods.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ListParams {
    user: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn limit(l: Option<i64>) -> Result<usize, ApiError> {
    match l {
        None | Some(0) => Ok(DEFAULT_LIMIT),
        Some(n) if n > 0 => Ok((n as usize).min(MAX_LIMIT)),
        Some(_) => Err(ApiError::bad_request()),
    }
}

pub(super) async fn block_list(node: &Node, p: ListParams) -> Result<Value, ApiError> {
    if let Some(u) = p.user.as_deref().filter(|u| !u.is_empty()) {
        let blocks: Vec<_> = node.block_status(u).await?.into_iter().collect();
        return Ok(json!({"blocks": blocks}));
    }
    let (blocks, more) = node
        .block_list(
            p.cursor.as_deref().filter(|c| !c.is_empty()),
            limit(p.limit)?,
        )
        .await?;
    let mut r = json!({"blocks": blocks});
    if more && let Some(last) = blocks.last().and_then(|b| b.user.clone()) {
        r["next_cursor"] = json!(last);
    }
    Ok(r)
}

pub(super) async fn user_block_status(node: &Node, p: UserParams) -> Result<Value, ApiError> {
    required(&p.user)?;
    Ok(match node.block_status(&p.user).await? {
        Some(b) => {
            let mut v =
                json!({"blocked": true, "expire_at": b.expire_at, "created_at": b.created_at});
            if let Some(r) = b.reason {
                v["reason"] = json!(r);
            }
            v
        }
        None => json!({"blocked": false}),
    })
}

pub(super) async fn revoked_tokens(node: &Node, p: ListParams) -> Result<Value, ApiError> {
    if p.user.is_some() {
        return Err(ApiError::bad_request());
    }
    let (tokens, more) = node
        .revoked_tokens(
            p.cursor.as_deref().filter(|c| !c.is_empty()),
            limit(p.limit)?,
        )
        .await?;
    let mut r = json!({"tokens": tokens});
    if more && let Some(last) = tokens.last().and_then(|t| t.uid.clone()) {
        r["next_cursor"] = json!(last);
    }
    Ok(r)
}

/// `user_tokens_invalidations` params.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct InvalidationsParams {
    user: Option<String>,
}

pub(super) async fn user_tokens_invalidations(
    node: &Node,
    p: InvalidationsParams,
) -> Result<Value, ApiError> {
    let user = p.user.as_deref().filter(|u| !u.is_empty());
    Ok(json!({"invalidations": node.user_tokens_invalidations(user).await?}))
}
