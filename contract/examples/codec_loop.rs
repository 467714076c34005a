//! Encodes, decodes, checks or parses (from JSON lines) a batch of synthetic events in a
//! loop, for profilers:
//! `cargo run --release -p lanner-contract --example codec_loop -- [encode|decode|check|json|replay] ITER`
//! (`replay`: what a JSON-lines replay does per batch: parse in place, share, encode).

use lanner_contract::synth::Synth;
use lanner_contract::{Event, codec, jsonl};

/// mimalloc: the stages allocate and frees many small shared strings per batch;
/// it costs less per allocation than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    lanner_contract::allocator::keep_freed_memory();
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "decode".to_owned());
    let iters: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let events: Vec<Event> = Synth::new(1, "node-a").take(1024).collect();
    let bytes = codec::encode_batch(&events);
    let lines: Vec<String> = events.iter().map(jsonl::to_line).collect();
    let mut total = 0usize;
    let mut buf = Vec::new();
    let mut replayed: Vec<Event> = Vec::new();
    let mut parser = jsonl::LineParser::sharing();
    let pool = std::sync::Arc::new(lanner_contract::batch_pool::BatchPool::new(2));
    for _ in 0..iters {
        if what == "json" {
            total += lines
                .iter()
                .filter(|l| jsonl::parse_line(l).is_ok())
                .count();
        } else if what == "replay" {
            parser.clear();
            replayed.clear();
            for line in &lines {
                replayed.push(Event::default());
                if let Some(ev) = replayed.last_mut() {
                    let _ = parser.parse_into(line, ev);
                }
            }
            buf.clear();
            codec::encode_batch_into(&replayed, &mut buf);
            total += buf.len();
        } else if what == "check" {
            total += codec::check_batch(&bytes).unwrap_or(0);
        } else if what == "encode" {
            buf.clear();
            codec::encode_batch_into(&events, &mut buf);
            total += buf.len();
        } else if what == "pooled" {
            total += pool.decode(&bytes, None).map(|v| v.len()).unwrap_or(0);
        } else {
            total += codec::decode_batch(&bytes).map(|v| v.len()).unwrap_or(0);
        }
    }
    println!("{what}: {iters} x {} events, {total}", events.len());
}
