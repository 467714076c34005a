//! The archive's dictionary text columns, written straight from their Arrow dictionaries
//! (`lanner_archiver::dictionary_chunk`): the rows read back as they went in, through
//! parquet-rs, pyarrow and DuckDB, and the chunk statistics and page index bound every
//! row group and page (exactly, where the value was not cut), so pruning by them is safe.
#![allow(clippy::unwrap_used)]

mod common;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use lanner_archiver::parquet_file::{Provenance, WriteOptions, encode};
use lanner_archiver::seqset::SeqSet;
use lanner_archiver::tables::Table;
use lanner_contract::model::Text;
use lanner_contract::synth::Synth;
use lanner_contract::{Event, Timestamp};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::{ColumnChunkMetaData, PageIndexPolicy};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::PageLocation;
use parquet::file::statistics::Statistics;

const ROW_GROUP: usize = 2000;
const PAGE: usize = 300;

/// The synthetic mix, with texts that test the edges (empty, cut statistics, a maximum
/// that cannot be raised, a column that is null in whole pages), out of time order.
fn events() -> Vec<Event> {
    let mut ev: Vec<Event> = Synth::new(9, "node-a").take(5000).collect();
    let long = "p".repeat(62) + "é-and-more-than-sixty-four-bytes";
    ev[10].proc_name = Some(long.as_str().into());
    ev[11].proc_name = Some("".into());
    ev[12].container_name = Some("\u{10FFFF}".repeat(30).as_str().into());
    ev[1500].container_name = Some("~".repeat(70).as_str().into());
    for e in &mut ev[..PAGE * 2] {
        e.user_name = None;
    }
    // The most negative result renders (`evt_res`) without overflowing.
    ev[21].evt_rawres = Some(i64::MIN);
    // Lists: empty, and with texts at the edges.
    ev[30].proc_aname = Some(Vec::<Text>::new().into());
    ev[31].proc_aname = Some(
        vec![
            Text::from(""),
            Text::from(long.as_str()),
            Text::from("\u{10FFFF}".repeat(30).as_str()),
        ]
        .into(),
    );
    for e in &mut ev[PAGE..PAGE * 3] {
        e.dns_answers = None;
    }
    for (i, e) in ev.iter_mut().enumerate() {
        // Times go down by blocks, so the file has to sort them.
        e.evt_time = Some(Timestamp(
            1_767_000_000_000_000_000 + ((i / 700) as i64 * -1_000_000_000) + (i % 700) as i64,
        ));
    }
    ev
}

fn sorted(batch: &RecordBatch) -> RecordBatch {
    let t = batch.column_by_name("evt_time").unwrap();
    let idx = arrow_ord::sort::sort_to_indices(t, None, None).unwrap();
    arrow_select::take::take_record_batch(batch, &idx).unwrap()
}

fn texts(a: &dyn Array) -> Vec<Option<String>> {
    let t = arrow_cast::cast(a, &DataType::Utf8).unwrap();
    t.as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

fn stat_bytes(s: &Statistics) -> (Option<&[u8]>, Option<&[u8]>) {
    (s.min_bytes_opt(), s.max_bytes_opt())
}

/// `lo ≤ every value ≤ hi`, equal where the statistic says it is exact.
fn check_bounds(
    what: &str,
    values: &[Option<String>],
    lo: Option<&[u8]>,
    hi: Option<&[u8]>,
    exact: (bool, bool),
) {
    let present: Vec<&[u8]> = values.iter().flatten().map(|v| v.as_bytes()).collect();
    let (Some(min), Some(max)) = (present.iter().min(), present.iter().max()) else {
        return;
    };
    let (lo, hi) = (
        lo.unwrap_or_else(|| panic!("{what}: no minimum")),
        hi.unwrap_or_else(|| panic!("{what}: no maximum")),
    );
    assert!(
        lo <= *min && hi >= *max,
        "{what}: [{lo:?}, {hi:?}] does not bound [{min:?}, {max:?}]"
    );
    if exact.0 {
        assert_eq!(lo, *min, "{what}: exact minimum");
    }
    if exact.1 {
        assert_eq!(hi, *max, "{what}: exact maximum");
    }
}

/// A column chunk's statistics, checked to count `nulls` nulls.
fn chunk_statistics<'a>(
    chunk: &'a ColumnChunkMetaData,
    name: &str,
    nulls: usize,
) -> &'a Statistics {
    let stats = chunk
        .statistics()
        .unwrap_or_else(|| panic!("{name}: no statistics"));
    assert_eq!(stats.null_count_opt(), Some(nulls as u64), "{name}");
    stats
}

/// The rows of page `p` of a row group of `rows` rows, by its offset index.
fn page_rows(locations: &[PageLocation], p: usize, rows: usize) -> std::ops::Range<usize> {
    let start = locations[p].first_row_index as usize;
    let end = locations
        .get(p + 1)
        .map_or(rows, |l| l.first_row_index as usize);
    start..end
}

#[test]
fn dictionary_columns_read_back_with_statistics_that_bound_them() {
    let events = events();
    let batch = lanner_contract::arrow::to_record_batch(&events).unwrap();
    let prov = Provenance {
        stream: "LANNER_EVENTS".into(),
        epoch: 1,
        seqs: SeqSet::from_iter(1..=10),
        compacted_from: vec![],
    };
    let opts = WriteOptions {
        row_group_rows: ROW_GROUP,
        page_rows: PAGE,
        ..Default::default()
    };
    let (bytes, rows) = encode(Table::Events, std::slice::from_ref(&batch), &prov, &opts).unwrap();
    assert_eq!(rows, events.len());
    let want = sorted(&batch);

    let bytes = Bytes::from(bytes);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(
        bytes.clone(),
        ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required),
    )
    .unwrap();
    let md = builder.metadata().clone();
    let got: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    let got = arrow_select::concat::concat_batches(&want.schema(), &got).unwrap();
    assert_eq!(got, want, "the file reads back as the sorted rows");

    let schema = want.schema();
    let dict_columns: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| matches!(schema.field(i).data_type(), DataType::Dictionary(..)))
        .collect();
    assert!(dict_columns.len() > 40, "{dict_columns:?}");
    let leaf_of = |name: &str| {
        (0..md.file_metadata().schema_descr().num_columns())
            .find(|&l| md.file_metadata().schema_descr().column(l).path().parts()[0] == *name)
            .unwrap()
    };
    let (column_index, offset_index) = (md.column_index().unwrap(), md.offset_index().unwrap());
    let mut pages_checked = 0;
    let mut null_pages = 0;
    for (g, rg) in md.row_groups().iter().enumerate() {
        let first = g * ROW_GROUP;
        for &c in &dict_columns {
            let name = schema.field(c).name();
            let leaf = leaf_of(name);
            let values = texts(want.column(c).slice(first, rg.num_rows() as usize).as_ref());
            let chunk = rg.column(leaf);
            let nulls = values.iter().filter(|v| v.is_none()).count();
            let stats = chunk_statistics(chunk, name, nulls);
            let (lo, hi) = stat_bytes(stats);
            check_bounds(
                &format!("{name} row group {g}"),
                &values,
                lo,
                hi,
                (stats.min_is_exact(), stats.max_is_exact()),
            );
            if values.iter().any(Option::is_some) {
                assert!(
                    chunk.dictionary_page_offset().is_some(),
                    "{name}: no dictionary page"
                );
            }

            let ColumnIndexMetaData::BYTE_ARRAY(index) = &column_index[g][leaf] else {
                panic!("{name}: no byte array column index");
            };
            let locations = &offset_index[g][leaf].page_locations;
            assert_eq!(index.num_pages() as usize, locations.len());
            for p in 0..locations.len() {
                let page = &values[page_rows(locations, p, values.len())];
                assert_eq!(
                    index.null_count(p),
                    Some(page.iter().filter(|v| v.is_none()).count() as i64),
                    "{name} page {p}"
                );
                assert_eq!(
                    index.is_null_page(p),
                    page.iter().all(Option::is_none),
                    "{name} page {p}"
                );
                if index.is_null_page(p) {
                    null_pages += 1;
                    continue;
                }
                let cut = |v: Option<&[u8]>| v.is_some_and(|v| v.len() >= 60);
                let (lo, hi) = (index.min_value(p), index.max_value(p));
                check_bounds(
                    &format!("{name} row group {g} page {p}"),
                    page,
                    lo,
                    hi,
                    (!cut(lo), !cut(hi)),
                );
                pages_checked += 1;
            }
        }
    }
    // Lists of texts: bounds over their elements; an empty or absent list counts as a
    // null, as parquet counts levels below the leaf's.
    let list_columns: Vec<usize> = (0..schema.fields().len())
        .filter(|&i| match schema.field(i).data_type() {
            DataType::List(item) => item.data_type() == &DataType::Utf8,
            _ => false,
        })
        .collect();
    assert!(list_columns.len() >= 4, "{list_columns:?}");
    let lists_of = |c: usize, first: usize, len: usize| -> Vec<Option<Vec<Option<String>>>> {
        let column = want.column(c).slice(first, len);
        let list = column.as_list::<i32>();
        (0..list.len())
            .map(|i| list.is_valid(i).then(|| texts(list.value(i).as_ref())))
            .collect()
    };
    let entry_nulls = |rows: &[Option<Vec<Option<String>>>]| -> usize {
        rows.iter()
            .map(|r| match r {
                None => 1,
                Some(items) if items.is_empty() => 1,
                Some(items) => items.iter().filter(|v| v.is_none()).count(),
            })
            .sum()
    };
    let mut list_pages = 0;
    for (g, rg) in md.row_groups().iter().enumerate() {
        let first = g * ROW_GROUP;
        for &c in &list_columns {
            let name = schema.field(c).name();
            let leaf = leaf_of(name);
            let rows = lists_of(c, first, rg.num_rows() as usize);
            let elements = |rows: &[Option<Vec<Option<String>>>]| -> Vec<Option<String>> {
                rows.iter().flatten().flatten().cloned().collect()
            };
            let stats = chunk_statistics(rg.column(leaf), name, entry_nulls(&rows));
            let (lo, hi) = stat_bytes(stats);
            check_bounds(
                &format!("{name} row group {g}"),
                &elements(&rows),
                lo,
                hi,
                (stats.min_is_exact(), stats.max_is_exact()),
            );
            let ColumnIndexMetaData::BYTE_ARRAY(index) = &column_index[g][leaf] else {
                panic!("{name}: no byte array column index");
            };
            let locations = &offset_index[g][leaf].page_locations;
            for p in 0..locations.len() {
                let page = &rows[page_rows(locations, p, rows.len())];
                assert_eq!(
                    index.null_count(p),
                    Some(entry_nulls(page) as i64),
                    "{name} page {p}"
                );
                let page_elements = elements(page);
                assert_eq!(
                    index.is_null_page(p),
                    page_elements.iter().all(Option::is_none),
                    "{name} page {p}"
                );
                if index.is_null_page(p) {
                    continue;
                }
                let cut = |v: Option<&[u8]>| v.is_some_and(|v| v.len() >= 60);
                let (lo, hi) = (index.min_value(p), index.max_value(p));
                check_bounds(
                    &format!("{name} row group {g} page {p}"),
                    &page_elements,
                    lo,
                    hi,
                    (!cut(lo), !cut(hi)),
                );
                list_pages += 1;
            }
        }
    }
    assert!(list_pages > 40, "{list_pages} list pages");
    assert!(
        pages_checked > 500 && null_pages > 0,
        "{pages_checked} pages, {null_pages} null pages"
    );

    // The independent readers.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.parquet");
    std::fs::write(&file, &bytes).unwrap();
    let names: Vec<&str> = dict_columns
        .iter()
        .chain(&list_columns)
        .map(|&c| schema.field(c).name().as_str())
        .collect();
    let mut args = vec![file.to_str().unwrap()];
    args.extend(&names);
    let read = common::run_reader("read_columns.py", &args);
    for (&c, name) in dict_columns.iter().chain(&list_columns).zip(&names) {
        let want = if list_columns.contains(&c) {
            serde_json::to_value(lists_of(c, 0, want.num_rows())).unwrap()
        } else {
            serde_json::to_value(texts(want.column(c).as_ref())).unwrap()
        };
        assert!(
            read["pyarrow"][name] == want,
            "pyarrow reads {name} differently"
        );
        assert!(
            read["duckdb"][name] == want,
            "DuckDB reads {name} differently"
        );
    }
}
