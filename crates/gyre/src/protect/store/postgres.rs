//! Protective entries in PostgreSQL (docs/persistence.md "PostgreSQL
//! layout"): one table per feature, created and migrated by Gyre at start
//! (versioned, idempotent, under an advisory lock so nodes starting
//! together do not race), an index on `expire_at`, and a version row per
//! feature. A write is one transaction: merge into the table, bump the
//! version, `NOTIFY gyre_protect` with the change (delivered at commit).

use super::{Heard, Kind, Notice, Record, StoreError, unavailable};
use crate::protect::change::{Change, Op};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::NoTls;

/// The notification channel of every feature.
const CHANNEL: &str = "gyre_protect";

/// Schema migrations, in order; each runs once (recorded in
/// `gyre_protect_migrations`).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("migrations/001_protect_tables.sql"))];

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x6779_7265_7072_6f74; // "gyreprot"

fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::Block => "gyre_user_block",
        Kind::Revoke => "gyre_token_revoke",
        Kind::Invalidate => "gyre_user_tokens_invalidate",
    }
}

/// The PostgreSQL store, shared by the features that use it. Connects
/// and migrates lazily (and again after a failure), so a node may start
/// while the database is down when asked to.
pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    timeout: Duration,
    migrated: tokio::sync::OnceCell<()>,
}

impl PgStore {
    /// A store for `dsn`; `timeout` bounds each operation. No I/O yet.
    /// Errors never contain the DSN.
    pub fn new(dsn: &str, timeout: Duration) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = dsn
            .parse()
            .map_err(|_| unavailable("database.postgresql.dsn", "not a PostgreSQL DSN"))?;
        let mgr = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| unavailable("postgresql pool", e))?;
        Ok(PgStore {
            pool,
            config,
            timeout,
            migrated: tokio::sync::OnceCell::new(),
        })
    }

    /// A pooled connection, once the schema is migrated.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.migrated.get_or_try_init(|| self.migrate()).await?;
        self.connection().await
    }

    async fn connection(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| unavailable("postgresql connect", e))
    }

    async fn timed<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .map_err(|_| unavailable(what, "timed out"))?
            .map_err(|e| unavailable(what, e))
    }

    /// Applies missing migrations under an advisory lock, so several nodes
    /// starting at once migrate exactly once.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.connection().await?;
        let tx = self.timed("postgresql migrate", c.transaction()).await?;
        self.timed(
            "postgresql migrate",
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]),
        )
        .await?;
        self.timed(
            "postgresql migrate",
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS gyre_protect_migrations (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now())",
            ),
        )
        .await?;
        for (version, sql) in MIGRATIONS {
            let done = self
                .timed(
                    "postgresql migrate",
                    tx.query_opt(
                        "SELECT 1 FROM gyre_protect_migrations WHERE version = $1",
                        &[version],
                    ),
                )
                .await?
                .is_some();
            if !done {
                self.timed("postgresql migrate", tx.batch_execute(sql))
                    .await?;
                self.timed(
                    "postgresql migrate",
                    tx.execute(
                        "INSERT INTO gyre_protect_migrations (version) VALUES ($1)",
                        &[version],
                    ),
                )
                .await?;
                tracing::info!(version, "protective storage schema migrated");
            }
        }
        self.timed("postgresql migrate", tx.commit()).await
    }

    pub(super) async fn write(
        &self,
        kind: Kind,
        change: &Change,
        node: &str,
    ) -> Result<(), StoreError> {
        let now = crate::auth::now();
        let at = change.at_ms;
        let mut c = self.client().await?;
        let tx = self.timed("postgresql write", c.transaction()).await?;
        let write = async {
            let changed = match &change.op {
                Op::Block {
                    user,
                    expire_at,
                    reason,
                } => {
                    // A block replaces the entry unless a newer change (or
                    // removal) made it; a repeat without a reason keeps the
                    // earlier one.
                    tx.execute(
                        "INSERT INTO gyre_user_block AS t (user_id, expire_at, created_ms, reason)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (user_id) DO UPDATE SET
                           expire_at = EXCLUDED.expire_at, created_ms = EXCLUDED.created_ms,
                           reason = CASE WHEN t.removed THEN EXCLUDED.reason
                                         ELSE COALESCE(EXCLUDED.reason, t.reason) END,
                           removed = false
                         WHERE t.created_ms <= EXCLUDED.created_ms",
                        &[user, expire_at, &at, reason],
                    )
                    .await
                }
                Op::Revoke {
                    uid,
                    expire_at,
                    reason,
                } => {
                    // The later expiry wins (0 = never); after a removal the
                    // entry starts afresh, unless the removal is newer.
                    tx.execute(
                        "INSERT INTO gyre_token_revoke AS t (uid, expire_at, created_ms, reason)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (uid) DO UPDATE SET
                           expire_at = CASE WHEN t.removed THEN EXCLUDED.expire_at
                                            WHEN t.expire_at = 0 OR EXCLUDED.expire_at = 0 THEN 0
                                            ELSE GREATEST(t.expire_at, EXCLUDED.expire_at) END,
                           created_ms = CASE WHEN t.removed THEN EXCLUDED.created_ms
                                             ELSE GREATEST(t.created_ms, EXCLUDED.created_ms) END,
                           reason = CASE WHEN t.removed THEN EXCLUDED.reason
                                         ELSE COALESCE(EXCLUDED.reason, t.reason) END,
                           removed = false
                         WHERE NOT (t.removed AND t.created_ms > EXCLUDED.created_ms)",
                        &[uid, expire_at, &at, reason],
                    )
                    .await
                }
                Op::Invalidate {
                    user,
                    channel,
                    issued_before,
                    expire_at,
                    reason,
                } => {
                    // A live invalidation only moves forward; an expired or
                    // removed one is replaced (unless the removal is newer).
                    tx.execute(
                        "INSERT INTO gyre_user_tokens_invalidate AS t
                           (user_id, channel, issued_before, expire_at, created_ms, reason)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (user_id, channel) DO UPDATE SET
                           issued_before = CASE WHEN NOT t.removed AND (t.expire_at = 0 OR t.expire_at > $7)
                                THEN GREATEST(t.issued_before, EXCLUDED.issued_before)
                                ELSE EXCLUDED.issued_before END,
                           expire_at = CASE
                                WHEN t.removed OR NOT (t.expire_at = 0 OR t.expire_at > $7)
                                THEN EXCLUDED.expire_at
                                WHEN t.expire_at = 0 OR EXCLUDED.expire_at = 0 THEN 0
                                ELSE GREATEST(t.expire_at, EXCLUDED.expire_at) END,
                           created_ms = CASE WHEN t.removed THEN EXCLUDED.created_ms
                                             ELSE GREATEST(t.created_ms, EXCLUDED.created_ms) END,
                           reason = CASE WHEN t.removed THEN EXCLUDED.reason
                                         ELSE COALESCE(EXCLUDED.reason, t.reason) END,
                           removed = false
                         WHERE NOT (t.removed AND t.created_ms > EXCLUDED.created_ms)",
                        &[
                            user,
                            &channel.clone().unwrap_or_default(),
                            issued_before,
                            expire_at,
                            &at,
                            reason,
                            &now,
                        ],
                    )
                    .await
                }
                // A removal leaves a marker for an hour (see the schema).
                Op::Unblock { user } => {
                    tx.execute(
                        "INSERT INTO gyre_user_block AS t (user_id, expire_at, created_ms, removed)
                         VALUES ($1, $3, $2, true)
                         ON CONFLICT (user_id) DO UPDATE SET removed = true, reason = NULL,
                           created_ms = EXCLUDED.created_ms, expire_at = EXCLUDED.expire_at
                         WHERE t.created_ms <= EXCLUDED.created_ms",
                        &[user, &at, &(now + 3600)],
                    )
                    .await
                }
                Op::Unrevoke { uid } => {
                    tx.execute(
                        "INSERT INTO gyre_token_revoke AS t (uid, expire_at, created_ms, removed)
                         VALUES ($1, $3, $2, true)
                         ON CONFLICT (uid) DO UPDATE SET removed = true, reason = NULL,
                           created_ms = EXCLUDED.created_ms, expire_at = EXCLUDED.expire_at
                         WHERE t.created_ms <= EXCLUDED.created_ms",
                        &[uid, &at, &(now + 3600)],
                    )
                    .await
                }
                Op::ClearInvalidation { user, channel } => {
                    tx.execute(
                        "INSERT INTO gyre_user_tokens_invalidate AS t
                           (user_id, channel, issued_before, expire_at, created_ms, removed)
                         VALUES ($1, $2, 0, $4, $3, true)
                         ON CONFLICT (user_id, channel) DO UPDATE SET removed = true, reason = NULL,
                           created_ms = EXCLUDED.created_ms, expire_at = EXCLUDED.expire_at
                         WHERE t.created_ms <= EXCLUDED.created_ms",
                        &[
                            user,
                            &channel.clone().unwrap_or_default(),
                            &at,
                            &(now + 3600),
                        ],
                    )
                    .await
                }
            }?;
            if changed == 0 {
                return Ok(()); // stale: nothing to bump or announce
            }
            let version: i64 = tx
                .query_one(
                    "UPDATE gyre_protect_version SET version = version + 1 WHERE feature = $1
                     RETURNING version",
                    &[&kind.feature()],
                )
                .await?
                .get(0);
            let notice = serde_json::to_string(&Notice {
                node: node.to_string(),
                change: change.clone(),
                version,
            })
            .unwrap_or_default();
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &notice])
                .await
                .map(|_| ())
        };
        self.timed("postgresql write", write).await?;
        self.timed("postgresql write", tx.commit()).await
    }

    /// Calls `each` with every live record as rows arrive (a streamed
    /// query), so a large table never sits in memory twice.
    pub(super) async fn load_each(
        &self,
        kind: Kind,
        now: i64,
        each: &mut (dyn FnMut(Record) + Send),
    ) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let c = self.client().await?;
        let sql = match kind {
            Kind::Invalidate => {
                "SELECT user_id, channel, issued_before, expire_at, created_ms, reason
                 FROM gyre_user_tokens_invalidate
                 WHERE NOT removed AND (expire_at = 0 OR expire_at > $1)"
            }
            Kind::Block => {
                "SELECT user_id, '' AS channel, 0::bigint, expire_at, created_ms, reason
                 FROM gyre_user_block WHERE NOT removed AND (expire_at = 0 OR expire_at > $1)"
            }
            Kind::Revoke => {
                "SELECT uid, '' AS channel, 0::bigint, expire_at, created_ms, reason
                 FROM gyre_token_revoke WHERE NOT removed AND (expire_at = 0 OR expire_at > $1)"
            }
        };
        let read = async {
            let rows = c.query_raw(sql, [&now]).await?;
            futures_util::pin_mut!(rows);
            while let Some(row) = rows.next().await {
                let row = row?;
                let key: String = row.get(0);
                let channel: &str = row.get(1);
                each(Record {
                    key: if channel.is_empty() {
                        key
                    } else {
                        crate::protect::change::channel_key(&key, channel)
                    },
                    issued_before: (kind == Kind::Invalidate).then(|| row.get(2)),
                    expire_at: row.get(3),
                    created_ms: row.get(4),
                    reason: row.get(5),
                    removed: false,
                });
            }
            Ok::<(), tokio_postgres::Error>(())
        };
        // A large table takes longer than one write: allow ten timeouts.
        tokio::time::timeout(self.timeout * 10, read)
            .await
            .map_err(|_| unavailable("postgresql load", "timed out"))?
            .map_err(|e| unavailable("postgresql load", e))
    }

    pub(super) async fn version(&self, kind: Kind) -> Result<i64, StoreError> {
        let c = self.client().await?;
        let row = self
            .timed(
                "postgresql version",
                c.query_opt(
                    "SELECT version FROM gyre_protect_version WHERE feature = $1",
                    &[&kind.feature()],
                ),
            )
            .await?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    pub(super) async fn purge_expired(&self, kind: Kind, now: i64) -> Result<u64, StoreError> {
        let c = self.client().await?;
        let sql = format!(
            "DELETE FROM {} WHERE expire_at > 0 AND expire_at <= $1",
            table(kind)
        );
        self.timed("postgresql purge", c.execute(&sql, &[&now]))
            .await
    }

    /// `LISTEN gyre_protect` on a dedicated connection until `stop`,
    /// reconnecting after a failure (1 s apart); reports every
    /// (re)connection so the node reloads what it may have missed.
    pub async fn listen(&self, tx: mpsc::Sender<Heard>, stop: tokio_util::sync::CancellationToken) {
        loop {
            let session = async {
                let (client, mut conn) =
                    tokio::time::timeout(self.timeout, self.config.connect(NoTls))
                        .await
                        .map_err(|_| unavailable("postgresql listen", "connect timed out"))?
                        .map_err(|e| unavailable("postgresql listen", e))?;
                let (msgs_tx, mut msgs) = mpsc::unbounded_channel();
                // The connection yields notifications only while it is polled.
                let driver = tokio::spawn(async move {
                    while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        if msgs_tx.send(m).is_err() {
                            break;
                        }
                    }
                });
                let _stop_driver = AbortOnDrop(driver);
                client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .map_err(|e| unavailable("postgresql listen", e))?;
                if tx.send(Heard::Connected).await.is_err() {
                    return Ok(());
                }
                while let Some(m) = msgs.recv().await {
                    match m {
                        Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                            match serde_json::from_str::<Notice>(n.payload()) {
                                Ok(notice) => {
                                    if tx.send(Heard::Change(notice)).await.is_err() {
                                        return Ok(());
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "unreadable protective change")
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => return Err(unavailable("postgresql listen", e)),
                    }
                }
                Err(unavailable("postgresql listen", "connection closed"))
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                r = session => match r {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(error = %e, "protective change listener lost PostgreSQL; retrying"),
                },
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// Aborts a spawned helper task when its owner ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
