//! Events/s per core judging a realistic event mix against the full upstream stable
//! ruleset (`cargo bench -p lanner-engine --bench engine`).
//!
//! The event mix is `lanner_engine::mix::realistic_mix`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lanner_engine::DEFAULT_APPEND_OUTPUT;
use lanner_engine::alert::AlertBuilder;
use lanner_engine::rules::{Matching, load_files};

fn bench(c: &mut Criterion) {
    let rules =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/falco-rules/falco_rules.yaml");
    assert!(
        rules.is_file(),
        "upstream rules missing at {}",
        rules.display()
    );
    let (rs, _) = load_files(&[rules], DEFAULT_APPEND_OUTPUT).expect("stable rules load");
    let events = lanner_engine::mix::realistic_mix(1000);
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
    let mut calibrated = rs.clone();
    calibrated.calibrate(&lanner_engine::mix::realistic_mix(4096));
    g.bench_function("judge_event_mix_calibrated", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                n += calibrated.judge(e, Matching::First, |_| {});
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

/// CPU time of this thread (user + system) from /proc, in seconds; `None` off Linux.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Events per CPU-second of this thread: on a shared, loaded machine wall-clock
/// throughput understates what one core does; this divides by the CPU time the
/// judging thread actually got (10 ms tick resolution, so it runs a few seconds).
fn per_cpu_second(c: &mut Criterion) {
    let _ = c;
    let rules =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/falco-rules/falco_rules.yaml");
    let (rs, _) = load_files(&[rules], DEFAULT_APPEND_OUTPUT).expect("stable rules load");
    let mut calibrated = rs.clone();
    calibrated.calibrate(&lanner_engine::mix::realistic_mix(4096));
    per_cpu_second_of("judge_event_mix", &rs);
    per_cpu_second_of("judge_event_mix_calibrated", &calibrated);
}

fn per_cpu_second_of(name: &str, rs: &lanner_engine::rules::Ruleset) {
    let events = lanner_engine::mix::realistic_mix(1000);
    let Some(cpu0) = thread_cpu_secs() else {
        return;
    };
    let wall0 = std::time::Instant::now();
    let mut judged = 0u64;
    let mut hits = 0usize;
    while wall0.elapsed().as_secs_f64() < 6.0 {
        for e in &events {
            hits += rs.judge(e, Matching::First, |_| {});
        }
        judged += events.len() as u64;
    }
    let cpu = thread_cpu_secs().unwrap_or(cpu0) - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    println!(
        "stable_ruleset/{name} per CPU-second: {:.0} events/s (wall {:.0} events/s, {:.0}% of a core; {} matches)",
        judged as f64 / cpu.max(0.01),
        judged as f64 / wall,
        cpu / wall * 100.0,
        hits
    );
}

criterion_group!(benches, bench, per_cpu_second);
criterion_main!(benches);
