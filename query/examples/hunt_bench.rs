//! Retro-hunt throughput against the bare scan of the same rows, in the same run.
//!
//! ```text
//! cargo run --release -p lanner-query --example hunt_bench -- \
//!     --archive /var/tmp/lanner-bench-archive --rules rules/falco_rules.yaml \
//!     --since 2026-01-01T10:00:00Z --until 2026-01-01T12:00:00Z --reps 3
//! ```
//!
//! Each round runs, in alternating order, (a) the scan alone: the hunt's query (the
//! window, the rules' event types, every stored column) streamed and counted, and (b)
//! the whole hunt: the same scan, the rows turned back into events, judged by the
//! detector's engine. Prints the median of each, their ratio, and where the hunt's time
//! went.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use lanner_query::archive::{Archive, ArchiveArgs};
use lanner_query::engine::Engine;
use lanner_query::guard::Limits;
use lanner_query::hunt::{self, Hunt, HuntReport, Window};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    archive: ArchiveArgs,
    /// Rule files.
    #[arg(long, value_delimiter = ',', required = true)]
    rules: Vec<PathBuf>,
    /// Window start (RFC 3339).
    #[arg(long)]
    since: String,
    /// Window end (RFC 3339).
    #[arg(long)]
    until: String,
    /// Rounds (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let window = Window::parse(&args.since, &args.until, chrono::Utc::now())?;
    let (rules, _) =
        lanner_engine::rules::load_files(&args.rules, lanner_engine::DEFAULT_APPEND_OUTPUT)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let archive = Archive::open(&args.archive.archive, &args.archive.s3)?;
    let limits = Limits {
        memory_bytes: 2 << 30,
        timeout: Duration::ZERO,
        max_rows: 0,
        ..Limits::default()
    };
    let engine = Engine::new(&archive, limits).await.context("session")?;
    let h = Hunt {
        rules: &rules,
        matching: lanner_engine::rules::Matching::First,
        window,
    };
    let ctx = hunt::unlimited_rows(&engine);
    let (mut scans, mut hunts) = (Vec::new(), Vec::new());
    let mut rows = 0u64;
    let mut last = HuntReport::default();
    for round in 0..args.reps {
        for step in 0..2 {
            if (round + step) % 2 == 0 {
                let t = Instant::now();
                let mut stream = hunt::window_frame(&ctx, &h).await?.execute_stream().await?;
                rows = 0;
                while let Some(b) = stream.next().await {
                    rows += b?.num_rows() as u64;
                }
                scans.push(t.elapsed());
            } else {
                let t = Instant::now();
                last = hunt::run(&engine, h).await?;
                hunts.push(t.elapsed());
            }
        }
    }
    anyhow::ensure!(
        rows == last.events,
        "the scan read {rows} rows, the hunt {}",
        last.events
    );
    let (scan, whole) = (median(scans), median(hunts));
    let rate = |d: Duration| rows as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "window {} .. {}: {} events of {} types, {} rules, {} alerts",
        window.since.to_rfc3339(),
        window.until.to_rfc3339(),
        rows,
        last.types.as_ref().map_or(0, Vec::len),
        rules.rules().len(),
        last.alerts.len()
    );
    println!(
        "scan alone:  {:>8.0} ms  {:>10.0} events/s",
        scan.as_secs_f64() * 1e3,
        rate(scan)
    );
    println!(
        "whole hunt:  {:>8.0} ms  {:>10.0} events/s",
        whole.as_secs_f64() * 1e3,
        rate(whole)
    );
    println!(
        "ratio hunt/scan: {:.2}",
        whole.as_secs_f64() / scan.as_secs_f64().max(1e-9)
    );
    println!(
        "last hunt: reading {:.0} ms, events from Arrow {:.0} ms, judging {:.0} ms ({:.0} events/s judged)",
        last.elapsed
            .saturating_sub(last.convert + last.judge)
            .as_secs_f64()
            * 1e3,
        last.convert.as_secs_f64() * 1e3,
        last.judge.as_secs_f64() * 1e3,
        rows as f64 / last.judge.as_secs_f64().max(1e-9)
    );
    Ok(())
}

/// The allocator lanner-query's binary uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
