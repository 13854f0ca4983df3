//! Centrifugo OSS server API methods (protocol.md §5.4).

use super::{ApiError, to_value};
use crate::codes::Disconnect;
use crate::config::ChannelOptions;
use crate::config::channel::ChannelError;
use crate::node::Node;
use crate::node::Targets;
use crate::node::outbox::ServerSubscribe;
use crate::protocol::{HistoryResult, PresenceResult, PresenceStatsResult, StreamPosition, share};
use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn options(node: &Node, channel: &str) -> Result<Arc<ChannelOptions>, ApiError> {
    if channel.is_empty() {
        return Err(ApiError::bad_request());
    }
    node.channels().options(channel).map_err(|e| match e {
        ChannelError::UnknownNamespace => ApiError::unknown_channel(),
        ChannelError::BadName => ApiError::bad_request(),
    })
}

fn payload(
    data: Option<Box<RawValue>>,
    b64data: &str,
) -> Result<crate::protocol::Payload, ApiError> {
    if !b64data.is_empty() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64data)
            .map_err(|_| ApiError::bad_request())?;
        // JSON bytes reach every client; other bytes only protobuf clients
        // (docs/transports.md "Mixed clients and binary data").
        return Ok(crate::protocol::Payload::from_bytes(&bytes));
    }
    data.map(|d| share(d).into())
        .ok_or_else(ApiError::bad_request)
}

/// `publish` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Publish {
    channel: String,
    data: Option<Box<RawValue>>,
    b64data: String,
    skip_history: bool,
    tags: Option<BTreeMap<String, String>>,
    idempotency_key: String,
}

async fn publish_one(
    node: &Node,
    channel: &str,
    data: crate::protocol::Payload,
    tags: &Option<BTreeMap<String, String>>,
    skip_history: bool,
    idempotency_key: &str,
) -> Result<Value, ApiError> {
    let opts = options(node, channel)?;
    let top = node
        .publish(
            channel,
            &opts,
            data,
            None,
            tags.clone().map(Arc::new),
            skip_history,
            Some(idempotency_key),
        )
        .await?;
    Ok(match top {
        Some(t) => json!({"offset": t.offset, "epoch": t.epoch}),
        None => json!({}),
    })
}

pub(super) async fn publish(node: &Node, p: Publish) -> Result<Value, ApiError> {
    let data = payload(p.data, &p.b64data)?;
    publish_one(
        node,
        &p.channel,
        data,
        &p.tags,
        p.skip_history,
        &p.idempotency_key,
    )
    .await
}

/// `broadcast` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Broadcast {
    channels: Vec<String>,
    data: Option<Box<RawValue>>,
    b64data: String,
    skip_history: bool,
    tags: Option<BTreeMap<String, String>>,
    idempotency_key: String,
}

pub(super) async fn broadcast(node: &Node, p: Broadcast) -> Result<Value, ApiError> {
    if p.channels.is_empty() {
        return Err(ApiError::bad_request());
    }
    let data = payload(p.data, &p.b64data)?;
    let mut responses = Vec::with_capacity(p.channels.len());
    for ch in &p.channels {
        responses.push(
            // One publication per channel, each deduplicated on its own.
            match publish_one(
                node,
                ch,
                data.clone(),
                &p.tags,
                p.skip_history,
                &p.idempotency_key,
            )
            .await
            {
                Ok(r) => json!({"result": r}),
                Err(e) => json!({"error": e}),
            },
        );
    }
    Ok(json!({"responses": responses}))
}

/// `subscribe` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Subscribe {
    channel: String,
    user: String,
    client: String,
    session: String,
    expire_at: i64,
    info: Option<Box<RawValue>>,
    data: Option<Box<RawValue>>,
    recover_since: Option<StreamPosition>,
}

pub(super) async fn subscribe(node: &Node, p: Subscribe) -> Result<Value, ApiError> {
    let _ = &p.session;
    options(node, &p.channel)?;
    if p.user.is_empty() && p.client.is_empty() {
        return Err(ApiError::bad_request());
    }
    let s = ServerSubscribe {
        channel: p.channel,
        expire_at: p.expire_at,
        info: p.info.map(share),
        data: p.data.map(share),
        recover_since: p.recover_since,
    };
    node.subscribe_clients(targets(&p.user, &p.client), s)
        .await?;
    Ok(json!({}))
}

fn targets<'a>(user: &'a str, client: &'a str) -> Targets<'a> {
    Targets { user, client }
}

/// `unsubscribe` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Unsubscribe {
    channel: String,
    user: String,
    client: String,
    session: String,
}

pub(super) async fn unsubscribe(node: &Node, p: Unsubscribe) -> Result<Value, ApiError> {
    let _ = &p.session;
    options(node, &p.channel)?;
    if p.user.is_empty() && p.client.is_empty() {
        return Err(ApiError::bad_request());
    }
    node.unsubscribe_clients(
        targets(&p.user, &p.client),
        &p.channel,
        crate::codes::unsub::SERVER,
    )
    .await?;
    Ok(json!({}))
}

/// `disconnect` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DisconnectParams {
    user: String,
    client: String,
    session: String,
    whitelist: Vec<String>,
    disconnect: Option<DisconnectBody>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DisconnectBody {
    code: u16,
    reason: String,
}

pub(super) async fn disconnect(node: &Node, p: DisconnectParams) -> Result<Value, ApiError> {
    let _ = &p.session;
    if p.user.is_empty() && p.client.is_empty() {
        return Err(ApiError::bad_request());
    }
    let d = match p.disconnect {
        Some(b) if b.code > 0 => {
            if !(3000..=4999).contains(&b.code) || b.reason.len() > 120 {
                return Err(ApiError::bad_request());
            }
            Disconnect::new(b.code, b.reason)
        }
        _ => Disconnect::force(),
    };
    node.disconnect(targets(&p.user, &p.client), &p.whitelist, &d)
        .await?;
    Ok(json!({}))
}

/// `refresh` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Refresh {
    user: String,
    client: String,
    session: String,
    expired: bool,
    expire_at: i64,
    info: Option<Box<RawValue>>,
}

pub(super) async fn refresh(node: &Node, p: Refresh) -> Result<Value, ApiError> {
    let _ = &p.session;
    if p.user.is_empty() && p.client.is_empty() {
        return Err(ApiError::bad_request());
    }
    node.refresh_clients(
        targets(&p.user, &p.client),
        p.expired,
        p.expire_at,
        p.info.map(share),
    )
    .await?;
    Ok(json!({}))
}

/// Params naming one channel.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ChannelParams {
    channel: String,
}

pub(super) async fn presence(node: &Node, p: ChannelParams) -> Result<Box<RawValue>, ApiError> {
    if !options(node, &p.channel)?.presence {
        return Err(ApiError::not_available());
    }
    Ok(super::raw(&PresenceResult {
        presence: node.presence(&p.channel).await?,
    }))
}

pub(super) async fn presence_stats(node: &Node, p: ChannelParams) -> Result<Value, ApiError> {
    if !options(node, &p.channel)?.presence {
        return Err(ApiError::not_available());
    }
    let (num_clients, num_users) = node.presence_stats(&p.channel).await?;
    Ok(to_value(&PresenceStatsResult {
        num_clients,
        num_users,
    }))
}

/// `history` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct History {
    channel: String,
    limit: i64,
    since: Option<StreamPosition>,
    reverse: bool,
}

pub(super) async fn history(node: &Node, p: History) -> Result<Box<RawValue>, ApiError> {
    if options(node, &p.channel)?.history_size == 0 {
        return Err(ApiError::not_available());
    }
    let (publications, top) = node
        .history(&p.channel, p.since.as_ref(), p.limit, p.reverse)
        .await?;
    Ok(super::raw(&HistoryResult {
        publications,
        epoch: top.epoch,
        offset: top.offset,
    }))
}

pub(super) async fn history_remove(node: &Node, p: ChannelParams) -> Result<Value, ApiError> {
    if options(node, &p.channel)?.history_size == 0 {
        return Err(ApiError::not_available());
    }
    node.history_remove(&p.channel).await?;
    Ok(json!({}))
}

/// `channels` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Channels {
    pattern: String,
}

pub(super) async fn channels(node: &Node, p: Channels) -> Result<Value, ApiError> {
    let mut out = serde_json::Map::new();
    for (ch, n) in node.channels_info(&p.pattern).await? {
        out.insert(ch, json!({"num_clients": n}));
    }
    Ok(json!({"channels": out}))
}

pub(super) async fn info(node: &Node) -> Result<Value, ApiError> {
    Ok(json!({"nodes": node.info().await?}))
}
