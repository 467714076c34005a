//! Codec throughput on one core: encode and decode of 1024-event batches of the
//! synthetic mix, with JSON lines for comparison.
//!
//! `cargo bench -p lanner-contract --bench codec`

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanner_contract::synth::Synth;
use lanner_contract::{Event, codec, jsonl};

/// The allocator the stages' binaries use, so the figures stand for them.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    // Set up as the binaries set it up: freed memory kept for the next batch.
    lanner_contract::allocator::keep_freed_memory();
    let events: Vec<Event> = Synth::new(1, "node-a").take(1024).collect();
    let bytes = codec::encode_batch(&events);
    let lines: Vec<String> = events.iter().map(jsonl::to_line).collect();
    let json_bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    eprintln!(
        "batch of {} events: {} bytes binary ({:.0} B/event), {} bytes JSON lines ({:.0} B/event)",
        events.len(),
        bytes.len(),
        bytes.len() as f64 / events.len() as f64,
        json_bytes,
        json_bytes as f64 / events.len() as f64
    );

    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(events.len() as u64));
    let mut buf = Vec::with_capacity(bytes.len());
    g.bench_function("encode_1024", |b| {
        b.iter(|| {
            buf.clear();
            codec::encode_batch_into(std::hint::black_box(&events), &mut buf);
            buf.len()
        })
    });
    g.bench_function("decode_1024", |b| {
        b.iter(|| codec::decode_batch(std::hint::black_box(&bytes)).map(|v| v.len()))
    });
    // The same, with the decoded batch freed outside the timing: how much of the above
    // is releasing the previous batch's ~30 shared values per event.
    g.bench_function("decode_1024_drop_untimed", |b| {
        b.iter_with_large_drop(|| codec::decode_batch(std::hint::black_box(&bytes)))
    });
    // Into the events of the previous batch (`batch_pool`), as the detector decodes.
    let pool = std::sync::Arc::new(lanner_contract::batch_pool::BatchPool::new(2));
    g.bench_function("decode_1024_pooled", |b| {
        b.iter(|| {
            pool.decode(std::hint::black_box(&bytes), None)
                .map(|v| v.len())
        })
    });
    // What relaying a batch unchanged needs: every check of decoding, no events built.
    g.bench_function("check_1024", |b| {
        b.iter(|| codec::check_batch(std::hint::black_box(&bytes)))
    });
    g.bench_function("json_parse_1024", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| jsonl::parse_line(l).is_ok())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
