//! The scenarios and what they share: validated targets, the token minter
//! and a dialer.

pub(crate) mod block;
pub(crate) mod connect;
pub(crate) mod fanout;
pub(crate) mod fleet;
pub(crate) mod idle;
pub(crate) mod preload;

use crate::api::Api;
use crate::cli::Common;
use crate::client::Dialer;
use crate::report::Report;
use crate::target::Target;
use crate::token::Minter;
use anyhow::Result;
use std::sync::Arc;

/// Everything a scenario needs from the shared options.
pub(crate) struct Ctx {
    /// The shared options as given.
    pub(crate) common: Common,
    /// The WebSocket endpoints (one per node; connections are spread over them).
    pub(crate) ws: Vec<Target>,
    /// The HTTP API prefix.
    pub(crate) api_target: Target,
    /// Token signer.
    pub(crate) minter: Arc<Minter>,
}

impl Ctx {
    /// Validates the targets (loopback only) and loads the signing key.
    pub(crate) fn new(common: Common) -> Result<Ctx> {
        let ws = crate::target::parse_list(&common.url, &["ws"])?;
        let api_target = Target::parse(&common.api_url, &["http"])?;
        let minter = Arc::new(Minter::new(&common.secret, common.rsa_key.as_deref())?);
        Ok(Ctx {
            common,
            ws,
            api_target,
            minter,
        })
    }

    /// A dialer with the given read buffer size.
    pub(crate) fn dialer(&self, read_buffer: usize) -> Arc<Dialer> {
        Arc::new(
            Dialer::new(&self.ws, self.common.source_ips, read_buffer)
                .with_protobuf_every(self.common.protobuf_every),
        )
    }

    /// An HTTP API client.
    pub(crate) fn api(&self) -> Result<Api> {
        Api::new(&self.api_target, &self.common.api_key)
    }

    /// Opening concurrency.
    pub(crate) fn concurrency(&self) -> usize {
        self.common.concurrency as usize
    }

    /// Adds the settings every report carries.
    pub(crate) fn describe(&self, r: &mut Report) {
        r.str("url", &self.common.url);
        r.int("nodes", self.ws.len() as u64);
        r.str("jwt_alg", self.minter.algorithm());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get() as u64);
        r.int("cores", cores);
        r.int("source_ips", u64::from(self.common.source_ips));
        r.int("open_concurrency", self.common.concurrency);
        if let Some(pid) = self.common.server_pid {
            r.int("server_pid", u64::from(pid));
        }
    }
}
