//! Writes synthetic events as JSON lines: `cargo run --release -p lanner-contract
//! --example gen_events -- COUNT [NODE] [SEED] > events.jsonl`.

use std::io::{BufWriter, Write};

use lanner_contract::{jsonl, synth::Synth};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let node = args.next().unwrap_or_else(|| "node-a".to_owned());
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for ev in Synth::new(seed, &node).take(count) {
        jsonl::write_event(&mut out, &ev)?;
    }
    out.flush()
}
