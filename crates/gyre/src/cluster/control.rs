//! Control messages between nodes (redis-cluster.md §4): the registry of
//! live nodes fed by heartbeats, and surveys (ask every node, collect the
//! answers). Encoding is the protobuf `Command` of `proto/control.proto`,
//! published bare on `<prefix>.control` or `<prefix>.node.<uid>`.

use super::pb::control as pb;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often a node announces itself (Centrifugo: 3 s, §4.2).
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// A node not heard from for longer than this is gone (Centrifugo: 7 s).
pub(crate) const NODE_TIMEOUT: Duration = Duration::from_secs(7);
/// How long a survey waits for answers (Centrifugo: 10 s without a deadline).
pub(crate) const SURVEY_TIMEOUT: Duration = Duration::from_secs(10);

/// Survey ops. `channels` is Centrifugo's; the `gyre.` ones are Gyre's own
/// (a Centrifugo node answers them with code 3, unknown op).
pub(crate) const OP_CHANNELS: &str = "channels";
/// A user's connections (the `connections` API), JSON.
pub(crate) const OP_CONNECTIONS: &str = "gyre.connections";
/// Every protective entry and recent removal a node holds, JSON.
pub(crate) const OP_PROTECT_SNAPSHOT: &str = "gyre.protect_snapshot";
/// Notification op carrying one protective change, JSON.
pub(crate) const NOTIFY_PROTECT: &str = "gyre.protect";

/// Survey answer codes (Centrifugo's survey handler).
pub(crate) const CODE_INTERNAL: u32 = 1;
pub(crate) const CODE_BAD_REQUEST: u32 = 2;
pub(crate) const CODE_UNKNOWN_OP: u32 = 3;

/// Live nodes other than this one, by uid.
#[derive(Default)]
pub(crate) struct Registry {
    nodes: Mutex<HashMap<String, (pb::Node, Instant)>>,
}

impl Registry {
    /// Records a heartbeat; true when the node was not known (then the
    /// caller answers with its own heartbeat at once, as Centrifugo does).
    pub(crate) fn heard(&self, n: pb::Node) -> bool {
        let uid = n.uid.clone();
        self.nodes
            .lock()
            .insert(uid, (n, Instant::now()))
            .is_none_or(|(_, at)| at.elapsed() > NODE_TIMEOUT)
    }

    /// A node said it shuts down.
    pub(crate) fn remove(&self, uid: &str) {
        self.nodes.lock().remove(uid);
    }

    /// Nodes heard from within the timeout (stale ones are dropped).
    pub(crate) fn live(&self) -> Vec<pb::Node> {
        let mut m = self.nodes.lock();
        m.retain(|_, (_, at)| at.elapsed() <= NODE_TIMEOUT);
        let mut v: Vec<pb::Node> = m.values().map(|(n, _)| n.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.uid.cmp(&b.uid)));
        v
    }
}

struct Pending {
    want: usize,
    got: Vec<(String, pb::SurveyResponse)>,
    done: Option<oneshot::Sender<()>>,
}

/// Surveys in flight.
#[derive(Default)]
pub(crate) struct Surveys {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
}

/// Collects one survey's answers; dropping it forgets the survey.
pub(crate) struct Survey<'a> {
    surveys: &'a Surveys,
    pub(crate) id: u64,
    rx: Option<oneshot::Receiver<()>>,
}

impl Surveys {
    /// Starts a survey expecting `want` answers.
    pub(crate) fn start(&self, want: usize) -> Survey<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        let done = if want == 0 {
            let _ = tx.send(());
            None
        } else {
            Some(tx)
        };
        self.pending.lock().insert(
            id,
            Pending {
                want,
                got: Vec::new(),
                done,
            },
        );
        Survey {
            surveys: self,
            id,
            rx: Some(rx),
        }
    }

    /// An answer arrived from `uid`.
    pub(crate) fn answer(&self, uid: String, r: pb::SurveyResponse) {
        let mut m = self.pending.lock();
        if let Some(p) = m.get_mut(&r.id) {
            if p.got.iter().any(|(u, _)| *u == uid) {
                return;
            }
            p.got.push((uid, r));
            if p.got.len() >= p.want
                && let Some(tx) = p.done.take()
            {
                let _ = tx.send(());
            }
        }
    }
}

impl Survey<'_> {
    /// Waits for every answer or `timeout`; returns the answers and
    /// whether all arrived.
    pub(crate) async fn wait(
        mut self,
        timeout: Duration,
    ) -> (Vec<(String, pb::SurveyResponse)>, bool) {
        let rx = self.rx.take().expect("waited once");
        let complete = matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())));
        let got = self
            .surveys
            .pending
            .lock()
            .remove(&self.id)
            .map(|p| p.got)
            .unwrap_or_default();
        (got, complete)
    }
}

impl Drop for Survey<'_> {
    fn drop(&mut self) {
        self.surveys.pending.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn survey_completes_with_every_answer_and_ignores_repeats() {
        let s = Surveys::default();
        let sv = s.start(2);
        let id = sv.id;
        let r = |code| pb::SurveyResponse {
            id,
            code,
            data: Default::default(),
        };
        s.answer("a".into(), r(0));
        s.answer("a".into(), r(1));
        s.answer("b".into(), r(0));
        let (got, complete) = sv.wait(Duration::from_secs(1)).await;
        assert!(complete);
        assert_eq!(got.len(), 2);
        assert!(s.pending.lock().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn survey_times_out_with_partial_answers() {
        let s = Surveys::default();
        let sv = s.start(3);
        s.answer(
            "a".into(),
            pb::SurveyResponse {
                id: sv.id,
                ..Default::default()
            },
        );
        let (got, complete) = sv.wait(Duration::from_secs(10)).await;
        assert!(!complete);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn registry_reports_new_nodes_once() {
        let r = Registry::default();
        let n = pb::Node {
            uid: "x".into(),
            name: "n".into(),
            ..Default::default()
        };
        assert!(r.heard(n.clone()));
        assert!(!r.heard(n));
        assert_eq!(r.live().len(), 1);
        r.remove("x");
        assert_eq!(r.live().len(), 0);
    }
}
