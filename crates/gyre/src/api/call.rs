//! One server API call, parsed before it runs (the shape of mini-redis's
//! `Command`): `Call::parse` decodes a method's params into its typed
//! request, `Call::run` executes it. Parsing first lets `batch` refuse a
//! malformed command before any command has had an effect, as Centrifugo
//! decodes a whole batch before running it.

use super::{ApiError, Reply, methods, protect};
use crate::node::Node;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

/// A parsed API call.
pub(super) enum Call {
    Publish(methods::Publish),
    Broadcast(methods::Broadcast),
    Subscribe(methods::Subscribe),
    Unsubscribe(methods::Unsubscribe),
    Disconnect(methods::DisconnectParams),
    Refresh(methods::Refresh),
    Presence(methods::ChannelParams),
    PresenceStats(methods::ChannelParams),
    History(methods::History),
    HistoryRemove(methods::ChannelParams),
    Channels(methods::Channels),
    Info,
    Rpc,
    Connections(protect::Connections),
    BlockUser(protect::BlockUser),
    UnblockUser(protect::UserParams),
    RevokeToken(protect::RevokeToken),
    InvalidateUserTokens(protect::InvalidateUserTokens),
    UnrevokeToken(protect::UnrevokeToken),
    ClearUserTokensInvalidation(protect::ClearInvalidation),
    BlockList(protect::ListParams),
    UserBlockStatus(protect::UserParams),
    RevokedTokens(protect::ListParams),
    UserTokensInvalidations(protect::InvalidationsParams),
}

/// Decodes params straight from the request bytes (so `data` and `info`
/// pass through byte for byte). Params must be a JSON object (or null for
/// none): serde would also read a struct from an array, and
/// `{"method":"block_user","params":["42"]}` must not block anyone. Any
/// failure is 107, marked as a decode error for the HTTP layer.
fn params<T: DeserializeOwned>(p: &RawValue) -> Result<T, ApiError> {
    let text = p.get().trim();
    let text = if text == "null" { "{}" } else { text };
    if !text.starts_with('{') {
        return Err(ApiError::decode());
    }
    serde_json::from_str(text).map_err(|_| ApiError::decode())
}

impl Call {
    /// Parses the params of `method` (a canonical name, see
    /// [`super::canonical_method`]); unknown methods are 104.
    pub(super) fn parse(method: &str, p: &RawValue) -> Result<Call, ApiError> {
        Ok(match method {
            "publish" => Call::Publish(params(p)?),
            "broadcast" => Call::Broadcast(params(p)?),
            "subscribe" => Call::Subscribe(params(p)?),
            "unsubscribe" => Call::Unsubscribe(params(p)?),
            "disconnect" => Call::Disconnect(params(p)?),
            "refresh" => Call::Refresh(params(p)?),
            "presence" => Call::Presence(params(p)?),
            "presence_stats" => Call::PresenceStats(params(p)?),
            "history" => Call::History(params(p)?),
            "history_remove" => Call::HistoryRemove(params(p)?),
            "channels" => Call::Channels(params(p)?),
            "info" => Call::Info,
            "rpc" => Call::Rpc,
            "connections" => Call::Connections(params(p)?),
            "block_user" => Call::BlockUser(params(p)?),
            "unblock_user" => Call::UnblockUser(params(p)?),
            "revoke_token" => Call::RevokeToken(params(p)?),
            "invalidate_user_tokens" => Call::InvalidateUserTokens(params(p)?),
            "unrevoke_token" => Call::UnrevokeToken(params(p)?),
            "clear_user_tokens_invalidation" => Call::ClearUserTokensInvalidation(params(p)?),
            "block_list" => Call::BlockList(params(p)?),
            "user_block_status" => Call::UserBlockStatus(params(p)?),
            "revoked_tokens" => Call::RevokedTokens(params(p)?),
            "user_tokens_invalidations" => Call::UserTokensInvalidations(params(p)?),
            _ => return Err(ApiError::not_found()),
        })
    }

    /// Runs the call.
    pub(super) async fn run(self, n: &Node) -> Result<Reply, ApiError> {
        let json = |r: Result<Value, ApiError>| r.map(Reply::Json);
        match self {
            Call::Presence(p) => methods::presence(n, p).await.map(Reply::Raw),
            Call::History(p) => methods::history(n, p).await.map(Reply::Raw),
            Call::Connections(p) => protect::connections(n, p).await.map(Reply::Raw),
            Call::Publish(p) => json(methods::publish(n, p).await),
            Call::Broadcast(p) => json(methods::broadcast(n, p).await),
            Call::Subscribe(p) => json(methods::subscribe(n, p).await),
            Call::Unsubscribe(p) => json(methods::unsubscribe(n, p).await),
            Call::Disconnect(p) => json(methods::disconnect(n, p).await),
            Call::Refresh(p) => json(methods::refresh(n, p).await),
            Call::PresenceStats(p) => json(methods::presence_stats(n, p).await),
            Call::HistoryRemove(p) => json(methods::history_remove(n, p).await),
            Call::Channels(p) => json(methods::channels(n, p).await),
            Call::Info => json(methods::info(n).await),
            Call::Rpc => Err(ApiError::not_found()), // no RPC extensions registered (§5.4)
            Call::BlockUser(p) => json(protect::block_user(n, p).await),
            Call::UnblockUser(p) => json(protect::unblock_user(n, p).await),
            Call::RevokeToken(p) => json(protect::revoke_token(n, p).await),
            Call::InvalidateUserTokens(p) => json(protect::invalidate_user_tokens(n, p).await),
            Call::UnrevokeToken(p) => json(protect::unrevoke_token(n, p).await),
            Call::ClearUserTokensInvalidation(p) => {
                json(protect::clear_user_tokens_invalidation(n, p).await)
            }
            Call::BlockList(p) => json(protect::block_list(n, p).await),
            Call::UserBlockStatus(p) => json(protect::user_block_status(n, p).await),
            Call::RevokedTokens(p) => json(protect::revoked_tokens(n, p).await),
            Call::UserTokensInvalidations(p) => {
                json(protect::user_tokens_invalidations(n, p).await)
            }
        }
    }
}
