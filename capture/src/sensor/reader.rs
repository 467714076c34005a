//! The ring-buffer reader thread: waits for the kernel's (batched) wake-ups or a 20 ms
//! tick, drains every record, decodes it, and hands batches to the output without ever
//! blocking: the queue is bounded by the events it holds (not by batches, which are
//! small when the flush interval cuts them), and a batch that does not fit is dropped
//! and counted. Every `--drop-report-secs`
//! it sums the kernel's per-CPU loss counters and, when anything was lost, emits a
//! `lanner_drop` event with `lanner.drops`.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use lanner_capture_common::drops;
use lanner_contract::Event;
use lanner_contract::value::Timestamp;
use tokio::sync::mpsc;

use super::decode::Decoder;
use super::load::Loaded;
use super::metrics::Stats;
use super::output::Batch;
use super::sys;

/// Reader settings.
#[derive(Clone, Debug)]
pub struct ReaderConfig {
    /// Node name.
    pub node: String,
    /// Session id.
    pub session: String,
    /// Events per batch.
    pub batch_events: usize,
    /// Hand over a partial batch after this long.
    pub flush: Duration,
    /// Drop report interval.
    pub drop_report: Duration,
    /// Stop after this many events.
    pub max_events: Option<u64>,
    /// Only count records.
    pub count_only: bool,
    /// Decode records, then discard the events.
    pub decode_only: bool,
    /// Most events waiting for the outputs at once.
    pub queue_events: u64,
}

/// Records handled between looks at the clock and the stop flag.
const ROUND: usize = 4096;
/// How often processes whose exit was not seen are forgotten.
const SWEEP: Duration = Duration::from_secs(30);

/// Sum over CPUs of each loss counter.
fn kernel_drops(loaded: &Loaded) -> [u64; drops::SLOTS as usize] {
    let mut out = [0u64; drops::SLOTS as usize];
    for (slot, total) in out.iter_mut().enumerate() {
        if let Ok(v) = loaded.drops.get(&(slot as u32), 0) {
            *total = v.iter().sum();
        }
    }
    out
}

struct Sender {
    tx: mpsc::UnboundedSender<Batch>,
    stats: Arc<Stats>,
    limit: u64,
    closed: bool,
}

impl Sender {
    fn push(&mut self, events: Vec<Event>) {
        let n = events.len() as u64;
        self.stats.queued_events.fetch_add(n, Ordering::Relaxed);
        if self.tx.send(Batch { events }).is_err() {
            self.closed = true;
        }
    }

    /// At shutdown: always queued (the kernel side is no longer being read anyway).
    fn send_blocking(&mut self, events: Vec<Event>) {
        self.push(events);
    }

    fn send(&mut self, events: Vec<Event>) {
        let n = events.len() as u64;
        if self.stats.queued_events.load(Ordering::Relaxed) + n > self.limit {
            self.stats.queue_dropped.fetch_add(n, Ordering::Relaxed);
            return;
        }
        self.push(events);
    }
}

/// Runs until `stop` is set, the output goes away, or `max_events` were read.
pub fn run(
    mut loaded: Loaded,
    cfg: ReaderConfig,
    tx: mpsc::UnboundedSender<Batch>,
    stats: Arc<Stats>,
    stop: super::stop::Stop,
) -> Result<()> {
    let mut dec = Decoder::new(&cfg.node, &cfg.session);
    tracing::info!(
        processes = dec.procs.len(),
        "process table seeded from /proc"
    );
    let fd = loaded.ring.as_raw_fd();
    let mut sender = Sender {
        tx,
        stats: stats.clone(),
        limit: cfg.queue_events.max(cfg.batch_events as u64),
        closed: false,
    };
    let mut pending: Vec<Event> = Vec::with_capacity(cfg.batch_events);
    let mut last_flush = Instant::now();
    let mut last_report = Instant::now();
    let mut last_sweep = Instant::now();
    let mut reported = Reported::default();
    let mut count = 0u64;
    let mut done = false;
    while !done {
        if stop.is_set() || sender.closed {
            break;
        }
        sys::poll_readable(fd, 20);
        // At most ROUND records before looking at the clock and the stop flag, so a
        // stream that never pauses cannot starve flushing, reports or shutdown.
        let mut round = 0;
        while round < ROUND
            && let Some(item) = loaded.ring.next()
        {
            round += 1;
            stats.records.fetch_add(1, Ordering::Relaxed);
            count += 1;
            if !cfg.count_only {
                match dec.decode(&item) {
                    Ok(Some(_)) if cfg.decode_only => {}
                    Ok(Some(ev)) => pending.push(ev),
                    Ok(None) => {}
                    Err(e) => {
                        if stats.decode_errors.fetch_add(1, Ordering::Relaxed) < 10 {
                            tracing::warn!("undecodable record: {e}");
                        }
                    }
                }
                if pending.len() >= cfg.batch_events {
                    sender.send(std::mem::replace(
                        &mut pending,
                        Vec::with_capacity(cfg.batch_events),
                    ));
                    last_flush = Instant::now();
                }
            }
            if cfg.max_events.is_some_and(|m| count >= m) {
                done = true;
                break;
            }
        }
        if !pending.is_empty() && (last_flush.elapsed() >= cfg.flush || done) {
            sender.send(std::mem::take(&mut pending));
            last_flush = Instant::now();
        }
        dec.procs.reap();
        if last_sweep.elapsed() >= SWEEP {
            last_sweep = Instant::now();
            dec.procs.sweep();
        }
        if last_report.elapsed() >= cfg.drop_report || done {
            last_report = Instant::now();
            report_drops(&loaded, &mut dec, &mut sender, &stats, &mut reported, false);
        }
    }
    // The records already waiting (bounded: the kernel keeps writing), then a final
    // loss report.
    let mut left = 16 * ROUND;
    while left > 0
        && let Some(item) = loaded.ring.next()
    {
        left -= 1;
        stats.records.fetch_add(1, Ordering::Relaxed);
        if !cfg.count_only
            && let Ok(Some(ev)) = dec.decode(&item)
        {
            pending.push(ev);
        }
    }
    if !pending.is_empty() {
        sender.send_blocking(pending);
    }
    report_drops(&loaded, &mut dec, &mut sender, &stats, &mut reported, true);
    drop(loaded);
    Ok(())
}

/// What the last `lanner_drop` report covered.
#[derive(Default)]
struct Reported {
    kernel: [u64; drops::SLOTS as usize],
    user: u64,
}

/// Publishes the loss counters and, when anything was lost since the last report, a
/// `lanner_drop` event carrying how many.
fn report_drops(
    loaded: &Loaded,
    dec: &mut Decoder,
    sender: &mut Sender,
    stats: &Stats,
    reported: &mut Reported,
    last: bool,
) {
    let k = kernel_drops(loaded);
    stats
        .kernel_dropped
        .store(k[drops::RINGBUF_FULL as usize], Ordering::Relaxed);
    stats
        .kernel_pending_dropped
        .store(k[drops::PENDING_FULL as usize], Ordering::Relaxed);
    stats
        .processes
        .store(dec.procs.len() as u64, Ordering::Relaxed);
    // Undecodable records are lost too.
    let user = stats.queue_dropped.load(Ordering::Relaxed)
        + stats.buffer_dropped.load(Ordering::Relaxed)
        + stats.decode_errors.load(Ordering::Relaxed);
    let lost = k
        .iter()
        .zip(reported.kernel.iter())
        .map(|(a, b)| a - b)
        .sum::<u64>()
        + (user - reported.user);
    if lost == 0 {
        return;
    }
    tracing::warn!(lost, "events lost since the last report");
    let mut ev = Event {
        evt_type: Some("lanner_drop".into()),
        lanner_drops: Some(lost),
        ..Default::default()
    };
    dec.stamp(&mut ev, Timestamp::now());
    if last {
        sender.send_blocking(vec![ev]);
        return;
    }
    // Sent on its own; when the queue is full it is retried at the next report.
    let before = stats.queue_dropped.load(Ordering::Relaxed);
    sender.send(vec![ev]);
    if stats.queue_dropped.load(Ordering::Relaxed) == before {
        reported.kernel = k;
        reported.user = user;
    } else {
        stats.queue_dropped.fetch_sub(1, Ordering::Relaxed);
    }
}
