//! The server HTTP API: `POST <prefix>/<method>` with `X-API-Key`.

use crate::target::Target;
use anyhow::{Context, Result, anyhow, bail};
use std::time::Duration;

/// A client for one server's HTTP API.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    prefix: String,
    key: String,
}

impl Api {
    /// A client for `target` (the API prefix, e.g. `http://127.0.0.1:8000/api`).
    pub(crate) fn new(target: &Target, key: &str) -> Result<Api> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4_096)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            prefix: target.url.clone(),
            key: key.to_string(),
        })
    }

    /// Calls `method` with a JSON `body`; fails on a non-200 status or an
    /// `{"error":…}` reply. Returns the response body.
    pub(crate) async fn call(&self, method: &str, body: String) -> Result<String> {
        let resp = self
            .http
            .post(format!("{}/{method}", self.prefix))
            .header("X-API-Key", &self.key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {method}"))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("reading the {method} response"))?;
        if !status.is_success() {
            bail!("{method}: HTTP {status} {}", text.trim());
        }
        if has_error(&text) {
            return Err(anyhow!("{method}: {}", text.trim()));
        }
        Ok(text)
    }
}

/// True when an API reply carries a top-level `error`.
fn has_error(body: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        error: Option<&'a serde_json::value::RawValue>,
    }
    match serde_json::from_str::<Envelope>(body) {
        Ok(env) => env.error.is_some(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn detects_error_replies() {
        assert!(!super::has_error(r#"{"result":{}}"#));
        assert!(super::has_error(
            r#"{"error":{"code":102,"message":"unknown channel"}}"#
        ));
        assert!(super::has_error("Bad Request"));
    }
}
