//! Archive throughput and size: `cargo bench -p lanner-archiver --bench archive`.
//!
//! Feeds synthetic events (the contract's generator: opens, connects, DNS, execs over a
//! handful of containers) through the archiver's own path on one thread — wire batches
//! as they arrive from the bus → decode → appended into long-lived Arrow builders per
//! partition → one batch per file → sort → Parquet (zstd,
//! dictionaries, statistics, page index, bloom filters) — and prints events/s per core,
//! MiB/s (of the wire input and of the JSON-lines form) and bytes per event against the
//! JSON-lines form of the same events. `LANNER_BENCH_EVENTS` sets the event count
//! (default 1 000 000), `LANNER_BENCH_BATCH` the events per bus message (default 500).

use std::time::Instant;

use std::collections::BTreeMap;

use lanner_archiver::parquet_file::{Provenance, WriteOptions, encode};
use lanner_archiver::partition::Partition;
use lanner_archiver::rows::{Decoded, FileRows};
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
    let messages: Vec<bytes::Bytes> = events
        .chunks(batch)
        .map(|c| codec::encode_batch(c).into())
        .collect();
    let wire_bytes: usize = messages.iter().map(bytes::Bytes::len).sum();
    drop(events);

    let mut parquet_bytes = 0usize;
    let mut files = 0usize;
    let mut arrow_bytes = 0usize;
    let mut encode_secs = 0.0;
    let start = Instant::now();
    let mut open: BTreeMap<Partition, (FileRows, u64)> = BTreeMap::new();
    let mut flush = |rows: &mut FileRows, first: u64, last: u64| {
        let batches = rows.batches().expect("batch");
        arrow_bytes += batches
            .iter()
            .map(|b| b.get_array_memory_size())
            .sum::<usize>();
        let prov = Provenance {
            stream: "LANNER_EVENTS".into(),
            epoch: 1,
            seqs: SeqSet::from_iter(first..=last),
            compacted_from: Vec::new(),
        };
        let t = Instant::now();
        let (bytes, _) =
            encode(Table::Events, &batches, &prov, &WriteOptions::default()).expect("encode");
        encode_secs += t.elapsed().as_secs_f64();
        parquet_bytes += bytes.len();
        files += 1;
    };
    let pool = std::sync::Arc::new(lanner_contract::batch_pool::BatchPool::new(4));
    for (i, m) in messages.iter().enumerate() {
        let seq = i as u64 + 1;
        let d = Decoded::decode_with(Table::Events, "lanner.events.bench-node", m, 0, &pool)
            .expect("decode");
        for p in d.partitions() {
            let (rows, first) = open.entry(p).or_insert_with(|| (FileRows::default(), seq));
            d.append_to(p, rows).expect("append");
            if rows.rows() >= file_rows {
                let first = *first;
                if let Some((mut rows, _)) = open.remove(&p) {
                    flush(&mut rows, first, seq);
                }
            }
        }
    }
    let last = messages.len() as u64;
    for (_, (mut rows, first)) in std::mem::take(&mut open) {
        flush(&mut rows, first, last);
    }
    let decode_secs = start.elapsed().as_secs_f64() - encode_secs;
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
        n as f64 / encode_secs
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
