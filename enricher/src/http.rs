//! `/metrics` (Prometheus text format) and `/healthz` on a small HTTP/1.1 listener.

use std::fmt::Write as _;
use std::sync::Arc;

use lanner_contract::bus::StageStats;
use tokio::net::TcpListener;

use crate::metrics::EnrichStats;

/// What `/metrics` reports.
#[derive(Debug)]
pub struct Sources {
    /// Enrichment and action counters.
    pub enrich: Arc<EnrichStats>,
    /// The event stage's loop counters.
    pub events_stage: Arc<StageStats>,
    /// The action stage's loop counters.
    pub actions_stage: Arc<StageStats>,
}

/// Renders the counters in Prometheus' text format.
pub fn render(s: &Sources) -> String {
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    let e = &s.enrich;
    let g = EnrichStats::get;
    counter(
        "lanner_enricher_events_total",
        "Events processed.",
        g(&e.events),
    );
    counter(
        "lanner_enricher_events_enriched_total",
        "Container events given their metadata.",
        g(&e.enriched),
    );
    counter(
        "lanner_enricher_events_unenriched_total",
        "Container events passed through with container.id alone.",
        g(&e.unenriched),
    );
    counter(
        "lanner_enricher_events_host_total",
        "Host events (nothing to add).",
        g(&e.host),
    );
    counter(
        "lanner_enricher_cache_hits_total",
        "Container ids (distinct per batch) found in the cache.",
        g(&e.cache_hits),
    );
    counter(
        "lanner_enricher_cache_misses_total",
        "Container ids (distinct per batch) looked up in a runtime.",
        g(&e.cache_misses),
    );
    counter(
        "lanner_enricher_lookup_errors_total",
        "Engine lookups that failed.",
        g(&e.lookup_errors),
    );
    counter(
        "lanner_enricher_lookup_timeouts_total",
        "Engine lookups cut off by the bounded wait.",
        g(&e.lookup_timeouts),
    );
    counter(
        "lanner_enricher_lookup_batches_total",
        "Batches that waited for lookups.",
        g(&e.lookup_batches),
    );
    counter(
        "lanner_enricher_lookup_wait_microseconds_total",
        "Time spent waiting for lookups.",
        g(&e.lookup_micros),
    );
    counter(
        "lanner_enricher_docker_events_total",
        "Cache entries refreshed from Docker's event stream.",
        g(&e.docker_events),
    );
    counter(
        "lanner_enricher_containerd_events_total",
        "Cache entries refreshed from containerd's event stream.",
        g(&e.containerd_events),
    );
    counter(
        "lanner_enricher_dns_named_total",
        "Connects named from an earlier DNS answer.",
        g(&e.dns_named),
    );
    counter(
        "lanner_enricher_actions_done_total",
        "Response actions carried out or already in effect.",
        g(&e.actions_done),
    );
    counter(
        "lanner_enricher_actions_refused_total",
        "Response actions refused (exempt or lanner's own).",
        g(&e.actions_refused),
    );
    counter(
        "lanner_enricher_actions_failed_total",
        "Response actions failed (engine error, container gone).",
        g(&e.actions_failed),
    );
    counter(
        "lanner_enricher_actions_dry_run_total",
        "Response actions only audited (dry-run).",
        g(&e.actions_dry_run),
    );
    for (stage, st) in [("events", &s.events_stage), ("actions", &s.actions_stage)] {
        let sg = StageStats::get;
        counter(
            &format!("lanner_enricher_{stage}_received_total"),
            "Input messages received.",
            sg(&st.received),
        );
        counter(
            &format!("lanner_enricher_{stage}_published_total"),
            "Messages stored by JetStream.",
            sg(&st.published),
        );
        counter(
            &format!("lanner_enricher_{stage}_dead_lettered_total"),
            "Input messages sent to the DLQ.",
            sg(&st.dead_lettered),
        );
        counter(
            &format!("lanner_enricher_{stage}_failed_batches_total"),
            "Batches nak'ed for redelivery.",
            sg(&st.failed_batches),
        );
    }
    e.lookup_latency.render(
        &mut out,
        "lanner_enricher_lookup_duration_seconds",
        "Time a batch waited for runtime lookups (batches with a cache miss).",
    );
    e.batch_latency.render(
        &mut out,
        "lanner_enricher_batch_duration_seconds",
        "Time enriching one input message took, lookups included.",
    );
    out
}

/// Answers `/metrics` and `/healthz` until the task is dropped.
pub async fn serve(listener: TcpListener, sources: Arc<Sources>) {
    lanner_contract::bus::http::serve_metrics(listener, move || render(&sources)).await;
}
