//! `lanner-archiver`: consumes `lanner.events.>` and `lanner.alerts.>` through durable
//! consumers shared by every replica and keeps each event and alert exactly once as
//! Parquet on a local directory or S3 (see the library docs); `compact` and `retain`
//! maintain the archive.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lanner_archiver::archive::Archive;
use lanner_archiver::cli::{Cli, Command, RunArgs, parse_tables};
use lanner_archiver::compact::{CompactOptions, compact_table};
use lanner_archiver::metrics::{SinkStats, Stats, serve};
use lanner_archiver::retention::apply_retention;
use lanner_archiver::sink::run_sink;
use lanner_archiver::tables::Table;
use lanner_contract::bus::ensure_streams;
use lanner_contract::bus::shutdown::Shutdown;

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// mimalloc: every stage allocates and frees many small shared strings per batch;
/// it costs less per allocation than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lanner_contract::allocator::keep_freed_memory();
    lanner_contract::logging::init();
    let cli: Cli = lanner_contract::config::parse();
    match cli.command {
        None => run(cli.run).await,
        Some(Command::Run(args)) => run(args).await,
        Some(Command::Compact(args)) => {
            let archive = Archive::open(&args.archive.archive, &args.archive.s3)?;
            for table in parse_tables(&args.tables)? {
                let r = compact_table(&archive, table, &args.options(), now_nanos()).await?;
                println!(
                    "{}: {} partitions, {} files merged into {}, {} rows, {} leftovers deleted",
                    table.name(),
                    r.partitions,
                    r.files_in,
                    r.files_out,
                    r.rows,
                    r.rolled_forward
                );
            }
            Ok(())
        }
        Some(Command::Retain(args)) => {
            let archive = Archive::open(&args.archive.archive, &args.archive.s3)?;
            let age = Duration::from_secs(args.max_age_hours.saturating_mul(3600));
            for table in parse_tables(&args.tables)? {
                let r = apply_retention(&archive, table, age, now_nanos()).await?;
                println!(
                    "{}: {} partitions, {} objects deleted",
                    table.name(),
                    r.partitions,
                    r.objects
                );
            }
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let tables = args.tables()?;
    let archive = Archive::open(&args.archive.archive, &args.archive.s3)?;
    let client = args.nats.connect("lanner-archiver").await?;
    let js = async_nats::jetstream::new(client);
    ensure_streams(&js, &args.streams).await?;
    let shutdown = Shutdown::on_signals();
    // Keep one watcher of the flag alive for the whole run: the flag is a watch channel
    // whose update is dropped when nobody watches at the moment the signal arrives.
    tokio::spawn({
        let s = shutdown.clone();
        async move { s.wait().await }
    });
    let mut stats = Stats::default();
    let mut tasks = tokio::task::JoinSet::new();
    for table in &tables {
        let s = Arc::new(SinkStats::default());
        stats.tables.push((table.name(), Arc::clone(&s)));
        tasks.spawn(run_sink(
            js.clone(),
            archive.clone(),
            args.sink_config(*table),
            shutdown.clone(),
            s,
        ));
    }
    if !args.metrics_addr.is_empty() {
        // Like the detector: a replica that finds the port taken (another replica on
        // this host has it) archives on without serving metrics.
        match tokio::net::TcpListener::bind(&args.metrics_addr).await {
            Ok(listener) => {
                tracing::info!(addr = %args.metrics_addr, "serving /metrics and /healthz");
                tokio::spawn(serve(listener, Arc::new(stats)));
            }
            Err(e) => {
                tracing::warn!(addr = %args.metrics_addr, error = %e, "cannot serve /metrics and /healthz; archiving without them");
            }
        }
    }
    if args.compact_every_secs > 0 || args.retention_hours > 0 {
        tokio::spawn(maintain(archive.clone(), tables.clone(), args.clone()));
    }
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        let r = r.context("sink task panicked").and_then(|r| r);
        if let Err(e) = r {
            tracing::error!(error = format!("{e:#}"), "sink stopped");
            shutdown.trigger();
            result = Err(e);
        }
    }
    result
}

async fn maintain(archive: Archive, tables: Vec<Table>, args: RunArgs) {
    let every = Duration::from_secs(match (args.compact_every_secs, args.retention_hours) {
        (0, _) => 3600,
        (c, 0) => c,
        (c, _) => c.min(3600),
    });
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        for &table in &tables {
            if args.compact_every_secs > 0 {
                let opts = CompactOptions {
                    write: args.write.options(),
                    ..Default::default()
                };
                if let Err(e) = compact_table(&archive, table, &opts, now_nanos()).await {
                    tracing::warn!(
                        table = table.name(),
                        error = format!("{e:#}"),
                        "compaction failed"
                    );
                }
            }
            if args.retention_hours > 0 {
                let age = Duration::from_secs(args.retention_hours.saturating_mul(3600));
                if let Err(e) = apply_retention(&archive, table, age, now_nanos()).await {
                    tracing::warn!(
                        table = table.name(),
                        error = format!("{e:#}"),
                        "retention failed"
                    );
                }
            }
        }
    }
}
