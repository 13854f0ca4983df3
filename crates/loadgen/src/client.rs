//! The WebSocket side: dialing from spread source addresses, the `connect` and
//! `subscribe` commands, answering server pings, and holding a connection
//! until it is told to stop or the server closes it.
//!
//! Server frames may carry several JSON replies separated by `\n`; a ping is
//! the empty object `{}` and is answered with `{}`.

use crate::target::Target;
use anyhow::{Context, Result, anyhow};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// An established client WebSocket.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Time allowed for one command (TCP connect, upgrade, or a reply).
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The pong command, shared without allocation.
const PONG: Utf8Bytes = Utf8Bytes::from_static("{}");

/// The server closed the connection with a close frame.
#[derive(Debug)]
pub(crate) struct ServerClosed {
    /// Close code (e.g. 3503, 3014).
    pub(crate) code: u16,
    /// Close reason.
    pub(crate) reason: String,
}

impl std::fmt::Display for ServerClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "closed {} {}", self.code, self.reason)
    }
}

impl std::error::Error for ServerClosed {}

/// The server answered a command with an error reply.
#[derive(Debug)]
pub(crate) struct ReplyError {
    /// Client protocol error code (e.g. 109).
    pub(crate) code: u32,
    /// Error message.
    pub(crate) message: String,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {} {}", self.code, self.message)
    }
}

impl std::error::Error for ReplyError {}

/// Opens WebSocket connections to one or several targets (nodes; connection
/// `n` goes to node `n % nodes`), spreading local addresses.
pub(crate) struct Dialer {
    targets: Vec<(SocketAddr, String)>,
    sources: Vec<IpAddr>,
    config: WebSocketConfig,
    protobuf_every: u64,
}

/// A connection's protocol flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    /// Newline-delimited JSON in text frames.
    Json,
    /// Length-delimited protobuf in binary frames.
    Protobuf,
}

impl Dialer {
    /// A dialer for `target`. With `source_ips` > 0 and an IPv4 target, socket
    /// `n` binds 127.0.0.(2 + n % source_ips) so that each source address has
    /// its own ephemeral port range.
    pub(crate) fn new(targets: &[Target], source_ips: u8, read_buffer: usize) -> Dialer {
        let sources = if targets.iter().all(|t| t.addr.is_ipv4()) {
            (0..source_ips)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
                .collect()
        } else {
            Vec::new()
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(0)
            .max_message_size(Some(16 << 20))
            .max_frame_size(Some(16 << 20));
        Dialer {
            targets: targets.iter().map(|t| (t.addr, t.url.clone())).collect(),
            sources,
            config,
            protobuf_every: 0,
        }
    }

    /// Connection `n` speaks protobuf when `every` > 0 and `n % every == 0`.
    pub(crate) fn with_protobuf_every(mut self, every: u64) -> Dialer {
        self.protobuf_every = every;
        self
    }

    /// The protocol of connection `n`.
    pub(crate) fn proto(&self, n: u64) -> Proto {
        if self.protobuf_every > 0 && n.is_multiple_of(self.protobuf_every) {
            Proto::Protobuf
        } else {
            Proto::Json
        }
    }

    /// The node connection `n` goes to.
    fn target(&self, n: u64) -> &(SocketAddr, String) {
        &self.targets[(n % self.targets.len() as u64) as usize]
    }

    /// TCP connect (from the source address for index `n`) and WebSocket upgrade.
    pub(crate) async fn dial(&self, n: u64) -> Result<Ws> {
        let (addr, url) = self.target(n);
        let step = async {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if !self.sources.is_empty() {
                let src = self.sources[(n % self.sources.len() as u64) as usize];
                socket
                    .bind(SocketAddr::new(src, 0))
                    .with_context(|| format!("binding {src}"))?;
            }
            let stream = socket.connect(*addr).await.context("tcp connect")?;
            stream.set_nodelay(true)?;
            let url = match self.proto(n) {
                Proto::Json => url.clone(),
                Proto::Protobuf if url.contains('?') => format!("{url}&cf_protocol=protobuf"),
                Proto::Protobuf => format!("{url}?cf_protocol=protobuf"),
            };
            let (ws, _) = tokio_tungstenite::client_async_with_config(
                url.as_str(),
                stream,
                Some(self.config),
            )
            .await
            .context("websocket upgrade")?;
            anyhow::Ok(ws)
        };
        tokio::time::timeout(STEP_TIMEOUT, step)
            .await
            .map_err(|_| anyhow!("timeout opening the connection"))?
    }
}

/// `{"id":1,"connect":{"token":…}}`.
pub(crate) fn connect_command(token: &str) -> String {
    format!(
        r#"{{"id":1,"connect":{{"token":{}}}}}"#,
        serde_json::Value::from(token)
    )
}

/// `{"id":<id>,"subscribe":{"channel":…}}`.
pub(crate) fn subscribe_command(id: u32, channel: &str) -> String {
    format!(
        r#"{{"id":{id},"subscribe":{{"channel":{}}}}}"#,
        serde_json::Value::from(channel)
    )
}

/// The protobuf form of a JSON command made by [`connect_command`] or
/// [`subscribe_command`].
fn protobuf_command(json: &str) -> Vec<u8> {
    use prost::Message as _;
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut c = gyre::pb::client::Command {
        id: v["id"].as_u64().unwrap_or(0) as u32,
        ..Default::default()
    };
    if let Some(t) = v["connect"]["token"].as_str() {
        c.connect = Some(gyre::pb::client::ConnectRequest {
            token: t.to_string(),
            ..Default::default()
        });
    }
    if let Some(ch) = v["subscribe"]["channel"].as_str() {
        c.subscribe = Some(gyre::pb::client::SubscribeRequest {
            channel: ch.to_string(),
            ..Default::default()
        });
    }
    c.encode_length_delimited_to_vec()
}

/// A binary (protobuf) message as the JSON lines the rest of the load
/// generator reads: pings `{}`, replies `{"id":N[,"error":{..}]}`, and
/// publication pushes with their data (JSON bytes) embedded.
pub(crate) fn protobuf_lines(mut b: &[u8]) -> String {
    use prost::Message as _;
    let mut out = String::new();
    while !b.is_empty() {
        let Ok(r) = gyre::pb::client::Reply::decode_length_delimited(&mut b) else {
            break;
        };
        if !out.is_empty() {
            out.push('\n');
        }
        if let Some(p) = r
            .push
            .as_ref()
            .and_then(|p| p.r#pub.as_ref().map(|x| (p, x)))
        {
            let data = std::str::from_utf8(&p.1.data).unwrap_or("null");
            out.push_str(&format!(
                r#"{{"push":{{"channel":{},"pub":{{"data":{data},"offset":{}}}}}}}"#,
                serde_json::Value::from(p.0.channel.as_str()),
                p.1.offset
            ));
        } else if r.id > 0 {
            match &r.error {
                Some(e) => out.push_str(&format!(
                    r#"{{"id":{},"error":{{"code":{},"message":{}}}}}"#,
                    r.id,
                    e.code,
                    serde_json::Value::from(e.message.as_str())
                )),
                None => out.push_str(&format!(r#"{{"id":{},"ok":{{}}}}"#, r.id)),
            }
        } else if r.push.is_some() {
            out.push_str(r#"{"push":{"other":{}}}"#);
        } else {
            out.push_str("{}");
        }
    }
    out
}

/// Sends `command` and waits for the reply carrying `id`, answering pings meanwhile.
pub(crate) async fn request(ws: &mut Ws, id: u32, command: String) -> Result<()> {
    request_as(ws, Proto::Json, id, command).await
}

/// [`request`] in the given protocol flavour.
pub(crate) async fn request_as(ws: &mut Ws, proto: Proto, id: u32, command: String) -> Result<()> {
    let msg = match proto {
        Proto::Json => Message::Text(command.into()),
        Proto::Protobuf => Message::Binary(protobuf_command(&command).into()),
    };
    ws.send(msg).await.context("sending a command")?;
    tokio::time::timeout(STEP_TIMEOUT, await_reply(ws, id))
        .await
        .map_err(|_| anyhow!("timeout waiting for reply {id}"))?
}

/// Connect with `token`, then subscribe to `channel` (if any), in the given
/// protocol flavour.
pub(crate) async fn connect_and_subscribe_as(
    ws: &mut Ws,
    proto: Proto,
    token: &str,
    channel: Option<&str>,
) -> Result<()> {
    request_as(ws, proto, 1, connect_command(token)).await?;
    if let Some(channel) = channel {
        request_as(ws, proto, 2, subscribe_command(2, channel)).await?;
    }
    Ok(())
}

/// The parts of a reply needed to match it to a command (borrowed, no allocation).
#[derive(Deserialize)]
struct ReplyHead<'a> {
    #[serde(default)]
    id: u32,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
}

/// `Reply.error`.
#[derive(Deserialize)]
struct ErrorBody<'a> {
    code: u32,
    #[serde(default, borrow)]
    message: Cow<'a, str>,
}

/// Reads frames until the reply with `id` arrives; pushes are skipped, pings answered.
async fn await_reply(ws: &mut Ws, id: u32) -> Result<()> {
    loop {
        let msg = match ws.next().await {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => return Err(anyhow!(e).context("reading a reply")),
            None => return Err(anyhow!("connection ended without a close frame")),
        };
        let (msg, proto) = match msg {
            Message::Binary(b) => (Message::Text(protobuf_lines(&b).into()), Proto::Protobuf),
            m => (m, Proto::Json),
        };
        match msg {
            Message::Text(text) => {
                let mut pings = 0;
                let mut outcome = None;
                for line in lines(&text) {
                    if is_ping(line) {
                        pings += 1;
                        continue;
                    }
                    let head: ReplyHead =
                        serde_json::from_str(line).context("undecodable reply")?;
                    if head.id == id {
                        outcome = Some(match head.error {
                            None => Ok(()),
                            Some(e) => Err(anyhow!(ReplyError {
                                code: e.code,
                                message: e.message.into_owned()
                            })),
                        });
                    }
                }
                pong_as(ws, proto, pings).await?;
                if let Some(outcome) = outcome {
                    return outcome;
                }
            }
            Message::Close(frame) => return Err(anyhow!(closed(frame))),
            _ => {}
        }
    }
}

/// The close frame as an error value (1005 when the frame carried no code).
fn closed(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> ServerClosed {
    match frame {
        Some(f) => ServerClosed {
            code: f.code.into(),
            reason: f.reason.as_str().to_string(),
        },
        None => ServerClosed {
            code: 1005,
            reason: String::new(),
        },
    }
}

/// The non-empty `\n`-separated replies of one frame.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').map(str::trim).filter(|l| !l.is_empty())
}

/// True for a server ping: the empty reply `{}`.
pub(crate) fn is_ping(line: &str) -> bool {
    line == "{}"
}

/// Answers `n` pings, one `{}` each (protobuf: an empty `Command`).
pub(crate) async fn pong_as(ws: &mut Ws, proto: Proto, n: usize) -> Result<()> {
    for _ in 0..n {
        let m = match proto {
            Proto::Json => Message::Text(PONG),
            Proto::Protobuf => Message::Binary(bytes::Bytes::from_static(&[0])),
        };
        ws.feed(m).await.context("sending a pong")?;
    }
    if n > 0 {
        ws.flush().await.context("sending a pong")?;
    }
    Ok(())
}

/// Sends a close frame (best effort, bounded in time); the socket closes when `ws` drops.
pub(crate) async fn close(ws: &mut Ws) {
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
}

/// How a held connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Stopped by us.
    Stopped,
    /// The server sent a close frame.
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
        /// When the frame was read.
        at: Instant,
    },
    /// The connection failed without a close frame.
    Lost {
        /// When it was noticed.
        at: Instant,
        /// The error.
        why: String,
    },
}

/// Holds an established connection: answers pings (counted in `pings`) and
/// ignores everything else, until `stop` turns true or the server closes.
pub(crate) async fn hold(ws: &mut Ws, stop: &mut watch::Receiver<bool>, pings: &AtomicU64) -> End {
    loop {
        tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    let (text, proto) = match m {
                        Message::Binary(b) => (protobuf_lines(&b), Proto::Protobuf),
                        Message::Text(t) => (t.as_str().to_string(), Proto::Json),
                        _ => unreachable!("matched above"),
                    };
                    let n = lines(&text).filter(|l| is_ping(l)).count();
                    pings.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = pong_as(ws, proto, n).await {
                        return End::Lost { at: Instant::now(), why: format!("{e:#}") };
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let at = Instant::now();
                    let c = closed(frame);
                    close(ws).await;
                    return End::Closed { code: c.code, reason: c.reason, at };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return End::Lost { at: Instant::now(), why: e.to_string() },
                None => return End::Lost { at: Instant::now(), why: "connection ended".into() },
            },
            () = stopped(stop) => {
                close(ws).await;
                return End::Stopped;
            }
        }
    }
}

/// Resolves once `stop` holds `true` (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Counts failures by kind ("closed 3503 blocked", "error 109 …", "tcp connect: …").
#[derive(Default)]
pub(crate) struct Failures(Mutex<BTreeMap<String, u64>>);

impl Failures {
    /// Counts one failure.
    pub(crate) fn add(&self, e: &anyhow::Error) {
        let mut kind = format!("{e:#}");
        kind.truncate(120);
        *self
            .0
            .lock()
            .expect("failures lock")
            .entry(kind)
            .or_default() += 1;
    }

    /// Adds the counts of `other` (e.g. an earlier round's fleet).
    pub(crate) fn absorb(&self, other: &Failures) {
        let theirs = other.0.lock().expect("failures lock").clone();
        let mut mine = self.0.lock().expect("failures lock");
        for (kind, n) in theirs {
            *mine.entry(kind).or_default() += n;
        }
    }

    /// Total failures.
    pub(crate) fn total(&self) -> u64 {
        self.0.lock().expect("failures lock").values().sum()
    }

    /// The most frequent kinds, e.g. `"tcp connect: refused x3; closed 3500 invalid token x1"`.
    pub(crate) fn summary(&self) -> String {
        let map = self.0.lock().expect("failures lock");
        let mut kinds: Vec<_> = map.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1));
        kinds
            .iter()
            .take(3)
            .map(|(k, n)| format!("{k} x{n}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_absorb_adds_counts() {
        let (a, b) = (Failures::default(), Failures::default());
        a.add(&anyhow!("refused"));
        b.add(&anyhow!("refused"));
        b.add(&anyhow!("reset"));
        a.absorb(&b);
        assert_eq!(a.total(), 3);
        assert_eq!(a.summary(), "refused x2; reset x1");
    }

    #[test]
    fn commands_are_valid_json() {
        let c: serde_json::Value = serde_json::from_str(&connect_command("a.b.c")).unwrap();
        assert_eq!(c["connect"]["token"], "a.b.c");
        let s: serde_json::Value = serde_json::from_str(&subscribe_command(2, "ch\"x")).unwrap();
        assert_eq!(s["subscribe"]["channel"], "ch\"x");
        assert_eq!(s["id"], 2);
    }

    #[test]
    fn splits_frames_and_finds_pings() {
        let frame = "{\"id\":1,\"connect\":{}}\n{}\n\n{\"push\":{}}\n";
        let all: Vec<_> = lines(frame).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().filter(|l| is_ping(l)).count(), 1);
        let head: ReplyHead =
            serde_json::from_str(r#"{"id":3,"error":{"code":109,"message":"token expired"}}"#)
                .unwrap();
        assert_eq!((head.id, head.error.unwrap().code), (3, 109));
    }
}
