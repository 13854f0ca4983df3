//! Owned tasks and staged shutdown (architecture.md §2.4 g, the shape of
//! linkerd2-proxy's drain): connection tasks and background loops are
//! tracked separately, every background loop is spawned with a name that
//! its logs carry, and shutdown stops them in order: clients first (3001),
//! then the background work that clients' last clean-up may still need,
//! all within `shutdown.timeout`.

use super::Node;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Cancellation signals and task sets of a node.
pub(crate) struct Lifecycle {
    /// Cancelled first: listeners stop accepting, clients are closed with 3001.
    clients: CancellationToken,
    /// Connection tasks (WebSocket sessions).
    connections: TaskTracker,
    /// Cancelled once clients are gone: maintenance, and later the store
    /// and cluster loops.
    background: CancellationToken,
    /// Background loops.
    tasks: TaskTracker,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            clients: CancellationToken::new(),
            connections: TaskTracker::new(),
            background: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Cancelled when the node starts shutting down (clients must go).
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.clients
    }

    /// True once shutdown began.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.clients.is_cancelled()
    }

    /// The tracker of connection tasks.
    pub(crate) fn connections(&self) -> &TaskTracker {
        &self.connections
    }

    /// Runs `fut` as a named background task, stopped by the background
    /// token. `fut` gets that token and should return once it is cancelled.
    pub(crate) fn spawn_background<F, Fut>(&self, name: &'static str, f: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let span = tracing::info_span!("task", name);
        let fut = f(self.background.clone());
        self.tasks.spawn(
            async move {
                tracing::debug!("started");
                fut.await;
                tracing::debug!("stopped");
            }
            .instrument(span),
        );
    }

    /// Stops the background loops (a start that failed half-way).
    pub(crate) async fn stop_background(&self) {
        self.clients.cancel();
        self.background.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.tasks.wait()).await;
    }

    /// Stops everything in order within `timeout`: clients (3001) and their
    /// tasks, then `then_wait` (e.g. in-flight HTTP requests), then
    /// background loops. Returns false if the timeout cut it short.
    pub(crate) async fn shutdown_in_order(
        &self,
        timeout: Duration,
        then_wait: impl Future<Output = ()>,
    ) -> bool {
        self.clients.cancel();
        self.connections.close();
        self.tasks.close();
        let staged = async {
            self.connections.wait().await;
            then_wait.await;
            self.background.cancel();
            self.tasks.wait().await;
        };
        let done = tokio::time::timeout(timeout, staged).await.is_ok();
        // Whatever happened, nothing keeps running after this.
        self.background.cancel();
        done
    }
}

impl Node {
    /// Starts the node's background upkeep: the history sweep and the
    /// expiry sweep of the protective sets, every 5 s.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let node = self.clone();
        self.lifecycle
            .spawn_background("maintenance", |stop| async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {
                            node.broker.sweep();
                            let n = node.protect.sweep(crate::auth::now());
                            if n > 0 {
                                tracing::debug!(dropped = n, "expired protective entries dropped");
                            }
                        }
                    }
                }
            });
    }
}
