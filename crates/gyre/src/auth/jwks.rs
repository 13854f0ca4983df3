//! JWKS keys fetched from `client.token.jwks_public_endpoint`, cached by
//! `kid`. An unknown `kid` triggers a refetch, at most once a second, so a
//! flood of tokens with made-up key ids cannot hammer the key server.

use super::TokenError;
use jsonwebtoken::{Algorithm, DecodingKey, jwk::JwkSet};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const REFETCH_MIN: Duration = Duration::from_secs(1);
const CACHE_TTL: Duration = Duration::from_secs(3600);

pub(super) struct Jwks {
    url: String,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

struct Cache {
    keys: HashMap<String, jsonwebtoken::jwk::Jwk>,
    fetched: Option<Instant>,
}

impl Jwks {
    pub(super) fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Jwks {
            url,
            http,
            cache: Mutex::new(Cache {
                keys: HashMap::new(),
                fetched: None,
            }),
        }
    }

    pub(super) async fn key(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, TokenError> {
        let cached = {
            let c = self.cache.lock();
            let fresh = c.fetched.is_some_and(|t| t.elapsed() < CACHE_TTL);
            (
                fresh,
                c.keys.get(kid).cloned(),
                c.fetched.is_some_and(|t| t.elapsed() < REFETCH_MIN),
            )
        };
        let jwk = match cached {
            (true, Some(k), _) => k,
            (_, _, true) => cached
                .1
                .ok_or_else(|| TokenError::Invalid(format!("unknown kid {kid:?}")))?,
            _ => {
                self.refresh().await?;
                self.cache
                    .lock()
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| TokenError::Invalid(format!("unknown kid {kid:?}")))?
            }
        };
        if let Some(key_alg) = jwk.common.key_algorithm {
            let same = format!("{key_alg:?}") == format!("{alg:?}");
            if !same {
                return Err(TokenError::Invalid(
                    "token alg does not match the JWK".into(),
                ));
            }
        }
        DecodingKey::from_jwk(&jwk).map_err(|e| TokenError::Invalid(e.to_string()))
    }

    async fn refresh(&self) -> Result<(), TokenError> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| TokenError::Unavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| TokenError::Unavailable(e.to_string()))?;
        let mut c = self.cache.lock();
        c.keys = set
            .keys
            .into_iter()
            .filter_map(|k| k.common.key_id.clone().map(|id| (id, k)))
            .collect();
        c.fetched = Some(Instant::now());
        Ok(())
    }
}
