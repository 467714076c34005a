//! The loop every transforming stage runs: pull a batch from a durable consumer, decode,
//! dead-letter what does not decode, process, publish, and ack the inputs only after
//! JetStream acked every output.
//!
//! At-least-once: if processing or publishing fails, the inputs are nak'ed and come back;
//! outputs carry deterministic `Nats-Msg-Id`s so the redelivered copy is de-duplicated.
//! A message that keeps failing is dead-lettered after `max_deliver - 1` attempts instead
//! of being dropped by JetStream. On shutdown the batches in flight are finished
//! (published and acked) before [`run_stage`] returns.
//!
//! Outputs are sent in order as each batch is processed; waiting for JetStream to store
//! them, then acking that batch's inputs, happens in the background (up to
//! `SETTLING_MAX` batches) while the next batches are processed.
//!
//! A stage whose decoding costs as much as its processing can hand out a [`Decoder`]:
//! the next batch is then pulled and decoded in a task of its own, on the other core,
//! while this one is processed. One whose decoded form is large (the detector's events)
//! can ask for each message to be processed as soon as it is decoded
//! ([`Stage::process_each`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;

use super::dlq::dead_letter;
use super::publish::{Outgoing, acked, send_all};
use super::shutdown::Shutdown;

/// Where a stage reads from and how.
#[derive(Clone, Debug)]
pub struct StageConfig {
    /// Stage name: used for the DLQ subject (`lanner.dlq.<stage>`) and logs.
    pub stage: String,
    /// Input stream name.
    pub stream: String,
    /// Durable consumer name, shared by all replicas of the stage.
    pub durable: String,
    /// Subject filter of the consumer (`lanner.raw.node1`, `lanner.events.>`).
    pub filter_subject: String,
    /// Most messages handed to [`Stage::process`] at once.
    pub batch_max: usize,
    /// How long JetStream waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Most unacknowledged messages outstanding per consumer.
    pub max_ack_pending: i64,
    /// Deliveries before a failing message is dead-lettered.
    pub max_deliver: i64,
}

impl StageConfig {
    /// Defaults suited to batches of events.
    pub fn new(stage: &str, stream: &str, durable: &str, filter_subject: &str) -> Self {
        StageConfig {
            stage: stage.to_owned(),
            stream: stream.to_owned(),
            durable: durable.to_owned(),
            filter_subject: filter_subject.to_owned(),
            batch_max: 64,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1024,
            max_deliver: 10,
        }
    }
}

/// One decoded input message.
#[derive(Debug)]
pub struct Delivery<T> {
    /// Subject it was published on.
    pub subject: String,
    /// Its sequence in the input stream (stable across redeliveries).
    pub stream_seq: u64,
    /// The decoded value.
    pub value: T,
}

/// A decoder that runs apart from its stage (see [`Stage::decoder`]): subject, headers and
/// payload in, the decoded input or the reason it goes to the DLQ out.
pub type Decoder<T> = Box<dyn FnMut(&str, Option<&HeaderMap>, &[u8]) -> Result<T, String> + Send>;

/// A transforming stage.
pub trait Stage: Send {
    /// What one input message decodes to.
    type Input: Send + 'static;

    /// Decodes one message; an `Err` carries the reason it goes to the DLQ.
    fn decode(
        &mut self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<Self::Input, String>;

    /// Turns a batch of inputs into the messages to publish. An `Err` naks the batch.
    fn process(
        &mut self,
        batch: Vec<Delivery<Self::Input>>,
    ) -> impl Future<Output = anyhow::Result<Vec<Outgoing>>> + Send;

    /// A decoder to run in a task of its own, so the next batch is pulled and decoded
    /// (on another core) while this one is processed; for stages whose decoding costs
    /// as much as their processing. `None`, the default: [`Stage::decode`] runs inline.
    fn decoder(&self) -> Option<Decoder<Self::Input>> {
        None
    }

    /// Whether each message is processed right after it is decoded, while its decoded
    /// form is still in the cache, instead of the whole pulled batch being decoded
    /// first; for stages whose decoded form is much larger than the message (the
    /// detector's events). Outputs are still published, and inputs acked, once per
    /// pulled batch. Applies when decoding runs inline (no [`Stage::decoder`]).
    fn process_each(&self) -> bool {
        false
    }
}

/// Counters a stage exposes as metrics.
#[derive(Debug, Default)]
pub struct StageStats {
    /// Messages received from the input.
    pub received: AtomicU64,
    /// Messages sent to the DLQ.
    pub dead_lettered: AtomicU64,
    /// Messages published (stored by JetStream).
    pub published: AtomicU64,
    /// Published messages JetStream recognised as duplicates.
    pub duplicates: AtomicU64,
    /// Input messages acked.
    pub acked: AtomicU64,
    /// Batches that failed (processing or publishing) and were nak'ed.
    pub failed_batches: AtomicU64,
}

impl StageStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Current value of a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Opens (creating if needed) the durable pull consumer a stage reads from.
pub async fn open_consumer(
    js: &jetstream::Context,
    cfg: &StageConfig,
) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
    let stream = js
        .get_stream(&cfg.stream)
        .await
        .with_context(|| format!("opening stream {}", cfg.stream))?;
    stream
        .get_or_create_consumer(
            &cfg.durable,
            pull::Config {
                durable_name: Some(cfg.durable.clone()),
                filter_subject: cfg.filter_subject.clone(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: cfg.ack_wait,
                max_ack_pending: cfg.max_ack_pending,
                max_deliver: cfg.max_deliver,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("opening consumer {} on {}", cfg.durable, cfg.stream))
}

/// Runs the stage until `shutdown` is set (finishing the batch in flight) or the
/// consumer's message stream ends.
pub async fn run_stage<S: Stage>(
    js: jetstream::Context,
    cfg: StageConfig,
    mut stage: S,
    shutdown: Shutdown,
    stats: Arc<StageStats>,
) -> anyhow::Result<()> {
    let consumer = open_consumer(&js, &cfg).await?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(cfg.batch_max)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .context("starting to pull messages")?;
    let mut chunks = messages.ready_chunks(cfg.batch_max.max(1));
    tracing::info!(stage = %cfg.stage, stream = %cfg.stream, durable = %cfg.durable, filter = %cfg.filter_subject, "consuming");
    if let Some(decoder) = stage.decoder() {
        return run_pipelined(js, cfg, stage, shutdown, stats, chunks, decoder).await;
    }
    let mut settling = Settling::new(&js, &cfg, &stats);
    loop {
        let chunk = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            c = chunks.next() => c,
        };
        let Some(chunk) = chunk else {
            tracing::warn!(stage = %cfg.stage, "message stream ended");
            break;
        };
        let processed = if stage.process_each() {
            process_each(&cfg, &mut stage, &stats, chunk).await
        } else {
            let decoded = decode_chunk(&cfg, &stats, chunk, |subject, headers, payload| {
                stage.decode(subject, headers, payload)
            });
            process_chunk(&mut stage, decoded).await
        };
        settling.settle(processed).await?;
    }
    settling.finish().await?;
    tracing::info!(stage = %cfg.stage, "stopped after finishing the batch in flight");
    Ok(())
}

/// [`run_stage`] with decoding in its own task: pulling and decoding batch N+1 overlaps
/// processing, publishing and acking batch N. On shutdown the batch in process is
/// finished; one already decoded is nak'ed, to be redelivered at once.
async fn run_pipelined<S: Stage, C>(
    js: jetstream::Context,
    cfg: StageConfig,
    mut stage: S,
    shutdown: Shutdown,
    stats: Arc<StageStats>,
    mut chunks: C,
    mut decoder: Decoder<S::Input>,
) -> anyhow::Result<()>
where
    C: futures::Stream<Item = Vec<PullItem>> + Send + Unpin + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<DecodedChunk<S::Input>>(1);
    let decoding = {
        let (cfg, stats) = (cfg.clone(), stats.clone());
        tokio::spawn(async move {
            loop {
                let chunk = tokio::select! {
                    _ = tx.closed() => return,
                    c = chunks.next() => c,
                };
                let Some(chunk) = chunk else {
                    tracing::warn!(stage = %cfg.stage, "message stream ended");
                    return;
                };
                let decoded = decode_chunk(&cfg, &stats, chunk, &mut decoder);
                if let Err(unsent) = tx.send(decoded).await {
                    unsent.0.nak().await;
                    return;
                }
            }
        })
    };
    let mut settling = Settling::new(&js, &cfg, &stats);
    loop {
        let decoded = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            d = rx.recv() => d,
        };
        let Some(decoded) = decoded else {
            break;
        };
        settling
            .settle(process_chunk(&mut stage, decoded).await)
            .await?;
    }
    rx.close();
    while let Some(decoded) = rx.recv().await {
        decoded.nak().await;
    }
    let _ = decoding.await;
    settling.finish().await?;
    tracing::info!(stage = %cfg.stage, "stopped after finishing the batch in flight");
    Ok(())
}

type PullItem = Result<jetstream::Message, async_nats::error::Error<pull::MessagesErrorKind>>;

/// A message taken from the consumer, with its stream sequence and delivery count.
type Taken = (jetstream::Message, u64, i64);

/// A message that did not decode, with its stream sequence and the reason.
type Undecodable = (jetstream::Message, u64, String);

/// A pulled batch, decoded: what goes to the stage, and what goes to the DLQ.
struct DecodedChunk<T> {
    good: Vec<Delivery<T>>,
    /// The messages of `good`, with their stream sequence and delivery count.
    held: Vec<Taken>,
    /// Undecodable messages, with their stream sequence and the reason.
    bad: Vec<Undecodable>,
}

impl<T> DecodedChunk<T> {
    /// Hands every message back for immediate redelivery.
    async fn nak(self) {
        let msgs = self.held.iter().map(|(m, _, _)| m);
        for msg in msgs.chain(self.bad.iter().map(|(m, _, _)| m)) {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
        }
    }
}

fn decode_chunk<T>(
    cfg: &StageConfig,
    stats: &StageStats,
    chunk: Vec<PullItem>,
    mut decode: impl FnMut(&str, Option<&HeaderMap>, &[u8]) -> Result<T, String>,
) -> DecodedChunk<T> {
    let mut out = DecodedChunk {
        good: Vec::with_capacity(chunk.len()),
        held: Vec::with_capacity(chunk.len()),
        bad: Vec::new(),
    };
    for item in chunk {
        let Some((msg, seq, delivered)) = received(cfg, stats, item) else {
            continue;
        };
        match decode(msg.subject.as_str(), msg.headers.as_ref(), &msg.payload) {
            Ok(value) => {
                out.good.push(Delivery {
                    subject: msg.subject.to_string(),
                    stream_seq: seq,
                    value,
                });
                out.held.push((msg, seq, delivered));
            }
            Err(reason) => out.bad.push((msg, seq, reason)),
        }
    }
    out
}

/// A pulled batch, processed: its messages and what processing them gave, to be
/// settled (published, acked or nak'ed) as one.
struct Processed {
    /// The decoded messages, with their stream sequence and delivery count.
    held: Vec<Taken>,
    /// Undecodable messages, with their stream sequence and the reason.
    bad: Vec<Undecodable>,
    /// The outputs of `held`, or why processing failed.
    outs: anyhow::Result<Vec<Outgoing>>,
}

/// Processes a decoded batch at once.
async fn process_chunk<S: Stage>(stage: &mut S, decoded: DecodedChunk<S::Input>) -> Processed {
    let DecodedChunk { good, held, bad } = decoded;
    let outs = if held.is_empty() {
        Ok(Vec::new())
    } else {
        stage.process(good).await
    };
    Processed { held, bad, outs }
}

/// A processed batch whose outputs are sent: what is left is waiting for JetStream to
/// ack them, then acking (or nak'ing) the inputs.
struct Sent {
    held: Vec<Taken>,
    acks: anyhow::Result<Vec<async_nats::jetstream::context::PublishAckFuture>>,
}

/// Pulled batches whose outputs await JetStream's acks: at most this many wait in the
/// background while the next batches are processed.
const SETTLING_MAX: usize = 4;

/// Settles processed batches: dead-letters what did not decode and sends the outputs
/// at once, in order; then waits for JetStream to store the outputs and acks the
/// inputs, in a task of its own when there are outputs, so that the round trip (the
/// acks may queue behind pulled messages on the same connection) overlaps processing
/// the next batches. Inputs are still acked only once their outputs are stored.
struct Settling {
    js: jetstream::Context,
    cfg: Arc<StageConfig>,
    stats: Arc<StageStats>,
    pending: std::collections::VecDeque<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Settling {
    fn new(js: &jetstream::Context, cfg: &StageConfig, stats: &Arc<StageStats>) -> Self {
        Settling {
            js: js.clone(),
            cfg: Arc::new(cfg.clone()),
            stats: stats.clone(),
            pending: std::collections::VecDeque::new(),
        }
    }

    /// Settles `processed`; returns the error of a dead letter that could not be
    /// published, here or in an earlier batch settling in the background.
    async fn settle(&mut self, processed: Processed) -> anyhow::Result<()> {
        while self.pending.front().is_some_and(|h| h.is_finished())
            || self.pending.len() >= SETTLING_MAX
        {
            if let Some(h) = self.pending.pop_front() {
                h.await.context("settling task")??;
            }
        }
        let sent = send(&self.js, &self.cfg, &self.stats, processed).await?;
        if !sent.acks.as_ref().is_ok_and(|a| !a.is_empty()) {
            return conclude(&self.js, &self.cfg, &self.stats, sent).await;
        }
        let (js, cfg, stats) = (self.js.clone(), self.cfg.clone(), self.stats.clone());
        self.pending.push_back(tokio::spawn(async move {
            conclude(&js, &cfg, &stats, sent).await
        }));
        Ok(())
    }

    /// Waits for every batch to be settled.
    async fn finish(mut self) -> anyhow::Result<()> {
        while let Some(h) = self.pending.pop_front() {
            h.await.context("settling task")??;
        }
        Ok(())
    }
}

/// A pulled message with its stream sequence and delivery count, counted as
/// received; `None` (logged) for a pull error.
fn received(cfg: &StageConfig, stats: &StageStats, item: PullItem) -> Option<Taken> {
    let msg = match item {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(stage = %cfg.stage, error = %e, "pull error");
            return None;
        }
    };
    StageStats::add(&stats.received, 1);
    let (seq, delivered) = msg
        .info()
        .map(|i| (i.stream_sequence, i.delivered))
        .unwrap_or((0, 1));
    Some((msg, seq, delivered))
}

/// Decodes and processes each message of a pulled batch in turn (see
/// [`Stage::process_each`]). After a failure the rest of the batch is held undecoded,
/// to be redelivered with it.
async fn process_each<S: Stage>(
    cfg: &StageConfig,
    stage: &mut S,
    stats: &StageStats,
    chunk: Vec<PullItem>,
) -> Processed {
    let mut held = Vec::with_capacity(chunk.len());
    let mut bad = Vec::new();
    let mut outs: anyhow::Result<Vec<Outgoing>> = Ok(Vec::new());
    for item in chunk {
        let Some((msg, seq, delivered)) = received(cfg, stats, item) else {
            continue;
        };
        let Ok(all) = &mut outs else {
            held.push((msg, seq, delivered));
            continue;
        };
        match stage.decode(msg.subject.as_str(), msg.headers.as_ref(), &msg.payload) {
            Ok(value) => {
                let one = vec![Delivery {
                    subject: msg.subject.to_string(),
                    stream_seq: seq,
                    value,
                }];
                held.push((msg, seq, delivered));
                match stage.process(one).await {
                    Ok(o) => all.extend(o),
                    Err(e) => outs = Err(e),
                }
            }
            Err(reason) => bad.push((msg, seq, reason)),
        }
    }
    Processed { held, bad, outs }
}

/// Dead-letters the undecodable messages of a batch and sends the outputs of the
/// others.
async fn send(
    js: &jetstream::Context,
    cfg: &StageConfig,
    stats: &StageStats,
    processed: Processed,
) -> anyhow::Result<Sent> {
    let Processed { held, bad, outs } = processed;
    for (msg, seq, reason) in bad {
        tracing::warn!(stage = %cfg.stage, subject = %msg.subject, seq, %reason, "undecodable message sent to the DLQ");
        to_dlq(js, cfg, stats, &msg, seq, &reason).await?;
        StageStats::add(&stats.acked, 1);
    }
    let acks = match outs {
        Ok(outs) if !held.is_empty() => send_all(js, outs).await,
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e),
    };
    Ok(Sent { held, acks })
}

/// Once JetStream stored every output of a batch, acks its inputs; if processing or
/// publishing failed, naks them (or dead-letters those out of deliveries).
async fn conclude(
    js: &jetstream::Context,
    cfg: &StageConfig,
    stats: &StageStats,
    sent: Sent,
) -> anyhow::Result<()> {
    let Sent { held, acks } = sent;
    if held.is_empty() {
        return Ok(());
    }
    let result = match acks {
        Ok(acks) => acked(acks).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(report) => {
            StageStats::add(&stats.published, report.stored);
            StageStats::add(&stats.duplicates, report.duplicates);
            for (msg, _, _) in &held {
                ack(msg).await;
            }
            StageStats::add(&stats.acked, held.len() as u64);
        }
        Err(e) => {
            StageStats::add(&stats.failed_batches, 1);
            tracing::warn!(stage = %cfg.stage, error = format!("{e:#}"), "batch failed; inputs will be redelivered");
            for (msg, seq, delivered) in held {
                if delivered >= cfg.max_deliver - 1 {
                    let reason = format!("processing failed {delivered} times: {e:#}");
                    to_dlq(js, cfg, stats, &msg, seq, &reason).await?;
                } else {
                    let _ = msg
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
                        .await;
                }
            }
        }
    }
    Ok(())
}

/// Publishes a message to the stage's DLQ with the reason, then acks and counts it.
async fn to_dlq(
    js: &jetstream::Context,
    cfg: &StageConfig,
    stats: &StageStats,
    msg: &jetstream::Message,
    seq: u64,
    reason: &str,
) -> anyhow::Result<()> {
    dead_letter(
        js,
        &cfg.stage,
        msg.subject.as_str(),
        seq,
        msg.payload.clone(),
        reason,
    )
    .await?;
    ack(msg).await;
    StageStats::add(&stats.dead_lettered, 1);
    Ok(())
}

async fn ack(msg: &jetstream::Message) {
    if let Err(e) = msg.ack().await {
        tracing::warn!(error = %e, "ack failed; the message will be redelivered and de-duplicated");
    }
}
