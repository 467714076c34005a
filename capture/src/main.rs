//! `lanner-capture`: records what every process on this node does and publishes it to
//! `lanner.raw.<node>`; or replays a JSON-lines file or a binary recording
//! (`--replay FILE`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use lanner_contract::bus::{NatsArgs, StreamSettings};

mod node;
mod replay;
mod sensor;

/// Command-line flags; every flag has a `LANNER_*` environment override.
#[derive(Debug, Parser)]
#[command(
    name = "lanner-capture",
    version,
    about = "lanner's eBPF sensor: one per node"
)]
pub struct Cli {
    /// Replay a JSON-lines event file or a binary recording (`*.lnrec`, detected by its
    /// magic; `-` for stdin) to lanner.raw.<node>, then exit.
    #[arg(long, env = "LANNER_REPLAY", value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Node name (the subject token in lanner.raw.<node>); defaults to the host name.
    #[arg(long, env = "LANNER_NODE")]
    node: Option<String>,
    /// Print events as JSON lines on stdout instead of publishing them.
    #[arg(long, env = "LANNER_STDOUT")]
    stdout: bool,
    /// Also record events to FILE, replayable with --replay: a binary recording (batches
    /// as on the bus, ~10x smaller) when FILE ends in `.lnrec`, else JSON lines.
    #[arg(long, env = "LANNER_RECORD", value_name = "FILE")]
    record: Option<PathBuf>,
    /// Events per published batch.
    #[arg(long, env = "LANNER_BATCH_EVENTS", default_value_t = 1024)]
    batch_events: usize,
    /// Bytes per published batch (encoded).
    #[arg(long, env = "LANNER_BATCH_BYTES", default_value_t = 512 * 1024)]
    batch_bytes: usize,
    /// Batches awaiting JetStream's ack at once.
    #[arg(long, env = "LANNER_MAX_IN_FLIGHT", default_value_t = 64)]
    max_in_flight: usize,
    /// Fail (exit 3) when a replayed line is malformed instead of skipping it.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    streams: StreamSettings,
    #[command(flatten)]
    sensor: sensor::SensorArgs,
}

/// mimalloc: every stage allocates and frees many small shared strings per batch;
/// it costs less per allocation than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    lanner_contract::allocator::keep_freed_memory();
    let cli: Cli = lanner_contract::config::parse();
    lanner_contract::logging::init();
    let node = cli.node.clone().unwrap_or_else(node::hostname);
    match &cli.replay {
        Some(path) => {
            let summary = replay::run(&cli, &node, path).await?;
            eprintln!("{summary}");
            if cli.strict && summary.malformed > 0 {
                std::process::exit(3);
            }
            Ok(())
        }
        None => sensor::run(&cli, &node).await,
    }
}
