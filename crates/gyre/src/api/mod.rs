//! The server API executor: one transport-neutral implementation behind both
//! HTTP styles (per-method and legacy), the batch method and the CLI verbs
//! (protocol.md §5). Requests and results are JSON; a body whose fields have
//! the wrong types is answered with 107 `bad request`, never a panic.

mod call;
pub mod http;
pub(crate) use protect::connection_item;
mod methods;
mod protect;

use crate::node::Node;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

/// A server API error (protocol.md §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code} {message}")]
pub struct ApiError {
    /// Code.
    pub code: u32,
    /// Message.
    pub message: String,
    /// The request could not be decoded into the method's params: on the
    /// per-method HTTP routes that is HTTP 400 `Bad Request`, as
    /// Centrifugo's generated handlers answer (§5.1); elsewhere 107.
    #[serde(skip)]
    pub(crate) decode: bool,
}

impl ApiError {
    fn new(code: u32, message: &str) -> Self {
        ApiError {
            code,
            message: message.into(),
            decode: false,
        }
    }
    /// 107 for params that could not be decoded.
    pub(crate) fn decode() -> Self {
        ApiError {
            decode: true,
            ..Self::bad_request()
        }
    }
    /// 100 internal server error.
    pub fn internal() -> Self {
        Self::new(100, "internal server error")
    }
    /// 102 unknown channel.
    pub fn unknown_channel() -> Self {
        Self::new(102, "unknown channel")
    }
    /// 104 not found (note: not the client protocol's "method not found").
    pub fn not_found() -> Self {
        Self::new(104, "not found")
    }
    /// 107 bad request.
    pub fn bad_request() -> Self {
        Self::new(107, "bad request")
    }
    /// 108 not available.
    pub fn not_available() -> Self {
        Self::new(108, "not available")
    }
    /// 112 unrecoverable position.
    pub fn unrecoverable() -> Self {
        Self::new(112, "unrecoverable position")
    }
    /// HTTP status in the `transport` error mode.
    pub fn http_status(&self) -> u16 {
        match self.code {
            100 => 500,
            102 | 104 => 404,
            107 | 108 => 400,
            112 => 416,
            113 => 409,
            _ => 500,
        }
    }
}

/// Every API method Gyre serves, in legacy enum order where one exists.
pub const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "unsubscribe",
    "disconnect",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "rpc",
    "subscribe",
    "refresh",
    "",
    "connections",
    "",
    "",
    "",
    "block_user",
    "unblock_user",
    "revoke_token",
    "invalidate_user_tokens",
];

/// Gyre extensions (not in Centrifugo).
pub const EXTENSION_METHODS: &[&str] = &[
    "block_list",
    "user_block_status",
    "revoked_tokens",
    "user_tokens_invalidations",
    "unrevoke_token",
    "clear_user_tokens_invalidation",
];

/// Resolves a method name (case-insensitive) or legacy number to its canonical name.
pub fn canonical_method(m: &Value) -> Option<&'static str> {
    match m {
        Value::String(s) => {
            let lower = s.to_ascii_lowercase();
            METHODS
                .iter()
                .chain(EXTENSION_METHODS)
                .chain(["batch"].iter())
                .copied()
                .find(|n| !n.is_empty() && *n == lower)
        }
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| METHODS.get(i as usize))
            .copied()
            .filter(|s| !s.is_empty()),
        _ => None,
    }
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Object(Default::default()))
}

/// Serializes a result that embeds raw payloads without re-parsing them.
fn raw<T: Serialize>(t: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(t).expect("results serialize")
}

/// A method's result: a JSON tree, or pre-serialized JSON that carries
/// application payloads verbatim (publications, presence info).
#[derive(Debug)]
pub enum Reply {
    /// A tree.
    Json(Value),
    /// Pre-serialized JSON.
    Raw(Box<RawValue>),
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Json(v) => v.serialize(s),
            Reply::Raw(r) => r.serialize(s),
        }
    }
}

impl Reply {
    /// The reply as JSON text.
    pub fn to_json(&self) -> String {
        match self {
            Reply::Raw(r) => r.get().to_string(),
            Reply::Json(v) => v.to_string(),
        }
    }
}

/// One `{"<key>": value}` object of a batch answer.
struct Keyed<'a, T: Serialize>(&'a str, T);

impl<T: Serialize> Serialize for Keyed<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.0, &self.1)?;
        m.end()
    }
}

/// The executor.
#[derive(Clone)]
pub struct Executor {
    node: Arc<Node>,
}

impl Executor {
    /// Executor over a node.
    pub fn new(node: Arc<Node>) -> Self {
        Executor { node }
    }

    /// The node this executor acts on.
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Runs one method by canonical name.
    pub async fn call(&self, method: &str, p: &RawValue) -> Result<Reply, ApiError> {
        match method {
            "batch" => self.batch(p).await,
            _ => Box::pin(call::Call::parse(method, p)?.run(&self.node)).await,
        }
    }

    /// `batch`: `{"commands":[{"<method>":{...}}],"parallel":bool}` →
    /// `{"replies":[{"<method>":{...}} | {"error":{...}}]}`. The answer is not
    /// wrapped in `result` (§5.4); the HTTP layer knows that.
    async fn batch(&self, p: &RawValue) -> Result<Reply, ApiError> {
        #[derive(serde::Deserialize)]
        struct Batch {
            #[serde(default)]
            commands: Vec<Box<RawValue>>,
            #[serde(default)]
            parallel: bool,
        }
        let text = p.get().trim();
        let b: Batch = if text == "null" {
            Batch {
                commands: vec![],
                parallel: false,
            }
        } else if text.starts_with('{') {
            serde_json::from_str(text).map_err(|_| ApiError::decode())?
        } else {
            return Err(ApiError::decode());
        };
        // Commands run one after another even with `parallel`: their order is
        // then the order of their effects, which callers can rely on.
        let _ = b.parallel;
        // Every command is decoded before any runs: a malformed one fails
        // the whole batch (Centrifugo decodes the batch as one request). A
        // command naming no known method is answered 104 in its place, an
        // empty or ambiguous one 107.
        let mut calls: Vec<Result<(&'static str, call::Call), ApiError>> =
            Vec::with_capacity(b.commands.len());
        for cmd in &b.commands {
            let one: Option<std::collections::BTreeMap<String, Box<RawValue>>> =
                serde_json::from_str(cmd.get()).ok();
            calls.push(match one {
                Some(m) if m.len() == 1 => {
                    let (k, v) = m.into_iter().next().expect("one entry");
                    match canonical_method(&Value::String(k)).filter(|m| *m != "batch") {
                        Some(method) => Ok((method, call::Call::parse(method, &v)?)),
                        None => Err(ApiError::not_found()),
                    }
                }
                _ => Err(ApiError::bad_request()),
            });
        }
        let mut replies: Vec<Box<RawValue>> = Vec::with_capacity(calls.len());
        for c in calls {
            replies.push(match c {
                Ok((method, c)) => match Box::pin(c.run(&self.node)).await {
                    Ok(r) => raw(&Keyed(method, r)),
                    Err(e) => raw(&Keyed("error", e)),
                },
                Err(e) => raw(&Keyed("error", e)),
            });
        }
        Ok(Reply::Raw(raw(&Keyed("replies", replies))))
    }
}
