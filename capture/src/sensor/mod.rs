//! Live capture with eBPF (issue #3): not built yet.

use anyhow::{Result, bail};

/// Runs the live sensor until SIGTERM.
pub async fn run(_cli: &crate::Cli, _node: &str) -> Result<()> {
    bail!("live capture is not built yet: only --replay FILE works in this version")
}
