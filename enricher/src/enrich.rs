//! Enriching a batch: look up every container the batch mentions (bounded wait), then
//! write each event's container metadata and DNS-derived names in order.

use std::collections::HashSet;
use std::sync::Arc;

use lanner_contract::Event;
use lanner_contract::model::Text;

use crate::cache::MetaCache;
use crate::dns::DnsMemory;
use crate::metrics::EnrichStats;

/// The container id events outside containers carry.
pub const HOST: &str = "host";

/// Enriches events in place.
#[derive(Debug)]
pub struct Enricher {
    cache: MetaCache,
    dns: DnsMemory,
    stats: Arc<EnrichStats>,
}

impl Enricher {
    /// An enricher reading container metadata from `cache`.
    pub fn new(cache: MetaCache, stats: Arc<EnrichStats>) -> Self {
        Enricher {
            cache,
            dns: DnsMemory::default(),
            stats,
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<EnrichStats> {
        &self.stats
    }

    /// Enriches a batch (events keep their order; DNS answers earlier in the batch name
    /// connects later in it).
    pub async fn enrich(&mut self, events: &mut [Event]) {
        let started = std::time::Instant::now();
        let mut ids: Vec<Text> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut hits = 0;
        for id in events.iter().filter_map(|e| e.container_id.as_ref()) {
            if id.is_empty() || &**id == HOST || !seen.insert(&**id) {
                continue;
            }
            if self.cache.get(id).is_none() {
                ids.push(id.clone());
            } else {
                hits += 1;
            }
        }
        EnrichStats::add(&self.stats.cache_hits, hits);
        if !ids.is_empty() {
            self.cache.resolve(&ids).await;
        }
        self.apply(events);
        self.stats.batch_latency.observe(started.elapsed());
    }

    /// Writes what the cache holds (no lookups): the warm-cache path.
    pub fn apply(&mut self, events: &mut [Event]) {
        let (mut enriched, mut unenriched, mut host, mut named) = (0, 0, 0, 0);
        let mut last: Option<(Text, Option<Arc<crate::meta::ContainerMeta>>)> = None;
        for ev in events.iter_mut() {
            match ev.container_id.clone() {
                Some(id) if !id.is_empty() && &*id != HOST => {
                    let meta = match &last {
                        Some((lid, m)) if *lid == id => m.clone(),
                        _ => {
                            let m = self.cache.get(&id);
                            last = Some((id, m.clone()));
                            m
                        }
                    };
                    match meta {
                        Some(m) => {
                            m.apply(ev);
                            enriched += 1;
                        }
                        None => unenriched += 1,
                    }
                }
                _ => host += 1,
            }
            if self.dns.observe(ev) {
                named += 1;
            }
        }
        let s = &self.stats;
        EnrichStats::add(&s.events, events.len() as u64);
        EnrichStats::add(&s.enriched, enriched);
        EnrichStats::add(&s.unenriched, unenriched);
        EnrichStats::add(&s.host, host);
        EnrichStats::add(&s.dns_named, named);
    }
}
