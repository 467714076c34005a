//! Replay throughput against bare JetStream publishing of the same bytes, same run.
//!
//! `cargo bench -p lanner-capture --bench replay_vs_bare [-- EVENTS ROUNDS]`
//!
//! Each round: `lanner-capture --replay` publishes a JSON-lines file of synthetic events
//! (parse + encode + publish + wait for acks; its rate is the one its summary reports,
//! from first publish to last ack, as the bare loops are timed); then the exact batches it stored are read
//! back and published again by a bare async-nats loop with the same in-flight window.
//! A second baseline publishes the JSON-lines file itself, in chunks of whole lines under
//! 900 KiB, the same way: what shipping the text unparsed would cost. Then the stored
//! batches are written as a binary recording (`.lnrec`) and, four times per round, the
//! bare loop and `lanner-capture --replay` of the recording (the same bytes, each batch
//! checked on the way) run back to back.
//! Prints the medians of the rates, and the medians of the ratios of runs made back to
//! back (steadier than the ratio of medians on a noisy machine). For the recording it
//! also prints events per CPU-second of the publisher and nats-server together, summed
//! over all pairs (the replay process whole, start and connect included; the bare loop
//! is this process while it publishes): on a shared machine, what the two cost does not
//! depend on what else runs.
//!
//! nats-server stores in the temporary directory: `TMPDIR=/dev/shm` takes the disk out
//! of the comparison (this shared VM's disk is the noisiest part).

use std::collections::VecDeque;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishAckFuture};
use lanner_contract::bus::{Outgoing, StreamSettings, ensure_streams, publish};
use lanner_contract::subjects::{self, CONTENT_EVENT_BATCH};
use lanner_contract::{jsonl, synth::Synth};
use lanner_tests::{Nats, collect, cpu_secs, unique};

const IN_FLIGHT: usize = 64;

/// The publishing rate `lanner-capture --replay` reports last in its summary (from its
/// first publish to its last ack: like the bare loop, without process start, connect and
/// reading the first batch).
fn reported_rate(stderr: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(stderr);
    text.rsplit_once(" events/s")
        .and_then(|(head, _)| head.rsplit([' ', '(']).next().map(str::to_owned))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate in the replay summary: {text}"))
}

/// Publishes `payloads` to `lanner.raw.<node>` with `IN_FLIGHT` unacked at most, as the
/// replay does; returns the seconds from the first publish to the last ack.
async fn publish_all(
    js: &jetstream::Context,
    payloads: impl Iterator<Item = bytes::Bytes>,
    node: &str,
    content: &'static str,
) -> f64 {
    let start = Instant::now();
    let mut in_flight: VecDeque<PublishAckFuture> = VecDeque::new();
    for (i, payload) in payloads.enumerate() {
        if in_flight.len() >= IN_FLIGHT
            && let Some(f) = in_flight.pop_front()
        {
            f.await.expect("ack");
        }
        let out = Outgoing {
            subject: subjects::raw(node),
            payload,
            msg_id: format!("{node}:{i}"),
            content,
        };
        in_flight.push_back(publish::send(js, out).await.expect("publish"));
    }
    for f in in_flight {
        f.await.expect("ack");
    }
    start.elapsed().as_secs_f64()
}

/// The `lanner-capture` to run: this build's, or `LANNER_CAPTURE_BIN` (to compare another
/// build against the same baselines).
fn capture_bin() -> std::ffi::OsString {
    std::env::var_os("LANNER_CAPTURE_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_lanner-capture").into())
}

/// Runs `lanner-capture --replay FILE` to a fresh node; returns its reported rate.
fn replay(file: &std::path::Path, nats_url: &str, node: &str) -> f64 {
    let out = Command::new(capture_bin())
        .arg("--replay")
        .arg(file)
        .args([
            "--node",
            node,
            "--nats-url",
            nats_url,
            "--max-in-flight",
            &IN_FLIGHT.to_string(),
        ])
        .output()
        .expect("run lanner-capture");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    reported_rate(&out.stderr)
}

/// Back-to-back pairs of bare publishing and recording replay in each round: a bare
/// round lasts ~0.1 s, too short for one pair to be a steady ratio.
const RECORDING_PAIRS: usize = 4;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let nats = Nats::spawn();
    let js = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    ensure_streams(&js, &StreamSettings::default())
        .await
        .expect("streams");

    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    {
        let mut w = std::io::BufWriter::new(&mut file);
        for ev in Synth::new(11, "bench").take(events) {
            jsonl::write_event(&mut w, &ev).expect("write");
        }
        w.flush().expect("flush");
    }
    let json_bytes = file.as_file().metadata().expect("metadata").len();

    let json_chunks: Vec<bytes::Bytes> = {
        let text = std::fs::read(file.path()).expect("read back");
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut last_nl = 0;
        for (i, b) in text.iter().enumerate() {
            if *b == b'\n' {
                if i + 1 - start > 900 * 1024 && last_nl > start {
                    chunks.push(bytes::Bytes::copy_from_slice(&text[start..last_nl]));
                    start = last_nl;
                }
                last_nl = i + 1;
            }
        }
        chunks.push(bytes::Bytes::copy_from_slice(&text[start..]));
        chunks
    };

    let (mut replay_rates, mut bare_rates, mut json_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut rec_rates = Vec::new();
    let (mut json_vs_bare, mut json_vs_text, mut rec_vs_bare) =
        (Vec::new(), Vec::new(), Vec::new());
    let rec_dir = tempfile::tempdir().expect("temp dir");
    let rec_path = rec_dir.path().join("bench.lnrec");
    let mut batch_bytes = 0u64;
    let nats_pid = nats.pid().map(|p| p.to_string()).unwrap_or_default();
    let nats_cpu = || cpu_secs(&nats_pid, false);
    // CPU seconds over all recording pairs: (publisher, nats-server) for each side.
    let (mut bare_cpu, mut rec_cpu) = ((0.0, 0.0), (0.0, 0.0));
    for round in 0..rounds {
        let node = unique("bench-replay");
        let r = replay(file.path(), &nats.url, &node);

        let stored = collect(
            &js,
            subjects::RAW.name,
            &subjects::raw(&node),
            events.div_ceil(1024),
            Duration::from_secs(60),
        )
        .await;
        batch_bytes = stored.iter().map(|m| m.payload.len() as u64).sum();
        let payloads = || stored.iter().map(|m| m.payload.clone());
        let bare_secs =
            publish_all(&js, payloads(), &unique("bench-bare"), CONTENT_EVENT_BATCH).await;
        let json_secs = publish_all(
            &js,
            json_chunks.iter().cloned(),
            &unique("bench-json"),
            "jsonl",
        )
        .await;
        json_rates.push(events as f64 / json_secs);

        // The same batches as a recording, replayed by the binary.
        {
            let mut w = lanner_contract::recording::Writer::new(std::io::BufWriter::new(
                std::fs::File::create(&rec_path).expect("create recording"),
            ))
            .expect("recording");
            for m in &stored {
                w.write_batch(&m.payload).expect("write frame");
            }
            w.flush().expect("flush");
        }
        for _ in 0..RECORDING_PAIRS {
            let (own, server) = (cpu_secs("self", false), nats_cpu());
            let pair_bare = events as f64
                / publish_all(&js, payloads(), &unique("bench-bare"), CONTENT_EVENT_BATCH).await;
            bare_cpu.0 += cpu_secs("self", false) - own;
            bare_cpu.1 += nats_cpu() - server;
            let (children, server) = (cpu_secs("self", true) - cpu_secs("self", false), nats_cpu());
            let rec = replay(&rec_path, &nats.url, &unique("bench-rec"));
            rec_cpu.0 += cpu_secs("self", true) - cpu_secs("self", false) - children;
            rec_cpu.1 += nats_cpu() - server;
            rec_rates.push(rec);
            rec_vs_bare.push(rec / pair_bare);
        }
        let b = events as f64 / bare_secs;
        eprintln!(
            "round {round}: replay {r:.0} events/s, bare publish of the same {} batches {b:.0} events/s ({bare_secs:.3}s), recording replay / bare in {RECORDING_PAIRS} pairs: {:?}",
            stored.len(),
            &rec_vs_bare[rec_vs_bare.len() - RECORDING_PAIRS..]
        );
        json_vs_bare.push(r / b);
        json_vs_text.push(r / (events as f64 / json_secs));
        replay_rates.push(r);
        bare_rates.push(b);
    }
    println!(
        "replay_vs_bare: per-round ratios, medians of {rounds}: JSON-lines replay / bare encoded {:.2}, JSON-lines replay / bare JSON text {:.2}; recording replay / bare encoded, median of {} back-to-back pairs: {:.2}",
        median(json_vs_bare),
        median(json_vs_text),
        rec_vs_bare.len(),
        median(rec_vs_bare)
    );
    let published = (rounds * RECORDING_PAIRS * events) as f64;
    let per_cpu = |(own, server): (f64, f64)| published / (own + server);
    println!(
        "replay_vs_bare: recording, events per CPU-second of publisher + nats-server over {} pairs: bare {:.0} (publisher {:.2} s, nats-server {:.2} s); replay {:.0} (replay process {:.2} s, nats-server {:.2} s); ratio {:.2}",
        rounds * RECORDING_PAIRS,
        per_cpu(bare_cpu),
        bare_cpu.0,
        bare_cpu.1,
        per_cpu(rec_cpu),
        rec_cpu.0,
        rec_cpu.1,
        per_cpu(rec_cpu) / per_cpu(bare_cpu)
    );
    let (r, b, j) = (median(replay_rates), median(bare_rates), median(json_rates));
    let rec = median(rec_rates);
    println!(
        "replay_vs_bare: recording: replay of the same batches from a .lnrec file {rec:.0} events/s; bare publishing {b:.0} events/s (ratio {:.2})",
        rec / b
    );
    println!(
        "replay_vs_bare: {events} events ({:.1} MiB JSON lines, {:.1} MiB encoded): replay {r:.0} events/s; bare JetStream publishing of the encoded batches {b:.0} events/s (ratio {:.2}); bare publishing of the JSON-lines text in {} chunks {j:.0} events/s (ratio {:.2}); medians of {rounds}",
        json_bytes as f64 / 1048576.0,
        batch_bytes as f64 / 1048576.0,
        r / b,
        json_chunks.len(),
        r / j
    );
}
