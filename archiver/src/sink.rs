//! The archiver's loop for one table: pull from a durable consumer (shared by every
//! replica), decode, dead-letter what does not decode, buffer rows per partition, roll
//! files by rows, bytes and age, write each file create-only, and ack a message only
//! once every file holding its rows is durable.
//!
//! While messages sit in open files they get in-progress acks, so JetStream does not
//! hand them to another replica. A message delivered again (the replica holding it
//! crashed, or an ack was lost) is checked against the archive ([`SeqIndex`]): the rows
//! of partitions that already hold its sequence are not written again. On shutdown the
//! open files are written and their messages acked before [`run_sink`] returns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arrow_array::RecordBatch;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use lanner_contract::bus::StageConfig;
use lanner_contract::bus::dlq::dead_letter;
use lanner_contract::bus::shutdown::Shutdown;
use lanner_contract::bus::stage::open_consumer;
use object_store::path::Path;

use crate::archive::{Archive, Created};
use crate::index::SeqIndex;
use crate::metrics::SinkStats;
use crate::naming::FileName;
use crate::parquet_file::{Provenance, WriteOptions, encode, read_info};
use crate::partition::Partition;
use crate::seqset::SeqSet;
use crate::tables::Table;

/// When an open file is written.
#[derive(Clone, Debug)]
pub struct RollLimits {
    /// Rows in one file.
    pub max_rows: usize,
    /// Bytes buffered for one file (in-memory Arrow size).
    pub max_bytes: usize,
    /// Age of the oldest row in an open file.
    pub max_age: Duration,
}

impl Default for RollLimits {
    fn default() -> Self {
        RollLimits {
            max_rows: 1_000_000,
            max_bytes: 512 << 20,
            max_age: Duration::from_secs(60),
        }
    }
}

/// How one table's sink consumes and writes.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// The table.
    pub table: Table,
    /// Durable consumer name (shared by replicas).
    pub durable: String,
    /// Subject filter.
    pub filter_subject: String,
    /// Ack wait of the consumer; held messages get in-progress acks every third of it.
    pub ack_wait: Duration,
    /// Most unacked messages; files are written before the archiver holds this many.
    pub max_ack_pending: i64,
    /// Messages per pull.
    pub pull_batch: usize,
    /// File roll limits.
    pub roll: RollLimits,
    /// Parquet knobs.
    pub write: WriteOptions,
    /// Crash test hook: abort after writing this many files, before acking.
    pub abort_after_files: Option<u64>,
}

impl SinkConfig {
    /// Defaults for `table`, durable `<prefix>-<table>`.
    pub fn new(table: Table, durable_prefix: &str) -> Self {
        SinkConfig {
            table,
            durable: format!("{durable_prefix}-{}", table.name()),
            filter_subject: table.stream().subjects.to_owned(),
            ack_wait: Duration::from_secs(120),
            max_ack_pending: 50_000,
            pull_batch: 256,
            roll: RollLimits::default(),
            write: WriteOptions::default(),
            abort_after_files: None,
        }
    }
}

struct OpenFile {
    batches: Vec<RecordBatch>,
    seqs: Vec<u64>,
    rows: usize,
    bytes: usize,
    opened: Instant,
    retry_at: Option<Instant>,
    failures: u32,
}

impl OpenFile {
    fn new() -> Self {
        OpenFile {
            batches: Vec::new(),
            seqs: Vec::new(),
            rows: 0,
            bytes: 0,
            opened: Instant::now(),
            retry_at: None,
            failures: 0,
        }
    }
}

struct HeldMessage {
    msg: jetstream::Message,
    pending: usize,
}

struct Sink {
    js: jetstream::Context,
    archive: Archive,
    cfg: SinkConfig,
    stream: String,
    epoch: u64,
    open: BTreeMap<Partition, OpenFile>,
    held: HashMap<u64, HeldMessage>,
    index: SeqIndex,
    stats: Arc<SinkStats>,
}

const STAGE: &str = "archiver";

/// Runs one table's sink until `shutdown` is set, then writes the open files and acks.
pub async fn run_sink(
    js: jetstream::Context,
    archive: Archive,
    cfg: SinkConfig,
    shutdown: Shutdown,
    stats: Arc<SinkStats>,
) -> anyhow::Result<()> {
    let def = cfg.table.stream();
    let mut stream = js
        .get_stream(def.name)
        .await
        .with_context(|| format!("opening stream {}", def.name))?;
    let epoch = stream
        .info()
        .await
        .context("reading stream info")?
        .created
        .unix_timestamp()
        .max(0) as u64;
    let mut sc = StageConfig::new(STAGE, def.name, &cfg.durable, &cfg.filter_subject);
    sc.ack_wait = cfg.ack_wait;
    sc.max_ack_pending = cfg.max_ack_pending;
    sc.max_deliver = -1;
    sc.batch_max = cfg.pull_batch;
    let consumer = open_consumer(&js, &sc).await?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(cfg.pull_batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .context("starting to pull messages")?;
    let mut chunks = messages.ready_chunks(cfg.pull_batch.max(1));
    tracing::info!(table = cfg.table.name(), durable = %cfg.durable, archive = %archive.url, epoch, "archiving");
    let mut sink = Sink {
        js,
        archive,
        stream: def.name.to_owned(),
        epoch,
        cfg,
        open: BTreeMap::new(),
        held: HashMap::new(),
        index: SeqIndex::new(),
        stats,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let progress_every = sink.cfg.ack_wait / 3;
    let mut last_progress = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            _ = tick.tick() => {
                sink.roll_aged().await;
                if last_progress.elapsed() >= progress_every {
                    sink.progress().await;
                    last_progress = Instant::now();
                }
                sink.index.forget_older_than(Duration::from_secs(60));
            }
            chunk = chunks.next() => {
                let Some(chunk) = chunk else {
                    tracing::warn!(table = sink.cfg.table.name(), "message stream ended");
                    break;
                };
                for item in chunk {
                    match item {
                        Ok(msg) => sink.take(msg).await?,
                        Err(e) => tracing::warn!(error = %e, "pull error"),
                    }
                }
                sink.roll_full().await;
            }
        }
    }
    tracing::info!(
        table = sink.cfg.table.name(),
        files = sink.open.len(),
        "shutting down: writing open files"
    );
    let parts: Vec<Partition> = sink.open.keys().copied().collect();
    let mut failed = 0;
    for p in parts {
        if !sink.flush(p).await {
            failed += 1;
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} open files could not be written; their messages will be redelivered"
    );
    Ok(())
}

impl Sink {
    fn table(&self) -> Table {
        self.cfg.table
    }

    /// Takes one message into the open files (or the DLQ, or acks it as already archived).
    async fn take(&mut self, msg: jetstream::Message) -> anyhow::Result<()> {
        SinkStats::add(&self.stats.messages, 1);
        let (seq, delivered, published) = match msg.info() {
            Ok(i) => (
                i.stream_sequence,
                i.delivered,
                (i.published.unix_timestamp_nanos()) as i64,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "message without JetStream info ignored");
                return Ok(());
            }
        };
        if let Some(h) = self.held.get_mut(&seq) {
            // Delivered again while its rows sit in an open file: ack the newest delivery later.
            h.msg = msg;
            return Ok(());
        }
        let mut parts = match self
            .table()
            .decode(msg.subject.as_str(), &msg.payload, published)
        {
            Ok(p) => p,
            Err(reason) => {
                tracing::warn!(subject = %msg.subject, seq, %reason, "undecodable message sent to the DLQ");
                dead_letter(
                    &self.js,
                    STAGE,
                    msg.subject.as_str(),
                    seq,
                    msg.payload.clone(),
                    &reason,
                )
                .await?;
                SinkStats::add(&self.stats.dead_lettered, 1);
                self.ack(&msg).await;
                return Ok(());
            }
        };
        if delivered > 1 && !parts.is_empty() {
            let mut keep = BTreeMap::new();
            for (p, batch) in parts {
                let prefix = p.prefix(self.table().name());
                if !self
                    .index
                    .holds(&self.archive, &prefix, self.epoch, seq)
                    .await?
                {
                    keep.insert(p, batch);
                }
            }
            if keep.is_empty() {
                SinkStats::add(&self.stats.already_archived, 1);
            }
            parts = keep;
        }
        if parts.is_empty() {
            self.ack(&msg).await;
            return Ok(());
        }
        self.held.insert(
            seq,
            HeldMessage {
                msg,
                pending: parts.len(),
            },
        );
        SinkStats::add(&self.stats.held, 1);
        for (p, batch) in parts {
            let f = self.open.entry(p).or_insert_with(OpenFile::new);
            f.rows += batch.num_rows();
            f.bytes += batch.get_array_memory_size();
            f.batches.push(batch);
            f.seqs.push(seq);
        }
        Ok(())
    }

    async fn ack(&self, msg: &jetstream::Message) {
        match msg.ack().await {
            Ok(()) => SinkStats::add(&self.stats.acked, 1),
            Err(e) => {
                tracing::warn!(error = %e, "ack failed; the message will be redelivered and found archived")
            }
        }
    }

    /// Writes files that reached their row or byte limit, or all of them when the
    /// archiver holds nearly as many messages as the consumer lets it.
    async fn roll_full(&mut self) {
        let held_limit = (self.cfg.max_ack_pending.max(4) as usize) * 3 / 4;
        let all = self.held.len() >= held_limit;
        let full: Vec<Partition> = self
            .open
            .iter()
            .filter(|(_, f)| {
                all || f.rows >= self.cfg.roll.max_rows || f.bytes >= self.cfg.roll.max_bytes
            })
            .filter(|(_, f)| f.retry_at.is_none_or(|t| t <= Instant::now()))
            .map(|(p, _)| *p)
            .collect();
        for p in full {
            self.flush(p).await;
        }
    }

    async fn roll_aged(&mut self) {
        let now = Instant::now();
        let aged: Vec<Partition> = self
            .open
            .iter()
            .filter(|(_, f)| {
                f.opened.elapsed() >= self.cfg.roll.max_age && f.retry_at.is_none_or(|t| t <= now)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in aged {
            self.flush(p).await;
        }
    }

    async fn progress(&self) {
        for h in self.held.values() {
            if let Err(e) = h.msg.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "in-progress ack failed");
            }
        }
    }

    /// Writes one open file and acks the messages it completes. `false` if it failed
    /// (the file stays open and is retried later).
    async fn flush(&mut self, p: Partition) -> bool {
        let Some(mut f) = self.open.remove(&p) else {
            return true;
        };
        match self.write(p, &f).await {
            Ok(()) => {
                if self
                    .cfg
                    .abort_after_files
                    .is_some_and(|n| SinkStats::get(&self.stats.files) >= n)
                {
                    tracing::error!(
                        "aborting after a file write, before acking (--abort-after-files)"
                    );
                    std::process::abort();
                }
                for seq in &f.seqs {
                    let done = match self.held.get_mut(seq) {
                        Some(h) => {
                            h.pending = h.pending.saturating_sub(1);
                            h.pending == 0
                        }
                        None => false,
                    };
                    if done && let Some(h) = self.held.remove(seq) {
                        self.stats
                            .held
                            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        self.ack(&h.msg).await;
                    }
                }
                true
            }
            Err(e) => {
                SinkStats::add(&self.stats.write_errors, 1);
                f.failures += 1;
                let backoff = Duration::from_millis(500u64 << f.failures.min(6));
                tracing::warn!(table = self.table().name(), partition = %p.prefix(self.table().name()), error = format!("{e:#}"), retry_in = ?backoff, "writing a file failed; retrying");
                f.retry_at = Some(Instant::now() + backoff);
                self.open.insert(p, f);
                false
            }
        }
    }

    async fn write(&mut self, p: Partition, f: &OpenFile) -> anyhow::Result<()> {
        let started = Instant::now();
        let table = self.table();
        let seqs = SeqSet::from_iter(f.seqs.iter().copied());
        let name = FileName::for_seqs(self.epoch, &seqs);
        let prefix = p.prefix(table.name());
        let path = Path::from(format!("{prefix}/{name}"));
        let prov = Provenance {
            stream: self.stream.clone(),
            epoch: self.epoch,
            seqs: seqs.clone(),
            compacted_from: Vec::new(),
        };
        let batches = f.batches.clone();
        let opts = self.cfg.write.clone();
        let (bytes, rows) =
            tokio::task::spawn_blocking(move || encode(table, &batches, &prov, &opts))
                .await
                .context("encoding task")??;
        let size = bytes.len() as u64;
        match self.archive.put_create(&path, bytes).await? {
            Created::Written => {}
            Created::AlreadyExists => {
                let info = read_info(&self.archive.store, &path, None).await?;
                anyhow::ensure!(
                    info.seqs == seqs,
                    "{path} exists with other sequences than this file's"
                );
                tracing::info!(%path, "file already written (a redelivery of the same messages)");
            }
        }
        self.index.remember(&prefix, path.clone(), name, size, seqs);
        SinkStats::add(&self.stats.files, 1);
        SinkStats::add(&self.stats.rows, rows as u64);
        SinkStats::add(&self.stats.bytes, size);
        SinkStats::add(
            &self.stats.write_micros,
            started.elapsed().as_micros() as u64,
        );
        tracing::debug!(%path, rows, bytes = size, "file written");
        Ok(())
    }
}
