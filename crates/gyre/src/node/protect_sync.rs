//! Keeping every node's protective sets equal to the stores'
//! (docs/persistence.md "Staying current"):
//!
//! * at start, every unexpired entry is loaded before the first client can
//!   connect (a store that cannot be reached refuses the start, unless the
//!   feature says `start_without_storage`);
//! * a listener per store hears each change at once (Redis pub/sub on the
//!   storage Redis, PostgreSQL `LISTEN`) and applies it exactly as a local
//!   API call is applied (`Node::apply_protect`);
//! * every `reload_interval` (and at once after a listener reconnects)
//!   each feature's version is checked against the newest version heard in
//!   order; all entries are reloaded when they differ (a notification was
//!   lost) and every 30 checks regardless, so a lost notification, unblocks
//!   included, is repaired; newly blocked or revoked live connections are
//!   then closed;
//! * expired entries are deleted from the store every minute.
//!
//! A failing store never loses what memory holds: checks keep using the
//! last loaded state, and failures are logged and counted.

use super::{Node, Stores};
use crate::config::{Config, ProtectFeature, StorageType};
use crate::metrics::Metrics;
use crate::protect::store::{Heard, PgStore, RedisStore, Store};
use crate::protect::{Kind, Protect};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Reloads regardless of the version after this many checks.
const FULL_RELOAD_EVERY: u32 = 30;

/// What a node knows of a feature's store version: the newest version up
/// to which it has every change (from a load, then from notifications in
/// order), and whether a notification was skipped since.
#[derive(Default)]
struct Seen {
    version: std::sync::atomic::AtomicI64,
    gap: std::sync::atomic::AtomicBool,
}

impl Seen {
    /// A notification of `version` arrived.
    fn heard(&self, version: i64) {
        use std::sync::atomic::Ordering::SeqCst;
        let known = self.version.load(SeqCst);
        if version == known + 1 {
            self.version.store(version, SeqCst);
        } else if version > known + 1 {
            self.gap.store(true, SeqCst);
        }
    }

    /// Nothing was missed if the store is at the version heard in order.
    fn current(&self, store_version: i64) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        !self.gap.load(SeqCst) && self.version.load(SeqCst) == store_version
    }

    /// Everything up to `version` was loaded.
    fn loaded(&self, version: i64) {
        use std::sync::atomic::Ordering::SeqCst;
        self.gap.store(false, SeqCst);
        self.version.fetch_max(version, SeqCst);
    }
}
/// How often expired entries are deleted from the stores.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be served.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The Redis engine could not be reached at start.
    #[error(transparent)]
    Cluster(#[from] super::cluster::ClusterStartError),
    /// A protective store could not be reached or loaded at start.
    #[error(
        "cannot load `{feature}` entries from its {storage} storage: {reason}. Start the store, \
         or set `{feature}.start_without_storage: true` to start without them and keep retrying"
    )]
    Store {
        /// Feature (`user_block`, ...).
        feature: &'static str,
        /// `redis` or `database`.
        storage: &'static str,
        /// What failed (never a password or DSN).
        reason: String,
    },
}

fn feature_cfg(cfg: &Config, kind: Kind) -> &ProtectFeature {
    match kind {
        Kind::Block => &cfg.user_block,
        Kind::Revoke => &cfg.token_revoke,
        Kind::Invalidate => &cfg.user_tokens_invalidate,
    }
}

impl Stores {
    /// Memory stores for every feature.
    pub(super) fn memory() -> Stores {
        Stores {
            user_block: Store::Memory,
            token_revoke: Store::Memory,
            user_tokens_invalidate: Store::Memory,
        }
    }

    /// The stores a validated config asks for (no I/O yet). Features on
    /// PostgreSQL share one pool.
    pub(super) fn from_config(cfg: &Config) -> Result<Stores, StartError> {
        let mut pg: Option<Arc<PgStore>> = None;
        let mut make = |kind: Kind| -> Result<Store, StartError> {
            let f = feature_cfg(cfg, kind);
            let fail =
                |storage: &'static str, e: crate::node::error::StoreError| StartError::Store {
                    feature: kind.feature(),
                    storage,
                    reason: e.to_string(),
                };
            Ok(match f.storage_type {
                StorageType::Memory => Store::Memory,
                StorageType::Redis => {
                    let r = f.redis.as_ref().expect("validated: redis section present");
                    Store::Redis(Arc::new(RedisStore::new(r).map_err(|e| fail("redis", e))?))
                }
                StorageType::Database => {
                    if pg.is_none() {
                        let dsn = cfg
                            .database
                            .postgresql
                            .as_ref()
                            .map_or("", |p| p.dsn.as_str());
                        pg = Some(Arc::new(
                            PgStore::new(dsn, Duration::from_secs(5))
                                .map_err(|e| fail("database", e))?,
                        ));
                    }
                    Store::Postgres(pg.clone().expect("made above"))
                }
            })
        };
        Ok(Stores {
            user_block: make(Kind::Block)?,
            token_revoke: make(Kind::Revoke)?,
            user_tokens_invalidate: make(Kind::Invalidate)?,
        })
    }

    pub(super) fn get(&self, kind: Kind) -> &Store {
        match kind {
            Kind::Block => &self.user_block,
            Kind::Revoke => &self.token_revoke,
            Kind::Invalidate => &self.user_tokens_invalidate,
        }
    }
}

fn kind_index(k: Kind) -> usize {
    k as usize
}

fn storage_name(s: &Store) -> &'static str {
    match s {
        Store::Memory => "memory",
        Store::Redis(_) => "redis",
        Store::Postgres(_) => "database",
    }
}

/// Loads every entry of the features with persistent storage into `protect`
/// (before any client exists, so no live connection is concerned).
/// Returns each loaded feature's store version (read before loading, so
/// nothing after it is taken as seen), and the features that could not be
/// loaded but may start without.
pub(super) async fn initial_load(
    cfg: &Config,
    stores: &Stores,
    protect: &Protect,
) -> Result<(Vec<(Kind, i64)>, Vec<Kind>), StartError> {
    let mut pending = Vec::new();
    let mut loaded = Vec::new();
    for kind in Kind::ALL {
        let store = stores.get(kind);
        if !store.is_persistent() {
            continue;
        }
        let started = std::time::Instant::now();
        let version = match store.version(kind).await {
            Ok(v) => v,
            Err(e) if feature_cfg(cfg, kind).start_without_storage => {
                tracing::warn!(feature = kind.feature(), error = %e, "protective storage unreachable at start; starting without its entries and retrying");
                pending.push(kind);
                continue;
            }
            Err(e) => {
                return Err(StartError::Store {
                    feature: kind.feature(),
                    storage: storage_name(store),
                    reason: e.to_string(),
                });
            }
        };
        let mut n = 0usize;
        match store
            .load_each(kind, &mut |c| {
                protect.apply(&c);
                n += 1;
            })
            .await
        {
            Ok(()) => {
                loaded.push((kind, version));
                tracing::info!(
                    feature = kind.feature(),
                    entries = n,
                    ms = started.elapsed().as_millis() as u64,
                    "protective entries loaded"
                );
            }
            Err(e) if feature_cfg(cfg, kind).start_without_storage => {
                tracing::warn!(feature = kind.feature(), error = %e, "protective storage unreachable at start; starting without its entries and retrying");
                pending.push(kind);
            }
            Err(e) => {
                return Err(StartError::Store {
                    feature: kind.feature(),
                    storage: storage_name(store),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok((loaded, pending))
}

impl Node {
    /// Starts keeping the protective sets current: one listener per store,
    /// one reload loop per persistent feature (`pending` ones reload at
    /// once), and the purge of expired entries.
    pub(super) fn spawn_protect_sync(
        self: &Arc<Self>,
        loaded: Vec<(Kind, i64)>,
        pending: Vec<Kind>,
    ) {
        let persistent: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| self.stores.get(*k).is_persistent())
            .collect();
        if persistent.is_empty() {
            return;
        }
        let kicks: Arc<[Notify; 3]> = Arc::new(Default::default());
        let seen: Arc<[Seen; 3]> = Arc::new(Default::default());
        for (kind, version) in loaded {
            seen[kind_index(kind)].loaded(version);
        }
        let kick_index = kind_index;
        // Listeners: one per Redis feature, one for PostgreSQL.
        let (tx, mut rx) = mpsc::channel::<(Option<Kind>, Heard)>(1024);
        let mut pg_listening = false;
        for kind in &persistent {
            match self.stores.get(*kind).clone() {
                Store::Redis(r) => {
                    let tx = tx.clone();
                    let kind = *kind;
                    self.lifecycle.spawn_background(
                        "protect-listen-redis",
                        move |stop| async move {
                            let (htx, mut hrx) = mpsc::channel(1024);
                            let forward = async {
                                while let Some(h) = hrx.recv().await {
                                    if tx.send((Some(kind), h)).await.is_err() {
                                        break;
                                    }
                                }
                            };
                            tokio::join!(r.listen(kind, htx, stop), forward);
                        },
                    );
                }
                Store::Postgres(p) if !pg_listening => {
                    pg_listening = true;
                    let tx = tx.clone();
                    self.lifecycle.spawn_background(
                        "protect-listen-postgres",
                        move |stop| async move {
                            let (htx, mut hrx) = mpsc::channel(1024);
                            let forward = async {
                                while let Some(h) = hrx.recv().await {
                                    if tx.send((None, h)).await.is_err() {
                                        break;
                                    }
                                }
                            };
                            tokio::join!(p.listen(htx, stop), forward);
                        },
                    );
                }
                _ => {}
            }
        }
        drop(tx);
        // Apply what the listeners hear.
        let node = self.clone();
        let k = kicks.clone();
        let sn = seen.clone();
        let pg_kinds: Vec<Kind> = persistent
            .iter()
            .copied()
            .filter(|k| matches!(node.stores.get(*k), Store::Postgres(_)))
            .collect();
        self.lifecycle
            .spawn_background("protect-apply", move |stop| async move {
                loop {
                    let heard = tokio::select! {
                        _ = stop.cancelled() => break,
                        h = rx.recv() => match h { Some(h) => h, None => break },
                    };
                    match heard {
                        (_, Heard::Change(n)) => {
                            if n.version > 0 {
                                sn[kick_index(n.change.kind())].heard(n.version);
                            }
                            if n.node != node.id {
                                Metrics::inc(&node.metrics.protect_notifications);
                            }
                            // This node's own changes too: normally already
                            // applied (a no-op), but a write stored although
                            // its answer timed out (the API said 100) is
                            // applied now rather than at the next reload.
                            node.apply_protect(&n.change);
                        }
                        // Reconnected: reload what may have been missed.
                        (Some(kind), Heard::Connected) => k[kick_index(kind)].notify_one(),
                        (None, Heard::Connected) => {
                            for kind in &pg_kinds {
                                k[kick_index(*kind)].notify_one();
                            }
                        }
                    }
                }
            });
        // Reload loops.
        for kind in persistent.iter().copied() {
            let node = self.clone();
            let k = kicks.clone();
            let sn = seen.clone();
            let interval = feature_cfg(&self.cfg, kind).reload_interval.0;
            let load_now = pending.contains(&kind);
            self.lifecycle
                .spawn_background("protect-reload", move |stop| async move {
                    node.reload_loop(
                        kind,
                        interval,
                        load_now,
                        &k[kick_index(kind)],
                        &sn[kick_index(kind)],
                        stop,
                    )
                    .await
                });
        }
        // Purge of expired entries (harmless when several nodes do it).
        let node = self.clone();
        self.lifecycle
            .spawn_background("protect-purge", move |stop| async move {
                let mut tick = tokio::time::interval(PURGE_EVERY);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    for kind in &persistent {
                        match node.stores.get(*kind).purge_expired(*kind).await {
                            Ok(0) => {}
                            Ok(n) => tracing::debug!(feature = kind.feature(), deleted = n, "expired protective entries deleted from the store"),
                            Err(e) => tracing::warn!(feature = kind.feature(), error = %e, "purging expired protective entries failed"),
                        }
                    }
                }
            });
    }

    async fn reload_loop(
        self: &Arc<Self>,
        kind: Kind,
        interval: Duration,
        mut load_now: bool,
        kick: &Notify,
        seen: &Seen,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let store = self.stores.get(kind);
        let mut checks = 0u32;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !load_now {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                    // A listener (re)connected: check at once whether
                    // anything was missed meanwhile.
                    _ = kick.notified() => {}
                }
            }
            checks += 1;
            let version = match store.version(kind).await {
                Ok(v) => v,
                Err(e) => {
                    Metrics::inc(&self.metrics.protect_store_errors);
                    tracing::warn!(feature = kind.feature(), error = %e, "protective store unreachable; enforcing the entries in memory");
                    load_now = false;
                    continue;
                }
            };
            // Every change up to the store's version was heard in order:
            // nothing to repair (a full reload still runs now and then).
            if !load_now && seen.current(version) && !checks.is_multiple_of(FULL_RELOAD_EVERY) {
                continue;
            }
            let snapshot_ms = crate::protect::change::now_ms();
            match store.load(kind).await {
                Ok(changes) => {
                    // Comparing a large table is CPU work (about a second
                    // for a million entries): off the runtime's workers, so
                    // connections are not held up meanwhile.
                    let node = self.clone();
                    let effective = match tokio::task::spawn_blocking(move || {
                        node.protect.reconcile(kind, changes, snapshot_ms)
                    })
                    .await
                    {
                        Ok(e) => e,
                        Err(e) => {
                            tracing::error!(error = %e, "reconciling protective entries failed");
                            continue;
                        }
                    };
                    if !effective.is_empty() {
                        tracing::info!(
                            feature = kind.feature(),
                            changes = effective.len(),
                            "protective entries reloaded; applying missed changes"
                        );
                    }
                    for c in &effective {
                        self.apply_live(c);
                    }
                    Metrics::inc(&self.metrics.protect_reloads);
                    seen.loaded(version);
                    load_now = false;
                }
                Err(e) => {
                    Metrics::inc(&self.metrics.protect_store_errors);
                    tracing::warn!(feature = kind.feature(), error = %e, "reloading protective entries failed; enforcing the entries in memory");
                    load_now = false;
                }
            }
        }
    }
}
