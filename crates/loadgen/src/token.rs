//! Connection JWTs: HS256 from a shared secret, or RS256 from a PEM private key.

use anyhow::{Context, Result, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Token lifetime: long enough for the longest run, so expiry never interferes.
const TTL_SECS: u64 = 2 * 3_600;

/// Mints connection tokens with a fixed key and algorithm.
pub(crate) struct Minter {
    header: Header,
    key: EncodingKey,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    jti: &'a str,
    iat: u64,
    exp: u64,
}

impl Minter {
    /// RS256 when `rsa_key` is given, otherwise HS256 with `secret` (which must then be set).
    pub(crate) fn new(secret: &str, rsa_key: Option<&Path>) -> Result<Minter> {
        if let Some(path) = rsa_key {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let key = EncodingKey::from_rsa_pem(&pem).context("parsing the RSA private key")?;
            return Ok(Minter {
                header: Header::new(Algorithm::RS256),
                key,
            });
        }
        if secret.is_empty() {
            bail!("--secret (HS256) or --rsa-key (RS256) is required to sign connection tokens");
        }
        Ok(Minter {
            header: Header::new(Algorithm::HS256),
            key: EncodingKey::from_secret(secret.as_bytes()),
        })
    }

    /// Name of the signing algorithm, for reports.
    pub(crate) fn algorithm(&self) -> &'static str {
        match self.header.alg {
            Algorithm::RS256 => "RS256",
            _ => "HS256",
        }
    }

    /// A token for user `sub` with token id `jti`, valid for two hours.
    pub(crate) fn mint(&self, sub: &str, jti: &str) -> Result<String> {
        let iat = unix_secs();
        let claims = Claims {
            sub,
            jti,
            iat,
            exp: iat + TTL_SECS,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key).context("signing a token")
    }

    /// Unix second at which tokens minted now expire.
    pub(crate) fn expires_at(&self) -> u64 {
        unix_secs() + TTL_SECS
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (publication send stamps).
pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A tag unique to this run, used in user and channel names so repeated runs
/// against one server (blocks, revocations, channel state) do not interfere.
pub(crate) fn run_tag() -> String {
    format!(
        "{:x}{:04x}",
        unix_nanos() / 1_000_000,
        std::process::id() & 0xffff
    )
}
