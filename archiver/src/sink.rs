//! The archiver's loop for one table: pull from a durable consumer (shared by every
//! replica), decode, dead-letter what does not decode, append rows into the open file of
//! their partition (long-lived columns, see [`crate::rows`]), roll files by rows,
//! bytes and age, write each file create-only, and ack a message only once every file
//! holding its rows is durable.
//!
//! Files are encoded and written by background tasks (at most
//! [`SinkConfig::concurrent_writes`] at a time), so consuming goes on meanwhile; a
//! message's ack waits for the tasks of all its files. A file whose write failed is
//! retried with backoff, its rows kept.
//!
//! While messages sit in open files they get in-progress acks, so JetStream does not
//! hand them to another replica. Every message taken is checked against the archive
//! ([`SeqIndex`]), whatever its delivery count says: the rows of partitions that already
//! hold its sequence (a replica crashed after writing them, or an ack was lost) are not
//! written again. On shutdown the
//! open files are written and their messages acked before [`run_sink`] returns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use lanner_contract::bus::StageConfig;
use lanner_contract::bus::dlq::dead_letter;
use lanner_contract::bus::shutdown::Shutdown;
use lanner_contract::bus::stage::open_consumer;
use object_store::path::Path;
use tokio::task::JoinSet;

use crate::archive::{Archive, Created};
use crate::index::SeqIndex;
use crate::metrics::SinkStats;
use crate::naming::FileName;
use crate::parquet_file::{Provenance, WriteOptions, encode, read_info};
use crate::partition::Partition;
use crate::rows::{Decoded, FileRows};
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
    /// Files encoded and written at the same time, beside consuming.
    pub concurrent_writes: usize,
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
            concurrent_writes: 2,
            abort_after_files: None,
        }
    }
}

/// Most rows a new file's columns are made room for up front.
const MAX_PRESIZED_ROWS: usize = 256 * 1024;

/// The rows of one partition waiting to be written, and the messages they come from.
struct OpenFile {
    rows: FileRows,
    seqs: Vec<u64>,
    opened: Instant,
}

impl OpenFile {
    /// An empty file whose columns start with room for `rows` rows.
    fn new(rows: usize) -> Self {
        OpenFile {
            rows: FileRows::with_capacity(rows),
            seqs: Vec::new(),
            opened: Instant::now(),
        }
    }
}

/// A file whose write failed, waiting to be tried again.
struct Retry {
    part: Partition,
    file: OpenFile,
    failures: u32,
    at: Instant,
}

/// What a write task hands back.
struct Written {
    part: Partition,
    file: OpenFile,
    failures: u32,
    started: Instant,
    result: anyhow::Result<WrittenFile>,
}

/// A file that is durable in the archive.
struct WrittenFile {
    prefix: String,
    path: Path,
    name: FileName,
    seqs: SeqSet,
    size: u64,
    rows: usize,
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
    writes: JoinSet<Written>,
    retries: Vec<Retry>,
    held: HashMap<u64, HeldMessage>,
    index: SeqIndex,
    stats: Arc<SinkStats>,
    /// Events of messages already appended, decoded into again.
    pool: Arc<lanner_contract::batch_pool::BatchPool>,
    /// Rows of the last file closed: the next file's columns start that large, so
    /// they are not copied as they grow (files of a steady stream are alike).
    last_file_rows: usize,
}

const STAGE: &str = "archiver";

/// One turn of the loop.
enum Step {
    Shutdown,
    Tick,
    Written(Box<Result<Written, tokio::task::JoinError>>),
    Chunk(Option<Vec<Result<jetstream::Message, MessagesError>>>),
}

type MessagesError = async_nats::error::Error<jetstream::consumer::pull::MessagesErrorKind>;

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
        writes: JoinSet::new(),
        retries: Vec::new(),
        held: HashMap::new(),
        index: SeqIndex::new(),
        stats,
        pool: Arc::new(lanner_contract::batch_pool::BatchPool::new(4)),
        last_file_rows: 0,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let progress_every = sink.cfg.ack_wait / 3;
    let mut last_progress = Instant::now();
    loop {
        let writing = !sink.writes.is_empty();
        let step = tokio::select! {
            biased;
            _ = shutdown.wait() => Step::Shutdown,
            _ = tick.tick() => Step::Tick,
            Some(done) = sink.writes.join_next(), if writing => Step::Written(Box::new(done)),
            chunk = chunks.next() => Step::Chunk(chunk),
        };
        match step {
            Step::Shutdown => break,
            Step::Tick => {
                sink.roll_aged().await;
                sink.retry_due().await;
                if last_progress.elapsed() >= progress_every {
                    sink.progress().await;
                    last_progress = Instant::now();
                }
                sink.index.forget_older_than(Duration::from_secs(60));
            }
            Step::Written(done) => sink.written(*done).await,
            Step::Chunk(None) => {
                tracing::warn!(table = sink.cfg.table.name(), "message stream ended");
                break;
            }
            Step::Chunk(Some(chunk)) => {
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
        files = sink.open.len() + sink.retries.len(),
        "shutting down: writing open files"
    );
    let parts: Vec<Partition> = sink.open.keys().copied().collect();
    for p in parts {
        sink.flush(p).await;
    }
    for r in std::mem::take(&mut sink.retries) {
        sink.start_write(r.part, r.file, r.failures).await;
    }
    sink.drain_writes().await;
    let failed = sink.retries.len();
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
            // Delivered again while its rows wait in an open file or a write: ack the
            // newest delivery later.
            h.msg = msg;
            return Ok(());
        }
        let decoded = match Decoded::decode_with(
            self.table(),
            msg.subject.as_str(),
            &msg.payload,
            published,
            &self.pool,
        ) {
            Ok(d) => d,
            Err(reason) => return self.dead_letter(msg, seq, &reason).await,
        };
        // Every delivery is checked against the archive, the first one too: JetStream's
        // delivery count is no proof that a message was never handed out before (a
        // message was seen arriving with count 2 and then again with count 1, and a
        // recreated consumer starts every count over), and a first delivery with rows
        // already archived would otherwise be written twice. Cheap when nothing matches:
        // a cached listing per partition (refreshed every 2 s) and the footers of the files
        // whose name range covers the sequence.
        let mut parts = decoded.partitions();
        if !parts.is_empty() {
            let mut keep = std::collections::BTreeSet::new();
            for p in parts {
                let prefix = p.prefix(self.table().name());
                if !self
                    .index
                    .holds(&self.archive, &prefix, self.epoch, seq)
                    .await?
                {
                    keep.insert(p);
                }
            }
            if keep.is_empty() {
                tracing::debug!(seq, delivered, "message already archived");
                SinkStats::add(&self.stats.already_archived, 1);
            }
            parts = keep;
        }
        if parts.is_empty() {
            self.ack(&msg).await;
            return Ok(());
        }
        // A batch found damaged while its rows go in appends nothing and is
        // dead-lettered. Only a batch of one partition is appended before it is decoded
        // whole, so no other partition has taken rows of it.
        for &p in &parts {
            let rows = self.last_file_rows.min(MAX_PRESIZED_ROWS);
            let f = self.open.entry(p).or_insert_with(|| OpenFile::new(rows));
            if let Err(reason) = decoded.append_to(p, &mut f.rows) {
                if f.seqs.is_empty() {
                    self.open.remove(&p);
                }
                return self.dead_letter(msg, seq, &reason).await;
            }
            f.seqs.push(seq);
        }
        self.held.insert(
            seq,
            HeldMessage {
                msg,
                pending: parts.len(),
            },
        );
        SinkStats::add(&self.stats.held, 1);
        Ok(())
    }

    /// Sends an undecodable message to the DLQ with `reason`, then acks it.
    async fn dead_letter(
        &mut self,
        msg: jetstream::Message,
        seq: u64,
        reason: &str,
    ) -> anyhow::Result<()> {
        tracing::warn!(subject = %msg.subject, seq, %reason, "undecodable message sent to the DLQ");
        dead_letter(
            &self.js,
            STAGE,
            msg.subject.as_str(),
            seq,
            msg.payload.clone(),
            reason,
        )
        .await?;
        SinkStats::add(&self.stats.dead_lettered, 1);
        self.ack(&msg).await;
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
    /// archiver holds nearly as many messages as the consumer lets it (and no write is
    /// under way that would release some).
    async fn roll_full(&mut self) {
        let held_limit = (self.cfg.max_ack_pending.max(4) as usize) * 3 / 4;
        let all = self.held.len() >= held_limit && self.writes.is_empty();
        let (max_rows, max_bytes) = (self.cfg.roll.max_rows, self.cfg.roll.max_bytes);
        let full: Vec<Partition> = self
            .open
            .iter_mut()
            .filter(|(_, f)| !f.seqs.is_empty())
            .filter_map(|(p, f)| {
                (all || f.rows.rows() >= max_rows || f.rows.bytes() >= max_bytes).then_some(*p)
            })
            .collect();
        for p in full {
            self.flush(p).await;
        }
    }

    async fn roll_aged(&mut self) {
        let aged: Vec<Partition> = self
            .open
            .iter()
            .filter(|(_, f)| f.opened.elapsed() >= self.cfg.roll.max_age)
            .map(|(p, _)| *p)
            .collect();
        for p in aged {
            self.flush(p).await;
        }
    }

    /// Starts writing the failed files whose backoff is over.
    async fn retry_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<Retry>, Vec<Retry>) = std::mem::take(&mut self.retries)
            .into_iter()
            .partition(|r| r.at <= now);
        self.retries = later;
        for r in due {
            self.start_write(r.part, r.file, r.failures).await;
        }
    }

    async fn progress(&self) {
        for h in self.held.values() {
            if let Err(e) = h.msg.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "in-progress ack failed");
            }
        }
    }

    /// Closes the open file of `p` and starts writing it.
    async fn flush(&mut self, p: Partition) {
        if let Some(f) = self.open.remove(&p) {
            self.last_file_rows = f.rows.rows();
            self.start_write(p, f, 0).await;
        }
    }

    /// Hands a file to a write task, first waiting for one to finish when as many are
    /// under way as allowed.
    async fn start_write(&mut self, part: Partition, mut file: OpenFile, failures: u32) {
        while self.writes.len() >= self.cfg.concurrent_writes.max(1) {
            let Some(done) = self.writes.join_next().await else {
                break;
            };
            self.written(done).await;
        }
        let table = self.table();
        let archive = self.archive.clone();
        let opts = self.cfg.write.clone();
        let (stream, epoch) = (self.stream.clone(), self.epoch);
        let batches = file.rows.batches();
        let seqs = SeqSet::from_iter(file.seqs.iter().copied());
        self.writes.spawn(async move {
            let started = Instant::now();
            let result = match batches {
                Ok(batches) => {
                    write_file(archive, table, stream, epoch, part, seqs, batches, opts).await
                }
                Err(e) => Err(anyhow::Error::new(e).context("building the record batch")),
            };
            Written {
                part,
                file,
                failures,
                started,
                result,
            }
        });
    }

    /// Waits for every write under way.
    async fn drain_writes(&mut self) {
        while let Some(done) = self.writes.join_next().await {
            self.written(done).await;
        }
    }

    /// A write task ended: ack the messages it completes, or keep the file for a retry.
    async fn written(&mut self, done: Result<Written, tokio::task::JoinError>) {
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                // A panicking task loses its file's rows here; their messages stay
                // unacked and come back after the ack wait.
                tracing::error!(error = %e, "write task failed");
                SinkStats::add(&self.stats.write_errors, 1);
                return;
            }
        };
        let Written {
            part,
            file,
            failures,
            started,
            result,
        } = done;
        let w = match result {
            Ok(w) => w,
            Err(e) => {
                SinkStats::add(&self.stats.write_errors, 1);
                let failures = failures + 1;
                let backoff = Duration::from_millis(500u64 << failures.min(6));
                tracing::warn!(table = self.table().name(), partition = %part.prefix(self.table().name()), error = format!("{e:#}"), retry_in = ?backoff, "writing a file failed; retrying");
                self.retries.push(Retry {
                    part,
                    file,
                    failures,
                    at: Instant::now() + backoff,
                });
                return;
            }
        };
        self.index
            .remember(&w.prefix, w.path.clone(), w.name, w.size, w.seqs);
        SinkStats::add(&self.stats.files, 1);
        SinkStats::add(&self.stats.rows, w.rows as u64);
        SinkStats::add(&self.stats.bytes, w.size);
        SinkStats::add(
            &self.stats.write_micros,
            started.elapsed().as_micros() as u64,
        );
        tracing::debug!(path = %w.path, rows = w.rows, bytes = w.size, "file written");
        if self
            .cfg
            .abort_after_files
            .is_some_and(|n| SinkStats::get(&self.stats.files) >= n)
        {
            tracing::error!("aborting after a file write, before acking (--abort-after-files)");
            std::process::abort();
        }
        for seq in &file.seqs {
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
    }
}

/// Encodes one file (on a blocking thread) and writes it create-only.
#[allow(clippy::too_many_arguments)]
async fn write_file(
    archive: Archive,
    table: Table,
    stream: String,
    epoch: u64,
    part: Partition,
    seqs: SeqSet,
    batches: Vec<arrow_array::RecordBatch>,
    opts: WriteOptions,
) -> anyhow::Result<WrittenFile> {
    let name = FileName::for_seqs(epoch, &seqs);
    let prefix = part.prefix(table.name());
    let path = Path::from(format!("{prefix}/{name}"));
    let prov = Provenance {
        stream,
        epoch,
        seqs: seqs.clone(),
        compacted_from: Vec::new(),
    };
    let (bytes, rows) = tokio::task::spawn_blocking(move || encode(table, &batches, &prov, &opts))
        .await
        .context("encoding task")??;
    let size = bytes.len() as u64;
    match archive.put_create(&path, bytes).await? {
        Created::Written => {}
        Created::AlreadyExists => {
            let info = read_info(&archive.store, &path, None).await?;
            anyhow::ensure!(
                info.seqs == seqs,
                "{path} exists with other sequences than this file's"
            );
            tracing::info!(%path, "file already written (a redelivery of the same messages)");
        }
    }
    Ok(WrittenFile {
        prefix,
        path,
        name,
        seqs,
        size,
        rows,
    })
}
