//! Writes synthetic events as JSON lines, or with `--lnrec` as a binary recording in
//! batches of 1024 events: `cargo run --release -p lanner-contract --example gen_events
//! -- COUNT [NODE] [SEED] [--lnrec] > events.jsonl`.

use std::io::{BufWriter, Write};

use lanner_contract::{Event, jsonl, recording, synth::Synth};

fn main() -> std::io::Result<()> {
    let (flags, args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let mut args = args.into_iter();
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let node = args.next().unwrap_or_else(|| "node-a".to_owned());
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut out = BufWriter::new(std::io::stdout().lock());
    let events = Synth::new(seed, &node).take(count);
    if flags.iter().any(|f| f == "--lnrec") {
        let mut w = recording::Writer::new(&mut out)?;
        let mut batch: Vec<Event> = Vec::with_capacity(1024);
        for ev in events {
            batch.push(ev);
            if batch.len() == 1024 {
                w.write_events(&batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            w.write_events(&batch)?;
        }
        w.flush()?;
    } else {
        for ev in events {
            jsonl::write_event(&mut out, &ev)?;
        }
    }
    out.flush()
}
