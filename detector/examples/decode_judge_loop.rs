//! What a replica spends per event apart from the bus, on one thread, for callgrind
//! and `perf stat`: decoding batches into pooled events, with or without judging them.
//!
//! ```text
//! cargo run --release -p lanner-detector --example decode_judge_loop -- bare 25    # decode every field, as bench-bus's bare consumer
//! cargo run --release -p lanner-detector --example decode_judge_loop -- judge 25   # decode the events and fields the rules read, judge (calibrated)
//! cargo run --release -p lanner-detector --example decode_judge_loop -- judge 1 64 # decode 64 messages, then judge them
//! ```
//!
//! Each round goes over 4000 events of bench-bus's mix with 0.1 % raising an alert
//! (`--alerts-one-in 20`), in messages of 500, decoding each message and judging it
//! before the next (as a replica does) or, with a third argument N, decoding N
//! messages before judging them (as replicas did before `Stage::process_each`: the
//! events are out of the cache by then). The difference between two round counts
//! under `valgrind --tool=callgrind` gives instructions per event without the setup.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use lanner_contract::batch_pool::BatchPool;
use lanner_contract::codec;
use lanner_contract::field_set::StoredFieldSet;
use lanner_contract::model::STORED_FIELDS;
use lanner_engine::DEFAULT_APPEND_OUTPUT;
use lanner_engine::alert::AlertBuilder;
use lanner_engine::rules::{Matching, load_files};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "judge".into());
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(25);
    let held: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let rules =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/falco-rules/falco_rules.yaml");
    let (mut rs, _) = load_files(&[rules], DEFAULT_APPEND_OUTPUT).expect("stable rules load");
    let events = lanner_engine::mix::mix_with_fewer_alerts(4000, 20);
    rs.calibrate(&events);
    let batches: Vec<Vec<u8>> = events.chunks(500).map(codec::encode_batch).collect();
    // `held` copies of the messages, so each round still judges every event `held` times.
    let batches: Vec<Vec<u8>> = (0..held).flat_map(|_| batches.iter().cloned()).collect();
    let judge = mode != "bare";
    // As the detector decodes: only what the rules and outputs read, unfiltered when
    // that is every field.
    let fields: StoredFieldSet = rs.stored_fields().into_iter().collect();
    let keep = (judge && fields.len() < STORED_FIELDS.len()).then_some(&fields);
    let pool = Arc::new(BatchPool::new(held + 4));
    let builder = AlertBuilder::new(Matching::First);
    let (mut json, mut alerts, mut n) = (String::new(), 0usize, 0usize);
    let start = Instant::now();
    for _ in 0..rounds {
        for messages in batches.chunks(held) {
            // As the detector decodes: only the events some rule may match.
            let decoded: Vec<_> = messages
                .iter()
                .map(|b| {
                    if judge {
                        pool.decode_wanted(b, keep, &|t| !rs.candidates(t).is_empty())
                    } else {
                        pool.decode(b, keep)
                    }
                    .expect("decodes")
                })
                .collect();
            n += decoded.iter().map(|b| b.batch_events()).sum::<usize>();
            if !judge {
                continue;
            }
            for (i, ev) in decoded.iter().flat_map(|b| b.iter()).enumerate() {
                builder.judge_json(
                    &rs,
                    ev,
                    "node",
                    || format!("b/{i}"),
                    &mut json,
                    |_, _| alerts += 1,
                );
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{mode}: {n} events, {alerts} alerts, {:.3} µs per event",
        secs / n.max(1) as f64 * 1e6
    );
}
