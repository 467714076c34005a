//! Counters of the enricher: cache hits and misses, lookup latency, pass-through count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    /// Container ids looked up in the engine because the cache did not hold them.
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
            "events={} enriched={} unenriched={} host={} cache_misses={} lookup_errors={} lookup_timeouts={} lookup_batches={} lookup_micros={} docker_events={} containerd_events={} dns_named={} actions_done={} actions_refused={} actions_failed={} actions_dry_run={}",
            g(&self.events),
            g(&self.enriched),
            g(&self.unenriched),
            g(&self.host),
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
