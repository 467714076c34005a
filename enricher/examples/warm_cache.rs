//! Enrichment throughput with a warm cache: synthetic raw events (container id only, as
//! the sensor sends them) are decoded, enriched from the cache and encoded again, batch
//! by batch, as the stage does. The same-run baseline is the stage without enrichment
//! (decode + encode of the same batch, timed just before it). Prints events/s and the
//! p50/p99 time per batch of both, and the time enrichment adds.
//!
//! `cargo run --release -p lanner-enricher --example warm_cache -- [EVENTS] [BATCH]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanner_contract::synth::Synth;
use lanner_contract::{Event, codec};
use lanner_enricher::cache::MetaCache;
use lanner_enricher::enrich::Enricher;
use lanner_enricher::meta::ContainerMeta;
use lanner_enricher::metrics::EnrichStats;
use lanner_enricher::runtime::Runtimes;

fn strip(mut ev: Event) -> Event {
    ev.container_name = None;
    ev.container_image = None;
    ev.container_image_repository = None;
    ev.container_image_tag = None;
    ev.container_type = None;
    ev.container_privileged = None;
    ev.container_labels = None;
    ev
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (immune to the time
/// other processes hold the cores; `None` where the kernel does not offer it).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let total: usize = argv.next().map_or(Ok(2_000_000), |s| s.parse())?;
    let batch: usize = argv.next().map_or(Ok(1024), |s| s.parse())?;

    // Raw batches on the wire, and the cache warmed with every container they mention.
    let stats = Arc::new(EnrichStats::default());
    let cache = MetaCache::new(
        Runtimes::default(),
        Duration::from_millis(300),
        stats.clone(),
    );
    let mut batches = Vec::new();
    for chunk in Synth::new(7, "bench")
        .take(total)
        .collect::<Vec<_>>()
        .chunks(batch)
    {
        for ev in chunk {
            if let (Some(id), Some(name)) = (&ev.container_id, &ev.container_name)
                && cache.get(id).is_none()
            {
                cache.insert(
                    id,
                    ContainerMeta {
                        name: Some(name.clone()),
                        image: ev.container_image.clone(),
                        image_repository: ev.container_image_repository.clone(),
                        image_tag: ev.container_image_tag.clone(),
                        labels: ev.container_labels.clone(),
                        privileged: Some(false),
                        runtime: "docker".into(),
                        // As on a Kubernetes node: every field the enricher can add.
                        image_digest: Some("sha256:0123456789abcdef".into()),
                        start_ts: Some(lanner_contract::value::Timestamp(
                            1_700_000_000_000_000_000,
                        )),
                        k8s_pod_name: Some(format!("{name}-0").into()),
                        k8s_ns_name: Some("shop".into()),
                        k8s_pod_uid: Some(format!("uid-{id}").into()),
                        k8s_pod_labels: Some(Arc::new(
                            [("app".into(), name.clone()), ("tier".into(), "web".into())].into(),
                        )),
                    },
                );
            }
        }
        let raw: Vec<Event> = chunk.iter().cloned().map(strip).collect();
        batches.push(codec::encode_batch(&raw));
    }

    let mut enricher = Enricher::new(cache, stats.clone());
    let mut times = Vec::with_capacity(batches.len());
    let mut base_times = Vec::with_capacity(batches.len());
    let mut enrich_times = Vec::with_capacity(batches.len());
    let (mut base_cpu, mut stage_cpu) = (Duration::ZERO, Duration::ZERO);
    for bytes in &batches {
        // Baseline: the stage without enrichment.
        let c0 = thread_cpu();
        let t = Instant::now();
        let events = codec::decode_batch(bytes)?;
        std::hint::black_box(codec::encode_batch(&events));
        base_times.push(t.elapsed());
        let c1 = thread_cpu();
        // The stage.
        let t = Instant::now();
        let mut events = codec::decode_batch(bytes)?;
        let e = Instant::now();
        enricher.enrich(&mut events).await;
        enrich_times.push(e.elapsed());
        std::hint::black_box(codec::encode_batch(&events));
        times.push(t.elapsed());
        if let (Some(c0), Some(c1), Some(c2)) = (c0, c1, thread_cpu()) {
            base_cpu += c1.saturating_sub(c0);
            stage_cpu += c2.saturating_sub(c1);
        }
    }
    let n = EnrichStats::get(&stats.events);
    let rate = |ts: &[Duration]| n as f64 / ts.iter().sum::<Duration>().as_secs_f64();
    let (full_rate, base_rate, enrich_rate) =
        (rate(&times), rate(&base_times), rate(&enrich_times));
    times.sort();
    base_times.sort();
    enrich_times.sort();
    println!(
        "events={n} batch={batch} enriched={} unenriched={} cache_hits={} cache_misses={}",
        EnrichStats::get(&stats.enriched),
        EnrichStats::get(&stats.unenriched),
        EnrichStats::get(&stats.cache_hits),
        EnrichStats::get(&stats.cache_misses)
    );
    println!(
        "decode+enrich+encode: {full_rate:.0} events/s; baseline decode+encode: {base_rate:.0} events/s ({:.2}x of baseline); enrich alone: {enrich_rate:.0} events/s",
        full_rate / base_rate
    );
    if !base_cpu.is_zero() && !stage_cpu.is_zero() {
        let per_cpu = |d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "per CPU-second (thread CPU time, load-independent): decode+enrich+encode {:.0} events/s; baseline {:.0} events/s ({:.2}x)",
            per_cpu(stage_cpu),
            per_cpu(base_cpu),
            base_cpu.as_secs_f64() / stage_cpu.as_secs_f64()
        );
    }
    println!(
        "per batch of {batch}, p50 / p99: decode+enrich+encode {:?} / {:?}; baseline {:?} / {:?}; added by enrichment {:?} / {:?}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&base_times, 0.5),
        percentile(&base_times, 0.99),
        percentile(&enrich_times, 0.5),
        percentile(&enrich_times, 0.99)
    );
    Ok(())
}
