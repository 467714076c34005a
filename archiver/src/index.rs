//! Which stream sequences the archive already holds, per partition.
//!
//! Consulted for every message taken: its rows may have been written by a replica that
//! crashed (or lost its ack) before acking, and JetStream's delivery count cannot tell
//! (see [`crate::sink`]). A file's name bounds the sequences it may hold; its footer
//! (`lanner.seqs`) says exactly which. Footers are cached (files are immutable); listings
//! are refreshed after a short time, far shorter than any ack wait, so a file written by
//! a replica that then crashed is listed before its messages can come back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path;

use crate::archive::Archive;
use crate::naming::FileName;
use crate::parquet_file::read_info;
use crate::seqset::SeqSet;

/// How long a partition listing is reused.
const LISTING_TTL: Duration = Duration::from_secs(2);

struct Listing {
    at: Instant,
    files: Vec<(Path, FileName, u64)>,
}

/// The sequences held per partition prefix, looked up lazily.
#[derive(Default)]
pub struct SeqIndex {
    listings: HashMap<String, Listing>,
    footers: HashMap<Path, Arc<SeqSet>>,
}

impl SeqIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a file this process wrote (no need to read it back).
    pub fn remember(&mut self, prefix: &str, path: Path, name: FileName, size: u64, seqs: SeqSet) {
        if let Some(l) = self.listings.get_mut(prefix) {
            l.files.push((path.clone(), name, size));
        }
        self.footers.insert(path, Arc::new(seqs));
    }

    /// Whether a file below `prefix` holds the rows of `seq` of the stream created at `epoch`.
    pub async fn holds(
        &mut self,
        archive: &Archive,
        prefix: &str,
        epoch: u64,
        seq: u64,
    ) -> anyhow::Result<bool> {
        let fresh = self
            .listings
            .get(prefix)
            .is_some_and(|l| l.at.elapsed() < LISTING_TTL);
        if !fresh {
            let files = archive
                .list(prefix)
                .await?
                .into_iter()
                .filter_map(|m| {
                    let name = FileName::parse(m.location.filename()?)?;
                    Some((m.location, name, m.size))
                })
                .collect();
            self.listings.insert(
                prefix.to_owned(),
                Listing {
                    at: Instant::now(),
                    files,
                },
            );
        }
        let candidates: Vec<(Path, u64)> = self
            .listings
            .get(prefix)
            .map(|l| {
                l.files
                    .iter()
                    .filter(|(_, n, _)| n.may_hold(epoch, seq))
                    .map(|(p, _, s)| (p.clone(), *s))
                    .collect()
            })
            .unwrap_or_default();
        for (path, size) in candidates {
            let seqs = match self.footers.get(&path) {
                Some(s) => Arc::clone(s),
                None => match read_info(&archive.store, &path, Some(size)).await {
                    Ok(info) => {
                        let s = Arc::new(info.seqs);
                        self.footers.insert(path.clone(), Arc::clone(&s));
                        s
                    }
                    // Deleted meanwhile (compaction replaced it): the listing is stale.
                    Err(e) if is_not_found(&e) => {
                        self.listings.remove(prefix);
                        return Box::pin(self.holds(archive, prefix, epoch, seq)).await;
                    }
                    Err(e) => {
                        return Err(
                            anyhow::Error::new(e).context(format!("reading the footer of {path}"))
                        );
                    }
                },
            };
            if seqs.contains(seq) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Forgets footers of files no longer listed (keeps memory bounded).
    pub fn forget_older_than(&mut self, age: Duration) {
        self.listings.retain(|_, l| l.at.elapsed() < age);
        if self.footers.len() > 100_000 {
            self.footers.clear();
        }
    }
}

fn is_not_found(e: &crate::parquet_file::FileError) -> bool {
    e.to_string().contains("not found") || e.to_string().contains("NotFound")
}
