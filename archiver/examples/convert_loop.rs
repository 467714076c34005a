//! A fixed amount of the archiver's conversion work, for instruction counts:
//! `valgrind --tool=callgrind target/release/examples/convert_loop MODE EVENTS` with
//! MODE `decode` (wire codec only), `per_message` (one batch per message, concatenated),
//! `builders` (long-lived builders, one batch), `encode` (builders + sort + Parquet) or
//! `setup` (only generating the input, to subtract). Messages hold 500 events.

#![allow(clippy::unwrap_used)]

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

fn main() {
    lanner_contract::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("builders");
    let n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let events: Vec<_> = Synth::new(42, "bench-node").take(n).collect();
    let messages: Vec<bytes::Bytes> = events
        .chunks(500)
        .map(|c| codec::encode_batch(c).into())
        .collect();
    drop(events);
    let out = match mode {
        "setup" => 0,
        "decode" => messages
            .iter()
            .map(|m| codec::decode_batch(m).unwrap().len())
            .sum(),
        "per_message" => {
            let batches: Vec<_> = messages
                .iter()
                .map(|m| arrow::to_record_batch(&codec::decode_batch(m).unwrap()).unwrap())
                .collect();
            arrow_select::concat::concat_batches(&arrow::schema(), &batches)
                .unwrap()
                .num_rows()
        }
        "builders" | "encode" => {
            let pool = std::sync::Arc::new(lanner_contract::batch_pool::BatchPool::new(4));
            let mut rows = FileRows::with_capacity(n);
            for m in &messages {
                let d =
                    Decoded::decode_with(Table::Events, "lanner.events.n", m, 0, &pool).unwrap();
                for p in d.partitions() {
                    d.append_to(p, &mut rows).unwrap();
                }
            }
            let batches = rows.batches().unwrap();
            if mode == "encode" {
                let prov = Provenance {
                    stream: "LANNER_EVENTS".into(),
                    epoch: 1,
                    seqs: SeqSet::from_iter(1..=messages.len() as u64),
                    compacted_from: Vec::new(),
                };
                encode(Table::Events, &batches, &prov, &WriteOptions::default())
                    .unwrap()
                    .0
                    .len()
            } else {
                batches.iter().map(|b| b.num_rows()).sum()
            }
        }
        other => panic!("unknown mode {other}"),
    };
    println!("{mode} {n}: {out}");
}
