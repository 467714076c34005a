//! Counters of the enricher: cache hits and misses, lookup latency, pass-through count,
//! actions; and the latency histograms behind `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histograms' buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A Prometheus histogram of durations (lock-free; fixed [`BUCKETS`]).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of observations, nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends the histogram in Prometheus' text format.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            match BUCKETS.get(i) {
                Some(le) => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Enrichment counters (shared, lock-free).
#[derive(Debug, Default)]
pub struct EnrichStats {
    /// Events processed.
    pub events: AtomicU64,
    /// Events of a container that got its metadata.
    pub enriched: AtomicU64,
    /// Events of a container that passed through with `container.id` alone.
    pub unenriched: AtomicU64,
    /// Events on the host (nothing to add).
    pub host: AtomicU64,
    /// Container ids (distinct per batch) the cache held.
    pub cache_hits: AtomicU64,
    /// Container ids (distinct per batch) looked up in a runtime because the cache did not
    /// hold them.
    pub cache_misses: AtomicU64,
    /// Lookups that failed (engine absent or erroring).
    pub lookup_errors: AtomicU64,
    /// Lookups that hit the bounded wait.
    pub lookup_timeouts: AtomicU64,
    /// Batches of lookups and their total wait, in microseconds.
    pub lookup_batches: AtomicU64,
    /// Sum of lookup waits, microseconds.
    pub lookup_micros: AtomicU64,
    /// Cache entries refreshed from Docker's event stream.
    pub docker_events: AtomicU64,
    /// Cache entries refreshed from containerd's event stream.
    pub containerd_events: AtomicU64,
    /// Connect events given a name from an earlier DNS answer.
    pub dns_named: AtomicU64,
    /// Response actions carried out (or already in effect).
    pub actions_done: AtomicU64,
    /// Response actions refused (exempt or lanner's own container).
    pub actions_refused: AtomicU64,
    /// Response actions that failed (engine error or container gone).
    pub actions_failed: AtomicU64,
    /// Response actions only audited (dry-run).
    pub actions_dry_run: AtomicU64,
    /// Time a batch waited for runtime lookups (batches with a miss only).
    pub lookup_latency: Histogram,
    /// Time enriching one input message took, lookups included.
    pub batch_latency: Histogram,
}

impl EnrichStats {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records one batch of lookups.
    pub fn record_lookup(&self, took: Duration) {
        self.lookup_latency.observe(took);
        Self::add(&self.lookup_batches, 1);
        Self::add(
            &self.lookup_micros,
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        );
    }

    /// One line for the logs.
    pub fn summary(&self) -> String {
        let g = Self::get;
        format!(
            "events={} enriched={} unenriched={} host={} cache_hits={} cache_misses={} lookup_errors={} lookup_timeouts={} lookup_batches={} lookup_micros={} docker_events={} containerd_events={} dns_named={} actions_done={} actions_refused={} actions_failed={} actions_dry_run={}",
            g(&self.events),
            g(&self.enriched),
            g(&self.unenriched),
            g(&self.host),
            g(&self.cache_hits),
            g(&self.cache_misses),
            g(&self.lookup_errors),
            g(&self.lookup_timeouts),
            g(&self.lookup_batches),
            g(&self.lookup_micros),
            g(&self.docker_events),
            g(&self.containerd_events),
            g(&self.dns_named),
            g(&self.actions_done),
            g(&self.actions_refused),
            g(&self.actions_failed),
            g(&self.actions_dry_run),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "Test.");
        assert!(out.contains("# TYPE x_seconds histogram\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.0025\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"5\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 60.00305\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
        assert_eq!(h.count(), 3);
    }
}
