//! `lanner-enricher`: adds container and Kubernetes context to raw events
//! (`lanner.raw.<node>` → `lanner.events.<node>`); see the library docs.

use std::sync::Arc;

use lanner_contract::bus::shutdown::Shutdown;
use lanner_enricher::run::{Args, run};

/// mimalloc: every stage allocates and frees many small shared strings per batch;
/// it costs less per allocation than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lanner_contract::allocator::keep_freed_memory();
    lanner_contract::logging::init();
    let args: Args = lanner_contract::config::parse();
    run(args, Shutdown::on_signals(), Arc::default()).await?;
    Ok(())
}
