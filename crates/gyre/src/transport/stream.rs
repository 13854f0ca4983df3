//! Transports that stream an HTTP response to the client (protocol.md
//! §1.1): the bidirectional emulation of centrifuge-js (`http_stream`,
//! `sse`; the client's later commands arrive through `/emulation`) and the
//! unidirectional `uni_http_stream` and `uni_sse`. The first request
//! carries the connect command; the response stays open and carries
//! replies and pushes:
//!
//! * `sse`, `uni_sse`: `text/event-stream`, one `data: <json>` event per
//!   message (after an initial `\r\n`, as centrifuge writes);
//! * `http_stream` JSON, `uni_http_stream`: one JSON object per line;
//! * `http_stream` protobuf (`Content-Type: application/octet-stream`):
//!   varint-length-delimited messages.
//!
//! There is no close frame: a server disconnect is a `disconnect` push,
//! then the end of the response. The connection task is the same as for
//! WebSocket (`conn.rs`); the response body is fed through a small channel.

use super::{Inbound, Transport};
use crate::client::Session;
use crate::codes::Disconnect;
use crate::node::Node;
use crate::node::handle::TransportKind;
use crate::protocol::ProtocolKind;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one write may wait for the client to read (centrifuge: 1 s).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Commands waiting for an emulated connection's task.
const INBOUND_QUEUE: usize = 64;

/// How messages are laid out in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `data: <json>\n\n` events.
    Sse,
    /// JSON lines.
    Lines,
    /// Length-delimited protobuf, concatenated.
    Protobuf,
}

/// Which transport a stream is (one type per kind, so `Transport::KIND` is
/// a constant).
pub(crate) trait StreamKind: Send + 'static {
    const KIND: TransportKind;
}

macro_rules! stream_kind {
    ($name:ident, $kind:expr) => {
        pub(crate) struct $name;
        impl StreamKind for $name {
            const KIND: TransportKind = $kind;
        }
    };
}
stream_kind!(HttpStream, TransportKind::HttpStream);
stream_kind!(Sse, TransportKind::Sse);
stream_kind!(UniHttpStream, TransportKind::UniHttpStream);
stream_kind!(UniSse, TransportKind::UniSse);

/// The response body: chunks from the connection task.
pub(crate) struct ChunkBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|c| c.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// One streaming connection as the connection task sees it.
pub(crate) struct StreamTransport<K: StreamKind> {
    tx: mpsc::Sender<Bytes>,
    /// The connect frame, handed to the session first.
    first: Option<Bytes>,
    /// Commands posted to `/emulation` (bidirectional emulation only).
    inbound: Option<mpsc::Receiver<Bytes>>,
    framing: Framing,
    proto: ProtocolKind,
    /// Unregisters the emulated session when the connection ends.
    _registration: Option<crate::node::EmulationRegistration>,
    _kind: PhantomData<K>,
}

impl<K: StreamKind> StreamTransport<K> {
    fn frame(&self, frames: &[Bytes]) -> Bytes {
        let mut buf = BytesMut::with_capacity(frames.iter().map(|f| f.len() + 8).sum());
        for f in frames.iter().filter(|f| !f.is_empty()) {
            match self.framing {
                Framing::Sse => {
                    buf.extend_from_slice(b"data: ");
                    buf.extend_from_slice(f);
                    buf.extend_from_slice(b"\n\n");
                }
                Framing::Lines => {
                    buf.extend_from_slice(f);
                    buf.extend_from_slice(b"\n");
                }
                Framing::Protobuf => buf.extend_from_slice(f),
            }
        }
        buf.freeze()
    }
}

/// Hands a chunk to the response body, waiting at most [`WRITE_TIMEOUT`].
async fn write(tx: &mpsc::Sender<Bytes>, chunk: Bytes) -> Result<(), ()> {
    if chunk.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(WRITE_TIMEOUT, tx.send(chunk)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

impl<K: StreamKind> Transport for StreamTransport<K> {
    const KIND: TransportKind = K::KIND;

    async fn recv(&mut self) -> Inbound {
        if let Some(f) = self.first.take() {
            return Inbound::Frame(f);
        }
        match &mut self.inbound {
            Some(rx) => tokio::select! {
                _ = self.tx.closed() => Inbound::Closed,
                f = rx.recv() => match f {
                    Some(b) => Inbound::Frame(b),
                    None => Inbound::Closed,
                },
            },
            None => {
                // Unidirectional: nothing comes in; notice the client leaving.
                self.tx.closed().await;
                Inbound::Closed
            }
        }
    }

    async fn send(&mut self, frames: &mut Vec<Bytes>) -> Result<(), ()> {
        if frames.is_empty() {
            return Ok(());
        }
        let chunk = self.frame(frames);
        frames.clear();
        write(&self.tx, chunk).await
    }

    async fn close(&mut self, d: &Disconnect) {
        let push = self.proto.disconnect_push(d.code, &d.reason);
        let chunk = self.frame(&[push]);
        let _ = write(&self.tx, chunk).await;
    }

    async fn ack_close(&mut self) {}
}

/// The headers of a streaming response (centrifuge's: no caching, no proxy
/// buffering).
fn stream_response(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::new(ChunkBody(rx)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("X-Accel-Buffering", HeaderValue::from_static("no"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Expire", HeaderValue::from_static("0"));
    r
}

/// Centrifugo's CORS rule for the HTTP transports: a request without an
/// `Origin` gets no CORS headers; an `Origin` that `client.allowed_origins`
/// allows is echoed back (with credentials, as browsers send cookies); any
/// other is refused with 403, as the WebSocket upgrade is.
pub(crate) fn cors(node: &Node, headers: &HeaderMap) -> Result<Option<HeaderValue>, StatusCode> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    let allowed = origin
        .to_str()
        .ok()
        .is_some_and(|o| super::ws::origin_allowed(&node.cfg().client.allowed_origins, Some(o)));
    if allowed {
        Ok(Some(origin.clone()))
    } else {
        Err(StatusCode::FORBIDDEN)
    }
}

/// Adds the CORS headers of an allowed origin to a response.
pub(crate) fn with_cors(mut r: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(o) = origin {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    r
}

/// A browser's CORS preflight (centrifuge answers them on these endpoints).
pub(crate) fn preflight(node: &Node, headers: &HeaderMap) -> Response {
    let origin = match cors(node, headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert("Access-Control-Max-Age", HeaderValue::from_static("300"));
    r.headers_mut().insert(
        "Access-Control-Allow-Methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Some(h) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        r.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
    }
    with_cors(r, origin)
}

/// Reads a request body of at most `limit` bytes within
/// `http_server.read_timeout`: 413 when larger, 408 when it does not
/// arrive in time (a stalled body must not hold the request open).
pub(crate) async fn read_body(node: &Node, body: Body, limit: usize) -> Result<Bytes, Response> {
    let read = axum::body::to_bytes(body, limit);
    let r = match tokio::time::timeout(node.cfg().http_server.read_timeout.0, read).await {
        Ok(r) => r,
        Err(_) => return Err(StatusCode::REQUEST_TIMEOUT.into_response()),
    };
    match r {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            Err(if too_large {
                StatusCode::PAYLOAD_TOO_LARGE.into_response()
            } else {
                StatusCode::BAD_REQUEST.into_response()
            })
        }
    }
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

/// `application/x-www-form-urlencoded` value decoding (`+` and `%XX`).
pub(crate) fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A unidirectional connect request (a bare `ConnectRequest`) as the
/// command frame the session reads: `{"id":1,"connect":<request>}`. Not
/// JSON: `None` (answered 400, as Centrifugo does).
pub(crate) fn uni_connect_frame(req: &[u8]) -> Option<Bytes> {
    let req = if req.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        req
    };
    let v: &serde_json::value::RawValue = serde_json::from_slice(req).ok()?;
    if !v.get().trim_start().starts_with('{') {
        return None;
    }
    Some(Bytes::from(format!("{{\"id\":1,\"connect\":{}}}", v.get())))
}

/// Starts the connection task of a streaming connection and answers with
/// its response.
#[allow(clippy::too_many_arguments)]
fn start<K: StreamKind>(
    node: Arc<Node>,
    headers: HeaderMap,
    first: Bytes,
    proto: ProtocolKind,
    framing: Framing,
    content_type: &'static str,
    sse_preamble: bool,
) -> Response {
    if node.lifecycle().is_shutting_down() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    // A small body queue: a slow reader makes writes wait (and time out
    // after a second, as centrifuge's), never grows memory.
    let (tx, rx) = mpsc::channel(2);
    if sse_preamble {
        let _ = tx.try_send(Bytes::from_static(b"\r\n"));
    }
    let session_id = uuid::Uuid::new_v4().to_string();
    let (inbound, registration) = if K::KIND.is_emulation() {
        let (itx, irx) = mpsc::channel(INBOUND_QUEUE);
        let reg = node.register_emulation(&session_id, itx, proto);
        (Some(irx), Some(reg))
    } else {
        (None, None)
    };
    let transport = StreamTransport::<K> {
        tx,
        first: Some(first),
        inbound,
        framing,
        proto,
        _registration: registration,
        _kind: PhantomData,
    };
    let mut session = Session::for_transport(node.clone(), K::KIND, proto, headers);
    session.set_session_id(session_id);
    let tracker = node.lifecycle().connections().clone();
    tracker.spawn(super::conn::run(node, transport, session));
    stream_response(rx, content_type)
}

/// A request to one of the HTTP transports once it is accepted.
pub(crate) struct Incoming {
    /// The allowed `Origin` to echo (CORS), if the request had one.
    pub(crate) origin: Option<HeaderValue>,
    /// The request headers (for proxies).
    pub(crate) headers: HeaderMap,
    /// `Content-Type: application/octet-stream`: protobuf.
    pub(crate) protobuf: bool,
    /// The POST body, or with `get` the `cf_connect` query value.
    pub(crate) data: Bytes,
}

/// The checks every HTTP transport makes first: `OPTIONS` is a CORS
/// preflight, the method must be `POST` (or `GET` when `get`, the connect
/// request then in `cf_connect`), the `Origin` allowed, the body within
/// `limit` and `http_server.read_timeout`. `Err` is the answer to send.
pub(crate) async fn accept(
    node: &Node,
    req: Request,
    limit: usize,
    get: bool,
) -> Result<Incoming, Response> {
    match *req.method() {
        Method::OPTIONS => return Err(preflight(node, req.headers())),
        Method::POST => {}
        Method::GET if get => {}
        _ => return Err(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    }
    let origin = cors(node, req.headers()).map_err(IntoResponse::into_response)?;
    let headers = req.headers().clone();
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/octet-stream");
    let data = if req.method() == Method::GET {
        Bytes::from(query_param(&req, "cf_connect").unwrap_or_default())
    } else {
        read_body(node, req.into_body(), limit)
            .await
            .map_err(|r| with_cors(r, origin.clone()))?
    };
    Ok(Incoming {
        origin,
        headers,
        protobuf,
        data,
    })
}

/// `POST /connection/http_stream`: bidirectional emulation; the body holds
/// the first commands (JSON lines, or protobuf with
/// `Content-Type: application/octet-stream`).
pub(crate) async fn http_stream(State(node): State<Arc<Node>>, req: Request) -> Response {
    let limit = node.cfg().http_stream.body_limit();
    let i = match accept(&node, req, limit, false).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (proto, framing, ct) = if i.protobuf {
        (
            ProtocolKind::Protobuf,
            Framing::Protobuf,
            "application/octet-stream",
        )
    } else {
        (
            ProtocolKind::Json,
            Framing::Lines,
            "text/plain; charset=utf-8",
        )
    };
    let r = start::<HttpStream>(node, i.headers, i.data, proto, framing, ct, false);
    with_cors(r, i.origin)
}

/// `GET /connection/sse?cf_connect=<command JSON>` (or `POST` with it as
/// the body): bidirectional emulation over SSE, JSON only.
pub(crate) async fn sse(State(node): State<Arc<Node>>, req: Request) -> Response {
    let limit = node.cfg().sse.body_limit();
    let i = match accept(&node, req, limit, true).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    if i.data.is_empty() {
        return with_cors(StatusCode::BAD_REQUEST.into_response(), i.origin);
    }
    let r = start::<Sse>(
        node,
        i.headers,
        i.data,
        ProtocolKind::Json,
        Framing::Sse,
        "text/event-stream; charset=utf-8",
        true,
    );
    with_cors(r, i.origin)
}

/// `POST /connection/uni_http_stream` with a `ConnectRequest` JSON body.
pub(crate) async fn uni_http_stream(State(node): State<Arc<Node>>, req: Request) -> Response {
    let limit = node.cfg().uni_http_stream.body_limit();
    let i = match accept(&node, req, limit, false).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(first) = uni_connect_frame(&i.data) else {
        return with_cors(StatusCode::BAD_REQUEST.into_response(), i.origin);
    };
    let r = start::<UniHttpStream>(
        node,
        i.headers,
        first,
        ProtocolKind::UniJson,
        Framing::Lines,
        "text/plain; charset=utf-8",
        false,
    );
    with_cors(r, i.origin)
}

/// `GET /connection/uni_sse?cf_connect=<ConnectRequest JSON>` (or `POST`
/// with it as the body).
pub(crate) async fn uni_sse(State(node): State<Arc<Node>>, req: Request) -> Response {
    let limit = node.cfg().uni_sse.body_limit();
    let i = match accept(&node, req, limit, true).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(first) = uni_connect_frame(&i.data) else {
        return with_cors(StatusCode::BAD_REQUEST.into_response(), i.origin);
    };
    let r = start::<UniSse>(
        node,
        i.headers,
        first,
        ProtocolKind::UniJson,
        Framing::Sse,
        "text/event-stream; charset=utf-8",
        true,
    );
    with_cors(r, i.origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uni_connect_requests_become_connect_commands() {
        assert_eq!(
            &uni_connect_frame(br#"{"token":"t"}"#).unwrap()[..],
            br#"{"id":1,"connect":{"token":"t"}}"#
        );
        assert_eq!(
            &uni_connect_frame(b"").unwrap()[..],
            br#"{"id":1,"connect":{}}"#
        );
        assert!(uni_connect_frame(b"not json").is_none());
        assert!(uni_connect_frame(b"[1]").is_none());
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(percent_decode("%7B%22a%22%3A1%7D"), r#"{"a":1}"#);
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
