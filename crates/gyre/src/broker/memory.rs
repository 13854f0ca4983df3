//! In-memory history: one stream per channel with an epoch, a monotonically
//! growing offset, a size limit and a TTL (Centrifugo's memory engine).

use super::{HistoryError, StreamTop};
use crate::protocol::{Publication, StreamPosition};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::Duration;
use tokio::time::Instant;

const SHARDS: usize = 64;

struct Entry {
    publication: Publication,
    expires: Instant,
}

struct Stream {
    epoch: String,
    top: u64,
    items: VecDeque<Entry>,
    meta_expires: Option<Instant>,
}

impl Stream {
    /// A fresh stream: new epoch, offset 0.
    fn new() -> Self {
        Stream {
            epoch: new_epoch(),
            top: 0,
            items: VecDeque::new(),
            meta_expires: None,
        }
    }
}

/// How long the result of a publication with an `idempotency_key` is kept
/// (centrifuge's memory broker default; Centrifugo has no key for it).
pub(crate) const IDEMPOTENT_RESULT_TTL: Duration = Duration::from_secs(300);

/// The in-memory history store.
pub(crate) struct MemoryBroker {
    hasher: foldhash::fast::RandomState,
    shards: Vec<Mutex<HashMap<String, Stream>>>,
    /// `<channel>_<idempotency key>` → result of the first publication and
    /// when it stops being remembered.
    idempotent: Mutex<HashMap<String, (Option<StreamTop>, Instant)>>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

fn new_epoch() -> String {
    // Centrifugo's memory engine uses a short random string.
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

impl MemoryBroker {
    /// An empty store.
    pub(crate) fn new() -> Self {
        MemoryBroker {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            idempotent: Mutex::new(HashMap::new()),
        }
    }

    fn shard(&self, ch: &str) -> &Mutex<HashMap<String, Stream>> {
        &self.shards[(self.hasher.hash_one(ch) as usize) % SHARDS]
    }

    /// Appends a publication, assigning its offset, and runs `deliver` with
    /// it before the channel's stream is unlocked: two concurrent
    /// publications to one channel therefore reach subscribers in offset
    /// order (a client tracking offsets never sees 3 before 2). Returns the
    /// new top.
    pub(crate) fn add(
        &self,
        channel: &str,
        mut p: Publication,
        size: usize,
        ttl: Duration,
        meta_ttl: Duration,
        deliver: impl FnOnce(&Publication),
    ) -> StreamTop {
        let now = Instant::now();
        let mut shard = self.shard(channel).lock();
        let s = shard.entry(channel.to_string()).or_insert_with(Stream::new);
        s.top += 1;
        p.offset = s.top;
        deliver(&p);
        s.items.push_back(Entry {
            publication: p,
            expires: now + ttl,
        });
        while s.items.len() > size {
            s.items.pop_front();
        }
        s.meta_expires = (!meta_ttl.is_zero()).then(|| now + meta_ttl);
        StreamTop {
            offset: s.top,
            epoch: s.epoch.clone(),
        }
    }

    /// The current top of a channel's stream (creating the stream, as Centrifugo does).
    pub(crate) fn top(&self, channel: &str) -> StreamTop {
        let mut shard = self.shard(channel).lock();
        let s = shard.entry(channel.to_string()).or_insert_with(Stream::new);
        StreamTop {
            offset: s.top,
            epoch: s.epoch.clone(),
        }
    }

    /// Publications after `since` (or all kept), at most `limit` (`None` = all).
    pub(crate) fn history(
        &self,
        channel: &str,
        since: Option<&StreamPosition>,
        limit: Option<usize>,
        reverse: bool,
    ) -> Result<(Vec<Publication>, StreamTop), HistoryError> {
        let now = Instant::now();
        let mut shard = self.shard(channel).lock();
        let s = shard.entry(channel.to_string()).or_insert_with(Stream::new);
        while s.items.front().is_some_and(|e| e.expires <= now) {
            s.items.pop_front();
        }
        let top = StreamTop {
            offset: s.top,
            epoch: s.epoch.clone(),
        };
        let pubs: Vec<Publication> = match since {
            Some(pos) => {
                if pos.epoch != s.epoch && !(pos.epoch.is_empty() && pos.offset == 0) {
                    return Err(HistoryError::Unrecoverable);
                }
                if pos.offset > s.top {
                    return Err(HistoryError::Unrecoverable);
                }
                // The next wanted offset must still be kept.
                let first_kept = s.items.front().map_or(s.top + 1, |e| e.publication.offset);
                if pos.offset + 1 < first_kept {
                    return Err(HistoryError::Unrecoverable);
                }
                s.items
                    .iter()
                    .filter(|e| e.publication.offset > pos.offset)
                    .map(|e| e.publication.clone())
                    .collect()
            }
            None => s.items.iter().map(|e| e.publication.clone()).collect(),
        };
        let mut pubs = pubs;
        if reverse {
            pubs.reverse();
        }
        if let Some(l) = limit {
            pubs.truncate(l);
        }
        Ok((pubs, top))
    }

    /// Drops a channel's publications (the epoch and offset are kept).
    pub(crate) fn remove_history(&self, channel: &str) {
        if let Some(s) = self.shard(channel).lock().get_mut(channel) {
            s.items.clear();
        }
    }

    /// Runs `publish` once per `key` and channel within
    /// [`IDEMPOTENT_RESULT_TTL`]: a repeat returns the first result and
    /// publishes nothing. The map stays locked while `publish` runs, so two
    /// concurrent repeats cannot both publish (memory work only, no await).
    pub(crate) fn idempotent(
        &self,
        channel: &str,
        key: &str,
        publish: impl FnOnce() -> Option<StreamTop>,
    ) -> Option<StreamTop> {
        let now = Instant::now();
        let mut m = self.idempotent.lock();
        let k = format!("{channel}_{key}");
        if let Some((top, until)) = m.get(&k)
            && *until > now
        {
            return top.clone();
        }
        let top = publish();
        m.insert(k, (top.clone(), now + IDEMPOTENT_RESULT_TTL));
        top
    }

    /// Drops expired publications and streams whose meta TTL passed, and
    /// idempotency results past their TTL.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        self.idempotent.lock().retain(|_, (_, until)| *until > now);
        for shard in &self.shards {
            let mut m = shard.lock();
            m.retain(|_, s| {
                while s.items.front().is_some_and(|e| e.expires <= now) {
                    s.items.pop_front();
                }
                !(s.items.is_empty() && s.meta_expires.is_some_and(|t| t <= now))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::null;

    fn p() -> Publication {
        Publication {
            data: null().into(),
            info: None,
            offset: 0,
            tags: None,
        }
    }

    #[test]
    fn offsets_grow_and_size_limits_history() {
        let b = MemoryBroker::new();
        for _ in 0..5 {
            b.add("c", p(), 3, Duration::from_secs(60), Duration::ZERO, |_| {});
        }
        let (pubs, top) = b.history("c", None, None, false).unwrap();
        assert_eq!(top.offset, 5);
        assert_eq!(
            pubs.iter().map(|p| p.offset).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        let since = StreamPosition {
            offset: 3,
            epoch: top.epoch.clone(),
        };
        let (pubs, _) = b.history("c", Some(&since), None, false).unwrap();
        assert_eq!(pubs.len(), 2);
        let gone = StreamPosition {
            offset: 1,
            epoch: top.epoch.clone(),
        };
        assert_eq!(
            b.history("c", Some(&gone), None, false).unwrap_err(),
            HistoryError::Unrecoverable
        );
        let other = StreamPosition {
            offset: 4,
            epoch: "x".into(),
        };
        assert_eq!(
            b.history("c", Some(&other), None, false).unwrap_err(),
            HistoryError::Unrecoverable
        );
        let (rev, _) = b.history("c", None, Some(1), true).unwrap();
        assert_eq!(rev[0].offset, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn ttl_expires_publications() {
        let b = MemoryBroker::new();
        b.add("c", p(), 10, Duration::from_secs(1), Duration::ZERO, |_| {});
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.history("c", None, None, false).unwrap().0.is_empty());
    }
}
