//! `POST /emulation`: the commands of an emulated connection (`sse`,
//! `http_stream`), as centrifuge-js posts them. The body is an
//! `EmulationRequest {node, session, data}`: JSON (`data` is the command
//! frame as a JSON string) or protobuf with
//! `Content-Type: application/octet-stream`. Answers 204 once the commands
//! reached the connection (replies go out on its stream); 400 for a body
//! that cannot be read, 404 for a node not in the cluster, 500 when the
//! session is gone or its node does not answer (Centrifugo's statuses).

use super::stream::{accept, with_cors};
use crate::node::{EmulationError, Node};
use crate::pb::client as pb;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prost::Message;
use std::sync::Arc;

/// The JSON form of an emulation request.
#[derive(serde::Deserialize)]
struct JsonRequest {
    #[serde(default)]
    node: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    data: Option<Box<serde_json::value::RawValue>>,
}

/// Decodes a request body (protobuf when `protobuf`).
pub(crate) fn decode(body: &[u8], protobuf: bool) -> Option<pb::EmulationRequest> {
    if protobuf {
        return pb::EmulationRequest::decode(body).ok();
    }
    let r: JsonRequest = serde_json::from_slice(body).ok()?;
    Some(pb::EmulationRequest {
        node: r.node,
        session: r.session,
        data: r
            .data
            .map(|d| bytes::Bytes::copy_from_slice(d.get().as_bytes()))
            .unwrap_or_default(),
    })
}

pub(crate) async fn handler(State(node): State<Arc<Node>>, req: Request) -> Response {
    let limit = match node.cfg().emulation.max_request_body_size {
        0 => 65536,
        n => n,
    };
    let i = match accept(&node, req, limit, false).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let status = match decode(&i.data, i.protobuf) {
        None => StatusCode::BAD_REQUEST,
        Some(er) => match node.emulate(er).await {
            Ok(()) => StatusCode::NO_CONTENT,
            Err(EmulationError::BadRequest) => StatusCode::BAD_REQUEST,
            Err(EmulationError::NodeNotFound) => StatusCode::NOT_FOUND,
            Err(EmulationError::Failed) => StatusCode::INTERNAL_SERVER_ERROR,
        },
    };
    with_cors(status.into_response(), i.origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any body, either form: a request or `None` (400), never a panic.
        #[test]
        fn any_body_decodes_or_fails_cleanly(
            b in proptest::collection::vec(any::<u8>(), 0..200),
            protobuf in any::<bool>(),
        ) {
            let _ = decode(&b, protobuf);
        }

        /// JSON bodies with any strings round-trip their fields.
        #[test]
        fn json_fields_are_kept(node in ".{0,20}", session in ".{0,20}", data in ".{0,40}") {
            let body = serde_json::json!({"node": node, "session": session, "data": data}).to_string();
            let r = decode(body.as_bytes(), false).unwrap();
            prop_assert_eq!(r.node, node);
            prop_assert_eq!(r.session, session);
            prop_assert_eq!(serde_json::from_slice::<String>(&r.data).unwrap(), data);
        }
    }

    #[test]
    fn both_body_forms_decode() {
        let j = decode(br#"{"node":"n","session":"s","data":"{\"id\":2}"}"#, false).unwrap();
        assert_eq!((j.node.as_str(), j.session.as_str()), ("n", "s"));
        assert_eq!(&j.data[..], br#""{\"id\":2}""#);
        let p = pb::EmulationRequest {
            node: "n".into(),
            session: "s".into(),
            data: bytes::Bytes::from_static(b"\x02\x08\x01"),
        };
        assert_eq!(decode(&p.encode_to_vec(), true).unwrap(), p);
        assert!(decode(b"nope", false).is_none());
        assert!(decode(b"\xff\xff", true).is_none());
    }
}
