//! The typed configuration tree, with Centrifugo v6 key names (protocol.md
//! §6.1) and Centrifugo's defaults. Every field documents its key; the
//! `defaultconfig` subcommand prints this tree, so the docs and the code
//! cannot drift apart.

use super::backend::{Database, Redis};
use super::duration::Dur;
use super::selectors::{EngineType, ErrorMode, StorageType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `http_server`: listening addresses.
    pub http_server: HttpServer,
    /// `log`: logging.
    pub log: Log,
    /// `client`: connection-level settings.
    pub client: Client,
    /// `channel`: channel and namespace options.
    pub channel: Channel,
    /// `rpc`: RPC namespaces (accepted; RPC needs a proxy Gyre does not have yet).
    pub rpc: Rpc,
    /// `http_api`: the server HTTP API.
    pub http_api: HttpApi,
    /// `grpc_api`: not supported by Gyre; enabling it fails at start.
    pub grpc_api: GrpcApi,
    /// `engine`: where channels' history, presence and pub/sub live.
    pub engine: Engine,
    /// `broker`: a broker of its own instead of the engine's (`type`
    /// `memory` or `redis`, with its own `redis` section).
    pub broker: BackendSection,
    /// `presence_manager`: a presence manager of its own instead of the
    /// engine's (`type` `memory` or `redis`).
    pub presence_manager: BackendSection,
    /// `websocket`: the bidirectional WebSocket transport.
    pub websocket: Websocket,
    /// `uni_websocket`: the unidirectional WebSocket transport.
    pub uni_websocket: UniWebsocket,
    /// `uni_http_stream`: the unidirectional HTTP-streaming transport.
    pub uni_http_stream: StreamEndpoint,
    /// `uni_sse`: the unidirectional SSE (EventSource) transport.
    pub uni_sse: StreamEndpoint,
    /// `uni_grpc`: not supported; must stay disabled.
    pub uni_grpc: Toggle,
    /// `sse`: bidirectional emulation over SSE (centrifuge-js fallback).
    pub sse: StreamEndpoint,
    /// `http_stream`: bidirectional emulation over HTTP streaming.
    pub http_stream: StreamEndpoint,
    /// `emulation`: where emulated connections post their commands.
    pub emulation: Emulation,
    /// `admin`: the admin web UI (not supported; must stay disabled).
    pub admin: Admin,
    /// `prometheus`: Prometheus metrics at `/metrics` (a small set of gauges and counters).
    pub prometheus: Endpoint,
    /// `debug`: pprof-style debug endpoints (not supported; must stay disabled).
    pub debug: Toggle,
    /// `swagger`: API docs UI (not supported; must stay disabled).
    pub swagger: Toggle,
    /// `health`: `GET /health` answering `{}`.
    pub health: Endpoint,
    /// `node`: this node's identity.
    pub node: NodeCfg,
    /// `shutdown`: graceful shutdown.
    pub shutdown: Shutdown,
    /// `user_block`: user blocking (PRO feature in Centrifugo).
    pub user_block: ProtectFeature,
    /// `token_revoke`: token revocation by `jti` (PRO feature in Centrifugo).
    pub token_revoke: ProtectFeature,
    /// `user_tokens_invalidate`: per-user token invalidation by `iat`.
    pub user_tokens_invalidate: ProtectFeature,
    /// `database`: PostgreSQL for the protective data (`storage_type: "database"`).
    pub database: Database,
    /// `pid_file`: write the process id to this file at start.
    pub pid_file: String,
}

/// `http_server.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpServer {
    /// `http_server.address`: interface to bind; empty means `127.0.0.1` in Gyre
    /// (Centrifugo binds all interfaces; Gyre is loopback unless told otherwise).
    pub address: String,
    /// `http_server.port`: main port (default 8000).
    pub port: u16,
    /// `http_server.internal_address`: interface for the internal port.
    pub internal_address: String,
    /// `http_server.internal_port`: if set, the API and health endpoints move here.
    pub internal_port: String,
    /// `http_server.read_header_timeout` (Gyre extension; Centrifugo's fixed
    /// value is the default, 10s): time a connection has to send a complete
    /// request head, when fresh and again between keep-alive requests.
    pub read_header_timeout: Dur,
    /// `http_server.read_timeout` (Gyre extension; Centrifugo's fixed value
    /// is the default, 30s): time to read a request body once the headers
    /// were accepted (server API).
    pub read_timeout: Dur,
    /// `http_server.max_pending_connections` (Gyre extension): connections
    /// allowed to wait for their first request head at once, per listener;
    /// one more closes the oldest waiting one. 0 (default) = a quarter of
    /// the process's open-files limit, at least 64.
    pub max_pending_connections: usize,
}

impl Default for HttpServer {
    fn default() -> Self {
        HttpServer {
            address: String::new(),
            port: 8000,
            internal_address: String::new(),
            internal_port: String::new(),
            read_header_timeout: Dur::secs(10),
            read_timeout: Dur::secs(30),
            max_pending_connections: 0,
        }
    }
}

/// `log.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Log {
    /// `log.level`: `none`, `trace`, `debug`, `info`, `warn`, `error` (default `info`).
    pub level: String,
    /// `log.file`: append logs to this file instead of stderr.
    pub file: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            file: String::new(),
        }
    }
}

/// `client.token.*` and `client.subscription_token.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Token {
    /// `enabled`: only meaningful for `client.subscription_token` (use these
    /// keys for subscription tokens); ignored under `client.token`.
    pub enabled: bool,
    /// `hmac_secret_key`: HS256/384/512 secret.
    pub hmac_secret_key: String,
    /// `hmac_previous_secret_key`: previous HMAC secret accepted during rotation.
    pub hmac_previous_secret_key: String,
    /// `hmac_previous_secret_key_valid_until`: Unix seconds until which the previous secret is accepted.
    pub hmac_previous_secret_key_valid_until: i64,
    /// `rsa_public_key`: PEM public key for RS256/384/512.
    pub rsa_public_key: String,
    /// `ecdsa_public_key`: PEM public key for ES256/384.
    pub ecdsa_public_key: String,
    /// `jwks_public_endpoint`: JWKS URL; when set only JWKS keys are used.
    pub jwks_public_endpoint: String,
    /// `audience`: required `aud` value.
    pub audience: String,
    /// `audience_regex`: required `aud` pattern.
    pub audience_regex: String,
    /// `issuer`: required `iss` value.
    pub issuer: String,
    /// `issuer_regex`: required `iss` pattern.
    pub issuer_regex: String,
    /// `user_id_claim`: claim holding the user id instead of `sub`.
    pub user_id_claim: String,
}

/// One proxy (`client.proxy.connect`, `client.proxy.refresh`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Proxy {
    /// `enabled`: turn the proxy on.
    pub enabled: bool,
    /// `endpoint`: `http://` or `https://` URL of the backend.
    pub endpoint: String,
    /// `timeout`: request timeout (default 1s).
    pub timeout: Dur,
    /// `http_headers`: client request headers to forward (case-insensitive names).
    pub http_headers: Vec<String>,
    /// `emulated_headers`: names from `ConnectRequest.headers` to forward.
    pub emulated_headers: Vec<String>,
    /// `include_connection_meta`: add the connection's `meta` to refresh requests.
    pub include_connection_meta: bool,
    /// `binary_encoding`: send `b64data` instead of `data`.
    pub binary_encoding: bool,
    /// `http`: HTTP-specific settings.
    pub http: ProxyHttp,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            enabled: false,
            endpoint: String::new(),
            timeout: Dur::secs(1),
            http_headers: vec![],
            emulated_headers: vec![],
            include_connection_meta: false,
            binary_encoding: false,
            http: ProxyHttp::default(),
        }
    }
}

/// `client.proxy.*.http`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyHttp {
    /// `static_headers`: headers added to every proxy request.
    pub static_headers: BTreeMap<String, String>,
    /// `status_to_code_transforms`: map non-200 statuses to client errors or disconnects.
    pub status_to_code_transforms: Vec<StatusTransform>,
}

/// One `status_to_code_transforms` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusTransform {
    /// `status_code`: HTTP status to transform.
    pub status_code: u16,
    /// `to_error`: client error to answer instead of 100.
    pub to_error: Option<TransformError>,
    /// `to_disconnect`: disconnect to apply instead.
    pub to_disconnect: Option<TransformDisconnect>,
}

/// `to_error` of a status transform.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformError {
    /// Error code.
    pub code: u32,
    /// Error message.
    pub message: String,
    /// Temporary flag.
    pub temporary: bool,
}

/// `to_disconnect` of a status transform.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformDisconnect {
    /// Close code.
    pub code: u16,
    /// Close reason.
    pub reason: String,
}

/// `client.proxy`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientProxies {
    /// `client.proxy.connect`: ask a backend to authenticate token-less connects.
    pub connect: Proxy,
    /// `client.proxy.refresh`: ask a backend to extend expiring connections.
    pub refresh: Proxy,
}

/// `client.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Client {
    /// `client.token`: connection token verification.
    pub token: Token,
    /// `client.subscription_token`: separate keys for subscription tokens (when `enabled`).
    pub subscription_token: Token,
    /// `client.allowed_origins`: allowed `Origin` globs; empty allows only requests without `Origin`.
    pub allowed_origins: Vec<String>,
    /// `client.proxy`: connect and refresh proxies.
    pub proxy: ClientProxies,
    /// `client.ping_interval`: server ping period (default 25s).
    pub ping_interval: Dur,
    /// `client.pong_timeout`: time to answer a ping (default 8s; 0 disables the check).
    pub pong_timeout: Dur,
    /// `client.expired_close_delay`: grace after connection expiry to send `refresh` (default 25s).
    pub expired_close_delay: Dur,
    /// `client.expired_sub_close_delay`: grace after subscription expiry for `sub_refresh` (25s).
    pub expired_sub_close_delay: Dur,
    /// `client.stale_close_delay`: time allowed to send `connect` (default 10s).
    pub stale_close_delay: Dur,
    /// `client.channel_limit`: subscriptions per connection (default 128).
    pub channel_limit: usize,
    /// `client.user_connection_limit`: connections per user on a node (0 = unlimited).
    pub user_connection_limit: usize,
    /// `client.connection_limit`: connections per node (0 = unlimited).
    pub connection_limit: usize,
    /// `client.queue_max_size`: outbound bytes queued per connection before 3008 slow (1 MiB).
    pub queue_max_size: usize,
    /// `client.presence_update_interval`: presence refresh period (default 27s).
    pub presence_update_interval: Dur,
    /// `client.insecure`: accept any connect and any channel operation (development only).
    pub insecure: bool,
    /// `client.insecure_skip_token_signature_verify`: do not verify JWT signatures (development only).
    pub insecure_skip_token_signature_verify: bool,
    /// `client.allow_anonymous_connect_without_token`: connects without a token become anonymous.
    pub allow_anonymous_connect_without_token: bool,
    /// `client.disallow_anonymous_connection_tokens`: reject tokens with an empty `sub` (3507).
    pub disallow_anonymous_connection_tokens: bool,
    /// `client.connect_include_server_time`: add `time` (ms) to connect results.
    pub connect_include_server_time: bool,
    /// `client.history_max_publication_limit`: cap on a history call's `limit` (default 300).
    pub history_max_publication_limit: usize,
    /// `client.recovery_max_publication_limit`: cap on publications recovered at subscribe (300).
    pub recovery_max_publication_limit: usize,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            token: Token::default(),
            subscription_token: Token::default(),
            allowed_origins: vec![],
            proxy: ClientProxies::default(),
            ping_interval: Dur::secs(25),
            pong_timeout: Dur::secs(8),
            expired_close_delay: Dur::secs(25),
            expired_sub_close_delay: Dur::secs(25),
            stale_close_delay: Dur::secs(10),
            channel_limit: 128,
            user_connection_limit: 0,
            connection_limit: 0,
            queue_max_size: 1_048_576,
            presence_update_interval: Dur::secs(27),
            insecure: false,
            insecure_skip_token_signature_verify: false,
            allow_anonymous_connect_without_token: false,
            disallow_anonymous_connection_tokens: false,
            connect_include_server_time: false,
            history_max_publication_limit: 300,
            recovery_max_publication_limit: 300,
        }
    }
}

/// Options of one namespace (or of `channel.without_namespace`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChannelOptions {
    /// `name`: namespace name (namespaces only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `presence`: keep presence information.
    pub presence: bool,
    /// `join_leave`: send join/leave pushes to subscribers that ask for them.
    pub join_leave: bool,
    /// `force_push_join_leave`: send join/leave pushes to every subscriber.
    pub force_push_join_leave: bool,
    /// `history_size`: publications kept per channel (0 = no history).
    pub history_size: usize,
    /// `history_ttl`: how long publications are kept.
    pub history_ttl: Dur,
    /// `history_meta_ttl`: how long a stream's epoch/offset survive without publications.
    pub history_meta_ttl: Dur,
    /// `force_positioning`: every subscription is positioned.
    pub force_positioning: bool,
    /// `allow_positioning`: clients may ask for positioning.
    pub allow_positioning: bool,
    /// `force_recovery`: every subscription is recoverable.
    pub force_recovery: bool,
    /// `allow_recovery`: clients may ask for recovery.
    pub allow_recovery: bool,
    /// `allow_subscribe_for_client`: authenticated clients may subscribe without a token.
    pub allow_subscribe_for_client: bool,
    /// `allow_subscribe_for_anonymous`: anonymous clients may subscribe without a token.
    pub allow_subscribe_for_anonymous: bool,
    /// `allow_publish_for_subscriber`: subscribers may publish.
    pub allow_publish_for_subscriber: bool,
    /// `allow_publish_for_client`: any authenticated client may publish.
    pub allow_publish_for_client: bool,
    /// `allow_publish_for_anonymous`: anonymous clients may publish (with the above).
    pub allow_publish_for_anonymous: bool,
    /// `allow_presence_for_subscriber`: subscribers may call presence.
    pub allow_presence_for_subscriber: bool,
    /// `allow_presence_for_client`: any authenticated client may call presence.
    pub allow_presence_for_client: bool,
    /// `allow_presence_for_anonymous`: anonymous clients may call presence (with the above).
    pub allow_presence_for_anonymous: bool,
    /// `allow_history_for_subscriber`: subscribers may call history.
    pub allow_history_for_subscriber: bool,
    /// `allow_history_for_client`: any authenticated client may call history.
    pub allow_history_for_client: bool,
    /// `allow_history_for_anonymous`: anonymous clients may call history (with the above).
    pub allow_history_for_anonymous: bool,
    /// `allow_user_limited_channels`: `#`-channels listing the user may be subscribed without a token.
    pub allow_user_limited_channels: bool,
    /// `channel_regex`: channel names (after the namespace) must match this regex (not supported).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel_regex: String,
}

/// `channel.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Channel {
    /// `channel.private_prefix`: channels starting with it need a subscription token (`$`).
    pub private_prefix: String,
    /// `channel.namespace_boundary`: separates namespace and name (`:`).
    pub namespace_boundary: String,
    /// `channel.user_boundary`: starts the user list of a user-limited channel (`#`).
    pub user_boundary: String,
    /// `channel.user_separator`: separates users in a user-limited channel (`,`).
    pub user_separator: String,
    /// `channel.max_length`: longest channel name (255).
    pub max_length: usize,
    /// `channel.history_meta_ttl`: how long a stream's epoch and offset
    /// outlive its last publication when a namespace sets none (720h).
    pub history_meta_ttl: Dur,
    /// `channel.without_namespace`: options of channels without a namespace.
    pub without_namespace: ChannelOptions,
    /// `channel.namespaces`: named namespaces.
    pub namespaces: Vec<ChannelOptions>,
}

impl Default for Channel {
    fn default() -> Self {
        Channel {
            private_prefix: "$".into(),
            namespace_boundary: ":".into(),
            user_boundary: "#".into(),
            user_separator: ",".into(),
            max_length: 255,
            history_meta_ttl: Dur::secs(720 * 3600),
            without_namespace: ChannelOptions::default(),
            namespaces: vec![],
        }
    }
}

/// `rpc.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Rpc {
    /// `rpc.namespaces`: accepted for compatibility; RPC answers 108 without a proxy.
    pub namespaces: Vec<serde_json::Value>,
    /// `rpc.without_namespace`: accepted for compatibility.
    pub without_namespace: serde_json::Value,
}

/// `http_api.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpApi {
    /// `http_api.handler_prefix`: API path prefix (`/api`).
    pub handler_prefix: String,
    /// `http_api.key`: API key; empty means every call is refused with 401.
    pub key: String,
    /// `http_api.insecure`: no API key check (development only).
    pub insecure: bool,
    /// `http_api.external`: serve the API on the main port even when an internal port is set.
    pub external: bool,
    /// `http_api.disabled`: do not serve the API.
    pub disabled: bool,
    /// `http_api.error_mode`: `""` (errors in 200 bodies) or `"transport"` (HTTP statuses).
    pub error_mode: ErrorMode,
}

impl Default for HttpApi {
    fn default() -> Self {
        HttpApi {
            handler_prefix: "/api".into(),
            key: String::new(),
            insecure: false,
            external: false,
            disabled: false,
            error_mode: ErrorMode::Body,
        }
    }
}

/// `grpc_api.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcApi {
    /// `grpc_api.enabled`: gRPC API (not supported by Gyre; must be false).
    pub enabled: bool,
    /// `grpc_api.port`: gRPC port.
    pub port: u16,
    /// `grpc_api.key`: gRPC API key.
    pub key: String,
}

impl Default for GrpcApi {
    fn default() -> Self {
        GrpcApi {
            enabled: false,
            port: 10000,
            key: String::new(),
        }
    }
}

/// `engine.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Engine {
    /// `engine.type`: `memory` (one node) or `redis` (a cluster).
    #[serde(rename = "type")]
    pub kind: EngineType,
    /// `engine.redis`: Redis settings for `engine.type=redis` (docs/cluster.md).
    pub redis: Redis,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            kind: EngineType::Memory,
            redis: Redis::default(),
        }
    }
}

/// `sse`, `http_stream`, `uni_sse`, `uni_http_stream`: an HTTP endpoint
/// that streams to the client. The `handler_prefix` default depends on the
/// section (set by [`Config`]'s default; an empty one means the default).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamEndpoint {
    /// `enabled`: serve the endpoint.
    pub enabled: bool,
    /// `handler_prefix`: its path (`/connection/<name>` when empty).
    pub handler_prefix: String,
    /// `max_request_body_size`: largest connect request body in bytes (65536).
    pub max_request_body_size: usize,
}

impl StreamEndpoint {
    /// The path, or `/connection/<name>` when none is set.
    pub fn path(&self, name: &str) -> String {
        if self.handler_prefix.is_empty() {
            format!("/connection/{name}")
        } else {
            self.handler_prefix.clone()
        }
    }

    /// The body limit (65536 when 0).
    pub fn body_limit(&self) -> usize {
        if self.max_request_body_size == 0 {
            65536
        } else {
            self.max_request_body_size
        }
    }
}

/// `uni_websocket`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct UniWebsocket {
    /// `enabled`: serve `/connection/uni_websocket`.
    pub enabled: bool,
    /// `handler_prefix`: its path (`/connection/uni_websocket` when empty).
    pub handler_prefix: String,
    /// `message_size_limit`: largest inbound message (the connect request), bytes (65536).
    pub message_size_limit: usize,
    /// `disable_disconnect_push`: close with the close frame only.
    pub disable_disconnect_push: bool,
    /// `join_push_messages`: accepted without effect: every push is its own message.
    pub join_push_messages: bool,
}

/// `emulation`: the endpoint where the SSE and HTTP-streaming transports
/// post the client's commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Emulation {
    /// `handler_prefix`: its path (`/emulation` when empty).
    pub handler_prefix: String,
    /// `max_request_body_size`: largest request body in bytes (65536).
    pub max_request_body_size: usize,
}

/// `broker` / `presence_manager`: Centrifugo v6's split of the engine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendSection {
    /// `enabled`: use this section instead of `engine`.
    pub enabled: bool,
    /// `type`: `memory` or `redis` (Centrifugo's `nats` and `postgres`
    /// brokers are refused at start).
    #[serde(rename = "type")]
    pub kind: String,
    /// `redis`: the Redis of this backend (its own prefix, default `centrifugo`).
    pub redis: Redis,
}

/// A section that only has `enabled` (and possibly a `type`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Toggle {
    /// `enabled`.
    pub enabled: bool,
    /// `type`: backend type (only the memory default is supported).
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// `websocket.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Websocket {
    /// `websocket.disabled`: do not serve WebSocket connections.
    pub disabled: bool,
    /// `websocket.handler_prefix`: path (`/connection/websocket`).
    pub handler_prefix: String,
    /// `websocket.message_size_limit`: largest inbound message in bytes (65536); larger closes with 1009.
    pub message_size_limit: usize,
    /// `websocket.write_timeout`: time allowed for one write (1000ms); a connection whose
    /// write does not finish in time is dropped (no close frame can be written to it).
    pub write_timeout: Dur,
    /// `websocket.read_buffer_size`: per-connection read buffer (Gyre: 1024 bytes, grows on demand).
    pub read_buffer_size: usize,
    /// `websocket.write_buffer_size`: per-connection write buffer (Gyre: 0 = write each frame at once).
    pub write_buffer_size: usize,
    /// `websocket.compression`: permessage-deflate (not supported; must be false).
    pub compression: bool,
    /// `websocket.use_write_buffer_pool`: accepted for compatibility, no effect.
    pub use_write_buffer_pool: bool,
}

impl Default for Websocket {
    fn default() -> Self {
        Websocket {
            disabled: false,
            handler_prefix: "/connection/websocket".into(),
            message_size_limit: 65536,
            write_timeout: Dur::millis(1000),
            read_buffer_size: 1024,
            write_buffer_size: 0,
            compression: false,
            use_write_buffer_pool: false,
        }
    }
}

/// `admin.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Admin {
    /// `admin.enabled`: must be false (no admin UI in Gyre).
    pub enabled: bool,
    /// `admin.password`.
    pub password: String,
    /// `admin.secret`.
    pub secret: String,
}

/// An optional HTTP endpoint (`health`, `prometheus`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// `enabled`: serve it.
    pub enabled: bool,
    /// `handler_prefix`: path (defaults `/health`, `/metrics`).
    pub handler_prefix: String,
}

/// `node.*`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeCfg {
    /// `node.name`: human name shown by `info` (default: `gyre_<port>`).
    pub name: String,
}

/// `shutdown.*`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Shutdown {
    /// `shutdown.timeout`: longest graceful shutdown (30s).
    pub timeout: Dur,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            timeout: Dur::secs(30),
        }
    }
}

/// `user_block`, `token_revoke`, `user_tokens_invalidate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtectFeature {
    /// `enabled`: on by default, as in Centrifugo PRO; `false` turns the methods off (108).
    pub enabled: bool,
    /// `storage_type`: `""`/`memory` (default, lost on restart), `redis`
    /// (the `redis` section below, exactly one address) or `database`
    /// (PostgreSQL, `database.postgresql.dsn`).
    pub storage_type: StorageType,
    /// `redis`: Redis storage settings (for `storage_type=redis`).
    pub redis: Option<Redis>,
    /// `reload_interval` (Gyre extension): how often each node checks the
    /// store's version and reloads every entry when a change notification
    /// was missed, repairing what it carried (10s; every 30 checks it
    /// reloads regardless). Only with persistent storage.
    pub reload_interval: Dur,
    /// `start_without_storage` (Gyre extension): when the store cannot be
    /// reached at start, start anyway and keep retrying (enforcing nothing
    /// until the first load) instead of refusing to start (default false).
    pub start_without_storage: bool,
    /// `disconnect_code`: Gyre extension: close code for affected connections
    /// (3503 for `user_block`, 3014 for the other two).
    pub disconnect_code: u16,
    /// `disconnect_reason`: Gyre extension: close reason (`blocked`, `state invalidated`).
    pub disconnect_reason: String,
}

impl Default for ProtectFeature {
    fn default() -> Self {
        ProtectFeature {
            enabled: true,
            storage_type: StorageType::Memory,
            redis: None,
            reload_interval: Dur::secs(10),
            start_without_storage: false,
            disconnect_code: 0,
            disconnect_reason: String::new(),
        }
    }
}
