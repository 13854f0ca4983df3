//! Redis key and PUB/SUB channel names, and the choice of shard, exactly as
//! Centrifugo v6.9 makes them (redis-cluster.md §1), so existing Redis
//! tooling keeps working and a Centrifugo node could share the Redis.

/// Names under one prefix. In Redis Cluster mode every per-channel name
/// wraps the channel in a `{hash tag}` so a channel's keys share a slot
/// (§1.3, including the PUB/SUB channel since Centrifugo v6.6.0).
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
    cluster: bool,
}

impl Names {
    /// Names for `prefix` (an empty prefix is `centrifuge` on the wire, as
    /// in the centrifuge library, §1.1).
    pub(crate) fn new(prefix: &str, cluster: bool) -> Names {
        Names {
            prefix: if prefix.is_empty() {
                "centrifuge".into()
            } else {
                prefix.into()
            },
            cluster,
        }
    }

    fn per_channel(&self, infix: &str, channel: &str) -> String {
        if self.cluster {
            format!("{}.{infix}.{{{channel}}}", self.prefix)
        } else {
            format!("{}.{infix}.{channel}", self.prefix)
        }
    }

    /// PUB/SUB channel of a channel's publications, joins and leaves.
    pub(crate) fn client(&self, channel: &str) -> String {
        self.per_channel("client", channel)
    }

    /// The channel a `client` PUB/SUB name is about (`None` for any other
    /// name, and in cluster mode for a name without braces, §1.3).
    pub(crate) fn channel_of<'a>(&self, pubsub: &'a str) -> Option<&'a str> {
        let rest = pubsub
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(".client.")?;
        if self.cluster {
            rest.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(rest)
        }
    }

    /// Control broadcast to every node.
    pub(crate) fn control(&self) -> String {
        format!("{}.control", self.prefix)
    }

    /// Control addressed to one node.
    pub(crate) fn node(&self, uid: &str) -> String {
        format!("{}.node.{uid}", self.prefix)
    }

    /// History stream.
    pub(crate) fn stream(&self, channel: &str) -> String {
        self.per_channel("stream", channel)
    }

    /// History meta hash of a stream (`e` epoch, `s` top offset).
    pub(crate) fn stream_meta(&self, channel: &str) -> String {
        self.per_channel("stream.meta", channel)
    }

    /// History list (`history_use_lists`).
    pub(crate) fn list(&self, channel: &str) -> String {
        self.per_channel("list", channel)
    }

    /// History meta hash of a list.
    pub(crate) fn list_meta(&self, channel: &str) -> String {
        self.per_channel("list.meta", channel)
    }

    /// Result of an idempotent publication.
    pub(crate) fn result(&self, channel: &str, key: &str) -> String {
        if self.cluster {
            format!("{}.result.{{{channel}}}.{key}", self.prefix)
        } else {
            format!("{}.result.{channel}.{key}", self.prefix)
        }
    }

    /// Presence data hash (client id → ClientInfo bytes).
    pub(crate) fn presence_data(&self, channel: &str) -> String {
        self.per_channel("presence.data", channel)
    }

    /// Presence expiry index (client id → expire-at seconds).
    pub(crate) fn presence_expire(&self, channel: &str) -> String {
        self.per_channel("presence.expire", channel)
    }

    /// Per-user expiry index (user mapping).
    pub(crate) fn presence_user_expire(&self, channel: &str) -> String {
        self.per_channel("presence.user.expire", channel)
    }

    /// Per-user connection counts (user mapping).
    pub(crate) fn presence_user_clients(&self, channel: &str) -> String {
        self.per_channel("presence.user.clients", channel)
    }
}

/// FNV-1a, 64 bits (Go's `hash/fnv` New64a).
pub(crate) fn fnv1a64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lamping–Veach jump consistent hash of `key` into `n` buckets (§1.6).
pub(crate) fn jump(mut key: u64, n: usize) -> usize {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < n as i64 {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = (((b + 1) as f64) * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as usize
}

/// The shard of `channel` among `n` (Centrifugo's choice, so every node,
/// Gyre or Centrifugo, agrees).
pub(crate) fn shard_of(channel: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    jump(fnv1a64(channel.as_bytes()), n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_centrifugo_writes_them() {
        let n = Names::new("centrifugo", false);
        assert_eq!(n.client("chat:1"), "centrifugo.client.chat:1");
        assert_eq!(n.stream("chat:1"), "centrifugo.stream.chat:1");
        assert_eq!(n.stream_meta("chat:1"), "centrifugo.stream.meta.chat:1");
        assert_eq!(n.list("a"), "centrifugo.list.a");
        assert_eq!(n.list_meta("a"), "centrifugo.list.meta.a");
        assert_eq!(n.result("a", "k"), "centrifugo.result.a.k");
        assert_eq!(n.presence_data("a"), "centrifugo.presence.data.a");
        assert_eq!(n.presence_expire("a"), "centrifugo.presence.expire.a");
        assert_eq!(n.control(), "centrifugo.control");
        assert_eq!(n.node("u-1"), "centrifugo.node.u-1");
        assert_eq!(n.channel_of("centrifugo.client.chat:1"), Some("chat:1"));
        assert_eq!(n.channel_of("centrifugo.control"), None);
        let c = Names::new("p", true);
        assert_eq!(c.client("a"), "p.client.{a}");
        assert_eq!(c.stream_meta("a"), "p.stream.meta.{a}");
        assert_eq!(c.result("a", "k"), "p.result.{a}.k");
        assert_eq!(c.presence_user_clients("a"), "p.presence.user.clients.{a}");
        assert_eq!(c.channel_of("p.client.{a}"), Some("a"));
        assert_eq!(c.channel_of("p.client.a"), None);
        assert_eq!(Names::new("", false).control(), "centrifuge.control");
    }

    #[test]
    fn fnv_and_jump_match_go() {
        // Go: fnv.New64a() over "" and "a" (published test vectors).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        // Jump hash reference values (Lamping & Veach, also used by
        // Go's github.com/dgryski/go-jump tests).
        assert_eq!(jump(1, 1), 0);
        assert_eq!(jump(0xDEAD10CC, 1), 0);
        assert_eq!(jump(0xDEAD10CC, 666), 361);
        assert_eq!(jump(256, 1024), 520);
        assert_eq!(jump(0, 10), 0);
        assert_eq!(shard_of("anything", 1), 0);
        // Spread: two shards both get channels.
        let ones = (0..100)
            .filter(|i| shard_of(&format!("ch{i}"), 2) == 1)
            .count();
        assert!((30..70).contains(&ones), "{ones}");
    }
}
