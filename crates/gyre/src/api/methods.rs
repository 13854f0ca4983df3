//! Centrifugo OSS server API methods (protocol.md §5.4).

use super::{ApiError, to_value};
use crate::codes::Disconnect;
use crate::config::ChannelOptions;
use crate::config::channel::ChannelError;
use crate::node::Node;
use crate::protocol::{HistoryResult, PresenceResult, PresenceStatsResult, StreamPosition, share};
use crate::transport::outbox::{Control, ServerSubscribe};
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
    node.channels.options(channel).map_err(|e| match e {
        ChannelError::UnknownNamespace => ApiError::unknown_channel(),
        ChannelError::BadName => ApiError::bad_request(),
    })
}

fn payload(data: Option<Box<RawValue>>, b64data: &str) -> Result<crate::protocol::Raw, ApiError> {
    if !b64data.is_empty() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64data)
            .map_err(|_| ApiError::bad_request())?;
        // The JSON protocol embeds payloads as JSON: binary data must be valid JSON here.
        let text = String::from_utf8(bytes).map_err(|_| ApiError::bad_request())?;
        return RawValue::from_string(text)
            .map(share)
            .map_err(|_| ApiError::bad_request());
    }
    data.map(share).ok_or_else(ApiError::bad_request)
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

fn publish_one(
    node: &Node,
    channel: &str,
    data: crate::protocol::Raw,
    tags: &Option<BTreeMap<String, String>>,
    skip_history: bool,
) -> Result<Value, ApiError> {
    let opts = options(node, channel)?;
    let top = node.publish(
        channel,
        &opts,
        data,
        None,
        tags.clone().map(Arc::new),
        skip_history,
    );
    Ok(match top {
        Some(t) => json!({"offset": t.offset, "epoch": t.epoch}),
        None => json!({}),
    })
}

pub(super) fn publish(node: &Node, p: Publish) -> Result<Value, ApiError> {
    let _ = &p.idempotency_key; // accepted; deduplication needs a broker that remembers keys
    let data = payload(p.data, &p.b64data)?;
    publish_one(node, &p.channel, data, &p.tags, p.skip_history)
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
}

pub(super) fn broadcast(node: &Node, p: Broadcast) -> Result<Value, ApiError> {
    if p.channels.is_empty() {
        return Err(ApiError::bad_request());
    }
    let data = payload(p.data, &p.b64data)?;
    let responses: Vec<Value> = p
        .channels
        .iter()
        .map(
            |ch| match publish_one(node, ch, data.clone(), &p.tags, p.skip_history) {
                Ok(r) => json!({"result": r}),
                Err(e) => json!({"error": e}),
            },
        )
        .collect();
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

pub(super) fn subscribe(node: &Node, p: Subscribe) -> Result<Value, ApiError> {
    let _ = &p.session;
    options(node, &p.channel)?;
    if p.user.is_empty() && p.client.is_empty() {
        return Err(ApiError::bad_request());
    }
    let info = p.info.map(share);
    let data = p.data.map(share);
    for h in node.targets(&p.user, &p.client) {
        h.outbox
            .push_control(Control::Subscribe(Box::new(ServerSubscribe {
                channel: p.channel.clone(),
                expire_at: p.expire_at,
                info: info.clone(),
                data: data.clone(),
                recover_since: p.recover_since.clone(),
            })));
    }
    Ok(json!({}))
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

pub(super) fn unsubscribe(node: &Node, p: Unsubscribe) -> Result<Value, ApiError> {
    let _ = &p.session;
    options(node, &p.channel)?;
    if p.user.is_empty() && p.client.is_empty() {
        return Err(ApiError::bad_request());
    }
    let (code, reason) = crate::codes::unsub::SERVER;
    for h in node.targets(&p.user, &p.client) {
        h.outbox.push_control(Control::Unsubscribe {
            channel: p.channel.clone(),
            code,
            reason,
        });
    }
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

pub(super) fn disconnect(node: &Node, p: DisconnectParams) -> Result<Value, ApiError> {
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
    let client = (!p.client.is_empty()).then_some(p.client.as_str());
    if p.user.is_empty() {
        for h in node.targets("", &p.client) {
            h.outbox.disconnect(d.clone());
        }
    } else {
        node.disconnect_user(&p.user, client, &p.whitelist, &d);
    }
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

pub(super) fn refresh(node: &Node, p: Refresh) -> Result<Value, ApiError> {
    let _ = &p.session;
    if p.user.is_empty() && p.client.is_empty() {
        return Err(ApiError::bad_request());
    }
    let info = p.info.map(share);
    for h in node.targets(&p.user, &p.client) {
        h.outbox.push_control(Control::Refresh {
            expired: p.expired,
            expire_at: p.expire_at,
            info: info.clone(),
        });
    }
    Ok(json!({}))
}

/// Params naming one channel.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ChannelParams {
    channel: String,
}

pub(super) fn presence(node: &Node, p: ChannelParams) -> Result<Box<RawValue>, ApiError> {
    if !options(node, &p.channel)?.presence {
        return Err(ApiError::not_available());
    }
    Ok(super::raw(&PresenceResult {
        presence: node.presence.presence(&p.channel),
    }))
}

pub(super) fn presence_stats(node: &Node, p: ChannelParams) -> Result<Value, ApiError> {
    if !options(node, &p.channel)?.presence {
        return Err(ApiError::not_available());
    }
    let (num_clients, num_users) = node.presence.stats(&p.channel);
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

pub(super) fn history(node: &Node, p: History) -> Result<Box<RawValue>, ApiError> {
    if options(node, &p.channel)?.history_size == 0 {
        return Err(ApiError::not_available());
    }
    let (publications, top) = node
        .history(&p.channel, p.since.as_ref(), p.limit, p.reverse)
        .map_err(|_| ApiError::unrecoverable())?;
    Ok(super::raw(&HistoryResult {
        publications,
        epoch: top.epoch,
        offset: top.offset,
    }))
}

pub(super) fn history_remove(node: &Node, p: ChannelParams) -> Result<Value, ApiError> {
    if options(node, &p.channel)?.history_size == 0 {
        return Err(ApiError::not_available());
    }
    node.broker.remove_history(&p.channel);
    Ok(json!({}))
}

/// `channels` params.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Channels {
    pattern: String,
}

pub(super) fn channels(node: &Node, p: Channels) -> Result<Value, ApiError> {
    let mut out = serde_json::Map::new();
    for (ch, n) in node.hub.channels() {
        if p.pattern.is_empty() || crate::transport::ws::glob_match(&p.pattern, &ch) {
            out.insert(ch.to_string(), json!({"num_clients": n}));
        }
    }
    Ok(json!({"channels": out}))
}

pub(super) fn info(node: &Node) -> Value {
    json!({"nodes": [{
        "uid": node.id,
        "name": node.name,
        "version": crate::node::VERSION,
        "num_clients": node.hub.num_clients(),
        "num_users": node.hub.num_users(),
        "num_channels": node.hub.num_channels(),
        "num_subs": node.hub.num_subs(),
        "uptime": node.started.elapsed().as_secs(),
    }]})
}
