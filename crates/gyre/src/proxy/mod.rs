//! HTTP proxies to the application backend (protocol.md §4): `connect`
//! (authenticate a token-less connect) and `refresh` (extend an expiring
//! connection). Only status 200 is success; anything else, or a timeout, is
//! a temporary internal error (100) unless `status_to_code_transforms` maps
//! the status.

use crate::codes::{ClientError, Disconnect};
use crate::config::{ClientProxies, Proxy};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Shared HTTP client plus per-proxy settings.
pub struct ProxyClient {
    http: reqwest::Client,
    connect: Proxy,
    refresh: Proxy,
}

/// What a proxy call can end in besides a result.
#[derive(Debug)]
pub enum ProxyError {
    /// Answer the client with this error.
    Error(ClientError),
    /// Close the connection with this code.
    Disconnect(Disconnect),
}

/// Body of a connect proxy request.
#[derive(Debug, Serialize)]
pub struct ConnectRequest<'a> {
    /// Client id.
    pub client: &'a str,
    /// Transport name.
    pub transport: &'static str,
    /// `json`.
    pub protocol: &'static str,
    /// `json`.
    pub encoding: &'static str,
    /// Client name.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub name: &'a str,
    /// Client version.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub version: &'a str,
    /// Connect data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a RawValue>,
    /// Connect data as base64 (`binary_encoding: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64data: Option<String>,
    /// Channels of `ConnectRequest.subs`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<&'a str>,
}

/// Body of a refresh proxy request.
#[derive(Debug, Serialize)]
pub struct RefreshRequest<'a> {
    /// Client id.
    pub client: &'a str,
    /// Transport name.
    pub transport: &'static str,
    /// `json`.
    pub protocol: &'static str,
    /// `json`.
    pub encoding: &'static str,
    /// User id.
    pub user: &'a str,
    /// Connection meta, if `include_connection_meta`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a RawValue>,
}

/// Server-side subscription options in a connect proxy result.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProxySubOptions {
    /// Channel info.
    pub info: Option<Box<RawValue>>,
    /// Data for the subscribe result.
    pub data: Option<Box<RawValue>>,
    /// Expiry.
    pub expire_at: i64,
}

/// `result` of a connect proxy.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectResult {
    /// User id (`""` = anonymous).
    pub user: String,
    /// Expiry, Unix seconds (0 = none).
    pub expire_at: i64,
    /// Connection info.
    pub info: Option<Box<RawValue>>,
    /// Base64 info.
    pub b64info: String,
    /// Data for the connect result.
    pub data: Option<Box<RawValue>>,
    /// Base64 data.
    pub b64data: String,
    /// Server-side subscriptions.
    pub channels: Vec<String>,
    /// Server-side subscriptions with options.
    pub subs: BTreeMap<String, ProxySubOptions>,
    /// Server-only meta.
    pub meta: Option<Box<RawValue>>,
}

/// `result` of a refresh proxy.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshResult {
    /// The connection must be closed as expired.
    pub expired: bool,
    /// New expiry.
    pub expire_at: i64,
    /// New info.
    pub info: Option<Box<RawValue>>,
    /// Base64 info.
    pub b64info: String,
    /// New meta.
    pub meta: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct Reply<T> {
    result: Option<T>,
    error: Option<ProxyErrorBody>,
    disconnect: Option<ProxyDisconnect>,
}

impl<T> Default for Reply<T> {
    fn default() -> Self {
        Reply {
            result: None,
            error: None,
            disconnect: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProxyErrorBody {
    code: u32,
    message: String,
    temporary: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProxyDisconnect {
    code: u16,
    reason: String,
}

impl ProxyClient {
    /// Builds the client from `client.proxy`.
    pub fn new(cfg: &ClientProxies) -> Self {
        ProxyClient {
            http: reqwest::Client::new(),
            connect: cfg.connect.clone(),
            refresh: cfg.refresh.clone(),
        }
    }

    /// True if the connect proxy is on.
    pub fn connect_enabled(&self) -> bool {
        self.connect.enabled
    }

    /// True if the connect proxy wants `b64data` instead of `data`.
    pub fn connect_binary(&self) -> bool {
        self.connect.binary_encoding
    }

    /// True if the refresh proxy is on.
    pub fn refresh_enabled(&self) -> bool {
        self.refresh.enabled
    }

    /// Calls the connect proxy. `Ok(None)`: the backend returned no result
    /// (no credentials).
    pub async fn connect(
        &self,
        req: &ConnectRequest<'_>,
        http_headers: &HeaderMap,
        emulated: &BTreeMap<String, String>,
    ) -> Result<Option<ConnectResult>, ProxyError> {
        self.call(&self.connect, req, http_headers, emulated).await
    }

    /// Calls the refresh proxy.
    pub async fn refresh(
        &self,
        req: &RefreshRequest<'_>,
        http_headers: &HeaderMap,
    ) -> Result<Option<RefreshResult>, ProxyError> {
        self.call(&self.refresh, req, http_headers, &BTreeMap::new())
            .await
    }

    async fn call<Req: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        p: &Proxy,
        body: &Req,
        http_headers: &HeaderMap,
        emulated: &BTreeMap<String, String>,
    ) -> Result<Option<T>, ProxyError> {
        let mut rb = self.http.post(&p.endpoint).timeout(p.timeout.0).json(body);
        for name in &p.http_headers {
            for v in http_headers.get_all(name.as_str()) {
                rb = rb.header(name.as_str(), v.clone());
            }
        }
        for name in &p.emulated_headers {
            if let Some((_, v)) = emulated.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                rb = rb.header(name.as_str(), v.as_str());
            }
        }
        for (k, v) in &p.http.static_headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let internal = || ProxyError::Error(crate::codes::ClientError::INTERNAL.into());
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(endpoint = %p.endpoint, error = %e, "proxy request failed");
                return Err(internal());
            }
        };
        let status = resp.status().as_u16();
        if status != 200 {
            if let Some(t) = p
                .http
                .status_to_code_transforms
                .iter()
                .find(|t| t.status_code == status)
            {
                if let Some(e) = &t.to_error {
                    return Err(ProxyError::Error(ClientError {
                        code: e.code,
                        message: e.message.clone(),
                        temporary: e.temporary,
                    }));
                }
                if let Some(d) = &t.to_disconnect {
                    return Err(ProxyError::Disconnect(Disconnect::new(
                        d.code,
                        d.reason.clone(),
                    )));
                }
            }
            tracing::warn!(endpoint = %p.endpoint, status, "proxy answered a non-200 status");
            return Err(internal());
        }
        let bytes = resp.bytes().await.map_err(|_| internal())?;
        let reply: Reply<T> = serde_json::from_slice(&bytes).map_err(|e| {
            tracing::warn!(endpoint = %p.endpoint, error = %e, "proxy answered a body that is not a proxy reply");
            internal()
        })?;
        if let Some(d) = reply.disconnect {
            return Err(ProxyError::Disconnect(Disconnect::new(d.code, d.reason)));
        }
        if let Some(e) = reply.error {
            return Err(ProxyError::Error(ClientError {
                code: e.code,
                message: e.message,
                temporary: e.temporary,
            }));
        }
        Ok(reply.result)
    }
}
