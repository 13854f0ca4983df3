//! JWT verification for connection and subscription tokens (protocol.md §3):
//! HMAC, RSA and ECDSA keys from the config, or a JWKS endpoint.

pub mod claims;
mod jwks;

use crate::config::{ConfigError, Token};
use claims::{ConnectClaims, OneOrMany, SubscribeClaims};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `exp` passed or `nbf` not reached: error 109, the SDK fetches a new token.
    #[error("token expired")]
    Expired,
    /// Bad signature, unparsable, wrong audience/issuer, unknown algorithm: 3500
    /// for connections, 103 for subscriptions.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The key source (JWKS) is unreachable: a temporary internal error.
    #[error("key source unavailable: {0}")]
    Unavailable(String),
}

/// Keys and checks for one kind of token.
pub(crate) struct KeySet {
    hmac: Option<DecodingKey>,
    hmac_previous: Option<(DecodingKey, i64)>,
    rsa: Option<DecodingKey>,
    ecdsa: Option<DecodingKey>,
    jwks: Option<jwks::Jwks>,
    audience: Option<String>,
    issuer: Option<String>,
    user_id_claim: Option<String>,
    skip_verify: bool,
}

impl KeySet {
    fn new(t: &Token, prefix: &str, skip_verify: bool) -> Result<Self, ConfigError> {
        let inv = |k: &str, r: String| ConfigError::invalid(&format!("{prefix}.{k}"), r);
        let rsa = if t.rsa_public_key.is_empty() {
            None
        } else {
            Some(
                DecodingKey::from_rsa_pem(t.rsa_public_key.as_bytes())
                    .map_err(|e| inv("rsa_public_key", format!("not a PEM RSA public key: {e}")))?,
            )
        };
        let ecdsa = if t.ecdsa_public_key.is_empty() {
            None
        } else {
            Some(
                DecodingKey::from_ec_pem(t.ecdsa_public_key.as_bytes()).map_err(|e| {
                    inv(
                        "ecdsa_public_key",
                        format!("not a PEM ECDSA public key: {e}"),
                    )
                })?,
            )
        };
        if !t.audience_regex.is_empty() {
            return Err(inv(
                "audience_regex",
                "not supported by Gyre yet; use audience".into(),
            ));
        }
        if !t.issuer_regex.is_empty() {
            return Err(inv(
                "issuer_regex",
                "not supported by Gyre yet; use issuer".into(),
            ));
        }
        let jwks = if t.jwks_public_endpoint.is_empty() {
            None
        } else {
            if !t.jwks_public_endpoint.starts_with("http://")
                && !t.jwks_public_endpoint.starts_with("https://")
            {
                return Err(inv(
                    "jwks_public_endpoint",
                    "must be an http:// or https:// URL".into(),
                ));
            }
            Some(jwks::Jwks::new(t.jwks_public_endpoint.clone()))
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(KeySet {
            hmac: nonempty(&t.hmac_secret_key).map(|k| DecodingKey::from_secret(k.as_bytes())),
            hmac_previous: nonempty(&t.hmac_previous_secret_key).map(|k| {
                (
                    DecodingKey::from_secret(k.as_bytes()),
                    t.hmac_previous_secret_key_valid_until,
                )
            }),
            rsa,
            ecdsa,
            jwks,
            audience: nonempty(&t.audience),
            issuer: nonempty(&t.issuer),
            user_id_claim: nonempty(&t.user_id_claim),
            skip_verify,
        })
    }

    fn configured(&self) -> bool {
        self.skip_verify
            || self.hmac.is_some()
            || self.rsa.is_some()
            || self.ecdsa.is_some()
            || self.jwks.is_some()
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = 0;
        v.required_spec_claims.clear();
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = false; // checked by hand: `aud` may be absent when not configured
        v
    }

    async fn decode<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<(T, Option<serde_json::Value>), TokenError> {
        if self.skip_verify {
            // client.insecure_skip_token_signature_verify: claims are trusted, times still checked.
            #[derive(serde::Deserialize)]
            struct Times {
                exp: Option<i64>,
                nbf: Option<i64>,
            }
            let t: Times =
                jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(map_err)?;
            let now = now();
            if t.exp.is_some_and(|e| e < now) || t.nbf.is_some_and(|n| n > now) {
                return Err(TokenError::Expired);
            }
            let claims =
                jsonwebtoken::dangerous::insecure_decode_claims::<T>(token).map_err(map_err)?;
            let raw = if self.user_id_claim.is_some() {
                jsonwebtoken::dangerous::insecure_decode_claims(token).ok()
            } else {
                None
            };
            return Ok((claims, raw));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let alg = header.alg;
        let jwks_key: DecodingKey;
        let key_ref: &DecodingKey = if let Some(j) = &self.jwks {
            // With a JWKS endpoint only JWKS keys are used (§3.3).
            let kid = header.kid.as_deref().unwrap_or("");
            jwks_key = j.key(kid, alg).await?;
            &jwks_key
        } else {
            use Algorithm::*;
            match alg {
                HS256 | HS384 | HS512 => self.hmac.as_ref(),
                RS256 | RS384 | RS512 => self.rsa.as_ref(),
                ES256 | ES384 => self.ecdsa.as_ref(),
                _ => None,
            }
            .ok_or_else(|| TokenError::Invalid(format!("algorithm {alg:?} is not configured")))?
        };
        let validation = self.validation(alg);
        let data = match jsonwebtoken::decode::<T>(token, key_ref, &validation) {
            Ok(d) => d,
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature) => {
                // During HMAC key rotation the previous secret stays valid until its deadline.
                match &self.hmac_previous {
                    Some((prev, until))
                        if matches!(
                            alg,
                            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                        ) && now() < *until =>
                    {
                        jsonwebtoken::decode::<T>(token, prev, &validation).map_err(map_err)?
                    }
                    _ => return Err(map_err(e)),
                }
            }
            Err(e) => return Err(map_err(e)),
        };
        let raw = if self.user_id_claim.is_some() {
            jsonwebtoken::dangerous::insecure_decode_claims(token).ok()
        } else {
            None
        };
        Ok((data.claims, raw))
    }

    fn check_aud_iss(
        &self,
        aud: &Option<OneOrMany>,
        iss: &Option<String>,
    ) -> Result<(), TokenError> {
        if let Some(want) = &self.audience {
            let ok = match aud {
                Some(OneOrMany::One(a)) => a == want,
                Some(OneOrMany::Many(list)) => list.iter().any(|a| a == want),
                None => false,
            };
            if !ok {
                return Err(TokenError::Invalid("audience mismatch".into()));
            }
        }
        if let Some(want) = &self.issuer
            && iss.as_deref() != Some(want.as_str())
        {
            return Err(TokenError::Invalid("issuer mismatch".into()));
        }
        Ok(())
    }
}

fn map_err(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => TokenError::Expired,
        _ => TokenError::Invalid(e.to_string()),
    }
}

/// A token's `iat` as Gyre keeps it: 0 when absent; fractional seconds are
/// floored (JWT NumericDate may be fractional, RFC 7519 §2); a present
/// `iat` of 0 or less becomes 1, so it counts as issued before any
/// `invalidate_user_tokens` cut-off rather than as "no iat" (which no
/// invalidation touches): fail closed.
pub fn issued_at(iat: Option<f64>) -> i64 {
    match iat {
        None => 0,
        Some(v) if v.is_nan() || v < 1.0 => 1,
        Some(v) => v.floor().min(i64::MAX as f64) as i64,
    }
}

/// Current Unix time in seconds.
/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Verifies connection and subscription tokens.
pub struct TokenVerifier {
    conn: KeySet,
    sub: Option<KeySet>,
}

impl TokenVerifier {
    /// Builds the verifier from `client.token` and `client.subscription_token`.
    pub fn new(c: &crate::config::Client) -> Result<Self, ConfigError> {
        let skip = c.insecure_skip_token_signature_verify;
        let conn = KeySet::new(&c.token, "client.token", skip)?;
        let sub = if c.subscription_token.enabled {
            Some(KeySet::new(
                &c.subscription_token,
                "client.subscription_token",
                skip,
            )?)
        } else {
            None
        };
        Ok(TokenVerifier { conn, sub })
    }

    /// True if connection tokens can be verified at all.
    pub fn has_connection_keys(&self) -> bool {
        self.conn.configured()
    }

    /// Verifies a connection token.
    pub async fn verify_connect(&self, token: &str) -> Result<ConnectClaims, TokenError> {
        let (mut claims, raw): (ConnectClaims, _) = self.conn.decode(token).await?;
        if claims.channel.is_some() {
            // A subscription token used as a connection token (§3.1).
            return Err(TokenError::Invalid(
                "channel claim in connection token".into(),
            ));
        }
        self.conn.check_aud_iss(&claims.aud, &claims.iss)?;
        if let (Some(path), Some(raw)) = (&self.conn.user_id_claim, raw) {
            claims.sub = lookup_path(&raw, path).unwrap_or_default();
        }
        Ok(claims)
    }

    /// Verifies a subscription token.
    pub async fn verify_subscribe(&self, token: &str) -> Result<SubscribeClaims, TokenError> {
        let keys = self.sub.as_ref().unwrap_or(&self.conn);
        let (mut claims, raw): (SubscribeClaims, _) = keys.decode(token).await?;
        keys.check_aud_iss(&claims.aud, &claims.iss)?;
        if claims.channel.is_empty() {
            return Err(TokenError::Invalid("no channel claim".into()));
        }
        if let (Some(path), Some(raw)) = (&keys.user_id_claim, raw) {
            claims.sub = lookup_path(&raw, path).unwrap_or_default();
        }
        Ok(claims)
    }
}

/// Reads a dotted path (`user.id`) from claims, as Centrifugo's gjson path does for simple paths.
fn lookup_path(v: &serde_json::Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn verifier(secret: &str) -> TokenVerifier {
        let mut c = crate::config::Client::default();
        c.token.hmac_secret_key = secret.into();
        TokenVerifier::new(&c).unwrap()
    }

    fn hs(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hmac_tokens_verify_and_fail_properly() {
        let v = verifier("secret");
        let c = v
            .verify_connect(&hs(json!({"sub": "42", "jti": "t1", "iat": 5}), "secret"))
            .await
            .unwrap();
        assert_eq!(
            (c.sub.as_str(), c.jti.as_deref(), c.iat),
            ("42", Some("t1"), Some(5.0))
        );
        assert_eq!(
            v.verify_connect(&hs(json!({"sub": "42", "exp": now() - 10}), "secret"))
                .await
                .unwrap_err(),
            TokenError::Expired
        );
        assert!(matches!(
            v.verify_connect(&hs(json!({"sub": "42"}), "other")).await,
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            v.verify_connect(&hs(json!({"sub": "42", "channel": "x"}), "secret"))
                .await,
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            v.verify_connect("garbage").await,
            Err(TokenError::Invalid(_))
        ));
    }
}
