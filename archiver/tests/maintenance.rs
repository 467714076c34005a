//! Compaction keeps every row once (also across a schema change), and retention removes
//! only expired partitions. Files are real Parquet on a local archive; the independent
//! reader checks the result.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};
use common::*;
use lanner_archiver::archive::{Archive, S3Args};
use lanner_archiver::compact::{CompactOptions, compact_table};
use lanner_archiver::naming::FileName;
use lanner_archiver::parquet_file::{
    KEY_EPOCH, KEY_SEQS, Provenance, WriteOptions, encode, read_rows,
};
use lanner_archiver::partition::Partition;
use lanner_archiver::retention::apply_retention;
use lanner_archiver::seqset::SeqSet;
use lanner_archiver::tables::Table;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

const HOUR_NS: i64 = 3_600_000_000_000;
const EPOCH: u64 = 1_767_000_000;

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap()
}

/// Writes the events of stream sequences `seqs` as one archive file, like the sink does.
async fn write_file(archive: &Archive, batch: RecordBatch, seqs: SeqSet) -> Path {
    let time = batch.column_by_name("evt_time").unwrap();
    let ns =
        arrow_array::cast::AsArray::as_primitive::<arrow_array::types::TimestampNanosecondType>(
            time,
        )
        .value(0);
    let prov = Provenance {
        stream: "LANNER_EVENTS".into(),
        epoch: EPOCH,
        seqs: seqs.clone(),
        compacted_from: vec![],
    };
    let (bytes, _) = encode(Table::Events, &[batch], &prov, &WriteOptions::default()).unwrap();
    let path = Path::from(format!(
        "{}/{}",
        Partition::of_nanos(ns).prefix("events"),
        FileName::for_seqs(EPOCH, &seqs)
    ));
    archive.put_create(&path, bytes).await.unwrap();
    path
}

/// Writes a file as an older archiver would have: without the schema's last column,
/// and with plain text where the schema now has dictionaries (schema version 1).
async fn write_old_file(archive: &Archive, batch: RecordBatch, seqs: SeqSet, start: i64) -> String {
    let keep = batch.num_columns() - 1;
    let text = |f: &Arc<arrow_schema::Field>, c: &ArrayRef| match f.data_type() {
        DataType::Dictionary(..) => (
            f.as_ref().clone().with_data_type(DataType::Utf8),
            arrow_cast::cast(c, &DataType::Utf8).unwrap(),
        ),
        _ => (f.as_ref().clone(), c.clone()),
    };
    let (fields, columns): (Vec<_>, Vec<_>) = batch.schema().fields()[..keep]
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| text(f, c))
        .unzip();
    let old = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![
            KeyValue::new("lanner.schema_version".into(), "0".to_owned()),
            KeyValue::new(KEY_SEQS.into(), seqs.to_string()),
            KeyValue::new(KEY_EPOCH.into(), EPOCH.to_string()),
        ]))
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), old.schema(), Some(props)).unwrap();
    w.write(&old).unwrap();
    let bytes = w.into_inner().unwrap();
    let path = Path::from(format!(
        "{}/{}",
        Partition::of_nanos(start).prefix("events"),
        FileName::for_seqs(EPOCH, &seqs)
    ));
    archive.put_create(&path, bytes).await.unwrap();
    path.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_row_once_across_a_schema_change() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    let archive = Archive::open(&root, &S3Args::default()).unwrap();
    let old_hour = 1_767_225_600_000_000_000 + 3 * HOUR_NS; // 2026-01-01T03Z: long over
    let last_col = lanner_contract::arrow::schema()
        .fields()
        .last()
        .unwrap()
        .name()
        .clone();

    // Five small files in one old partition; the first from before the last column existed.
    let mut expected_nulls = 0;
    for k in 0..5u64 {
        let evs = events(100 + k, "node-c", old_hour + k as i64 * 1_000_000_000, 400);
        let batch = lanner_contract::arrow::to_record_batch(&evs).unwrap();
        let seqs = SeqSet::from_iter(k * 10 + 1..=k * 10 + 10);
        if k == 0 {
            write_old_file(&archive, batch, seqs, old_hour).await;
            expected_nulls += 400;
        } else {
            expected_nulls += batch.column_by_name(&last_col).unwrap().null_count();
            write_file(&archive, batch, seqs).await;
        }
    }
    // Two small files in the current hour: too young to compact.
    let now = now_nanos();
    for k in 0..2u64 {
        let evs = events(200 + k, "node-c", now - 1000, 10);
        write_file(
            &archive,
            lanner_contract::arrow::to_record_batch(&evs).unwrap(),
            SeqSet::from_iter([1000 + k]),
        )
        .await;
    }
    let before = read_archive("events", "evt_id", "evt_time", &["--dir", &root]);
    assert_eq!(num(&before, "files"), 7);
    assert_eq!(
        num(&before, "duckdb_rows"),
        2020,
        "old and new files read together: {before}"
    );

    let opts = CompactOptions {
        min_age: Duration::from_secs(600),
        ..Default::default()
    };
    let report = compact_table(&archive, Table::Events, &opts, now)
        .await
        .unwrap();
    assert_eq!(
        (report.files_in, report.files_out, report.rows),
        (5, 1, 2000),
        "{report:?}"
    );

    let after = read_archive("events", "evt_id", "evt_time", &["--dir", &root]);
    assert_eq!(num(&after, "files"), 3, "{after}");
    assert_eq!(num(&after, "rows"), 2020);
    assert_eq!(num(&after, "distinct_ids"), 2020);
    assert_eq!(num(&after, "duckdb_rows"), 2020);
    let merged = after["file_facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["name"]
                .as_str()
                .unwrap()
                .starts_with("dt=2026-01-01/hour=03/")
        })
        .unwrap()
        .clone();
    assert_eq!(merged["sorted"], true);
    assert_eq!(merged["metadata"]["lanner.seqs"], "1-50");
    assert_eq!(
        merged["metadata"]["lanner.schema_version"],
        lanner_contract::arrow::SCHEMA_VERSION
    );
    assert_eq!(
        merged["metadata"]["lanner.compacted_from"]
            .as_str()
            .unwrap()
            .split(',')
            .count(),
        5
    );

    // The rows of the old file have the new column as null.
    let path = Path::from(format!("events/{}", merged["name"].as_str().unwrap()));
    let rows = read_rows(&archive.store, Table::Events, &path)
        .await
        .unwrap();
    let nulls: usize = rows
        .iter()
        .map(|b| b.column_by_name(&last_col).unwrap().null_count())
        .sum();
    assert_eq!(nulls, expected_nulls);

    // A second run has nothing left to do.
    let again = compact_table(&archive, Table::Events, &opts, now)
        .await
        .unwrap();
    assert_eq!((again.files_in, again.files_out), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_only_expired_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_owned();
    let archive = Archive::open(&root, &S3Args::default()).unwrap();
    let now = now_nanos();
    let ages = [72, 49, 47, 1];
    for (i, h) in ages.iter().enumerate() {
        let evs = events(300 + i as u64, "node-r", now - h * HOUR_NS, 50);
        write_file(
            &archive,
            lanner_contract::arrow::to_record_batch(&evs).unwrap(),
            SeqSet::from_iter([i as u64 + 1]),
        )
        .await;
    }
    let report = apply_retention(&archive, Table::Events, Duration::from_secs(48 * 3600), now)
        .await
        .unwrap();
    assert_eq!((report.partitions, report.objects), (2, 2), "{report:?}");
    let left = read_archive("events", "evt_id", "evt_time", &["--dir", &root]);
    let parts: BTreeSet<String> = serde_json::from_value(left["partitions"].clone()).unwrap();
    let want: BTreeSet<String> = [47, 1]
        .iter()
        .map(|h| {
            Partition::of_nanos(now - h * HOUR_NS).prefix("events")["events/".len()..].to_owned()
        })
        .collect();
    assert_eq!(parts, want);
    assert_eq!(num(&left, "rows"), 100);
    // Nothing else expires on a second run.
    let again = apply_retention(&archive, Table::Events, Duration::from_secs(48 * 3600), now)
        .await
        .unwrap();
    assert_eq!(again.partitions, 0);
}
