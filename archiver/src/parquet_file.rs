//! Encoding one archive file, and reading its metadata and rows back.
//!
//! Every file is zstd-compressed, sorted by the table's time column (recorded as the
//! row groups' `sorting_columns`), dictionary-encoded (columns of distinct values such as
//! `evt_id` and `evt_time` delta-encoded instead; the dictionary text columns and the
//! lists of texts written by [`crate::dictionary_chunk`], the others by parquet's
//! `ArrowWriter` column writers), with page-level statistics and
//! the page index, bloom filters on the table's id-like columns, and lanner's metadata:
//! `lanner.schema_version`, `lanner.table`, `lanner.stream`, `lanner.stream_epoch`,
//! `lanner.seqs` (the stream sequences it holds) and, for compacted files,
//! `lanner.compacted_from`.

use std::sync::Arc;

use arrow_array::Array as _;
use arrow_array::RecordBatch;
use arrow_ord::sort::{SortOptions, sort_to_indices};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::dictionary_chunk::{ChunkOptions, ChunkWriter, DictionaryChunk};
use crate::seqset::SeqSet;
use crate::tables::{Table, UniqueKind};

/// Metadata key: table name.
pub const KEY_TABLE: &str = "lanner.table";
/// Metadata key: input stream name.
pub const KEY_STREAM: &str = "lanner.stream";
/// Metadata key: input stream creation time (unix seconds).
pub const KEY_EPOCH: &str = "lanner.stream_epoch";
/// Metadata key: the stream sequences whose rows the file holds.
pub const KEY_SEQS: &str = "lanner.seqs";
/// Metadata key: names of the files a compacted file replaces, comma-separated.
pub const KEY_COMPACTED_FROM: &str = "lanner.compacted_from";

/// Errors writing or reading archive files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Arrow failed (concatenating, sorting).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A file lacks lanner's metadata or has it malformed.
    #[error("{path}: {reason}")]
    Metadata {
        /// Object path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Knobs of the Parquet writer.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// zstd level (1..=22).
    pub zstd_level: i32,
    /// Most rows per row group.
    pub row_group_rows: usize,
    /// Bloom filter false-positive probability.
    pub bloom_fpp: f64,
    /// Most rows per data page (each page has its statistics in the page index).
    pub page_rows: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            zstd_level: 3,
            row_group_rows: 256 * 1024,
            bloom_fpp: 0.01,
            page_rows: 20_000,
        }
    }
}

/// Where a file's rows come from.
#[derive(Clone, Debug)]
pub struct Provenance {
    /// Input stream name.
    pub stream: String,
    /// Input stream creation time, unix seconds.
    pub epoch: u64,
    /// Stream sequences whose rows the file holds.
    pub seqs: SeqSet,
    /// Files this one replaces (compaction).
    pub compacted_from: Vec<String>,
}

/// Concatenates `batches` (all of the table's schema), sorts the rows by the table's
/// time column and encodes them as one Parquet file. Returns the bytes and row count.
pub fn encode(
    table: Table,
    batches: &[RecordBatch],
    prov: &Provenance,
    opts: &WriteOptions,
) -> Result<(Vec<u8>, usize), FileError> {
    let schema = table.schema();
    let batch = arrow_select::concat::concat_batches(&schema, batches)?;
    let time_idx = schema.index_of(table.time_column())?;
    let sort = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let batch = if is_sorted(&batch, time_idx) {
        batch
    } else {
        let idx = sort_to_indices(batch.column(time_idx), Some(sort), None)?;
        arrow_select::take::take_record_batch(&batch, &idx)?
    };
    let rows = batch.num_rows();
    let mut kv = vec![
        KeyValue::new(
            lanner_contract::arrow::SCHEMA_VERSION_KEY.to_owned(),
            table.schema_version().to_owned(),
        ),
        KeyValue::new(KEY_TABLE.to_owned(), table.name().to_owned()),
        KeyValue::new(KEY_STREAM.to_owned(), prov.stream.clone()),
        KeyValue::new(KEY_EPOCH.to_owned(), prov.epoch.to_string()),
        KeyValue::new(KEY_SEQS.to_owned(), prov.seqs.to_string()),
    ];
    if !prov.compacted_from.is_empty() {
        kv.push(KeyValue::new(
            KEY_COMPACTED_FROM.to_owned(),
            prov.compacted_from.join(","),
        ));
    }
    let level = ZstdLevel::try_new(opts.zstd_level)?;
    let ndv = rows.clamp(1, opts.row_group_rows.max(1)) as u64;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.row_group_rows.max(1)))
        .set_data_page_row_count_limit(opts.page_rows.max(1))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: time_idx as i32,
            descending: sort.descending,
            nulls_first: sort.nulls_first,
        }]))
        .set_key_value_metadata(Some(kv));
    for (col, kind) in table.unique_columns() {
        let path = ColumnPath::from(*col);
        let encoding = match kind {
            UniqueKind::Text => Encoding::DELTA_BYTE_ARRAY,
            UniqueKind::Number => Encoding::DELTA_BINARY_PACKED,
        };
        props = props
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_encoding(path, encoding);
    }
    for col in table.bloom_columns() {
        let path = ColumnPath::from(*col);
        props = props
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), opts.bloom_fpp)
            .set_column_bloom_filter_max_ndv(path, ndv);
    }
    let props = props.build();
    let blooms = table.bloom_columns();
    let mut direct = ChunkWriter::new(ChunkOptions {
        zstd_level: opts.zstd_level,
        page_rows: props.data_page_row_count_limit(),
        truncate_stats: props.statistics_truncate_length().unwrap_or(usize::MAX),
        bloom_fpp: None,
    })?;
    let writer = ArrowWriter::try_new(Vec::with_capacity(rows * 32), schema.clone(), Some(props))?;
    let (mut file, factory) = writer.into_serialized_writer()?;
    let group_rows = opts.row_group_rows.max(1);
    let mut start = 0;
    let mut group = 0;
    while start < rows {
        let len = group_rows.min(rows - start);
        let part = batch.slice(start, len);
        let mut writers = factory.create_column_writers(group)?.into_iter();
        let mut chunks = Vec::with_capacity(part.num_columns());
        let mut leaf = 0;
        for (field, array) in schema.fields().iter().zip(part.columns()) {
            let descr = file.schema_descr().column(leaf);
            direct.set_bloom_fpp(
                blooms
                    .contains(&field.name().as_str())
                    .then_some(opts.bloom_fpp),
            );
            if let Some(chunk) = direct.write(&descr, array.as_ref())? {
                // parquet's writer for this leaf is not used.
                writers.next();
                chunks.push(Chunk::Direct(chunk));
                leaf += 1;
                continue;
            }
            for column in compute_leaves(field, array)? {
                let mut w = writers
                    .next()
                    .ok_or_else(|| ParquetError::General("more leaves than writers".into()))?;
                w.write(&column)?;
                chunks.push(Chunk::Arrow(w.close()?));
                leaf += 1;
            }
        }
        let mut row_group = file.next_row_group()?;
        for chunk in chunks {
            match chunk {
                Chunk::Arrow(c) => c.append_to_row_group(&mut row_group)?,
                Chunk::Direct(c) => row_group.append_column(&c.bytes, c.close)?,
            }
        }
        row_group.close()?;
        start += len;
        group += 1;
    }
    let bytes = file.into_inner()?;
    Ok((bytes, rows))
}

/// One column chunk of a row group, from parquet's writer or written directly.
enum Chunk {
    Arrow(ArrowColumnChunk),
    Direct(DictionaryChunk),
}

fn is_sorted(batch: &RecordBatch, col: usize) -> bool {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampNanosecondType;
    let Some(a) = batch
        .column(col)
        .as_primitive_opt::<TimestampNanosecondType>()
    else {
        return false;
    };
    if a.null_count() > 0 {
        return false;
    }
    a.values().windows(2).all(|w| w[0] <= w[1])
}

/// What lanner recorded in a file's metadata.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// Rows in the file.
    pub rows: u64,
    /// `lanner.schema_version`.
    pub schema_version: Option<String>,
    /// Input stream creation time.
    pub epoch: u64,
    /// Stream sequences held.
    pub seqs: SeqSet,
    /// Files it replaces.
    pub compacted_from: Vec<String>,
}

/// Reads a file's footer with two range requests (tail, then the metadata).
async fn read_metadata(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: Option<u64>,
) -> Result<ParquetMetaData, FileError> {
    let bad = |reason: String| FileError::Metadata {
        path: path.to_string(),
        reason,
    };
    let size = match size {
        Some(s) => s,
        None => store.head(path).await.map_err(|e| bad(e.to_string()))?.size,
    };
    if size < 12 {
        return Err(bad(format!("{size} bytes is too small for a Parquet file")));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if tail.len() != 8 || &tail[4..] != b"PAR1" {
        return Err(bad("not a Parquet file (no PAR1 at the end)".to_owned()));
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if len + 12 > size {
        return Err(bad(format!(
            "footer length {len} exceeds the file size {size}"
        )));
    }
    let footer = store
        .get_range(path, size - 8 - len..size - 8)
        .await
        .map_err(|e| bad(e.to_string()))?;
    Ok(ParquetMetaDataReader::decode_metadata(&footer)?)
}

/// Reads lanner's metadata from a file's footer.
pub async fn read_info(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: Option<u64>,
) -> Result<FileInfo, FileError> {
    let md = read_metadata(store, path, size).await?;
    let meta = md.file_metadata();
    let get = |k: &str| {
        meta.key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == k))
            .and_then(|e| e.value.clone())
    };
    let bad = |reason: String| FileError::Metadata {
        path: path.to_string(),
        reason,
    };
    let seqs = SeqSet::parse(&get(KEY_SEQS).ok_or_else(|| bad(format!("no {KEY_SEQS}")))?)
        .map_err(|e| bad(e.to_string()))?;
    let epoch = get(KEY_EPOCH)
        .ok_or_else(|| bad(format!("no {KEY_EPOCH}")))?
        .parse()
        .map_err(|_| bad(format!("{KEY_EPOCH} is not a number")))?;
    Ok(FileInfo {
        rows: meta.num_rows().max(0) as u64,
        schema_version: get(lanner_contract::arrow::SCHEMA_VERSION_KEY),
        epoch,
        seqs,
        compacted_from: get(KEY_COMPACTED_FROM)
            .map(|s| {
                s.split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Reads all rows of a file, brought to the table's current schema.
pub async fn read_rows(
    store: &Arc<dyn ObjectStore>,
    table: Table,
    path: &Path,
) -> Result<Vec<RecordBatch>, FileError> {
    let bytes = store
        .get(path)
        .await
        .map_err(|e| FileError::Metadata {
            path: path.to_string(),
            reason: e.to_string(),
        })?
        .bytes()
        .await
        .map_err(|e| FileError::Metadata {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(64 * 1024)
        .build()?;
    let mut out = Vec::new();
    for b in reader {
        out.push(table.evolve(&b?)?);
    }
    Ok(out)
}
