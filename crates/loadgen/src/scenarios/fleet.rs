//! A fleet of held connections, one task each: open (dial, connect,
//! subscribe) with bounded concurrency, then answer pings until stopped or
//! closed by the server. Used by `idle` (workers) and `block`.

use crate::client::{self, Dialer, End, Failures};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// One connection to open.
pub(crate) struct Member {
    /// Global index (chooses the source address).
    pub(crate) index: u64,
    /// Connection token.
    pub(crate) token: String,
    /// Channel to subscribe to after connecting.
    pub(crate) channel: Option<String>,
    /// Group for per-group counters (e.g. 0 = bystanders, 1 = blocked user).
    pub(crate) group: usize,
}

/// How one member ended.
pub(crate) struct Outcome {
    /// The member's group.
    pub(crate) group: usize,
    /// `None` when the connection could not be opened.
    pub(crate) end: Option<End>,
}

/// Counters shared by the fleet's tasks.
pub(crate) struct Shared {
    /// Connections opened, per group.
    pub(crate) opened: Vec<AtomicU64>,
    /// Connections that ended before being stopped (server close or error), per group.
    pub(crate) ended: Vec<AtomicU64>,
    /// Connections that failed to open.
    pub(crate) failed: AtomicU64,
    /// Failure kinds.
    pub(crate) failures: Failures,
    /// Server pings answered.
    pub(crate) pings: AtomicU64,
}

impl Shared {
    /// Opened connections over all groups.
    pub(crate) fn opened_total(&self) -> u64 {
        self.opened.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    /// Connections of `group` that ended before being stopped.
    pub(crate) fn ended(&self, group: usize) -> u64 {
        self.ended[group].load(Ordering::Relaxed)
    }

    /// Opened connections of `group`.
    pub(crate) fn opened(&self, group: usize) -> u64 {
        self.opened[group].load(Ordering::Relaxed)
    }
}

/// Running connection tasks.
pub(crate) struct Fleet {
    /// Shared counters.
    pub(crate) shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Outcome>>,
}

impl Fleet {
    /// Spawns one task per member; at most `concurrency` are opening at a time.
    pub(crate) fn launch(
        dialer: Arc<Dialer>,
        concurrency: usize,
        members: Vec<Member>,
        groups: usize,
    ) -> Fleet {
        let shared = Arc::new(Shared {
            opened: (0..groups).map(|_| AtomicU64::new(0)).collect(),
            ended: (0..groups).map(|_| AtomicU64::new(0)).collect(),
            failed: AtomicU64::new(0),
            failures: Failures::default(),
            pings: AtomicU64::new(0),
        });
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(concurrency));
        let tasks = members
            .into_iter()
            .map(|m| {
                tokio::spawn(member(
                    dialer.clone(),
                    gate.clone(),
                    shared.clone(),
                    stop_rx.clone(),
                    m,
                ))
            })
            .collect();
        Fleet {
            shared,
            stop,
            tasks,
        }
    }

    /// Members launched.
    pub(crate) fn len(&self) -> u64 {
        self.tasks.len() as u64
    }

    /// Waits until every member is either open or failed (polling; bounded by `limit`).
    pub(crate) async fn wait_open(&self, limit: Duration) -> bool {
        let n = self.len();
        let settled =
            || self.shared.opened_total() + self.shared.failed.load(Ordering::Relaxed) >= n;
        poll_until(limit, settled).await
    }

    /// Waits until `count` connections of `group` have ended (bounded by `limit`).
    pub(crate) async fn wait_ended(&self, group: usize, count: u64, limit: Duration) -> bool {
        poll_until(limit, || self.shared.ended(group) >= count).await
    }

    /// Stops every connection (close frame, then the socket is dropped) and
    /// collects the outcomes.
    pub(crate) async fn stop(self) -> Vec<Outcome> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            if let Ok(o) = t.await {
                out.push(o);
            }
        }
        out
    }
}

/// Polls `done` every 2 ms until it holds or `limit` passes; returns whether it held.
pub(crate) async fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One member's task: open under the concurrency gate, then hold.
async fn member(
    dialer: Arc<Dialer>,
    gate: Arc<Semaphore>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    m: Member,
) -> Outcome {
    let Member {
        index,
        token,
        channel,
        group,
    } = m;
    let opened = {
        let _permit = gate.acquire().await;
        async {
            let mut ws = dialer.dial(index).await?;
            client::connect_and_subscribe_as(
                &mut ws,
                dialer.proto(index),
                &token,
                channel.as_deref(),
            )
            .await?;
            anyhow::Ok(ws)
        }
        .await
    };
    drop((token, channel));
    let mut ws = match opened {
        Ok(ws) => ws,
        Err(e) => {
            shared.failures.add(&e);
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return Outcome { group, end: None };
        }
    };
    shared.opened[group].fetch_add(1, Ordering::Relaxed);
    let end = client::hold(&mut ws, &mut stop, &shared.pings).await;
    if !matches!(end, End::Stopped) {
        shared.ended[group].fetch_add(1, Ordering::Relaxed);
    }
    Outcome {
        group,
        end: Some(end),
    }
}
