//! The `gyre` command line: Centrifugo's flags and subcommands (protocol.md
//! §6.5) plus operator verbs that call a running server's protective API.

mod admin;
mod token;

use crate::config::{self, Loaded};
use clap::{Parser, Subcommand};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(
    name = "gyre",
    version,
    about = "Gyre: a Centrifugo v6 compatible real-time messaging server"
)]
pub struct Cli {
    /// Config file (JSON, YAML or TOML). Default: ./config.json if it exists.
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<PathBuf>,
    /// Main port (overrides http_server.port).
    #[arg(short = 'p', long = "http_server.port", global = true)]
    pub port: Option<u16>,
    /// Interface to bind (overrides http_server.address).
    #[arg(short = 'a', long = "http_server.address", global = true)]
    pub address: Option<String>,
    /// Internal port for API and health (overrides http_server.internal_port).
    #[arg(long = "http_server.internal_port", global = true)]
    pub internal_port: Option<String>,
    /// Log level (overrides log.level).
    #[arg(long = "log.level", global = true)]
    pub log_level: Option<String>,
    /// Log file (overrides log.file).
    #[arg(long = "log.file", global = true)]
    pub log_file: Option<String>,
    /// Accept any client (development only; sets client.insecure).
    #[arg(long = "client.insecure", global = true)]
    pub client_insecure: bool,
    /// No API key check (development only; sets http_api.insecure).
    #[arg(long = "http_api.insecure", global = true)]
    pub api_insecure: bool,
    /// Serve /health (sets health.enabled).
    #[arg(long = "health.enabled", global = true)]
    pub health: bool,
    /// Write the process id to this file.
    #[arg(long = "pid_file", global = true)]
    pub pid_file: Option<String>,
    /// Subcommand; none runs the server.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Print the version.
    Version,
    /// Write a new config file with random secrets (refuses to overwrite).
    Genconfig,
    /// Check a config file.
    Checkconfig {
        /// Unknown keys are errors.
        #[arg(long)]
        strict: bool,
    },
    /// Make an HS256 connection token from client.token.hmac_secret_key.
    Gentoken {
        /// User id.
        #[arg(short = 'u', long = "user", default_value = "")]
        user: String,
        /// Lifetime in seconds (-1: no exp).
        #[arg(
            short = 't',
            long = "ttl",
            default_value_t = 604800,
            allow_hyphen_values = true
        )]
        ttl: i64,
        /// Print only the token.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
    },
    /// Verify a connection token against the config.
    Checktoken {
        /// The token.
        token: String,
    },
    /// Make an HS256 subscription token.
    Gensubtoken {
        /// User id.
        #[arg(short = 'u', long = "user", default_value = "")]
        user: String,
        /// Channel.
        #[arg(short = 's', long = "channel")]
        channel: String,
        /// Lifetime in seconds (-1: no exp).
        #[arg(
            short = 't',
            long = "ttl",
            default_value_t = 604800,
            allow_hyphen_values = true
        )]
        ttl: i64,
        /// Print only the token.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
    },
    /// Verify a subscription token against the config.
    Checksubtoken {
        /// The token.
        token: String,
    },
    /// Print the default configuration as JSON.
    Defaultconfig,
    /// Block a user on a running server (server API `block_user`).
    BlockUser(admin::BlockArgs),
    /// Unblock a user on a running server.
    UnblockUser(admin::UserArgs),
    /// Revoke a token by its jti on a running server.
    RevokeToken(admin::RevokeArgs),
    /// Invalidate a user's tokens issued before a time on a running server
    /// (connection tokens; with --channel, that channel's subscription tokens).
    InvalidateUserTokens(admin::InvalidateArgs),
    /// Remove a token revocation on a running server (Gyre extension).
    UnrevokeToken(admin::UnrevokeArgs),
    /// Remove a user's token invalidation on a running server (Gyre extension).
    ClearUserTokensInvalidation(admin::ClearInvalidationArgs),
    /// Show a user's live connections on a running server.
    Connections(admin::UserArgs),
    /// List active blocks on a running server (Gyre extension).
    BlockList(admin::ApiArgs),
}

impl Cli {
    fn flags(&self) -> Vec<(String, Value)> {
        let mut f = Vec::new();
        if let Some(p) = self.port {
            f.push(("http_server.port".into(), Value::from(p)));
        }
        if let Some(a) = &self.address {
            f.push(("http_server.address".into(), Value::from(a.clone())));
        }
        if let Some(p) = &self.internal_port {
            f.push(("http_server.internal_port".into(), Value::from(p.clone())));
        }
        if let Some(l) = &self.log_level {
            f.push(("log.level".into(), Value::from(l.clone())));
        }
        if let Some(l) = &self.log_file {
            f.push(("log.file".into(), Value::from(l.clone())));
        }
        if self.client_insecure {
            f.push(("client.insecure".into(), Value::Bool(true)));
        }
        if self.api_insecure {
            f.push(("http_api.insecure".into(), Value::Bool(true)));
        }
        if self.health {
            f.push(("health.enabled".into(), Value::Bool(true)));
        }
        if let Some(p) = &self.pid_file {
            f.push(("pid_file".into(), Value::from(p.clone())));
        }
        f
    }

    fn config_path(&self) -> Option<PathBuf> {
        match &self.config {
            Some(p) => Some(p.clone()),
            None => Path::new("config.json")
                .exists()
                .then(|| PathBuf::from("config.json")),
        }
    }

    /// Loads the layered configuration.
    pub fn load(&self) -> Result<Loaded, config::ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        config::load(self.config_path().as_deref(), &env, &self.flags())
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("gyre: {msg}");
    ExitCode::FAILURE
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.cmd {
        Some(Cmd::Version) => {
            println!(
                "Gyre v{} (Centrifugo v6 protocol compatible)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some(Cmd::Defaultconfig) => {
            let v = serde_json::to_value(config::Config::default()).expect("defaults serialize");
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            ExitCode::SUCCESS
        }
        Some(Cmd::Genconfig) => token::genconfig(
            cli.config
                .clone()
                .unwrap_or_else(|| PathBuf::from("config.json")),
        ),
        Some(Cmd::Checkconfig { strict }) => {
            let Some(path) = cli.config_path() else {
                return fail("no config file: pass -c FILE");
            };
            match config::load(Some(&path), &[], &[]) {
                Ok(l) => {
                    for w in &l.warnings {
                        eprintln!("warning: {w}");
                    }
                    for u in &l.unknown {
                        eprintln!(
                            "{}: unknown config key {u}",
                            if *strict { "error" } else { "warning" }
                        );
                    }
                    if *strict && !l.unknown.is_empty() {
                        return ExitCode::FAILURE;
                    }
                    println!("config {} is valid", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Some(
            cmd @ (Cmd::Gentoken { .. }
            | Cmd::Checktoken { .. }
            | Cmd::Gensubtoken { .. }
            | Cmd::Checksubtoken { .. }),
        ) => match cli.load() {
            Ok(l) => token::run(cmd, &l.config),
            Err(e) => fail(e),
        },
        Some(
            cmd @ (Cmd::BlockUser(_)
            | Cmd::UnblockUser(_)
            | Cmd::RevokeToken(_)
            | Cmd::InvalidateUserTokens(_)
            | Cmd::UnrevokeToken(_)
            | Cmd::ClearUserTokensInvalidation(_)
            | Cmd::Connections(_)
            | Cmd::BlockList(_)),
        ) => {
            let cfg = match cli.load() {
                Ok(l) => l.config,
                Err(e) => return fail(e),
            };
            admin::run(cmd, &cfg)
        }
        None => serve(&cli),
    }
}

fn init_logging(level: &str, file: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let directive = match level {
        "none" => "off",
        "fatal" => "error",
        l => l,
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("gyre={directive},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if file.is_empty() {
        // Colours only on a terminal: logs piped to a file or journal stay plain text.
        use std::io::IsTerminal;
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init();
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(|e| anyhow::anyhow!("cannot open log.file {file}: {e}"))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init();
    }
    Ok(())
}

fn serve(cli: &Cli) -> ExitCode {
    let loaded = match cli.load() {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let cfg = loaded.config;
    if let Err(e) = init_logging(&cfg.log.level, &cfg.log.file) {
        return fail(e);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    for u in &loaded.unknown {
        tracing::warn!(key = %u, "unknown config key");
    }
    if !cfg.pid_file.is_empty()
        && let Err(e) = std::fs::write(&cfg.pid_file, std::process::id().to_string())
    {
        return fail(format!("cannot write pid_file {}: {e}", cfg.pid_file));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async move {
        let server = match crate::app::start(cfg).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        tracing::info!(addr = %server.addr, api = %server.api_addr(), version = crate::node::VERSION, "gyre started");
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
