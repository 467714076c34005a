//! Compaction: merges the small files of a partition into sizeable ones, keeping every
//! row exactly once.
//!
//! Only partitions whose hour ended at least `min_age` ago are touched (no new files
//! arrive there). Small files (below `small_bytes`) of the same input stream are packed
//! into groups of at most `target_bytes`; each group becomes one file, sorted by time,
//! holding the union of their stream sequences (so redelivery checks still find them)
//! and naming its sources in `lanner.compacted_from`. The merged file is written
//! create-only before the sources are deleted; if a run stops in between, the next run
//! finds the merged file and finishes deleting its sources (roll forward). Run it from
//! one place (one replica or a cron job) at a time.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use object_store::ObjectMeta;
use object_store::path::Path;

use crate::archive::{Archive, Created};
use crate::naming::FileName;
use crate::parquet_file::{Provenance, WriteOptions, encode, read_info, read_rows};
use crate::partition::Partition;
use crate::seqset::SeqSet;
use crate::tables::Table;

/// Compaction knobs.
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// Only partitions whose hour ended this long ago.
    pub min_age: Duration,
    /// Files smaller than this are merged.
    pub small_bytes: u64,
    /// Most input bytes merged into one file.
    pub target_bytes: u64,
    /// Parquet knobs of the merged files.
    pub write: WriteOptions,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            min_age: Duration::from_secs(3600),
            small_bytes: 16 << 20,
            target_bytes: 128 << 20,
            write: WriteOptions::default(),
        }
    }
}

/// What a compaction run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Partitions looked at.
    pub partitions: usize,
    /// Files merged away.
    pub files_in: usize,
    /// Merged files written.
    pub files_out: usize,
    /// Rows in the merged files.
    pub rows: u64,
    /// Source files deleted while finishing an interrupted run.
    pub rolled_forward: usize,
}

/// Compacts every eligible partition of `table`.
pub async fn compact_table(
    archive: &Archive,
    table: Table,
    opts: &CompactOptions,
    now_nanos: i64,
) -> anyhow::Result<CompactReport> {
    let mut by_part: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
    for m in archive.list(table.name()).await? {
        let Some(name) = m.location.filename() else {
            continue;
        };
        if FileName::parse(name).is_none() {
            continue;
        }
        let dir = m
            .location
            .as_ref()
            .rsplit_once('/')
            .map(|(d, _)| d.to_owned())
            .unwrap_or_default();
        by_part.entry(dir).or_default().push(m);
    }
    let mut report = CompactReport::default();
    let cutoff = now_nanos.saturating_sub(opts.min_age.as_nanos() as i64);
    for (dir, files) in by_part {
        let Some(p) = Partition::parse_path(&dir) else {
            continue;
        };
        if p.end_nanos() > cutoff {
            continue;
        }
        report.partitions += 1;
        compact_partition(archive, table, &dir, files, opts, &mut report)
            .await
            .with_context(|| format!("compacting {dir}"))?;
    }
    Ok(report)
}

async fn compact_partition(
    archive: &Archive,
    table: Table,
    dir: &str,
    mut files: Vec<ObjectMeta>,
    opts: &CompactOptions,
    report: &mut CompactReport,
) -> anyhow::Result<()> {
    // Roll forward: a merged file whose sources still exist.
    let mut infos = Vec::with_capacity(files.len());
    for m in &files {
        infos.push(read_info(&archive.store, &m.location, Some(m.size)).await?);
    }
    let mut gone: Vec<String> = Vec::new();
    for info in &infos {
        for src in &info.compacted_from {
            if files
                .iter()
                .any(|m| m.location.filename() == Some(src.as_str()))
                && !gone.contains(src)
            {
                archive.delete(&Path::from(format!("{dir}/{src}"))).await?;
                gone.push(src.clone());
                report.rolled_forward += 1;
            }
        }
    }
    let mut pairs: Vec<(ObjectMeta, crate::parquet_file::FileInfo)> = files
        .drain(..)
        .zip(infos)
        .filter(|(m, _)| {
            !m.location
                .filename()
                .is_some_and(|n| gone.iter().any(|g| g == n))
        })
        .collect();
    // Small files, per stream epoch, in sequence order.
    pairs.retain(|(m, _)| m.size < opts.small_bytes);
    pairs.sort_by(|a, b| a.0.location.cmp(&b.0.location));
    let mut by_epoch: BTreeMap<u64, Vec<(ObjectMeta, crate::parquet_file::FileInfo)>> =
        BTreeMap::new();
    for (m, i) in pairs {
        by_epoch.entry(i.epoch).or_default().push((m, i));
    }
    for (epoch, files) in by_epoch {
        let mut group: Vec<(ObjectMeta, crate::parquet_file::FileInfo)> = Vec::new();
        let mut size = 0;
        for f in files {
            if !group.is_empty() && size + f.0.size > opts.target_bytes {
                merge(
                    archive,
                    table,
                    dir,
                    epoch,
                    std::mem::take(&mut group),
                    opts,
                    report,
                )
                .await?;
                size = 0;
            }
            size += f.0.size;
            group.push(f);
        }
        merge(archive, table, dir, epoch, group, opts, report).await?;
    }
    Ok(())
}

async fn merge(
    archive: &Archive,
    table: Table,
    dir: &str,
    epoch: u64,
    group: Vec<(ObjectMeta, crate::parquet_file::FileInfo)>,
    opts: &CompactOptions,
    report: &mut CompactReport,
) -> anyhow::Result<()> {
    if group.len() < 2 {
        return Ok(());
    }
    let mut seqs = SeqSet::default();
    let mut batches = Vec::new();
    let mut names = Vec::new();
    let mut stream = String::new();
    for (m, info) in &group {
        anyhow::ensure!(
            !seqs.intersects(&info.seqs),
            "{} shares stream sequences with another file of {dir}",
            m.location
        );
        seqs = seqs.union(&info.seqs);
        batches.extend(read_rows(&archive.store, table, &m.location).await?);
        names.push(m.location.filename().unwrap_or_default().to_owned());
        if stream.is_empty() {
            stream = table.stream().name.to_owned();
        }
    }
    let prov = Provenance {
        stream,
        epoch,
        seqs: seqs.clone(),
        compacted_from: names.clone(),
    };
    let write = opts.write.clone();
    let (bytes, rows) = tokio::task::spawn_blocking(move || encode(table, &batches, &prov, &write))
        .await
        .context("encoding task")??;
    let expected: u64 = group.iter().map(|(_, i)| i.rows).sum();
    anyhow::ensure!(
        rows as u64 == expected,
        "merged {rows} rows from files holding {expected}"
    );
    let path = Path::from(format!("{dir}/{}", FileName::for_seqs(epoch, &seqs)));
    if archive.put_create(&path, bytes).await? == Created::AlreadyExists {
        let info = read_info(&archive.store, &path, None).await?;
        anyhow::ensure!(
            info.seqs == seqs,
            "{path} exists with other sequences than the merge of its sources"
        );
    }
    for n in &names {
        archive.delete(&Path::from(format!("{dir}/{n}"))).await?;
    }
    tracing::info!(%path, sources = names.len(), rows, "compacted");
    report.files_in += names.len();
    report.files_out += 1;
    report.rows += rows as u64;
    Ok(())
}
