//! The archiver's hot path per event, on one core: bus messages (500 synthetic events
//! each) → Arrow → Parquet.
//!
//! `cargo bench -p lanner-archiver --bench convert`
//!
//! - `decode_only`: the wire codec alone (the floor of any conversion);
//! - `per_message`: the former path: one record batch per message, concatenated;
//! - `builders`: every message's bytes appended into one set of long-lived columns
//!   ([`lanner_contract::arrow_wire::WireColumns`]), one batch per file;
//! - `parquet_encode`: sorting and encoding that batch (zstd, dictionaries, statistics,
//!   page index, bloom filters);
//! - `builders_and_parquet`: the two together, what one file costs.

#![allow(missing_docs, clippy::unwrap_used)] // criterion_group! generates undocumented functions

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanner_archiver::parquet_file::{Provenance, WriteOptions, encode};
use lanner_archiver::rows::{Decoded, FileRows};
use lanner_archiver::seqset::SeqSet;
use lanner_archiver::tables::Table;
use lanner_contract::synth::Synth;
use lanner_contract::{arrow, codec};

/// The allocator the archiver's binary uses, set up as it does, so the figures stand
/// for it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 50_000;
const PER_MESSAGE: usize = 500;

fn to_file(messages: &[bytes::Bytes]) -> Vec<arrow_array::RecordBatch> {
    let mut rows = FileRows::default();
    for m in messages {
        let d = Decoded::decode(Table::Events, "lanner.events.n", m, 0).unwrap();
        for p in d.partitions() {
            d.append_to(p, &mut rows).unwrap();
        }
    }
    rows.batches().unwrap()
}

fn bench(c: &mut Criterion) {
    lanner_contract::allocator::keep_freed_memory();
    let events: Vec<_> = Synth::new(42, "bench-node").take(EVENTS).collect();
    let messages: Vec<bytes::Bytes> = events
        .chunks(PER_MESSAGE)
        .map(|c| codec::encode_batch(c).into())
        .collect();
    let prov = Provenance {
        stream: "LANNER_EVENTS".into(),
        epoch: 1,
        seqs: SeqSet::from_iter(1..=messages.len() as u64),
        compacted_from: Vec::new(),
    };
    let opts = WriteOptions::default();
    let file = to_file(&messages);

    let mut g = c.benchmark_group("archive");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("decode_only", |b| {
        b.iter(|| {
            messages
                .iter()
                .map(|m| codec::decode_batch(m).unwrap().len())
                .sum::<usize>()
        })
    });
    g.bench_function("per_message", |b| {
        b.iter(|| {
            let batches: Vec<_> = messages
                .iter()
                .map(|m| arrow::to_record_batch(&codec::decode_batch(m).unwrap()).unwrap())
                .collect();
            arrow_select::concat::concat_batches(&arrow::schema(), &batches)
                .unwrap()
                .num_rows()
        })
    });
    g.bench_function("builders", |b| b.iter(|| to_file(&messages)));
    g.bench_function("parquet_encode", |b| {
        b.iter(|| encode(Table::Events, &file, &prov, &opts).unwrap().0.len())
    });
    g.bench_function("builders_and_parquet", |b| {
        b.iter(|| {
            let f = to_file(&messages);
            encode(Table::Events, &f, &prov, &opts).unwrap().0.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
