//! Counters of the archiver, served as Prometheus text on `/metrics`, with `/healthz`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;

/// Counters of one table's sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Messages received.
    pub messages: AtomicU64,
    /// Messages sent to the DLQ.
    pub dead_lettered: AtomicU64,
    /// Redelivered messages whose rows were already archived.
    pub already_archived: AtomicU64,
    /// Messages acked.
    pub acked: AtomicU64,
    /// Rows written.
    pub rows: AtomicU64,
    /// Files written.
    pub files: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
    /// Failed file writes (retried).
    pub write_errors: AtomicU64,
    /// Messages held (in open files, not yet acked).
    pub held: AtomicU64,
    /// Sum of file write latencies, microseconds.
    pub write_micros: AtomicU64,
}

impl SinkStats {
    /// Adds `n` to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// All tables' counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Per table name.
    pub tables: Vec<(&'static str, Arc<SinkStats>)>,
}

/// Name, type, help and accessor of one metric.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&SinkStats) -> &AtomicU64,
);

/// Renders the counters as Prometheus text.
pub fn render(stats: &Stats) -> String {
    let mut out = String::new();
    let metrics: [Metric; 10] = [
        (
            "lanner_archiver_messages_total",
            "counter",
            "Messages received.",
            |s| &s.messages,
        ),
        (
            "lanner_archiver_dead_lettered_total",
            "counter",
            "Messages sent to the DLQ.",
            |s| &s.dead_lettered,
        ),
        (
            "lanner_archiver_already_archived_total",
            "counter",
            "Redelivered messages already in the archive.",
            |s| &s.already_archived,
        ),
        (
            "lanner_archiver_acked_total",
            "counter",
            "Messages acked after their rows were durable.",
            |s| &s.acked,
        ),
        (
            "lanner_archiver_rows_total",
            "counter",
            "Rows written.",
            |s| &s.rows,
        ),
        (
            "lanner_archiver_files_total",
            "counter",
            "Files written.",
            |s| &s.files,
        ),
        (
            "lanner_archiver_bytes_total",
            "counter",
            "Bytes written.",
            |s| &s.bytes,
        ),
        (
            "lanner_archiver_write_errors_total",
            "counter",
            "Failed file writes (retried).",
            |s| &s.write_errors,
        ),
        (
            "lanner_archiver_held_messages",
            "gauge",
            "Messages in open files, not yet acked.",
            |s| &s.held,
        ),
        (
            "lanner_archiver_write_seconds_total",
            "counter",
            "Time spent writing files.",
            |s| &s.write_micros,
        ),
    ];
    for (name, kind, help, get) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (table, s) in &stats.tables {
            let v = SinkStats::get(get(s));
            if name.ends_with("_seconds_total") {
                let _ = writeln!(out, "{name}{{table=\"{table}\"}} {}", v as f64 / 1e6);
            } else {
                let _ = writeln!(out, "{name}{{table=\"{table}\"}} {v}");
            }
        }
    }
    out
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) {
    lanner_contract::bus::http::serve_metrics(listener, move || render(&stats)).await;
}
