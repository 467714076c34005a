//! `--replay FILE`: publish a JSON-lines event file, or a binary recording
//! (`--record FILE.lnrec`, [`lanner_contract::recording`]), to `lanner.raw.<node>`.
//!
//! A recording's frames are read and checked on one thread (each batch against the
//! checksum recorded with it, and its header) and published as they are: no text to
//! parse, so replay runs near the speed of bare publishing. A frame that fails its check
//! is reported by number and skipped, as a malformed line is.
//!
//! For JSON lines, a reader thread splits the input into chunks, parser threads (one per core) parse
//! and encode them, and the async side publishes them in file order, keeping up to
//! `--max-in-flight` batches awaiting JetStream's ack. Each batch's `Nats-Msg-Id` is its
//! subject and a hash of its bytes, and events without an `evt.id` get one derived from their line,
//! so replaying the same file twice stores nothing new. Malformed lines are reported
//! with their line number on stderr, counted, and skipped.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use lanner_contract::bus::{Outgoing, ensure_streams, publish};
use lanner_contract::subjects::{self, CONTENT_EVENT_BATCH};
use lanner_contract::{Event, codec, jsonl, recording};
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
    /// Wall time, from before reading the input to the last ack.
    pub elapsed: Duration,
    /// From the first publish to the last ack (as a bare publishing loop is timed).
    pub publishing: Duration,
    /// The subject published to.
    pub subject: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let publishing = self.publishing.as_secs_f64().max(1e-9);
        write!(
            f,
            "replayed {} events in {} batches ({} already stored) to {} in {:.3}s ({:.0} events/s, {:.1} MiB/s; first publish to last ack {:.3}s, {:.0} events/s); {} malformed lines skipped",
            self.events,
            self.batches,
            self.duplicate_batches,
            self.subject,
            secs,
            self.events as f64 / secs,
            self.bytes as f64 / secs / (1 << 20) as f64,
            publishing,
            self.events as f64 / publishing,
            self.malformed
        )
    }
}

/// One encoded batch, numbered in file order.
struct Batch {
    seq: u64,
    payload: Bytes,
    /// Hash of the payload ([`recording::checksum`]), for its message id (computed
    /// beside parsing or checking, off the publishing loop).
    hash: u128,
    events: u64,
    malformed: u64,
}

impl Batch {
    fn new(seq: u64, payload: Bytes, events: u64, malformed: u64) -> Self {
        Batch {
            seq,
            hash: recording::checksum(&payload),
            payload,
            events,
            malformed,
        }
    }
}

/// Lines of the input, numbered in file order, for one batch: one buffer, and where
/// each line ends in it.
struct Chunk {
    seq: u64,
    first_line: usize,
    text: String,
    ends: Vec<usize>,
}

impl Chunk {
    fn new(seq: u64, first_line: usize, max_events: usize, max_bytes: usize) -> Self {
        Chunk {
            seq,
            first_line,
            text: String::with_capacity(max_bytes.saturating_mul(3).min(16 << 20)),
            ends: Vec::with_capacity(max_events),
        }
    }

    /// Empties a returned chunk for reuse (its buffers keep their memory).
    fn reuse(mut self, seq: u64, first_line: usize) -> Self {
        self.seq = seq;
        self.first_line = first_line;
        self.text.clear();
        self.ends.clear();
        self
    }

    fn lines(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| self.text.get(start..end).unwrap_or_default())
    }
}

/// Reads the input into chunks of at most `max_events` lines or about `max_bytes`
/// of JSON, and deals them to the parser threads.
fn read_chunks(
    input: impl Read,
    max_events: usize,
    max_bytes: usize,
    workers: &[std::sync::mpsc::SyncSender<Chunk>],
    returned: &std::sync::mpsc::Receiver<Chunk>,
) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let (mut seq, mut line_no, mut bytes) = (0u64, 0usize, 0usize);
    let mut chunk = Chunk::new(seq, 1, max_events, max_bytes);
    let send = |chunk: Chunk| -> Result<()> {
        let worker = &workers[(chunk.seq % workers.len() as u64) as usize];
        worker
            .send(chunk)
            .map_err(|_| anyhow::anyhow!("a parser thread stopped"))
    };
    loop {
        // Appends to the chunk's buffer: no allocation per line.
        let n = reader
            .read_line(&mut chunk.text)
            .with_context(|| format!("reading line {}", line_no + 1))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes += n;
        chunk.ends.push(chunk.text.len());
        // JSON is larger than the binary form, so this bounds the batch bytes.
        if chunk.ends.len() >= max_events || bytes >= max_bytes.saturating_mul(3) {
            seq += 1;
            // The parsers hand chunks back: fresh memory would cost page faults.
            let next = match returned.try_recv() {
                Ok(chunk) => chunk.reuse(seq, line_no + 1),
                Err(_) => Chunk::new(seq, line_no + 1, max_events, max_bytes),
            };
            send(std::mem::replace(&mut chunk, next))?;
            bytes = 0;
        }
    }
    if !chunk.ends.is_empty() {
        send(chunk)?;
    }
    Ok(())
}

/// A frame's buffer on its way to JetStream; dropped once published, it goes back to
/// [`relay_frames`], which reads the next frames into memory already paged in (fresh memory
/// for every frame cost more than everything else the replay does).
struct Recycled {
    buf: Vec<u8>,
    home: std::sync::mpsc::Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        // The reader may be gone (end of input): then the buffer is just freed.
        let _ = self.home.send(std::mem::take(&mut self.buf));
    }
}

/// Reads a recording's frames (into buffers handed back by [`Recycled`] when there
/// are some), checks each ([`recording::Frame::check`]: its checksum and its batch's
/// header) and passes the bytes on unchanged; a frame that fails is reported and
/// skipped (counted as one malformed input). One thread does it all: checking costs
/// less than handing frames to other threads would.
fn relay_frames(input: impl Read, tx: mpsc::Sender<Batch>) -> Result<()> {
    let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut reader = recording::Reader::new(input)?;
    while let Some(frame) = reader.next_into(returned.try_recv().unwrap_or_default()) {
        let frame = frame?;
        // Frames are numbered from 1, batches from 0.
        let seq = frame.number - 1;
        let batch = match frame.check() {
            Ok(checked) => Batch {
                seq,
                payload: Bytes::from_owner(Recycled {
                    buf: frame.batch,
                    home: give_back.clone(),
                }),
                hash: checked.checksum,
                events: checked.events as u64,
                malformed: 0,
            },
            Err(e) => {
                eprintln!("frame {}: skipped: {e}", frame.number);
                Batch {
                    seq,
                    payload: Bytes::new(),
                    hash: 0,
                    events: 0,
                    malformed: 1,
                }
            }
        };
        if tx.blocking_send(batch).is_err() {
            anyhow::bail!("the publishing side stopped");
        }
    }
    Ok(())
}

/// Parses and encodes chunks: events without `evt.id` get one derived from their line,
/// events without `evt.hostname` get the node; equal values are shared so each is
/// written once per batch.
fn parse_chunks(
    node: &str,
    rx: std::sync::mpsc::Receiver<Chunk>,
    tx: mpsc::Sender<Batch>,
    give_back: std::sync::mpsc::Sender<Chunk>,
) {
    let mut parser = jsonl::LineParser::sharing();
    let node: lanner_contract::model::Text = node.into();
    // Kept across chunks: a batch of events is a few MiB, and fresh memory costs page
    // faults every time.
    let mut events: Vec<Event> = Vec::new();
    for chunk in rx {
        events.clear();
        let mut malformed = 0u64;
        for (i, line) in chunk.lines().enumerate() {
            let line_no = chunk.first_line + i;
            let text = line.trim_end();
            if text.is_empty() {
                continue;
            }
            // Parsed in place: an event is a few KB, moving it costs a copy.
            events.push(Event::default());
            let Some(ev) = events.last_mut() else {
                continue;
            };
            match parser.parse_into(text, ev) {
                Ok(()) => {
                    if ev.evt_id.is_none() {
                        let h = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
                        ev.evt_id = Some(format!("{h:016x}-{line_no}").into());
                    }
                    if ev.evt_hostname.is_none() {
                        ev.evt_hostname = Some(node.clone());
                    }
                }
                Err(e) => {
                    events.pop();
                    malformed += 1;
                    eprintln!("line {line_no}: skipped: {e}");
                }
            }
        }
        parser.clear();
        let batch = Batch::new(
            chunk.seq,
            codec::encode_batch(&events).into(),
            events.len() as u64,
            malformed,
        );
        // The reader may be gone (end of input): then the chunk is just freed.
        let _ = give_back.send(chunk);
        if tx.blocking_send(batch).is_err() {
            return;
        }
    }
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
    // Peek at the first bytes: a recording starts with its magic. A small buffer: a
    // recording's frames are read straight into their own buffers, past it (JSON lines
    // get a larger one in `read_chunks`).
    let mut input = BufReader::new(input);
    let recording = recording::is_recording(input.fill_buf().context("reading the input")?);
    // A few batches ready ahead of the publisher are enough; more would only hold
    // memory (and fresh memory costs page faults).
    let (tx, mut rx) = mpsc::channel::<Batch>(cli.max_in_flight.clamp(1, 8));
    let (max_events, max_bytes) = (cli.batch_events.max(1), cli.batch_bytes);
    let reader = if recording {
        std::thread::spawn(move || relay_frames(input, tx))
    } else {
        // Parsing JSON is the expensive part: one parser per core, the reader deals
        // chunks round-robin, and batches are put back in file order before publishing.
        let parsers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        let mut inboxes = Vec::with_capacity(parsers);
        let (give_back, returned) = std::sync::mpsc::channel::<Chunk>();
        for _ in 0..parsers {
            let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<Chunk>(2);
            let (node, tx, give_back) = (node.to_owned(), tx.clone(), give_back.clone());
            std::thread::spawn(move || parse_chunks(&node, chunk_rx, tx, give_back));
            inboxes.push(chunk_tx);
        }
        drop(tx);
        std::thread::spawn(move || read_chunks(input, max_events, max_bytes, &inboxes, &returned))
    };

    let start = Instant::now();
    let mut summary = Summary {
        subject: subject.clone(),
        ..Default::default()
    };
    let mut first_publish: Option<Instant> = None;
    let mut in_flight: VecDeque<(PublishAckFuture, u64, u64)> = VecDeque::new();
    let mut next_seq = 0u64;
    let mut waiting: BTreeMap<u64, Batch> = BTreeMap::new();
    while let Some(batch) = rx.recv().await {
        waiting.insert(batch.seq, batch);
        while let Some(batch) = waiting.remove(&next_seq) {
            next_seq += 1;
            summary.malformed += batch.malformed;
            if batch.events == 0 {
                continue;
            }
            if in_flight.len() >= cli.max_in_flight.max(1)
                && let Some(oldest) = in_flight.pop_front()
            {
                settle(oldest, &mut summary).await?;
            }
            // The subject is part of the id: the same file replayed to another node
            // is new data there, not a duplicate.
            let msg_id = format!("replay:{subject}:{:032x}", batch.hash);
            let len = batch.payload.len() as u64;
            first_publish.get_or_insert_with(Instant::now);
            let out = Outgoing {
                subject: subject.clone(),
                payload: batch.payload,
                msg_id,
                content: CONTENT_EVENT_BATCH,
            };
            in_flight.push_back((publish::send(&js, out).await?, batch.events, len));
        }
    }
    if !waiting.is_empty() {
        anyhow::bail!("a parser thread stopped before finishing its batches");
    }
    for pending in in_flight {
        settle(pending, &mut summary).await?;
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))??;
    summary.elapsed = start.elapsed();
    summary.publishing = first_publish.map_or(Duration::ZERO, |t| t.elapsed());
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
