//! `genconfig`, `gentoken`, `checktoken`, `gensubtoken`, `checksubtoken`.

use super::{Cmd, fail};
use crate::config::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

fn secret() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Writes a config with fresh random secrets; never overwrites.
pub(super) fn genconfig(path: PathBuf) -> ExitCode {
    if path.exists() {
        return fail(format!(
            "{} already exists; remove it or pass another -c path",
            path.display()
        ));
    }
    let v = json!({
        "client": {"token": {"hmac_secret_key": secret()}, "allowed_origins": []},
        "admin": {"password": secret(), "secret": secret()},
        "http_api": {"key": secret()},
    });
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("json")
        .to_ascii_lowercase();
    let text = match ext.as_str() {
        "yaml" | "yml" => yaml_serde::to_string(&v).map_err(|e| e.to_string()),
        "toml" => toml::to_string_pretty(&v).map_err(|e| e.to_string()),
        _ => serde_json::to_string_pretty(&v).map_err(|e| e.to_string()),
    };
    match text.and_then(|t| std::fs::write(&path, t + "\n").map_err(|e| e.to_string())) {
        Ok(()) => {
            println!("{} created", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot write {}: {e}", path.display())),
    }
}

fn ttl_text(ttl: i64) -> String {
    if ttl < 0 {
        "no expiration".into()
    } else {
        format!(
            "expiration TTL {}",
            crate::config::duration::format(std::time::Duration::from_secs(ttl as u64))
        )
    }
}

pub(super) fn run(cmd: &Cmd, cfg: &Config) -> ExitCode {
    let secret = &cfg.client.token.hmac_secret_key;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match cmd {
        Cmd::Gentoken { user, ttl, quiet } => {
            if secret.is_empty() {
                return fail(
                    "client.token.hmac_secret_key is empty: set it in the config to make HS256 tokens",
                );
            }
            let now = crate::auth::now();
            let mut claims = json!({"sub": user, "iat": now});
            if *ttl >= 0 {
                claims["exp"] = json!(now + ttl);
            }
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .expect("hs256");
            if !quiet {
                println!(
                    "HMAC SHA-256 JWT for user \"{user}\" with {}:",
                    ttl_text(*ttl)
                );
            }
            println!("{token}");
            ExitCode::SUCCESS
        }
        Cmd::Gensubtoken {
            user,
            channel,
            ttl,
            quiet,
        } => {
            let key = if cfg.client.subscription_token.enabled {
                &cfg.client.subscription_token.hmac_secret_key
            } else {
                secret
            };
            if key.is_empty() {
                let k = if cfg.client.subscription_token.enabled {
                    "client.subscription_token.hmac_secret_key"
                } else {
                    "client.token.hmac_secret_key"
                };
                return fail(format!(
                    "{k} is empty: set it in the config to make HS256 subscription tokens"
                ));
            }
            let now = crate::auth::now();
            let mut claims = json!({"sub": user, "channel": channel, "iat": now});
            if *ttl >= 0 {
                claims["exp"] = json!(now + ttl);
            }
            let token = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(key.as_bytes()),
            )
            .expect("hs256");
            if !quiet {
                println!(
                    "HMAC SHA-256 JWT for user \"{user}\" and channel \"{channel}\" with {}:",
                    ttl_text(*ttl)
                );
            }
            println!("{token}");
            ExitCode::SUCCESS
        }
        Cmd::Checktoken { token } => {
            let v = match crate::auth::TokenVerifier::new(&cfg.client) {
                Ok(v) => v,
                Err(e) => return fail(e),
            };
            match rt.block_on(v.verify_connect(token)) {
                Ok(c) => {
                    println!(
                        "valid connection token for user \"{}\"{}",
                        c.sub,
                        c.exp
                            .map(|e| format!(" expiring at {e}"))
                            .unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("token is not valid: {e}")),
            }
        }
        Cmd::Checksubtoken { token } => {
            let v = match crate::auth::TokenVerifier::new(&cfg.client) {
                Ok(v) => v,
                Err(e) => return fail(e),
            };
            match rt.block_on(v.verify_subscribe(token)) {
                Ok(c) => {
                    println!(
                        "valid subscription token for user \"{}\" and channel \"{}\"",
                        c.sub, c.channel
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("token is not valid: {e}")),
            }
        }
        _ => ExitCode::FAILURE,
    }
}
