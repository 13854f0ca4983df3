//! The server API executor: one transport-neutral implementation behind both
//! HTTP styles (per-method and legacy), the batch method and the CLI verbs
//! (protocol.md §5). Requests and results are JSON; a body whose fields have
//! the wrong types is answered with 107 `bad request`, never a panic.

pub mod http;
mod methods;
mod protect;

use crate::node::Node;
use serde::Serialize;
use serde::de::DeserializeOwned;
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
}

impl ApiError {
    fn new(code: u32, message: &str) -> Self {
        ApiError {
            code,
            message: message.into(),
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

/// Decodes method params straight from the request bytes (so `data` and
/// `info` pass through byte for byte); wrong types are 107.
fn params<T: DeserializeOwned>(p: &RawValue) -> Result<T, ApiError> {
    let text = if p.get().trim() == "null" {
        "{}"
    } else {
        p.get()
    };
    serde_json::from_str(text).map_err(|_| ApiError::bad_request())
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
            _ => self.call_simple(method, p).await,
        }
    }

    async fn call_simple(&self, method: &str, p: &RawValue) -> Result<Reply, ApiError> {
        let n = &self.node;
        let json = |r: Result<Value, ApiError>| r.map(Reply::Json);
        match method {
            "presence" => methods::presence(n, params(p)?).await.map(Reply::Raw),
            "history" => methods::history(n, params(p)?).await.map(Reply::Raw),
            "connections" => protect::connections(n, params(p)?).await.map(Reply::Raw),
            "publish" => json(methods::publish(n, params(p)?).await),
            "broadcast" => json(methods::broadcast(n, params(p)?).await),
            "subscribe" => json(methods::subscribe(n, params(p)?).await),
            "unsubscribe" => json(methods::unsubscribe(n, params(p)?).await),
            "disconnect" => json(methods::disconnect(n, params(p)?).await),
            "refresh" => json(methods::refresh(n, params(p)?).await),
            "presence_stats" => json(methods::presence_stats(n, params(p)?).await),
            "history_remove" => json(methods::history_remove(n, params(p)?).await),
            "channels" => json(methods::channels(n, params(p)?).await),
            "info" => json(methods::info(n).await),
            "rpc" => Err(ApiError::not_found()), // no RPC extensions registered (§5.4)
            "block_user" => json(protect::block_user(n, params(p)?).await),
            "unblock_user" => json(protect::unblock_user(n, params(p)?).await),
            "revoke_token" => json(protect::revoke_token(n, params(p)?).await),
            "invalidate_user_tokens" => json(protect::invalidate_user_tokens(n, params(p)?).await),
            "block_list" => json(protect::block_list(n, params(p)?).await),
            "user_block_status" => json(protect::user_block_status(n, params(p)?).await),
            "revoked_tokens" => json(protect::revoked_tokens(n, params(p)?).await),
            "user_tokens_invalidations" => {
                json(protect::user_tokens_invalidations(n, params(p)?).await)
            }
            _ => Err(ApiError::not_found()),
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
        let b: Batch = params(p)?;
        // Commands run one after another even with `parallel`: their order is
        // then the order of their effects, which callers can rely on.
        let _ = b.parallel;
        let mut replies: Vec<Box<RawValue>> = Vec::with_capacity(b.commands.len());
        for cmd in b.commands {
            let one: Option<std::collections::BTreeMap<String, Box<RawValue>>> =
                serde_json::from_str(cmd.get()).ok();
            let item = match one {
                Some(m) if m.len() == 1 => {
                    let (k, v) = m.into_iter().next().expect("one entry");
                    match canonical_method(&Value::String(k)).filter(|m| *m != "batch") {
                        Some(method) => match Box::pin(self.call_simple(method, &v)).await {
                            Ok(r) => raw(&Keyed(method, r)),
                            Err(e) => raw(&Keyed("error", e)),
                        },
                        None => raw(&Keyed("error", ApiError::not_found())),
                    }
                }
                _ => raw(&Keyed("error", ApiError::bad_request())),
            };
            replies.push(item);
        }
        Ok(Reply::Raw(raw(&Keyed("replies", replies))))
    }
}
