//! Retention: deletes whole partitions (`dt=.../hour=...`) whose hour ended more than
//! the configured age ago. Days entirely past the cutoff are deleted without listing
//! their hours one by one.

use std::time::Duration;

use anyhow::Context as _;
use futures::TryStreamExt;
use object_store::path::Path;

use crate::archive::Archive;
use crate::partition::Partition;
use crate::tables::Table;

/// What a retention run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Partitions (hours) removed.
    pub partitions: usize,
    /// Objects deleted.
    pub objects: usize,
}

/// Deletes the partitions of `table` whose hour ended before `now - max_age`.
pub async fn apply_retention(
    archive: &Archive,
    table: Table,
    max_age: Duration,
    now_nanos: i64,
) -> anyhow::Result<RetentionReport> {
    let cutoff = now_nanos.saturating_sub(max_age.as_nanos().min(i64::MAX as u128) as i64);
    let mut report = RetentionReport::default();
    let root = Path::from(table.name());
    let days = archive
        .store
        .list_with_delimiter(Some(&root))
        .await
        .with_context(|| format!("listing {root}"))?;
    for day in days.common_prefixes {
        let hours = archive
            .store
            .list_with_delimiter(Some(&day))
            .await
            .with_context(|| format!("listing {day}"))?;
        for hour in hours.common_prefixes {
            let Some(p) = Partition::parse_path(hour.as_ref()) else {
                continue;
            };
            if p.end_nanos() > cutoff {
                continue;
            }
            let objects: Vec<Path> = archive
                .store
                .list(Some(&hour))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .with_context(|| format!("listing {hour}"))?;
            for o in &objects {
                archive.delete(o).await?;
            }
            if let Some(dir) = &archive.local_root {
                // Local directories: remove the emptied folders too.
                let _ = std::fs::remove_dir(dir.join(hour.as_ref()));
                let _ = std::fs::remove_dir(dir.join(day.as_ref()));
            }
            tracing::info!(partition = %hour, objects = objects.len(), "expired partition deleted");
            report.partitions += 1;
            report.objects += objects.len();
        }
    }
    Ok(report)
}
