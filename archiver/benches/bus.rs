//! The whole archiver stage against a real nats-server, with bare consumption of the
//! same messages as the baseline, measured in the same run:
//!
//! `cargo bench -p lanner-archiver --bench bus`
//!
//! Publishes `LANNER_BENCH_EVENTS` synthetic events (default 1 000 000) in messages of
//! `LANNER_BENCH_BATCH` (500) to a fresh subject, then drains them three times, each
//! with its own durable consumer (pulls of 256, as the archiver pulls):
//! 1. bare: pull and ack, nothing else;
//! 2. bare + decode: pull, decode the event batch with the wire codec, ack;
//! 3. the archiver's sink (`run_sink`) into a temporary directory: decode, Arrow,
//!    Parquet files, create-only writes with fsync, acks after the files.
//!
//! For each: wall time, events/s, and the CPU time of this process (user + system, from
//! `/proc/self/stat`; the nats-server's own CPU is not in it) as events per CPU-second.
//! The server is `LANNER_TEST_NATS_URL`, else a private `nats-server` started here.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use lanner_archiver::archive::Archive;
use lanner_archiver::metrics::SinkStats;
use lanner_archiver::sink::{RollLimits, SinkConfig, run_sink};
use lanner_archiver::tables::Table;
use lanner_contract::bus::shutdown::Shutdown;
use lanner_contract::bus::{StreamSettings, ensure_streams};
use lanner_contract::synth::Synth;
use lanner_contract::{codec, subjects};

/// The allocator the archiver's binary uses, set up as it does, so the figures stand
/// for it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) this process used so far.
fn cpu_secs() -> f64 {
    lanner_tests::cpu_secs("self", false)
}

struct Run {
    what: &'static str,
    secs: f64,
    cpu: f64,
}

async fn drained(js: &jetstream::Context, durable: &str) -> bool {
    let Ok(s) = js.get_stream(subjects::EVENTS.name).await else {
        return false;
    };
    let Ok(mut c) = s.get_consumer::<pull::Config>(durable).await else {
        return false;
    };
    c.info().await.is_ok_and(|i| {
        i.num_pending == 0 && i.num_ack_pending == 0 && i.delivered.stream_sequence > 0
    })
}

async fn bare(
    js: &jetstream::Context,
    subject: &str,
    durable: &str,
    decode: bool,
    n: usize,
) -> usize {
    let stream = js.get_stream(subjects::EVENTS.name).await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            filter_subject: subject.to_owned(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            max_ack_pending: 50_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = consumer
        .stream()
        .max_messages_per_batch(256)
        .messages()
        .await
        .unwrap()
        .ready_chunks(256);
    let mut events = 0;
    while events < n {
        let Some(chunk) = msgs.next().await else {
            break;
        };
        for m in chunk {
            let m = m.unwrap();
            events += if decode {
                codec::decode_batch(&m.payload).unwrap().len()
            } else {
                // Counted from the publisher's batch size: nothing is decoded.
                env("LANNER_BENCH_BATCH", 500)
            };
            m.ack().await.unwrap();
        }
    }
    events
}

#[tokio::main]
async fn main() {
    lanner_contract::allocator::keep_freed_memory();
    let n = env("LANNER_BENCH_EVENTS", 1_000_000);
    let batch = env("LANNER_BENCH_BATCH", 500).max(1);
    let nats = lanner_tests::Nats::start();
    let client = async_nats::connect(&nats.url).await.unwrap();
    let js = jetstream::new(client);
    ensure_streams(&js, &StreamSettings::default())
        .await
        .unwrap();
    let node = lanner_tests::unique("archbench");
    let subject = subjects::events(&node);

    // Publish once; every run reads the same messages.
    let events: Vec<_> = Synth::new(42, &node).take(n).collect();
    let mut acks = Vec::new();
    let mut wire = 0usize;
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        let payload = codec::encode_batch(chunk);
        wire += payload.len();
        let msg = jetstream::message::PublishMessage::build().payload(payload.into());
        acks.push(js.send_publish(subject.clone(), msg).await.unwrap());
        if acks.len() >= 64 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    drop(events);
    println!(
        "published {n} events in {} messages of {batch} ({:.1} MiB) in {:.2} s",
        n.div_ceil(batch),
        wire as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );

    let mut runs = Vec::new();
    for (what, decode) in [
        ("bare: pull + ack", false),
        ("bare: pull + decode + ack", true),
    ] {
        let durable = lanner_tests::unique("bare");
        let (c0, t0) = (cpu_secs(), Instant::now());
        let got = bare(&js, &subject, &durable, decode, n).await;
        assert!(got >= n, "{what}: {got} of {n} events");
        runs.push(Run {
            what,
            secs: t0.elapsed().as_secs_f64(),
            cpu: cpu_secs() - c0,
        });
    }

    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let prefix = lanner_tests::unique("arch");
    let mut cfg = SinkConfig::new(Table::Events, &prefix);
    cfg.filter_subject = subject.clone();
    cfg.roll = RollLimits {
        max_rows: env("LANNER_BENCH_FILE_ROWS", 1_000_000),
        max_age: Duration::from_secs(5),
        ..Default::default()
    };
    let durable = cfg.durable.clone();
    let shutdown = Shutdown::new();
    let stats = Arc::new(SinkStats::default());
    let (c0, t0) = (cpu_secs(), Instant::now());
    let task = tokio::spawn(run_sink(
        js.clone(),
        archive,
        cfg,
        shutdown.clone(),
        Arc::clone(&stats),
    ));
    while !drained(&js, &durable).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    shutdown.trigger();
    task.await.unwrap().unwrap();
    runs.push(Run {
        what: "archiver sink (Parquet files, acks after the writes)",
        secs,
        cpu: cpu_secs() - c0,
    });
    let rows = SinkStats::get(&stats.rows);
    assert_eq!(rows, n as u64, "every event archived once");
    let bytes = SinkStats::get(&stats.bytes);

    println!("| what | wall s | events/s | CPU s (this process) | events per CPU-second |");
    println!("|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.0} |",
            r.what,
            r.secs,
            n as f64 / r.secs,
            r.cpu,
            n as f64 / r.cpu.max(0.01)
        );
    }
    let base = &runs[0];
    let arch = &runs[2];
    println!(
        "archiver / bare: {:.2} of the events/s, {:.1}x the CPU; {} files, {:.1} bytes/event Parquet",
        base.secs / arch.secs,
        arch.cpu / base.cpu.max(0.01),
        SinkStats::get(&stats.files),
        bytes as f64 / n as f64
    );
}
