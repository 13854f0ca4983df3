//! JWKS keys fetched from `client.token.jwks_public_endpoint`, cached by
//! `kid`. An unknown `kid` triggers a refetch, at most once a second, so a
//! flood of tokens with made-up key ids cannot hammer the key server. One
//! fetch is in flight at a time (the others wait for its result), and a
//! failed fetch is remembered for a second: while the key server is down,
//! verifications answer "unavailable" at once instead of each fetching.

use super::TokenError;
use jsonwebtoken::{Algorithm, DecodingKey, jwk::JwkSet};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const REFETCH_MIN: Duration = Duration::from_secs(1);
/// How long a failed fetch is answered from memory.
const FAILURE_TTL: Duration = Duration::from_secs(1);
const CACHE_TTL: Duration = Duration::from_secs(3600);

pub(super) struct Jwks {
    url: String,
    http: reqwest::Client,
    cache: Mutex<Cache>,
    /// Woken when an in-flight fetch ends.
    done: tokio::sync::Notify,
}

struct Cache {
    keys: HashMap<String, jsonwebtoken::jwk::Jwk>,
    fetched: Option<Instant>,
    /// The last failed fetch and why.
    failed: Option<(Instant, String)>,
    /// A fetch is in flight.
    fetching: bool,
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
                failed: None,
                fetching: false,
            }),
            done: tokio::sync::Notify::new(),
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
                self.refresh_once().await?;
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

    /// Refreshes the key set unless a fetch just happened, failed, or is in
    /// flight (then waits for that one). No lock is held across the fetch.
    async fn refresh_once(&self) -> Result<(), TokenError> {
        loop {
            let wait = {
                let mut c = self.cache.lock();
                if let Some((at, why)) = &c.failed
                    && at.elapsed() < FAILURE_TTL
                {
                    return Err(TokenError::Unavailable(why.clone()));
                }
                if c.fetched.is_some_and(|t| t.elapsed() < REFETCH_MIN) {
                    return Ok(());
                }
                if !c.fetching {
                    c.fetching = true;
                    None
                } else {
                    // Registered before the lock is released, so the end of
                    // the fetch in flight cannot be missed.
                    let mut n = Box::pin(self.done.notified());
                    n.as_mut().enable();
                    Some(n)
                }
            };
            match wait {
                Some(n) => n.await,
                None => break,
            }
        }
        let r = self.fetch().await;
        {
            let mut c = self.cache.lock();
            c.fetching = false;
            match &r {
                Ok(()) => c.failed = None,
                Err(TokenError::Unavailable(why)) | Err(TokenError::Invalid(why)) => {
                    c.failed = Some((Instant::now(), why.clone()));
                }
                Err(TokenError::Expired) => {}
            }
        }
        self.done.notify_waiters();
        r
    }

    async fn fetch(&self) -> Result<(), TokenError> {
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
