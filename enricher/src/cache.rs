//! Container metadata cache keyed by short container id: filled from the runtimes' event
//! streams as containers are created and started, and on a miss by an inspect call that
//! waits at most a bounded time. A container the engine does not answer for is
//! remembered as missing for a short while so a slow or absent engine costs one bounded
//! wait per container and interval, never a stall.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lanner_contract::model::Text;

use crate::meta::ContainerMeta;
use crate::metrics::EnrichStats;
use crate::runtime::{Runtime, Runtimes, short_id};

/// Most containers remembered; beyond it the missing entries, then arbitrary ones, go.
const MAX_ENTRIES: usize = 65_536;

#[derive(Clone, Debug)]
enum Slot {
    Known(Arc<ContainerMeta>),
    Missing(Instant),
}

/// The cache (cheap to clone: clones share it).
#[derive(Clone, Debug)]
pub struct MetaCache {
    map: Arc<Mutex<HashMap<Text, Slot>>>,
    runtimes: Runtimes,
    wait: Duration,
    retry_missing: Duration,
    stats: Arc<EnrichStats>,
}

impl MetaCache {
    /// A cache asking `runtimes` (if any) on a miss, waiting at most `wait` per batch.
    pub fn new(runtimes: Runtimes, wait: Duration, stats: Arc<EnrichStats>) -> Self {
        MetaCache {
            map: Arc::default(),
            runtimes,
            wait,
            retry_missing: Duration::from_secs(2),
            stats,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Text, Slot>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores metadata for a container (full or short id).
    pub fn insert(&self, id: &str, meta: ContainerMeta) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, s| matches!(s, Slot::Known(_)));
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(short_id(id).into(), Slot::Known(Arc::new(meta)));
    }

    /// What the cache holds for a short id right now, without asking the engine.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerMeta>> {
        match self.lock().get(id) {
            Some(Slot::Known(m)) => Some(m.clone()),
            _ => None,
        }
    }

    /// Makes sure every id of `ids` that the engine knows is cached: looks up the misses
    /// concurrently, waiting at most the bounded time for all of them together.
    pub async fn resolve(&self, ids: &[Text]) {
        let now = Instant::now();
        let misses: Vec<Text> = {
            let map = self.lock();
            ids.iter()
                .filter(|id| match map.get(&***id) {
                    Some(Slot::Known(_)) => false,
                    Some(Slot::Missing(at)) => now.duration_since(*at) >= self.retry_missing,
                    None => true,
                })
                .cloned()
                .collect()
        };
        if misses.is_empty() {
            return;
        }
        if self.runtimes.is_empty() {
            self.mark_missing(&misses, now);
            return;
        }
        let rt = &self.runtimes;
        EnrichStats::add(&self.stats.cache_misses, misses.len() as u64);
        let started = Instant::now();
        let lookups = misses.iter().map(|id| async move {
            let r = tokio::time::timeout(self.wait, rt.inspect(id)).await;
            (id.clone(), r)
        });
        let results = futures::future::join_all(lookups).await;
        self.stats.record_lookup(started.elapsed());
        for (id, r) in results {
            match r {
                Ok(Ok(Some(meta))) => self.insert(&id, meta),
                Ok(Ok(None)) => self.mark_missing(std::slice::from_ref(&id), now),
                Ok(Err(e)) => {
                    EnrichStats::add(&self.stats.lookup_errors, 1);
                    tracing::debug!(container = %id, error = %e, "container lookup failed");
                    self.mark_missing(std::slice::from_ref(&id), now);
                }
                Err(_) => {
                    EnrichStats::add(&self.stats.lookup_timeouts, 1);
                    self.mark_missing(std::slice::from_ref(&id), now);
                }
            }
        }
    }

    fn mark_missing(&self, ids: &[Text], at: Instant) {
        let mut map = self.lock();
        for id in ids {
            if !matches!(map.get(id), Some(Slot::Known(_))) {
                map.insert(id.clone(), Slot::Missing(at));
            }
        }
    }

    /// Keeps the cache current from every runtime's event stream (runs until dropped).
    pub async fn follow(self) {
        let follows = self.runtimes.iter().map(|rt| self.follow_one(rt.clone()));
        futures::future::join_all(follows).await;
    }

    async fn follow_one(&self, rt: Runtime) {
        let docker = matches!(rt, Runtime::Docker(_));
        rt.clone()
            .follow_events(Duration::from_secs(1), |id, action| {
                let rt = rt.clone();
                let cache = self.clone();
                async move {
                    match tokio::time::timeout(Duration::from_secs(5), rt.inspect(&id)).await {
                        Ok(Ok(Some(meta))) => {
                            let s = &cache.stats;
                            let counter = if docker {
                                &s.docker_events
                            } else {
                                &s.containerd_events
                            };
                            EnrichStats::add(counter, 1);
                            cache.insert(&id, meta);
                        }
                        // Gone already (e.g. `--rm` after a short life): keep what the
                        // create event taught us.
                        Ok(Ok(None)) => {}
                        Ok(Err(e)) => {
                            tracing::debug!(container = %id, %action, error = %e, "inspect after event failed")
                        }
                        Err(_) => tracing::debug!(container = %id, %action, "inspect after event timed out"),
                    }
                }
            })
            .await;
    }
}
