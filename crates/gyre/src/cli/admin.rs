//! Operator verbs that call a running server's API (`gyre block-user 42
//! --expire-in 1h --reason spam`), taking the address and key from the same
//! config the server uses, so no curl is needed on the host.

use super::{Cmd, fail};
use crate::config::Config;
use clap::Args;
use serde_json::{Value, json};
use std::process::ExitCode;

/// Where the API is.
#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// API base URL (default: from the config, e.g. http://127.0.0.1:8000/api).
    #[arg(long = "api-url")]
    pub api_url: Option<String>,
    /// API key (default: http_api.key from the config).
    #[arg(long = "api-key")]
    pub api_key: Option<String>,
}

/// A verb that names a user.
#[derive(Args, Debug)]
pub struct UserArgs {
    /// User id.
    pub user: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

/// `block-user`.
#[derive(Args, Debug)]
pub struct BlockArgs {
    /// User id.
    pub user: String,
    /// Block lifetime, e.g. 1h or 30m (default: no expiry).
    #[arg(long = "expire-in")]
    pub expire_in: Option<String>,
    /// Audit reason stored with the block.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

/// `revoke-token`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// Token id (the JWT's jti).
    pub uid: String,
    /// How long the revocation is kept, e.g. 24h (match your tokens' lifetime).
    #[arg(long = "expire-in")]
    pub expire_in: Option<String>,
    /// Audit reason.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

/// `invalidate-user-tokens`.
#[derive(Args, Debug)]
pub struct InvalidateArgs {
    /// User id.
    pub user: String,
    /// Unix seconds: tokens issued before are refused (default: now).
    #[arg(long = "issued-before")]
    pub issued_before: Option<i64>,
    /// How long the invalidation is kept, e.g. 24h.
    #[arg(long = "expire-in")]
    pub expire_in: Option<String>,
    /// Only the user's subscription tokens for this channel (default: the
    /// user's connection tokens).
    #[arg(long)]
    pub channel: Option<String>,
    /// Audit reason.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

/// `unrevoke-token` (Gyre extension).
#[derive(Args, Debug)]
pub struct UnrevokeArgs {
    /// Token id (the JWT's jti) whose revocation is removed.
    pub uid: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

/// `clear-user-tokens-invalidation` (Gyre extension).
#[derive(Args, Debug)]
pub struct ClearInvalidationArgs {
    /// User id.
    pub user: String,
    /// Remove the invalidation of this channel's subscription tokens
    /// instead of the one of the user's connection tokens.
    #[arg(long)]
    pub channel: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub api: ApiArgs,
}

fn expire_at(expire_in: &Option<String>) -> Result<Option<i64>, String> {
    match expire_in {
        None => Ok(None),
        Some(s) => {
            let d = crate::config::duration::parse(s).map_err(|e| format!("--expire-in: {e}"))?;
            Ok(Some(crate::auth::now() + d.as_secs().max(1) as i64))
        }
    }
}

fn base_url(cfg: &Config, api: &ApiArgs) -> String {
    if let Some(u) = &api.api_url {
        return u.trim_end_matches('/').to_string();
    }
    let internal = !cfg.http_server.internal_port.is_empty() && !cfg.http_api.external;
    let (address, port) = if internal {
        let a = if cfg.http_server.internal_address.is_empty() {
            &cfg.http_server.address
        } else {
            &cfg.http_server.internal_address
        };
        (a.as_str(), cfg.http_server.internal_port.clone())
    } else {
        (
            cfg.http_server.address.as_str(),
            cfg.http_server.port.to_string(),
        )
    };
    let host = match address {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    format!(
        "http://{host}:{port}{}",
        cfg.http_api.handler_prefix.trim_end_matches('/')
    )
}

pub(super) fn run(cmd: &Cmd, cfg: &Config) -> ExitCode {
    let built = match cmd {
        Cmd::BlockUser(a) => expire_at(&a.expire_in).map(|e| ("block_user", json!({"user": a.user, "expire_at": e, "reason": a.reason}), &a.api)),
        Cmd::UnblockUser(a) => Ok(("unblock_user", json!({"user": a.user}), &a.api)),
        Cmd::RevokeToken(a) => expire_at(&a.expire_in).map(|e| ("revoke_token", json!({"uid": a.uid, "expire_at": e, "reason": a.reason}), &a.api)),
        Cmd::InvalidateUserTokens(a) => expire_at(&a.expire_in)
            .map(|e| ("invalidate_user_tokens", json!({"user": a.user, "channel": a.channel, "issued_before": a.issued_before, "expire_at": e, "reason": a.reason}), &a.api)),
        Cmd::UnrevokeToken(a) => Ok(("unrevoke_token", json!({"uid": a.uid}), &a.api)),
        Cmd::ClearUserTokensInvalidation(a) => Ok(("clear_user_tokens_invalidation", json!({"user": a.user, "channel": a.channel}), &a.api)),
        Cmd::Connections(a) => Ok(("connections", json!({"user": a.user}), &a.api)),
        Cmd::BlockList(a) => Ok(("block_list", json!({}), a)),
        _ => return ExitCode::FAILURE,
    };
    let (method, mut body, api) = match built {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    if let Value::Object(m) = &mut body {
        m.retain(|_, v| !v.is_null());
    }
    let url = format!("{}/{method}", base_url(cfg, api));
    let key = api
        .api_key
        .clone()
        .unwrap_or_else(|| cfg.http_api.key.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let res = rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(&url)
            .header("X-API-Key", key)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if status.as_u16() == 401 {
            return Err(format!(
                "{url}: 401 unauthorized (check http_api.key or --api-key)"
            ));
        }
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}: {text}"));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| format!("{url}: answer is not JSON: {text}"))?;
        if let Some(e) = v.get("error") {
            return Err(format!("{method} failed: {e}"));
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    });
    match res {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
