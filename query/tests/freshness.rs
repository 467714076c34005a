//! New archive files are visible to the next query without a restart (no listing
//! cache), files written with an older, narrower schema read their missing columns as
//! nulls, an empty or missing archive reads as empty tables, the query limits hold,
//! Parquet metadata is cached between queries within its limit, and each file's
//! statistics are derived once.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use lanner_archiver::naming::FileName;
use lanner_archiver::parquet_file::{Provenance, WriteOptions, encode};
use lanner_archiver::partition::Partition;
use lanner_archiver::seqset::SeqSet;
use lanner_archiver::tables::Table;
use lanner_contract::Event;
use lanner_query::archive::{Archive, S3Args};
use lanner_query::engine::{Engine, ErrorKind};
use lanner_query::guard::Limits;

/// Writes `events` as one archive file, the archiver's way (its encoder and naming).
fn write_file(root: &std::path::Path, events: &[Event], seq: u64) {
    let batch = lanner_contract::arrow::to_record_batch(events).unwrap();
    let prov = Provenance {
        stream: "LANNER_EVENTS".into(),
        epoch: 1,
        seqs: SeqSet::from_iter([seq]),
        compacted_from: vec![],
    };
    let (bytes, _) = encode(Table::Events, &[batch], &prov, &WriteOptions::default()).unwrap();
    let part = Partition::of_nanos(events[0].evt_time.unwrap().0);
    let dir = root.join(part.prefix("events"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(FileName::for_seqs(1, &prov.seqs).to_string()),
        bytes,
    )
    .unwrap();
}

async fn count(e: &Engine, sql: &str) -> i64 {
    let r = e.collect(sql).await.unwrap();
    use datafusion::arrow::array::AsArray;
    r.batches[0]
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .value(0)
}

/// An engine over `lake/` in a new temporary directory, which does not exist yet.
async fn engine_over_empty_lake() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let a = Archive::open(root.to_str().unwrap(), &S3Args::default()).unwrap();
    let e = Engine::new(&a, Limits::default()).await.unwrap();
    (dir, e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_files_are_seen_without_a_restart() {
    let (dir, e) = engine_over_empty_lake().await;
    let root = dir.path().join("lake");
    // Nothing yet (the directory does not even exist): empty tables, views work.
    assert_eq!(count(&e, "SELECT count(*) FROM events").await, 0);
    assert_eq!(count(&e, "SELECT count(*) FROM alerts").await, 0);
    assert_eq!(count(&e, "SELECT count(*) FROM timeline").await, 0);

    write_file(&root, &synthetic(1)[..100], 1);
    assert_eq!(count(&e, "SELECT count(*) FROM events").await, 100);
    write_file(&root, &synthetic(2)[..50], 2);
    assert_eq!(count(&e, "SELECT count(*) FROM events").await, 150);
    assert_eq!(
        count(&e, "SELECT count(*) FROM events WHERE hour = 2").await,
        50
    );
    write_file(&root, &scenario(), 3);
    assert_eq!(
        count(
            &e,
            "SELECT count(*) FROM exec_sessions WHERE container_id = '5b1e0c7d2f3a'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_files_read_missing_columns_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A file whose schema lacks the last columns (as one written before they existed),
    // with plain text where the schema now has dictionaries (schema version 1).
    let evs = &synthetic(1)[..10];
    let full = lanner_contract::arrow::to_record_batch(evs).unwrap();
    let keep = full.num_columns() - 3;
    let text = datafusion::arrow::datatypes::DataType::Utf8;
    let (fields, columns): (Vec<_>, Vec<_>) = full.schema().fields()[..keep]
        .iter()
        .zip(full.columns())
        .map(|(f, c)| match f.data_type() {
            datafusion::arrow::datatypes::DataType::Dictionary(..) => (
                f.as_ref().clone().with_data_type(text.clone()),
                datafusion::arrow::compute::cast(c, &text).unwrap(),
            ),
            _ => (f.as_ref().clone(), c.clone()),
        })
        .unzip();
    let schema = datafusion::arrow::datatypes::Schema::new(fields);
    let narrow =
        datafusion::arrow::record_batch::RecordBatch::try_new(schema.into(), columns).unwrap();
    let part = Partition::of_nanos(evs[0].evt_time.unwrap().0);
    let fdir = root.join(part.prefix("events"));
    std::fs::create_dir_all(&fdir).unwrap();
    let file = std::fs::File::create(fdir.join("old.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, narrow.schema(), None).unwrap();
    w.write(&narrow).unwrap();
    w.close().unwrap();

    let a = Archive::open(root.to_str().unwrap(), &S3Args::default()).unwrap();
    let e = Engine::new(&a, Limits::default()).await.unwrap();
    let last = full.schema().field(full.num_columns() - 1).name().clone();
    assert_eq!(
        count(
            &e,
            &format!("SELECT count(*) FROM events WHERE {last} IS NULL")
        )
        .await,
        10
    );
    // Its text reads as the dictionary columns it is now.
    let name = evs[0].proc_name.as_deref().unwrap();
    let same = evs
        .iter()
        .filter(|e| e.proc_name.as_deref() == Some(name))
        .count();
    assert_eq!(
        count(
            &e,
            &format!("SELECT count(*) FROM events WHERE proc_name = '{name}'")
        )
        .await,
        same as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_holds() {
    let fx = archive();
    let a = Archive::open(fx.dir.to_str().unwrap(), &S3Args::default()).unwrap();
    // A hash join's build side cannot spill: 64 KiB is not enough for 9000 rows.
    let e = Engine::new(
        &a,
        Limits {
            memory_bytes: 64 << 10,
            timeout: Duration::ZERO,
            max_rows: 0,
            ..Limits::default()
        },
    )
    .await
    .unwrap();
    let err = e
        .collect("SELECT count(*) FROM events a JOIN events b ON a.evt_id = b.evt_id")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Limit, "{err}");
    assert!(err.message.contains("--memory-mib"), "{err}");
}

/// Parquet metadata stays in memory between queries, up to `--metadata-cache-mib`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_cache_keeps_what_its_limit_allows() {
    let fx = archive();
    let a = Archive::open(fx.dir.to_str().unwrap(), &S3Args::default()).unwrap();
    for (bytes, kept) in [
        (Limits::default().metadata_cache_bytes, true),
        (1024, false),
    ] {
        let limits = Limits {
            metadata_cache_bytes: bytes,
            ..Limits::default()
        };
        let e = Engine::new(&a, limits).await.unwrap();
        assert!(count(&e, "SELECT count(*) FROM events WHERE proc_pid >= 0").await > 0);
        let cache = e
            .context()
            .runtime_env()
            .cache_manager
            .get_file_metadata_cache();
        assert_eq!(cache.cache_limit(), bytes);
        let entries = cache.list_entries();
        let used: usize = entries.values().map(|e| e.size_bytes).sum();
        assert!(used <= bytes, "{used} bytes cached, limit {bytes}");
        assert_eq!(
            !entries.is_empty(),
            kept,
            "limit {bytes}: {} files",
            entries.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_statistics_are_derived_once_per_file() {
    let (dir, e) = engine_over_empty_lake().await;
    let root = dir.path().join("lake");
    let cache = e
        .context()
        .runtime_env()
        .cache_manager
        .get_file_statistic_cache()
        .unwrap();
    write_file(&root, &synthetic(1)[..20], 1);
    assert_eq!(count(&e, "SELECT count(*) FROM events").await, 20);
    assert_eq!(cache.len(), 1);
    // The next query takes them from the cache; a new file adds its own, and counts.
    write_file(&root, &synthetic(2)[..30], 2);
    assert_eq!(count(&e, "SELECT count(*) FROM events").await, 50);
    assert_eq!(cache.len(), 2);
    assert_eq!(
        count(&e, "SELECT count(*) FROM events WHERE hour = 2").await,
        30
    );
}

/// A query of 7e11 rows cannot finish within a second: the CLI says it timed out and
/// exits (its own process, so the busy worker it leaves behind cannot hold up the test).
#[test]
fn the_timeout_holds() {
    let fx = archive();
    let out = cli(
        &fx.dir,
        "SELECT sum(a.evt_num + b.evt_num + c.evt_num) FROM events a \
         CROSS JOIN events b CROSS JOIN (SELECT evt_num FROM events LIMIT 1000) c",
        &["--timeout", "1"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("timed out after 1s"), "{err}");
}
