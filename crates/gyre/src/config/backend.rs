//! Backend sections: Redis (`engine.redis` and each protective feature's
//! `redis`) and PostgreSQL (`database`), typed the way Centrifugo (PRO)
//! writes them: the Redis engine (docs/cluster.md) and the persistent
//! protective stores (docs/persistence.md) connect with them. Decoding them
//! typed means a mistyped value fails at start and an unknown key is
//! reported, like everywhere else.
//!
//! Their `Debug` never prints a password or a DSN: configs end up in logs
//! and panic messages.

use super::duration::Dur;
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A value written either alone or as a list (`"a"` or `["a", "b"]`), as
/// Centrifugo's list keys accept both. One element serializes as the bare
/// value, any other number as a list.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> OneOrMany<T> {
    /// A single value.
    pub fn one(v: T) -> Self {
        OneOrMany(vec![v])
    }

    /// The values, in the order written.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// True when nothing was given (`[]`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: fmt::Debug> fmt::Debug for OneOrMany<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize> Serialize for OneOrMany<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);

        impl<T> V<T> {
            fn one<'de, E, I>(v: I) -> Result<OneOrMany<T>, E>
            where
                T: Deserialize<'de>,
                E: de::Error,
                I: IntoDeserializer<'de, E>,
            {
                T::deserialize(v.into_deserializer()).map(OneOrMany::one)
            }
        }

        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrMany::one)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Self::one(v)
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Self::one(v)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Self::one(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Self::one(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Self::one(v)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Self::one(v)
            }
        }

        d.deserialize_any(V(PhantomData))
    }
}

/// Prints a secret as `"<redacted>"` (or `""` when it is empty, which is
/// worth knowing and gives nothing away).
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

/// Prints addresses with the password of a `redis://user:password@host`
/// URL replaced, since Centrifugo accepts credentials inside the address.
struct Addresses<'a>(&'a OneOrMany<String>);

impl fmt::Debug for Addresses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.as_slice().iter().map(|a| redact_url(a)))
            .finish()
    }
}

/// `scheme://user:password@host/…` → `scheme://user:<redacted>@host/…`
/// (and `scheme://secret@host` → `scheme://<redacted>@host`). Anything
/// without credentials is returned as is.
fn redact_url(addr: &str) -> String {
    let Some(scheme_end) = addr.find("://") else {
        return addr.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &addr[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return addr.to_string();
    };
    let userinfo = &rest[..at];
    let kept = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:<redacted>"),
        None => "<redacted>".to_string(),
    };
    format!("{}{kept}{}", &addr[..rest_start], &rest[at..])
}

/// A Redis connection section: `engine.redis`, and `redis` under
/// `user_block`, `token_revoke` and `user_tokens_invalidate`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Redis {
    /// `address`: one address or a list (several = shards). Host and port,
    /// or a `redis://`/`rediss://` URL, as Centrifugo accepts.
    pub address: OneOrMany<String>,
    /// `prefix`: key and channel prefix (`centrifugo`).
    pub prefix: String,
    /// `db`: database number.
    pub db: u32,
    /// `user`: ACL user.
    pub user: String,
    /// `password`: password.
    pub password: String,
    /// `connect_timeout`: connect timeout (1s).
    pub connect_timeout: Dur,
    /// `io_timeout`: timeout of one request (4s).
    pub io_timeout: Dur,
    /// `tls`: TLS to Redis.
    pub tls: Tls,
    /// `sentinel_address`: Sentinel addresses; when set, Sentinel is used.
    pub sentinel_address: OneOrMany<String>,
    /// `sentinel_master_name`: the master's name in Sentinel.
    pub sentinel_master_name: String,
    /// `sentinel_user`: Sentinel ACL user.
    pub sentinel_user: String,
    /// `sentinel_password`: Sentinel password.
    pub sentinel_password: String,
    /// `cluster_address`: Redis Cluster seed addresses; when set, cluster mode is used.
    pub cluster_address: OneOrMany<String>,
    /// `history_use_lists`: keep history in Redis lists instead of streams (engine only).
    pub history_use_lists: bool,
    /// `presence_ttl`: how long presence entries live without refresh (60s, engine only).
    pub presence_ttl: Dur,
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            address: OneOrMany::one("redis://127.0.0.1:6379".into()),
            prefix: "centrifugo".into(),
            db: 0,
            user: String::new(),
            password: String::new(),
            connect_timeout: Dur::secs(1),
            io_timeout: Dur::secs(4),
            tls: Tls::default(),
            sentinel_address: OneOrMany::default(),
            sentinel_master_name: String::new(),
            sentinel_user: String::new(),
            sentinel_password: String::new(),
            cluster_address: OneOrMany::default(),
            history_use_lists: false,
            presence_ttl: Dur::secs(60),
        }
    }
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("address", &Addresses(&self.address))
            .field("prefix", &self.prefix)
            .field("db", &self.db)
            .field("user", &self.user)
            .field("password", &Redacted(&self.password))
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("tls", &self.tls)
            .field("sentinel_address", &Addresses(&self.sentinel_address))
            .field("sentinel_master_name", &self.sentinel_master_name)
            .field("sentinel_user", &self.sentinel_user)
            .field("sentinel_password", &Redacted(&self.sentinel_password))
            .field("cluster_address", &Addresses(&self.cluster_address))
            .field("history_use_lists", &self.history_use_lists)
            .field("presence_ttl", &self.presence_ttl)
            .finish()
    }
}

/// A `tls` section, with Centrifugo v6's keys. PEM values are the PEM text
/// itself, a file path or base64, as in Centrifugo.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tls {
    /// `enabled`: use TLS.
    pub enabled: bool,
    /// `cert_pem`: client certificate.
    pub cert_pem: String,
    /// `key_pem`: client private key (never printed by `Debug`).
    pub key_pem: String,
    /// `server_ca_pem`: CA that signs the server's certificate.
    pub server_ca_pem: String,
    /// `client_ca_pem`: CA for client certificates.
    pub client_ca_pem: String,
    /// `insecure_skip_verify`: do not verify the server's certificate.
    pub insecure_skip_verify: bool,
    /// `server_name`: name to verify the server's certificate against.
    pub server_name: String,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("enabled", &self.enabled)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &Redacted(&self.key_pem))
            .field("server_ca_pem", &self.server_ca_pem)
            .field("client_ca_pem", &self.client_ca_pem)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// `database.*` (Centrifugo PRO): PostgreSQL for the protective features'
/// `storage_type: database`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Database {
    /// `database.enabled`: use PostgreSQL (for features with `storage_type: "database"`).
    pub enabled: bool,
    /// `database.postgresql`: the connection (`null` when not given).
    pub postgresql: Option<Postgres>,
}

/// `database.postgresql.*`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Postgres {
    /// `dsn`: connection string, URL (`postgresql://user:pass@host/db`) or
    /// `key=value` form (never printed by `Debug`).
    pub dsn: String,
    /// Any other key of Centrifugo PRO's section (pool and replica
    /// settings), kept as written and unused: Gyre sizes its own pool.
    /// `Debug` prints only their names, since they may hold credentials too.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("dsn", &Redacted(&self.dsn))
            .field("other", &self.other.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_or_many_reads_both_forms_and_writes_one_bare() {
        let one: OneOrMany<String> = serde_json::from_value(json!("redis://a:6379")).unwrap();
        assert_eq!(one.as_slice(), ["redis://a:6379"]);
        assert_eq!(json!(one), json!("redis://a:6379"));
        let many: OneOrMany<String> = serde_json::from_value(json!(["a:1", "b:2"])).unwrap();
        assert_eq!(many.as_slice(), ["a:1", "b:2"]);
        assert_eq!(json!(many), json!(["a:1", "b:2"]));
        let listed_one: OneOrMany<String> = serde_json::from_value(json!(["a:1"])).unwrap();
        assert_eq!(json!(listed_one), json!("a:1"));
        let none: OneOrMany<String> = serde_json::from_value(json!([])).unwrap();
        assert!(none.is_empty());
        assert_eq!(json!(none), json!([]));
        let n: OneOrMany<u16> = serde_json::from_value(json!(7)).unwrap();
        assert_eq!(n.as_slice(), [7]);
    }

    #[test]
    fn one_or_many_rejects_other_types() {
        let e = serde_json::from_value::<OneOrMany<String>>(json!(6379)).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
        let e = serde_json::from_value::<OneOrMany<String>>(json!(["a", 1])).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
        let e = serde_json::from_value::<OneOrMany<String>>(json!(null)).unwrap_err();
        assert!(e.to_string().contains("a value or a list"), "{e}");
    }

    #[test]
    fn redis_defaults_and_every_key() {
        let r: Redis = serde_json::from_value(json!({})).unwrap();
        assert_eq!(r, Redis::default());
        assert_eq!(r.address.as_slice(), ["redis://127.0.0.1:6379"]);
        assert_eq!(r.prefix, "centrifugo");
        assert_eq!(r.connect_timeout, Dur::secs(1));
        assert_eq!(r.io_timeout, Dur::secs(4));
        assert_eq!(r.presence_ttl, Dur::secs(60));
        let r: Redis = serde_json::from_value(json!({
            "address": ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"],
            "prefix": "p", "db": 2, "user": "u", "password": "pw",
            "connect_timeout": "2s", "io_timeout": 5,
            "tls": {"enabled": true, "server_name": "r.example.com"},
            "sentinel_address": "10.0.0.9:26379", "sentinel_master_name": "mymaster",
            "sentinel_user": "su", "sentinel_password": "spw",
            "cluster_address": ["c1:7000", "c2:7000"],
            "history_use_lists": true, "presence_ttl": "30s"
        }))
        .unwrap();
        assert_eq!(r.address.as_slice().len(), 2);
        assert_eq!(r.db, 2);
        assert_eq!(r.io_timeout, Dur::secs(5));
        assert!(r.tls.enabled);
        assert_eq!(r.sentinel_address.as_slice(), ["10.0.0.9:26379"]);
        assert_eq!(r.cluster_address.as_slice(), ["c1:7000", "c2:7000"]);
        assert!(r.history_use_lists);
        assert_eq!(r.presence_ttl, Dur::secs(30));
    }

    #[test]
    fn debug_never_prints_passwords_or_dsns() {
        let r = Redis {
            address: OneOrMany(vec![
                "redis://:addrsecret@10.0.0.1:6379/0".into(),
                "rediss://alice:addrsecret2@10.0.0.2".into(),
                "redis://addrsecret3@h".into(),
                "10.0.0.3:6379".into(),
            ]),
            password: "pw-secret".into(),
            sentinel_password: "sentinel-secret".into(),
            sentinel_address: OneOrMany::one("redis://x:sentinel-url-secret@s:26379".into()),
            tls: Tls {
                key_pem: "-----BEGIN PRIVATE KEY----- keysecret".into(),
                ..Tls::default()
            },
            ..Redis::default()
        };
        let d = format!("{r:?} {r:#?}");
        for secret in [
            "addrsecret",
            "pw-secret",
            "sentinel-secret",
            "sentinel-url-secret",
            "keysecret",
        ] {
            assert!(!d.contains(secret), "{secret} leaked: {d}");
        }
        assert!(d.contains("redis://:<redacted>@10.0.0.1:6379/0"), "{d}");
        assert!(d.contains("rediss://alice:<redacted>@10.0.0.2"), "{d}");
        assert!(d.contains("redis://<redacted>@h"), "{d}");
        assert!(d.contains("10.0.0.3:6379"), "{d}");
        assert!(d.contains("password: \"<redacted>\""), "{d}");
        // An empty password prints as empty: that is worth knowing.
        assert!(format!("{:?}", Redis::default()).contains("password: \"\""));

        let db = Database {
            enabled: true,
            postgresql: Some(
                serde_json::from_value(json!({
                    "dsn": "postgresql://postgres:dsn-secret@127.0.0.1:5432/postgres",
                    "replica_dsn": ["postgresql://r:replica-secret@10.0.0.5/db"]
                }))
                .unwrap(),
            ),
        };
        let d = format!("{db:?} {db:#?}");
        assert!(
            !d.contains("dsn-secret") && !d.contains("replica-secret"),
            "{d}"
        );
        assert!(d.contains("replica_dsn"), "{d}");
    }

    #[test]
    fn postgres_keeps_other_keys() {
        let p: Postgres =
            serde_json::from_value(json!({"dsn": "host=db", "pool_size": 10})).unwrap();
        assert_eq!(p.dsn, "host=db");
        assert_eq!(p.other["pool_size"], json!(10));
        assert_eq!(json!(p), json!({"dsn": "host=db", "pool_size": 10}));
    }

    #[test]
    fn sections_load_typed_through_the_loader() {
        let l = crate::config::load_value(
            json!({
                "engine": {"redis": {"address": ["redis://a:6379", "redis://b:6379"]}},
                "user_block": {"redis": {"address": "redis://c:6379", "bogus": 1}},
                "database": {"postgresql": {"dsn": "postgresql://db/x", "pool_size": 3}}
            }),
            &[],
            &[],
        )
        .unwrap();
        let c = &l.config;
        assert_eq!(c.engine.redis.address.as_slice().len(), 2);
        let ub = c.user_block.redis.as_ref().unwrap();
        assert_eq!(ub.address.as_slice(), ["redis://c:6379"]);
        assert_eq!(ub.prefix, "centrifugo", "defaults fill a partial section");
        assert!(c.token_revoke.redis.is_none());
        assert_eq!(
            c.database.postgresql.as_ref().unwrap().dsn,
            "postgresql://db/x"
        );
        assert_eq!(l.unknown, ["user_block.redis.bogus"]);

        let e = crate::config::load_value(json!({"engine": {"redis": {"db": "one"}}}), &[], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`engine.redis.db`"), "{e}");
        let e = crate::config::load_value(
            json!({"token_revoke": {"redis": {"address": 6379}}}),
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`token_revoke.redis.address`"), "{e}");
    }
}
