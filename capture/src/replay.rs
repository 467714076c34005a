//! `--replay FILE`: publish a JSON-lines event file to `lanner.raw.<node>` in batches.
//!
//! A reader thread parses and encodes while the async side publishes, keeping up to
//! `--max-in-flight` batches awaiting JetStream's ack. Each batch's `Nats-Msg-Id` is a
//! hash of its bytes, and events without an `evt.id` get one derived from their line,
//! so replaying the same file twice stores nothing new. Malformed lines are reported
//! with their line number on stderr, counted, and skipped.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use lanner_contract::bus::{Outgoing, ensure_streams, publish};
use lanner_contract::subjects::{self, CONTENT_EVENT_BATCH};
use lanner_contract::{Event, codec, jsonl};
use tokio::sync::mpsc;

/// What a replay did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Events published.
    pub events: u64,
    /// Batches published.
    pub batches: u64,
    /// Batches JetStream already had (same message id).
    pub duplicate_batches: u64,
    /// Lines skipped because they were not valid events.
    pub malformed: u64,
    /// Encoded bytes published.
    pub bytes: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The subject published to.
    pub subject: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "replayed {} events in {} batches ({} already stored) to {} in {:.3}s ({:.0} events/s, {:.1} MiB/s); {} malformed lines skipped",
            self.events,
            self.batches,
            self.duplicate_batches,
            self.subject,
            secs,
            self.events as f64 / secs,
            self.bytes as f64 / secs / (1 << 20) as f64,
            self.malformed
        )
    }
}

/// One encoded batch from the reader thread.
struct Batch {
    payload: Bytes,
    events: u64,
}

/// Reads, parses and encodes on the calling (blocking) thread.
fn read_batches(
    input: impl Read,
    node: &str,
    max_events: usize,
    max_bytes: usize,
    tx: mpsc::Sender<Batch>,
) -> Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = String::new();
    let mut line_no = 0usize;
    let mut malformed = 0u64;
    let mut pending: Vec<Event> = Vec::with_capacity(max_events);
    let mut pending_json_bytes = 0usize;
    let flush = |pending: &mut Vec<Event>| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let payload = codec::encode_batch(pending);
        let events = pending.len() as u64;
        pending.clear();
        tx.blocking_send(Batch {
            payload: payload.into(),
            events,
        })
        .map_err(|_| anyhow::anyhow!("publisher stopped"))
    };
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading line {}", line_no + 1))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim_end();
        if text.is_empty() {
            continue;
        }
        match jsonl::parse_line(text) {
            Ok(mut ev) => {
                if ev.evt_id.is_none() {
                    let h = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
                    ev.evt_id = Some(format!("{h:016x}-{line_no}").into());
                }
                if ev.evt_hostname.is_none() {
                    ev.evt_hostname = Some(node.into());
                }
                pending_json_bytes += text.len();
                pending.push(ev);
                // JSON is larger than the binary form, so this bounds the batch bytes.
                if pending.len() >= max_events || pending_json_bytes >= max_bytes.saturating_mul(3)
                {
                    flush(&mut pending)?;
                    pending_json_bytes = 0;
                }
            }
            Err(e) => {
                malformed += 1;
                eprintln!("line {line_no}: skipped: {e}");
            }
        }
    }
    flush(&mut pending)?;
    Ok(malformed)
}

/// Replays `path` (or stdin for `-`) and returns once JetStream acked every batch.
pub async fn run(cli: &crate::Cli, node: &str, path: &Path) -> Result<Summary> {
    let client = cli.nats.connect("lanner-capture").await?;
    let js = jetstream::new(client);
    ensure_streams(&js, &cli.streams).await?;
    let subject = subjects::raw(node);

    let input: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)
    };
    let (tx, mut rx) = mpsc::channel::<Batch>(cli.max_in_flight.max(1));
    let (node_owned, max_events, max_bytes) =
        (node.to_owned(), cli.batch_events.max(1), cli.batch_bytes);
    let reader =
        std::thread::spawn(move || read_batches(input, &node_owned, max_events, max_bytes, tx));

    let start = Instant::now();
    let mut summary = Summary {
        subject: subject.clone(),
        ..Default::default()
    };
    let mut in_flight: VecDeque<(PublishAckFuture, u64, u64)> = VecDeque::new();
    while let Some(batch) = rx.recv().await {
        if in_flight.len() >= cli.max_in_flight.max(1)
            && let Some(oldest) = in_flight.pop_front()
        {
            settle(oldest, &mut summary).await?;
        }
        let msg_id = format!(
            "replay:{:032x}",
            xxhash_rust::xxh3::xxh3_128(&batch.payload)
        );
        let len = batch.payload.len() as u64;
        let out = Outgoing {
            subject: subject.clone(),
            payload: batch.payload,
            msg_id,
            content: CONTENT_EVENT_BATCH,
        };
        in_flight.push_back((publish::send(&js, out).await?, batch.events, len));
    }
    for pending in in_flight {
        settle(pending, &mut summary).await?;
    }
    summary.malformed = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

async fn settle(
    (ack, events, bytes): (PublishAckFuture, u64, u64),
    summary: &mut Summary,
) -> Result<()> {
    let ack = ack.await.context("JetStream did not ack a batch")?;
    summary.batches += 1;
    summary.events += events;
    summary.bytes += bytes;
    if ack.duplicate {
        summary.duplicate_batches += 1;
    }
    Ok(())
}
