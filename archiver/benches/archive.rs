//! Archive throughput and size: `cargo bench -p lanner-archiver --bench archive`.
//!
//! Feeds synthetic events (the contract's generator: opens, connects, DNS, execs over a
//! handful of containers) through the archiver's own path on one thread — wire batches
//! as they arrive from the bus → decode → Arrow per partition → sort → Parquet (zstd,
//! dictionaries, statistics, page index, bloom filters) — and prints events/s per core,
//! MiB/s (of the wire input and of the JSON-lines form) and bytes per event against the
//! JSON-lines form of the same events. `LANNER_BENCH_EVENTS` sets the event count
//! (default 1 000 000), `LANNER_BENCH_BATCH` the events per bus message (default 500).

use std::time::Instant;

use lanner_archiver::parquet_file::{Provenance, WriteOptions, encode};
use lanner_archiver::seqset::SeqSet;
use lanner_archiver::tables::Table;
use lanner_contract::synth::Synth;
use lanner_contract::{codec, jsonl};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = env("LANNER_BENCH_EVENTS", 1_000_000);
    let batch = env("LANNER_BENCH_BATCH", 500).max(1);
    let file_rows = 1_000_000usize;
    let events: Vec<_> = Synth::new(42, "bench-node").take(n).collect();
    let json_bytes: usize = events.iter().map(|e| jsonl::to_line(e).len() + 1).sum();
    let messages: Vec<Vec<u8>> = events.chunks(batch).map(codec::encode_batch).collect();
    let wire_bytes: usize = messages.iter().map(Vec::len).sum();
    drop(events);

    let mut parquet_bytes = 0usize;
    let mut files = 0usize;
    let start = Instant::now();
    let mut decode_secs = 0.0;
    let mut pending: std::collections::BTreeMap<_, (Vec<_>, usize)> = Default::default();
    let mut seq = 0u64;
    let mut arrow_bytes = 0usize;
    let flush = |batches: Vec<arrow_array::RecordBatch>,
                 parquet_bytes: &mut usize,
                 files: &mut usize,
                 seq: u64| {
        let prov = Provenance {
            stream: "LANNER_EVENTS".into(),
            epoch: 1,
            seqs: SeqSet::from_iter([seq]),
            compacted_from: Vec::new(),
        };
        let (bytes, _) =
            encode(Table::Events, &batches, &prov, &WriteOptions::default()).expect("encode");
        *parquet_bytes += bytes.len();
        *files += 1;
    };
    for m in &messages {
        seq += 1;
        let t = Instant::now();
        let parts = Table::Events
            .decode("lanner.events.bench-node", m, 0)
            .expect("decode");
        decode_secs += t.elapsed().as_secs_f64();
        for (p, b) in parts {
            arrow_bytes += b.get_array_memory_size();
            let e = pending.entry(p).or_insert_with(|| (Vec::new(), 0));
            e.1 += b.num_rows();
            e.0.push(b);
            if e.1 >= file_rows {
                let (batches, _) = pending.remove(&p).expect("present");
                flush(batches, &mut parquet_bytes, &mut files, seq);
            }
        }
    }
    for (_, (batches, _)) in std::mem::take(&mut pending) {
        flush(batches, &mut parquet_bytes, &mut files, seq);
    }
    let secs = start.elapsed().as_secs_f64();
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "events                 {n} in {} messages of {batch}, {files} Parquet files",
        messages.len()
    );
    println!("throughput (1 core)    {:.0} events/s", n as f64 / secs);
    println!(
        "  decode + Arrow only  {:.0} events/s",
        n as f64 / decode_secs
    );
    println!(
        "  sort + Parquet only  {:.0} events/s",
        n as f64 / (secs - decode_secs)
    );
    println!("input wire MiB/s       {:.1}", mib(wire_bytes) / secs);
    println!(
        "JSON-lines MiB/s       {:.1} (the same events as JSON lines)",
        mib(json_bytes) / secs
    );
    println!("bytes/event JSON lines {:.1}", json_bytes as f64 / n as f64);
    println!("bytes/event wire       {:.1}", wire_bytes as f64 / n as f64);
    println!(
        "bytes/event Parquet    {:.1}",
        parquet_bytes as f64 / n as f64
    );
    println!(
        "bytes/event in memory  {:.1} (Arrow buffers while a file is open)",
        arrow_bytes as f64 / n as f64
    );
    println!(
        "JSON lines / Parquet   {:.1}x smaller",
        json_bytes as f64 / parquet_bytes as f64
    );
}
