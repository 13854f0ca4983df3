//! How Gyre reaches a Redis: the address forms Centrifugo accepts
//! (`host:port`, `redis://`, `rediss://`, `unix://`, `tcp://`, credentials
//! and `/db` in the URL), TLS from a `tls` section, Sentinel (the master is
//! asked of the Sentinels on every connect, so a failover is followed) and
//! Redis Cluster seeds. Used by the engine (`engine.redis`, one target per
//! shard) and by the protective stores (one target).
//!
//! Error messages name the problem, never the address: an address may
//! carry a password.

use crate::config::Redis as RedisCfg;
use std::time::Duration;

/// Where one Redis shard is.
#[derive(Clone)]
pub(crate) enum Target {
    /// One address.
    Direct(redis::Client),
    /// The current master of `master`, asked of the Sentinels each time a
    /// connection is made.
    Sentinel {
        sentinels: Vec<redis::ConnectionInfo>,
        master: String,
        node: redis::sentinel::SentinelNodeConnectionInfo,
    },
    /// A Redis Cluster, reached through its seed nodes.
    Cluster {
        seeds: Vec<redis::ConnectionInfo>,
        client: Box<redis::cluster::ClusterClient>,
    },
}

impl Target {
    /// The target of a section's `address` entry `addr` (one shard), or of
    /// its Sentinel or Cluster settings when `sentinel`/`cluster` name one
    /// shard's comma-separated seeds.
    pub(crate) fn direct(addr: &str, cfg: &RedisCfg) -> Result<Target, String> {
        let tls = cfg.tls.enabled || addr.starts_with("rediss://");
        let client = if tls {
            let info = connection_info(&tls_url(addr, cfg.tls.insecure_skip_verify), cfg)?;
            redis::Client::build_with_tls(info, tls_certificates(&cfg.tls)?)
        } else {
            redis::Client::open(connection_info(addr, cfg)?)
        };
        client
            .map(Target::Direct)
            .map_err(|e| format!("redis address: {e}"))
    }

    /// A Sentinel-managed master; `sentinels` are the Sentinels of one shard.
    pub(crate) fn sentinel(sentinels: &[&str], cfg: &RedisCfg) -> Result<Target, String> {
        let sentinels = sentinels
            .iter()
            .map(|a| {
                let info = connection_info(a, &RedisCfg::default())?;
                let mut settings = info.redis_settings().clone();
                if !cfg.sentinel_user.is_empty() {
                    settings = settings.set_username(&cfg.sentinel_user);
                }
                if !cfg.sentinel_password.is_empty() {
                    settings = settings.set_password(&cfg.sentinel_password);
                }
                Ok(info.set_redis_settings(settings))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let node_settings = connection_info("127.0.0.1:6379", cfg)?
            .redis_settings()
            .clone();
        Ok(Target::Sentinel {
            sentinels,
            master: cfg.sentinel_master_name.clone(),
            node: redis::sentinel::SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(node_settings),
        })
    }

    /// A Redis Cluster from one shard's seed addresses.
    pub(crate) fn cluster(seeds: &[&str], cfg: &RedisCfg) -> Result<Target, String> {
        let seeds = seeds
            .iter()
            .map(|a| connection_info(a, cfg))
            .collect::<Result<Vec<_>, String>>()?;
        let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
            .connection_timeout(cfg.connect_timeout.0)
            .response_timeout(cfg.io_timeout.0)
            .build()
            .map_err(|e| format!("redis cluster: {e}"))?;
        Ok(Target::Cluster {
            seeds,
            client: Box::new(client),
        })
    }

    /// A client for one Redis server to use now: the address, the current
    /// master (Sentinel), or the first cluster seed that answers (for
    /// PUB/SUB, which reaches every node of a Redis Cluster).
    pub(crate) async fn client(&self, timeout: Duration) -> Result<redis::Client, String> {
        match self {
            Target::Direct(c) => Ok(c.clone()),
            Target::Sentinel {
                sentinels,
                master,
                node,
            } => {
                let mut sc = redis::sentinel::SentinelClient::build(
                    sentinels.clone(),
                    master.clone(),
                    Some(node.clone()),
                    redis::sentinel::SentinelServerType::Master,
                )
                .map_err(|e| format!("redis sentinel: {e}"))?;
                tokio::time::timeout(timeout, sc.async_get_client())
                    .await
                    .map_err(|_| "redis sentinel: timed out".to_string())?
                    .map_err(|e| format!("redis sentinel: {e}"))
            }
            Target::Cluster { seeds, .. } => {
                let mut last = "no seed address".to_string();
                for s in seeds {
                    let Ok(c) = redis::Client::open(s.clone()) else {
                        continue;
                    };
                    match tokio::time::timeout(timeout, c.get_multiplexed_async_connection()).await
                    {
                        Ok(Ok(_)) => return Ok(c),
                        Ok(Err(e)) => last = e.to_string(),
                        Err(_) => last = "timed out".into(),
                    }
                }
                Err(format!("redis cluster: {last}"))
            }
        }
    }
}

/// `addr` as a `rediss://` URL (`#insecure` when the server's certificate
/// is not to be verified).
pub(crate) fn tls_url(addr: &str, insecure: bool) -> String {
    let rest = addr
        .strip_prefix("rediss://")
        .or_else(|| addr.strip_prefix("redis://"))
        .unwrap_or(addr);
    let rest = rest.split('#').next().unwrap_or(rest);
    format!("rediss://{rest}{}", if insecure { "#insecure" } else { "" })
}

/// The certificates of a `tls` section: the server's CA (else the system's
/// roots) and an optional client certificate and key. Each PEM may be the
/// PEM text itself, a file path, or base64 of the PEM, as in Centrifugo.
pub(crate) fn tls_certificates(t: &crate::config::Tls) -> Result<redis::TlsCertificates, String> {
    let client_tls = match (t.cert_pem.is_empty(), t.key_pem.is_empty()) {
        (true, true) => None,
        (false, false) => Some(redis::ClientTlsConfig {
            client_cert: pem("tls.cert_pem", &t.cert_pem)?,
            client_key: pem("tls.key_pem", &t.key_pem)?,
        }),
        _ => return Err("redis tls: cert_pem and key_pem go together".into()),
    };
    let root_cert = if t.server_ca_pem.is_empty() {
        None
    } else {
        Some(pem("tls.server_ca_pem", &t.server_ca_pem)?)
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert,
    })
}

/// A PEM given as text, a file path, or base64 of the text.
fn pem(key: &str, v: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    if v.trim_start().starts_with("-----BEGIN") {
        return Ok(v.as_bytes().to_vec());
    }
    if let Ok(b) = std::fs::read(v) {
        return Ok(b);
    }
    base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .map_err(|_| format!("{key}: not PEM text, a readable file or base64 PEM"))
}

/// The connection info of `addr` (`host:port`, a `redis://`/`rediss://`/
/// `unix://` URL, or `tcp://host:port`), with `db`, `user` and `password`
/// from `cfg` when set (a URL's own credentials otherwise).
pub(crate) fn connection_info(addr: &str, cfg: &RedisCfg) -> Result<redis::ConnectionInfo, String> {
    use redis::IntoConnectionInfo;
    let url = if let Some(rest) = addr.strip_prefix("tcp://") {
        format!("redis://{rest}")
    } else if addr.contains("://") {
        addr.to_string()
    } else {
        format!("redis://{addr}")
    };
    let info = url
        .as_str()
        .into_connection_info()
        .map_err(|_| "redis address: not a host:port or redis:// URL".to_string())?;
    let mut settings = info.redis_settings().clone();
    if cfg.db != 0 {
        settings = settings.set_db(cfg.db as i64);
    }
    if !cfg.user.is_empty() {
        settings = settings.set_username(&cfg.user);
    }
    if !cfg.password.is_empty() {
        settings = settings.set_password(&cfg.password);
    }
    Ok(info.set_redis_settings(settings))
}

/// A printable form of an address for logs and errors: `host:port` with
/// any credentials dropped.
pub(crate) fn display_addr(addr: &str) -> String {
    if let Some(path) = addr.strip_prefix("unix://") {
        return format!("unix:{}", path.split('?').next().unwrap_or(path));
    }
    let rest = addr.split_once("://").map_or(addr, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_addr_drops_credentials_and_paths() {
        assert_eq!(display_addr("redis://:pw@10.0.0.1:6379/2"), "10.0.0.1:6379");
        assert_eq!(display_addr("rediss://u:p@h:1?x=1"), "h:1");
        assert_eq!(display_addr("127.0.0.1:6379"), "127.0.0.1:6379");
        assert_eq!(
            display_addr("unix:///run/redis.sock?db=1"),
            "unix:/run/redis.sock"
        );
    }

    #[test]
    fn address_forms() {
        let cfg = RedisCfg::default();
        for a in [
            "127.0.0.1:6379",
            "redis://127.0.0.1:6379/1",
            "tcp://127.0.0.1:6379",
        ] {
            assert!(connection_info(a, &cfg).is_ok(), "{a}");
        }
        let e = connection_info("redis://:secret@[bad", &cfg).unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
