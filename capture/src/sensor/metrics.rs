//! Counters of the sensor, served in Prometheus text format on `/metrics` (and `/healthz`)
//! when `--metrics-addr` is given.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the reader thread and the output task.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records read from the ring buffer.
    pub records: AtomicU64,
    /// Events handed to the output.
    pub emitted: AtomicU64,
    /// Events published and acked by JetStream.
    pub published: AtomicU64,
    /// Batches published and acked.
    pub batches: AtomicU64,
    /// Records the kernel could not queue (ring buffer full), all CPUs.
    pub kernel_dropped: AtomicU64,
    /// Syscall entries the kernel could not remember (in-flight table full).
    pub kernel_pending_dropped: AtomicU64,
    /// Events dropped because the output queue was full.
    pub queue_dropped: AtomicU64,
    /// Events dropped because the NATS buffer was full.
    pub buffer_dropped: AtomicU64,
    /// Records that could not be decoded.
    pub decode_errors: AtomicU64,
    /// Failed publish rounds.
    pub publish_errors: AtomicU64,
    /// Encoded bytes waiting for NATS.
    pub buffered_bytes: AtomicU64,
    /// 1 while connected to NATS.
    pub nats_up: AtomicU64,
    /// Known processes.
    pub processes: AtomicU64,
    /// Events decoded and waiting for the outputs (bounded by the reader).
    pub queued_events: AtomicU64,
}

impl Stats {
    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        let mut m = |name: &str, kind: &str, help: &str, v: String| {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{v}\n"
            ));
        };
        m(
            "lanner_capture_records_total",
            "counter",
            "Records read from the ring buffer.",
            format!("lanner_capture_records_total {}", g(&self.records)),
        );
        m(
            "lanner_capture_events_total",
            "counter",
            "Events handed to the outputs.",
            format!("lanner_capture_events_total {}", g(&self.emitted)),
        );
        m(
            "lanner_capture_published_events_total",
            "counter",
            "Events acked by JetStream.",
            format!(
                "lanner_capture_published_events_total {}",
                g(&self.published)
            ),
        );
        m(
            "lanner_capture_published_batches_total",
            "counter",
            "Batches acked by JetStream.",
            format!(
                "lanner_capture_published_batches_total {}",
                g(&self.batches)
            ),
        );
        m(
            "lanner_capture_dropped_events_total",
            "counter",
            "Events lost, by where.",
            format!(
                "lanner_capture_dropped_events_total{{where=\"kernel_ringbuf\"}} {}\nlanner_capture_dropped_events_total{{where=\"kernel_pending\"}} {}\nlanner_capture_dropped_events_total{{where=\"user_queue\"}} {}\nlanner_capture_dropped_events_total{{where=\"nats_buffer\"}} {}",
                g(&self.kernel_dropped),
                g(&self.kernel_pending_dropped),
                g(&self.queue_dropped),
                g(&self.buffer_dropped)
            ),
        );
        m(
            "lanner_capture_decode_errors_total",
            "counter",
            "Records that could not be decoded.",
            format!(
                "lanner_capture_decode_errors_total {}",
                g(&self.decode_errors)
            ),
        );
        m(
            "lanner_capture_publish_errors_total",
            "counter",
            "Failed publish rounds.",
            format!(
                "lanner_capture_publish_errors_total {}",
                g(&self.publish_errors)
            ),
        );
        m(
            "lanner_capture_buffered_bytes",
            "gauge",
            "Encoded bytes waiting for NATS.",
            format!("lanner_capture_buffered_bytes {}", g(&self.buffered_bytes)),
        );
        m(
            "lanner_capture_nats_up",
            "gauge",
            "1 while connected to NATS.",
            format!("lanner_capture_nats_up {}", g(&self.nats_up)),
        );
        m(
            "lanner_capture_queued_events",
            "gauge",
            "Events decoded and waiting for the outputs.",
            format!("lanner_capture_queued_events {}", g(&self.queued_events)),
        );
        m(
            "lanner_capture_processes",
            "gauge",
            "Processes in the process table.",
            format!("lanner_capture_processes {}", g(&self.processes)),
        );
        s
    }

    /// One line for the log at exit.
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "sensor stopped: {} records, {} events emitted, {} published; dropped: kernel ring {} + kernel pending {} + queue {} + NATS buffer {}; {} decode errors",
            g(&self.records),
            g(&self.emitted),
            g(&self.published),
            g(&self.kernel_dropped),
            g(&self.kernel_pending_dropped),
            g(&self.queue_dropped),
            g(&self.buffer_dropped),
            g(&self.decode_errors)
        )
    }
}

/// Serves `/metrics` and `/healthz` on `addr`.
pub async fn serve(addr: SocketAddr, stats: Arc<Stats>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::spawn(lanner_contract::bus::http::serve_metrics(
        listener,
        move || stats.render(),
    ));
    Ok(())
}
