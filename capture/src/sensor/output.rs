//! Where events go: JSON lines on stdout (`--stdout`), a recording file (`--record`,
//! replayable with `--replay`), and `lanner.raw.<node>` on JetStream (unless `--stdout`
//! is given without `--publish`).
//!
//! Publishing keeps encoded batches in a bounded in-memory buffer: while NATS is
//! unreachable they wait there (reconnecting with back-off); past `--buffer-bytes` new
//! batches are dropped and counted. Each batch's `Nats-Msg-Id` is
//! `<session>:<first evt.num>`, so a batch re-sent after a lost ack is stored once.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use bytes::Bytes;
use lanner_contract::bus::{Outgoing, ensure_streams, publish};
use lanner_contract::subjects::{self, CONTENT_EVENT_BATCH};
use lanner_contract::{Event, codec, jsonl};
use tokio::sync::{Notify, mpsc};

use super::metrics::Stats;

/// Events from the reader, in order.
#[derive(Debug)]
pub struct Batch {
    /// The events.
    pub events: Vec<Event>,
}

/// Output settings.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// Print JSON lines.
    pub stdout: bool,
    /// Publish to JetStream.
    pub publish: bool,
    /// Also record events here: a binary recording for `*.lnrec`, else JSON lines.
    pub record: Option<PathBuf>,
    /// Node name.
    pub node: String,
    /// Session id (message ids).
    pub session: String,
    /// Encoded bytes per published message.
    pub batch_bytes: usize,
    /// Messages awaiting acks at once.
    pub max_in_flight: usize,
    /// Memory bound of the publish buffer.
    pub buffer_bytes: usize,
}

struct Encoded {
    payload: Bytes,
    msg_id: String,
    events: u64,
}

#[derive(Default)]
struct Buffer {
    queue: VecDeque<Encoded>,
    bytes: usize,
}

/// Encodes `events`, splitting so that each message stays under `max_bytes`.
fn encode(session: &str, events: &[Event], max_bytes: usize, out: &mut Vec<Encoded>) {
    if events.is_empty() {
        return;
    }
    let payload = codec::encode_batch(events);
    if payload.len() > max_bytes && events.len() > 1 {
        let mid = events.len() / 2;
        encode(session, &events[..mid], max_bytes, out);
        encode(session, &events[mid..], max_bytes, out);
        return;
    }
    let first = events[0].evt_num.unwrap_or(0);
    out.push(Encoded {
        payload: payload.into(),
        msg_id: format!("{session}:{first}"),
        events: events.len() as u64,
    });
}

/// The `--record` file: JSON lines, or a binary recording (batches as on the bus,
/// [`lanner_contract::recording`]) when the name ends in `.lnrec`.
enum Record {
    Lines(std::io::BufWriter<std::fs::File>),
    Batches(lanner_contract::recording::Writer<std::io::BufWriter<std::fs::File>>),
}

impl Record {
    fn create(path: &std::path::Path) -> Result<Record> {
        let file = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        Ok(if path.extension().is_some_and(|e| e == "lnrec") {
            Record::Batches(lanner_contract::recording::Writer::new(file)?)
        } else {
            Record::Lines(file)
        })
    }

    fn write(&mut self, events: &[Event]) -> std::io::Result<()> {
        match self {
            Record::Lines(w) => {
                for ev in events {
                    jsonl::write_event(&mut *w, ev)?;
                }
                w.flush()
            }
            Record::Batches(w) => {
                w.write_events(events)?;
                w.flush()
            }
        }
    }
}

/// Consumes batches until the reader stops, then flushes (publishing what is buffered,
/// for at most 10 s once shutdown was requested).
pub async fn run(
    cli: &crate::Cli,
    cfg: OutputConfig,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    stats: Arc<Stats>,
    shutdown: super::stop::Stop,
) -> Result<()> {
    let mut record = match &cfg.record {
        Some(p) => Some(Record::create(p)?),
        None => None,
    };
    let buffer = Arc::new(Mutex::new(Buffer::default()));
    let notify = Arc::new(Notify::new());
    let publisher = if !cfg.publish {
        None
    } else {
        let (b, n, s, sd) = (
            buffer.clone(),
            notify.clone(),
            stats.clone(),
            shutdown.clone(),
        );
        let nats = cli.nats.clone();
        let streams = cli.streams.clone();
        let (node, max_in_flight) = (cfg.node.clone(), cfg.max_in_flight);
        Some(tokio::spawn(async move {
            publish_loop(nats, streams, node, max_in_flight, b, n, s, sd).await
        }))
    };
    let stdout = std::io::stdout();
    while let Some(batch) = rx.recv().await {
        if cfg.stdout {
            // Buffered: stdout alone is line-buffered, one write(2) per event.
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            for ev in &batch.events {
                jsonl::write_event(&mut out, ev).context("writing to stdout")?;
            }
            out.flush().context("writing to stdout")?;
        }
        if let Some(r) = record.as_mut() {
            r.write(&batch.events).context("writing the record file")?;
        }
        stats
            .emitted
            .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
        stats
            .queued_events
            .fetch_sub(batch.events.len() as u64, Ordering::Relaxed);
        if publisher.is_some() {
            let mut enc = Vec::new();
            encode(
                &cfg.session,
                &batch.events,
                cfg.batch_bytes.max(1024),
                &mut enc,
            );
            let mut buf = buffer
                .lock()
                .map_err(|_| anyhow::anyhow!("publish buffer poisoned"))?;
            for e in enc {
                if buf.bytes + e.payload.len() > cfg.buffer_bytes {
                    stats.buffer_dropped.fetch_add(e.events, Ordering::Relaxed);
                    continue;
                }
                buf.bytes += e.payload.len();
                buf.queue.push_back(e);
            }
            stats
                .buffered_bytes
                .store(buf.bytes as u64, Ordering::Relaxed);
            drop(buf);
            notify.notify_one();
        }
    }
    if let Some(p) = publisher {
        notify.notify_one();
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            let empty = buffer.lock().map(|b| b.queue.is_empty()).unwrap_or(true);
            if empty {
                break;
            }
            tokio::select! {
                _ = &mut deadline => {
                    let left = buffer.lock().map(|b| b.queue.iter().map(|e| e.events).sum::<u64>()).unwrap_or(0);
                    tracing::warn!(left, "shutdown: NATS did not take every buffered batch in 10 s; counted as dropped");
                    stats.buffer_dropped.fetch_add(left, Ordering::Relaxed);
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        shutdown.set();
        notify.notify_one();
        let _ = p.await;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn publish_loop(
    nats: lanner_contract::bus::NatsArgs,
    streams: lanner_contract::bus::StreamSettings,
    node: String,
    max_in_flight: usize,
    buffer: Arc<Mutex<Buffer>>,
    notify: Arc<Notify>,
    stats: Arc<Stats>,
    shutdown: super::stop::Stop,
) {
    let subject = subjects::raw(&node);
    let mut js: Option<jetstream::Context> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let empty = buffer.lock().map(|b| b.queue.is_empty()).unwrap_or(true);
        if empty {
            if shutdown.is_set() {
                return;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            continue;
        }
        let Some(ctx) = js.clone() else {
            match connect(&nats, &streams).await {
                Ok(c) => {
                    tracing::info!(subject, "connected to NATS");
                    stats.nats_up.store(1, Ordering::Relaxed);
                    js = Some(c);
                    backoff = Duration::from_millis(200);
                }
                Err(e) => {
                    stats.nats_up.store(0, Ordering::Relaxed);
                    tracing::warn!("NATS unreachable, buffering: {e:#}");
                    if shutdown.is_set() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        };
        // Take up to max_in_flight batches (cheap clones) and publish them pipelined.
        let take: Vec<(Bytes, String, u64)> = match buffer.lock() {
            Ok(b) => b
                .queue
                .iter()
                .take(max_in_flight)
                .map(|e| (e.payload.clone(), e.msg_id.clone(), e.events))
                .collect(),
            Err(_) => return,
        };
        let mut acks = Vec::with_capacity(take.len());
        let mut failed = false;
        for (payload, msg_id, _) in &take {
            let out = Outgoing {
                subject: subject.clone(),
                payload: payload.clone(),
                msg_id: msg_id.clone(),
                content: CONTENT_EVENT_BATCH,
            };
            match tokio::time::timeout(Duration::from_secs(5), publish::send(&ctx, out)).await {
                Ok(Ok(f)) => acks.push(f),
                Ok(Err(e)) => {
                    tracing::warn!("publish failed: {e:#}");
                    failed = true;
                    break;
                }
                Err(_) => {
                    tracing::warn!("publish timed out");
                    failed = true;
                    break;
                }
            }
        }
        let mut acked = 0usize;
        for f in acks {
            match tokio::time::timeout(Duration::from_secs(10), f).await {
                Ok(Ok(_)) => acked += 1,
                Ok(Err(e)) => {
                    tracing::warn!("JetStream did not ack: {e}");
                    failed = true;
                    break;
                }
                Err(_) => {
                    tracing::warn!("JetStream ack timed out");
                    failed = true;
                    break;
                }
            }
        }
        if let Ok(mut b) = buffer.lock() {
            for _ in 0..acked {
                if let Some(e) = b.queue.pop_front() {
                    b.bytes -= e.payload.len();
                    stats.published.fetch_add(e.events, Ordering::Relaxed);
                    stats.batches.fetch_add(1, Ordering::Relaxed);
                }
            }
            stats
                .buffered_bytes
                .store(b.bytes as u64, Ordering::Relaxed);
        }
        if failed {
            stats.publish_errors.fetch_add(1, Ordering::Relaxed);
            stats.nats_up.store(0, Ordering::Relaxed);
            if shutdown.is_set() && acked == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn connect(
    nats: &lanner_contract::bus::NatsArgs,
    streams: &lanner_contract::bus::StreamSettings,
) -> Result<jetstream::Context> {
    let client = tokio::time::timeout(Duration::from_secs(6), nats.connect("lanner-capture"))
        .await
        .context("connecting to NATS timed out")??;
    let js = jetstream::new(client);
    ensure_streams(&js, streams).await?;
    Ok(js)
}
