//! Builds the HTTP routers from a config, binds the listeners, and runs the
//! server until shutdown (design.md §3.5): stop accepting, close every
//! client with 3001 `shutdown`, let in-flight API calls finish, and wait for
//! connection tasks up to `shutdown.timeout`.

use crate::api::Executor;
use crate::api::http::{ApiState, legacy, per_method};
use crate::config::Config;
use crate::node::Node;
use axum::Router;
use axum::routing::{any, get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A running server.
pub struct Server {
    /// Main address (WebSocket, and API unless an internal port is set).
    pub addr: SocketAddr,
    /// Internal address (API, health) if `http_server.internal_port` is set.
    pub internal_addr: Option<SocketAddr>,
    /// The node.
    pub node: Arc<Node>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// HTTP connection tasks (requests in flight, not upgraded WebSockets).
    http_tracker: tokio_util::task::TaskTracker,
}

/// The listeners' limits; `max_pending_connections: 0` becomes a quarter of
/// the open-files limit (raised to the hard limit first, as Go does).
fn http_limits(c: &Config) -> crate::transport::http::Limits {
    let nofile = crate::transport::http::raise_nofile_limit();
    let max_pending = match c.http_server.max_pending_connections {
        0 => nofile.map_or(1024, |n| (n / 4).clamp(64, 1 << 20) as usize),
        n => n,
    };
    tracing::debug!(?nofile, max_pending, "HTTP connection limits");
    crate::transport::http::Limits {
        read_header_timeout: c.http_server.read_header_timeout.0,
        max_pending,
    }
}

fn api_routes(node: &Arc<Node>) -> Router {
    let cfg = &node.cfg().http_api;
    let st = ApiState {
        exec: Executor::new(node.clone()),
        key: cfg.key.clone(),
        insecure: cfg.insecure,
        transport_errors: cfg.error_mode == crate::config::ErrorMode::Transport,
        shutdown: node.lifecycle().shutdown().clone(),
        read_timeout: node.cfg().http_server.read_timeout.0,
    };
    let prefix = cfg.handler_prefix.trim_end_matches('/').to_string();
    let prefix = if prefix.is_empty() {
        "/api".to_string()
    } else {
        prefix
    };
    Router::new()
        .route(&prefix, post(legacy))
        .route(&format!("{prefix}/{{method}}"), post(per_method))
        .with_state(st)
}

fn service_routes(node: &Arc<Node>) -> Router {
    let mut r = Router::new();
    if node.cfg().health.enabled {
        let path = if node.cfg().health.handler_prefix.is_empty() {
            "/health".to_string()
        } else {
            node.cfg().health.handler_prefix.clone()
        };
        r = r.route(
            &path,
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "{}",
                )
            }),
        );
    }
    if node.cfg().prometheus.enabled {
        let path = if node.cfg().prometheus.handler_prefix.is_empty() {
            "/metrics".to_string()
        } else {
            node.cfg().prometheus.handler_prefix.clone()
        };
        let n = node.clone();
        r = r.route(
            &path,
            get(move || {
                let body = crate::metrics::render(&n);
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        body,
                    )
                }
            }),
        );
    }
    if !node.cfg().http_api.disabled {
        r = r.merge(api_routes(node));
    }
    r
}

/// The main router (and, without an internal port, the service routes too).
pub fn routers(node: &Arc<Node>) -> (Router, Option<Router>) {
    let mut main: Router = Router::new();
    if !node.cfg().websocket.disabled {
        let ws: Router = Router::new()
            .route(
                &node.cfg().websocket.handler_prefix,
                any(crate::transport::ws::handler),
            )
            .with_state(node.clone());
        main = main.merge(ws);
    }
    main = main.merge(stream_routes(node));
    let internal_split = !node.cfg().http_server.internal_port.is_empty();
    if internal_split {
        let mut internal = service_routes(node);
        if node.cfg().http_api.external && !node.cfg().http_api.disabled {
            main = main.merge(api_routes(node));
            internal = Router::new();
            if node.cfg().health.enabled {
                internal = service_routes(node);
            }
        }
        (main, Some(internal))
    } else {
        (main.merge(service_routes(node)), None)
    }
}

/// The emulation and unidirectional endpoints that are enabled.
fn stream_routes(node: &Arc<Node>) -> Router {
    use crate::transport::{emulation, stream, ws};
    let c = node.cfg();
    let mut r: Router<Arc<Node>> = Router::new();
    if c.http_stream.enabled {
        r = r.route(&c.http_stream.path("http_stream"), any(stream::http_stream));
    }
    if c.sse.enabled {
        r = r.route(&c.sse.path("sse"), any(stream::sse));
    }
    if c.http_stream.enabled || c.sse.enabled {
        let path = if c.emulation.handler_prefix.is_empty() {
            "/emulation".to_string()
        } else {
            c.emulation.handler_prefix.clone()
        };
        r = r.route(&path, any(emulation::handler));
    }
    if c.uni_http_stream.enabled {
        r = r.route(
            &c.uni_http_stream.path("uni_http_stream"),
            any(stream::uni_http_stream),
        );
    }
    if c.uni_sse.enabled {
        r = r.route(&c.uni_sse.path("uni_sse"), any(stream::uni_sse));
    }
    if c.uni_websocket.enabled {
        let path = if c.uni_websocket.handler_prefix.is_empty() {
            "/connection/uni_websocket".to_string()
        } else {
            c.uni_websocket.handler_prefix.clone()
        };
        r = r.route(&path, any(ws::uni_handler));
    }
    r.with_state(node.clone())
}

fn bind_addr(address: &str, port: u16) -> String {
    let host = if address.is_empty() {
        "127.0.0.1"
    } else {
        address
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Binds a listener with the kernel's full accept backlog
/// (`net.core.somaxconn`), as Go's net.Listen does for Centrifugo: tokio's
/// default of 1,024 drops connects during reconnect storms, and each drop
/// costs the client a 1 s SYN retry.
async fn listen(addr: &str) -> std::io::Result<TcpListener> {
    let backlog = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1024)
        .max(128);
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(backlog)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("address resolved to nothing")))
}

/// Binds and starts serving.
pub async fn start(cfg: Config) -> anyhow::Result<Server> {
    let node = Node::start(cfg).await?;
    let c = node.cfg().clone();
    let main_addr = bind_addr(&c.http_server.address, c.http_server.port);
    let listener = listen(&main_addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {main_addr} (http_server.address/http_server.port): {e}")
    })?;
    let addr = listener.local_addr()?;
    let (main, internal) = routers(&node);
    let limits = http_limits(&c);
    let http_tracker = tokio_util::task::TaskTracker::new();
    let mut tasks = Vec::new();
    let mut internal_addr = None;
    if let Some(internal) = internal {
        let port: u16 = c.http_server.internal_port.parse().map_err(|_| {
            anyhow::anyhow!("invalid config key `http_server.internal_port`: not a port number")
        })?;
        let iaddr = bind_addr(
            if c.http_server.internal_address.is_empty() {
                &c.http_server.address
            } else {
                &c.http_server.internal_address
            },
            port,
        );
        let il = listen(&iaddr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {iaddr} (http_server.internal_port): {e}")
        })?;
        internal_addr = Some(il.local_addr()?);
        tasks.push(tokio::spawn(crate::transport::http::serve(
            il,
            internal,
            limits.clone(),
            node.clone(),
            http_tracker.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::transport::http::serve(
        listener,
        main,
        limits,
        node.clone(),
        http_tracker.clone(),
    )));
    Ok(Server {
        addr,
        internal_addr,
        node,
        tasks,
        http_tracker,
    })
}

impl Server {
    /// Address of the API (internal port if set).
    pub fn api_addr(&self) -> SocketAddr {
        if self.node.cfg().http_api.external {
            self.addr
        } else {
            self.internal_addr.unwrap_or(self.addr)
        }
    }

    /// Graceful shutdown, in order, within `shutdown.timeout`: listeners
    /// stop accepting and clients get 3001; in-flight API requests finish;
    /// then background loops stop.
    pub async fn shutdown(self) {
        let timeout = self.node.cfg().shutdown.timeout.0;
        self.http_tracker.close();
        let http = async {
            for t in self.tasks {
                let _ = t.await; // accept loops end at once on the shutdown signal
            }
            self.http_tracker.wait().await;
        };
        if !self.node.lifecycle().shutdown_in_order(timeout, http).await {
            tracing::warn!("shutdown timeout reached; exiting with work in flight");
        }
    }
}
