//! JWT claim sets for connection and subscription tokens (protocol.md §3.1,
//! §3.2). Payloads (`info`, `data`, `meta`) are kept as raw JSON.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// A value that may be a string or a list of strings (`aud`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// Single string.
    One(String),
    /// List of strings.
    Many(Vec<String>),
}

/// `override` object of subscription options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Override {
    /// `presence`.
    pub presence: Option<BoolValue>,
    /// `join_leave`.
    pub join_leave: Option<BoolValue>,
    /// `force_recovery`.
    pub force_recovery: Option<BoolValue>,
    /// `force_positioning`.
    pub force_positioning: Option<BoolValue>,
    /// `force_push_join_leave`.
    pub force_push_join_leave: Option<BoolValue>,
}

/// `{"value": bool}`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct BoolValue {
    /// The value.
    pub value: bool,
}

/// Options of one server-side subscription in the `subs` claim.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubOptions {
    /// Channel info.
    pub info: Option<Box<RawValue>>,
    /// Base64 channel info.
    pub b64info: String,
    /// Data sent in the subscribe result.
    pub data: Option<Box<RawValue>>,
    /// Base64 data.
    pub b64data: String,
    /// Option overrides.
    #[serde(rename = "override")]
    pub overrides: Option<Override>,
}

/// Claims of a connection token.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectClaims {
    /// User id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
    /// Not before.
    pub nbf: Option<i64>,
    /// Issued at (used by `invalidate_user_tokens`).
    pub iat: Option<f64>,
    /// Token id (used by `revoke_token`).
    pub jti: Option<String>,
    /// Audience.
    pub aud: Option<OneOrMany>,
    /// Issuer.
    pub iss: Option<String>,
    /// Connection info.
    pub info: Option<Box<RawValue>>,
    /// Base64 connection info.
    pub b64info: String,
    /// Server-side subscriptions (ignored when `subs` is present).
    pub channels: Vec<String>,
    /// Server-side subscriptions with options.
    pub subs: BTreeMap<String, SubOptions>,
    /// Server-only metadata.
    pub meta: Option<Box<RawValue>>,
    /// Connection expiry decoupled from `exp` (0 = never).
    pub expire_at: Option<i64>,
    /// Must not be present in a connection token.
    pub channel: Option<serde::de::IgnoredAny>,
}

/// Claims of a subscription token.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeClaims {
    /// User id; must equal the connection's user.
    pub sub: String,
    /// Channel; must equal the subscribed channel.
    pub channel: String,
    /// Client id (deprecated v3 claim); must match when set.
    pub client: String,
    /// Expiry.
    pub exp: Option<i64>,
    /// Not before.
    pub nbf: Option<i64>,
    /// Issued at.
    pub iat: Option<f64>,
    /// Token id.
    pub jti: Option<String>,
    /// Audience.
    pub aud: Option<OneOrMany>,
    /// Issuer.
    pub iss: Option<String>,
    /// Channel info.
    pub info: Option<Box<RawValue>>,
    /// Base64 channel info.
    pub b64info: String,
    /// Subscribe result data.
    pub data: Option<Box<RawValue>>,
    /// Base64 data.
    pub b64data: String,
    /// Option overrides.
    #[serde(rename = "override")]
    pub overrides: Option<Override>,
    /// Subscription expiry decoupled from `exp`.
    pub expire_at: Option<i64>,
}
