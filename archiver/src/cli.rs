//! Command-line flags (each with a `LANNER_*` environment override) and the commands:
//! `run` (the default: archive from the bus), `compact` and `retain`.

use std::time::Duration;

use lanner_contract::bus::{NatsArgs, StreamSettings};

use crate::compact::CompactOptions;
use crate::parquet_file::WriteOptions;
use crate::sink::{RollLimits, SinkConfig};
use crate::tables::Table;

/// `lanner-archiver`: every event and alert, exactly once, as Parquet on object storage.
#[derive(Debug, clap::Parser)]
#[command(
    name = "lanner-archiver",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run` when no command is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The commands.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Command {
    /// Archive events and alerts from the bus (the default).
    Run(RunArgs),
    /// Merge small files of partitions older than --min-age.
    Compact(CompactArgs),
    /// Delete partitions older than --max-age-hours.
    Retain(RetainArgs),
}

pub use lanner_contract::archive_args::ArchiveArgs;

/// Parquet writer flags.
#[derive(Clone, Debug, clap::Args)]
pub struct WriteArgs {
    /// zstd compression level.
    #[arg(
        long = "zstd-level",
        env = "LANNER_ARCHIVER_ZSTD_LEVEL",
        default_value_t = 3
    )]
    pub zstd_level: i32,
    /// Most rows per row group.
    #[arg(long = "row-group-rows", env = "LANNER_ARCHIVER_ROW_GROUP_ROWS", default_value_t = 256 * 1024)]
    pub row_group_rows: usize,
}

impl WriteArgs {
    /// The writer options.
    pub fn options(&self) -> WriteOptions {
        WriteOptions {
            zstd_level: self.zstd_level,
            row_group_rows: self.row_group_rows.max(1),
            ..Default::default()
        }
    }
}

/// Flags of `run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Stream settings (streams are created or updated at start).
    #[command(flatten)]
    pub streams: StreamSettings,
    /// Archive location.
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Parquet writer.
    #[command(flatten)]
    pub write: WriteArgs,
    /// Tables to archive, comma-separated.
    #[arg(
        long,
        env = "LANNER_ARCHIVER_TABLES",
        default_value = "events,alerts",
        value_delimiter = ','
    )]
    pub tables: Vec<String>,
    /// Subject filter of the events consumer.
    #[arg(
        long = "events-subject",
        env = "LANNER_ARCHIVER_EVENTS_SUBJECT",
        default_value = "lanner.events.>"
    )]
    pub events_subject: String,
    /// Subject filter of the alerts consumer.
    #[arg(
        long = "alerts-subject",
        env = "LANNER_ARCHIVER_ALERTS_SUBJECT",
        default_value = "lanner.alerts.>"
    )]
    pub alerts_subject: String,
    /// Crash test hook: abort the process right after writing this many files, before
    /// acking their messages (as a crash at the worst moment would).
    #[arg(
        long = "abort-after-files",
        env = "LANNER_ARCHIVER_ABORT_AFTER_FILES",
        hide = true
    )]
    pub abort_after_files: Option<u64>,
    /// Prefix of the durable consumer names (`<prefix>-events`, `<prefix>-alerts`),
    /// shared by every replica.
    #[arg(
        long,
        env = "LANNER_ARCHIVER_DURABLE",
        default_value = "lanner-archiver"
    )]
    pub durable: String,
    /// Seconds JetStream waits for an ack (held messages get in-progress acks meanwhile).
    #[arg(
        long = "ack-wait",
        env = "LANNER_ARCHIVER_ACK_WAIT",
        default_value_t = 120
    )]
    pub ack_wait_secs: u64,
    /// Most unacked messages per consumer.
    #[arg(
        long = "max-ack-pending",
        env = "LANNER_ARCHIVER_MAX_ACK_PENDING",
        default_value_t = 50_000
    )]
    pub max_ack_pending: i64,
    /// Messages per pull request.
    #[arg(
        long = "pull-batch",
        env = "LANNER_ARCHIVER_PULL_BATCH",
        default_value_t = 256
    )]
    pub pull_batch: usize,
    /// Files encoded and written at the same time, beside consuming.
    #[arg(
        long = "concurrent-writes",
        env = "LANNER_ARCHIVER_CONCURRENT_WRITES",
        default_value_t = 2
    )]
    pub concurrent_writes: usize,
    /// Roll a file at this many rows.
    #[arg(
        long = "roll-rows",
        env = "LANNER_ARCHIVER_ROLL_ROWS",
        default_value_t = 1_000_000
    )]
    pub roll_rows: usize,
    /// Roll a file when its buffered rows take this many MiB in memory.
    #[arg(
        long = "roll-mib",
        env = "LANNER_ARCHIVER_ROLL_MIB",
        default_value_t = 512
    )]
    pub roll_mib: usize,
    /// Roll a file this many seconds after its first row arrived.
    #[arg(
        long = "roll-secs",
        env = "LANNER_ARCHIVER_ROLL_SECS",
        default_value_t = 60
    )]
    pub roll_secs: u64,
    /// Address of `/metrics` and `/healthz` (empty: off).
    #[arg(
        long = "metrics-addr",
        env = "LANNER_ARCHIVER_METRICS_ADDR",
        default_value = "127.0.0.1:9466"
    )]
    pub metrics_addr: String,
    /// Run compaction every this many seconds (0: never; run it on one replica only).
    #[arg(
        long = "compact-every",
        env = "LANNER_ARCHIVER_COMPACT_EVERY",
        default_value_t = 0
    )]
    pub compact_every_secs: u64,
    /// Delete partitions older than this many hours, checked hourly (0: keep forever).
    #[arg(
        long = "retention-hours",
        env = "LANNER_ARCHIVER_RETENTION_HOURS",
        default_value_t = 0
    )]
    pub retention_hours: u64,
}

impl RunArgs {
    /// The tables to archive.
    pub fn tables(&self) -> anyhow::Result<Vec<Table>> {
        self.tables
            .iter()
            .map(|t| {
                Table::parse(t.trim())
                    .ok_or_else(|| anyhow::anyhow!("unknown table {t:?} (events, alerts)"))
            })
            .collect()
    }

    /// The sink configuration of `table`.
    pub fn sink_config(&self, table: Table) -> SinkConfig {
        let mut c = SinkConfig::new(table, &self.durable);
        c.ack_wait = Duration::from_secs(self.ack_wait_secs.max(3));
        c.max_ack_pending = self.max_ack_pending.max(16);
        c.pull_batch = self.pull_batch.max(1);
        c.roll = RollLimits {
            max_rows: self.roll_rows.max(1),
            max_bytes: self.roll_mib.max(1) << 20,
            max_age: Duration::from_secs(self.roll_secs),
        };
        c.write = self.write.options();
        c.concurrent_writes = self.concurrent_writes.max(1);
        c.filter_subject = match table {
            Table::Events => self.events_subject.clone(),
            Table::Alerts => self.alerts_subject.clone(),
        };
        c.abort_after_files = self.abort_after_files;
        c
    }
}

/// Flags of `compact`.
#[derive(Clone, Debug, clap::Args)]
pub struct CompactArgs {
    /// Archive location.
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Parquet writer.
    #[command(flatten)]
    pub write: WriteArgs,
    /// Tables, comma-separated.
    #[arg(long, default_value = "events,alerts", value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Only partitions whose hour ended this many seconds ago.
    #[arg(long = "min-age", default_value_t = 3600)]
    pub min_age_secs: u64,
    /// Merge files smaller than this many MiB.
    #[arg(long = "small-mib", default_value_t = 16)]
    pub small_mib: u64,
    /// Merge at most this many MiB into one file.
    #[arg(long = "target-mib", default_value_t = 128)]
    pub target_mib: u64,
}

impl CompactArgs {
    /// The compaction options.
    pub fn options(&self) -> CompactOptions {
        CompactOptions {
            min_age: Duration::from_secs(self.min_age_secs),
            small_bytes: self.small_mib << 20,
            target_bytes: self.target_mib.max(1) << 20,
            write: self.write.options(),
        }
    }
}

/// Flags of `retain`.
#[derive(Clone, Debug, clap::Args)]
pub struct RetainArgs {
    /// Archive location.
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Tables, comma-separated.
    #[arg(long, default_value = "events,alerts", value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Delete partitions whose hour ended more than this many hours ago.
    #[arg(long = "max-age-hours")]
    pub max_age_hours: u64,
}

/// Parses table names.
pub fn parse_tables(names: &[String]) -> anyhow::Result<Vec<Table>> {
    names
        .iter()
        .map(|t| {
            Table::parse(t.trim())
                .ok_or_else(|| anyhow::anyhow!("unknown table {t:?} (events, alerts)"))
        })
        .collect()
}
