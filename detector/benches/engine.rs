//! Events/s per core judging a realistic event mix against the full upstream stable
//! ruleset (`cargo bench -p lanner-detector --bench engine`).
//!
//! The event mix is `lanner_detector::mix::realistic_mix`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanner_detector::alert::AlertBuilder;
use lanner_detector::rules::{Matching, load_files};
use lanner_detector::service::DEFAULT_APPEND_OUTPUT;

fn bench(c: &mut Criterion) {
    let rules =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/falco-rules/falco_rules.yaml");
    assert!(
        rules.is_file(),
        "upstream rules missing at {}",
        rules.display()
    );
    let (rs, _) = load_files(&[rules], DEFAULT_APPEND_OUTPUT).expect("stable rules load");
    let events = lanner_detector::mix::realistic_mix(1000);
    let builder = AlertBuilder::new(Matching::First);
    let mut fired = 0;
    builder.judge_all(&rs, &events, &mut fired);
    assert!(fired > 0, "the mix fires rules");
    let mut g = c.benchmark_group("stable_ruleset");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("judge_event_mix", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                n += rs.judge(e, Matching::First, |_| {});
            }
            n
        })
    });
    g.bench_function("judge_and_build_alerts", |b| {
        b.iter(|| {
            let mut n = 0usize;
            builder.judge_all(&rs, &events, &mut n);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
