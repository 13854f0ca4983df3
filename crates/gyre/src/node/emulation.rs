//! Bidirectional emulation (`sse`, `http_stream`): the session registry
//! and the `/emulation` entry point. A browser posts its commands as an
//! `EmulationRequest {node, session, data}`; the node that holds the
//! session feeds `data` to that connection. In a cluster the request may
//! land on another node: it is forwarded as Centrifugo does, a targeted
//! survey `centrifuge_emulation` to the node named in the request
//! (redis-cluster.md §4.3).

use super::Node;
use crate::pb::client as pb;
use crate::protocol::ProtocolKind;
use bytes::Bytes;
use parking_lot::Mutex;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;

/// The survey op that carries an emulation request to its node.
pub(crate) const OP_EMULATION: &str = "centrifuge_emulation";
/// Survey answer codes of `centrifuge_emulation` (centrifuge's).
const CODE_BAD_REQUEST: u32 = 1;
const CODE_NO_SESSION: u32 = 2;

/// Emulated sessions of this node: session id → the connection's command
/// queue and encoding.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, (mpsc::Sender<Bytes>, ProtocolKind)>>,
}

/// Removes a session from the registry when its connection ends.
pub struct EmulationRegistration {
    node: Weak<Node>,
    session: String,
}

impl Drop for EmulationRegistration {
    fn drop(&mut self) {
        if let Some(n) = self.node.upgrade() {
            n.emulation.map.lock().remove(&self.session);
        }
    }
}

/// Why an emulation request was not delivered (the HTTP status).
#[derive(Debug, PartialEq, Eq)]
pub enum EmulationError {
    /// Undecodable request or data: 400.
    BadRequest,
    /// The node named is not in the cluster: 404.
    NodeNotFound,
    /// No such session, or the other node did not answer: 500 (as Centrifugo).
    Failed,
}

impl Node {
    /// Registers an emulated session.
    pub(crate) fn register_emulation(
        self: &Arc<Self>,
        session: &str,
        tx: mpsc::Sender<Bytes>,
        proto: ProtocolKind,
    ) -> EmulationRegistration {
        self.emulation
            .map
            .lock()
            .insert(session.to_string(), (tx, proto));
        EmulationRegistration {
            node: Arc::downgrade(self),
            session: session.to_string(),
        }
    }

    /// Feeds a request's data to a local session: `Err(code)` with the
    /// survey code when it cannot be.
    fn deliver_emulation(&self, req: &pb::EmulationRequest) -> Result<(), u32> {
        let Some((tx, proto)) = self.emulation.map.lock().get(&req.session).cloned() else {
            return Err(CODE_NO_SESSION);
        };
        // JSON connections send their command frame as a JSON string.
        let data = if proto == ProtocolKind::Protobuf {
            req.data.clone()
        } else {
            match serde_json::from_slice::<String>(&req.data) {
                Ok(s) => Bytes::from(s),
                Err(_) => return Err(CODE_BAD_REQUEST),
            }
        };
        // A full queue means the connection is not keeping up: refused
        // like a session that is gone (500), on this node or another.
        tx.try_send(data).map_err(|_| CODE_NO_SESSION)
    }

    /// Handles one `/emulation` request.
    pub async fn emulate(&self, req: pb::EmulationRequest) -> Result<(), EmulationError> {
        if req.node.is_empty() || req.node == self.id {
            return self.deliver_emulation(&req).map_err(|c| match c {
                CODE_BAD_REQUEST => EmulationError::BadRequest,
                _ => EmulationError::Failed,
            });
        }
        if !self.knows_node(&req.node) {
            return Err(EmulationError::NodeNotFound);
        }
        match self
            .survey_node(
                &req.node,
                OP_EMULATION,
                req.encode_to_vec(),
                crate::cluster::control::SURVEY_TIMEOUT,
            )
            .await
        {
            Ok(0) => Ok(()),
            _ => Err(EmulationError::Failed),
        }
    }

    /// Another node's `centrifuge_emulation` survey: (code, data).
    pub(super) fn answer_emulation(&self, data: &[u8]) -> (u32, Vec<u8>) {
        match pb::EmulationRequest::decode(data) {
            Ok(req) => match self.deliver_emulation(&req) {
                Ok(()) => (0, Vec::new()),
                Err(code) => (code, Vec::new()),
            },
            Err(_) => (CODE_BAD_REQUEST, Vec::new()),
        }
    }
}
