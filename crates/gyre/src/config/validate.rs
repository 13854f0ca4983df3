//! Checks that need more than a type: ranges, combinations, and features a
//! Centrifugo config may turn on that Gyre does not serve. Refusing to start
//! is safer than silently ignoring a transport the operator relies on.

use super::{Config, ConfigError, StorageType};

/// Every enabled endpoint's path starts with `/` and no two are the same
/// (the router would refuse them at start with a panic, not a message).
fn validate_paths(c: &Config) -> Result<(), ConfigError> {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut add = |key: &str, path: String| -> Result<(), ConfigError> {
        if !path.starts_with('/') {
            return Err(ConfigError::invalid(key, "must start with \"/\""));
        }
        if let Some((other, _)) = seen.iter().find(|(_, p)| *p == path) {
            return Err(ConfigError::invalid(
                key,
                format!("{path:?} is already the path of `{other}`"),
            ));
        }
        seen.push((key.to_string(), path));
        Ok(())
    };
    if !c.websocket.disabled {
        add(
            "websocket.handler_prefix",
            c.websocket.handler_prefix.clone(),
        )?;
    }
    for (key, on, e, name) in [
        (
            "http_stream.handler_prefix",
            c.http_stream.enabled,
            &c.http_stream,
            "http_stream",
        ),
        ("sse.handler_prefix", c.sse.enabled, &c.sse, "sse"),
        (
            "uni_http_stream.handler_prefix",
            c.uni_http_stream.enabled,
            &c.uni_http_stream,
            "uni_http_stream",
        ),
        (
            "uni_sse.handler_prefix",
            c.uni_sse.enabled,
            &c.uni_sse,
            "uni_sse",
        ),
    ] {
        if on {
            add(key, e.path(name))?;
        }
    }
    if c.uni_websocket.enabled {
        let p = &c.uni_websocket.handler_prefix;
        add(
            "uni_websocket.handler_prefix",
            if p.is_empty() {
                "/connection/uni_websocket".into()
            } else {
                p.clone()
            },
        )?;
    }
    if c.http_stream.enabled || c.sse.enabled {
        let p = &c.emulation.handler_prefix;
        add(
            "emulation.handler_prefix",
            if p.is_empty() {
                "/emulation".into()
            } else {
                p.clone()
            },
        )?;
    }
    Ok(())
}

/// `engine.redis` must name where Redis is, completely.
fn validate_engine_redis(section: &str, r: &super::Redis) -> Result<(), ConfigError> {
    if r.address.is_empty() && r.sentinel_address.is_empty() && r.cluster_address.is_empty() {
        return Err(ConfigError::invalid(
            &format!("{section}.address"),
            "needs at least one address (e.g. \"redis://127.0.0.1:6379\")",
        ));
    }
    if !r.sentinel_address.is_empty() && r.sentinel_master_name.is_empty() {
        return Err(ConfigError::invalid(
            &format!("{section}.sentinel_master_name"),
            "is required with sentinel_address",
        ));
    }
    for (key, d) in [
        ("connect_timeout", r.connect_timeout.0),
        ("io_timeout", r.io_timeout.0),
    ] {
        if d.is_zero() {
            return Err(ConfigError::invalid(
                &format!("{section}.{key}"),
                "must be positive",
            ));
        }
    }
    if r.tls.enabled && (!r.sentinel_address.is_empty() || !r.cluster_address.is_empty()) {
        // Refused rather than silently connecting without TLS.
        return Err(ConfigError::invalid(
            &format!("{section}.tls.enabled"),
            "TLS is supported with `address` (one Redis per shard, or rediss:// URLs); \
             not yet through Sentinel or to a Redis Cluster",
        ));
    }
    if r.presence_ttl.0.is_zero() {
        return Err(ConfigError::invalid(
            &format!("{section}.presence_ttl"),
            "must be positive (default 60s)",
        ));
    }
    if let Err(e) = crate::cluster::RedisEngine::from_config(r) {
        return Err(ConfigError::invalid(&format!("{section}.address"), e));
    }
    Ok(())
}

/// A feature's storage must be one Gyre can keep entries in for sure: a
/// config that asks for persistence either gets it or does not start.
fn validate_storage(
    c: &Config,
    key: &str,
    f: &crate::config::ProtectFeature,
) -> Result<(), ConfigError> {
    match f.storage_type {
        StorageType::Memory => Ok(()),
        StorageType::Database => {
            let dsn = c
                .database
                .postgresql
                .as_ref()
                .map_or("", |p| p.dsn.as_str());
            if !c.database.enabled || dsn.is_empty() {
                return Err(ConfigError::invalid(
                    &format!("{key}.storage_type"),
                    "\"database\" storage needs `database.enabled: true` and `database.postgresql.dsn`",
                ));
            }
            // Gyre talks to PostgreSQL without TLS so far: refuse a DSN that
            // demands it now rather than fail at the first connection.
            if [
                "sslmode=require",
                "sslmode=verify-ca",
                "sslmode=verify-full",
            ]
            .iter()
            .any(|m| dsn.contains(m))
            {
                return Err(ConfigError::invalid(
                    "database.postgresql.dsn",
                    "TLS to PostgreSQL (sslmode=require/verify-*) is not supported yet; use sslmode=disable or prefer",
                ));
            }
            reload_interval(key, f)
        }
        StorageType::Redis => {
            let Some(r) = &f.redis else {
                return Err(ConfigError::invalid(
                    &format!("{key}.redis"),
                    "\"redis\" storage needs a `redis` section with one `address` (no sharing with engine.redis: it is configured explicitly, as in Centrifugo PRO)",
                ));
            };
            if !r.sentinel_address.0.is_empty() && r.sentinel_master_name.is_empty() {
                return Err(ConfigError::invalid(
                    &format!("{key}.redis.sentinel_master_name"),
                    "Sentinel needs the master's name",
                ));
            }
            if r.sentinel_address.0.is_empty() && !r.sentinel_master_name.is_empty() {
                return Err(ConfigError::invalid(
                    &format!("{key}.redis.sentinel_address"),
                    "a Sentinel master name needs the Sentinels' addresses",
                ));
            }
            if r.sentinel_address.0.is_empty() && r.address.0.len() != 1 {
                return Err(ConfigError::invalid(
                    &format!("{key}.redis.address"),
                    format!(
                        "protective storage takes exactly one Redis address, got {}: entries are never sharded, since adding a shard would lose them",
                        r.address.0.len()
                    ),
                ));
            }
            if !r.cluster_address.0.is_empty() {
                return Err(ConfigError::invalid(
                    &format!("{key}.redis.cluster_address"),
                    "Redis Cluster is not supported for protective storage: a reshard could lose entries; use one Redis address",
                ));
            }
            if !r.sentinel_address.0.is_empty()
                && (r.tls.enabled || r.address.0.iter().any(|a| a.starts_with("rediss://")))
            {
                return Err(ConfigError::invalid(
                    &format!("{key}.redis.tls"),
                    "TLS through Sentinel is not supported for protective storage yet; use TLS to one address",
                ));
            }
            reload_interval(key, f)
        }
    }
}

fn reload_interval(key: &str, f: &crate::config::ProtectFeature) -> Result<(), ConfigError> {
    if f.reload_interval.is_zero() {
        return Err(ConfigError::invalid(
            &format!("{key}.reload_interval"),
            "must be positive (default 10s)",
        ));
    }
    Ok(())
}

pub(super) fn validate(c: &Config) -> Result<(), ConfigError> {
    if !["none", "trace", "debug", "info", "warn", "error", "fatal"].contains(&c.log.level.as_str())
    {
        return Err(ConfigError::invalid(
            "log.level",
            format!(
                "{:?} is not a level; use trace, debug, info, warn, error or none",
                c.log.level
            ),
        ));
    }
    for (key, d) in [
        (
            "http_server.read_header_timeout",
            c.http_server.read_header_timeout,
        ),
        ("http_server.read_timeout", c.http_server.read_timeout),
    ] {
        if d.is_zero() {
            return Err(ConfigError::invalid(
                key,
                "must be positive (defaults: read_header_timeout 10s, read_timeout 30s); \
                 without it idle sockets are never closed",
            ));
        }
    }
    let cl = &c.client;
    if !cl.pong_timeout.is_zero() && cl.ping_interval.0 <= cl.pong_timeout.0 {
        return Err(ConfigError::invalid(
            "client.pong_timeout",
            "must be less than client.ping_interval (defaults 8s and 25s)",
        ));
    }
    if cl.ping_interval.is_zero() {
        return Err(ConfigError::invalid(
            "client.ping_interval",
            "must be positive, e.g. \"25s\"",
        ));
    }
    if cl.queue_max_size == 0 {
        return Err(ConfigError::invalid(
            "client.queue_max_size",
            "must be positive (default 1048576 bytes)",
        ));
    }
    for (key, p) in [
        ("client.proxy.connect", &cl.proxy.connect),
        ("client.proxy.refresh", &cl.proxy.refresh),
    ] {
        if p.enabled && !(p.endpoint.starts_with("http://") || p.endpoint.starts_with("https://")) {
            return Err(ConfigError::invalid(
                &format!("{key}.endpoint"),
                "an enabled proxy needs an http:// or https:// endpoint (gRPC proxies are not supported)",
            ));
        }
        if p.enabled && p.timeout.is_zero() {
            return Err(ConfigError::invalid(
                &format!("{key}.timeout"),
                "must be positive, e.g. \"1s\"",
            ));
        }
    }
    if !c.http_api.handler_prefix.starts_with('/') {
        return Err(ConfigError::invalid(
            "http_api.handler_prefix",
            "must start with /",
        ));
    }
    if c.http_api.handler_prefix.trim_end_matches('/').is_empty() {
        return Err(ConfigError::invalid(
            "http_api.handler_prefix",
            "must name a path such as /api",
        ));
    }
    for (key, e) in [
        ("health.handler_prefix", &c.health),
        ("prometheus.handler_prefix", &c.prometheus),
    ] {
        if !e.handler_prefix.is_empty()
            && (!e.handler_prefix.starts_with('/') || e.handler_prefix == "/")
        {
            return Err(ConfigError::invalid(
                key,
                "must be a path starting with / (e.g. /health)",
            ));
        }
    }
    if !c.websocket.handler_prefix.starts_with('/') {
        return Err(ConfigError::invalid(
            "websocket.handler_prefix",
            "must start with /",
        ));
    }
    if c.websocket.message_size_limit == 0 {
        return Err(ConfigError::invalid(
            "websocket.message_size_limit",
            "must be positive (default 65536)",
        ));
    }
    if c.websocket.compression {
        return Err(ConfigError::invalid(
            "websocket.compression",
            "permessage-deflate is not supported by Gyre; set it to false",
        ));
    }
    if c.engine.kind == super::EngineType::Redis {
        validate_engine_redis("engine.redis", &c.engine.redis)?;
    }
    validate_paths(c)?;
    if c.client.presence_update_interval.0.is_zero() {
        return Err(ConfigError::invalid(
            "client.presence_update_interval",
            "must be positive (default 27s)",
        ));
    }
    for (key, b) in [
        ("broker", &c.broker),
        ("presence_manager", &c.presence_manager),
    ] {
        if !b.enabled {
            continue;
        }
        match b.kind.as_str() {
            "memory" => {}
            "redis" => validate_engine_redis(&format!("{key}.redis"), &b.redis)?,
            other => {
                return Err(ConfigError::invalid(
                    &format!("{key}.type"),
                    format!("{other:?} is not supported by Gyre; use \"redis\" or \"memory\""),
                ));
            }
        }
    }
    // Before the `database.enabled` refusal: a storage_type is what the
    // operator asked for (and what an older PRO key becomes).
    for (key, f) in [
        ("user_block", &c.user_block),
        ("token_revoke", &c.token_revoke),
        ("user_tokens_invalidate", &c.user_tokens_invalidate),
    ] {
        validate_storage(c, key, f)?;
        if f.disconnect_code != 0 && !(3000..=4999).contains(&f.disconnect_code) {
            return Err(ConfigError::invalid(
                &format!("{key}.disconnect_code"),
                "must be a close code in 3000-4999",
            ));
        }
        if f.disconnect_reason.len() > 120 {
            return Err(ConfigError::invalid(
                &format!("{key}.disconnect_reason"),
                "must fit a close frame (at most 120 bytes)",
            ));
        }
    }
    for (key, on) in [
        ("grpc_api.enabled", c.grpc_api.enabled),
        ("uni_grpc.enabled", c.uni_grpc.enabled),
        ("admin.enabled", c.admin.enabled),
        ("debug.enabled", c.debug.enabled),
        ("swagger.enabled", c.swagger.enabled),
    ] {
        if on {
            return Err(ConfigError::invalid(
                key,
                "this feature is not supported by Gyre yet; set it to false",
            ));
        }
    }
    let ch = &c.channel;
    if ch.max_length == 0 {
        return Err(ConfigError::invalid(
            "channel.max_length",
            "must be positive (default 255)",
        ));
    }
    if ch.namespace_boundary.is_empty() {
        return Err(ConfigError::invalid(
            "channel.namespace_boundary",
            "must not be empty (default \":\")",
        ));
    }
    check_options("channel.without_namespace", &ch.without_namespace)?;
    let mut seen = std::collections::HashSet::new();
    for (i, ns) in ch.namespaces.iter().enumerate() {
        let key = format!("channel.namespaces[{i}]");
        let valid_name = ns.name.len() >= 2
            && ns
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !valid_name {
            return Err(ConfigError::invalid(
                &format!("{key}.name"),
                format!(
                    "{:?} is not a namespace name: use 2 or more of a-z, A-Z, 0-9, -, _, .",
                    ns.name
                ),
            ));
        }
        if !seen.insert(ns.name.clone()) {
            return Err(ConfigError::invalid(
                &format!("{key}.name"),
                format!("namespace {:?} is defined twice", ns.name),
            ));
        }
        check_options(&key, ns)?;
    }
    Ok(())
}

fn check_options(key: &str, o: &super::ChannelOptions) -> Result<(), ConfigError> {
    if (o.history_size > 0) == o.history_ttl.is_zero() {
        return Err(ConfigError::invalid(
            &format!("{key}.history_ttl"),
            "history_size and history_ttl must be set together",
        ));
    }
    if (o.force_recovery || o.allow_recovery) && o.history_size == 0 {
        return Err(ConfigError::invalid(
            &format!("{key}.force_recovery"),
            "recovery needs history: set history_size and history_ttl",
        ));
    }
    if !o.channel_regex.is_empty() {
        return Err(ConfigError::invalid(
            &format!("{key}.channel_regex"),
            "channel_regex is not supported by Gyre yet; remove it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::load_value;
    use serde_json::json;

    fn err(v: serde_json::Value) -> String {
        load_value(v, &[], &[]).unwrap_err().to_string()
    }

    #[test]
    fn rejects_bad_combinations_naming_the_key() {
        assert!(
            err(json!({"client": {"ping_interval": "5s", "pong_timeout": "8s"}}))
                .contains("client.pong_timeout")
        );
        assert!(err(json!({"log": {"level": "loud"}})).contains("log.level"));
        assert!(
            err(json!({"sse": {"enabled": true, "handler_prefix": "sse"}}))
                .contains("sse.handler_prefix")
        );
        assert!(
            err(json!({"sse": {"enabled": true, "handler_prefix": "/connection/websocket"}}))
                .contains("already the path of `websocket.handler_prefix`")
        );
        assert!(
            err(json!({"engine": {"type": "redis", "redis": {"address": []}}}))
                .contains("engine.redis.address")
        );
        assert!(
            err(json!({"engine": {"type": "redis", "redis": {"sentinel_address": "h:26379"}}}))
                .contains("engine.redis.sentinel_master_name")
        );
        assert!(
            err(json!({"channel": {"namespaces": [{"name": "a b"}]}}))
                .contains("channel.namespaces[0].name")
        );
        assert!(
            err(json!({"channel": {"namespaces": [{"name": "ns", "history_size": 10}]}}))
                .contains("history_ttl")
        );
        assert!(
            err(json!({"client": {"proxy": {"connect": {"enabled": true}}}}))
                .contains("client.proxy.connect.endpoint")
        );
        assert!(
            err(json!({"user_block": {"storage_type": "cassandra"}}))
                .contains("user_block.storage_type")
        );
        assert!(err(json!({"http_api": {"error_mode": "loud"}})).contains("http_api.error_mode"));
    }

    #[test]
    fn refuses_backends_gyre_cannot_serve_yet() {
        assert_eq!(
            load_value(json!({"engine": {"type": "redis"}}), &[], &[])
                .unwrap()
                .config
                .engine
                .kind,
            crate::config::EngineType::Redis
        );
        for f in ["user_block", "token_revoke", "user_tokens_invalidate"] {
            for s in ["", "memory"] {
                let c = load_value(json!({f: {"storage_type": s}}), &[], &[])
                    .unwrap()
                    .config;
                let feature = match f {
                    "user_block" => &c.user_block,
                    "token_revoke" => &c.token_revoke,
                    _ => &c.user_tokens_invalidate,
                };
                assert_eq!(feature.storage_type, crate::config::StorageType::Memory);
            }
            // Persistence is either configured completely or refused.
            assert!(
                err(json!({f: {"storage_type": "database"}})).contains("database.postgresql.dsn")
            );
            assert!(err(json!({f: {"storage_type": "redis"}})).contains(&format!("`{f}.redis`")));
            let two =
                err(json!({f: {"storage_type": "redis", "redis": {"address": ["a:1", "b:2"]}}}));
            assert!(
                two.contains(&format!("`{f}.redis.address`")) && two.contains("exactly one"),
                "{two}"
            );
            assert!(
                err(json!({f: {"storage_type": "redis", "redis": {"address": "a:1", "cluster_address": ["c:1"]}}}))
                    .contains("cluster_address")
            );
            // Sentinel: both keys, any (even empty) address list.
            load_value(
                json!({f: {"storage_type": "redis", "redis": {"address": [], "sentinel_address": ["s:1"], "sentinel_master_name": "m"}}}),
                &[],
                &[],
            )
            .unwrap();
            assert!(
                err(json!({f: {"storage_type": "redis", "redis": {"sentinel_address": ["s:1"]}}}))
                    .contains("sentinel_master_name")
            );
            assert!(
                err(json!({f: {"storage_type": "redis", "redis": {"sentinel_master_name": "m"}}}))
                    .contains("sentinel_address")
            );
            load_value(
                json!({f: {"storage_type": "redis", "redis": {"address": ["127.0.0.1:6379"]}}}),
                &[],
                &[],
            )
            .unwrap();
            load_value(
                json!({f: {"storage_type": "database"}, "database": {"enabled": true, "postgresql": {"dsn": "postgresql://x@127.0.0.1/db"}}}),
                &[],
                &[],
            )
            .unwrap();
        }
    }
}
