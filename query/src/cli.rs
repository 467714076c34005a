//! Command-line flags (each with a `LANNER_*` environment override) and the commands:
//! `serve` (the default: the HTTP API and the Postgres server), `sql` (one query,
//! printed) and `hunt` (rules over the archive, printing the alerts they would have
//! raised).

use std::path::PathBuf;
use std::time::Duration;

use crate::archive::ArchiveArgs;
use crate::format::Format;
use crate::guard::Limits;

/// `lanner-query`: SQL over lanner's Parquet archive.
#[derive(Debug, clap::Parser)]
#[command(name = "lanner-query", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve` when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The commands.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Command {
    /// Serve SQL over HTTP and the Postgres wire protocol (the default).
    Serve(ServeArgs),
    /// Run one query and print its result.
    Sql(SqlArgs),
    /// Retro-hunt: run Falco rules over the archived events of a time window and print
    /// the alerts they would have raised (Falco's JSON, one per line).
    Hunt(HuntArgs),
}

/// Limits every query runs under.
#[derive(Clone, Debug, clap::Args)]
pub struct LimitArgs {
    /// Memory all running queries may use together, in MiB (0: unbounded).
    #[arg(
        long = "memory-mib",
        env = "LANNER_QUERY_MEMORY_MIB",
        default_value_t = 2048
    )]
    pub memory_mib: usize,
    /// Longest a query may run, in seconds (0: no limit).
    #[arg(long = "timeout", env = "LANNER_QUERY_TIMEOUT", default_value_t = 60)]
    pub timeout_secs: u64,
    /// Most rows a query may return (0: no limit).
    #[arg(
        long = "max-rows",
        env = "LANNER_QUERY_MAX_ROWS",
        default_value_t = 1_000_000
    )]
    pub max_rows: usize,
    /// Parquet metadata (footers and page indexes) kept in memory between queries, in
    /// MiB: a query over files whose metadata is not kept reads and parses it again.
    #[arg(
        long = "metadata-cache-mib",
        env = "LANNER_QUERY_METADATA_CACHE_MIB",
        default_value_t = 256
    )]
    pub metadata_cache_mib: usize,
}

impl LimitArgs {
    /// The limits.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_mib.saturating_mul(1 << 20),
            timeout: Duration::from_secs(self.timeout_secs),
            max_rows: self.max_rows,
            metadata_cache_bytes: self.metadata_cache_mib.saturating_mul(1 << 20),
        }
    }
}

/// Flags of `serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// Archive location.
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Query limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Address of the HTTP API, `/metrics` and `/healthz` (empty: off).
    #[arg(
        long = "http",
        env = "LANNER_QUERY_HTTP",
        default_value = "127.0.0.1:9470"
    )]
    pub http: String,
    /// Bearer token `POST /v1/query` requires (empty: none).
    #[arg(
        long = "http-token",
        env = "LANNER_QUERY_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,
    /// Address of the Postgres wire protocol server (empty: off).
    #[arg(long = "pg", env = "LANNER_QUERY_PG", default_value = "127.0.0.1:5433")]
    pub pg: String,
    /// User name Postgres clients log in with (checked when --pg-password is set).
    #[arg(
        long = "pg-user",
        env = "LANNER_QUERY_PG_USER",
        default_value = "lanner"
    )]
    pub pg_user: String,
    /// Password Postgres clients must give (empty: no authentication).
    #[arg(
        long = "pg-password",
        env = "LANNER_QUERY_PG_PASSWORD",
        hide_env_values = true
    )]
    pub pg_password: Option<String>,
    /// TLS certificate (PEM) for the Postgres server.
    #[arg(
        long = "pg-tls-cert",
        env = "LANNER_QUERY_PG_TLS_CERT",
        requires = "pg_tls_key"
    )]
    pub pg_tls_cert: Option<String>,
    /// TLS private key (PEM, PKCS#8) for the Postgres server.
    #[arg(
        long = "pg-tls-key",
        env = "LANNER_QUERY_PG_TLS_KEY",
        requires = "pg_tls_cert"
    )]
    pub pg_tls_key: Option<String>,
}

/// Flags of `sql`.
#[derive(Clone, Debug, clap::Args)]
pub struct SqlArgs {
    /// The query.
    pub sql: String,
    /// Archive location.
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Query limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Output format (parquet and arrow need --output).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the result to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// How `hunt` prints alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HuntFormat {
    /// Falco's JSON output, one alert per line (as the detector's `--output stdout`).
    Json,
    /// Falco's text output: the `output` line of each alert.
    Text,
}

/// Flags of `hunt`.
#[derive(Clone, Debug, clap::Args)]
pub struct HuntArgs {
    /// Rule files (or directories), loaded in order as one ruleset, as the detector's.
    #[arg(
        long = "rules",
        env = "LANNER_HUNT_RULES",
        value_delimiter = ',',
        required = true
    )]
    pub rules: Vec<PathBuf>,
    /// Start of the window: an RFC 3339 time or a duration before now (30m, 2h, 7d).
    #[arg(long)]
    pub since: String,
    /// End of the window (excluded): an RFC 3339 time or a duration before now
    /// (default: now).
    #[arg(long, default_value = "")]
    pub until: String,
    /// Which rules fire when several match one event (the detector's setting).
    #[arg(long, value_enum, default_value = "first")]
    pub rule_matching: lanner_engine::rules::Matching,
    /// Disable rules less severe than this (Falco's `priority` setting).
    #[arg(long, default_value = "debug", value_parser = lanner_engine::rules::Priority::parse_arg)]
    pub min_priority: lanner_engine::rules::Priority,
    /// Appended to every rule output (Falco's `append_output`; the detector's default).
    #[arg(long, default_value = lanner_engine::DEFAULT_APPEND_OUTPUT)]
    pub append_output: String,
    /// Archive location.
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Limits: the timeout bounds the hunt, --max-rows the alerts.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// How alerts are printed.
    #[arg(long, value_enum, default_value = "json")]
    pub format: HuntFormat,
}
